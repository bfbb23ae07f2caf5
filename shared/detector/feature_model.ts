/**
 * What tailwise learns about a container's lines besides the forest: the
 * templates with their counts, the tokens seen in training, the range of every
 * numeric parameter per template position, and token IDF weights. It turns a
 * line into evidence (template novelty and rarity, unseen tokens, severity,
 * unusual values) and into a sparse feature vector for the isolation forest.
 *
 * @module
 */

import { ByteReader, ByteWriter } from "./binary.ts";
import { fnv1a32 } from "./hash.ts";
import { extractFields } from "./fields.ts";
import { createMaskedLine, type MaskedLine, maskTokens, MAX_TOKENS, WILDCARD } from "./mask.ts";
import { ModelFormatError } from "./model_format_error.ts";
import { severityOf } from "./severity.ts";
import { CODE, COUNTER, FINDING, IDENTIFIER, type SlotFinding, SlotModel } from "./slot_model.ts";
import { eventLine } from "./stack_fingerprint.ts";
import { TemplateMiner } from "./template_miner.ts";
import { TokenSet } from "./token_set.ts";

/** Dense features before the hashed token block. */
export const DENSE_FEATURES = 6;
/** Buckets of hashed token weights. */
export const HASH_BUCKETS = 512;
/** Total feature dimensions of a line. */
export const DIMENSIONS: number = DENSE_FEATURES + HASH_BUCKETS;

/** Feature indexes of the dense block. */
export const FEATURE = {
  rarity: 0,
  severity: 1,
  length: 2,
  wildcards: 3,
  structured: 4,
  numeric: 5,
} as const;

/** Similarity a training line needs to join a template. */
export const TRAIN_SIMILARITY = 0.7;
/** Similarity a scored line needs to count as an existing template. */
export const MATCH_SIMILARITY = 0.5;

/** A numeric parameter must leave its seen range by this much (natural log units) to be unusual. */
const _UNUSUAL_MARGIN = 1.5;
/** A numeric parameter this many standard deviations (log space) from its mean is out of the bulk. */
const _FAR_SD = 5;
/** Values a position must have seen before its range is trusted. */
const _UNUSUAL_MIN_COUNT = 10;

/** Evidence about one line, filled by {@linkcode FeatureModel.analyze}. */
export interface LineEvidence {
  /** Template index, -1 when the line matches no template. */
  template: number;
  /** The line's masked tokens. */
  masked: MaskedLine;
  /** Whether the line was a JSON object. */
  structured: boolean;
  /** Rarity of the template in [0, 1]; 1 for a new one. */
  rarity: number;
  /** Highest severity among the line's constant tokens. */
  severity: number;
  /** Tokens that carried that severity. */
  severityTokens: string[];
  /** Constant tokens never seen in training. */
  unseen: string[];
  /** Constant tokens that differ from the template's. */
  differing: number;
  /** Non-wildcard tokens of the line. */
  constants: number;
  /** Largest excursion of a numeric parameter beyond its seen range, in log units. */
  unusual: number;
  /** Raw text of the parameters that were unusual. */
  unusualTokens: string[];
  /** Largest |z| of a numeric parameter against its template position, in log space. */
  numericZ: number;
  /** Evidence of the slot models in [0, 1] (noisy-OR of the slot findings). */
  param: number;
  /** Token positions of the slot findings, strongest first after {@linkcode FeatureModel.analyze}. */
  findingPos: number[];
  /** Strength per slot finding. */
  findingStrength: number[];
  /** What each slot finding is about (kept as numbers until words are needed). */
  findings: SlotFinding[];
}

/**
 * Create an empty evidence buffer.
 *
 * @returns A buffer for {@linkcode FeatureModel.analyze}.
 */
export function createLineEvidence(): LineEvidence {
  return {
    template: -1,
    masked: createMaskedLine(),
    structured: false,
    rarity: 1,
    severity: 0,
    severityTokens: [],
    unseen: [],
    differing: 0,
    constants: 0,
    unusual: 0,
    unusualTokens: [],
    numericZ: 0,
    param: 0,
    findingPos: [],
    findingStrength: [],
    findings: [],
  };
}

/**
 * Tokenise and mask a raw line into `out`. A multi-line event becomes one
 * line first ({@linkcode eventLine}). A line in a known container
 * format ({@linkcode extractFields}: access log, JSON, logfmt) becomes its
 * level and masked message followed by one `name=<*>` token per field, whose
 * value is kept in `out.source` at `out.start`/`out.end`; other lines are
 * masked as they are. Lone UTF-16 surrogates become U+FFFD, as they would in
 * a stored model.
 *
 * @param line Any string.
 * @param out The buffer to fill.
 * @returns Whether the line had fields.
 */
export function prepareMasked(line: string, out: MaskedLine): boolean {
  // A multi-line event is seen as one line: fingerprint, first line, stack.
  const text = _wellFormed(line.indexOf("\n") >= 0 ? eventLine(line) : line);
  const f = extractFields(text);
  if (f === undefined) {
    maskTokens(text, out);
    return false;
  }
  // JSON escapes may hold lone surrogates: well-form what was decoded.
  const head = _wellFormed(
    f.level === "" ? f.message : f.message === "" ? f.level : f.level + " " + f.message,
  );
  maskTokens(head, out);
  let count = out.count;
  const parts = [head];
  let at = head.length;
  for (let k = 0; k < f.names.length && count < MAX_TOKENS; k++) {
    const name = f.names[k]!;
    let tok = _fieldTokens.get(name);
    if (tok === undefined) {
      tok = name + "=" + WILDCARD;
      if (_fieldTokens.size < 4096) _fieldTokens.set(name, tok);
    }
    const v = f.values[k]!;
    out.tokens[count] = tok;
    out.values[count] = f.numbers[k]!;
    out.literals[count] = "";
    out.start[count] = at + 1;
    out.end[count] = at + 1 + v.length;
    at += 1 + v.length;
    parts.push(v);
    count++;
  }
  out.count = count;
  out.source = _wellFormed(parts.join("\u0001"));
  return true;
}

const _fieldTokens = new Map<string, string>();

/**
 * The name of a template slot: the field or key name, else `#` and the
 * token position.
 *
 * @param token The template's token at the slot.
 * @param pos Its position.
 * @param before The template's token before it, named for a bare `<*>`.
 * @returns The name.
 */
export function slotName(token: string, pos: number, before = ""): string {
  if (token.length > WILDCARD.length && token.endsWith(WILDCARD)) {
    return token.slice(0, -WILDCARD.length - 1);
  }
  return before !== "" && before !== WILDCARD && !before.endsWith(WILDCARD)
    ? `#${pos} (after ${before.length > 24 ? before.slice(0, 24) : before})`
    : `#${pos}`;
}

function _wellFormed(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
}

/** Per-position numeric statistics in log space, per template. */
interface _NumericStats {
  positions: number[];
  count: number[];
  min: number[];
  max: number[];
  mean: number[];
  m2: number[];
}

/** Sign-preserving log: log1p(|x|) with the sign of x. */
export function signedLog(x: number): number {
  return x < 0 ? -Math.log1p(-x) : Math.log1p(x);
}

/** Templates, vocabulary, numeric ranges and token weights of one container. */
export class FeatureModel {
  /** The template miner. */
  readonly miner: TemplateMiner;
  /** Hashes of every constant token seen in training. */
  readonly vocabulary: TokenSet;
  /** Number of training lines. */
  trainedLines = 0;
  #stats: (_NumericStats | undefined)[] = [];
  #slots: ((SlotModel | undefined)[] | undefined)[] = [];
  /** Slot blocks of a loaded model, decoded on first use (loading stays fast). */
  #slotBlocks: (Uint8Array | undefined)[] = [];
  #templateSeverity: Float64Array = new Float64Array(0);
  #templateRarity: Float64Array = new Float64Array(0);
  #templateRows: ({ index: number[]; value: number[] } | undefined)[] = [];
  #tokenSeverity: (Float64Array | undefined)[] = [];
  #templateStructured: Uint8Array = new Uint8Array(0);
  #tokenIds = new Map<string, number>();
  #idf = new Float64Array(0);
  #defaultIdf = 1;
  #finishedLines = 1;
  #scratch = new Float32Array(DIMENSIONS);
  #stamp = new Int32Array(DIMENSIONS);

  /**
   * @param miner A template miner (empty for training, restored for loading).
   * @param vocabulary The vocabulary set.
   */
  constructor(miner: TemplateMiner, vocabulary: TokenSet) {
    this.miner = miner;
    this.vocabulary = vocabulary;
  }

  /**
   * Record training numeric values of one line for its template.
   *
   * @param template Template index.
   * @param positions Token positions holding numbers.
   * @param values Their values.
   * @param n How many.
   */
  addNumbers(template: number, positions: Int32Array, values: Float64Array, n: number): void {
    let st = this.#stats[template];
    for (let k = 0; k < n; k++) {
      const pos = positions[k]!;
      if (st === undefined) {
        st = { positions: [], count: [], min: [], max: [], mean: [], m2: [] };
        this.#stats[template] = st;
      }
      let slot = st.positions.indexOf(pos);
      if (slot < 0) {
        slot = st.positions.length;
        st.positions.push(pos);
        st.count.push(0);
        st.min.push(Infinity);
        st.max.push(-Infinity);
        st.mean.push(0);
        st.m2.push(0);
      }
      const x = signedLog(values[k]!);
      const c = st.count[slot]! + 1;
      st.count[slot] = c;
      if (x < st.min[slot]!) st.min[slot] = x;
      if (x > st.max[slot]!) st.max[slot] = x;
      const d = x - st.mean[slot]!;
      st.mean[slot] = st.mean[slot]! + d / c;
      st.m2[slot] = st.m2[slot]! + d * (x - st.mean[slot]!);
    }
  }

  /**
   * Numeric |z| of a value at a template position (0 when not enough data).
   *
   * @param template Template index.
   * @param pos Token position.
   * @param value The number.
   * @returns |z| in log space and the excursion beyond the seen range.
   */
  numericDeviation(template: number, pos: number, value: number): { z: number; beyond: number } {
    const st = this.#stats[template];
    if (st === undefined) return _NO_DEVIATION;
    const sm = this.#slotsOf(template)?.[pos];
    if (sm !== undefined && (sm.kind & (COUNTER | IDENTIFIER | CODE)) !== 0) return _NO_DEVIATION;
    const slot = st.positions.indexOf(pos);
    if (slot < 0) return _NO_DEVIATION;
    const c = st.count[slot]!;
    if (c < 2) return _NO_DEVIATION;
    const x = signedLog(value);
    const sd = Math.sqrt(st.m2[slot]! / (c - 1));
    const z = Math.abs(x - st.mean[slot]!) / Math.max(sd, 0.25);
    let beyond = 0;
    if (c >= _UNUSUAL_MIN_COUNT) {
      // Beyond the seen range, or far out of the bulk (a few outliers in
      // training must not widen what is normal).
      const far = Math.abs(x - st.mean[slot]!) - _FAR_SD * Math.max(sd, 0.25);
      beyond = Math.max(0, x - st.max[slot]!, st.min[slot]! - x, far);
    }
    _deviation.z = z;
    _deviation.beyond = beyond;
    return _deviation;
  }

  /**
   * Freeze after training or loading: compute per-template severity, rarity,
   * IDF token weights and the template part of every feature vector.
   */
  finish(): void {
    const templates = this.miner.templates;
    const nT = templates.length;
    const n = Math.max(1, this.trainedLines);
    // Document frequency per token, weighted by template counts; a token
    // counts once per template. Tokens get ids (one map lookup per token);
    // `last` is the template that counted an id last.
    const ids = new Map<string, number>();
    let df = new Float64Array(1024);
    let last = new Int32Array(1024);
    for (let i = 0; i < nT; i++) {
      const t = templates[i]!;
      for (const tok of t.tokens) {
        if (tok === WILDCARD) continue;
        let id = ids.get(tok);
        if (id === undefined) {
          id = ids.size;
          ids.set(tok, id);
          if (id === df.length) {
            const nd = new Float64Array(id * 2);
            nd.set(df);
            df = nd;
            const nl = new Int32Array(id * 2);
            nl.set(last);
            last = nl;
          }
          last[id] = -1;
        }
        if (last[id] === i) continue;
        last[id] = i;
        df[id] = df[id]! + t.count;
      }
    }
    for (let id = 0; id < ids.size; id++) df[id] = Math.log(1 + n / df[id]!);
    this.#tokenIds = ids;
    this.#idf = df;
    this.#defaultIdf = Math.log(1 + n);
    this.#finishedLines = n;
    // Severity and the hashed row of a template are computed when the
    // template is first met (a model loads faster; most templates of a large
    // model are rare).
    this.#templateSeverity = new Float64Array(nT).fill(-1);
    this.#templateRarity = new Float64Array(nT);
    // Marks made before finishing (training, loading) are kept.
    const marked = this.#templateStructured;
    this.#templateStructured = new Uint8Array(nT);
    this.#templateStructured.set(marked.subarray(0, Math.min(nT, marked.length)));
    this.#templateRows = new Array(nT);
    this.#tokenSeverity = new Array(nT);
    for (let i = 0; i < nT; i++) {
      const count = templates[i]!.count;
      // A template that recurs routinely weighs half (see #severityOf).
      this.#templateRarity[i] = isRecurring(count, n)
        ? rarityOf(count, n) * 0.5
        : rarityOf(count, n);
    }
  }

  // Severity of a template's constant tokens, computed on first use.
  #severityOf(template: number): number {
    const known = this.#templateSeverity[template];
    if (known === undefined) return 0;
    if (known >= 0) return known;
    const t = this.miner.templates[template]!;
    let sev = 0;
    for (const tok of t.tokens) if (tok !== WILDCARD) sev = Math.max(sev, severityOf(tok));
    // A severe template that recurs routinely is that container's normal:
    // its severity weighs half, as its rarity does.
    if (isRecurring(t.count, this.#finishedLines)) sev *= 0.5;
    this.#templateSeverity[template] = sev;
    return sev;
  }

  // Severity of each token of a template, computed on first use.
  #severityAt(template: number, tokens: readonly string[], i: number): number {
    let at = this.#tokenSeverity[template];
    if (at === undefined) {
      at = this.#tokenSeverity[template] = new Float64Array(tokens.length);
      for (let k = 0; k < tokens.length; k++) at[k] = severityOf(tokens[k]!);
    }
    return at[i]!;
  }

  // Hashed constant tokens of a template, computed on first use.
  #rowOf(template: number): { index: number[]; value: number[] } {
    let row = this.#templateRows[template];
    if (row === undefined) {
      const tokens = this.miner.templates[template]!.tokens;
      row = this.#templateRows[template] = this.#hashTokens(tokens, tokens.length);
    }
    return row;
  }

  /**
   * Mark templates mined from JSON lines.
   *
   * @param template Template index.
   */
  markStructured(template: number): void {
    if (this.#templateStructured.length <= template) {
      const next = new Uint8Array(Math.max(16, template * 2 + 2));
      next.set(this.#templateStructured);
      this.#templateStructured = next;
    }
    this.#templateStructured[template] = 1;
  }

  /**
   * Rarity of a template.
   *
   * @param template Template index.
   * @returns Rarity in [0, 1].
   */
  rarity(template: number): number {
    return this.#templateRarity[template] ?? 1;
  }

  /**
   * Severity of a template's constant tokens.
   *
   * @param template Template index.
   * @returns Severity in [0, 1].
   */
  severity(template: number): number {
    return this.#severityOf(template);
  }

  /**
   * Analyse one line against the model. Never throws.
   *
   * @param line Any string.
   * @param ev The buffer to fill.
   * @returns The filled buffer.
   */
  analyze(line: string, ev: LineEvidence, self: 0 | 1 = 0): LineEvidence {
    const m = ev.masked;
    const structured = prepareMasked(typeof line === "string" ? line : String(line), m);
    const tokens = m.tokens;
    const count = m.count;
    ev.structured = structured;
    ev.severity = 0;
    ev.severityTokens.length = 0;
    ev.unseen.length = 0;
    ev.unusualTokens.length = 0;
    ev.unusual = 0;
    ev.numericZ = 0;
    ev.differing = 0;
    ev.param = 0;
    ev.findingPos.length = 0;
    ev.findingStrength.length = 0;

    let constants = 0;
    const t = this.miner.match(tokens, count, MATCH_SIMILARITY, m.literals);
    ev.template = t;
    if (t >= 0) {
      const tt = this.miner.templates[t]!.tokens;
      const slots = this.#slotsOf(t);
      let keep = 1;
      ev.rarity = this.#templateRarity[t]!;
      ev.severity = this.#severityOf(t);
      for (let i = 0; i < count; i++) {
        const tok = tokens[i]!;
        const sm = slots?.[i];
        if (sm !== undefined) {
          const st = sm.check(m.source, m.start[i]!, m.end[i]!, m.values[i]!, self, _finding);
          if (st > 0) {
            keep *= 1 - st;
            _addFinding(ev, i, _finding);
          }
        }
        if (tok === WILDCARD) {
          const v = m.values[i]!;
          if (v === v) this.#checkNumber(ev, t, i, v);
          continue;
        }
        constants++;
        const v = m.values[i]!;
        if (v === v && tok.endsWith(WILDCARD)) this.#checkNumber(ev, t, i, v);
        if (tt[i] === tok) {
          if (ev.severity > 0 && this.#severityAt(t, tt, i) === ev.severity) {
            ev.severityTokens.push(tok);
          }
          continue;
        }
        if (tt[i] !== WILDCARD) ev.differing++;
        this.#checkToken(ev, tok, tt[i] !== WILDCARD);
      }
      ev.param = 1 - keep;
    } else {
      ev.rarity = 1;
      for (let i = 0; i < count; i++) {
        const tok = tokens[i]!;
        if (tok === WILDCARD) continue;
        constants++;
        ev.differing++;
        this.#checkToken(ev, tok, true);
      }
    }
    ev.constants = constants;
    return ev;
  }

  /**
   * Learn the slot values of a training line (after the templates are mined).
   *
   * @param line A training line.
   * @param m A scratch buffer.
   */
  learnSlots(line: string, m: MaskedLine): void {
    prepareMasked(typeof line === "string" ? line : String(line), m);
    const t = this.miner.match(m.tokens, m.count, MATCH_SIMILARITY, m.literals);
    if (t < 0) return;
    const tt = this.miner.templates[t]!.tokens;
    let slots = this.#slots[t];
    if (slots === undefined) this.#slots[t] = slots = [];
    const count = Math.min(m.count, tt.length);
    for (let i = 0; i < count; i++) {
      const tok = tt[i]!;
      if (tok !== WILDCARD && !tok.endsWith(WILDCARD)) continue;
      let sm = slots[i];
      if (sm === undefined) slots[i] = sm = new SlotModel();
      sm.add(m.source, m.start[i]!, m.end[i]!, m.values[i]!);
    }
  }

  /** Settle the slot models after {@linkcode FeatureModel.learnSlots}; drop those with too few values. */
  finishSlots(): void {
    for (const slots of this.#slots) {
      if (slots === undefined) continue;
      for (let i = 0; i < slots.length; i++) {
        const sm = slots[i];
        if (sm === undefined) continue;
        if (sm.n < 20) slots[i] = undefined;
        else {
          sm.finish();
          if (!sm.useful) slots[i] = undefined;
        }
      }
    }
  }

  /**
   * The slot model of a template position, if any.
   *
   * @param template Template index.
   * @param pos Token position.
   * @returns The slot model.
   */
  slot(template: number, pos: number): SlotModel | undefined {
    return this.#slotsOf(template)?.[pos];
  }

  #slotsOf(t: number): (SlotModel | undefined)[] | undefined {
    const slots = this.#slots[t];
    if (slots !== undefined) return slots;
    const block = this.#slotBlocks[t];
    if (block === undefined) return undefined;
    this.#slotBlocks[t] = undefined;
    const decoded: (SlotModel | undefined)[] = [];
    try {
      const r = new ByteReader(block, 0, block.length);
      const k = r.varint();
      for (let j = 0; j < k; j++) {
        const p = r.varint();
        if (p > MAX_TOKENS) throw new ModelFormatError(`Cannot read model: slot ${p} out of range`);
        decoded[p] = SlotModel.read(r);
      }
    } catch {
      // The blob's checksum held, so this is a bug, not corruption: score without slots.
      decoded.length = 0;
    }
    this.#slots[t] = decoded;
    return decoded;
  }

  /**
   * Write the dense feature vector of an analysed line into `out` (which must
   * be zero), and return the indexes written so they can be reset.
   *
   * @param ev The evidence of the line.
   * @param out A zeroed array of {@linkcode DIMENSIONS} values.
   * @returns Whether the hashed block came from the template (cacheable).
   */
  denseFeatures(ev: LineEvidence, out: Float32Array): boolean {
    const cached = ev.template >= 0 && ev.differing === 0;
    const row = cached ? this.#rowOf(ev.template) : this.#hashTokens(
      ev.masked.tokens,
      ev.masked.count,
      ev.masked.literals,
      ev.template >= 0 ? this.miner.templates[ev.template]!.tokens : undefined,
    );
    for (let k = 0; k < row.index.length; k++) out[row.index[k]!] = row.value[k]!;
    this.#denseHead(ev.template, ev.masked.count, ev, out);
    return cached;
  }

  /**
   * Sparse feature row of a training line of a template with a numeric |z|.
   *
   * @param template Template index.
   * @param numericZ Its largest numeric |z|.
   * @param index Output feature indexes (at least DIMENSIONS long).
   * @param value Output values.
   * @returns Number of entries written.
   */
  trainingRow(template: number, numericZ: number, index: Uint16Array, value: Float32Array): number {
    const scratch = this.#scratch;
    const t = this.miner.templates[template]!;
    scratch.fill(0, 0, DENSE_FEATURES);
    _evidence.template = template;
    _evidence.severity = this.#severityOf(template);
    _evidence.rarity = this.#templateRarity[template]!;
    _evidence.numericZ = numericZ;
    _evidence.structured = this.#templateStructured[template] === 1;
    this.#denseHead(template, t.tokens.length, _evidence, scratch);
    let n = 0;
    for (let f = 0; f < DENSE_FEATURES; f++) {
      if (scratch[f] !== 0) {
        index[n] = f;
        value[n++] = scratch[f]!;
      }
    }
    const row = this.#rowOf(template);
    for (let k = 0; k < row.index.length; k++) {
      index[n] = row.index[k]!;
      value[n++] = row.value[k]!;
    }
    return n;
  }

  #denseHead(template: number, count: number, ev: LineEvidence, out: Float32Array): void {
    let wild = 0;
    if (template >= 0) {
      const tt = this.miner.templates[template]!.tokens;
      for (const tok of tt) if (tok === WILDCARD) wild++;
    } else {
      for (let i = 0; i < count; i++) if (ev.masked.tokens[i] === WILDCARD) wild++;
    }
    out[FEATURE.rarity] = ev.rarity;
    out[FEATURE.severity] = ev.severity;
    out[FEATURE.length] = Math.log1p(count) / Math.log(256);
    out[FEATURE.wildcards] = count > 0 ? wild / count : 0;
    out[FEATURE.structured] = ev.structured ? 1 : 0;
    out[FEATURE.numeric] = quantizeZ(ev.numericZ);
  }

  // Hash a line's constant tokens; a masked name counts where its template
  // kept it as a constant (an enumerated position), as in the template's row.
  #hashTokens(
    tokens: readonly string[],
    count: number,
    literals?: readonly string[],
    template?: readonly string[],
  ): { index: number[]; value: number[] } {
    const stamp = this.#stamp;
    const scratch = this.#scratch;
    const touched: number[] = [];
    const mark = (stamp[0] ?? 0) + 1;
    let norm = 0;
    for (let i = 0; i < count; i++) {
      let tok = tokens[i]!;
      if (tok === WILDCARD) {
        const lit = literals?.[i];
        if (!lit || template?.[i] !== lit) continue;
        tok = lit;
      }
      const f = DENSE_FEATURES + (fnv1a32(tok) & (HASH_BUCKETS - 1));
      const id = this.#tokenIds.get(tok);
      const w = id === undefined ? this.#defaultIdf : this.#idf[id]!;
      if (stamp[f] !== mark) {
        stamp[f] = mark;
        scratch[f] = 0;
        touched.push(f);
      }
      scratch[f] = scratch[f]! + w;
    }
    stamp[0] = mark;
    touched.sort((a, b) => a - b);
    for (const f of touched) norm += scratch[f]! * scratch[f]!;
    norm = Math.sqrt(norm) || 1;
    const value: number[] = new Array(touched.length);
    for (let k = 0; k < touched.length; k++) value[k] = scratch[touched[k]!]! / norm;
    return { index: touched, value };
  }

  #checkToken(ev: LineEvidence, tok: string, atConstant: boolean): void {
    const sev = severityOf(tok);
    if (sev > ev.severity) {
      ev.severity = sev;
      ev.severityTokens.length = 0;
    }
    if (sev > 0 && sev === ev.severity) ev.severityTokens.push(tok);
    if (atConstant && !this.vocabulary.has(fnv1a32(tok)) && ev.unseen.length < 16) {
      ev.unseen.push(tok);
    }
  }

  #checkNumber(ev: LineEvidence, t: number, pos: number, v: number): void {
    const d = this.numericDeviation(t, pos, v);
    if (d.z > ev.numericZ) ev.numericZ = d.z;
    if (d.beyond >= _UNUSUAL_MARGIN) {
      if (d.beyond > ev.unusual) ev.unusual = d.beyond;
      if (ev.unusualTokens.length < 8) ev.unusualTokens.push(String(v));
      // Name the bulk of what training saw: mean ± 3 sd (log space), within the range.
      const st = this.#stats[t]!;
      const k = st.positions.indexOf(pos);
      const c = st.count[k]!;
      const sd = c > 1 ? Math.sqrt(st.m2[k]! / (c - 1)) : 0;
      const lo = Math.max(st.min[k]!, st.mean[k]! - 3 * sd);
      const hi = Math.min(st.max[k]!, st.mean[k]! + 3 * sd);
      _range.strength = Math.min(1, d.beyond / 3);
      _range.a = _fromLog(lo);
      _range.b = _fromLog(hi);
      _addFinding(ev, pos, _range);
    }
  }

  /**
   * Write numeric statistics (templates and vocabulary are written by the caller).
   *
   * @param w The writer.
   */
  writeStats(w: ByteWriter): void {
    const nT = this.miner.templates.length;
    w.varint(nT);
    for (let i = 0; i < nT; i++) {
      const st = this.#stats[i];
      const n = st?.positions.length ?? 0;
      w.varint(n);
      for (let k = 0; k < n; k++) {
        w.varint(st!.positions[k]!);
        w.varint(st!.count[k]!);
        w.f32(st!.min[k]!);
        w.f32(st!.max[k]!);
        w.f32(st!.mean[k]!);
        w.f32(st!.m2[k]!);
      }
    }
    let structured = 0;
    for (let i = 0; i < nT; i++) if (this.#templateStructured[i] === 1) structured++;
    w.varint(structured);
    for (let i = 0; i < nT; i++) if (this.#templateStructured[i] === 1) w.varint(i);
    // Per template, a length-prefixed block of slot models, so a loader can
    // skip it and decode it on first use.
    for (let i = 0; i < nT; i++) {
      const raw = this.#slotBlocks[i];
      if (raw !== undefined) {
        w.varint(raw.length);
        w.bytes(raw);
        continue;
      }
      const slots = this.#slots[i] ?? [];
      let k = 0;
      for (const sm of slots) if (sm !== undefined) k++;
      if (k === 0) {
        w.varint(0);
        continue;
      }
      const b = new ByteWriter();
      b.varint(k);
      for (let p = 0; p < slots.length; p++) {
        const sm = slots[p];
        if (sm === undefined) continue;
        b.varint(p);
        sm.write(b);
      }
      const block = b.finish();
      w.varint(block.length);
      w.bytes(block);
    }
  }

  /**
   * Read numeric statistics written by {@linkcode FeatureModel.writeStats}.
   *
   * @param r The reader.
   * @throws {ModelFormatError} If the counts do not match the templates.
   */
  readStats(r: ByteReader): void {
    const nT = r.varint();
    if (nT !== this.miner.templates.length) {
      throw new ModelFormatError(
        `Cannot read model: ${nT} numeric sections for ${this.miner.templates.length} templates`,
      );
    }
    for (let i = 0; i < nT; i++) {
      const n = r.varint();
      if (n === 0) continue;
      const st: _NumericStats = {
        positions: new Array(n),
        count: new Array(n),
        min: new Array(n),
        max: new Array(n),
        mean: new Array(n),
        m2: new Array(n),
      };
      for (let k = 0; k < n; k++) {
        st.positions[k] = r.varint();
        st.count[k] = r.varint();
        st.min[k] = r.f32();
        st.max[k] = r.f32();
        st.mean[k] = r.f32();
        st.m2[k] = r.f32();
      }
      this.#stats[i] = st;
    }
    const structured = r.varint();
    for (let k = 0; k < structured; k++) {
      const i = r.varint();
      if (i >= nT) throw new ModelFormatError(`Cannot read model: template ${i} out of range`);
      this.markStructured(i);
    }
    for (let i = 0; i < nT; i++) {
      const len = r.varint();
      if (len > 0) this.#slotBlocks[i] = r.bytes(len);
    }
  }
}

/**
 * Rarity of a template seen `count` times in `n` lines: log((n+1)/(count+1)) / log(n+1).
 *
 * @param count Times seen.
 * @param n Training lines.
 * @returns A value in [0, 1]; 1 for never seen.
 */
export function rarityOf(count: number, n: number): number {
  return Math.log((n + 1) / (count + 1)) / Math.log(n + 1 + 1e-9 + (n === 0 ? 1 : 0));
}

/** A template seen at least this many times in training may recur routinely. */
export const RECURRING_MIN_COUNT = 5;
/** ... if it is at least this share of the training lines. */
export const RECURRING_MIN_SHARE = 0.002;

/**
 * Whether a template recurs routinely in training: at least
 * {@linkcode RECURRING_MIN_COUNT} times and {@linkcode RECURRING_MIN_SHARE}
 * of the lines (e.g. a known exception at its usual rate). Such a template is
 * normal at that rate: its rarity and severity weigh half, so it does not
 * alert each time it appears. A template seen a few times in a large history
 * (an anomaly that slipped into training) keeps both in full.
 *
 * @param count Times seen.
 * @param n Training lines.
 * @returns Whether it recurs routinely.
 */
export function isRecurring(count: number, n: number): boolean {
  return count >= RECURRING_MIN_COUNT && count >= RECURRING_MIN_SHARE * n;
}

/**
 * Quantise a numeric |z| into the feature value the forest sees (steps of 0.1).
 *
 * @param z |z| in log space.
 * @returns A value in [0, 1].
 */
export function quantizeZ(z: number): number {
  return Math.round(Math.min(1, z / 10) * 10) / 10;
}

const _NO_DEVIATION = Object.freeze({ z: 0, beyond: 0 });
const _finding: SlotFinding = { strength: 0, code: 0, a: 0, b: 0, c: 0, d: 0 };
const _range: SlotFinding = { strength: 0, code: FINDING.range, a: 0, b: 0, c: 0, d: 0 };

function _fromLog(x: number): number {
  // The inverse of signedLog.
  return x < 0 ? -Math.expm1(-x) : Math.expm1(x);
}

function _addFinding(ev: LineEvidence, pos: number, f: SlotFinding): void {
  // Keep the eight strongest, strongest first; a finding is copied only when kept.
  const strength = f.strength;
  const n = ev.findingPos.length;
  if (n >= 8 && strength <= ev.findingStrength[n - 1]!) return;
  let k = n >= 8 ? n - 1 : n;
  const slot = n >= 8 ? ev.findings[n - 1]! : ev.findings[n] ?? { ...f };
  while (k > 0 && ev.findingStrength[k - 1]! < strength) {
    ev.findingPos[k] = ev.findingPos[k - 1]!;
    ev.findingStrength[k] = ev.findingStrength[k - 1]!;
    ev.findings[k] = ev.findings[k - 1]!;
    k--;
  }
  slot.strength = f.strength;
  slot.code = f.code;
  slot.a = f.a;
  slot.b = f.b;
  slot.c = f.c;
  slot.d = f.d;
  ev.findingPos[k] = pos;
  ev.findingStrength[k] = strength;
  ev.findings[k] = slot;
}
const _deviation = { z: 0, beyond: 0 };
const _evidence: LineEvidence = createLineEvidence();
