import assert from "node:assert/strict";
import { createMaskedLine, maskTokens } from "../../../shared/detector/mask.ts";
import { createPrng } from "../../../shared/detector/prng.ts";
import { TemplateMiner } from "../../../shared/detector/template_miner.ts";

/** Lines that share one leaf (`svc event ...`) and are never similar: ten random words. */
function _adversarial(n: number, seed = 7): string[] {
  const rnd = createPrng(seed);
  const word = () =>
    Array.from({ length: 6 }, () => String.fromCharCode(97 + rnd.nextInt(26))).join("");
  return Array.from({ length: n }, () => `svc event ${Array.from({ length: 10 }, word).join(" ")}`);
}

function _train(miner: TemplateMiner, lines: string[]): number {
  const buf = createMaskedLine();
  const started = performance.now();
  for (const l of lines) {
    maskTokens(l, buf);
    miner.add(buf.tokens, buf.count, buf.literals);
  }
  miner.finish();
  return performance.now() - started;
}

Deno.test("TemplateMiner bounds the templates of a leaf, so adversarial training stays linear", () => {
  const small = new TemplateMiner();
  const msSmall = _train(small, _adversarial(4000));
  const big = new TemplateMiner();
  const msBig = _train(big, _adversarial(32_000));
  // Before the bound: 32,001 templates and 55 s (quadratic in the leaf).
  assert.ok(big.templates.length <= 100, `${big.templates.length} templates`);
  assert.equal(big.merged, 32_000 - big.templates.length);
  assert.ok(msBig < 15_000, `32,000 lines took ${msBig.toFixed(0)} ms`);
  // Near-linear: 8x the lines, well under 64x (quadratic) the time.
  assert.ok(
    msBig < Math.max(msSmall, 50) * 24,
    `${msSmall.toFixed(0)} ms → ${msBig.toFixed(0)} ms`,
  );
});

Deno.test("TemplateMiner bounds its templates in total through one overflow leaf per length", () => {
  const miner = new TemplateMiner({ maxTemplates: 50, maxLeafTemplates: 10 });
  const rnd = createPrng(3);
  const word = () =>
    Array.from({ length: 5 }, () => String.fromCharCode(97 + rnd.nextInt(26))).join("");
  // Every line in a leaf of its own (distinct first two words), 4 lengths.
  const lines = Array.from(
    { length: 2000 },
    (_, i) => [word(), word(), ...Array.from({ length: 2 + (i % 4) }, word)].join(" "),
  );
  _train(miner, lines);
  assert.ok(miner.templates.length <= 50 + 4 * 10, `${miner.templates.length} templates`);
  assert.ok(miner.merged >= 2000 - miner.templates.length);
  assert.throws(() => new TemplateMiner({ maxLeafTemplates: 0 }), RangeError);
  assert.throws(() => new TemplateMiner({ maxTemplates: 1.5 }), RangeError);
});
