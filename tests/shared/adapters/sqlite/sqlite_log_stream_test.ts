import assert from "node:assert/strict";
import {
  NoGroupError,
  SqliteLogStream,
} from "../../../../shared/adapters/sqlite/sqlite_log_stream.ts";
import { SqliteDatabase } from "../../../../shared/adapters/sqlite/sqlite_database.ts";
import { StreamConsumer } from "../../../../shared/runtime/stream_consumer.ts";
import { waitFor } from "../../../harness/services.ts";
import { logStreamConformance } from "../../ports/log_stream_conformance.ts";

/** A stream on a database of its own in a temp dir removed on dispose. */
async function _openTemp(): Promise<SqliteLogStream> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-stream-" });
  const db = await SqliteDatabase.open(dir, { owner: true });
  const stream = new SqliteLogStream(db);
  return new Proxy(stream, {
    get(target, prop) {
      if (prop === Symbol.asyncDispose) {
        return async () => {
          await target[Symbol.asyncDispose]();
          db.close();
          await Deno.remove(dir, { recursive: true });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

logStreamConformance("SqliteLogStream", _openTemp);

async function _withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-stream-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SqliteLogStream keeps entries, groups, pending and state across a reopen", async () => {
  await _withDir(async (dir) => {
    let ids: string[];
    {
      await using log = await SqliteLogStream.open(dir);
      await log.createGroup("logs", "ingest");
      ids = await log.append(
        "logs",
        Array.from({ length: 5 }, (_, i) => ({ l: `line ${i} \u0000 é` })),
        { state: { "collect:checkpoint": "c-5" } },
      );
      await log.readNew("logs", "ingest", "a", { count: 3 });
      await log.ack("logs", "ingest", [ids[0]!]);
      await log.readNew("logs", "ingest", "b", { count: 1 });
      await log.appendOnce("anomalies", [{ key: "seen:1", fields: { e: "1" } }]);
    }
    await using log = await SqliteLogStream.open(dir);
    assert.equal(await log.length("logs"), 5);
    assert.equal((await log.range("logs"))[4]?.fields.l, "line 4 \u0000 é");
    assert.equal(await log.getState("collect:checkpoint"), "c-5");
    assert.deepEqual(await log.groupInfo("logs", "ingest"), { pending: 3, lag: 1, consumers: 2 });
    const a = await log.readPending("logs", "ingest", "a", { count: 10 });
    assert.deepEqual(a.map((m) => [m.id, m.deliveries]), [[ids[1], 2], [ids[2], 2]]);
    const next = await log.readNew("logs", "ingest", "a", { count: 10 });
    assert.deepEqual(next.map((m) => m.id), [ids[4]], "the group position survived");
    const more = await log.append("logs", [{ i: "5" }]);
    assert.ok(more[0]! > ids[4]! || more[0]!.length > ids[4]!.length, "ids keep ascending");
    assert.deepEqual(await log.appendOnce("anomalies", [{ key: "seen:1", fields: { e: "1" } }]), [
      null,
    ]);
  });
});

Deno.test("SqliteLogStream.readNew() on a missing group throws NoGroupError", async () => {
  await using log = await _openTemp();
  await assert.rejects(
    () => log.readNew("nope", "g", "c", { count: 1 }),
    (e: unknown) => e instanceof NoGroupError && e.message.startsWith("NOGROUP"),
  );
});

Deno.test("SqliteLogStream.readNew() with blockMs returns [] when the stream is closed", async () => {
  await _withDir(async (dir) => {
    const log = await SqliteLogStream.open(dir);
    await log.createGroup("s", "g");
    const read = log.readNew("s", "g", "c", { count: 1, blockMs: 30_000 });
    await log[Symbol.asyncDispose]();
    assert.deepEqual(await read, []);
  });
});

Deno.test("SqliteLogStream memory stays flat while the stream grows on disk", async () => {
  await _withDir(async (dir) => {
    await using log = await SqliteLogStream.open(dir);
    const batch = Array.from(
      { length: 1000 },
      (_, i) => ({ l: `GET /item/${i} 200 ${"x".repeat(100)}` }),
    );
    for (let i = 0; i < 20; i++) await log.append("logs", batch);
    const before = Deno.memoryUsage().rss;
    for (let i = 0; i < 100; i++) await log.append("logs", batch);
    const grown = Deno.memoryUsage().rss - before;
    assert.equal(await log.length("logs"), 120_000);
    // 100,000 entries of ~130 bytes are 13 MB of fields; in memory they would be several times that.
    assert.ok(grown < 8 * 2 ** 20, `RSS grew ${Math.round(grown / 2 ** 20)} MiB`);
  });
});

Deno.test("StreamConsumer on SqliteLogStream finishes every entry across a restart", async () => {
  await _withDir(async (dir) => {
    const options = {
      stream: "logs",
      group: "ingest",
      consumer: "ingest-1",
      deadLetterStream: "dead",
      batch: 20,
      blockMs: 50,
    };
    const done = new Set<string>();
    {
      await using log = await SqliteLogStream.open(dir);
      await log.append("logs", Array.from({ length: 50 }, (_, i) => ({ i: String(i) })));
      const ctl = new AbortController();
      // Finishes the even ones of the first batch only, then stops.
      const consumer = new StreamConsumer(log, (batch) => {
        const even = batch.filter((m) => Number(m.fields.i) % 2 === 0).map((m) => m.id);
        for (const m of batch) if (Number(m.fields.i) % 2 === 0) done.add(m.fields.i!);
        ctl.abort();
        return Promise.resolve({ done: even });
      }, options);
      await consumer.run(ctl.signal);
      assert.equal(done.size, 10);
    }
    await using log = await SqliteLogStream.open(dir);
    const ctl = new AbortController();
    const consumer = new StreamConsumer(log, (batch) => {
      for (const m of batch) done.add(m.fields.i!);
      return Promise.resolve({ done: batch.map((m) => m.id) });
    }, options);
    const running = consumer.run(ctl.signal);
    try {
      await waitFor(async () => {
        const info = await log.groupInfo("logs", "ingest");
        return info.pending === 0 && info.lag === 0;
      }, { what: "every entry acked" });
    } finally {
      ctl.abort();
      await running;
    }
    assert.equal(done.size, 50);
    assert.equal(await log.length("dead"), 0);
  });
});

Deno.test("SqliteLogStream.ack() of exactly one read's ids (its range fast path) counts only what was pending", async () => {
  await using log = await _openTemp();
  await log.createGroup("s", "g");
  await log.createGroup("s", "other");
  const ids = await log.append("s", Array.from({ length: 8 }, (_, i) => ({ i: String(i) })));
  await log.readNew("s", "other", "x", { count: 8 });
  const a = (await log.readNew("s", "g", "a", { count: 5 })).map((m) => m.id);
  const b = (await log.readNew("s", "g", "b", { count: 5 })).map((m) => m.id);
  assert.deepEqual([...a, ...b], ids);
  assert.equal(await log.ack("s", "g", [a[1]!]), 1);
  assert.equal(await log.ack("s", "g", a), 4, "the rest of the first read");
  assert.equal(await log.ack("s", "g", a), 0, "a second ack counts nothing");
  assert.deepEqual((await log.readPending("s", "g", "b", { count: 10 })).map((m) => m.id), b);
  assert.equal((await log.groupInfo("s", "other")).pending, 8, "another group is untouched");
  assert.equal(await log.ack("s", "g", b), 3);
  assert.equal((await log.groupInfo("s", "g")).pending, 0);
});
