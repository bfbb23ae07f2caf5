/**
 * Rate models: how many lines a service writes per window (default one
 * minute), in total and per template, against a seasonal baseline learned
 * from history, and a monitor that turns the counts of each closed window
 * into `silence`, `rate_drop`, `rate_spike` and `template_gone` verdicts.
 * Pure: no I/O, no clock; the caller says which window closed and what it
 * counted.
 *
 * The baseline is a profile of the mean count per window in slots of the day
 * (30 minutes; the hour of the week once the history covers two weeks),
 * trimmed against incidents in the history, interpolated between slot centres
 * so a ramp is followed, with a dispersion learned from the history's own
 * residuals: variance = φ·λ + κ²·λ² (Poisson noise, burstiness, day-to-day
 * drift). Each window adds its log-likelihood ratio (counts scaled by
 * λ/variance) to a one-sided CUSUM per direction and series: drop (rate 0.3×),
 * flood (4×) for the total, spike (5×) and gone (0×) per regular template.
 * A window alerts when a CUSUM reaches its threshold and the window itself
 * points the same way; spikes must also exceed anything the history showed
 * (the highest count/expected ratio seen, times 1.5). Slots with too little
 * history never alert.
 *
 * @example
 * ```ts
 * import { RateModelBuilder, RateMonitor } from "./rate_model.ts";
 * const b = new RateModelBuilder();
 * // b.add(timeMs, templateId, template) for every history line
 * const model = b.finish();
 * const monitor = new RateMonitor(model);
 * const verdict = monitor.observe(windowStart, { total: 0, templates: new Map() });
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter } from "./binary.ts";
import { crc32 } from "./crc32.ts";
import { ModelFormatError } from "./model_format_error.ts";

/** Why a window is anomalous. */
export type RateReasonCode = "silence" | "rate_drop" | "rate_spike" | "template_gone";

/** One reason, with the expected and observed counts of the window. */
export interface RateReason {
  /** The reason code. */
  code: RateReasonCode;
  /** Lines expected in the window (of the template, when `templateId` is set). */
  expected: number;
  /** Lines observed in the window. */
  observed: number;
  /** The template concerned; absent for the service's total volume. */
  templateId?: string;
  /** The template's text. */
  template?: string;
  /** Consecutive windows the evidence spans (this one included). */
  windows: number;
}

/** A template whose count moved, as the monitor reports it. */
export interface TemplateMove {
  /** The template's id. */
  templateId: string;
  /** The template's text (empty when the model does not know it). */
  template: string;
  /** Lines of the template in the window. */
  observed: number;
  /** Lines expected (0 for a template the model does not track). */
  expected: number;
}

/** The verdict on one closed window. */
export interface RateWindow {
  /** Start of the window (ms since the epoch, inclusive). */
  start: number;
  /** End of the window (ms since the epoch, exclusive). */
  end: number;
  /** Lines in the window. */
  lines: number;
  /** Lines expected in the window; `null` when the history is too thin to say. */
  expected: number | null;
  /** Whether the window is anomalous. */
  anomaly: boolean;
  /** Strength of the evidence in [0, 1]; 0.5 is the alert threshold. */
  score: number;
  /** Why it is anomalous (empty when it is not). */
  reasons: RateReason[];
  /** The templates whose counts moved most (up to five). */
  templates: TemplateMove[];
}

/** What one window counted. */
export interface WindowCounts {
  /** Lines in the window. */
  total: number;
  /** Lines per template id. */
  templates: ReadonlyMap<string, number>;
  /** Template texts by id, for templates the model may not know. */
  texts?: ReadonlyMap<string, string>;
}

/** Options of {@linkcode RateModelBuilder}. */
export interface RateModelOptions {
  /**
   * Window length in milliseconds.
   * @default {60000}
   */
  windowMs?: number;
  /**
   * Slot width of the hour-of-day profile in minutes (a divisor of 1440);
   * the hour-of-week profile always uses 60.
   * @default {30}
   */
  slotMinutes?: number;
  /**
   * History span (days) from which the hour-of-week profile is used.
   * @default {14}
   */
  weeklyAfterDays?: number;
  /**
   * Most templates tracked (by count).
   * @default {256}
   */
  maxTemplates?: number;
}

/** Options of {@linkcode RateMonitor}. */
export interface RateMonitorOptions {
  /**
   * CUSUM threshold (log-likelihood ratio, natural log) for the total volume.
   * @default {12}
   */
  totalThreshold?: number;
  /**
   * CUSUM threshold for a template.
   * @default {14}
   */
  templateThreshold?: number;
}

/** The baseline of one series (the total or one template). */
interface _Series {
  /** Mean count per window, per slot. */
  mean: Float32Array;
  /** Poisson-like dispersion φ ≥ 1. */
  phi: number;
  /** Squared relative drift κ². */
  kappa2: number;
  /** Highest (count+1)/(expected+1) seen in the history. */
  maxRatio: number;
  /**
   * Longest run of windows without a line where at least 0.5 were expected
   * (a template that comes in bursts has long ones; `template_gone` waits
   * longer than that).
   */
  maxZeroRun: number;
}

const _MAGIC = [0x54, 0x57, 0x52, 0x4d]; // "TWRM"
const _VERSION = 2;
/** Rate model versions {@linkcode RateModel.fromBytes} reads (1: without `maxZeroRun`). */
const _READABLE = [1, 2];
const _HEADER = 12;
const _DAY = 86_400_000;
const _WEEK = 7 * _DAY;
/** Windows of history a slot needs before it may alert. */
const _MIN_SLOT_WINDOWS = 20;
/** Lines of history a template needs to be tracked. */
const _MIN_TEMPLATE_LINES = 20;
/** Expected lines per window from which a template's stop is watched. */
const _GONE_MIN_EXPECTED = 0.5;
const _RHO_DROP = 0.3;
const _RHO_FLOOD = 4;
const _RHO_SPIKE = 5;

/** A learned rate model of one service. */
export class RateModel {
  /** Window length (ms). */
  readonly windowMs: number;
  /** Profile period (ms): a day or a week. */
  readonly periodMs: number;
  /** Slot width (ms). */
  readonly slotMs: number;
  /** First and last time of the history (ms since the epoch). */
  readonly trainedFrom: number;
  /** Last time of the history. */
  readonly trainedTo: number;
  /** History windows per slot. */
  readonly coverage: Uint32Array;
  /** @internal The total's baseline. */
  readonly total: _Series;
  /** @internal Tracked templates: id → text and baseline. */
  readonly templates: ReadonlyMap<string, { template: string; series: _Series }>;

  /** @internal Build with {@linkcode RateModelBuilder} or {@linkcode RateModel.fromBytes}. */
  constructor(state: {
    windowMs: number;
    periodMs: number;
    slotMs: number;
    trainedFrom: number;
    trainedTo: number;
    coverage: Uint32Array;
    total: _Series;
    templates: Map<string, { template: string; series: _Series }>;
  }) {
    this.windowMs = state.windowMs;
    this.periodMs = state.periodMs;
    this.slotMs = state.slotMs;
    this.trainedFrom = state.trainedFrom;
    this.trainedTo = state.trainedTo;
    this.coverage = state.coverage;
    this.total = state.total;
    this.templates = state.templates;
  }

  /** Number of slots in the profile. */
  get slots(): number {
    return this.coverage.length;
  }

  /**
   * Lines expected in the window starting at `start`.
   *
   * @param start Window start (ms since the epoch).
   * @param templateId A tracked template; the total when omitted.
   * @returns The expected count, or `null` when the history is too thin there
   * (or the template is not tracked).
   */
  expected(start: number, templateId?: string): number | null {
    const series = templateId === undefined ? this.total : this.templates.get(templateId)?.series;
    if (series === undefined) return null;
    return this.#interpolate(series.mean, start + this.windowMs / 2);
  }

  /**
   * The expected count of the window starting at `start` and the band of
   * normal counts around it (± `z` standard deviations of the learned
   * variance φ·λ + κ²·λ², floored at 0).
   *
   * @param start Window start (ms since the epoch).
   * @param z Width of the band in standard deviations.
   * @default {z} 3
   * @returns The expected count and band, or null where the history is too thin.
   */
  band(start: number, z = 3): { expected: number; low: number; high: number } | null {
    const e = this.expected(start);
    if (e === null) return null;
    const sd = Math.sqrt(this.total.phi * e + this.total.kappa2 * e * e);
    return { expected: e, low: Math.max(0, e - z * sd), high: e + z * sd };
  }

  /** @internal Expected count of a series at time `t`, or null. */
  seriesExpected(series: _Series, t: number): number | null {
    return this.#interpolate(series.mean, t);
  }

  #interpolate(mean: Float32Array, t: number): number | null {
    const n = this.coverage.length;
    const phase = (((t % this.periodMs) + this.periodMs) % this.periodMs) / this.slotMs - 0.5;
    const lo = Math.floor(phase);
    const frac = phase - lo;
    const i0 = ((lo % n) + n) % n, i1 = (i0 + 1) % n;
    const ok0 = this.coverage[i0]! >= _MIN_SLOT_WINDOWS,
      ok1 = this.coverage[i1]! >= _MIN_SLOT_WINDOWS;
    if (ok0 && ok1) return mean[i0]! * (1 - frac) + mean[i1]! * frac;
    if (ok0 && frac < 0.5) return mean[i0]!;
    if (ok1 && frac >= 0.5) return mean[i1]!;
    return null;
  }

  /**
   * Serialise: magic `TWRM`, version, payload length, payload, CRC-32.
   *
   * @returns The blob.
   */
  toBytes(): Uint8Array {
    const w = new ByteWriter();
    for (const b of _MAGIC) w.u8(b);
    w.u8(_VERSION);
    w.u8(0);
    w.u8(0);
    w.u8(0);
    w.u32(0);
    w.varint(this.windowMs);
    w.varint(this.periodMs);
    w.varint(this.slotMs);
    w.f64(this.trainedFrom);
    w.f64(this.trainedTo);
    w.varint(this.coverage.length);
    for (const c of this.coverage) w.varint(c);
    _writeSeries(w, this.total);
    w.varint(this.templates.size);
    for (const [id, t] of this.templates) {
      w.str(id);
      w.str(t.template);
      _writeSeries(w, t.series);
    }
    const body = w.finish();
    const out = new Uint8Array(body.length + 4);
    out.set(body);
    const view = new DataView(out.buffer);
    view.setUint32(8, body.length - _HEADER, true);
    view.setUint32(body.length, crc32(out, 0, body.length), true);
    return out;
  }

  /**
   * Load a model written by {@linkcode RateModel.toBytes}.
   *
   * @param bytes The blob.
   * @returns The model.
   * @throws {ModelFormatError} If the blob is not a rate model, has another
   * version, fails its checksum or is truncated.
   */
  static fromBytes(bytes: Uint8Array): RateModel {
    if (bytes.length < _HEADER + 4) {
      throw new ModelFormatError(
        `Cannot read rate model: ${bytes.length} bytes is shorter than the ${
          _HEADER + 4
        }-byte frame`,
      );
    }
    for (let i = 0; i < 4; i++) {
      if (bytes[i] !== _MAGIC[i]) {
        throw new ModelFormatError("Cannot read rate model: bad magic, expected a TWRM blob");
      }
    }
    const version = bytes[4]!;
    if (!_READABLE.includes(version)) {
      throw new ModelFormatError(
        `Cannot read rate model format version ${version}: expected one of ${_READABLE.join(", ")}`,
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const payload = view.getUint32(8, true);
    if (_HEADER + payload + 4 !== bytes.length) {
      throw new ModelFormatError(
        `Cannot read rate model: length ${bytes.length} does not match payload length ${payload}`,
      );
    }
    if (view.getUint32(_HEADER + payload, true) !== crc32(bytes, 0, _HEADER + payload)) {
      throw new ModelFormatError("Cannot read rate model: checksum mismatch");
    }
    const r = new ByteReader(bytes, _HEADER, _HEADER + payload);
    const windowMs = r.varint();
    const periodMs = r.varint();
    const slotMs = r.varint();
    const trainedFrom = r.f64();
    const trainedTo = r.f64();
    const slots = r.varint();
    if (slots === 0 || slots * slotMs !== periodMs || windowMs <= 0) {
      throw new ModelFormatError(
        `Cannot read rate model: ${slots} slots of ${slotMs} ms do not make a period of ${periodMs} ms`,
      );
    }
    const coverage = new Uint32Array(slots);
    for (let i = 0; i < slots; i++) coverage[i] = r.varint();
    const total = _readSeries(r, slots, version);
    const n = r.varint();
    const templates = new Map<string, { template: string; series: _Series }>();
    for (let i = 0; i < n; i++) {
      const id = r.str();
      const template = r.str();
      templates.set(id, { template, series: _readSeries(r, slots, version) });
    }
    return new RateModel({
      windowMs,
      periodMs,
      slotMs,
      trainedFrom,
      trainedTo,
      coverage,
      total,
      templates,
    });
  }
}

function _writeSeries(w: ByteWriter, s: _Series): void {
  w.f64(s.phi);
  w.f64(s.kappa2);
  w.f64(s.maxRatio);
  w.varint(s.maxZeroRun);
  for (const m of s.mean) w.f32(m);
}

function _readSeries(r: ByteReader, slots: number, version: number): _Series {
  const phi = r.f64();
  const kappa2 = r.f64();
  const maxRatio = r.f64();
  const maxZeroRun = version >= 2 ? r.varint() : 0;
  const mean = r.f32Array(slots);
  return { phi, kappa2, maxRatio, maxZeroRun, mean };
}

/**
 * Learns a {@linkcode RateModel} from timestamped history lines (in any
 * order).
 */
export class RateModelBuilder {
  #windowMs: number;
  #slotMinutes: number;
  #weeklyAfterDays: number;
  #maxTemplates: number;
  #min = Infinity;
  #max = -Infinity;
  #total = new Map<number, number>();
  #templates = new Map<string, { template: string; lines: number; counts: Map<number, number> }>();

  /** @param options Window, slot width, weekly switch and template cap. */
  constructor(options: RateModelOptions = {}) {
    const { windowMs = 60_000, slotMinutes = 30, weeklyAfterDays = 14, maxTemplates = 256 } =
      options;
    if (!Number.isInteger(windowMs) || windowMs < 1000 || windowMs > 3_600_000) {
      throw new RangeError(`Cannot use windowMs ${windowMs}: expected an integer in 1000..3600000`);
    }
    if (!Number.isInteger(slotMinutes) || slotMinutes < 1 || 1440 % slotMinutes !== 0) {
      throw new RangeError(`Cannot use slotMinutes ${slotMinutes}: expected a divisor of 1440`);
    }
    if (slotMinutes * 60_000 < windowMs) {
      throw new RangeError(
        `Cannot use slotMinutes ${slotMinutes} with windowMs ${windowMs}: a slot must hold a window`,
      );
    }
    this.#windowMs = windowMs;
    this.#slotMinutes = slotMinutes;
    this.#weeklyAfterDays = weeklyAfterDays;
    this.#maxTemplates = maxTemplates;
  }

  /** Lines added so far. */
  lines = 0;

  /**
   * Count one history line.
   *
   * @param time Its timestamp (ms since the epoch).
   * @param templateId Its template id.
   * @param template Its template text.
   */
  add(time: number, templateId: string, template: string): void {
    if (!Number.isFinite(time)) return;
    this.lines++;
    if (time < this.#min) this.#min = time;
    if (time > this.#max) this.#max = time;
    const w = Math.floor(time / this.#windowMs);
    this.#total.set(w, (this.#total.get(w) ?? 0) + 1);
    let t = this.#templates.get(templateId);
    if (t === undefined) {
      t = { template, lines: 0, counts: new Map() };
      this.#templates.set(templateId, t);
    }
    t.lines++;
    t.counts.set(w, (t.counts.get(w) ?? 0) + 1);
  }

  /**
   * Build the model from the lines added.
   *
   * @returns The model; with no lines, a model that never alerts.
   */
  finish(): RateModel {
    const wMs = this.#windowMs;
    const spanDays = (this.#max - this.#min) / _DAY;
    const weekly = this.lines > 0 && spanDays >= this.#weeklyAfterDays;
    const periodMs = weekly ? _WEEK : _DAY;
    const slotMs = weekly ? 3_600_000 : this.#slotMinutes * 60_000;
    const slots = periodMs / slotMs;
    // Full windows of the history: those the span covers to at least 90 %.
    const first = this.lines > 0 ? Math.floor((this.#min + 0.1 * wMs) / wMs) : 0;
    const last = this.lines > 0 ? Math.floor((this.#max - 0.9 * wMs) / wMs) : -1;
    const n = Math.max(0, last - first + 1);
    const slotOf = new Uint32Array(n);
    const coverage = new Uint32Array(slots);
    for (let i = 0; i < n; i++) {
      const t = (first + i) * wMs + wMs / 2;
      const s = Math.floor((((t % periodMs) + periodMs) % periodMs) / slotMs);
      slotOf[i] = s;
      coverage[s]!++;
    }
    const dense = (counts: Map<number, number>): Float64Array => {
      const out = new Float64Array(n);
      for (const [w, c] of counts) {
        const i = w - first;
        if (i >= 0 && i < n) out[i] = c;
      }
      return out;
    };
    const ctx = { n, slots, slotOf, coverage, first, wMs, periodMs, slotMs };
    const total = _fitSeries(dense(this.#total), ctx);
    const templates = new Map<string, { template: string; series: _Series }>();
    const ranked = [...this.#templates].filter(([, t]) => t.lines >= _MIN_TEMPLATE_LINES)
      .sort((a, b) => b[1].lines - a[1].lines || (a[0] < b[0] ? -1 : 1))
      .slice(0, this.#maxTemplates);
    for (const [id, t] of ranked) {
      templates.set(id, { template: t.template, series: _fitSeries(dense(t.counts), ctx) });
    }
    return new RateModel({
      windowMs: wMs,
      periodMs,
      slotMs,
      trainedFrom: Number.isFinite(this.#min) ? this.#min : 0,
      trainedTo: Number.isFinite(this.#max) ? this.#max : 0,
      coverage,
      total,
      templates,
    });
  }
}

interface _FitContext {
  n: number;
  slots: number;
  slotOf: Uint32Array;
  coverage: Uint32Array;
  first: number;
  wMs: number;
  periodMs: number;
  slotMs: number;
}

/** Fit one series: trimmed slot means, then dispersion from the residuals. */
function _fitSeries(counts: Float64Array, ctx: _FitContext): _Series {
  const { n, slots, slotOf } = ctx;
  const bySlot: number[][] = Array.from({ length: slots }, () => []);
  for (let i = 0; i < n; i++) bySlot[slotOf[i]!]!.push(counts[i]!);
  const mean = new Float32Array(slots);
  for (let s = 0; s < slots; s++) mean[s] = _robustMean(bySlot[s]!);
  // Residuals against the interpolated profile.
  const interp = (t: number): number => {
    const phase = (((t % ctx.periodMs) + ctx.periodMs) % ctx.periodMs) / ctx.slotMs - 0.5;
    const lo = Math.floor(phase);
    const frac = phase - lo;
    const i0 = ((lo % slots) + slots) % slots, i1 = (i0 + 1) % slots;
    return mean[i0]! * (1 - frac) + mean[i1]! * frac;
  };
  let pearson = 0, pearsonN = 0, drift = 0, driftN = 0, maxRatio = 1;
  let zeroRun = 0, maxZeroRun = 0;
  for (let i = 0; i < n; i++) {
    if (ctx.coverage[slotOf[i]!]! < _MIN_SLOT_WINDOWS) continue;
    const e = interp((ctx.first + i) * ctx.wMs + ctx.wMs / 2);
    const c = counts[i]!;
    if (e < 10) {
      const ef = Math.max(e, 0.05);
      const r = (c - ef) / Math.sqrt(ef);
      pearson += Math.min(r * r, 36);
      pearsonN++;
    } else {
      const d = ((c - e) * (c - e) - e) / (e * e);
      drift += Math.max(-0.25, Math.min(0.25, d));
      driftN++;
    }
    const ratio = (c + 1) / (e + 1);
    if (ratio > maxRatio) maxRatio = ratio;
    zeroRun = c === 0 && e >= _GONE_MIN_EXPECTED ? zeroRun + 1 : 0;
    if (zeroRun > maxZeroRun) maxZeroRun = zeroRun;
  }
  const phiRaw = pearsonN > 0 ? pearson / pearsonN : 1;
  // κ² from windows with enough lines; twice the in-sample figure because the
  // baseline saw these very windows; at least 5 % relative drift.
  const kappa2 = Math.max(0.0025, driftN > 0 ? 2 * drift / driftN : 0);
  // φ: the Pearson residuals of the low-count windows (the drift term covers
  // the high ones), at least Poisson.
  const phi = Math.max(1, Math.min(50, phiRaw));
  return { mean, phi, kappa2, maxRatio, maxZeroRun };
}

/**
 * Mean robust to incidents in the history: the mean of the values between
 * the 10th and 90th percentiles when counts are high (median ≥ 5), else the
 * mean with the top 2 % winsorised.
 */
function _robustMean(values: number[]): number {
  if (values.length === 0) return 0;
  const v = values.slice().sort((a, b) => a - b);
  const median = v[v.length >> 1]!;
  if (median >= 5) {
    const lo = Math.floor(v.length * 0.1), hi = Math.ceil(v.length * 0.9);
    let s = 0;
    for (let i = lo; i < hi; i++) s += v[i]!;
    return s / Math.max(1, hi - lo);
  }
  const cap = v[Math.min(v.length - 1, Math.floor(v.length * 0.98))]!;
  let s = 0;
  for (const x of v) s += Math.min(x, cap);
  return s / v.length;
}

/** Per-series CUSUM state. */
interface _Cusum {
  s: number;
  windows: number;
}

/**
 * Watches closed windows against a {@linkcode RateModel} and says which are
 * anomalous. Keeps a few numbers per series (CUSUM statistics), so replaying
 * the last ~30 windows' counts into a fresh monitor gives the same verdict:
 * the distributed scorer relies on that.
 */
export class RateMonitor {
  /** The model. */
  readonly model: RateModel;
  #hTotal: number;
  #hTemplate: number;
  #drop: _Cusum = { s: 0, windows: 0 };
  #flood: _Cusum = { s: 0, windows: 0 };
  #spike = new Map<string, _Cusum>();
  #gone = new Map<string, _Cusum>();

  /**
   * @param model The service's rate model.
   * @param options Thresholds.
   */
  constructor(model: RateModel, options: RateMonitorOptions = {}) {
    this.model = model;
    this.#hTotal = options.totalThreshold ?? 12;
    this.#hTemplate = options.templateThreshold ?? 14;
  }

  /**
   * Judge one closed window. Call in time order, once per window, including
   * windows without lines.
   *
   * @param start The window's start (ms since the epoch; a multiple of the window).
   * @param counts What it counted.
   * @param options `coverage`: the share of the window that was watched
   * (a partial first or last window), default 1; below 0.5 it never alerts.
   * @returns The verdict.
   */
  observe(start: number, counts: WindowCounts, options: { coverage?: number } = {}): RateWindow {
    const model = this.model;
    const w = model.windowMs;
    const coverage = Math.max(0, Math.min(1, options.coverage ?? 1));
    const mid = start + w / 2;
    const reasons: RateReason[] = [];
    let score = 0;
    const eRaw = model.seriesExpected(model.total, mid);
    const expected = eRaw === null ? null : eRaw * coverage;
    const k = counts.total;
    const judged = expected !== null && coverage >= 0.5;
    let volumeDown = false;
    if (judged) {
      const e = Math.max(expected, 0.05);
      const f = _scale(model.total, e);
      // Drop (and silence): alternative rate ρ·λ.
      const dropLlr = f * (k * Math.log(_RHO_DROP) + (1 - _RHO_DROP) * e);
      const drop = _step(this.#drop, dropLlr, this.#hTotal);
      score = Math.max(score, _score(this.#drop.s, this.#hTotal));
      if (drop) {
        volumeDown = true;
        reasons.push({
          code: k === 0 ? "silence" : "rate_drop",
          expected: _round(expected),
          observed: k,
          windows: this.#drop.windows,
        });
      } else if (this.#drop.s >= this.#hTotal / 2) volumeDown = true;
      const floodLlr = f * (k * Math.log(_RHO_FLOOD) - (_RHO_FLOOD - 1) * e);
      const floodCusum = _step(this.#flood, floodLlr, this.#hTotal);
      const beyond = (k + 1) / (e + 1) > Math.max(2, 1.5 * model.total.maxRatio);
      if (floodCusum && beyond) {
        score = Math.max(score, _score(this.#flood.s, this.#hTotal));
        reasons.push({
          code: "rate_spike",
          expected: _round(expected),
          observed: k,
          windows: this.#flood.windows,
        });
      } else {
        score = Math.max(score, Math.min(0.49, _score(this.#flood.s, this.#hTotal)));
      }
    } else {
      this.#drop.s = 0;
      this.#flood.s = 0;
    }
    // Templates.
    const moves: (TemplateMove & { z: number })[] = [];
    for (const [id, t] of model.templates) {
      const eT0 = model.seriesExpected(t.series, mid);
      const kT = counts.templates.get(id) ?? 0;
      if (eT0 === null || !judged) {
        this.#spike.delete(id);
        this.#gone.delete(id);
        continue;
      }
      const eT = Math.max(eT0 * coverage, 0.01);
      moves.push({
        templateId: id,
        template: t.template,
        observed: kT,
        expected: _round(eT),
        z: (kT - eT) / Math.sqrt(eT + 1),
      });
      const f = _scale(t.series, eT);
      let sp = this.#spike.get(id);
      if (sp === undefined) this.#spike.set(id, sp = { s: 0, windows: 0 });
      const spikeLlr = f * (kT * Math.log(_RHO_SPIKE) - (_RHO_SPIKE - 1) * eT);
      const spike = _step(sp, spikeLlr, this.#hTemplate);
      const beyond = (kT + 1) / (eT + 1) > Math.max(3, 1.5 * t.series.maxRatio) && kT >= 5;
      if (spike && beyond) {
        score = Math.max(score, _score(sp.s, this.#hTemplate));
        reasons.push({
          code: "rate_spike",
          expected: _round(eT),
          observed: kT,
          templateId: id,
          template: t.template,
          windows: sp.windows,
        });
      }
      if (eT >= _GONE_MIN_EXPECTED * coverage) {
        let g = this.#gone.get(id);
        if (g === undefined) this.#gone.set(id, g = { s: 0, windows: 0 });
        if (kT > 0 || volumeDown || k < 0.5 * expected!) {
          // A line of it, or the whole service is down (silence/rate_drop say it).
          g.s = 0;
          g.windows = 0;
        } else {
          g.s = Math.min(g.s + f * eT, 5 * this.#hTemplate);
          g.windows++;
          if (g.s >= this.#hTemplate && g.windows > 1.5 * t.series.maxZeroRun) {
            score = Math.max(score, _score(g.s, this.#hTemplate));
            reasons.push({
              code: "template_gone",
              expected: _round(eT),
              observed: 0,
              templateId: id,
              template: t.template,
              windows: g.windows,
            });
          }
        }
      } else this.#gone.delete(id);
    }
    for (const [id, kT] of counts.templates) {
      if (model.templates.has(id) || kT < 3) continue;
      moves.push({
        templateId: id,
        template: counts.texts?.get(id) ?? "",
        observed: kT,
        expected: 0,
        z: kT,
      });
    }
    moves.sort((a, b) => Math.abs(b.z) - Math.abs(a.z) || (a.templateId < b.templateId ? -1 : 1));
    const templates = moves.slice(0, 5).filter((m) => m.z !== 0).map(({ z: _z, ...m }) => m);
    return {
      start,
      end: start + w,
      lines: k,
      expected: expected === null ? null : _round(expected),
      anomaly: reasons.length > 0,
      score: _round(reasons.length > 0 ? Math.max(score, 0.5) : Math.min(score, 0.49), 3),
      reasons,
      templates,
    };
  }
}

/** Effective-count scale λ / variance for a series at expectation e. */
function _scale(s: _Series, e: number): number {
  return 1 / (s.phi + s.kappa2 * e);
}

/**
 * One CUSUM step: add the window's log-likelihood ratio, floor at 0, cap at
 * 5h; once alerting, a window that points the other way ends the run.
 *
 * @returns Whether the window alerts.
 */
function _step(c: _Cusum, llr: number, h: number): boolean {
  if (c.s >= h && llr <= 0) {
    c.s = 0;
    c.windows = 0;
    return false;
  }
  const next = Math.min(5 * h, Math.max(0, c.s + llr));
  c.windows = next > 0 ? c.windows + 1 : 0;
  c.s = next;
  return next >= h && llr > 0;
}

function _score(s: number, h: number): number {
  return s <= 0 ? 0 : s / (s + h);
}

function _round(x: number, digits = 2): number {
  const m = 10 ** digits;
  return Math.round(x * m) / m;
}
