/**
 * The `rates` command of the CLI and the timestamp handling that `train` and
 * `score` share with it: lines as `docker logs -t` prints them, the time read
 * and stripped before the line model sees the line.
 *
 * @module
 */

import {
  Detector,
  formatTimestamp,
  judgeSpan,
  RateModel,
  splitModel,
  splitTimestamp,
  type TimedLine,
} from "../../shared/detector/detector.ts";

/**
 * Read timestamped lines: each line's leading RFC 3339 timestamp is read and
 * stripped; a line without one (a continuation) takes the time of the line
 * before it.
 *
 * @param lines The raw lines.
 * @returns The lines with their times.
 * @throws {Error} If the first line has no timestamp.
 */
export async function readTimedLines(lines: AsyncIterable<string>): Promise<TimedLine[]> {
  const out: TimedLine[] = [];
  let n = 0;
  let last = NaN;
  for await (const raw of lines) {
    n++;
    const s = splitTimestamp(raw);
    if (s !== null) {
      last = s.time;
      out.push(s);
    } else if (Number.isFinite(last)) {
      out.push({ time: last, line: raw });
    } else {
      throw new Error(
        `Cannot read line ${n} with --timestamps: expected an RFC 3339 timestamp first, ` +
          `as "docker logs -t" prints it (e.g. "2026-11-30T10:00:00.123456789Z message"), got ${
            JSON.stringify(raw.slice(0, 60))
          }`,
      );
    }
  }
  return out;
}

/**
 * Strip the leading RFC 3339 timestamp of each line, recording its time
 * (a line without one takes the time before it; `NaN` before the first).
 *
 * @param lines The raw lines.
 * @param times Receives one time per line, in order.
 * @returns The lines without their timestamps.
 */
export async function* stripTimestamps(
  lines: AsyncIterable<string>,
  times: number[],
): AsyncGenerator<string> {
  let last = NaN;
  for await (const raw of lines) {
    const s = splitTimestamp(raw);
    if (s !== null) last = s.time;
    times.push(last);
    yield s === null ? raw : s.line;
  }
}

/**
 * Load a container's line model and rate model from a registry blob.
 *
 * @param blob The registry blob.
 * @returns Both models; `rates` is undefined when the model was trained without timestamps.
 */
export function loadModels(blob: Uint8Array): { detector: Detector; rates?: RateModel } {
  const parts = splitModel(blob);
  return {
    detector: Detector.fromBytes(parts.detector),
    rates: parts.rates === undefined ? undefined : RateModel.fromBytes(parts.rates),
  };
}

/**
 * Judge every window of timestamped lines and render one JSON object per
 * window, in order.
 *
 * @param detector The line model.
 * @param rates The rate model.
 * @param lines The timestamped lines.
 * @param anomaliesOnly Print only anomalous windows.
 * @returns The JSONL text, one string per window.
 */
export function renderRates(
  detector: Detector,
  rates: RateModel,
  lines: readonly TimedLine[],
  anomaliesOnly: boolean,
): string[] {
  const out: string[] = [];
  for (const w of judgeSpan(rates, detector, lines)) {
    if (anomaliesOnly && !w.anomaly) continue;
    out.push(
      JSON.stringify({
        start: formatTimestamp(w.start),
        end: formatTimestamp(w.end),
        lines: w.lines,
        expected: w.expected,
        anomaly: w.anomaly,
        score: w.score,
        reasons: w.reasons,
        templates: w.templates,
      }) + "\n",
    );
  }
  return out;
}
