import assert from "node:assert/strict";
import { SqliteLogStream } from "../../../shared/adapters/sqlite/sqlite_log_stream.ts";
import { lineBytes, unpackEntries } from "../../../shared/ports/log_entry.ts";
import { silentLogger } from "../../../shared/runtime/logger.ts";
import { LineAssembler } from "../../../shared/sources/line_assembler.ts";
import {
  LineClock,
  SourcePipeline,
  type SourcePipelineOptions,
} from "../../../shared/sources/pipeline.ts";

const META = { containerId: "c1", containerName: "web", image: "web:1" };
const enc = new TextEncoder();

Deno.test("SourcePipeline: assembled lines become events, entries and checkpoints that never pass an open event", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-pipeline-" });
  const stream = await SqliteLogStream.open(dir);
  try {
    const pipeline = new SourcePipeline(stream, silentLogger(), {
      stream: "logs",
      maxLineBytes: 40,
      flushMs: 1,
      multilineFlushMs: 60_000,
    });
    const events: number[] = [];
    const sink = pipeline.channel<number>({
      checkpointKey: "ckpt:web",
      meta: META,
      checkpoint: (p) => `offset ${p}`,
      onEvent: (p) => events.push(p),
    });
    const clock = new LineClock();
    let end = 0;
    const assembler = pipeline.assembler((_ts, bytes, truncated) => {
      end = assembler.lineEnd;
      sink.line({ stream: "stdout", ...clock.stamp(0), bytes, truncated, position: end });
    }, { timestamps: false, stripCr: true });
    await t.step("a trace is one entry; the checkpoint is after its last line", async () => {
      assembler.push(enc.encode("a\r\nTraceback (most recent call last):\n  x\nErr: y\nnext\n"));
      // "next" starts an event that stays open: its line is not checkpointed.
      assert.ok(sink.pending);
      await pipeline.whenFlushed();
      const entries = (await stream.range("logs")).flatMap((m) => unpackEntries(m.fields));
      assert.deepEqual(entries.map((e) => e.line), [
        "a",
        "Traceback (most recent call last):\n  x\nErr: y",
      ]);
      assert.deepEqual(entries.map((e) => e.seq), [0, 1]);
      assert.equal(entries[1]!.truncated, undefined);
      assert.equal(await stream.getState("ckpt:web"), `offset ${events.at(-1)}`);
      assert.equal(events.at(-1), "a\r\nTraceback (most recent call last):\n  x\nErr: y\n".length);
    });
    await t.step("end() hands on the open event; long lines are cut and marked", async () => {
      assembler.push(enc.encode("0123456789".repeat(5) + "\n"));
      sink.end();
      await pipeline.whenFlushed();
      const entries = (await stream.range("logs")).flatMap((m) => unpackEntries(m.fields));
      assert.deepEqual(entries.slice(2).map((e) => [e.line, e.truncated ?? false]), [
        ["next", false],
        ["0123456789".repeat(4), true],
      ]);
      assert.equal(await stream.getState("ckpt:web"), `offset ${end}`);
    });
    await t.step("invalid UTF-8 is kept byte-exact in the entry", async () => {
      const bad = new Uint8Array([0x66, 0xff, 0x67]);
      sink.line({
        stream: "stderr",
        ts: "2026-01-01T00:00:00Z",
        seq: 0,
        bytes: bad,
        truncated: false,
        position: 99,
      });
      sink.end();
      await pipeline.whenFlushed();
      const last = (await stream.range("logs")).flatMap((m) => unpackEntries(m.fields)).at(-1)!;
      assert.deepEqual(lineBytes(last), bad);
      assert.equal(last.stream, "stderr");
    });
    assert.equal(await pipeline.close(5000), true);
  } finally {
    await stream[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A pipeline into an embedded stream in a temp dir, one channel (checkpoints
 * `line <n>`) and an assembler of plain lines numbered from 1; the dir goes
 * with the returned object.
 */
async function _numberedLines(options: Partial<SourcePipelineOptions>) {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-pipeline-" });
  const stream = await SqliteLogStream.open(dir);
  const pipeline = new SourcePipeline(stream, silentLogger(), {
    stream: "logs",
    flushMs: 1,
    ...options,
  });
  const sink = pipeline.channel<number>({
    checkpointKey: "ckpt:web",
    meta: META,
    checkpoint: (p) => `line ${p}`,
  });
  const clock = new LineClock();
  let n = 0;
  // One assembler buffer is reused for every line: a batch must copy.
  const assembler = pipeline.assembler((_ts, bytes, truncated) => {
    sink.line({ stream: "stdout", ...clock.stamp(0), bytes, truncated, position: ++n });
  }, { timestamps: false });
  return {
    stream,
    pipeline,
    sink,
    assembler,
    lines: async () =>
      (await stream.range("logs")).flatMap((m) => unpackEntries(m.fields)).map((e) => e.line),
    async [Symbol.asyncDispose]() {
      await pipeline.close(1000);
      await stream[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("SourceChannel.batch decodes a read's lines at once and keeps a bad line's bytes alone", async () => {
  await using t = await _numberedLines({ multiline: "off" });
  const reads: Uint8Array[] = [
    enc.encode("plain\nüñíçødé ✓\n\uFEFFwith a BOM\n"),
    new Uint8Array([...enc.encode("ok\n"), 0x61, 0xff, 0x62, 0x0a, ...enc.encode("after\n")]),
    enc.encode("a real \uFFFD stays\n"),
  ];
  for (const r of reads) t.sink.batch(() => t.assembler.push(r));
  await t.pipeline.whenFlushed();
  const entries = (await t.stream.range("logs")).flatMap((m) => unpackEntries(m.fields));
  assert.deepEqual(entries.map((e) => e.line), [
    "plain",
    "üñíçødé ✓",
    "with a BOM",
    "ok",
    "a\uFFFDb",
    "after",
    "a real \uFFFD stays",
  ]);
  assert.deepEqual(entries.map((e) => e.raw === undefined ? null : [...e.raw]), [
    null,
    null,
    null,
    null,
    [0x61, 0xff, 0x62],
    null,
    null,
  ]);
  assert.equal(await t.stream.getState("ckpt:web"), "line 7");
});

Deno.test("SourceChannel: a plain event after an error line is written after the quiet hold, not the flush", async () => {
  await using t = await _numberedLines({ multilineFlushMs: 5_000, multilineQuietMs: 30 });
  const t0 = Date.now();
  // The error line arms the 5 s flush; the plain line after it needs only 30 ms.
  t.sink.batch(() => t.assembler.push(enc.encode("ERROR request failed\nGET /b 200\n")));
  while ((await t.lines()).length < 2 && Date.now() - t0 < 3_000) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(await t.lines(), ["ERROR request failed", "GET /b 200"]);
  assert.ok(Date.now() - t0 < 1_000, `written after ${Date.now() - t0} ms`);
});

Deno.test("LineClock orders lines read in the same millisecond", () => {
  const clock = new LineClock();
  assert.deepEqual(clock.stamp(1000), { ts: "1970-01-01T00:00:01.000Z", seq: 0 });
  assert.deepEqual(clock.stamp(1000), { ts: "1970-01-01T00:00:01.000Z", seq: 1 });
  assert.deepEqual(clock.stamp(1001), { ts: "1970-01-01T00:00:01.001Z", seq: 0 });
});

Deno.test("LineAssembler.emitLongLines hands on an over-long line before its end and skips the rest", () => {
  const got: [string, boolean, number][] = [];
  const dec = new TextDecoder();
  const a: LineAssembler = new LineAssembler((_ts, b, t) => {
    got.push([dec.decode(b), t, a.lineEnd]);
  }, { timestamps: false, maxLineBytes: 4, emitLongLines: true });
  a.push(enc.encode("ab\nxxxxxx"));
  assert.deepEqual(got, [["ab", false, 3], ["xxxx", true, 9]]);
  a.push(enc.encode("yy\ncd\n"));
  assert.deepEqual(got.slice(2), [["cd", false, 15]]);
  assert.equal(a.fed, 15);
});
