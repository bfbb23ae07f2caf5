/**
 * The sharded log stream, side by side in one run: lines/s through 1 and 2
 * shards on one Redis, and through 2 shards on a 3-master Redis Cluster
 * (ioredis `Cluster`), so the cost of the Cluster client shows against a
 * single Redis. Each configuration runs the collect side (collect's
 * `AppendBatcher` per shard: packed appends with checkpoints and the append
 * sequence, 2 in flight) and then the consumer side (a `ShardedConsumer`
 * that decodes every line and acks, what ingest and score do around their
 * own work). Three passes; the better of each is kept (the machine is shared).
 *
 * @module
 */

import { AppendBatcher } from "../shared/sources/append_batcher.ts";
import { RedisLogStream } from "../shared/adapters/redis/redis_log_stream.ts";
import { modelKey, unpackEntries } from "../shared/ports/log_entry.ts";
import { keyBeside, logShards, shardOf } from "../shared/ports/log_shards.ts";
import { createLogger } from "../shared/runtime/logger.ts";
import { ShardedConsumer } from "../shared/runtime/sharded_consumer.ts";
import { startRedis, startRedisCluster, waitFor } from "../tests/harness/services.ts";
import { realisticEntries } from "./ingest_bench.ts";

/**
 * Runs the shard benchmark.
 *
 * @param options progress log; `lines` per configuration (default 500,000)
 * @returns the figures
 */
export async function benchShards(
  options: { log: (msg: string) => void; lines?: number },
): Promise<Record<string, number>> {
  const lines = options.lines ?? 500_000;
  const entries = realisticEntries(lines);
  const out: Record<string, number> = { lines };
  await using single = await startRedis();
  await using cluster = await startRedisCluster();
  const configs = [
    { name: "single_1_shard", url: single.url, cluster: false, shards: 1 },
    { name: "single_2_shards", url: single.url, cluster: false, shards: 2 },
    { name: "cluster_2_shards", url: cluster.url, cluster: true, shards: 2 },
  ];
  const logger = createLogger("bench", { level: "error", write: () => {} });
  for (let pass = 0; pass < 3; pass++) {
    for (const c of configs) {
      await using log = RedisLogStream.connect(c.url, { cluster: c.cluster });
      const base = `bench:shards:${pass}:${c.name}`;
      const streams = logShards(base, c.shards, c.cluster);
      const batchers = streams.map((stream) =>
        new AppendBatcher(log, logger, {
          stream,
          sequenceKey: keyBeside(stream, "bench:ckpt:", `seq:${crypto.randomUUID()}`),
          inFlight: 2,
        })
      );
      const t0 = performance.now();
      for (const e of entries) {
        const s = shardOf(modelKey(e), streams.length);
        const b = batchers[s]!;
        b.push(e, keyBeside(streams[s]!, "bench:ckpt:", e.containerId), `${e.ts} 1`);
        if (b.full) await b.whenRoom();
      }
      await Promise.all(batchers.map((b) => b.whenWritten(b.pushed)));
      const appendRate = lines / ((performance.now() - t0) / 1000);
      await Promise.all(batchers.map((b) => b.close(1000)));

      let decoded = 0;
      const consumer = new ShardedConsumer(
        log,
        (batch) => {
          for (const m of batch) decoded += unpackEntries(m.fields).length;
          return Promise.resolve({ done: batch.map((m) => m.id) });
        },
        streams,
        {
          group: "g",
          consumer: "c",
          deadLetterStream: `${base}:dead`,
          batch: 40,
          blockMs: 50,
        },
      );
      const stop = new AbortController();
      const t1 = performance.now();
      const run = consumer.run(stop.signal);
      await waitFor(() => decoded >= lines, {
        timeoutMs: 300_000,
        intervalMs: 2,
        what: `${c.name}: every line read`,
      });
      const readRate = lines / ((performance.now() - t1) / 1000);
      stop.abort();
      await run;
      for (const s of streams) await log.client.del(s);
      const k = c.name;
      out[`${k}_append_lines_per_s`] = Math.max(
        out[`${k}_append_lines_per_s`] ?? 0,
        Math.round(appendRate),
      );
      out[`${k}_read_ack_lines_per_s`] = Math.max(
        out[`${k}_read_ack_lines_per_s`] ?? 0,
        Math.round(readRate),
      );
      options.log(
        `${k} pass ${pass}: append ${Math.round(appendRate)}/s, read ${Math.round(readRate)}/s`,
      );
    }
  }
  const r = (a: string, b: string) => Math.round(out[a]! / out[b]! * 100) / 100;
  out.two_vs_one_shard_append = r(
    "single_2_shards_append_lines_per_s",
    "single_1_shard_append_lines_per_s",
  );
  out.two_vs_one_shard_read = r(
    "single_2_shards_read_ack_lines_per_s",
    "single_1_shard_read_ack_lines_per_s",
  );
  out.cluster_vs_single_append = r(
    "cluster_2_shards_append_lines_per_s",
    "single_2_shards_append_lines_per_s",
  );
  out.cluster_vs_single_read = r(
    "cluster_2_shards_read_ack_lines_per_s",
    "single_2_shards_read_ack_lines_per_s",
  );
  return out;
}
