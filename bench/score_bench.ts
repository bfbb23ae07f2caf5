/**
 * Score benchmark (`deno task bench score`):
 *
 * - throughput: lines/s one score replica takes from a preloaded stream
 *   (four containers with trained models) until its group has caught up;
 * - the cost of the per-batch model check (`ModelCache.get` with the version
 *   unchanged: one Redis GET) per call and per line of a 1,000-line batch;
 * - latency from a line written by a container (Docker's timestamp) to its
 *   anomaly in the anomalies stream (the XADD time in its id), p50 and p99,
 *   with a real container writing about 1,000 and 10,000 lines/s, collect and
 *   score running as separate processes on a private dockerd and Redis; split
 *   at the time collect appended the line (collect's part, score's part).
 *
 * @module
 */

import { fieldsToAnomaly } from "../shared/ports/anomaly.ts";
import { trainDetector } from "../shared/detector/detector.ts";
import {
  type LogEntry,
  messageLineCount,
  messagesForLines,
  packEntries,
  unpackEntries,
} from "../shared/ports/log_entry.ts";
import { ModelCache } from "../shared/runtime/model_cache.ts";
import { RedisFeedbackStore } from "../shared/adapters/redis/redis_feedback_store.ts";
import { createRedisClient, RedisLogStream } from "../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../shared/adapters/redis/redis_model_registry.ts";
import { StreamConsumer } from "../shared/runtime/stream_consumer.ts";
import { createScoreHandler } from "../functions/score/score.ts";
import { startDocker, startRedis, waitFor } from "../tests/harness/services.ts";

const CONTAINERS = ["web", "api", "worker", "db"];

function _line(c: string, i: number): string {
  switch (c) {
    case "web":
      return `10.0.${i % 9}.${i % 250} "GET /products/${i % 300} HTTP/1.1" 200 ${i % 9000} rt=0.0${
        i % 90 + 10
      }`;
    case "api":
      return JSON.stringify({
        level: "info",
        msg: "request served",
        route: `/v1/r${i % 12}`,
        ms: i % 120,
      });
    case "worker":
      return `job ${i} done in ${i % 900}ms queue=q${i % 4}`;
    default:
      return `LOG: duration: ${(i % 500) / 10} ms statement: SELECT * FROM t${
        i % 20
      } WHERE id = ${i}`;
  }
}

/**
 * Runs the score benchmark.
 *
 * @param options where progress goes
 * @returns the figures
 */
export async function benchScore(
  options: { log: (msg: string) => void },
): Promise<Record<string, number | string>> {
  const figures: Record<string, number | string> = {};
  await using redis = await startRedis();
  const client = createRedisClient(redis.url);
  const registry = new RedisModelRegistry(client);
  const feedback = new RedisFeedbackStore(client);
  await using stream = RedisLogStream.connect(redis.url);
  try {
    options.log("training four models");
    for (const c of CONTAINERS) {
      const d = await trainDetector(Array.from({ length: 20_000 }, (_, i) => _line(c, i)));
      await registry.put(c, d.toBytes(), { lines: 20_000, threshold: d.info.threshold });
    }
    const total = 200_000;
    options.log(`preloading ${total} entries`);
    for (let off = 0; off < total; off += 5000) {
      const batch: LogEntry[] = [];
      for (let i = off; i < off + 5000; i++) {
        const c = CONTAINERS[i % 4]!;
        batch.push({
          containerId: c,
          containerName: c,
          image: "bench",
          stream: "stdout",
          ts: new Date().toISOString(),
          seq: i,
          line: _line(c, (i * 7919) % 20_000),
        });
      }
      // Packed, as collect writes them.
      await stream.append("bench:logs", packEntries(batch));
    }
    await stream.createGroup("bench:logs", "score");
    const models = new ModelCache(registry);
    const consumer = new StreamConsumer(
      stream,
      createScoreHandler({ models, stream, feedback }, { anomalyStream: "bench:anomalies" }),
      {
        stream: "bench:logs",
        group: "score",
        consumer: "bench",
        deadLetterStream: "bench:dead",
        // CONSUMER_BATCH's default, 1,000 lines, as score's main reads it.
        batch: messagesForLines(1000),
      },
    );
    const stop = new AbortController();
    const t0 = performance.now();
    const run = consumer.run(stop.signal);
    await waitFor(async () => {
      const info = await stream.groupInfo("bench:logs", "score");
      return info.lag === 0 && info.pending === 0;
    }, { timeoutMs: 300_000, intervalMs: 20, what: "score caught up" });
    const secs = (performance.now() - t0) / 1000;
    stop.abort();
    await run;
    figures["throughput lines/s (1 replica)"] = Math.round(total / secs);
    figures["throughput target lines/s"] = 50_000;
    figures["anomalies in throughput run"] = await stream.length("bench:anomalies");

    options.log("model check cost");
    const n = 5000;
    const c0 = performance.now();
    for (let i = 0; i < n; i++) await models.get(CONTAINERS[i % 4]!);
    const perCallUs = ((performance.now() - c0) * 1000) / n;
    figures["model check per batch (µs)"] = Math.round(perCallUs);
    figures["model check per line, 1000-line batch (µs)"] = perCallUs / 1000;
    const blob = (await registry.get("web")).blob;
    figures["model blob bytes (20k lines)"] = blob.length;
  } finally {
    await registry[Symbol.asyncDispose]();
    client.disconnect();
  }
  for (const rate of [1000, 10_000]) {
    Object.assign(figures, await _latency(rate, options.log));
  }
  return figures;
}

async function _latency(
  rate: number,
  log: (msg: string) => void,
): Promise<Record<string, number | string>> {
  log(`latency at ~${rate} lines/s`);
  await using redis = await startRedis();
  await using docker = await startDocker();
  const name = `lat-${rate}`;
  const client = createRedisClient(redis.url);
  const registry = new RedisModelRegistry(client);
  await using stream = RedisLogStream.connect(redis.url);
  const normal = (i: number) => `GET /api/items/${i % 40} 200 ${i % 90}ms user=${i % 7}`;
  const d = await trainDetector(Array.from({ length: 5000 }, (_, i) => normal(i)));
  await registry.put(name, d.toBytes(), { lines: 5000, threshold: d.info.threshold });
  const env = {
    REDIS_URL: redis.url,
    DOCKER_HOST: `unix://${docker.socketPath}`,
    LOG_LEVEL: "error",

    CONSUMER_BATCH: "1000",
  };
  const procs = ["collect", "score"].map((fn) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `functions/${fn}/main.ts`],
      env: { ...env, TAILWISE_INSTANCE: fn },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  // Bursts every 100 ms: rate/10 normal lines and one anomaly. The normal
  // lines are written once to a file, then each burst is one `cat` of it: a
  // shell loop echoing line by line reached only ~6,400 of 10,000 lines/s.
  // Burst n is paced against the clock (/proc/uptime, in centiseconds: read
  // without a process), sleeping only what is left of its 100 ms, so the
  // time to write a burst and start `sleep` does not stretch the period.
  const burst = Math.max(1, Math.round(rate / 10));
  const seconds = 20;
  try {
    await docker.docker([
      "run",
      "-d",
      "--name",
      name,
      docker.image,
      "sh",
      "-c",
      `seq 1 ${burst} | while read i; do ` +
      `echo "GET /api/items/$((i % 40)) 200 $((i % 90))ms user=$((i % 7))"; done > /tmp/burst; ` +
      `read t0 x < /proc/uptime; t0=\${t0%.*}\${t0#*.}; ` +
      `n=0; while [ $n -lt ${seconds * 10} ]; do cat /tmp/burst; ` +
      `n=$((n+1)); echo "checksum mismatch on segment $n: replica diverged"; ` +
      `read t x < /proc/uptime; t=\${t%.*}\${t#*.}; r=$((t0 + n * 10 - t)); ` +
      `if [ $r -gt 0 ]; then sleep 0.$((r / 10))$((r % 10)); fi; done`,
    ]);
    await waitFor(async () => {
      const out = await docker.docker(["inspect", "-f", "{{.State.Running}}", name]);
      return out === "false";
    }, { timeoutMs: 300_000, intervalMs: 500, what: "producer done" });
    // The last burst's anomaly can reach the stream just after the group
    // looks caught up: wait (a while) for every burst's anomaly, then for
    // the group, so none is left out of the figures by that race.
    const flagged = async () =>
      (await stream.range("tailwise:anomalies"))
        .filter((m) => fieldsToAnomaly(m.id, m.fields).line.startsWith("checksum mismatch"))
        .length;
    await waitFor(async () => await flagged() >= seconds * 10, {
      timeoutMs: 10_000,
      intervalMs: 100,
    })
      .catch(() => {});
    await waitFor(async () => {
      const info = await stream.groupInfo("tailwise:logs", "score");
      return info.lag === 0 && info.pending === 0 && (await stream.length("tailwise:logs")) > 0;
    }, { timeoutMs: 120_000, intervalMs: 100, what: "scored everything" });
    const all = await stream.range("tailwise:logs");
    const first = Date.parse(unpackEntries(all[0]!.fields)[0]!.ts);
    const end = Date.parse(unpackEntries(all.at(-1)!.fields).at(-1)!.ts);
    const lines = all.reduce((n, m) => n + messageLineCount(m.fields), 0);
    // When collect appended each anomaly line (its message's id): splits the
    // latency into collect's part (Docker, the multi-line grouper, the batcher)
    // and score's (the read, scoring, the anomaly's XADD).
    const appended = new Map<string, number>();
    for (const m of all) {
      for (const e of unpackEntries(m.fields)) {
        if (e.line.startsWith("checksum mismatch")) {
          appended.set(e.line, Number(m.id.split("-")[0]));
        }
      }
    }
    const anomalies = (await stream.range("tailwise:anomalies"))
      .map((m) => fieldsToAnomaly(m.id, m.fields))
      .filter((a) => a.line.startsWith("checksum mismatch"));
    const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
    const latencies = sorted(anomalies.map((a) => Number(a.id.split("-")[0]) - Date.parse(a.ts)));
    const toStream = sorted(anomalies.map((a) => appended.get(a.line)! - Date.parse(a.ts)));
    const inScore = sorted(
      anomalies.map((a) => Number(a.id.split("-")[0]) - appended.get(a.line)!),
    );
    const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    return {
      [`latency@${rate} achieved lines/s`]: Math.round(lines / ((end - first) / 1000)),
      [`latency@${rate} anomalies measured`]: latencies.length,
      [`latency@${rate} anomaly lines in the stream (of ${seconds * 10} written)`]: appended.size,
      [`latency@${rate} p50 (ms)`]: q(latencies, 0.5),
      [`latency@${rate} p99 (ms)`]: q(latencies, 0.99),
      [`latency@${rate} max (ms)`]: latencies.at(-1) ?? NaN,
      [`latency@${rate} line → stream (collect) p50 / p99 (ms)`]: `${q(toStream, 0.5)} / ${
        q(toStream, 0.99)
      }`,
      [`latency@${rate} stream → anomaly (score) p50 / p99 (ms)`]: `${q(inScore, 0.5)} / ${
        q(inScore, 0.99)
      }`,
    };
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.status));
    await docker.docker(["rm", "-f", name]).catch(() => {});
    await registry[Symbol.asyncDispose]();
    client.disconnect();
  }
}
