import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "../../../shared/detector/binary.ts";
import {
  averagePathLength,
  IsolationForest,
  type SparseRows,
} from "../../../shared/detector/isolation_forest.ts";
import { createPrng } from "../../../shared/detector/prng.ts";

function rows(points: number[][]): SparseRows {
  const offsets = new Int32Array(points.length + 1);
  const index: number[] = [];
  const value: number[] = [];
  points.forEach((p, r) => {
    p.forEach((v, f) => {
      if (v !== 0) {
        index.push(f);
        value.push(v);
      }
    });
    offsets[r + 1] = index.length;
  });
  return {
    dimensions: points[0]!.length,
    offsets,
    index: Uint16Array.from(index),
    value: Float32Array.from(value),
  };
}

function cluster(n: number, seed: number): number[][] {
  const prng = createPrng(seed);
  const g = (): number => (prng.next() + prng.next() + prng.next() + prng.next()) / 4;
  return Array.from({ length: n }, () => [g(), g(), 0, 0]);
}

Deno.test("averagePathLength() follows c(n) from Liu et al.", () => {
  assert.equal(averagePathLength(1), 0);
  assert.equal(averagePathLength(2), 1);
  assert.ok(Math.abs(averagePathLength(256) - 10.2448) < 1e-3);
});

Deno.test("IsolationForest.fit() isolates planted outliers", () => {
  const data = cluster(2000, 7);
  data.push([5, 5, 0, 0], [-3, 0.5, 0, 0], [0.5, 4, 0, 0]);
  const forest = IsolationForest.fit(rows(data), { seed: 3 });
  const scores = data.map((p) => forest.score(Float32Array.from(p)));
  const normal = scores.slice(0, 2000).sort((a, b) => a - b);
  const p98 = normal[Math.floor(0.98 * normal.length)]!;
  for (let k = 2000; k < 2003; k++) assert.ok(scores[k]! > p98, `outlier ${k}`);
  assert.ok(normal[1000]! < 0.5);
});

Deno.test("IsolationForest.fit() is deterministic under a seed", () => {
  const r = rows(cluster(500, 1));
  const a = IsolationForest.fit(r, { seed: 42 });
  const b = IsolationForest.fit(r, { seed: 42 });
  const c = IsolationForest.fit(r, { seed: 43 });
  const probe = Float32Array.from([0.9, 0.1, 0, 0]);
  assert.equal(a.score(probe), b.score(probe));
  assert.notEqual(a.score(probe), c.score(probe));
});

Deno.test("IsolationForest.fit() splits only on features that vary", () => {
  // Features 2 and 3 are constant zero: a probe that differs only there
  // scores like an ordinary point.
  const forest = IsolationForest.fit(rows(cluster(500, 2)), { seed: 1 });
  const a = forest.score(Float32Array.from([0.5, 0.5, 0, 0]));
  const b = forest.score(Float32Array.from([0.5, 0.5, 9, 9]));
  assert.equal(a, b);
});

Deno.test("IsolationForest.write() and read() round-trip", () => {
  const forest = IsolationForest.fit(rows(cluster(300, 5)), { seed: 9, trees: 20 });
  const w = new ByteWriter();
  forest.write(w);
  const bytes = w.finish();
  const back = IsolationForest.read(new ByteReader(bytes, 0, bytes.length));
  const probe = Float32Array.from([0.2, 0.8, 0, 0]);
  assert.equal(back.score(probe), forest.score(probe));
  assert.equal(back.nodes, forest.nodes);
});

Deno.test("IsolationForest.fit() rejects bad options", () => {
  assert.throws(() => IsolationForest.fit(rows(cluster(10, 1)), { trees: 0 }), RangeError);
  assert.throws(() => IsolationForest.fit(rows(cluster(10, 1)), { sampleSize: 1 }), RangeError);
});
