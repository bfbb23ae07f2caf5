/**
 * `deno task eval [--datasets PATH] [--json]`: accuracy of the detector on
 * public log data with ground truth (see `../shared/datasets/README.md`).
 *
 * - HDFS_5k, block level: the detector is trained unsupervised on all 4,519
 *   lines (labels unused), every line is scored, a block's score is the max
 *   of its lines and a block is flagged when any line is above the detector's
 *   own threshold. Precision, recall and F1 at that threshold, ROC-AUC and
 *   average precision of the block scores. ml-isolation-forest 0.1.0 runs
 *   beside it on the same feature vectors, with the same alert-rate quantile
 *   as its threshold.
 * - loghub 2k, 15 systems: template grouping accuracy against the corrected
 *   ground truth, mining the message content (the parsing benchmark's
 *   protocol) and, beside it, the raw lines as the detector sees them.
 * - Container logs of our own making (`log_generators.ts`): an nginx access
 *   log, a pino JSON API, postgres and a python worker, each trained on
 *   20,000 lines (0.2 % contamination) and scored on 10,000 lines with about
 *   2 % labelled anomalies: F1 at the detector's own threshold, ROC-AUC and
 *   recall per anomaly class. And a logfmt / plain-text service whose
 *   counters grew ten times past training: the share of its normal lines
 *   flagged. The same four kinds again with 0.2 %, 0.5 %, 1 % and 2 % of
 *   anomalies in training (the contamination sweep): F1 and ROC-AUC per level.
 * - Multi-line events (`events_eval.ts`): a generated, labelled set of four
 *   services with stack traces; event-level precision, recall and F1, alerts
 *   per caught exception and the share of known exceptions alerted, with
 *   grouping on and off.
 * - Rates (`rate_eval.ts`): synthetic 60-hour service logs, 48 h of history
 *   then 12 h with four volume incidents (silence, a template flooding 20×,
 *   a warning at 40/min, traffic at 15 %) and quiet ones; incidents caught,
 *   false alarms, incident F1, detection delay.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { IsolationForest as MlIsolationForest } from "ml-isolation-forest";
import { mineTemplates, trainDetector } from "../shared/detector/detector.ts";
import {
  counterSet,
  type GeneratedSet,
  nginxSet,
  pinoSet,
  postgresSet,
  pythonWorkerSet,
} from "./log_generators.ts";
import { evalEvents, type EventsEvalResult, printEvents } from "./events_eval.ts";
import { printRateEval, type RateEvalResult, runRateEval } from "./rate_eval.ts";

/** Results on one generated container log. */
export interface GeneratedResult {
  /** Container kind. */
  kind: string;
  /** Training lines. */
  trainLines: number;
  /** Test lines. */
  testLines: number;
  /** Labelled anomalies among them. */
  anomalies: number;
  /** Precision at the detector's own threshold. */
  precision: number;
  /** Recall at the detector's own threshold. */
  recall: number;
  /** F1 at the detector's own threshold. */
  f1: number;
  /** ROC-AUC of the line scores. */
  rocAuc: number;
  /** The threshold. */
  threshold: number;
  /** Share of (sampled) training lines above the threshold. */
  trainAboveThreshold: number;
  /** Recall per anomaly class: [flagged, total]. */
  perClass: Record<string, [number, number]>;
  /** Explanation of the first flagged line of each class. */
  examples: Record<string, string[]>;
}

/** Detection metrics at block level. */
export interface BlockMetrics {
  /** Blocks flagged and anomalous / flagged. */
  precision: number;
  /** Blocks flagged and anomalous / anomalous. */
  recall: number;
  /** Harmonic mean of precision and recall. */
  f1: number;
  /** Area under the ROC curve of the block scores. */
  rocAuc: number;
  /** Average precision of the block scores. */
  averagePrecision: number;
  /** Blocks flagged. */
  flagged: number;
}

/** Grouping accuracy of one system. */
export interface GroupingResult {
  /** System name. */
  system: string;
  /** Grouping accuracy mining the content field. */
  accuracy: number;
  /** Templates found mining the content field. */
  templates: number;
  /** Templates in the ground truth. */
  truthTemplates: number;
  /** Grouping accuracy mining the raw lines. */
  rawAccuracy: number;
  /** Templates found mining the raw lines. */
  rawTemplates: number;
}

/** One contamination level of the sweep: F1 and ROC-AUC per kind. */
export interface ContaminationResult {
  /** Share of anomalies in the training lines. */
  contamination: number;
  /** Per container kind: F1, ROC-AUC and threshold. */
  kinds: { kind: string; f1: number; rocAuc: number; threshold: number }[];
  /** Mean F1 over the kinds. */
  meanF1: number;
}

/** Contamination levels of the sweep (share of anomalies in training). */
export const CONTAMINATION_LEVELS = [0.002, 0.005, 0.01, 0.02] as const;

/**
 * Train the four generated kinds at each contamination level and score their
 * test lines (the same seeds, so only the training history differs).
 *
 * @param levels Shares of anomalies in the training lines.
 * @default {levels} CONTAMINATION_LEVELS
 * @returns F1 and ROC-AUC per level and kind.
 */
export async function evalContamination(
  levels: readonly number[] = CONTAMINATION_LEVELS,
): Promise<ContaminationResult[]> {
  const out: ContaminationResult[] = [];
  for (const contamination of levels) {
    const kinds: ContaminationResult["kinds"] = [];
    for (const make of [nginxSet, pinoSet, postgresSet, pythonWorkerSet]) {
      const r = await evalGenerated(make(undefined, contamination));
      kinds.push({ kind: r.kind, f1: r.f1, rocAuc: r.rocAuc, threshold: r.threshold });
    }
    const meanF1 = kinds.reduce((s, k) => s + k.f1, 0) / kinds.length;
    out.push({ contamination, kinds, meanF1 });
  }
  return out;
}

/** Everything the evaluation measured. */
export interface EvalResult {
  /** HDFS_5k block-level results. */
  hdfs: {
    blocks: number;
    anomalousBlocks: number;
    lines: number;
    tailwise: BlockMetrics;
    mlIsolationForest: BlockMetrics;
    trainMs: number;
    baselineTrainMs: number;
  };
  /** Grouping accuracy per system. */
  grouping: GroupingResult[];
  /** Mean grouping accuracy (content) over the systems. */
  meanGroupingAccuracy: number;
  /** Mean grouping accuracy (raw lines) over the systems. */
  meanRawGroupingAccuracy: number;
  /** Generated container logs. */
  generated: GeneratedResult[];
  /** Mean F1 over the generated container logs. */
  meanGeneratedF1: number;
  /** Normal lines with counters grown ten times past training: flagged / total. */
  counters: { flagged: number; lines: number; rate: number };
  /** Normal pino lines after a restart (new pid and pod name): flagged / total. */
  restart: { flagged: number; lines: number; rate: number };
  /** The four generated kinds trained at several contamination levels. */
  contamination: ContaminationResult[];
  /** Multi-line events: event-level figures, grouping on and off. */
  events: EventsEvalResult;
  /** Rates: one result per synthetic 60-hour scenario. */
  rates: RateEvalResult[];
}

const SYSTEMS = [
  "Android",
  "Apache",
  "HDFS",
  "HPC",
  "Hadoop",
  "HealthApp",
  "Linux",
  "Mac",
  "OpenSSH",
  "OpenStack",
  "Proxifier",
  "Spark",
  "Thunderbird",
  "Windows",
  "Zookeeper",
];

/**
 * Run the whole evaluation.
 *
 * @param datasets Folder holding `HDFS_v1/`, `loghub_2k/` and `loghub_2k_corrected/`.
 * @param options `log` for progress messages.
 * @default {options.log} nothing
 * @returns The measured results.
 */
export async function runEval(
  datasets: string,
  options: { log?: (msg: string) => void } = {},
): Promise<EvalResult> {
  const log = options.log ?? (() => {});
  log("HDFS_5k");
  const hdfs = await evalHdfs(datasets);
  const grouping: GroupingResult[] = [];
  for (const system of SYSTEMS) {
    log(`grouping ${system}`);
    grouping.push(await evalGrouping(datasets, system));
  }
  const mean = (f: (g: GroupingResult) => number) =>
    grouping.reduce((s, g) => s + f(g), 0) / grouping.length;
  const generated: GeneratedResult[] = [];
  for (const make of [nginxSet, pinoSet, postgresSet, pythonWorkerSet]) {
    const set = make();
    log(`generated ${set.kind}`);
    generated.push(await evalGenerated(set));
  }
  log("contamination sweep");
  const contamination = await evalContamination();
  log("counters");
  const counters = await evalCounters();
  log("restart");
  const restart = await evalRestart();
  log("multi-line events");
  const events = await evalEvents();
  log("rates");
  const rates = await runRateEval({ log: (msg) => log(`rates ${msg}`) });
  return {
    hdfs,
    grouping,
    meanGroupingAccuracy: mean((g) => g.accuracy),
    meanRawGroupingAccuracy: mean((g) => g.rawAccuracy),
    generated,
    meanGeneratedF1: generated.reduce((s, g) => s + g.f1, 0) / generated.length,
    counters,
    restart,
    contamination,
    events,
    rates,
  };
}

/**
 * Train on a generated set's training lines, score its test lines.
 *
 * @param set The set.
 * @returns F1, ROC-AUC and recall per class.
 */
export async function evalGenerated(set: GeneratedSet): Promise<GeneratedResult> {
  const detector = await trainDetector(set.train);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  const perClass: Record<string, [number, number]> = {};
  const examples: Record<string, string[]> = {};
  const items: { s: number; y: boolean }[] = [];
  for (const t of set.test) {
    const s = detector.score(t.line);
    items.push({ s: s.score, y: t.label !== null });
    if (t.label === null) {
      if (s.anomaly) fp++;
      continue;
    }
    const c = perClass[t.label] ??= [0, 0];
    c[1]++;
    if (s.anomaly) {
      c[0]++;
      tp++;
      examples[t.label] ??= s.explanation;
    } else fn++;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  return {
    kind: set.kind,
    trainLines: set.train.length,
    testLines: set.test.length,
    anomalies: tp + fn,
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : 2 * precision * recall / (precision + recall),
    rocAuc: rocAuc(items),
    threshold: detector.info.threshold,
    trainAboveThreshold: detector.info.trainAboveThreshold,
    perClass,
    examples,
  };
}

/**
 * Train on the pino set, score its normal test lines as a restarted
 * service prints them: another pid, another pod name.
 *
 * @returns Lines flagged, lines scored and their ratio.
 */
export async function evalRestart(): Promise<EvalResult["restart"]> {
  const set = pinoSet();
  const detector = await trainDetector(set.train);
  let flagged = 0;
  let lines = 0;
  for (const t of set.test) {
    if (t.label !== null) continue;
    lines++;
    const line = t.line.replace('"pid":7,', '"pid":8,').replace(
      "api-7d9f8c-x2k",
      "api-55bd6f-q9zt",
    );
    if (detector.score(line).anomaly) flagged++;
  }
  return { flagged, lines, rate: flagged / lines };
}

/**
 * Train on a counter service's lines, score normal lines whose counters grew
 * ten times past training.
 *
 * @returns Lines flagged, lines scored and their ratio.
 */
export async function evalCounters(): Promise<EvalResult["counters"]> {
  const set = counterSet();
  const detector = await trainDetector(set.train);
  let flagged = 0;
  for (const line of set.test) if (detector.score(line).anomaly) flagged++;
  return { flagged, lines: set.test.length, rate: flagged / set.test.length };
}

/**
 * HDFS_5k at block level, tailwise beside ml-isolation-forest.
 *
 * @param datasets The datasets folder.
 * @returns Block metrics of both.
 */
export async function evalHdfs(datasets: string): Promise<EvalResult["hdfs"]> {
  const lines = _lines(await Deno.readTextFile(`${datasets}/HDFS_v1/HDFS_5k.log`));
  const labels = _parseCsv(
    await Deno.readTextFile(`${datasets}/HDFS_v1/HDFS_5k.log.line_labels.DERIVED.csv`),
  ).slice(1).filter((r) => r.length >= 3);
  if (labels.length !== lines.length) {
    throw new RangeError(
      `Cannot align HDFS_5k: ${lines.length} lines but ${labels.length} labels, expected equal`,
    );
  }
  const blockOf = labels.map((r) => r[1]!);
  const blockLabel = new Map<string, boolean>();
  labels.forEach((r) => blockLabel.set(r[1]!, r[2] === "1"));

  let t0 = performance.now();
  const detector = await trainDetector(lines);
  const trainMs = performance.now() - t0;
  const scores = detector.scoreBatch(lines);
  const tailwise = _blockMetrics(
    blockOf,
    blockLabel,
    scores.map((s) => s.score),
    scores.map((s) => s.anomaly),
  );

  // Baseline: ml-isolation-forest on the very same feature vectors, dense.
  const dense = lines.map((l) => Array.from(detector.featureVector(l)));
  t0 = performance.now();
  const forest = new MlIsolationForest({ nEstimators: 100 });
  forest.train(dense);
  const baselineTrainMs = performance.now() - t0;
  const base = forest.predict(dense) as number[];
  const sorted = [...base].sort((a, b) => a - b);
  const alertRate = 0.005;
  const cut = sorted[Math.min(sorted.length - 1, Math.ceil((1 - alertRate) * sorted.length) - 1)]!;
  const mlIsolationForest = _blockMetrics(blockOf, blockLabel, base, base.map((s) => s > cut));
  return {
    blocks: blockLabel.size,
    anomalousBlocks: [...blockLabel.values()].filter(Boolean).length,
    lines: lines.length,
    tailwise,
    mlIsolationForest,
    trainMs,
    baselineTrainMs,
  };
}

/**
 * Grouping accuracy of the template miner on one loghub 2k system.
 *
 * @param datasets The datasets folder.
 * @param system System name, e.g. `HDFS`.
 * @returns Accuracy and template counts.
 */
export async function evalGrouping(datasets: string, system: string): Promise<GroupingResult> {
  const rows = _parseCsv(
    await Deno.readTextFile(
      `${datasets}/loghub_2k_corrected/${system}/${system}_2k.log_structured_corrected.csv`,
    ),
  );
  const header = rows[0] ?? [];
  const ci = header.indexOf("Content");
  const ti = header.indexOf("EventTemplate");
  const data = rows.slice(1).filter((r) => r.length === header.length);
  const truth = data.map((r) => r[ti]!);
  const raw = _lines(await Deno.readTextFile(`${datasets}/loghub_2k/${system}/${system}_2k.log`));
  const content = mineTemplates(data.map((r) => r[ci]!));
  const rawMined = mineTemplates(raw.slice(0, truth.length));
  return {
    system,
    accuracy: groupingAccuracy(truth, content.groups),
    templates: content.templates,
    truthTemplates: new Set(truth).size,
    rawAccuracy: groupingAccuracy(truth, rawMined.groups),
    rawTemplates: rawMined.templates,
  };
}

/**
 * Grouping accuracy: the share of lines whose predicted group holds exactly
 * the lines of their ground-truth group.
 *
 * @param truth Ground-truth template per line.
 * @param predicted Predicted group per line.
 * @returns A value in [0, 1].
 */
export function groupingAccuracy(truth: readonly string[], predicted: readonly number[]): number {
  const truthSize = new Map<string, number>();
  for (const t of truth) truthSize.set(t, (truthSize.get(t) ?? 0) + 1);
  const groups = new Map<number, number[]>();
  predicted.forEach((p, i) => {
    const g = groups.get(p);
    if (g) g.push(i);
    else groups.set(p, [i]);
  });
  let right = 0;
  for (const idx of groups.values()) {
    const t = truth[idx[0]!]!;
    if (truthSize.get(t) === idx.length && idx.every((i) => truth[i] === t)) right += idx.length;
  }
  return truth.length === 0 ? 0 : right / truth.length;
}

function _blockMetrics(
  blockOf: readonly string[],
  label: Map<string, boolean>,
  lineScore: readonly number[],
  lineFlag: readonly boolean[],
): BlockMetrics {
  const score = new Map<string, number>();
  const flag = new Map<string, boolean>();
  blockOf.forEach((b, i) => {
    score.set(b, Math.max(score.get(b) ?? -Infinity, lineScore[i]!));
    flag.set(b, (flag.get(b) ?? false) || lineFlag[i]!);
  });
  let tp = 0, fp = 0, fn = 0;
  for (const [b, y] of label) {
    const f = flag.get(b) ?? false;
    if (f && y) tp++;
    else if (f) fp++;
    else if (y) fn++;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : 2 * precision * recall / (precision + recall);
  const items = [...label].map(([b, y]) => ({ s: score.get(b) ?? 0, y }));
  return {
    precision,
    recall,
    f1,
    rocAuc: rocAuc(items),
    averagePrecision: averagePrecision(items),
    flagged: tp + fp,
  };
}

/**
 * ROC-AUC with ties counted as half (Mann–Whitney U).
 *
 * @param items Score and label per unit.
 * @returns The AUC in [0, 1].
 */
export function rocAuc(items: readonly { s: number; y: boolean }[]): number {
  const pos = items.filter((i) => i.y);
  const neg = items.filter((i) => !i.y);
  if (pos.length === 0 || neg.length === 0) return NaN;
  let u = 0;
  for (const p of pos) for (const n of neg) u += p.s > n.s ? 1 : p.s === n.s ? 0.5 : 0;
  return u / (pos.length * neg.length);
}

/**
 * Average precision: the mean of the precision at each positive, ranking by
 * score (ties broken pessimistically: negatives first).
 *
 * @param items Score and label per unit.
 * @returns AP in [0, 1].
 */
export function averagePrecision(items: readonly { s: number; y: boolean }[]): number {
  const sorted = [...items].sort((a, b) => b.s - a.s || Number(a.y) - Number(b.y));
  const positives = items.filter((i) => i.y).length;
  if (positives === 0) return NaN;
  let tp = 0;
  let sum = 0;
  sorted.forEach((it, k) => {
    if (it.y) {
      tp++;
      sum += tp / (k + 1);
    }
  });
  return sum / positives;
}

function _lines(text: string): string[] {
  const out = text.split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
  while (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out;
}

function _parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function _fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : "n/a";
}

function _print(r: EvalResult): void {
  const h = r.hdfs;
  console.log(
    `HDFS_5k, block level: ${h.blocks} blocks (${h.anomalousBlocks} anomalous), ${h.lines} lines;` +
      " trained unsupervised on all lines, block = max line score",
  );
  console.log("| detector | precision | recall | F1 | ROC-AUC | AP | blocks flagged | train ms |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (
    const [name, m, ms] of [
      ["tailwise (own forest + evidence)", h.tailwise, h.trainMs],
      ["ml-isolation-forest 0.1.0, same features", h.mlIsolationForest, h.baselineTrainMs],
    ] as const
  ) {
    console.log(
      `| ${name} | ${_fmt(m.precision)} | ${_fmt(m.recall)} | ${_fmt(m.f1)} | ${_fmt(m.rocAuc)} | ${
        _fmt(m.averagePrecision)
      } | ${m.flagged} | ${Math.round(ms)} |`,
    );
  }
  console.log("");
  console.log("Template grouping accuracy, loghub 2k vs loghub_2k_corrected");
  console.log("| system | GA (content) | templates | truth | GA (raw lines) | templates (raw) |");
  console.log("|---|---|---|---|---|---|");
  for (const g of r.grouping) {
    console.log(
      `| ${g.system} | ${_fmt(g.accuracy)} | ${g.templates} | ${g.truthTemplates} | ${
        _fmt(g.rawAccuracy)
      } | ${g.rawTemplates} |`,
    );
  }
  console.log(
    `| **mean** | **${_fmt(r.meanGroupingAccuracy)}** | | | **${
      _fmt(r.meanRawGroupingAccuracy)
    }** | |`,
  );
  console.log("");
  console.log(
    "Generated container logs: train 20,000 lines (0.2 % contamination), test 10,000 (~2 % anomalies)",
  );
  console.log("| container | P | R | F1 | ROC-AUC | threshold | train above | recall per class |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const g of r.generated) {
    const classes = Object.entries(g.perClass).sort().map(([k, [a, b]]) => `${k} ${a}/${b}`);
    console.log(
      `| ${g.kind} | ${_fmt(g.precision)} | ${_fmt(g.recall)} | ${_fmt(g.f1)} | ${
        _fmt(g.rocAuc)
      } | ${_fmt(g.threshold)} | ${(g.trainAboveThreshold * 100).toFixed(2)} % | ${
        classes.join(", ")
      } |`,
    );
  }
  console.log(`| **mean** | | | **${_fmt(r.meanGeneratedF1)}** | | | | |`);
  console.log("");
  console.log(
    `Counters grown 10x past training: ${r.counters.flagged} of ${r.counters.lines} normal lines ` +
      `flagged (${(r.counters.rate * 100).toFixed(2)} %)`,
  );
  console.log(
    `pino api restarted (new pid and pod name): ${r.restart.flagged} of ${r.restart.lines} ` +
      `normal lines flagged (${(r.restart.rate * 100).toFixed(2)} %)`,
  );
  console.log("");
  console.log(
    "Contamination sweep (same sets, training history with more anomalies): F1 / ROC-AUC (threshold)",
  );
  const kinds = r.contamination[0]?.kinds.map((k) => k.kind) ?? [];
  console.log(`| contamination | ${kinds.join(" | ")} | mean F1 |`);
  console.log(`|---|${kinds.map(() => "---|").join("")}---|`);
  for (const c of r.contamination) {
    const cells = c.kinds.map((k) => `${_fmt(k.f1)} / ${_fmt(k.rocAuc)} (${_fmt(k.threshold)})`);
    console.log(
      `| ${(c.contamination * 100).toFixed(1)} % | ${cells.join(" | ")} | **${_fmt(c.meanF1)}** |`,
    );
  }
  console.log("");
  console.log("Explanations (first flagged line per class):");
  for (const g of r.generated) {
    for (const [k, ex] of Object.entries(g.examples).sort()) {
      console.log(`- ${g.kind} / ${k}: ${ex.slice(0, 2).join("; ")}`);
    }
  }
  printEvents(r.events);
  printRateEval(r.rates);
}

if (import.meta.main) {
  let values: { datasets?: string; json?: boolean; help?: boolean };
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        datasets: { type: "string", default: "../shared/datasets" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (err) {
    console.error(`eval: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(2);
  }
  if (values.help) {
    console.log(
      "Usage: deno task eval [--datasets PATH] [--json]\n\n" +
        "  --datasets PATH  folder with HDFS_v1/, loghub_2k/, loghub_2k_corrected/ " +
        "(default ../shared/datasets)\n  --json           print the results as one JSON object",
    );
    Deno.exit(0);
  }
  const result = await runEval(values.datasets!, {
    log: (msg) => console.error(`[eval] ${msg}`),
  });
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else _print(result);
}
