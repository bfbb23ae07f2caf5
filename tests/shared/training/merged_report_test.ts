import assert from "node:assert/strict";
import { Detector, trainDetector } from "../../../shared/detector/detector.ts";
import { trainModelInWorker } from "../../../shared/runtime/train_worker.ts";

/** Lines that share one template-tree leaf and are never similar: ten pseudo-random words. */
function _adversarial(n: number): string[] {
  let x = 12345;
  const letter = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return String.fromCharCode(97 + (x >> 16) % 26);
  };
  const word = () => Array.from({ length: 6 }, letter).join("");
  return Array.from({ length: n }, () => `svc event ${Array.from({ length: 10 }, word).join(" ")}`);
}

Deno.test("DetectorInfo.merged reports the lines merged past the template caps", async () => {
  const lines = _adversarial(1000);
  const capped = await trainDetector(lines, { seed: 1 });
  // One leaf, capped at 100 templates: every later line is merged into one of them.
  assert.ok(capped.info.templates <= 100, `${capped.info.templates} templates`);
  assert.equal(capped.info.merged, 1000 - capped.info.templates);
  const plain = await trainDetector(
    Array.from({ length: 1000 }, (_, i) => `GET /items/${i} 200 ${i % 7} ms`),
    { seed: 1 },
  );
  assert.equal(plain.info.merged, 0);
  // Not part of the binary format: a model read back reports 0.
  assert.equal(Detector.fromBytes(capped.toBytes()).info.merged, 0);
});

Deno.test("a training run in the worker reports templates and merged lines", async () => {
  const lines = _adversarial(600);
  const model = await trainModelInWorker({
    training: lines,
    shadow: lines.slice(-50),
    history: lines,
    times: lines.map((_, i) => 1_700_000_000_000 + 1000 * i),
    options: { seed: 1 },
  });
  assert.ok(model.templates > 0 && model.templates <= 100, `${model.templates} templates`);
  assert.equal(model.merged, 600 - model.templates);
});
