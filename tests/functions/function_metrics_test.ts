import assert from "node:assert/strict";
import { entryToFields, type LogEntry } from "../../shared/ports/log_entry.ts";
import { createRedisClient } from "../../shared/adapters/redis/redis_log_stream.ts";
import { dockerCli, freePort, startRedis, suiteEnv, waitFor } from "../harness/services.ts";
import { TaskProcess } from "../harness/task.ts";

async function _metrics(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return await res.text();
}

function _value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/**
 * Issue 16 items 8 and 9: every function process serves its own /metrics on
 * METRICS_PORT (run with its task's permissions), collect counts
 * `tailwise_lines_in_total`, and the score latency leaves backdated lines out.
 */
Deno.test("collect, ingest, score: each serves its own /metrics; lines in counted; latency of live lines only", async (t) => {
  const env = suiteEnv();
  await using redis = await startRedis();
  const client = createRedisClient(redis.url);
  const id = crypto.randomUUID().slice(0, 8);
  const ports = { collect: freePort(), ingest: freePort(), score: freePort() };
  const base = {
    REDIS_URL: redis.url,
    INFLUX_URL: env.influxUrl,
    INFLUX_DATABASE: `tw_metrics_${id}`,
    DOCKER_HOST: `unix://${env.dockerSocket}`,
    CONSUMER_BLOCK_MS: "200",
  };
  const procs: TaskProcess[] = [];
  const name = `metrics-${id}`;
  try {
    for (const fn of ["collect", "ingest", "score"] as const) {
      procs.push(
        await TaskProcess.start(fn, {
          env: { ...base, TAILWISE_INSTANCE: `${fn}-${id}`, METRICS_PORT: String(ports[fn]) },
        }),
      );
    }
    for (const fn of ["collect", "ingest", "score"] as const) {
      await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${ports[fn]}/metrics`).catch(() => null);
        await r?.body?.cancel();
        return r?.status === 200;
      }, { timeoutMs: 30_000, what: `${fn}'s /metrics` });
    }

    await t.step("collect counts the lines it appends", async () => {
      await dockerCli(`unix://${env.dockerSocket}`, [
        "run",
        "--name",
        name,
        env.dockerImage,
        "sh",
        "-c",
        'i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo "line $i"; done',
      ]);
      await waitFor(
        async () =>
          _value(await _metrics(ports.collect), `tailwise_lines_in_total{container="${name}"}`) ===
            50,
        { timeoutMs: 20_000, what: "50 lines in" },
      );
    });

    await t.step("score leaves backdated lines out of its latency", async () => {
      await waitFor(
        async () =>
          _value(
            await _metrics(ports.score),
            `tailwise_lines_scored_total{container="${name}"}`,
          ) ===
            50,
        { timeoutMs: 20_000, what: "the 50 live lines scored" },
      );
      const before = _value(await _metrics(ports.score), "tailwise_score_latency_seconds_count");
      assert.ok(before >= 50, `${before} latency observations`);
      const old: LogEntry = {
        containerId: "c-old",
        containerName: "backdated",
        image: "x:1",
        stream: "stdout",
        ts: new Date(Date.now() - 2 * 3_600_000).toISOString(),
        seq: 0,
        line: "a line of yesterday's history",
      };
      for (let i = 0; i < 20; i++) {
        const fields = entryToFields({ ...old, seq: i });
        await client.xadd("tailwise:logs", "*", ...Object.entries(fields).flat());
      }
      await waitFor(
        async () =>
          _value(
            await _metrics(ports.score),
            'tailwise_lines_scored_total{container="backdated"}',
          ) === 20,
        { timeoutMs: 20_000, what: "the backdated lines scored" },
      );
      const text = await _metrics(ports.score);
      assert.equal(_value(text, "tailwise_score_latency_seconds_count"), before);
      assert.ok(_value(text, 'tailwise_score_latency_seconds_bucket{le="+Inf"}') === before);
    });

    await t.step("ingest serves its /metrics too", async () => {
      assert.match(await _metrics(ports.ingest), /^# TYPE tailwise_lines_in_total counter$/m);
    });
  } finally {
    for (const p of procs) await p.stop();
    await dockerCli(`unix://${env.dockerSocket}`, ["rm", "-f", name]).catch(() => {});
    client.disconnect();
  }
});

Deno.test("deno task start: tailwise_lines_in_total counts a file's lines in one-process mode", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-linesin-" });
  await Deno.writeTextFile(
    `${dir}/app.log`,
    Array.from({ length: 30 }, (_, i) => `GET /a ${i}`).join("\n") + "\n",
  );
  const port = freePort();
  const token = "lines-in-token-0123456789";
  await using start = await TaskProcess.start("start", {
    args: ["--file", `${dir}/app.log`, "--no-docker"],
    env: { TAILWISE_DATA_DIR: `${dir}/data`, API_PORT: String(port), API_TOKEN: token },
  });
  try {
    await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${port}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      }).catch(() => null);
      if (r === null) return false;
      return _value(await r.text(), 'tailwise_lines_in_total{container="file:app.log"}') === 30;
    }, { timeoutMs: 30_000, what: "30 lines in" });
  } finally {
    await start.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
