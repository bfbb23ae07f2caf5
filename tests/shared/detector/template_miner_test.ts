import assert from "node:assert/strict";
import { createMaskedLine, maskTokens } from "../../../shared/detector/mask.ts";
import { TemplateMiner } from "../../../shared/detector/template_miner.ts";

function mine(lines: string[], similarity = 0.5): { miner: TemplateMiner; ids: number[] } {
  const miner = new TemplateMiner({ similarity });
  const buf = createMaskedLine();
  const ids = lines.map((l) => {
    maskTokens(l, buf);
    return miner.add(buf.tokens, buf.count);
  });
  return { miner, ids };
}

Deno.test("TemplateMiner.add() groups lines that differ in variable tokens", () => {
  const { miner, ids } = mine([
    "session opened for user root by uid 0",
    "session opened for user alice by uid 1000",
    "session opened for user bob by uid 1001",
    "disk full on /dev/sda1",
  ]);
  assert.equal(ids[0], ids[1]);
  assert.equal(ids[1], ids[2]);
  assert.notEqual(ids[0], ids[3]);
  assert.equal(miner.text(ids[0]!), "session opened for user <*> by uid <*>");
});

Deno.test("TemplateMiner.id() is a stable content hash of the template", () => {
  const a = mine(["job 1 done", "job 2 done"]);
  const b = mine(["job 7 done"]);
  assert.equal(a.miner.id(a.ids[0]!), b.miner.id(b.ids[0]!));
  assert.match(a.miner.id(a.ids[0]!), /^[0-9a-f]{16}$/);
});

Deno.test("TemplateMiner.match() finds templates without changing them", () => {
  const { miner, ids } = mine(["worker 3 started", "worker 4 started"]);
  const buf = maskTokens("worker 9 started");
  assert.equal(miner.match(buf.tokens, buf.count), ids[0]);
  const other = maskTokens("completely different line here");
  assert.equal(miner.match(other.tokens, other.count), -1);
  assert.equal(miner.templates.length, 1);
});

Deno.test("TemplateMiner.restore() rebuilds the same routing", () => {
  const { miner } = mine(["a b c 1", "a b d 2", "x y 3"]);
  const copy = new TemplateMiner();
  for (const t of miner.templates) copy.restore({ ...t, tokens: [...t.tokens] });
  const buf = maskTokens("a b c 5");
  assert.equal(copy.match(buf.tokens, buf.count), miner.match(buf.tokens, buf.count));
});

Deno.test("TemplateMiner rejects a similarity outside (0, 1]", () => {
  assert.throws(() => new TemplateMiner({ similarity: 0 }), RangeError);
});
