/**
 * Detector benchmark: training time on 100,000 lines, featurise-and-score
 * throughput on one thread, model size and load time, and ml-isolation-forest
 * 0.1.0 beside it on the same feature vectors (on a subsample, since it keeps
 * every training row in every leaf and grows every tree on all rows).
 *
 * The lines are the real logs under `../shared/datasets` (all loghub 2k
 * systems, HDFS_5k and BGL_5000, about 40,500 lines) cycled to 100,000.
 *
 * @module
 */

import { IsolationForest as MlIsolationForest } from "ml-isolation-forest";
import { Detector, trainDetector } from "../shared/detector/detector.ts";

/** Options for {@linkcode benchDetector}. */
export interface BenchDetectorOptions {
  /** Progress messages. */
  log?: (msg: string) => void;
  /**
   * Folder of the datasets.
   * @default {"../shared/datasets"}
   */
  datasets?: string;
  /**
   * Training lines.
   * @default {100000}
   */
  lines?: number;
  /**
   * Rows given to ml-isolation-forest.
   * @default {1000}
   */
  baselineRows?: number;
}

/**
 * Run the detector benchmark.
 *
 * @param options Log, datasets folder and sizes.
 * @returns Flat figures: times in ms, sizes in bytes, rates in lines/s.
 */
export async function benchDetector(
  options: BenchDetectorOptions = {},
): Promise<Record<string, number | string>> {
  const log = options.log ?? (() => {});
  const datasets = options.datasets ?? "../shared/datasets";
  const n = options.lines ?? 100_000;
  const baselineRows = options.baselineRows ?? 1000;
  const pool = await _realLines(datasets);
  const lines: string[] = new Array(n);
  for (let i = 0; i < n; i++) lines[i] = pool[i % pool.length]!;
  log(`${pool.length} distinct real lines, cycled to ${n}`);

  // Warm-up on a small set so the JIT settles, then time training.
  await trainDetector(lines.slice(0, 5000), { seed: 1 });
  const t0 = performance.now();
  const detector = await trainDetector(lines, { seed: 1, trees: 100 });
  const trainMs = performance.now() - t0;
  log(`trained in ${trainMs.toFixed(0)} ms, ${detector.info.templates} templates`);

  const bytes = detector.toBytes();
  const tc = performance.now();
  Detector.fromBytes(bytes);
  const coldLoadMs = performance.now() - tc;
  for (let i = 0; i < 30; i++) Detector.fromBytes(bytes);
  const loads: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t = performance.now();
    Detector.fromBytes(bytes);
    loads.push(performance.now() - t);
  }
  loads.sort((a, b) => a - b);

  // Featurise and score on one thread: every line through score(), a fresh
  // model (cold caches), the second pass timed.
  const fresh = Detector.fromBytes(bytes);
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += fresh.score(lines[i]!).score;
  const t1 = performance.now();
  for (let i = 0; i < n; i++) sink += fresh.score(lines[i]!).score;
  const scoreMs = performance.now() - t1;
  // Lines never seen in training: numbers shifted and a word changed.
  const unseen = pool.slice(0, 20_000).map((l, i) => l.replace(/\d+/, String(i * 7919)) + " x");
  const t2 = performance.now();
  for (const l of unseen) sink += fresh.score(l).score;
  const unseenMs = performance.now() - t2;
  log(`scored ${n} lines in ${scoreMs.toFixed(0)} ms (sink ${sink.toFixed(1)})`);

  // Baseline on the same features.
  const rows = lines.slice(0, baselineRows).map((l) => Array.from(fresh.featureVector(l)));
  const t3 = performance.now();
  const ml = new MlIsolationForest({ nEstimators: 100 });
  ml.train(rows);
  const mlTrainMs = performance.now() - t3;
  const t4 = performance.now();
  ml.predict(rows);
  const mlScoreMs = performance.now() - t4;
  const json = JSON.stringify(ml);
  const mlModelBytes = new TextEncoder().encode(json).length;
  log(`ml-isolation-forest on ${baselineRows} rows: ${mlTrainMs.toFixed(0)} ms`);

  const ownSmall = await trainDetector(lines.slice(0, baselineRows), { seed: 1 });
  return {
    trainLines: n,
    trainMs: Math.round(trainMs),
    templates: detector.info.templates,
    trees: detector.info.trees,
    modelBytes: bytes.length,
    loadMsFirst: Number(coldLoadMs.toFixed(3)),
    loadMsMedian: Number(loads[loads.length >> 1]!.toFixed(3)),
    loadMsMax: Number(loads[loads.length - 1]!.toFixed(3)),
    scoreLinesPerSec: Math.round(n / (scoreMs / 1000)),
    scoreUnseenLinesPerSec: Math.round(unseen.length / (unseenMs / 1000)),
    baselineRows,
    baselineDimensions: Detector.dimensions,
    mlIsolationForestTrainMs: Math.round(mlTrainMs),
    mlIsolationForestScoreLinesPerSec: Math.round(baselineRows / (mlScoreMs / 1000)),
    mlIsolationForestJsonBytes: mlModelBytes,
    ownModelBytesSameRows: ownSmall.toBytes().length,
  };
}

async function _realLines(datasets: string): Promise<string[]> {
  const files = [
    `${datasets}/HDFS_v1/HDFS_5k.log`,
    `${datasets}/BGL/BGL_5000.log`,
  ];
  for (
    const e of [...Deno.readDirSync(`${datasets}/loghub_2k`)].sort((a, b) =>
      a.name < b.name ? -1 : 1
    )
  ) {
    if (e.isDirectory) files.push(`${datasets}/loghub_2k/${e.name}/${e.name}_2k.log`);
  }
  const out: string[] = [];
  for (const f of files) {
    for (const l of (await Deno.readTextFile(f)).split("\n")) {
      const line = l.endsWith("\r") ? l.slice(0, -1) : l;
      if (line.length > 0) out.push(line);
    }
  }
  return out;
}
