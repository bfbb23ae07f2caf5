/**
 * From timestamped lines to rate windows: learn a {@linkcode RateModel} with
 * a trained line model's templates, and judge every window of a span (those
 * without a line included) with a {@linkcode RateMonitor}. Pure: the caller
 * reads the lines.
 *
 * @example
 * ```ts
 * import { judgeSpan, learnRates } from "./rate_windows.ts";
 * import type { Detector } from "./detector.ts";
 * declare const detector: Detector;
 * const model = learnRates(detector, [{ time: Date.now(), line: "GET / 200" }]);
 * const windows = judgeSpan(model, detector, [{ time: Date.now(), line: "GET / 200" }]);
 * ```
 *
 * @module
 */

import type { Detector } from "./detector.ts";
import {
  RateModel,
  RateModelBuilder,
  type RateModelOptions,
  RateMonitor,
  type RateMonitorOptions,
  type RateWindow,
} from "./rate_model.ts";

/** A line and its timestamp. */
export interface TimedLine {
  /** Milliseconds since the epoch. */
  time: number;
  /** The line without its timestamp. */
  line: string;
}

/**
 * Learn a rate model from history lines, using the detector's templates.
 *
 * @param detector The service's trained line model.
 * @param lines The history (any order).
 * @param options Window and profile options.
 * @returns The rate model.
 */
export function learnRates(
  detector: Detector,
  lines: Iterable<TimedLine>,
  options: RateModelOptions = {},
): RateModel {
  const b = new RateModelBuilder(options);
  for (const { time, line } of lines) {
    const s = detector.score(line);
    b.add(time, s.templateId, s.template);
  }
  return b.finish();
}

/**
 * Judge every window from the one holding the first line to the one holding
 * the last, in order; windows without lines are judged too (that is how a
 * silence shows). The first and last windows count as watched only for the
 * part of them the lines span.
 *
 * @param model The rate model.
 * @param detector The line model (for template ids).
 * @param lines The lines to judge (any order).
 * @param options Monitor thresholds.
 * @returns One verdict per window.
 */
export function judgeSpan(
  model: RateModel,
  detector: Detector,
  lines: Iterable<TimedLine>,
  options: RateMonitorOptions = {},
): RateWindow[] {
  const w = model.windowMs;
  const windows = new Map<
    number,
    { total: number; templates: Map<string, number>; texts: Map<string, string> }
  >();
  let min = Infinity, max = -Infinity;
  for (const { time, line } of lines) {
    if (!Number.isFinite(time)) continue;
    if (time < min) min = time;
    if (time > max) max = time;
    const s = detector.score(line);
    const k = Math.floor(time / w);
    let win = windows.get(k);
    if (win === undefined) {
      win = { total: 0, templates: new Map(), texts: new Map() };
      windows.set(k, win);
    }
    win.total++;
    win.templates.set(s.templateId, (win.templates.get(s.templateId) ?? 0) + 1);
    if (!win.texts.has(s.templateId)) win.texts.set(s.templateId, s.template);
  }
  if (windows.size === 0) return [];
  const monitor = new RateMonitor(model, options);
  const firstK = Math.floor(min / w), lastK = Math.floor(max / w);
  const out: RateWindow[] = [];
  const empty = { total: 0, templates: new Map<string, number>() };
  for (let k = firstK; k <= lastK; k++) {
    const start = k * w;
    let coverage = 1;
    if (k === firstK) coverage = Math.min(coverage, (start + w - min) / w);
    if (k === lastK) coverage = Math.min(coverage, (max - start) / w);
    out.push(monitor.observe(start, windows.get(k) ?? empty, { coverage }));
  }
  return out;
}
