/**
 * The RFC 3339 timestamp that `docker logs -t` puts in front of each line
 * (`2026-11-30T10:00:00.123456789Z message`): read it and strip it, so the
 * template never includes the time.
 *
 * @example
 * ```ts
 * import { splitTimestamp } from "./timestamp.ts";
 * const s = splitTimestamp("2026-11-30T10:00:00.5Z GET / 200");
 * // s = { time: 1796032800500, line: "GET / 200" }
 * ```
 *
 * @module
 */

const _RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))(?:\s|$)/;

/** A line split into its leading timestamp and the rest. */
export interface TimestampedLine {
  /** The timestamp, in milliseconds since the Unix epoch (sub-millisecond digits dropped). */
  time: number;
  /** The line without the timestamp and the one space or tab after it. */
  line: string;
}

/**
 * Read the RFC 3339 timestamp at the start of a line.
 *
 * @param line A log line as `docker logs -t` prints it.
 * @returns The time and the rest of the line, or `null` when the line does
 * not start with an RFC 3339 timestamp followed by a space, a tab or its end.
 */
export function splitTimestamp(line: string): TimestampedLine | null {
  const m = _RE.exec(line);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
  const month = Number(mo), day = Number(d), hour = Number(h), min = Number(mi), sec = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return null;
  }
  let time = Date.UTC(Number(y), month - 1, day, hour, min, sec);
  if (frac !== undefined) time += Math.floor(Number((frac + "00").slice(0, 3)));
  if (z === undefined) {
    const offset = (Number(oh) * 60 + Number(om)) * 60_000;
    time += sign === "+" ? -offset : offset;
  }
  if (!Number.isFinite(time)) return null;
  return { time, line: line.slice(m[0].length) };
}

/**
 * Format a time as RFC 3339 in UTC with millisecond precision.
 *
 * @param time Milliseconds since the Unix epoch.
 * @returns For example `2026-11-30T10:00:00.000Z`.
 */
export function formatTimestamp(time: number): string {
  return new Date(time).toISOString();
}
