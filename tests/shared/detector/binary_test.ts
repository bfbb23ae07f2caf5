import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "../../../shared/detector/binary.ts";

Deno.test("ByteReader.str() reads ASCII, non-ASCII, empty and long strings as TextDecoder does", () => {
  const strings = [
    "",
    "a",
    "GET /index.html HTTP/1.1",
    "\u0001leaf\u0001key",
    "héllo wörld",
    "日本語のログ",
    "emoji 🙂 at the end",
    "\uFEFFbom first",
    "x".repeat(64),
    "y".repeat(65) + "é",
    "z".repeat(1000),
    "\u007f del and \u0000 nul",
  ];
  const w = new ByteWriter();
  for (const s of strings) w.str(s);
  w.u8(7);
  const body = w.finish();
  // Read from inside a larger buffer, as a model's frame does.
  const framed = new Uint8Array(body.length + 5);
  framed.set(body, 3);
  const r = new ByteReader(framed, 3, 3 + body.length);
  // Exactly what TextDecoder gives (which drops a leading BOM).
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  for (const s of strings) assert.equal(r.str(), decoder.decode(encoder.encode(s)));
  assert.equal(r.u8(), 7);
});
