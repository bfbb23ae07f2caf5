/**
 * Rates benchmark (`deno task bench rates`):
 *
 * - the cost of rate tracking on score throughput: one score replica takes a
 *   preloaded stream (four services whose models carry rate models) with and
 *   without its {@linkcode RateTracker} (counts into Redis, one round trip
 *   per batch beside the anomalies' append), five runs each, alternated;
 *   median lines/s and the overhead in %; and, steadier on a busy machine,
 *   the counting's own cost per 1,000-line batch (CPU, and with the Redis
 *   round trip) against scoring the batch;
 * - the time from the start of a silence and of a flood (one template ×20)
 *   to the rate anomaly in the anomalies stream, live: entries with real
 *   timestamps go through the log stream, the score consumer and the
 *   tracker's timer, with 5-second windows (the model's window; production
 *   uses one minute, so the figure in windows is what carries over).
 *
 * @module
 */

import { fieldsToAnomaly } from "../shared/ports/anomaly.ts";
import {
  bundleModel,
  learnRates,
  type TimedLine,
  trainDetector,
} from "../shared/detector/detector.ts";
import { entryToFields, type LogEntry } from "../shared/ports/log_entry.ts";
import { ModelCache } from "../shared/runtime/model_cache.ts";
import { RedisFeedbackStore } from "../shared/adapters/redis/redis_feedback_store.ts";
import { createRedisClient, RedisLogStream } from "../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../shared/adapters/redis/redis_model_registry.ts";
import { RedisRateStore } from "../shared/adapters/redis/redis_rate_store.ts";
import { StreamConsumer } from "../shared/runtime/stream_consumer.ts";
import { createScoreHandler } from "../functions/score/score.ts";
import { RateTracker } from "../functions/score/rate_tracker.ts";
import { startRedis, waitFor } from "../tests/harness/services.ts";

const SERVICES = ["web", "api", "worker", "db"];

function _line(c: string, i: number): string {
  switch (c) {
    case "web":
      return `10.0.${i % 9}.${i % 250} "GET /products/${i % 300} HTTP/1.1" 200 ${i % 9000} rt=0.0${
        i % 90 + 10
      }`;
    case "api":
      return JSON.stringify({ level: "info", msg: "request served", route: `/v1/r${i % 12}` });
    case "worker":
      return `job ${i} done in ${i % 900}ms queue=q${i % 4}`;
    default:
      return `LOG: duration: ${(i % 500) / 10} ms statement: SELECT * FROM t${i % 20}`;
  }
}

/**
 * Runs the rates benchmark.
 *
 * @param options where progress goes
 * @returns the figures
 */
export async function benchRates(
  options: { log: (msg: string) => void },
): Promise<Record<string, number | string>> {
  const figures: Record<string, number | string> = {};
  Object.assign(figures, await _throughput(options.log));
  Object.assign(figures, await _detection(options.log));
  return figures;
}

async function _throughput(log: (msg: string) => void): Promise<Record<string, number>> {
  await using redis = await startRedis();
  const client = createRedisClient(redis.url);
  const registry = new RedisModelRegistry(client);
  const feedback = new RedisFeedbackStore(client);
  await using stream = RedisLogStream.connect(redis.url);
  try {
    log("training four models with rate models");
    const now = Date.now();
    for (const c of SERVICES) {
      const history: TimedLine[] = Array.from({ length: 20_000 }, (_, i) => ({
        time: now - 86_400_000 + i * 4320,
        line: _line(c, i),
      }));
      const d = await trainDetector(history.map((h) => h.line));
      const rates = learnRates(d, history);
      await registry.put(c, bundleModel(d.toBytes(), rates.toBytes()), {
        lines: 20_000,
        threshold: d.info.threshold,
      });
    }
    const total = 100_000;
    log(`preloading ${total} entries`);
    for (let off = 0; off < total; off += 5000) {
      const batch: LogEntry[] = [];
      for (let i = off; i < off + 5000; i++) {
        const c = SERVICES[i % 4]!;
        batch.push({
          containerId: c,
          containerName: c,
          image: "bench",
          stream: "stdout",
          ts: new Date(now - 60_000 + Math.floor(i / 100)).toISOString(),
          seq: i,
          line: _line(c, (i * 7919) % 20_000),
        });
      }
      await stream.append("bench:logs", batch.map(entryToFields));
    }
    const runs: Record<"off" | "on", number[]> = { off: [], on: [] };
    const order = ["off", "on", "on", "off", "off", "on", "on", "off", "off", "on"] as const;
    for (const [k, mode] of order.entries()) {
      const group = `score-${k}`;
      await stream.createGroup("bench:logs", group);
      const models = new ModelCache(registry);
      const rates = mode === "on"
        ? new RateTracker(
          { store: new RedisRateStore(client, { prefix: `bench:rates:${k}` }), models, stream },
          { anomalyStream: "bench:anomalies" },
        )
        : null;
      const consumer = new StreamConsumer(
        stream,
        createScoreHandler({ models, stream, feedback, rates }, {
          anomalyStream: `bench:anomalies:${k}`,
        }),
        { stream: "bench:logs", group, consumer: "bench", deadLetterStream: "bench:dead" },
      );
      const stop = new AbortController();
      const t0 = performance.now();
      const run = consumer.run(stop.signal);
      await waitFor(async () => {
        const info = await stream.groupInfo("bench:logs", group);
        return info.lag === 0 && info.pending === 0;
      }, { timeoutMs: 300_000, intervalMs: 20, what: "score caught up" });
      const secs = (performance.now() - t0) / 1000;
      stop.abort();
      await run;
      runs[mode].push(total / secs);
      log(`  rates ${mode}: ${Math.round(total / secs)} lines/s`);
    }
    const mid = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
    const off = mid(runs.off), on = mid(runs.on);
    // The same cost measured directly (steadier on a busy machine): counting a
    // 1,000-line batch into Redis (one round trip) against scoring it, medians.
    // Scoring here is the cheapest case (one service, cached templates).
    log("per-batch cost: scoring 1,000 lines vs counting them");
    const models = new ModelCache(registry);
    const loaded = (await models.get("web"))!;
    const lines = Array.from({ length: 1000 }, (_, i) => _line("web", (i * 7919) % 20_000));
    const scored = loaded.detector.scoreBatch(lines);
    const counted = [{
      service: "web",
      times: scored.map((_, i) => now - 30_000 + i),
      templateIds: scored.map((s) => s.templateId),
    }];
    const tracker = new RateTracker(
      { store: new RedisRateStore(client, { prefix: "bench:rates:cost" }), models, stream },
      { anomalyStream: "bench:anomalies" },
    );
    // The counting itself without the store (CPU), and the store's one round trip.
    const noStore = new RateTracker({
      store: {
        add: () => Promise.resolve(true),
        read: () => Promise.resolve([]),
        claim: () => Promise.resolve(false),
        services: () => Promise.resolve(new Map()),
        [Symbol.asyncDispose]: () => Promise.resolve(),
      },
      models,
      stream,
    }, { anomalyStream: "bench:anomalies" });
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const scoreMs: number[] = [], countMs: number[] = [], cpuMs: number[] = [];
    for (let r = 0; r < 60; r++) {
      const t0 = performance.now();
      loaded.detector.scoreBatch(lines);
      scoreMs.push(performance.now() - t0);
      const t1 = performance.now();
      await tracker.countBatch(counted, `cost-${r}`);
      countMs.push(performance.now() - t1);
      const t2 = performance.now();
      await noStore.countBatch(counted, `cost-${r}`);
      cpuMs.push(performance.now() - t2);
    }
    const sMs = median(scoreMs), cMs = median(countMs), uMs = median(cpuMs);
    return {
      "score 1,000 lines (ms, median)": Math.round(sMs * 100) / 100,
      "count 1,000 lines, CPU only (ms, median)": Math.round(uMs * 1000) / 1000,
      "count 1,000 lines incl. the Redis round trip (ms, median)": Math.round(cMs * 100) / 100,
      "rate counting CPU vs scoring (%)": Math.round((uMs / sMs) * 1000) / 10,
      "score lines/s without rate tracking (median of 5)": Math.round(off),
      "score lines/s with rate tracking (median of 5)": Math.round(on),
      "rate tracking overhead (%)": Math.round((1 - on / off) * 1000) / 10,
      "rate tracking overhead target (%)": 10,
    };
  } finally {
    await registry[Symbol.asyncDispose]();
    client.disconnect();
  }
}

async function _detection(log: (msg: string) => void): Promise<Record<string, number>> {
  await using redis = await startRedis();
  const client = createRedisClient(redis.url);
  const registry = new RedisModelRegistry(client);
  const feedback = new RedisFeedbackStore(client);
  await using stream = RedisLogStream.connect(redis.url);
  const W = 5000;
  const perWindow = 20;
  const line = (i: number) =>
    i % 10 === 0
      ? `level=debug msg="cache hit" key=item:${i}`
      : `GET /api/items/${i % 40} 200 ${i % 90}ms user=${i % 7}`;
  try {
    log("training a model with 5-second windows on 3 hours of history");
    const now = Date.now();
    const history: TimedLine[] = [];
    for (let t = now - 3 * 3_600_000; t < now - W; t += W / perWindow) {
      history.push({ time: t, line: line(history.length) });
    }
    const d = await trainDetector(history.map((h) => h.line));
    const rates = learnRates(d, history, { windowMs: W, slotMinutes: 30 });
    await registry.put("svc", bundleModel(d.toBytes(), rates.toBytes()), {
      lines: history.length,
      threshold: d.info.threshold,
    });
    await stream.createGroup("det:logs", "score");
    const models = new ModelCache(registry);
    const tracker = new RateTracker(
      { store: new RedisRateStore(client, { prefix: "det:rates" }), models, stream },
      { anomalyStream: "det:anomalies", graceMs: 1000, tickMs: 250 },
    );
    const consumer = new StreamConsumer(
      stream,
      createScoreHandler({ models, stream, feedback, rates: tracker }, {
        anomalyStream: "det:anomalies",
      }),
      {
        stream: "det:logs",
        group: "score",
        consumer: "bench",
        deadLetterStream: "det:dead",
        blockMs: 100,
      },
    );
    const stop = new AbortController();
    const tasks = [consumer.run(stop.signal), tracker.run(stop.signal)];
    let mode = "normal" as "normal" | "silent" | "flood";
    let n = 0;
    const feeder = (async () => {
      while (!stop.signal.aborted) {
        const k = mode === "silent" ? 0 : 1;
        const batch: LogEntry[] = [];
        for (let j = 0; j < k; j++) {
          batch.push({
            containerId: "svc",
            containerName: "svc",
            image: "bench",
            stream: "stdout",
            ts: new Date().toISOString(),
            seq: n,
            line: line(n++),
          });
          if (mode === "flood") {
            // The cache template ×20: 19 more of it.
            for (let f = 0; f < 19; f++) {
              batch.push({
                ...batch[0]!,
                seq: n,
                line: `level=debug msg="cache hit" key=item:${n++}`,
              });
            }
          }
        }
        if (batch.length > 0) await stream.append("det:logs", batch.map(entryToFields));
        await new Promise((r) => setTimeout(r, W / perWindow));
      }
    })();
    const firstAnomaly = async (code: string, since: number): Promise<number> => {
      let found = NaN;
      await waitFor(async () => {
        const all = (await stream.range("det:anomalies")).map((m) =>
          fieldsToAnomaly(m.id, m.fields)
        );
        const hit = all.find((a) =>
          a.kind === "rate" && a.reasons.includes(code) &&
          Number(a.id.split("-")[0]) >= since
        );
        if (hit) found = Number(hit.id.split("-")[0]);
        return hit !== undefined;
      }, { timeoutMs: 60_000, intervalMs: 50, what: `${code} anomaly` });
      return found - since;
    };
    const out: Record<string, number> = {};
    try {
      log("normal traffic for 4 windows, then silence");
      await new Promise((r) => setTimeout(r, 4 * W));
      mode = "silent";
      const silenceAt = Date.now();
      const silenceMs = await firstAnomaly("silence", silenceAt);
      out["silence → anomaly (ms, 5 s windows)"] = silenceMs;
      out["silence → anomaly (windows)"] = Math.round((silenceMs / W) * 100) / 100;
      mode = "normal";
      log("normal again for 4 windows, then a flood of one template ×20");
      await new Promise((r) => setTimeout(r, 4 * W));
      mode = "flood";
      const floodAt = Date.now();
      const floodMs = await firstAnomaly("rate_spike", floodAt);
      out["flood ×20 → anomaly (ms, 5 s windows)"] = floodMs;
      out["flood ×20 → anomaly (windows)"] = Math.round((floodMs / W) * 100) / 100;
      out["grace after window end (ms)"] = 1000;
    } finally {
      stop.abort();
      await feeder;
      await Promise.all(tasks);
    }
    return out;
  } finally {
    await registry[Symbol.asyncDispose]();
    client.disconnect();
  }
}
