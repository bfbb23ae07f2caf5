import assert from "node:assert/strict";
import {
  decodeLine,
  entryToFields,
  fieldsToEntry,
  InvalidEntryError,
  lineBytes,
  type LogEntry,
  tsToNanos,
} from "../../../shared/ports/log_entry.ts";

Deno.test("entryToFields() and fieldsToEntry() round-trip every field", () => {
  const entry: LogEntry = {
    containerId: "abc123",
    containerName: "web-1",
    image: "nginx:1.27",
    service: "shop_web",
    task: "t1",
    node: "n1",
    stream: "stderr",
    ts: "2026-11-24T12:00:00.123456789Z",
    seq: 3,
    line: 'GET /a?b=1 "x"\t\\',
    truncated: true,
  };
  assert.deepEqual(fieldsToEntry(entryToFields(entry)), entry);
});

Deno.test("decodeLine() keeps invalid UTF-8 byte-exact in raw", () => {
  const bytes = new Uint8Array([0x61, 0xff, 0x00, 0xc3, 0x28, 0x62]);
  const decoded = decodeLine(bytes);
  assert.ok(decoded.raw);
  assert.equal(decoded.line, "a\uFFFD\u0000\uFFFD(b");
  const entry = fieldsToEntry(entryToFields({
    containerId: "c",
    containerName: "n",
    image: "i",
    stream: "stdout",
    ts: "2026-11-24T12:00:00Z",
    seq: 0,
    ...decoded,
  }));
  assert.deepEqual(lineBytes(entry), bytes);
});

Deno.test("decodeLine() keeps valid UTF-8 (NUL included) as text only", () => {
  const text = "héllo\u0000wörld 🎉";
  const decoded = decodeLine(new TextEncoder().encode(text));
  assert.equal(decoded.line, text);
  assert.equal(decoded.raw, undefined);
});

Deno.test("fieldsToEntry() names what is missing or malformed", () => {
  assert.throws(() => fieldsToEntry({ c: "x" }), InvalidEntryError);
  assert.throws(
    () => fieldsToEntry({ c: "c", n: "n", s: "stdin", t: "t", q: "0", l: "" }),
    /stream "stdin"; expected stdout or stderr/,
  );
  assert.throws(
    () => fieldsToEntry({ c: "c", n: "n", s: "stdout", t: "t", q: "-1", l: "" }),
    /seq "-1" is not a non-negative integer/,
  );
});

Deno.test("tsToNanos() reads Docker's nanosecond timestamps", () => {
  assert.equal(tsToNanos("1970-01-01T00:00:01.000000002Z"), 1_000_000_002n);
  assert.equal(tsToNanos("2026-11-24T12:00:00.5Z"), 1795521600_500_000_000n);
  assert.equal(tsToNanos("2026-11-24T13:00:00+01:00"), 1795521600_000_000_000n);
  assert.throws(() => tsToNanos("yesterday"), RangeError);
});
