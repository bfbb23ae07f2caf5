import assert from "node:assert/strict";
import {
  calibrateThreshold,
  GAP_MAX_TAIL,
  GAP_MIN_WIDTH,
  trainDetector,
} from "../../../shared/detector/detector.ts";
import { createPrng } from "../../../shared/detector/prng.ts";
import { nginxSet } from "../../../bench/log_generators.ts";

function _sorted(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

function _quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

Deno.test("calibrateThreshold() lowers the quantile into the gap that sets contamination apart", () => {
  const r = createPrng(7);
  // 99 % of the lines score in [0, 0.3], 1 % (contamination) in [0.6, 0.9].
  const scores = _sorted(
    Array.from({ length: 10_000 }, (_, i) => i % 100 === 0 ? 0.6 + 0.3 * r.next() : 0.3 * r.next()),
  );
  const q = _quantile(scores, 0.995);
  assert.ok(q > 0.6, `the 99.5 % quantile ${q} lies among the contamination`);
  const t = calibrateThreshold(scores, q);
  assert.ok(t > 0.3 && t < 0.6, `threshold ${t} in the gap (0.3, 0.6)`);
  const above = scores.filter((s) => s > t).length;
  assert.equal(above, 100);
});

Deno.test("calibrateThreshold() takes the first gap above the bulk, not one between anomaly classes", () => {
  // Bulk up to 0.3; two anomaly classes at 0.4 and 0.8 (1 % each): the widest
  // gap is between the classes, the first one sets them both apart.
  const scores = _sorted(
    Array.from(
      { length: 10_000 },
      (_, i) => i % 100 === 0 ? 0.4 : i % 100 === 1 ? 0.8 : 0.3 * (i / 10_000),
    ),
  );
  const q = _quantile(scores, 0.995);
  const t = calibrateThreshold(scores, q);
  assert.ok(t > 0.3 && t < 0.4, `threshold ${t} in the gap (0.3, 0.4)`);
});

Deno.test("calibrateThreshold() keeps the quantile when scores rise without a gap", () => {
  // Evenly spread scores: no gap as wide as GAP_MIN_WIDTH anywhere.
  const scores = _sorted(Array.from({ length: 10_000 }, (_, i) => i / 10_000));
  const q = _quantile(scores, 0.995);
  assert.equal(calibrateThreshold(scores, q), q);
});

Deno.test("calibrateThreshold() sets apart no more than GAP_MAX_TAIL of the lines", () => {
  // 10 % score high behind a wide gap: too many to be contamination.
  const scores = _sorted(
    Array.from({ length: 1_000 }, (_, i) => i % 10 === 0 ? 0.9 : 0.1 + 0.0001 * i),
  );
  assert.ok(GAP_MAX_TAIL < 0.1 && GAP_MIN_WIDTH < 0.8);
  const q = _quantile(scores, 0.995);
  assert.equal(calibrateThreshold(scores, q), q);
});

Deno.test("calibrateThreshold() never raises the threshold above the quantile", () => {
  const r = createPrng(3);
  for (let k = 0; k < 50; k++) {
    const scores = _sorted(Array.from({ length: 500 }, () => r.next() ** (1 + 4 * r.next())));
    const q = _quantile(scores, 0.995);
    assert.ok(calibrateThreshold(scores, q) <= q);
  }
});

Deno.test("an access log trained with 1 % contamination still alerts on its attacks", async () => {
  const set = nginxSet(11, 0.01);
  const detector = await trainDetector(set.train);
  let tp = 0;
  let fp = 0;
  let anomalies = 0;
  for (const t of set.test) {
    const flagged = detector.score(t.line).anomaly;
    if (t.label !== null) anomalies++;
    if (flagged && t.label !== null) tp++;
    if (flagged && t.label === null) fp++;
  }
  // The quantile alone put the threshold at 0.76 here: recall 0.57 (1.0 now).
  assert.ok(tp / anomalies >= 0.9, `recall ${tp}/${anomalies}`);
  assert.ok(fp <= 0.01 * (set.test.length - anomalies), `false positives ${fp}`);
});
