import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "../../../shared/detector/binary.ts";
import {
  CODE,
  COUNTER,
  describeFinding,
  IDENTIFIER,
  SHAPE_CLASSES,
  shapeOf,
  type SlotFinding,
  SlotModel,
} from "../../../shared/detector/slot_model.ts";

function train(values: readonly string[]): SlotModel {
  const m = new SlotModel();
  for (const v of values) m.add(v, 0, v.length, /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : NaN);
  m.finish();
  return m;
}

function check(m: SlotModel, v: string, self: 0 | 1 = 0): { strength: number; why: string } {
  const out: SlotFinding = { strength: 0, code: 0, a: 0, b: 0, c: 0, d: 0 };
  m.check(v, 0, v.length, /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : NaN, self, out);
  return { strength: out.strength, why: out.strength > 0 ? describeFinding(out, v) : "" };
}

Deno.test("SlotModel judges a code-like number slot as a category: 502 is new, 404 is not", () => {
  const statuses = Array.from({ length: 2000 }, (_, i) => ["200", "200", "304", "404"][i % 4]!);
  const m = train(statuses);
  assert.ok(m.kind & CODE);
  const bad = check(m, "502");
  assert.equal(bad.why, "never seen here");
  assert.ok(bad.strength >= 0.75, String(bad.strength));
  assert.equal(check(m, "404").strength, 0);
});

Deno.test("SlotModel keeps the shapes of a many-valued slot: `..` and quotes are new, a new id is not", () => {
  const paths = Array.from({ length: 3000 }, (_, i) => `/api/v1/products/${1000 + i}`);
  const m = train(paths);
  assert.equal(m.categories, null);
  assert.equal(check(m, "/api/v1/products/99999").strength, 0);
  const traversal = check(m, "/api/v1/products/..%2f..%2fetc%2fpasswd");
  assert.ok(traversal.strength >= 0.85, String(traversal.strength));
  assert.match(traversal.why, /shape never seen/);
  assert.match(traversal.why, /\.\./);
  assert.ok(check(m, "/api/v1/products/1'").strength >= 0.85);
  const long = check(m, "/api/v1/products/" + "7".repeat(5000));
  assert.match(long.why, /characters, longest seen/);
});

Deno.test("SlotModel learns a slot's words while they stay few: a scanner's name is new", () => {
  const uas = Array.from(
    { length: 2000 },
    (_, i) =>
      [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
      ][i % 2]! + ` build/${i}`,
  );
  const m = train(uas);
  assert.ok(m.words !== null);
  assert.equal(check(m, uas[7]!.replace("build/7", "build/99999")).strength, 0);
  const scanner = check(m, "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:004283) build/1");
  assert.match(scanner.why, /word never seen here \((Nikto|Evasions|None|Test)\)/);
  assert.ok(scanner.strength >= 0.5);
});

Deno.test("SlotModel: counters and identifiers are never out of range for their size", () => {
  const counter = train(Array.from({ length: 500 }, (_, i) => String(i + 1)));
  assert.ok(counter.kind & COUNTER);
  assert.equal(check(counter, "5000").strength, 0);
  const ids = train(Array.from({ length: 500 }, (_, i) => String((i * 7919) % 100003)));
  assert.ok(ids.kind & IDENTIFIER);
  assert.equal(check(ids, "9999999").strength, 0);
  // Measurements (decimals) are neither: their range still counts elsewhere.
  const ms = train(
    Array.from({ length: 500 }, (_, i) => (1 + ((i * 7919) % 401) / 10).toFixed(3)),
  );
  assert.equal(ms.kind & (COUNTER | IDENTIFIER | CODE), 0);
});

Deno.test("SlotModel leaves a training value out of its own count (calibration)", () => {
  const m = train([...Array.from({ length: 999 }, () => "GET"), "PROPFIND"]);
  assert.equal(check(m, "PROPFIND").why, "rare here (1 of 1000)");
  assert.equal(check(m, "PROPFIND", 1).why, "never seen here");
});

Deno.test("SlotModel round-trips through bytes", () => {
  const m = train(Array.from({ length: 300 }, (_, i) => ["GET", "POST", "HEAD"][i % 3]!));
  const w = new ByteWriter();
  m.write(w);
  const bytes = w.finish();
  const back = SlotModel.read(new ByteReader(bytes, 0, bytes.length));
  for (const v of ["GET", "DELETE", "PO'ST"]) assert.deepEqual(check(back, v), check(m, v), v);
  assert.equal(back.kind, m.kind);
});

Deno.test("shapeOf() decodes %XX and names nginx's \\xHH bytes as control bytes", () => {
  const names = (v: string) => {
    const mask = shapeOf(v, 0, v.length);
    return SHAPE_CLASSES.filter((_, k) => (mask >>> k) & 1);
  };
  assert.deepEqual(names("%2e%2e"), [".", "%-encoding", ".."]);
  assert.deepEqual(names("\\x16\\x03"), ["control bytes"]);
  assert.deepEqual(names(""), ["empty"]);
  assert.deepEqual(names("<a>"), ["lowercase", "<>"]);
});
