import assert from "node:assert/strict";
import { AppendBatcher } from "../../../shared/sources/append_batcher.ts";
import { createLogger } from "../../../shared/runtime/logger.ts";
import { RedisLogStream } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { suiteEnv } from "../../harness/services.ts";
import { redisReader } from "../../functions/collect/helpers.ts";
import { type LogEntry, unpackEntries } from "../../../shared/ports/log_entry.ts";

const N = 20_000;

/** Entry number `i` of one container: its line is the number. */
function _numbered(i: number): LogEntry {
  return {
    containerId: "c",
    containerName: "c",
    image: "i",
    stream: "stdout",
    ts: "2026-11-24T12:00:00Z",
    seq: i,
    line: String(i),
  };
}

/** Pushes N numbered entries through a batcher while `disturb` runs, then reads them back. */
async function pushThrough(
  disturb: (redis: ReturnType<typeof redisReader>, stop: AbortSignal) => Promise<void>,
): Promise<{ numbers: number[]; checkpoint: string | null; warnings: number }> {
  const { redisUrl } = suiteEnv();
  const stream = `test:batcher:${crypto.randomUUID()}`;
  const ckpt = `test:batcher:ckpt:${crypto.randomUUID()}`;
  await using redis = redisReader(redisUrl);
  await using log = RedisLogStream.connect(redisUrl, { name: "batcher-under-test" });
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("collect", {
    level: "debug",
    write: (l) => lines.push(JSON.parse(l)),
  });
  const batcher = new AppendBatcher(log, logger, {
    stream,
    batchLines: 50,
    bufferLines: 2_000,
    flushMs: 5,
    maxBackoffMs: 200,
    sequenceKey: `test:batcher:seq:${crypto.randomUUID()}`,
    inFlight: 4,
  });
  const stop = new AbortController();
  const disturbing = disturb(redis, stop.signal);
  try {
    for (let i = 1; i <= N; i++) {
      batcher.push(_numbered(i), ckpt, String(i));
      if (batcher.full) await batcher.whenRoom();
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await batcher.whenWritten(N);
  } finally {
    stop.abort();
    await disturbing;
    assert.equal(await batcher.close(5_000), true, "everything written before close");
  }
  const numbers: number[] = [];
  let from = "-";
  for (;;) {
    const page = await redis.xrange(stream, from, "+", "COUNT", 5_000);
    for (const [, flat] of page) {
      const f: Record<string, string> = {};
      for (let k = 0; k + 1 < flat.length; k += 2) f[flat[k]!] = flat[k + 1]!;
      for (const e of unpackEntries(f)) numbers.push(Number(e.line));
    }
    if (page.length < 5_000) break;
    from = "(" + page[page.length - 1]![0];
  }
  const checkpoint = await redis.get(ckpt);
  await redis.del(stream, ckpt);
  return { numbers, checkpoint, warnings: lines.filter((l) => l.level === "warn").length };
}

const oneToN = Array.from({ length: N }, (_, i) => i + 1);

Deno.test("AppendBatcher with 4 appends in flight: every entry once, in order, while its connection is killed", async () => {
  let kills = 0;
  const { numbers, checkpoint } = await pushThrough(async (redis, stop) => {
    while (!stop.aborted) {
      await new Promise((r) => setTimeout(r, 15));
      // Replies of appends under way are lost; ioredis resends them.
      kills += Number(await redis.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"));
    }
  });
  assert.ok(kills >= 3, `the connection was killed ${kills} times`);
  assert.equal(numbers.length, N, "no entry lost or written twice");
  assert.deepEqual(numbers, oneToN);
  assert.equal(checkpoint, String(N));
});

Deno.test("AppendBatcher retries refused appends from the first unwritten one, in order", async () => {
  const { numbers, checkpoint, warnings } = await pushThrough(async (redis, stop) => {
    await new Promise((r) => setTimeout(r, 30));
    // Every write is refused (NOREPLICAS) for a while, whatever is under way.
    await redis.call("CONFIG", "SET", "min-replicas-to-write", "1");
    await new Promise((r) => setTimeout(r, 400));
    await redis.call("CONFIG", "SET", "min-replicas-to-write", "0");
    await new Promise<void>((resolve) => {
      if (stop.aborted) resolve();
      else stop.addEventListener("abort", () => resolve());
    });
  });
  assert.ok(warnings >= 1, "the refusal is reported");
  assert.deepEqual(numbers, oneToN);
  assert.equal(checkpoint, String(N));
});

Deno.test("AppendBatcher: a pipelined append refused because the one before it was still being retried is sent again, nothing discarded", async () => {
  const { redisUrl } = suiteEnv();
  const stream = `test:batcher:${crypto.randomUUID()}`;
  const ckpt = `test:batcher:ckpt:${crypto.randomUUID()}`;
  await using redis = redisReader(redisUrl);
  await using real = RedisLogStream.connect(redisUrl, { name: "batcher-under-test" });
  // The real stream, with the 3rd append held back 200 ms before it reaches
  // Redis, as the adapter's own retry after trimming a full Redis does: the
  // 4th, sent meanwhile, reaches Redis first and is refused out of order.
  let calls = 0;
  const log = new Proxy(real, {
    get(target, prop) {
      if (prop === "append") {
        return async (...args: Parameters<typeof real.append>) => {
          if (++calls === 3) await new Promise((r) => setTimeout(r, 200));
          return await target.append(...args);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const lost: unknown[] = [];
  const batcher = new AppendBatcher(log, createLogger("collect", { level: "error" }), {
    stream,
    batchLines: 10,
    flushMs: 5,
    sequenceKey: `test:batcher:seq:${crypto.randomUUID()}`,
    inFlight: 2,
    onStoreLost: (l) => lost.push(l),
  });
  const n = 100;
  for (let i = 1; i <= n; i++) {
    batcher.push(_numbered(i), ckpt, String(i));
  }
  await batcher.whenWritten(n);
  assert.equal(await batcher.close(5_000), true);
  assert.deepEqual(lost, [], "not taken for a stream that lost state");
  assert.equal(batcher.discarded, 0);
  const numbers = (await redis.xrange(stream, "-", "+")).flatMap(([, flat]) => {
    const f: Record<string, string> = {};
    for (let k = 0; k + 1 < flat.length; k += 2) f[flat[k]!] = flat[k + 1]!;
    return unpackEntries(f).map((e) => Number(e.line));
  });
  assert.deepEqual(numbers, Array.from({ length: n }, (_, i) => i + 1));
  assert.equal(await redis.get(ckpt), String(n));
  await redis.del(stream, ckpt);
});
