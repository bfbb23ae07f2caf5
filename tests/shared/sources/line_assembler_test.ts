import assert from "node:assert/strict";
import {
  LineAssembler,
  type LineAssemblerOptions,
} from "../../../shared/sources/line_assembler.ts";

const enc = new TextEncoder();
const TS1 = "2026-11-24T14:24:02.645387950Z";
const TS2 = "2026-11-24T14:24:02.745387950Z";

interface Got {
  ts: string;
  bytes: number[];
  truncated: boolean;
}

function bytesOf(...parts: (string | Uint8Array)[]): Uint8Array {
  const arrays = parts.map((p) => typeof p === "string" ? enc.encode(p) : p);
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** Feeds records (framed) split at `cuts` within each record; collects lines. */
function framed(records: Uint8Array[], options: LineAssemblerOptions = {}, cut = 0): Got[] {
  const got: Got[] = [];
  const a = new LineAssembler(
    (ts, bytes, truncated) => got.push({ ts, bytes: [...bytes], truncated }),
    options,
  );
  for (const r of records) {
    if (cut > 0 && cut < r.length) {
      a.push(r.subarray(0, cut), false);
      a.push(r.subarray(cut), true);
    } else {
      a.push(r, true);
    }
  }
  a.end();
  return got;
}

/** Feeds a raw (TTY) stream cut at every `step` bytes. */
function raw(stream: Uint8Array, options: LineAssemblerOptions = {}, step = 0): Got[] {
  const got: Got[] = [];
  const a = new LineAssembler(
    (ts, bytes, truncated) => got.push({ ts, bytes: [...bytes], truncated }),
    { ...options, framed: false },
  );
  if (step <= 0) a.push(stream);
  else for (let i = 0; i < stream.length; i += step) a.push(stream.subarray(i, i + step));
  a.end();
  return got;
}

function line(ts: string, text: string | Uint8Array, truncated = false): Got {
  return { ts, bytes: [...(typeof text === "string" ? enc.encode(text) : text)], truncated };
}

Deno.test("LineAssembler splits the timestamp off each framed record", () => {
  const records = [bytesOf(`${TS1} one\n`), bytesOf(`${TS2} two\n`), bytesOf(`${TS2} \n`)];
  const want = [line(TS1, "one"), line(TS2, "two"), line(TS2, "")];
  for (let cut = 0; cut < 40; cut++) assert.deepEqual(framed(records, {}, cut), want, `cut ${cut}`);
});

Deno.test("LineAssembler gives every timestamp's exact text (fractions of any length, new seconds)", () => {
  const stamps = [
    "2026-11-24T14:24:02.000000001Z",
    "2026-11-24T14:24:02.000000010Z",
    "2026-11-24T14:24:02.9Z",
    "2026-11-24T14:24:02.12Z",
    "2026-11-24T14:24:03.045387950Z",
    "2026-11-24T14:24:03Z",
    "2026-11-24T14:24:03.999999999Z",
    "2026-11-24T14:24:03.0000000001Z",
    "2026-11-24T14:24:03.5+01:00",
    "2027-01-01T00:00:00.000000000Z",
    "2027-01-01T00:00:00.1a3Z",
  ];
  const records = stamps.map((ts, i) => bytesOf(`${ts} line ${i}\n`));
  const want = stamps.map((ts, i) => line(ts, `line ${i}`));
  for (let cut = 0; cut < 36; cut += 5) {
    assert.deepEqual(framed(records, {}, cut), want, `cut ${cut}`);
  }
});

Deno.test("LineAssembler joins Docker's 16 KiB partial records into one line", () => {
  for (const size of [16383, 16384, 16385, 100 * 1024]) {
    const text = "y".repeat(size);
    const records: Uint8Array[] = [];
    for (let at = 0; at < size; at += 16384) {
      const part = text.slice(at, at + 16384);
      records.push(
        bytesOf(`${TS1} ${part}${at + 16384 >= size && size % 16384 !== 0 ? "\n" : ""}`),
      );
    }
    if (size % 16384 === 0) records.push(bytesOf(`${TS1} \n`));
    const got = framed([...records, bytesOf(`${TS2} next\n`)], {}, 7);
    assert.equal(got.length, 2, `size ${size}`);
    assert.equal(got[0]!.bytes.length, size);
    assert.equal(got[0]!.ts, TS1);
    assert.equal(got[0]!.truncated, false);
    assert.deepEqual(got[1], line(TS2, "next"));
  }
});

Deno.test("LineAssembler keeps multi-byte UTF-8 split across records byte-exact", () => {
  const smile = enc.encode("\u{1F600}");
  const records = [
    bytesOf(`${TS1} a`, smile.subarray(0, 2)),
    bytesOf(`${TS1} `, smile.subarray(2), "b\n"),
  ];
  assert.deepEqual(framed(records, { partialBytes: 3 }), [line(TS1, "a\u{1F600}b")]);
});

Deno.test("LineAssembler keeps invalid UTF-8, NUL bytes and \\r", () => {
  const bad = new Uint8Array([0xff, 0x00, 0xc3, 0x28, 0x0d]);
  assert.deepEqual(framed([bytesOf(`${TS1} `, bad, "\n")]), [line(TS1, bad)]);
});

Deno.test("LineAssembler caps a line at maxLineBytes on a character boundary", () => {
  const max = 1024;
  const ascii = framed([bytesOf(`${TS1} ${"z".repeat(3000)}\n`), bytesOf(`${TS2} ok\n`)], {
    maxLineBytes: max,
  });
  assert.deepEqual(ascii, [line(TS1, "z".repeat(max), true), line(TS2, "ok")]);
  // "é" is two bytes: a cut inside it moves back before it.
  const text = "a" + "\u00e9".repeat(1000);
  for (const cut of [0, 5, 600]) {
    const got = framed([bytesOf(`${TS1} ${text}\n`)], { maxLineBytes: max }, cut);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.truncated, true);
    assert.equal(got[0]!.bytes.length, max - 1);
    assert.equal(
      new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(got[0]!.bytes)),
      text.slice(0, 512),
    );
  }
  // Truncation across partial records.
  const parts = [bytesOf(`${TS1} ${"q".repeat(800)}`), bytesOf(`${TS1} ${"q".repeat(800)}\n`)];
  assert.deepEqual(framed(parts, { maxLineBytes: max, partialBytes: 800 }), [
    line(TS1, "q".repeat(max), true),
  ]);
});

Deno.test("LineAssembler.end() hands on a last line without newline", () => {
  assert.deepEqual(framed([bytesOf(`${TS1} a\n`), bytesOf(`${TS2} tail`)]), [
    line(TS1, "a"),
    line(TS2, "tail"),
  ]);
});

Deno.test("LineAssembler ends a line at a short framed record without newline", () => {
  // A container's last output without "\n", then its next run's first line.
  assert.deepEqual(framed([bytesOf(`${TS1} last`), bytesOf(`${TS2} first\n`)]), [
    line(TS1, "last"),
    line(TS2, "first"),
  ]);
});

Deno.test("LineAssembler.discard() drops a started line", () => {
  const got: string[] = [];
  const a = new LineAssembler((_ts, b) => got.push(new TextDecoder().decode(b)), {
    partialBytes: 7,
  });
  a.push(bytesOf(`${TS1} partial`), true);
  assert.equal(a.pending, true);
  a.discard();
  assert.equal(a.pending, false);
  a.push(bytesOf(`${TS2} whole\n`), true);
  a.end();
  assert.deepEqual(got, ["whole"]);
});

Deno.test("LineAssembler reads TTY streams: records without frames, \\r kept", () => {
  const stream = bytesOf(`${TS1} one\r\n${TS2} two\r\n${TS2} x`);
  const want = [line(TS1, "one\r"), line(TS2, "two\r"), line(TS2, "x")];
  for (const step of [0, 1, 3, 31, 32]) {
    assert.deepEqual(raw(stream, {}, step), want, `step ${step}`);
  }
});

Deno.test("LineAssembler joins TTY partial records at partialBytes", () => {
  const p = 64;
  const long = "L".repeat(p * 2 + 10);
  const stream = bytesOf(
    `${TS1} ${long.slice(0, p)}${TS1} ${long.slice(p, 2 * p)}${TS1} ${long.slice(2 * p)}\r\n`,
    `${TS2} ${"E".repeat(p)}${TS2} \r\n`,
    `${TS2} short\r\n`,
  );
  const want = [line(TS1, long + "\r"), line(TS2, "E".repeat(p) + "\r"), line(TS2, "short\r")];
  for (const step of [0, 1, 7, 64]) {
    assert.deepEqual(raw(stream, { partialBytes: p }, step), want, `step ${step}`);
  }
  // No timestamp after partialBytes: the bytes are text.
  const odd = bytesOf(`${TS1} ${"a".repeat(p)}not-a-ts more\r\n`);
  assert.deepEqual(raw(odd, { partialBytes: p }, 5), [
    line(TS1, `${"a".repeat(p)}not-a-ts more\r`),
  ]);
});

Deno.test("LineAssembler without timestamps splits on newlines only", () => {
  const got = raw(bytesOf("a\nbb\r\nc"), { timestamps: false }, 1);
  assert.deepEqual(got, [line("", "a"), line("", "bb\r"), line("", "c")]);
});

Deno.test("LineAssembler throws on a record without a timestamp", () => {
  const a = new LineAssembler(() => {});
  assert.throws(
    () => a.push(enc.encode("x".repeat(100)), true),
    (e: unknown) => e instanceof RangeError && /expected a timestamp and a space/.test(e.message),
  );
  assert.throws(() => new LineAssembler(() => {}, { maxLineBytes: 0 }), RangeError);
});
