/**
 * The tailwise detector: train on a container's normal lines, then score new
 * lines in [0, 1] with a per-container threshold and an explanation, and
 * store the whole model as a compact, versioned, checksummed blob.
 *
 * A line's score fuses the isolation forest's view of its feature vector
 * (template rarity, severity, length, shape, numeric deviation, hashed TF-IDF
 * token weights) with evidence the forest cannot see because training never
 * contains it: a template never mined, tokens never seen, numbers far outside
 * their template's range. The threshold is the (1 − alertRate) quantile of the
 * training lines' scores, lowered into a gap that sets contamination apart
 * ({@linkcode calibrateThreshold}), within [0.5, 0.8].
 *
 * @example
 * ```ts
 * import { trainDetector, Detector } from "./detector.ts";
 * const detector = await trainDetector(["GET /a 200 12ms", "GET /b 200 9ms"]);
 * const again = Detector.fromBytes(detector.toBytes());
 * again.score("panic: runtime error: index out of range").anomaly; // true
 * ```
 *
 * This file is the detector's public surface: code outside `shared/detector/`
 * imports from here only. Besides the model it offers what the rest of
 * tailwise takes from the detector's parts: {@linkcode coldStartLine} (the
 * template, template id and severity of a line without a model, for scoring
 * while a container learns), {@linkcode createPrng} (the seeded generator,
 * for the demo source), {@linkcode fnv1a32} (a stable 32-bit hash, for
 * source ids), the rate models, model bundles, timestamps and stack
 * fingerprints, and {@linkcode mineTemplates} (for the eval). The other
 * files are private to the detector: `tests/shared/layering_test.ts` keeps
 * it so.
 *
 * @module
 */

import { ByteReader, ByteWriter } from "./binary.ts";
import { crc32 } from "./crc32.ts";
import {
  createLineEvidence,
  DIMENSIONS,
  FeatureModel,
  type LineEvidence,
  prepareMasked,
  quantizeZ,
  slotName,
  TRAIN_SIMILARITY,
} from "./feature_model.ts";
import { contentHash64, fnv1a32 } from "./hash.ts";
import { IsolationForest, type SparseRows } from "./isolation_forest.ts";
import { createMaskedLine, templateText, WILDCARD } from "./mask.ts";
import { ModelFormatError } from "./model_format_error.ts";
import { createPrng } from "./prng.ts";
import { describeFinding } from "./slot_model.ts";
import { TemplateMiner } from "./template_miner.ts";
import { TokenSet } from "./token_set.ts";

export { ModelFormatError } from "./model_format_error.ts";
export { maskLine } from "./mask.ts";
export { type ColdStartLine, coldStartLine } from "./cold_start.ts";
export { createPrng, type Prng } from "./prng.ts";
export { fnv1a32 } from "./hash.ts";
export { type MinedTemplates, mineTemplates } from "./mine_templates.ts";
export { bundleModel, type ModelParts, splitModel } from "./model_bundle.ts";
export {
  RateModel,
  RateModelBuilder,
  type RateModelOptions,
  RateMonitor,
  type RateMonitorOptions,
  type RateReason,
  type RateReasonCode,
  type RateWindow,
  type TemplateMove,
  type WindowCounts,
} from "./rate_model.ts";
export { judgeSpan, learnRates, type TimedLine } from "./rate_windows.ts";
export { formatTimestamp, splitTimestamp, type TimestampedLine } from "./timestamp.ts";
export { eventLine, type StackFingerprint, stackFingerprint } from "./stack_fingerprint.ts";

/**
 * Version of the binary model format written by {@linkcode Detector.toBytes}.
 * Version 3 (this one) reads fields out of access, JSON and logfmt lines,
 * keeps a model per template slot (values, shapes, counters) and the share
 * of training lines above the threshold. Versions 1 and 2 were mined without
 * fields and have no slot models, so {@linkcode Detector.fromBytes} rejects
 * them: such a model must be retrained.
 */
export const MODEL_FORMAT_VERSION = 3;

/** Format versions {@linkcode Detector.fromBytes} reads. */
const _READABLE_VERSIONS: readonly number[] = [3];
/** Format versions written by an older detector: retrain, do not load. */
const _RETRAIN_VERSIONS: readonly number[] = [1, 2];

const _MAGIC = [0x54, 0x57, 0x44, 0x4d]; // "TWDM"
const _HEADER = 12;
/** Lines used to grow the forest and calibrate, at most (sampled evenly when more). */
const _MAX_FOREST_ROWS = 262_144;

/** Why a line was flagged. */
export type ReasonCode =
  | "new_template"
  | "unseen_tokens"
  | "rare_template"
  | "severity"
  | "unusual_value"
  | "isolation";

/** The score of one line. */
export interface LineScore {
  /** Anomaly score in [0, 1]; higher is more anomalous. */
  score: number;
  /** Whether the score is above the container's threshold. */
  anomaly: boolean;
  /** The container's threshold. */
  threshold: number;
  /** The line's template (the masked line itself when it matches none). */
  template: string;
  /** 64-bit content hash of the template, 16 hex digits. */
  templateId: string;
  /** Why the line is anomalous (empty when it is not). */
  reasons: ReasonCode[];
  /** Tokens that drove the score (empty when not anomalous). */
  tokens: string[];
  /**
   * The slots and values that drove the score, for people (empty when not
   * anomalous): `status=502: never seen here`, `path: shape never seen (..)
   * "/a/../../etc/passwd"`.
   */
  explanation: string[];
}

/** Facts about a trained model. */
export interface DetectorInfo {
  /** Binary format version. */
  version: number;
  /** Lines the model was trained on. */
  trainedLines: number;
  /** Score above which a line is an anomaly. */
  threshold: number;
  /** Number of templates mined. */
  templates: number;
  /**
   * Training lines merged into their nearest template because a tree leaf or
   * the whole model had reached its template cap (0 when no cap was hit).
   * Counted while training; a model read with {@linkcode Detector.fromBytes}
   * reports 0 (the count is not part of the binary format).
   */
  merged: number;
  /** PRNG seed used for the forest. */
  seed: number;
  /** Number of trees. */
  trees: number;
  /** Share of the (sampled) training lines that score above the threshold. */
  trainAboveThreshold: number;
}

/** Options for {@linkcode trainDetector}. */
export interface TrainOptions {
  /**
   * Seed of the forest's PRNG; the same seed and lines give the same model.
   * @default {1}
   */
  seed?: number;
  /**
   * Number of isolation trees.
   * @default {100}
   */
  trees?: number;
  /**
   * Lines sampled per tree (ψ).
   * @default {256}
   */
  sampleSize?: number;
  /**
   * Share of training lines allowed above the threshold, in (0, 0.5].
   * @default {0.005}
   */
  alertRate?: number;
  /**
   * Called as lines are read and once at the end; `total` is the number of
   * lines when the input is an array, else 0 until the end.
   */
  onProgress?: (done: number, total: number) => void;
}

/** Internal state of a detector; build one with {@linkcode trainDetector} or {@linkcode Detector.fromBytes}. */
export interface DetectorState {
  /** Templates, vocabulary and numeric ranges. */
  features: FeatureModel;
  /** The isolation forest. */
  forest: IsolationForest;
  /** Score threshold. */
  threshold: number;
  /** Median forest score over training lines. */
  isoMedian: number;
  /** Alert rate used for the threshold. */
  alertRate: number;
  /** Share of the (sampled) training lines above the threshold. */
  trainAbove: number;
  /** PRNG seed. */
  seed: number;
  /**
   * Format version of the blob the model was read from; a loaded model is
   * written back in it.
   * @default {MODEL_FORMAT_VERSION}
   */
  version?: number;
}

/** Weights of the evidence fused into a score (noisy-OR). */
const _W = {
  isolation: 0.6,
  novel: 0.9,
  unseen: 0.7,
  rarity: 0.5,
  severity: 0.6,
  unusual: 0.8,
  param: 0.9,
} as const;

/** The threshold never goes below this (weak evidence alone never alerts). */
const _MIN_THRESHOLD = 0.5;
/**
 * Nor above this: a strong slot finding or a new template always alerts,
 * however many rare lines training held. Below it, what recurs in training
 * more often than the alert rate is normal at that rate.
 */
const _MAX_THRESHOLD = 0.8;

/** A trained detector for one container. */
export class Detector {
  /** Facts about the model. */
  readonly info: DetectorInfo;
  #s: DetectorState;
  #ev: LineEvidence = createLineEvidence();
  #dense = new Float32Array(DIMENSIONS);
  #isoCache: Float64Array;

  /**
   * @param state The trained state (from {@linkcode trainDetector} or {@linkcode Detector.fromBytes}).
   */
  constructor(state: DetectorState) {
    this.#s = state;
    this.info = Object.freeze({
      version: state.version ?? MODEL_FORMAT_VERSION,
      trainedLines: state.features.trainedLines,
      threshold: state.threshold,
      templates: state.features.miner.templates.length,
      merged: state.features.miner.merged,
      seed: state.seed,
      trees: state.forest.trees,
      trainAboveThreshold: state.trainAbove,
    });
    this.#isoCache = new Float64Array(state.features.miner.templates.length * 22).fill(NaN);
  }

  /**
   * Score one line. Never throws: any string (binary, control characters,
   * escape codes, megabyte lines) gets a score; only the first 4 KiB are read.
   *
   * @param line A log line.
   * @returns Its score, verdict and explanation.
   */
  score(line: string): LineScore {
    const s = this.#s;
    const ev = s.features.analyze(typeof line === "string" ? line : String(line), this.#ev);
    const score = this.#fuse(ev);
    const anomaly = score > s.threshold;
    const miner = s.features.miner;
    let template: string;
    let templateId: string;
    if (ev.template >= 0) {
      template = miner.text(ev.template);
      templateId = miner.id(ev.template);
    } else {
      template = templateText(ev.masked.tokens, ev.masked.count);
      templateId = contentHash64(template);
    }
    const reasons: ReasonCode[] = [];
    const tokens: string[] = [];
    const explanation: string[] = [];
    if (anomaly) {
      const novel = ev.template < 0;
      const isoE = _isoEvidence(this.#lastIso, s.isoMedian);
      const sevE = ev.severity * (0.25 + 0.75 * ev.rarity);
      if (novel) reasons.push("new_template");
      if (ev.unseen.length > 0) reasons.push("unseen_tokens");
      if (!novel && ev.rarity >= 0.6) reasons.push("rare_template");
      if (ev.severity >= 0.4 && _W.severity * sevE >= 0.1) reasons.push("severity");
      if (ev.unusual > 0 || ev.param >= 0.2) reasons.push("unusual_value");
      if (isoE >= 0.3 || reasons.length === 0) reasons.push("isolation");
      for (const t of ev.unseen) _pushToken(tokens, t);
      for (const t of ev.severityTokens) _pushToken(tokens, t);
      for (const t of ev.unusualTokens) _pushToken(tokens, t);
      const m = ev.masked;
      const tt = novel ? undefined : miner.templates[ev.template]!.tokens;
      for (let k = 0; k < ev.findingPos.length && k < 4; k++) {
        if (ev.findingStrength[k]! < 0.2) break;
        const pos = ev.findingPos[k]!;
        const name = slotName(tt?.[pos] ?? "", pos, tt?.[pos - 1] ?? "");
        const value = _show(m.source.substring(m.start[pos]!, m.end[pos]!));
        const why = describeFinding(ev.findings[k]!, m.source);
        explanation.push(
          why.startsWith("never") || why.startsWith("rare") || why.startsWith("out of range")
            ? `${name}=${value}: ${why}`
            : `${name}: ${why}: ${value}`,
        );
        _pushToken(tokens, value);
      }
      if (novel) explanation.push("template never seen in training");
      else if (ev.rarity >= 0.6) {
        explanation.push(
          `template seen in ${miner.templates[ev.template]!.count} of ` +
            `${s.features.trainedLines} training lines`,
        );
      }
      for (const t of ev.unseen.slice(0, 4)) explanation.push(`token never seen: ${_show(t)}`);
      if (reasons.includes("severity")) {
        explanation.push(`severity: ${ev.severityTokens.slice(0, 4).join(", ")}`);
      }
    }
    return {
      score,
      anomaly,
      threshold: s.threshold,
      template,
      templateId,
      reasons,
      tokens,
      explanation,
    };
  }

  #lastIso = 0;

  /**
   * The fused score of analysed evidence.
   *
   * @param ev The line's evidence.
   * @returns Its score in [0, 1].
   */
  #fuse(ev: LineEvidence): number {
    const iso = this.#isolation(ev);
    this.#lastIso = iso;
    const isoE = _isoEvidence(iso, this.#s.isoMedian);
    const novel = ev.template < 0 ? 1 : 0;
    const unseenE = ev.unseen.length > 0
      ? Math.min(1, 0.5 + 0.5 * ev.unseen.length / Math.max(1, ev.constants))
      : 0;
    const unusualE = Math.min(1, ev.unusual / 3);
    const sevE = ev.severity * (0.25 + 0.75 * ev.rarity);
    const score = 1 -
      (1 - _W.isolation * isoE) *
        (1 - _W.novel * novel) *
        (1 - _W.unseen * unseenE) *
        (1 - _W.rarity * ev.rarity * ev.rarity) *
        (1 - _W.severity * sevE) *
        (1 - _W.unusual * unusualE) *
        (1 - _W.param * ev.param);
    return Number.isFinite(score) ? Math.min(1, Math.max(0, score)) : 1;
  }

  /**
   * Score of a training line as if it were new: its own value is left out
   * of the slot counts. For calibration.
   *
   * @param line A training line.
   * @returns Its score.
   */
  calibrationScore(line: string): number {
    return this.#fuse(this.#s.features.analyze(line, this.#ev, 1));
  }

  /**
   * Score many lines, in order.
   *
   * @param lines Log lines.
   * @returns One score per line.
   */
  scoreBatch(lines: readonly string[]): LineScore[] {
    const out: LineScore[] = new Array(lines.length);
    for (let i = 0; i < lines.length; i++) out[i] = this.score(lines[i]!);
    return out;
  }

  /**
   * The dense feature vector the forest sees for a line (for evaluation and
   * baselines on the same features).
   *
   * @param line A log line.
   * @param out Where to write; a new array when omitted.
   * @returns The vector, {@linkcode Detector.dimensions} long.
   */
  featureVector(line: string, out: Float32Array = new Float32Array(DIMENSIONS)): Float32Array {
    const ev = this.#s.features.analyze(typeof line === "string" ? line : String(line), this.#ev);
    out.fill(0);
    this.#s.features.denseFeatures(ev, out);
    return out;
  }

  /** Length of {@linkcode Detector.featureVector}. */
  static get dimensions(): number {
    return DIMENSIONS;
  }

  #isolation(ev: LineEvidence): number {
    const dense = this.#dense;
    const cacheable = ev.template >= 0 && ev.differing === 0;
    const key = cacheable
      ? ev.template * 22 + Math.round(quantizeZ(ev.numericZ) * 10) * 2 + (ev.structured ? 1 : 0)
      : -1;
    if (key >= 0) {
      const hit = this.#isoCache[key]!;
      if (hit === hit) return hit;
    }
    dense.fill(0);
    this.#s.features.denseFeatures(ev, dense);
    const iso = this.#s.forest.score(dense);
    if (key >= 0) this.#isoCache[key] = iso;
    return iso;
  }

  /**
   * Serialise the model: magic `TWDM`, format version, payload length, the
   * payload and a CRC-32 of everything before it.
   *
   * @returns The blob.
   */
  toBytes(): Uint8Array {
    const s = this.#s;
    const w = new ByteWriter();
    for (const b of _MAGIC) w.u8(b);
    w.u8(this.info.version);
    w.u8(0);
    w.u8(0);
    w.u8(0);
    w.u32(0); // payload length, patched below
    w.varint(s.features.trainedLines);
    w.u32(s.seed >>> 0);
    w.f64(s.alertRate);
    w.f64(s.threshold);
    w.f64(s.isoMedian);
    w.f64(s.trainAbove);
    const templates = s.features.miner.templates;
    w.varint(templates.length);
    for (const t of templates) {
      w.str(t.leaf);
      w.str(t.tokens.join(" "));
      w.varint(t.count);
    }
    const vocab = s.features.vocabulary.values();
    w.varint(vocab.length);
    let prev = 0;
    for (const v of vocab) {
      w.varint(v - prev);
      prev = v;
    }
    s.features.writeStats(w);
    s.forest.write(w);
    const body = w.finish();
    const out = new Uint8Array(body.length + 4);
    out.set(body);
    const view = new DataView(out.buffer);
    view.setUint32(8, body.length - _HEADER, true);
    view.setUint32(body.length, crc32(out, 0, body.length), true);
    return out;
  }

  /**
   * Load a model written by {@linkcode Detector.toBytes}.
   *
   * @param bytes The blob.
   * @returns The detector.
   * @throws {ModelFormatError} If the blob is not a tailwise model, has an
   * unknown format version or one written by an older detector (versions 1
   * and 2: retrain it), fails its checksum or is truncated.
   */
  static fromBytes(bytes: Uint8Array): Detector {
    if (!(bytes instanceof Uint8Array)) {
      throw new ModelFormatError(`Cannot read model: expected a Uint8Array, got ${typeof bytes}`);
    }
    if (bytes.length < _HEADER + 4) {
      throw new ModelFormatError(
        `Cannot read model: ${bytes.length} bytes is shorter than the ${_HEADER + 4}-byte frame`,
      );
    }
    for (let i = 0; i < 4; i++) {
      if (bytes[i] !== _MAGIC[i]) {
        throw new ModelFormatError("Cannot read model: bad magic, expected a TWDM blob");
      }
    }
    const version = bytes[4]!;
    if (_RETRAIN_VERSIONS.includes(version)) {
      throw new ModelFormatError(
        `Cannot read model format version ${version}: the model was built by an older detector ` +
          `(${
            version === 1 ? "older template miner, " : ""
          }no field slots) and must be retrained ` +
          `(train again, e.g. "deno task cli train --container NAME --file PATH"); expected ` +
          `version ${MODEL_FORMAT_VERSION}`,
      );
    }
    if (!_READABLE_VERSIONS.includes(version)) {
      throw new ModelFormatError(
        `Cannot read model format version ${version}: expected one of ${
          _READABLE_VERSIONS.join(", ")
        }`,
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const payload = view.getUint32(8, true);
    if (_HEADER + payload + 4 !== bytes.length) {
      throw new ModelFormatError(
        `Cannot read model: length ${bytes.length} does not match payload length ${payload}`,
      );
    }
    const stored = view.getUint32(_HEADER + payload, true);
    const actual = crc32(bytes, 0, _HEADER + payload);
    if (stored !== actual) {
      throw new ModelFormatError(
        `Cannot read model: checksum ${actual.toString(16)} does not match stored ${
          stored.toString(16)
        }`,
      );
    }
    try {
      return _read(new ByteReader(bytes, _HEADER, _HEADER + payload), version);
    } catch (err) {
      if (err instanceof ModelFormatError) throw err;
      throw new ModelFormatError("Cannot read model: inconsistent payload", { cause: err });
    }
  }
}

/**
 * Train a detector on a container's lines (presumed mostly normal).
 *
 * @param lines The training lines, one log line each.
 * @param options Seed, trees, ψ, alert rate and a progress callback.
 * @returns The trained detector.
 * @throws {RangeError} If there are no lines or an option is out of range.
 */
export async function trainDetector(
  lines: Iterable<string> | AsyncIterable<string>,
  options: TrainOptions = {},
): Promise<Detector> {
  const seed = options.seed ?? 1;
  const trees = options.trees ?? 100;
  const sampleSize = options.sampleSize ?? 256;
  const alertRate = options.alertRate ?? 0.005;
  if (!Number.isFinite(seed)) throw new RangeError(`Cannot use seed ${seed}: expected a number`);
  if (!(alertRate > 0 && alertRate <= 0.5)) {
    throw new RangeError(`Cannot use alertRate ${alertRate}: expected a number in (0, 0.5]`);
  }
  if (!Number.isInteger(trees) || trees < 1 || trees > 10000) {
    throw new RangeError(`Cannot grow ${trees} trees: expected an integer in 1..10000`);
  }
  if (!Number.isInteger(sampleSize) || sampleSize < 2 || sampleSize > 65535) {
    throw new RangeError(`Cannot use sampleSize ${sampleSize}: expected an integer in 2..65535`);
  }
  const total = Array.isArray(lines) ? lines.length : 0;
  const onProgress = options.onProgress;
  const miner = new TemplateMiner({ similarity: TRAIN_SIMILARITY });
  const vocabulary = new TokenSet(4096);
  const features = new FeatureModel(miner, vocabulary);
  const masked = createMaskedLine();

  // Pass 1: mine templates, collect the vocabulary and numeric parameters.
  let n = 0;
  let lineTemplate = new Int32Array(4096);
  let numStart = new Int32Array(4097);
  let numPos = new Int32Array(4096);
  let numVal = new Float64Array(4096);
  let numCount = 0;
  let structured = new Uint8Array(4096);
  // An even sample of the lines, in order, for the slot models and calibration.
  let kept: string[] = [];
  let stride = 1;
  const take = (line: string): void => {
    const text = typeof line === "string" ? line : String(line);
    if (n % stride === 0) {
      if (kept.length === _MAX_FOREST_ROWS) {
        kept = kept.filter((_, i) => (i & 1) === 0);
        stride *= 2;
      }
      if (n % stride === 0) kept.push(text);
    }
    const isStructured = prepareMasked(text, masked);
    const t = miner.add(masked.tokens, masked.count, masked.literals);
    if (n === lineTemplate.length) {
      lineTemplate = _growI32(lineTemplate, n * 2);
      numStart = _growI32(numStart, n * 2 + 1);
      const s2 = new Uint8Array(n * 2);
      s2.set(structured);
      structured = s2;
    }
    lineTemplate[n] = t;
    structured[n] = isStructured ? 1 : 0;
    numStart[n] = numCount;
    for (let i = 0; i < masked.count; i++) {
      const tok = masked.tokens[i]!;
      if (tok !== WILDCARD) vocabulary.add(fnv1a32(tok));
      const v = masked.values[i]!;
      if (v === v) {
        if (numCount === numPos.length) {
          numPos = _growI32(numPos, numCount * 2);
          const v2 = new Float64Array(numCount * 2);
          v2.set(numVal);
          numVal = v2;
        }
        numPos[numCount] = i;
        numVal[numCount++] = v;
      }
    }
    n++;
    if (onProgress !== undefined && (n & 8191) === 0) onProgress(n, total);
  };
  if (Symbol.asyncIterator in Object(lines)) {
    for await (const line of lines as AsyncIterable<string>) take(line);
  } else {
    for (const line of lines as Iterable<string>) take(line);
  }
  if (n === 0) throw new RangeError("Cannot train on 0 lines: expected at least 1 line");
  // The miner's line groups become templates (enumerated positions split them).
  const templateOf = miner.finish();
  for (let k = 0; k < n; k++) {
    const t = templateOf[lineTemplate[k]!]!;
    lineTemplate[k] = t;
    if (structured[k] === 1) features.markStructured(t);
  }
  numStart[n] = numCount;
  features.trainedLines = n;
  for (let k = 0; k < n; k++) {
    const a = numStart[k]!;
    const b = numStart[k + 1]!;
    if (b > a) {
      features.addNumbers(lineTemplate[k]!, numPos.subarray(a, b), numVal.subarray(a, b), b - a);
    }
  }
  features.finish();
  // Slot models: what every template position held.
  for (const line of kept) features.learnSlots(line, masked);
  features.finishSlots();

  // Rows for the forest and for calibration: every line, or an even sample.
  const prng = createPrng(seed);
  const rowsN = Math.min(n, _MAX_FOREST_ROWS);
  const chosen = new Int32Array(rowsN);
  if (rowsN === n) { for (let k = 0; k < n; k++) chosen[k] = k; }
  else {
    for (let k = 0; k < rowsN; k++) {
      chosen[k] = Math.min(n - 1, Math.floor((k + prng.next()) * n / rowsN));
    }
  }
  const rowZ = new Float64Array(rowsN);
  const offsets = new Int32Array(rowsN + 1);
  let idxBuf = new Uint16Array(rowsN * 16 + DIMENSIONS);
  let valBuf = new Float32Array(rowsN * 16 + DIMENSIONS);
  const rowIndex = new Uint16Array(DIMENSIONS);
  const rowValue = new Float32Array(DIMENSIONS);
  let nnz = 0;
  for (let r = 0; r < rowsN; r++) {
    const k = chosen[r]!;
    const t = lineTemplate[k]!;
    let z = 0;
    for (let p = numStart[k]!; p < numStart[k + 1]!; p++) {
      const d = features.numericDeviation(t, numPos[p]!, numVal[p]!);
      if (d.z > z) z = d.z;
    }
    rowZ[r] = z;
    const m = features.trainingRow(t, z, rowIndex, rowValue);
    if (nnz + m > idxBuf.length) {
      const i2 = new Uint16Array((nnz + m) * 2);
      i2.set(idxBuf);
      idxBuf = i2;
      const v2 = new Float32Array((nnz + m) * 2);
      v2.set(valBuf);
      valBuf = v2;
    }
    idxBuf.set(rowIndex.subarray(0, m), nnz);
    valBuf.set(rowValue.subarray(0, m), nnz);
    nnz += m;
    offsets[r + 1] = nnz;
  }
  const rows: SparseRows = {
    dimensions: DIMENSIONS,
    offsets,
    index: idxBuf.subarray(0, nnz),
    value: valBuf.subarray(0, nnz),
  };
  const forest = IsolationForest.fit(rows, { trees, sampleSize, seed });

  // Calibrate: forest scores of the training rows (cached per template and
  // numeric bucket), their median, then the fused scores and their quantile.
  const dense = new Float32Array(DIMENSIONS);
  const cache = new Map<number, number>();
  const iso = new Float64Array(rowsN);
  for (let r = 0; r < rowsN; r++) {
    const k = chosen[r]!;
    const key = lineTemplate[k]! * 22 + Math.round(quantizeZ(rowZ[r]!) * 10) * 2 +
      (structured[k] === 1 ? 1 : 0);
    let s = cache.get(key);
    if (s === undefined) {
      dense.fill(0);
      for (let p = offsets[r]!; p < offsets[r + 1]!; p++) dense[rows.index[p]!] = rows.value[p]!;
      s = forest.score(dense);
      cache.set(key, s);
    }
    iso[r] = s;
  }
  const isoMedian = _quantile(Float64Array.from(iso).sort(), 0.5);
  // Calibrate on the kept lines scored as if new (each leaves its own value
  // out of the slot counts): the (1 − alertRate) quantile, within bounds.
  const state: DetectorState = {
    features,
    forest,
    threshold: 1,
    isoMedian,
    alertRate,
    seed: seed >>> 0,
    trainAbove: 0,
  };
  const provisional = new Detector(state);
  // At most 65,536 of them, evenly: enough for the quantile, and training stays fast.
  const step = Math.max(1, Math.ceil(kept.length / 65_536));
  const fused = new Float64Array(Math.ceil(kept.length / step));
  for (let r = 0; r < fused.length; r++) fused[r] = provisional.calibrationScore(kept[r * step]!);
  fused.sort();
  const q = _quantile(fused, 1 - alertRate) + 1e-9;
  const threshold = Math.min(
    _MAX_THRESHOLD,
    Math.max(_MIN_THRESHOLD, calibrateThreshold(fused, q)),
  );
  let above = 0;
  for (let r = fused.length - 1; r >= 0 && fused[r]! > threshold; r--) above++;
  onProgress?.(n, n);
  return new Detector({ ...state, threshold, trainAbove: above / Math.max(1, fused.length) });
}

function _isoEvidence(iso: number, median: number): number {
  const e = (iso - median) / Math.max(1e-6, 1 - median);
  return e < 0 ? 0 : e > 1 ? 1 : e;
}

/** Widest share of training lines a gap may set apart as contamination. */
export const GAP_MAX_TAIL = 0.03;
/** Narrowest gap in the sorted training scores that sets a tail apart. */
export const GAP_MIN_WIDTH = 0.05;

/**
 * The threshold before its bounds: the alert-rate quantile `q` of the sorted
 * training scores, lowered into a gap when one sets the top lines apart.
 *
 * A history with a little contamination holds the anomalies themselves: a
 * few classes, each recurring, each scoring high. When they are more than
 * the alert rate, the quantile lands among them and they stop alerting. They
 * stand apart from the container's own lines by a gap in the scores, so the
 * lowest gap (at least {@linkcode GAP_MIN_WIDTH} wide) below `q` that leaves
 * at most {@linkcode GAP_MAX_TAIL} of the lines above it sets the threshold
 * at its middle: the first break above the container's own lines, not one
 * between two anomaly classes. Scores that rise without a gap (a noisy
 * container) keep `q`.
 *
 * @param sorted Training scores (scored as if new), ascending.
 * @param q The (1 − alertRate) quantile of `sorted`.
 * @returns A threshold at most `q`.
 */
export function calibrateThreshold(sorted: Float64Array, q: number): number {
  const m = sorted.length;
  if (m < 2) return q;
  const first = Math.max(0, Math.floor(m * (1 - GAP_MAX_TAIL)) - 1);
  for (let i = first; i + 1 < m; i++) {
    const lo = sorted[i]!;
    const hi = sorted[i + 1]!;
    if (hi > q) break;
    if (hi - lo >= GAP_MIN_WIDTH) return (lo + hi) / 2;
  }
  return q;
}

function _quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[pos]!;
}

function _show(v: string): string {
  const s = v.length > 80 ? v.slice(0, 77) + "..." : v;
  // Control characters are shown escaped, the rest as it is.
  return s.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function _pushToken(tokens: string[], t: string): void {
  if (tokens.length < 8 && !tokens.includes(t)) tokens.push(t.length > 80 ? t.slice(0, 80) : t);
}

function _growI32(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(size);
  next.set(a);
  return next;
}

function _read(r: ByteReader, version: number): Detector {
  const trainedLines = r.varint();
  const seed = r.u32();
  const alertRate = r.f64();
  const threshold = r.f64();
  const isoMedian = r.f64();
  const trainAbove = r.f64();
  const miner = new TemplateMiner({ similarity: TRAIN_SIMILARITY });
  const nT = r.varint();
  if (nT > 10_000_000) throw new ModelFormatError(`Cannot read model: ${nT} templates`);
  for (let i = 0; i < nT; i++) {
    const leaf = r.str();
    const text = r.str();
    const count = r.varint();
    miner.restore({ leaf, tokens: text === "" ? [] : text.split(" "), count });
  }
  const nV = r.varint();
  const vocabulary = new TokenSet(nV);
  let prev = 0;
  for (let i = 0; i < nV; i++) {
    prev += r.varint();
    vocabulary.add(prev);
  }
  const features = new FeatureModel(miner, vocabulary);
  features.trainedLines = trainedLines;
  features.readStats(r);
  features.finish();
  const forest = IsolationForest.read(r);
  if (!(threshold >= 0 && threshold <= 1) || !(isoMedian >= 0 && isoMedian <= 1)) {
    throw new ModelFormatError(`Cannot read model: threshold ${threshold} is not in [0, 1]`);
  }
  return new Detector({
    features,
    forest,
    threshold,
    isoMedian,
    alertRate,
    seed,
    version,
    trainAbove,
  });
}
