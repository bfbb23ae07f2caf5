import assert from "node:assert/strict";
import { join } from "node:path";
import { DataDirLockedError } from "../../../../shared/adapters/embedded/embedded_data_dir_lock.ts";
import {
  EmbeddedLogStream,
  NoGroupError,
} from "../../../../shared/adapters/embedded/embedded_log_stream.ts";
import { StreamConsumer } from "../../../../shared/runtime/stream_consumer.ts";
import { waitFor } from "../../../harness/services.ts";
import { logStreamConformance } from "../../ports/log_stream_conformance.ts";

/** Opens an embedded stream in a fresh temp dir that is removed on dispose. */
async function _openTemp(): Promise<EmbeddedLogStream> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-stream-" });
  const stream = await EmbeddedLogStream.open(dir, { fsync: false });
  // Private fields need the real object as `this`, so methods are bound to it.
  return new Proxy(stream, {
    get(target, prop) {
      if (prop === Symbol.asyncDispose) {
        return async () => {
          await target[Symbol.asyncDispose]();
          await Deno.remove(dir, { recursive: true });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

logStreamConformance("EmbeddedLogStream", _openTemp);

async function _withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-stream-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("EmbeddedLogStream.open() after a restart keeps messages, groups, pending and state", async () => {
  await _withDir(async (dir) => {
    let ids: string[];
    {
      await using log = await EmbeddedLogStream.open(dir);
      await log.createGroup("logs", "ingest");
      ids = await log.append(
        "logs",
        Array.from({ length: 5 }, (_, i) => ({ i: String(i), l: `line ${i} \u0000 é` })),
        { state: { "collect:checkpoint": "c-5" } },
      );
      await log.readNew("logs", "ingest", "a", { count: 3 });
      await log.readNew("logs", "ingest", "b", { count: 1 });
      await log.ack("logs", "ingest", [ids[0]!]);
      await log.appendOnce("anomalies", [{ key: "seen:1", fields: { e: "1" } }]);
    }
    await using log = await EmbeddedLogStream.open(dir);
    assert.deepEqual((await log.range("logs")).map((m) => m.id), ids);
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

Deno.test("EmbeddedLogStream.compact() writes a snapshot that reopens to the same state", async () => {
  await _withDir(async (dir) => {
    const streams = join(dir, "streams");
    let ids: string[];
    {
      await using log = await EmbeddedLogStream.open(dir, { fsync: false });
      await log.createGroup("logs", "score");
      ids = await log.append("logs", Array.from({ length: 2500 }, (_, i) => ({ i: String(i) })), {
        maxLen: 2000,
      });
      await log.readNew("logs", "score", "a", { count: 10 });
      await log.append("logs", [], { state: { k: "v" } });
      await log.compact();
      assert.equal(await log.ack("logs", "score", [ids[505]!]), 1);
      await log.deleteState(["k"]);
      await log.append("logs", [], { state: { k2: "v2" } });
    }
    const names = [...Deno.readDirSync(streams)].map((e) => e.name).sort();
    assert.deepEqual(names, ["journal-1.jsonl", "snapshot-1.jsonl"]);
    await using log = await EmbeddedLogStream.open(dir, { fsync: false });
    assert.equal(await log.length("logs"), 2000);
    assert.equal((await log.range("logs", { count: 1 }))[0]?.id, ids[500]);
    assert.equal(await log.getState("k"), null);
    assert.equal(await log.getState("k2"), "v2");
    const info = await log.groupInfo("logs", "score");
    assert.deepEqual(info, { pending: 9, lag: 1990, consumers: 1 });
  });
});

Deno.test("EmbeddedLogStream.open() compacts by itself once the journal outgrows compactBytes", async () => {
  await _withDir(async (dir) => {
    {
      await using log = await EmbeddedLogStream.open(dir, { fsync: false, compactBytes: 10_000 });
      for (let i = 0; i < 50; i++) {
        await log.append("s", Array.from({ length: 10 }, () => ({ pad: "x".repeat(50) })), {
          maxLen: 100,
        });
      }
    }
    const names = [...Deno.readDirSync(join(dir, "streams"))].map((e) => e.name);
    assert.ok(names.some((n) => /^snapshot-\d+\.jsonl$/.test(n)), `snapshot in ${names}`);
    assert.equal(names.length, 2, `one snapshot and one journal: ${names}`);
    await using log = await EmbeddedLogStream.open(dir, { fsync: false });
    const length = await log.length("s");
    assert.ok(length >= 100 && length <= 200, `length ${length}`);
  });
});

Deno.test("EmbeddedLogStream.open() ignores a torn last line of the journal", async () => {
  await _withDir(async (dir) => {
    {
      await using log = await EmbeddedLogStream.open(dir);
      await log.append("s", [{ a: "1" }, { a: "2" }]);
    }
    const journal = join(dir, "streams", "journal-0.jsonl");
    const before = (await Deno.stat(journal)).size;
    await Deno.writeTextFile(journal, '["a","s",[["99999999999999-0",{"a":"tor', { append: true });
    {
      await using log = await EmbeddedLogStream.open(dir);
      assert.deepEqual((await log.range("s")).map((m) => m.fields.a), ["1", "2"]);
      assert.equal((await Deno.stat(journal)).size, before, "the torn tail is cut off");
      await log.append("s", [{ a: "3" }]);
    }
    await using log = await EmbeddedLogStream.open(dir);
    assert.deepEqual((await log.range("s")).map((m) => m.fields.a), ["1", "2", "3"]);
  });
});

Deno.test("EmbeddedLogStream.open() refuses a data dir owned by another live process", async () => {
  await _withDir(async (dir) => {
    const code = `
      import { EmbeddedLogStream } from ${
      JSON.stringify(
        import.meta.resolve("../../../../shared/adapters/embedded/embedded_log_stream.ts"),
      )
    };
      const log = await EmbeddedLogStream.open(${JSON.stringify(dir)});
      console.log("open");
      await new Response(Deno.stdin.readable).text();
      await log[Symbol.asyncDispose]();
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      const { value } = await reader.read();
      assert.equal(value?.trim(), "open");
      await assert.rejects(
        () => EmbeddedLogStream.open(dir),
        (e: unknown) =>
          e instanceof DataDirLockedError && e.pid === child.pid &&
          e.message.includes(`process ${child.pid}`),
      );
    } finally {
      await child.stdin.close();
      await reader.cancel();
      await child.status;
    }
    await using log = await EmbeddedLogStream.open(dir);
    assert.equal(await log.ping(), true, "the lock was released when the owner closed");
  });
});

Deno.test("EmbeddedLogStream.open() takes over the lock of a process that is gone", async () => {
  await _withDir(async (dir) => {
    const child = new Deno.Command("true").spawn();
    const { pid } = child;
    await child.status;
    await Deno.writeTextFile(
      join(dir, "tailwise.lock"),
      JSON.stringify({ pid, hostname: Deno.hostname(), startedAt: "earlier" }),
    );
    await using log = await EmbeddedLogStream.open(dir);
    assert.equal(await log.ping(), true);
    await assert.rejects(() => EmbeddedLogStream.open(dir), DataDirLockedError);
  });
});

Deno.test("EmbeddedLogStream.readNew() on a missing group throws NoGroupError", async () => {
  await using log = await _openTemp();
  await assert.rejects(
    () => log.readNew("nope", "g", "c", { count: 1 }),
    (e: unknown) => e instanceof NoGroupError && e.message.startsWith("NOGROUP"),
  );
});

Deno.test("EmbeddedLogStream.readNew() with blockMs returns [] when the stream is closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-stream-" });
  try {
    const log = await EmbeddedLogStream.open(dir);
    await log.createGroup("s", "g");
    const read = log.readNew("s", "g", "c", { count: 1, blockMs: 30_000 });
    await log[Symbol.asyncDispose]();
    assert.deepEqual(await read, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StreamConsumer on EmbeddedLogStream finishes every entry across a restart", async () => {
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
      await using log = await EmbeddedLogStream.open(dir);
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
    await using log = await EmbeddedLogStream.open(dir);
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
