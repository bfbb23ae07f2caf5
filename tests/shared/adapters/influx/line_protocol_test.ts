import assert from "node:assert/strict";
import type { LogEntry } from "../../../../shared/ports/log_entry.ts";
import {
  LineProtocolBuffer,
  LineProtocolEncoder,
  quoteField,
} from "../../../../shared/adapters/influx/line_protocol.ts";

Deno.test("quoteField escapes every quote and backslash, and nothing else", () => {
  const ref = (v: string) => `"${v.replace(/["\\]/g, "\\$&")}"`;
  const alphabet = ['"', "\\", "a", "é", "\n", "🙂"];
  for (let len = 0; len <= 5; len++) {
    const idx = new Array<number>(len).fill(0);
    for (;;) {
      const s = idx.map((i) => alphabet[i]).join("");
      assert.equal(quoteField(s), ref(s), JSON.stringify(s));
      let k = 0;
      while (k < len && ++idx[k]! === alphabet.length) idx[k++] = 0;
      if (k === len) break;
    }
  }
});

Deno.test("encodeTo writes the UTF-8 of encode()'s text: escapes, non-ASCII, lone surrogates, parts, raw, truncation", () => {
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const alphabet = ['"', "\\", "a", " ", ",", "=", "é", "\n", "\t", "🙂", "\ud800", "中"];
  const str = (n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join("");
  const utf8 = new TextEncoder();
  for (const maxFieldBytes of [16, 40, 64_000]) {
    const encoder = new LineProtocolEncoder({ maxFieldBytes, maxLineBytes: 200 + maxFieldBytes });
    // A small buffer, so that it grows too.
    const out = new LineProtocolBuffer(8);
    for (let i = 0; i < 3000; i++) {
      const e: LogEntry = {
        containerId: rnd() < 0.5 ? "c0ffee" : str(3),
        containerName: rnd() < 0.7 ? "web-1" : str(4),
        image: rnd() < 0.7 ? "nginx:1" : str(3),
        stream: rnd() < 0.5 ? "stdout" : "stderr",
        ts: `2026-01-01T00:00:0${Math.floor(rnd() * 9)}.${Math.floor(rnd() * 1e6)}Z`,
        seq: rnd() < 0.7 ? 0 : Math.floor(rnd() * 5),
        line: str(Math.floor(rnd() ** 3 * 400)),
      };
      if (rnd() < 0.2) e.key = str(3);
      if (rnd() < 0.2) e.service = str(3);
      if (rnd() < 0.2) e.task = str(3);
      if (rnd() < 0.2) e.node = str(3);
      if (rnd() < 0.1) e.truncated = true;
      if (rnd() < 0.1) {
        e.raw = Uint8Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256));
      }
      const want = encoder.encode(e);
      const start = out.length;
      assert.equal(encoder.encodeTo(e, out), want.points);
      const got = out.bytes.slice(start, out.length);
      assert.deepEqual(got, utf8.encode(want.text), JSON.stringify(e));
      assert.equal(got.length, want.bytes);
      if (out.length > 4000) out.length = 0;
    }
  }
});

Deno.test("encodeTo writes nothing for an entry whose timestamp cannot be stored", () => {
  const encoder = new LineProtocolEncoder();
  const out = new LineProtocolBuffer();
  assert.throws(
    () =>
      encoder.encodeTo({
        containerId: "c",
        containerName: "web-1",
        image: "i",
        stream: "stdout",
        ts: "not a time",
        seq: 0,
        line: "x",
      }, out),
    RangeError,
  );
  assert.equal(out.length, 0);
});
