/**
 * The conformance suite of the {@linkcode LogStream} port: one set of tests
 * that every adapter (Redis, embedded) must pass. Call
 * {@linkcode logStreamConformance} from an adapter's test file with a factory
 * of fresh adapters; each test uses its own random stream names, so adapters
 * may share a backing service.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  AppendOutOfOrderError,
  type Fields,
  type LogStream,
  type StreamMessage,
} from "../../../shared/ports/log_stream.ts";
import { waitFor } from "../../harness/services.ts";

/** Options of {@linkcode logStreamConformance}. */
export interface LogStreamConformanceOptions {
  /**
   * Extra `Deno.test` options (e.g. `sanitizeOps: false` for clients with timers).
   * @default {}
   */
  testOptions?: Omit<Deno.TestDefinition, "name" | "fn">;
}

/**
 * Registers the conformance tests of the log stream port for one adapter.
 *
 * @param adapter the adapter's name, shown in test names
 * @param create makes a fresh, connected adapter; the suite disposes it
 * @param options extra test options
 */
export function logStreamConformance(
  adapter: string,
  create: () => Promise<LogStream> | LogStream,
  options: LogStreamConformanceOptions = {},
): void {
  const test = (name: string, fn: (log: LogStream, t: Deno.TestContext) => Promise<void>) => {
    Deno.test({
      ...options.testOptions,
      name: `${adapter}: LogStream ${name}`,
      fn: async (t) => {
        await using log = await create();
        await fn(log, t);
      },
    });
  };
  const key = (what: string) => `conformance:${crypto.randomUUID()}:${what}`;

  test("append() returns ids in order and range() gives the fields back exactly", async (log) => {
    const stream = key("s");
    const messages: Fields[] = [
      { a: "1", b: "two" },
      { empty: "", unicode: 'héllo 🙂 \u0000 \n\t\\ "quoted"' },
      { big: "x".repeat(200_000) },
      { lone: "\udfff".normalize() },
    ];
    const ids = await log.append(stream, messages);
    assert.equal(ids.length, messages.length);
    assert.deepEqual([...ids].sort(_compareIds), ids, "ids ascend");
    assert.equal(new Set(ids).size, ids.length, "ids are unique");
    const got = await log.range(stream);
    assert.deepEqual(got.map((m) => m.id), ids);
    assert.deepEqual(got.slice(0, 3).map((m) => m.fields), messages.slice(0, 3));
    assert.equal(await log.length(stream), messages.length);
    const more = await log.append(stream, [{ c: "3" }]);
    assert.ok(_compareIds(more[0]!, ids[ids.length - 1]!) > 0, "later appends get later ids");
    assert.deepEqual(await log.append(stream, []), []);
  });

  test("range() honours start, end, count and reverse", async (log) => {
    const stream = key("s");
    const ids = await log.append(stream, Array.from({ length: 10 }, (_, i) => ({ i: String(i) })));
    const all = await log.range(stream);
    assert.deepEqual(all.map((m) => m.fields.i), [
      "0",
      "1",
      "2",
      "3",
      "4",
      "5",
      "6",
      "7",
      "8",
      "9",
    ]);
    const mid = await log.range(stream, { start: ids[2], end: ids[5] });
    assert.deepEqual(mid.map((m) => m.fields.i), ["2", "3", "4", "5"]);
    const firstThree = await log.range(stream, { count: 3 });
    assert.deepEqual(firstThree.map((m) => m.fields.i), ["0", "1", "2"]);
    const lastTwo = await log.range(stream, { reverse: true, count: 2 });
    assert.deepEqual(lastTwo.map((m) => m.fields.i), ["9", "8"]);
    const revMid = await log.range(stream, { start: ids[2], end: ids[4], reverse: true });
    assert.deepEqual(revMid.map((m) => m.fields.i), ["4", "3", "2"]);
    assert.deepEqual(await log.range(key("missing")), []);
    assert.equal(await log.length(key("missing")), 0);
  });

  test("append() writes the state keys in the same step as the messages", async (log) => {
    const stream = key("s");
    const k1 = key("state1");
    const k2 = key("state2");
    assert.equal(await log.getState(k1), null);
    await log.append(stream, [{ a: "1" }], { state: { [k1]: "cursor-1", [k2]: "x" } });
    assert.equal(await log.getState(k1), "cursor-1");
    assert.equal(await log.getState(k2), "x");
    assert.equal(await log.length(stream), 1);
    await log.append(stream, [], { state: { [k1]: "cursor-2" } });
    assert.equal(await log.getState(k1), "cursor-2");
    assert.equal(await log.length(stream), 1, "a state-only append adds no message");
    await log.deleteState([k1, k2]);
    assert.equal(await log.getState(k1), null);
    assert.equal(await log.getState(k2), null);
    await log.deleteState([]);
  });

  test("append() with a sequence applies each number once and in order", async (log) => {
    const stream = key("s");
    const seq = key("seq");
    const k = key("ckpt");
    const batch = (n: number) =>
      log.append(stream, [{ n: String(n) }], {
        state: { [k]: `p${n}` },
        sequence: { key: seq, n },
      });
    // Pipelined: both calls are under way before either answers.
    const [a, b] = await Promise.all([batch(1), batch(2)]);
    assert.equal(a.length, 1);
    assert.equal(b.length, 1);
    // A resend of applied appends (a reply lost) writes nothing.
    assert.deepEqual(await batch(1), []);
    assert.deepEqual(await batch(2), []);
    assert.equal(await log.getState(seq), "2");
    // A gap writes nothing, not even its state keys.
    await assert.rejects(() => batch(4), (e: unknown) => {
      assert.ok(e instanceof AppendOutOfOrderError, String(e));
      assert.match(e.message, /append 4 after 2/);
      return true;
    });
    assert.equal(await log.getState(k), "p2");
    assert.equal((await batch(3)).length, 1);
    assert.equal((await batch(4)).length, 1);
    assert.deepEqual((await log.range(stream)).map((m) => m.fields.n), ["1", "2", "3", "4"]);
    assert.equal(await log.getState(k), "p4");
    // An absent key accepts only a first append: a later number means the
    // store lost the writer's state (restarted empty, or the key expired).
    const other = key("seq2");
    await assert.rejects(
      () =>
        log.append(stream, [{ n: "x" }], {
          state: { [k]: "lost" },
          sequence: { key: other, n: 7 },
        }),
      (e: unknown) => {
        assert.ok(e instanceof AppendOutOfOrderError, String(e));
        assert.match(e.message, /append 7 after none/);
        return true;
      },
    );
    assert.equal(await log.getState(k), "p4");
    assert.equal(await log.getState(other), null);
    assert.equal(
      (await log.append(stream, [{ n: "x" }], { sequence: { key: other, n: 1 } })).length,
      1,
    );
    assert.equal(await log.getState(other), "1");
    await assert.rejects(
      () => log.append(stream, [{ n: "y" }], { sequence: { key: other, n: 0 } }),
      RangeError,
    );
  });

  test("append() with maxLen trims the stream to about that length", async (log) => {
    const stream = key("s");
    for (let i = 0; i < 10; i++) {
      await log.append(
        stream,
        Array.from({ length: 100 }, (_, j) => ({ n: String(i * 100 + j) })),
        {
          maxLen: 100,
        },
      );
    }
    const length = await log.length(stream);
    assert.ok(length >= 100 && length < 1000, `length ${length} is about 100`);
    const [newest] = await log.range(stream, { reverse: true, count: 1 });
    assert.equal(newest?.fields.n, "999", "trimming drops the oldest");
    const [oldest] = await log.range(stream, { count: 1 });
    assert.ok(Number(oldest?.fields.n) > 0, "the oldest are gone");
  });

  test("createGroup() is idempotent and a new group starts at the beginning", async (log) => {
    const stream = key("s");
    await log.append(stream, [{ a: "before" }]);
    await log.createGroup(stream, "g");
    await log.createGroup(stream, "g");
    await log.append(stream, [{ a: "after" }]);
    const got = await log.readNew(stream, "g", "c1", { count: 10 });
    assert.deepEqual(got.map((m) => m.fields.a), ["before", "after"]);
    const fresh = key("fresh");
    await log.createGroup(fresh, "g");
    assert.equal(await log.length(fresh), 0, "createGroup makes the stream");
    assert.deepEqual(await log.readNew(fresh, "g", "c1", { count: 10 }), []);
  });

  test("readNew() delivers each message once per group, with deliveries 1", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    await log.createGroup(stream, "other");
    const ids = await log.append(stream, Array.from({ length: 7 }, (_, i) => ({ i: String(i) })));
    const a = await log.readNew(stream, "g", "a", { count: 3 });
    const b = await log.readNew(stream, "g", "b", { count: 10 });
    const again = await log.readNew(stream, "g", "a", { count: 10 });
    assert.deepEqual(a.map((m) => m.id), ids.slice(0, 3));
    assert.deepEqual(b.map((m) => m.id), ids.slice(3));
    assert.deepEqual(again, []);
    assert.ok([...a, ...b].every((m) => m.deliveries === 1));
    const other = await log.readNew(stream, "other", "a", { count: 10 });
    assert.deepEqual(other.map((m) => m.id), ids, "another group gets everything");
  });

  test("readNew() with blockMs waits for a message and returns early when one arrives", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    const t0 = Date.now();
    assert.deepEqual(await log.readNew(stream, "g", "a", { count: 10, blockMs: 300 }), []);
    assert.ok(Date.now() - t0 >= 250, "an empty blocking read waits about blockMs");
    const t1 = Date.now();
    const read = log.readNew(stream, "g", "a", { count: 10, blockMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    await log.append(stream, [{ a: "1" }]);
    const got = await read;
    assert.deepEqual(got.map((m) => m.fields.a), ["1"]);
    assert.ok(Date.now() - t1 < 5000, "the read returned when the message arrived");
  });

  test("readNew() with blockMs does not hold up acks and appends", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    const [id] = await log.append(stream, [{ a: "1" }]);
    await log.readNew(stream, "g", "a", { count: 10 });
    const blocked = log.readNew(stream, "g", "b", { count: 10, blockMs: 2000 });
    const t0 = Date.now();
    assert.equal(await log.ack(stream, "g", [id!]), 1);
    assert.ok(Date.now() - t0 < 1500, "the ack did not wait for the blocking read");
    await log.append(stream, [{ a: "2" }]);
    assert.equal((await blocked).length, 1);
  });

  test("readPending() returns only this consumer's pending, oldest first, counting deliveries", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    const ids = await log.append(stream, Array.from({ length: 5 }, (_, i) => ({ i: String(i) })));
    await log.readNew(stream, "g", "a", { count: 3 });
    await log.readNew(stream, "g", "b", { count: 2 });
    const first = await log.readPending(stream, "g", "a", { count: 10 });
    assert.deepEqual(first.map((m) => m.id), ids.slice(0, 3));
    assert.deepEqual(first.map((m) => m.fields.i), ["0", "1", "2"]);
    assert.deepEqual(first.map((m) => m.deliveries), [2, 2, 2], "a pending read is a delivery");
    const second = await log.readPending(stream, "g", "a", { count: 2 });
    assert.deepEqual(second.map((m) => m.id), ids.slice(0, 2), "count caps, oldest first");
    assert.deepEqual(second.map((m) => m.deliveries), [3, 3]);
    const b = await log.readPending(stream, "g", "b", { count: 10 });
    assert.deepEqual(b.map((m) => m.id), ids.slice(3));
    assert.deepEqual(await log.readPending(stream, "g", "nobody", { count: 10 }), []);
  });

  test("ack() removes messages from pending and counts only those that were pending", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    const ids = await log.append(stream, Array.from({ length: 4 }, (_, i) => ({ i: String(i) })));
    await log.readNew(stream, "g", "a", { count: 10 });
    assert.equal(await log.ack(stream, "g", [ids[0]!, ids[2]!]), 2);
    assert.equal(await log.ack(stream, "g", [ids[0]!]), 0, "a second ack counts nothing");
    assert.equal(await log.ack(stream, "g", []), 0);
    const left = await log.readPending(stream, "g", "a", { count: 10 });
    assert.deepEqual(left.map((m) => m.id), [ids[1], ids[3]]);
    assert.equal(await log.ack(stream, "g", ids), 2);
    assert.deepEqual(await log.readPending(stream, "g", "a", { count: 10 }), []);
    assert.equal(await log.length(stream), 4, "acking does not delete messages");
  });

  test("claimIdle() takes over messages idle long enough, counting the delivery", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    const ids = await log.append(stream, Array.from({ length: 6 }, (_, i) => ({ i: String(i) })));
    await log.readNew(stream, "g", "dead", { count: 6 });
    assert.deepEqual(
      await log.claimIdle(stream, "g", "alive", { minIdleMs: 60_000, count: 10 }),
      [],
      "nothing is idle for a minute yet",
    );
    await new Promise((r) => setTimeout(r, 150));
    const claimed: StreamMessage[] = [];
    await waitFor(async () => {
      claimed.push(...await log.claimIdle(stream, "g", "alive", { minIdleMs: 100, count: 4 }));
      return claimed.length >= 6;
    }, { timeoutMs: 5000, what: "all six messages claimed in batches of four" });
    assert.deepEqual(claimed.map((m) => m.id).sort(_compareIds), ids);
    assert.deepEqual(claimed.map((m) => m.fields.i).sort(), ["0", "1", "2", "3", "4", "5"]);
    assert.ok(claimed.every((m) => m.deliveries === 2), "a claim is a delivery");
    assert.deepEqual(await log.readPending(stream, "g", "dead", { count: 10 }), []);
    const mine = await log.readPending(stream, "g", "alive", { count: 10 });
    assert.deepEqual(mine.map((m) => m.id), ids);
    assert.ok(mine.every((m) => m.deliveries === 3));
    assert.deepEqual(
      await log.claimIdle(stream, "g", "third", { minIdleMs: 60_000, count: 10 }),
      [],
      "just-read messages are not idle",
    );
  });

  test("claimIdle() does not return acked messages", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    const ids = await log.append(stream, [{ a: "1" }, { a: "2" }]);
    await log.readNew(stream, "g", "dead", { count: 2 });
    await log.ack(stream, "g", [ids[0]!]);
    await new Promise((r) => setTimeout(r, 120));
    const claimed: StreamMessage[] = [];
    await waitFor(async () => {
      claimed.push(...await log.claimIdle(stream, "g", "alive", { minIdleMs: 100, count: 10 }));
      return claimed.length >= 1;
    }, { timeoutMs: 5000, what: "the unacked message claimed" });
    assert.deepEqual(claimed.map((m) => m.id), [ids[1]]);
  });

  test("groupInfo() reports pending, lag and consumers", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    assert.deepEqual(await log.groupInfo(stream, "g"), { pending: 0, lag: 0, consumers: 0 });
    const ids = await log.append(stream, Array.from({ length: 10 }, (_, i) => ({ i: String(i) })));
    let info = await log.groupInfo(stream, "g");
    assert.equal(info.pending, 0);
    assert.ok(info.lag === 10 || info.lag === null, `lag ${info.lag} is 10 or unknown`);
    await log.readNew(stream, "g", "a", { count: 4 });
    await log.readNew(stream, "g", "b", { count: 2 });
    info = await log.groupInfo(stream, "g");
    assert.equal(info.pending, 6);
    assert.ok(info.lag === 4 || info.lag === null, `lag ${info.lag} is 4 or unknown`);
    assert.equal(info.consumers, 2);
    await log.ack(stream, "g", ids.slice(0, 5));
    info = await log.groupInfo(stream, "g");
    assert.equal(info.pending, 1);
    await log.readNew(stream, "g", "a", { count: 10 });
    await log.ack(stream, "g", ids);
    info = await log.groupInfo(stream, "g");
    assert.deepEqual({ pending: info.pending, lag: info.lag }, { pending: 0, lag: 0 });
    const none = await log.groupInfo(key("missing"), "g");
    assert.equal(none.pending, 0);
  });

  test("readPending() skips messages trimmed away while pending", async (log) => {
    const stream = key("s");
    await log.createGroup(stream, "g");
    await log.append(stream, Array.from({ length: 50 }, (_, i) => ({ i: String(i) })));
    await log.readNew(stream, "g", "a", { count: 50 });
    for (let i = 0; i < 5; i++) {
      await log.append(stream, Array.from({ length: 200 }, () => ({ pad: "x" })), { maxLen: 10 });
    }
    const existing = new Set((await log.range(stream)).map((m) => m.id));
    const pending = await log.readPending(stream, "g", "a", { count: 100 });
    for (const m of pending) {
      assert.ok(existing.has(m.id), `pending ${m.id} still exists in the stream`);
      assert.ok(m.fields.i !== undefined, "a pending message comes with its fields");
    }
  });

  test("ping() answers true", async (log) => {
    assert.equal(await log.ping(), true);
  });
}

function _compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
