import assert from "node:assert/strict";
import {
  decodeLine,
  entryToFields,
  fieldsToEntry,
  InvalidEntryError,
  lineBytes,
  lineId,
  type LogEntry,
  MAX_PACKED_BYTES,
  messageLineCount,
  PACKED_VERSION,
  packEntries,
  tsToNanos,
  unpackEntries,
  unpackMessage,
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

function _e(container: string, i: number, more: Partial<LogEntry> = {}): LogEntry {
  return {
    containerId: `id-${container}`,
    containerName: container,
    image: "img:1",
    stream: i % 3 === 0 ? "stderr" : "stdout",
    ts: `2026-11-24T12:00:00.${String(i).padStart(9, "0")}Z`,
    seq: i % 2,
    line: `line ${i} of ${container} "q" \\ \n next`,
    ...more,
  };
}

Deno.test("packEntries() writes one message per container and unpackEntries() reads every line back", () => {
  const entries: LogEntry[] = [];
  for (let i = 0; i < 300; i++) {
    entries.push(_e(i % 2 === 0 ? "a" : "b", i, i === 7 ? { truncated: true } : {}));
  }
  entries.push(_e("a", 400, { service: "svc", task: "t", node: "n" }));
  entries.push(_e("a", 401, { ...decodeLine(new Uint8Array([0x61, 0xff])) }));
  const messages = packEntries(entries);
  // 150 lines of a and of b: two messages each (128 + 22); a's metadata changes for line 400
  // and changes back for 401: one message each, in order.
  assert.equal(messages.length, 6);
  assert.ok(messages.every((m) => m.v === PACKED_VERSION));
  const back = messages.flatMap(unpackEntries);
  const key = (e: LogEntry) => `${e.containerName} ${e.ts}`;
  const sorted = (l: LogEntry[]) => [...l].sort((x, y) => key(x).localeCompare(key(y)));
  assert.deepEqual(sorted(back), sorted(entries));
  // Per container, the order is kept.
  for (const c of ["a", "b"]) {
    assert.deepEqual(
      back.filter((e) => e.containerName === c).map((e) => e.ts),
      entries.filter((e) => e.containerName === c).map((e) => e.ts),
    );
  }
  assert.deepEqual(
    lineBytes(back.find((e) => e.ts.endsWith("401Z"))!),
    new Uint8Array([0x61, 0xff]),
  );
  assert.equal(messages.reduce((n, m) => n + messageLineCount(m), 0), entries.length);
});

Deno.test("packEntries() caps a message's bytes and puts a huge line alone", () => {
  const big = "x".repeat(MAX_PACKED_BYTES + 10);
  const messages = packEntries([_e("a", 1), _e("a", 2, { line: big }), _e("a", 3)]);
  assert.deepEqual(messages.map(messageLineCount), [1, 1, 1]);
  assert.equal(unpackEntries(messages[1]!)[0]!.line, big);
});

Deno.test("packed messages carry their line count in m; messages without it are decoded", () => {
  const [packed] = packEntries([_e("a", 1), _e("a", 2), _e("a", 3)]);
  assert.equal(packed!.m, "3");
  assert.equal(messageLineCount(packed!), 3);
  // A message written before m existed, and one whose m is not a count.
  const { m: _, ...older } = packed!;
  assert.equal(messageLineCount(older), 3);
  assert.equal(messageLineCount({ ...packed!, m: "x" }), 3);
  assert.equal(unpackEntries(older).length, 3);
});

Deno.test("unpackMessage() gives packed lines <id>#<n> and single-line messages their id", () => {
  const [packed] = packEntries([_e("a", 1), _e("a", 2)]);
  assert.deepEqual(unpackMessage("5-0", packed!).map((l) => l.id), ["5-0#0", "5-0#1"]);
  const old = entryToFields(_e("a", 1));
  const lines = unpackMessage("6-0", old);
  assert.deepEqual(lines.map((l) => l.id), ["6-0"]);
  assert.deepEqual(lines[0]!.entry, _e("a", 1));
  assert.equal(lineId("6-0", 0, false), "6-0");
  assert.equal(messageLineCount(old), 1);
});

Deno.test("unpackEntries() names what is wrong with a packed message", () => {
  assert.throws(() => unpackEntries({ v: "9", c: "c", n: "n", p: "[]" }), /version "9"/);
  assert.throws(() => unpackEntries({ v: "2", c: "c", p: "[]" }), InvalidEntryError);
  assert.throws(() => unpackEntries({ v: "2", c: "c", n: "n", p: "[1,2" }), /p is not JSON/);
  assert.throws(
    () => unpackEntries({ v: "2", c: "c", n: "n", p: '["t", -1, 0, "l"]' }),
    /line 0 is \["t",-1,0,"l"\]; expected \[ts, seq >= 0, 0\|1, line\]/,
  );
});
