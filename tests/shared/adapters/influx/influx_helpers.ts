/**
 * Helpers of the InfluxDB tests: raw InfluxQL and line protocol straight
 * over HTTP (not through the adapter under test), and entry builders.
 *
 * @module
 */

import type { LogEntry } from "../../../../shared/ports/log_entry.ts";

/**
 * Runs InfluxQL and returns the first series' rows as objects.
 *
 * @param url InfluxDB base URL
 * @param q the statement
 * @param db the database
 * @returns rows of the first statement's series, all series concatenated
 * @throws {Error} when InfluxDB reports an error
 */
export async function influxQuery(
  url: string,
  q: string,
  db = "",
): Promise<Record<string, unknown>[]> {
  const params = new URLSearchParams({ q });
  if (db) params.set("db", db);
  const res = await fetch(`${url}/query`, { method: "POST", body: params });
  const body = await res.json() as {
    error?: string;
    results?: { error?: string; series?: { columns: string[]; values: unknown[][] }[] }[];
  };
  const err = body.error ?? body.results?.[0]?.error;
  if (err) throw new Error(`InfluxQL ${q}: ${err}`);
  const rows: Record<string, unknown>[] = [];
  for (const s of body.results?.[0]?.series ?? []) {
    for (const v of s.values) {
      const r: Record<string, unknown> = {};
      s.columns.forEach((c, i) => r[c] = v[i]);
      rows.push(r);
    }
  }
  return rows;
}

/**
 * Counts the points of a measurement (every part of every line).
 *
 * @param url InfluxDB base URL
 * @param db the database
 * @param measurement the measurement
 * @default measurement "logs"
 * @returns points with a `seq` field: one per entry
 */
export async function countEntries(url: string, db: string, measurement = "logs"): Promise<number> {
  const rows = await influxQuery(url, `SELECT count("cid") FROM "${measurement}"`, db);
  return Number(rows[0]?.count ?? 0);
}

/**
 * Drops a database.
 *
 * @param url InfluxDB base URL
 * @param db the database
 */
export async function dropDatabase(url: string, db: string): Promise<void> {
  await influxQuery(url, `DROP DATABASE "${db}"`);
}

/**
 * A unique database name for one test.
 *
 * @returns the name
 */
export function testDatabase(): string {
  return `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** A whole hour about an hour ago: test timestamps sit inside any retention policy. */
export const BASE_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;

/**
 * A Docker-style timestamp `seconds` after {@linkcode BASE_MS}.
 *
 * @param seconds offset from the base
 * @param frac fractional digits, without the dot
 * @default frac ""
 * @returns RFC 3339 in UTC
 */
export function at(seconds: number, frac = ""): string {
  return new Date(BASE_MS + seconds * 1000).toISOString().slice(0, 19) + (frac ? `.${frac}` : "") +
    "Z";
}

/**
 * A log entry with defaults.
 *
 * @param over fields to set
 * @returns the entry
 */
export function entry(over: Partial<LogEntry> = {}): LogEntry {
  return {
    containerId: "c0ffee".padEnd(64, "0"),
    containerName: "web-1",
    image: "nginx:1.27",
    stream: "stdout",
    ts: at(0, "123456789"),
    seq: 0,
    line: "GET / 200",
    ...over,
  };
}

/**
 * Collects an async iterable.
 *
 * @param it the iterable
 * @returns its items
 */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
