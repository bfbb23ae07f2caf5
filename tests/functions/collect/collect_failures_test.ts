import assert from "node:assert/strict";
import { startDocker, startRedis, suiteEnv, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";
import {
  numbered,
  redisReader,
  removeContainers,
  runContainer,
  startCollector,
  StreamReader,
  texts,
} from "./helpers.ts";

/** Prints `batches` × `per` numbered lines, pausing 0.1 s between batches. */
function slowSeq(batches: number, per: number): string[] {
  return [
    "sh",
    "-c",
    `for b in $(seq 1 ${batches}); do seq $((b*${per}-${per - 1})) $((b*${per})); sleep 0.1; done`,
  ];
}

function spawnCollector(env: Record<string, string>): Promise<TaskProcess> {
  return TaskProcess.start("collect", { env: { LOG_LEVEL: "warn", ...env } });
}

Deno.test("collect() as a process SIGKILLed and restarted three times loses and repeats nothing", async () => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const stream = `test:logs:${crypto.randomUUID()}`;
  const procEnv = {
    REDIS_URL: env.redisUrl,
    DOCKER_HOST: host,
    LOG_STREAM: stream,
    COLLECT_BATCH_LINES: "200",
  };
  await using redis = redisReader(env.redisUrl);
  const reader = new StreamReader(redis, stream);
  const ids: string[] = [];
  let child = await spawnCollector(procEnv);
  try {
    const main = await runContainer(host, [env.dockerImage, ...slowSeq(50, 800)]);
    ids.push(main);
    for (const at of [6000, 14000, 22000]) {
      await waitFor(async () => (await reader.all()).length >= at, {
        timeoutMs: 30_000,
        what: `${at} lines before a kill`,
      });
      await child.stop("SIGKILL");
      if (at === 14000) {
        // Started while no collector runs; still running at the restart.
        ids.push(
          await runContainer(host, [env.dockerImage, "sh", "-c", "seq 1 1000; exec sleep 3600"]),
        );
      }
      child = await spawnCollector(procEnv);
    }
    await waitFor(async () => (await reader.of(main)).length >= 40_000, {
      timeoutMs: 60_000,
      what: "all 40,000 lines",
    });
    await waitFor(async () => (await reader.of(ids[1]!)).length >= 1000, {
      timeoutMs: 30_000,
      what: "the 1,000 lines of the container started during a kill",
    });
    assert.deepEqual(texts(await reader.of(main)), numbered(40_000));
    assert.deepEqual(texts(await reader.of(ids[1]!)), numbered(1000));
  } finally {
    await child.stop();
    await removeContainers(host, ids);
    await redis.del(stream);
    for (const id of ids) await redis.del(`tailwise:collect:ckpt:${id}`);
  }
});

Deno.test("collect() pauses reading while Redis is down for 10 s and loses nothing", async () => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  await using redisService = await startRedis();
  await using redis = redisReader(redisService.url);
  const ids: string[] = [];
  await using collector = startCollector(env.dockerSocket, redisService.url, {
    batchLines: 100,
    bufferLines: 400,
    flushMs: 20,
  });
  const reader = new StreamReader(redis, collector.stream);
  try {
    for (let i = 0; i < 2; i++) {
      ids.push(await runContainer(host, [env.dockerImage, ...slowSeq(130, 20)]));
    }
    await waitFor(async () => (await reader.all()).length >= 200, {
      timeoutMs: 20_000,
      what: "the first lines",
    });
    await redisService.stop();
    // The outage itself (the scenario), not a wait for a condition.
    await new Promise((r) => setTimeout(r, 10_000));
    await redisService.start();
    for (const id of ids) {
      await waitFor(async () => (await reader.of(id)).length >= 2600, {
        timeoutMs: 30_000,
        what: "every line after the outage",
      });
    }
    for (const id of ids) assert.deepEqual(texts(await reader.of(id)), numbered(2600));
    assert.ok(
      collector.logs.some((l) => /reading paused/.test(String(l.msg))),
      "reading from Docker paused while the buffer was full",
    );
  } finally {
    await collector.stop();
    await removeContainers(host, ids);
  }
});

Deno.test("collect() reconnects after a Docker engine restart and re-attaches to all", async () => {
  const env = suiteEnv();
  await using engine = await startDocker();
  await using redis = redisReader(env.redisUrl);
  await using collector = startCollector(engine.socketPath, env.redisUrl, { maxBackoffMs: 500 });
  const reader = new StreamReader(redis, collector.stream);
  try {
    const always = await runContainer(engine.url, [
      "--restart",
      "always",
      "--stop-signal",
      "SIGKILL",
      engine.image,
      "sh",
      "-c",
      "seq 1 100; exec sleep 3600",
    ]);
    await waitFor(async () => (await reader.of(always)).length >= 100, {
      timeoutMs: 20_000,
      what: "the first run's lines",
    });
    await engine.stop();
    await engine.start();
    await waitFor(async () => (await reader.of(always)).length >= 200, {
      timeoutMs: 30_000,
      what: "the lines of the run the engine restarted",
    });
    const fresh = await runContainer(engine.url, [engine.image, "seq", "1", "50"]);
    await waitFor(async () => (await reader.of(fresh)).length >= 50, {
      timeoutMs: 20_000,
      what: "a new container's lines",
    });
    assert.deepEqual(texts(await reader.of(always)), [...numbered(100), ...numbered(100)]);
    assert.deepEqual(texts(await reader.of(fresh)), numbered(50));
    assert.ok(collector.logs.some((l) => /reconnected/.test(String(l.msg))));
  } finally {
    await collector.stop();
    await redis.del(collector.stream);
    const ids = (await engine.docker(["ps", "-aq"]).catch(() => "")).split("\n").filter(Boolean);
    await removeContainers(engine.url, ids);
  }
});
