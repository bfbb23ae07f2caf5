import assert from "node:assert/strict";
import { AppendBatcher } from "../../shared/sources/append_batcher.ts";
import { createRedisClient } from "../../shared/adapters/redis/redis_log_stream.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { type LogEntry, modelKey } from "../../shared/ports/log_entry.ts";
import { keyBeside, logShards, shardOf } from "../../shared/ports/log_shards.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { startRedisCluster, suiteEnv, waitFor } from "../harness/services.ts";
import { TaskProcess } from "../harness/task.ts";
import {
  countEntries,
  dropDatabase,
  testDatabase,
} from "../shared/adapters/influx/influx_helpers.ts";

const SHARDS = 2;
const CONTAINERS = ["shop-web-1", "shop-api-1", "billing-1", "search-1", "auth-1", "mail-1"];

function _line(i: number): string {
  return i % 97 === 13
    ? `ERROR request ${i} failed: connection refused`
    : `GET /api/items/${i % 50} 200 ${i % 300}ms user=${i % 17}`;
}

function _entry(i: number): LogEntry {
  const name = CONTAINERS[i % CONTAINERS.length]!;
  const ms = Date.now() - 60_000 + Math.floor(i / 10);
  return {
    containerId: `id-${name}`,
    containerName: name,
    image: "app:1",
    stream: "stdout",
    ts: new Date(ms).toISOString().replace("Z", `${String(i % 1e6).padStart(6, "0")}Z`),
    seq: 0,
    line: _line(i),
  };
}

Deno.test("on a 3-master Redis Cluster with 2 shards, 2 ingest and 2 score replicas (one of each SIGKILLed) store every line once and raise every anomaly once", async () => {
  await using cluster = await startRedisCluster();
  const influxUrl = suiteEnv().influxUrl;
  const db = testDatabase();
  const streams = logShards("tailwise:logs", SHARDS, true);
  await using log = RedisLogStream.connect(cluster.url, { cluster: true, name: "test-writer" });
  const redis = createRedisClient(cluster.url, { cluster: true, name: "test-reader" });
  const logger = createLogger("collect", { level: "warn", write: () => {} });
  // collect's writer: per shard a batcher with checkpoints and its append sequence in the slot.
  const batchers = streams.map((stream) =>
    new AppendBatcher(log, logger, {
      stream,
      batchLines: 200,
      flushMs: 5,
      sequenceKey: keyBeside(stream, "tailwise:collect:ckpt:", `seq:${crypto.randomUUID()}`),
      inFlight: 2,
    })
  );
  const perShard = new Array<number>(SHARDS).fill(0);
  const push = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const e = _entry(i);
      const shard = shardOf(modelKey(e), SHARDS);
      perShard[shard]!++;
      const stream = streams[shard]!;
      batchers[shard]!.push(
        e,
        keyBeside(stream, "tailwise:collect:ckpt:", e.containerId),
        `${e.ts} 1`,
      );
    }
  };
  const env = (instance: string): Record<string, string> => ({
    HOME: Deno.env.get("HOME") ?? "/tmp",
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    REDIS_URL: cluster.url,
    REDIS_CLUSTER: "true",
    LOG_STREAM_SHARDS: String(SHARDS),
    INFLUX_URL: influxUrl,
    INFLUX_DATABASE: db,
    INFLUX_RETENTION: "0",
    TAILWISE_INSTANCE: instance,
    CONSUMER_BLOCK_MS: "200ms",
    CONSUMER_CLAIM_IDLE_MS: "2s",
    CONSUMER_BATCH: "256",
    INGEST_BATCH_LINES: "256",
    LOG_LEVEL: "info",
  });
  // Each under the permission flags of its deno.json task.
  const ingestA = await TaskProcess.start("ingest", { env: env("ingest-a") });
  await using ingestB = await TaskProcess.start("ingest", { env: env("ingest-b") });
  const scoreA = await TaskProcess.start("score", { env: env("score-a") });
  await using scoreB = await TaskProcess.start("score", { env: env("score-b") });
  const all = [ingestA, ingestB, scoreA, scoreB];
  const total = 24_000;
  const errors =
    Array.from({ length: total }, (_, i) => _line(i)).filter((l) => l.startsWith("ERROR")).length;
  try {
    await waitFor(
      () => all.every((p) => p.lines.some((l) => /"(consuming|scoring)"/.test(l))),
      { timeoutMs: 60_000, what: `four replicas consuming\n${all.map((p) => p.lines.join("\n"))}` },
    );
    push(0, total / 2);
    await Promise.all(batchers.map((b) => b.whenWritten(b.pushed)));
    await waitFor(async () => await countEntries(influxUrl, db).catch(() => 0) >= 2000, {
      timeoutMs: 60_000,
      what: "the first rows",
    });
    // One replica of each dies while lines keep coming.
    await ingestA.stop("SIGKILL");
    await scoreA.stop("SIGKILL");
    push(total / 2, total);
    await Promise.all(batchers.map((b) => b.whenWritten(b.pushed)));
    assert.ok(perShard.every((n) => n > 0), `both shards got lines: ${perShard}`);
    await waitFor(async () => {
      for (const stream of streams) {
        for (const group of ["ingest", "score"]) {
          const info = await log.groupInfo(stream, group);
          if (info.pending !== 0 || info.lag !== 0) return false;
        }
      }
      return true;
    }, { timeoutMs: 120_000, intervalMs: 250, what: "every shard drained by both groups" });
    assert.equal(await countEntries(influxUrl, db), total, "every line once in InfluxDB");
    const anomalies = await redis.xrange("tailwise:anomalies", "-", "+") as [string, string[]][];
    const entryIds = anomalies.map(([, f]) => f[f.indexOf("entryId") + 1]!);
    assert.equal(anomalies.length, errors, "every anomaly once");
    assert.equal(new Set(entryIds).size, errors);
    assert.ok(entryIds.every((id) => /^\d+-\d+#\d+$/.test(id)), "anomalies keyed by line id");
    assert.equal(await log.length("tailwise:dead"), 0, "nothing dead-lettered");
  } finally {
    await Promise.all(batchers.map((b) => b.close(5000)));
    await Promise.all(all.map((p) => p.stop("SIGTERM")));
    redis.disconnect();
    await dropDatabase(influxUrl, db).catch(() => {});
  }
  const stopped = (p: TaskProcess) => p.records().find((r) => r.msg === "stopped") ?? {};
  assert.ok(Number(stopped(ingestB).acked) > 0, "the surviving ingest replica worked");
  assert.ok(Number(stopped(scoreB).acked) > 0, "the surviving score replica worked");
});
