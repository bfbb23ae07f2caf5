import assert from "node:assert/strict";
import type { StreamMessage } from "../../../shared/ports/log_stream.ts";
import { RedisLogStream } from "../../../shared/adapters/redis/redis_log_stream.ts";
import {
  type BatchHandler,
  DEAD_LETTER_FIELDS,
  type GroupLost,
  isMissingGroupError,
  StreamConsumer,
  type StreamConsumerOptions,
} from "../../../shared/runtime/stream_consumer.ts";
import { suiteEnv, waitFor } from "../../harness/services.ts";

function _names() {
  const p = `consumer-test:${crypto.randomUUID()}`;
  return { stream: `${p}:logs`, deadLetterStream: `${p}:dead`, group: "g" };
}

function _messages(n: number, from = 0) {
  return Array.from({ length: n }, (_, i) => ({ i: String(from + i) }));
}

/** Runs a consumer until `until` holds, then aborts it and waits for it to stop. */
async function _runUntil(
  consumer: StreamConsumer,
  until: () => boolean | Promise<boolean>,
  what: string,
): Promise<void> {
  const ac = new AbortController();
  const running = consumer.run(ac.signal);
  try {
    await waitFor(until, { timeoutMs: 15_000, what });
  } finally {
    ac.abort();
    await running;
  }
}

const _done: BatchHandler = (batch) => Promise.resolve({ done: batch.map((m) => m.id) });

Deno.test("StreamConsumer reads its own pending entries before new ones", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  await log.createGroup(n.stream, n.group);
  const old = await log.append(n.stream, _messages(3));
  await log.readNew(n.stream, n.group, "c", { count: 3 }); // a previous run died here
  const fresh = await log.append(n.stream, _messages(4, 3));
  const seen: string[] = [];
  const deliveries: number[] = [];
  const consumer = new StreamConsumer(log, (batch) => {
    for (const m of batch) {
      seen.push(m.id);
      deliveries.push(m.deliveries);
    }
    return _done(batch, { signal: new AbortController().signal });
  }, { ...n, consumer: "c", blockMs: 100 });
  await _runUntil(consumer, () => seen.length >= 7, "all seven handled");
  assert.deepEqual(seen, [...old, ...fresh]);
  assert.deepEqual(deliveries, [2, 2, 2, 1, 1, 1, 1]);
  const status = await consumer.status();
  assert.equal(status.pending, 0);
  assert.equal(status.lag, 0);
  assert.equal(status.acked, 7);
  assert.equal(status.read, 7);
});

Deno.test("StreamConsumer acks only what the handler finished", async (t) => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  const ids = await log.append(n.stream, _messages(10));
  let calls = 0;
  const consumer = new StreamConsumer(log, (batch) => {
    calls++;
    // Finish the even ones; leave the odd ones unreported (unfinished).
    return Promise.resolve({
      done: batch.filter((m) => Number(m.fields.i) % 2 === 0).map((m) => m.id),
    });
  }, { ...n, consumer: "c", blockMs: 100, backoffMs: 10_000 });
  await _runUntil(consumer, () => calls >= 1 && consumer.counters.acked >= 5, "five acked");
  await t.step("the unfinished ones stay pending for the consumer", async () => {
    const pending = await log.readPending(n.stream, n.group, "c", { count: 100 });
    assert.deepEqual(pending.map((m) => m.id), ids.filter((_, i) => i % 2 === 1));
  });
  await t.step("the next run hands them over again and acks them", async () => {
    const second = new StreamConsumer(log, _done, { ...n, consumer: "c", blockMs: 100 });
    await _runUntil(second, () => second.counters.acked >= 5, "the rest acked");
    assert.equal((await log.groupInfo(n.stream, n.group)).pending, 0);
  });
});

Deno.test("StreamConsumer claims entries left idle by a dead consumer", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  await log.createGroup(n.stream, n.group);
  const ids = await log.append(n.stream, _messages(5));
  await log.readNew(n.stream, n.group, "dead", { count: 5 });
  const seen = new Map<string, number>();
  const consumer = new StreamConsumer(log, (batch) => {
    for (const m of batch) seen.set(m.id, m.deliveries);
    return _done(batch, { signal: new AbortController().signal });
  }, { ...n, consumer: "alive", blockMs: 50, claimIdleMs: 300, claimEveryMs: 50 });
  const t0 = Date.now();
  await _runUntil(consumer, () => seen.size >= 5, "the dead consumer's entries claimed");
  assert.ok(Date.now() - t0 >= 250, "not claimed before they were idle");
  assert.deepEqual([...seen.keys()].sort(), [...ids].sort());
  assert.ok([...seen.values()].every((d) => d === 2));
  assert.equal(consumer.counters.claimed, 5);
  assert.equal((await log.groupInfo(n.stream, n.group)).pending, 0);
});

Deno.test("StreamConsumer dead-letters an entry after maxDeliveries failures and the rest flows", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  const ids = await log.append(n.stream, _messages(20));
  const poison = ids[7]!;
  const attempts: number[] = [];
  const doneIds = new Set<string>();
  const consumer = new StreamConsumer(log, (batch) => {
    const failed = new Map<string, Error>();
    const done: string[] = [];
    for (const m of batch) {
      if (m.id === poison) {
        attempts.push(m.deliveries);
        failed.set(m.id, new Error(`cannot handle ${m.fields.i}`));
      } else {
        done.push(m.id);
        doneIds.add(m.id);
      }
    }
    return Promise.resolve({ done, failed });
  }, { ...n, consumer: "c", blockMs: 50, maxDeliveries: 3, backoffMs: 10 });
  await _runUntil(consumer, () => consumer.counters.deadLettered >= 1, "the poison dead-lettered");
  assert.equal(doneIds.size, 19);
  assert.deepEqual(attempts, [1, 2, 3]);
  const [dead, ...more] = await log.range(n.deadLetterStream);
  assert.equal(more.length, 0);
  assert.equal(dead?.fields.i, "7", "the original fields are kept");
  assert.equal(dead?.fields[DEAD_LETTER_FIELDS.error], "Error: cannot handle 7");
  assert.equal(dead?.fields[DEAD_LETTER_FIELDS.stream], n.stream);
  assert.equal(dead?.fields[DEAD_LETTER_FIELDS.group], n.group);
  assert.equal(dead?.fields[DEAD_LETTER_FIELDS.id], poison);
  assert.equal(dead?.fields[DEAD_LETTER_FIELDS.deliveries], "3");
  const status = await consumer.status();
  assert.equal(status.pending, 0, "the dead-lettered entry is acked");
  assert.equal(status.failed, 3);
  assert.equal(status.deadLettered, 1);
});

Deno.test("StreamConsumer dead-letters a rejected entry at once", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  const ids = await log.append(n.stream, _messages(5));
  const consumer = new StreamConsumer(log, (batch) =>
    Promise.resolve({
      done: batch.filter((m) => m.id !== ids[0]).map((m) => m.id),
      rejected: new Map([[ids[0]!, new TypeError("undecodable")]]),
    }), { ...n, consumer: "c", blockMs: 50 });
  await _runUntil(
    consumer,
    () => consumer.counters.acked >= 4 && consumer.counters.deadLettered >= 1,
    "settled",
  );
  const dead = await log.range(n.deadLetterStream);
  assert.deepEqual(dead.map((m) => m.fields[DEAD_LETTER_FIELDS.id]), [ids[0]]);
  assert.equal(dead[0]?.fields[DEAD_LETTER_FIELDS.deliveries], "1");
  assert.equal(dead[0]?.fields[DEAD_LETTER_FIELDS.error], "TypeError: undecodable");
});

Deno.test("StreamConsumer retries a batch whose handler threw, without acking or dead-lettering", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  await log.append(n.stream, _messages(4));
  let calls = 0;
  const errors: unknown[] = [];
  const consumer = new StreamConsumer(log, (batch) => {
    calls++;
    if (calls <= 6) return Promise.reject(new Error("store is down"));
    return _done(batch, { signal: new AbortController().signal });
  }, {
    ...n,
    consumer: "c",
    blockMs: 50,
    maxDeliveries: 2,
    backoffMs: 5,
    onError: (e) => errors.push(e),
  });
  await _runUntil(consumer, () => consumer.counters.acked >= 4, "acked after the outage");
  assert.equal(consumer.counters.deadLettered, 0);
  assert.equal(consumer.counters.handlerErrors, 6);
  assert.equal(errors.length, 6);
  assert.equal(await log.length(n.deadLetterStream), 0);
  assert.match((await consumer.status()).lastError ?? "", /store is down/);
});

Deno.test("StreamConsumer stops on abort, acking only what the handler finished", async (t) => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  await log.append(n.stream, _messages(10));
  const ac = new AbortController();
  let started!: () => void;
  const inHandler = new Promise<void>((r) => started = r);
  const consumer = new StreamConsumer(log, async (batch, { signal }) => {
    started();
    // Finish the first three, then wait for the signal and abandon the rest.
    await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
    return { done: batch.slice(0, 3).map((m: StreamMessage) => m.id) };
  }, { ...n, consumer: "c", blockMs: 5000 });
  const running = consumer.run(ac.signal);
  await inHandler;
  const t0 = Date.now();
  ac.abort();
  await running;
  await t.step("run() returns promptly", () => {
    assert.ok(Date.now() - t0 < 2000);
  });
  await t.step("only the finished ones are acked", async () => {
    assert.equal(consumer.counters.acked, 3);
    const info = await log.groupInfo(n.stream, n.group);
    assert.equal(info.pending, 7);
  });
  await t.step("an idle consumer stops during its blocking read", async () => {
    const idle = new StreamConsumer(log, _done, { ...n, consumer: "d", blockMs: 1000 });
    const ac2 = new AbortController();
    const run2 = idle.run(ac2.signal);
    await waitFor(() => idle.counters.batches === 0, { what: "idle" });
    await new Promise((r) => setTimeout(r, 100));
    const t1 = Date.now();
    ac2.abort();
    await run2;
    assert.ok(Date.now() - t1 < 2500, "stopped within about one blocking read");
  });
});

Deno.test("StreamConsumer rejects bad options", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const base: StreamConsumerOptions = { ..._names(), consumer: "c" };
  assert.throws(() => new StreamConsumer(log, _done, { ...base, batch: 0 }), RangeError);
  assert.throws(() => new StreamConsumer(log, _done, { ...base, maxDeliveries: 1.5 }), RangeError);
  assert.throws(() => new StreamConsumer(log, _done, { ...base, blockMs: -1 }), /blockMs -1/);
});

Deno.test("StreamConsumer with concurrency 2 overlaps batches and acks each message once", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  await log.append(n.stream, _messages(1000));
  let inHandler = 0;
  let overlap = 0;
  const seen = new Map<string, number>();
  const consumer = new StreamConsumer(log, async (batch) => {
    inHandler++;
    overlap = Math.max(overlap, inHandler);
    for (const m of batch) seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 20));
    inHandler--;
    return { done: batch.map((m) => m.id) };
  }, { ...n, consumer: "c", blockMs: 50, batch: 50, concurrency: 2 });
  await _runUntil(consumer, () => consumer.counters.acked >= 1000, "all acked");
  assert.equal(overlap, 2);
  assert.equal(seen.size, 1000);
  assert.ok([...seen.values()].every((c) => c === 1));
  assert.equal(consumer.counters.acked, 1000);
  assert.equal((await log.groupInfo(n.stream, n.group)).pending, 0);
});

Deno.test("StreamConsumer handles a read-ahead batch dropped by a claim round at once, not after claimIdleMs", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const names = _names();
  await log.append(names.stream, _messages(400));
  const seen = new Set<string>();
  // Claim rounds on almost every turn, full batches (so reads ahead happen), a
  // long idle time: an entry stranded in a dropped read-ahead would wait a minute.
  const consumer = new StreamConsumer(log, (batch) => {
    for (const m of batch) seen.add(m.fields.i!);
    return Promise.resolve({ done: batch.map((m) => m.id) });
  }, {
    ...names,
    consumer: "c1",
    batch: 10,
    blockMs: 10,
    claimIdleMs: 60_000,
    claimEveryMs: 1,
    readAhead: true,
  });
  await log.createGroup(names.stream, names.group);
  await _runUntil(consumer, async () => {
    const info = await log.groupInfo(names.stream, names.group);
    return seen.size === 400 && info.pending === 0 && info.lag === 0;
  }, "every entry handled and acked well before claimIdleMs");
  assert.equal(seen.size, 400);
});

Deno.test("StreamConsumer re-creates a group Redis lost (NOGROUP), reports it once, and goes on", async () => {
  await using log = RedisLogStream.connect(suiteEnv().redisUrl);
  const n = _names();
  const seen: string[] = [];
  const lost: GroupLost[] = [];
  const errors: unknown[] = [];
  const consumer = new StreamConsumer(log, (batch) => {
    for (const m of batch) seen.push(m.fields.i!);
    return _done(batch, { signal: new AbortController().signal });
  }, {
    ...n,
    consumer: "c",
    blockMs: 100,
    onGroupLost: (l) => lost.push(l),
    onError: (e) => errors.push(e),
  });
  await _runUntil(consumer, async () => {
    if (seen.length === 0 && (await log.length(n.stream)) === 0) {
      await log.append(n.stream, _messages(3));
    }
    if (seen.length === 3 && lost.length === 0) {
      // What an empty restart of Redis leaves: no stream, no group.
      await log.client.del(n.stream);
      await log.append(n.stream, _messages(2, 3));
    }
    return seen.length >= 5;
  }, "the entries after the loss handled");
  assert.deepEqual(seen, ["0", "1", "2", "3", "4"]);
  assert.equal(lost.length, 1);
  assert.equal(lost[0]!.group, "g");
  assert.match(lost[0]!.error, /NOGROUP|UNBLOCKED/);
  assert.equal(consumer.counters.groupsRecreated, 1);
  assert.deepEqual(errors, []);
  assert.ok(isMissingGroupError(new Error("NOGROUP No such key")));
  assert.ok(!isMissingGroupError(new Error("BUSYGROUP")));
});
