import assert from "node:assert/strict";
import { generateEventServices, type TrueEvent } from "../../../bench/events_eval.ts";
import { createScoreHandler } from "../../../functions/score/score.ts";
import { eventLine, trainDetector } from "../../../shared/detector/detector.ts";
import { fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";
import {
  createRedisClient,
  RedisLogStream,
} from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisFeedbackStore } from "../../../shared/adapters/redis/redis_feedback_store.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { ModelCache } from "../../../shared/runtime/model_cache.ts";
import { suiteEnv, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";
import {
  redisReader,
  removeContainers,
  runContainer,
  startCollector,
  StreamReader,
  texts,
} from "./helpers.ts";

/** A container that prints `$LOGS` and stays up (its last event flushes on the timeout). */
function printer(image: string, name: string, lines: string[], extra: string[] = []): string[] {
  return [
    "--name",
    name,
    "-e",
    `LOGS=${lines.join("\n")}`,
    ...extra,
    image,
    "sh",
    "-c",
    'printf "%s\\n" "$LOGS"; exec sleep 3600',
  ];
}

/** The known exception that recurs most often in training (by stack fingerprint). */
function mostFrequentKnown(train: TrueEvent[], test: TrueEvent[]): TrueEvent {
  const count = new Map<string, number>();
  const tokenOf = (e: TrueEvent) => eventLine(e.lines.join("\n")).split(" ")[0]!;
  for (const e of train) {
    if (e.kind === "known") count.set(tokenOf(e), (count.get(tokenOf(e)) ?? 0) + 1);
  }
  const best = [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return test.find((e) => e.kind === "known" && tokenOf(e) === best)!;
}

Deno.test("collect() makes one entry per stack trace; score raises a new exception once, a known one never", async (t) => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const id = crypto.randomUUID().slice(0, 8);
  const services = generateEventServices(21, { trainEvents: 2000, testEvents: 200 })
    .filter((s) => s.name !== "node-api");
  const client = createRedisClient(env.redisUrl);
  const registry = new RedisModelRegistry(client, { prefix: `test:${id}:models:` });
  const feedback = new RedisFeedbackStore(client, { prefix: `test:${id}:feedback` });
  const stream = RedisLogStream.connect(env.redisUrl);
  await using redis = redisReader(env.redisUrl);
  await using collector = startCollector(env.dockerSocket, env.redisUrl, {
    multilineFlushMs: 1000,
  });
  const reader = new StreamReader(redis, collector.stream);
  const ids: string[] = [];
  try {
    const printed = new Map<string, { name: string; events: TrueEvent[] }>();
    for (const s of services) {
      const normal = s.test.filter((e) => e.kind === "normal").slice(0, 6);
      const known = mostFrequentKnown(s.train, s.test);
      const fresh = s.test.find((e) => e.kind === "new")!;
      const events = [normal[0]!, normal[1]!, known, normal[2]!, fresh, normal[3]!, known];
      const name = `${s.name}-${id}`;
      const cid = await runContainer(
        host,
        printer(env.dockerImage, name, events.flatMap((e) => e.lines)),
      );
      ids.push(cid);
      printed.set(cid, { name, events });
      const model = await trainDetector(s.train.map((e) => e.lines.join("\n")));
      await registry.put(name, model.toBytes(), { lines: s.train.length, threshold: 0.5 });
    }

    await t.step(
      "Python, Java and Go traces: one entry per event, lines joined by \\n",
      async () => {
        for (const [cid, { events }] of printed) {
          await waitFor(async () => (await reader.of(cid)).length >= events.length, {
            timeoutMs: 20_000,
            what: `the ${events.length} events of ${cid}`,
          });
          const entries = await reader.of(cid);
          assert.deepEqual(texts(entries), events.map((e) => e.lines.join("\n")));
        }
      },
    );

    await t.step("score: one anomaly, for the new exception", async () => {
      const anomalies = `test:${id}:anomalies`;
      const handler = createScoreHandler(
        { models: new ModelCache(registry), stream, feedback },
        { anomalyStream: anomalies },
      );
      const batch = (await stream.range(collector.stream)).map((m) => ({ ...m, deliveries: 1 }));
      await handler(batch, { signal: new AbortController().signal });
      const raised = (await stream.range(anomalies)).map((m) => fieldsToAnomaly(m.id, m.fields));
      for (const [, { name, events }] of printed) {
        const mine = raised.filter((a) => a.container === name);
        const fresh = events.find((e) => e.kind === "new")!.lines.join("\n");
        assert.deepEqual(mine.map((a) => a.line), [fresh], `anomalies of ${name}`);
      }
      await redis.del(anomalies);
    });

    await t.step("the label tailwise.multiline.start: a pattern, or off", async () => {
      const lines = ["[a] one", "two", "  three", "[b] four", "five"];
      const pattern = await runContainer(
        host,
        printer(env.dockerImage, `pattern-${id}`, lines, [
          "--label",
          "tailwise.multiline.start=^\\[",
        ]),
      );
      const off = await runContainer(
        host,
        printer(env.dockerImage, `off-${id}`, lines, ["--label", "tailwise.multiline.start=off"]),
      );
      ids.push(pattern, off);
      await waitFor(async () => (await reader.of(pattern)).length >= 2, { timeoutMs: 20_000 });
      await waitFor(async () => (await reader.of(off)).length >= 5, { timeoutMs: 20_000 });
      assert.deepEqual(texts(await reader.of(pattern)), [
        "[a] one\ntwo\n  three",
        "[b] four\nfive",
      ]);
      assert.deepEqual(texts(await reader.of(off)), lines);
    });
  } finally {
    await collector.stop();
    await removeContainers(host, ids);
    await redis.del(collector.stream);
    await registry[Symbol.asyncDispose]();
    await stream[Symbol.asyncDispose]();
    client.disconnect();
  }
});

Deno.test("collect as a process SIGKILLed in the middle of traces and restarted: every line once", async () => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const stream = `test:logs:${crypto.randomUUID()}`;
  const taskEnv = {
    REDIS_URL: env.redisUrl,
    DOCKER_HOST: host,
    LOG_STREAM: stream,
    LOG_LEVEL: "warn",
    HOME: Deno.env.get("HOME") ?? "/root",
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  };
  await using redis = redisReader(env.redisUrl);
  const reader = new StreamReader(redis, stream);
  const n = 40;
  // Each round: a plain line, then an error line with a traceback whose
  // second half comes 0.2 s later; the event stays open until the next round.
  const script = `for i in $(seq 1 ${n}); do
echo "INFO job $i started"
echo "ERROR job $i failed"
echo "Traceback (most recent call last):"
echo '  File "/app/worker.py", line 42, in run'
sleep 0.2
echo '  File "/app/handlers.py", line 17, in handle'
echo "ValueError: bad input $i"
sleep 0.3
done; exec sleep 3600`;
  const expected: string[] = [];
  for (let i = 1; i <= n; i++) {
    expected.push(`INFO job ${i} started`);
    expected.push(
      [
        `ERROR job ${i} failed`,
        "Traceback (most recent call last):",
        '  File "/app/worker.py", line 42, in run',
        '  File "/app/handlers.py", line 17, in handle',
        `ValueError: bad input ${i}`,
      ].join("\n"),
    );
  }
  let child = await TaskProcess.start("collect", { env: taskEnv });
  let cid = "";
  let kills = 0;
  try {
    cid = await runContainer(host, [env.dockerImage, "sh", "-c", script]);
    for (const at of [6, 20, 40]) {
      // Kill while the newest entry is a "started" line: the trace after it
      // is being read and is not written yet.
      await waitFor(async () => {
        const got = texts(await reader.of(cid));
        return got.length >= at && /started$/.test(got[got.length - 1]!);
      }, { timeoutMs: 30_000, what: `${at} entries ending with a started line` });
      await child.stop("SIGKILL");
      kills++;
      child = await TaskProcess.start("collect", { env: taskEnv });
    }
    await waitFor(async () => (await reader.of(cid)).length >= expected.length, {
      timeoutMs: 60_000,
      what: `all ${expected.length} events`,
    });
    assert.equal(kills, 3);
    assert.deepEqual(texts(await reader.of(cid)), expected);
  } finally {
    await child.stop("SIGTERM");
    await removeContainers(host, cid ? [cid] : []);
    await redis.del(stream);
    if (cid) await redis.del(`tailwise:collect:ckpt:${cid}`);
  }
});
