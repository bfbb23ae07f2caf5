/**
 * The deploy report: what changed in a service's logs with a deploy. It
 * compares the first `windowMs` after the deploy (30 minutes by default) with
 * the baseline before it (`baselineMs`, 6 hours by default): templates new
 * after the deploy (each carrying the version it appeared in), templates gone,
 * templates whose rate moved most, and the anomalies raised after it.
 *
 * The window counts the lines of the new version only and the baseline those
 * of the others (by the image the container runs: the tasks of the version
 * before keep logging during a rolling update). A line's template here is
 * its masked form (numbers, ids, paths... as `<*>`, as for a container
 * without a model: `coldStartLine`), the same for every model version, so
 * the report needs no model and does not change when the service is
 * retrained.
 *
 * @module
 */

import type { Anomaly } from "../../shared/ports/anomaly.ts";
import type { Deploy } from "../../shared/ports/deploy.ts";
import { type LogEntry, tsToNanos } from "../../shared/ports/log_entry.ts";
import { coldStartLine } from "../../shared/detector/detector.ts";

/** A template first seen after the deploy. */
export interface NewTemplate {
  /** Its stable id (hash of the text). */
  templateId: string;
  /** The masked text. */
  template: string;
  /** Lines of it in the window. */
  count: number;
  /** The Docker timestamp of its first line. */
  firstSeen: string;
  /** Its first line. */
  example: string;
  /** The version (image) it appeared in. */
  version: string;
}

/** A template of the baseline not seen in the window. */
export interface GoneTemplate {
  /** Its stable id. */
  templateId: string;
  /** The masked text. */
  template: string;
  /** Lines of it in the baseline. */
  baselineCount: number;
  /** Lines expected in the window at the baseline's rate. */
  expected: number;
}

/** A template seen before and after, with both rates. */
export interface RateChange {
  /** Its stable id. */
  templateId: string;
  /** The masked text. */
  template: string;
  /** Lines per minute in the baseline. */
  beforePerMin: number;
  /** Lines per minute in the window. */
  afterPerMin: number;
  /** afterPerMin / beforePerMin. */
  ratio: number;
}

/** What changed with one deploy. */
export interface DeployReport {
  /** The deploy. */
  deploy: Deploy;
  /** The window after the deploy (ISO 8601, end exclusive). */
  window: { from: string; to: string };
  /** The baseline before it. */
  baseline: { from: string; to: string };
  /** False while the window is still running (the report grows until it ends). */
  complete: boolean;
  /** Lines read on each side (the window's of the new version; each capped at 200,000). */
  lines: { baseline: number; window: number };
  /** Templates first seen after the deploy, most frequent first. */
  newTemplates: NewTemplate[];
  /** Templates of the baseline expected at least `minExpected` times in the window and not seen. */
  goneTemplates: GoneTemplate[];
  /** Templates seen on both sides whose rate moved most (by the log of the ratio). */
  rateChanges: RateChange[];
  /** Anomalies of the service raised in the window. */
  anomalies: { count: number; byReason: Record<string, number>; first: Anomaly[] };
}

/** Options of {@linkcode buildDeployReport}. */
export interface DeployReportOptions {
  /**
   * The window after the deploy, in ms.
   * @default 1800000
   */
  windowMs?: number;
  /**
   * The baseline before it, in ms.
   * @default 21600000
   */
  baselineMs?: number;
  /**
   * Most entries in each list.
   * @default 20
   */
  top?: number;
  /**
   * A baseline template counts as gone when at least this many lines of it were expected.
   * @default 3
   */
  minExpected?: number;
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
}

/** Where a report reads from. */
export interface DeployReportSources {
  /** The service's history in a time range (the log store's `history`). */
  history: (
    key: string,
    options: { from: Date; to: Date; limit: number },
  ) => AsyncIterable<LogEntry>;
  /** The service's anomalies in a time range. */
  anomalies: (key: string, from: number, to: number) => Promise<Anomaly[]>;
}

/** Most lines read on each side of a deploy. */
export const DEPLOY_REPORT_MAX_LINES = 200_000;

interface _Stat {
  template: string;
  count: number;
  firstTs: string;
  example: string;
}

/**
 * Builds the report of one deploy.
 *
 * @example
 * ```ts
 * const report = await buildDeployReport(deploy, {
 *   history: (key, o) => logStore.history(key, o),
 *   anomalies: async () => [],
 * });
 * ```
 *
 * @param deploy the deploy
 * @param sources the history and anomalies of its service
 * @param options window, baseline and list sizes
 * @returns the report
 */
export async function buildDeployReport(
  deploy: Deploy,
  sources: DeployReportSources,
  options: DeployReportOptions = {},
): Promise<DeployReport> {
  const windowMs = options.windowMs ?? 1_800_000;
  const baselineMs = options.baselineMs ?? 21_600_000;
  const top = options.top ?? 20;
  const minExpected = options.minExpected ?? 3;
  const now = (options.now ?? Date.now)();
  const at = deploy.at;
  const windowEnd = at + windowMs;
  const baselineFrom = at - baselineMs;
  const [before, after, anomalies] = await Promise.all([
    // During a rolling update, tasks of the version before still log: the
    // window keeps the new version's lines, the baseline the others.
    _templates(
      sources,
      deploy.container,
      baselineFrom,
      at,
      (image) => deploy.image === deploy.previousImage || image !== deploy.image,
    ),
    _templates(sources, deploy.container, at, windowEnd, (image) => image === deploy.image),
    sources.anomalies(deploy.container, at, windowEnd),
  ]);
  // Rates over the time covered (at least a minute): the window may still
  // run, the baseline may reach before the service's first line.
  const windowMin = Math.max(1, (Math.min(now, windowEnd) - at) / 60_000);
  const baselineMin = Math.max(1, (at - Math.max(baselineFrom, before.firstMs ?? at)) / 60_000);
  const newTemplates: NewTemplate[] = [];
  const rateChanges: RateChange[] = [];
  for (const [templateId, s] of after.stats) {
    const b = before.stats.get(templateId);
    if (!b) {
      newTemplates.push({
        templateId,
        template: s.template,
        count: s.count,
        firstSeen: s.firstTs,
        example: s.example,
        version: deploy.image,
      });
      continue;
    }
    const beforePerMin = b.count / baselineMin;
    const afterPerMin = s.count / windowMin;
    rateChanges.push({
      templateId,
      template: s.template,
      beforePerMin: _round(beforePerMin),
      afterPerMin: _round(afterPerMin),
      ratio: _round(afterPerMin / beforePerMin),
    });
  }
  const goneTemplates: GoneTemplate[] = [];
  for (const [templateId, b] of before.stats) {
    if (after.stats.has(templateId)) continue;
    const expected = (b.count / baselineMin) * windowMin;
    if (expected < minExpected) continue;
    goneTemplates.push({
      templateId,
      template: b.template,
      baselineCount: b.count,
      expected: _round(expected),
    });
  }
  newTemplates.sort((x, y) => y.count - x.count || (x.firstSeen < y.firstSeen ? -1 : 1));
  goneTemplates.sort((x, y) => y.expected - x.expected);
  rateChanges.sort((x, y) => Math.abs(Math.log(y.ratio)) - Math.abs(Math.log(x.ratio)));
  const byReason: Record<string, number> = {};
  for (const a of anomalies) {
    for (const r of a.reasons.slice(0, 1)) byReason[r] = (byReason[r] ?? 0) + 1;
  }
  return {
    deploy,
    window: { from: new Date(at).toISOString(), to: new Date(windowEnd).toISOString() },
    baseline: { from: new Date(baselineFrom).toISOString(), to: new Date(at).toISOString() },
    complete: now >= windowEnd,
    lines: { baseline: before.lines, window: after.lines },
    newTemplates: newTemplates.slice(0, top),
    goneTemplates: goneTemplates.slice(0, top),
    rateChanges: rateChanges.filter((r) => r.ratio !== 1).slice(0, top),
    anomalies: { count: anomalies.length, byReason, first: anomalies.slice(0, top) },
  };
}

async function _templates(
  sources: DeployReportSources,
  key: string,
  from: number,
  to: number,
  keep: (image: string) => boolean,
): Promise<{ stats: Map<string, _Stat>; lines: number; firstMs: number | null }> {
  const stats = new Map<string, _Stat>();
  let lines = 0;
  let firstMs: number | null = null;
  if (to <= from) return { stats, lines, firstMs };
  for await (
    const e of sources.history(key, {
      from: new Date(from),
      to: new Date(to),
      limit: DEPLOY_REPORT_MAX_LINES,
    })
  ) {
    if (e.image && !keep(e.image)) continue;
    if (lines++ === 0) firstMs = Number(tsToNanos(e.ts) / 1_000_000n);
    const { template, templateId: id } = coldStartLine(e.line);
    const s = stats.get(id);
    if (s) s.count++;
    else stats.set(id, { template, count: 1, firstTs: e.ts, example: e.line.slice(0, 500) });
  }
  return { stats, lines, firstMs };
}

function _round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
