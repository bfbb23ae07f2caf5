/**
 * Benchmark of the embedded adapters, side by side in one run: the SQLite
 * adapters (`shared/adapters/sqlite/`) and, where they still run, the
 * file-based adapters they replaced (journal stream and JSON-lines history,
 * taken from git at {@linkcode LEGACY_REF}). For each: the log stream's append
 * and read+ack rates, the history's write and read rates, bytes per line on
 * disk, and the process's RSS once the stream holds 1,000,000 entries.
 *
 * Each side runs in child processes of its own (rates, then RSS on a fresh
 * stream), so that RSS is its own.
 * Lines are realistic access-log lines of a few containers, appended in
 * batches (with a checkpoint state key per append) as collect does.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { entryToFields, type LogEntry } from "../shared/ports/log_entry.ts";
import type { LogStream } from "../shared/ports/log_stream.ts";
import type { LogStore } from "../shared/ports/log_store.ts";

/** The commit whose file-based adapters are measured beside the SQLite ones. */
export const LEGACY_REF = "a470d49";

/** Options of {@linkcode benchEmbedded}. */
export interface EmbeddedBenchOptions {
  /** Progress messages. */
  log: (msg: string) => void;
  /**
   * Lines per rate measurement.
   * @default 200000
   */
  lines?: number;
  /**
   * Lines per append, read and write call.
   * @default 500
   */
  batch?: number;
  /**
   * Entries in the stream when RSS is measured.
   * @default 1000000
   */
  rssEntries?: number;
  /**
   * Rate measurements per side, taken in turns (legacy, SQLite, legacy, ...);
   * the best of each is reported, as the machine's load varies.
   * @default 3
   */
  rounds?: number;
}

type _Side = "sqlite" | "legacy";

/**
 * Measures both sides in child processes and temp dirs, removed afterwards.
 *
 * @param options progress log, lines, batch size, entries for the RSS figure
 * @returns per side, lines per second of each operation, bytes per line,
 *   RSS in MiB at `rssEntries`, and the SQLite/legacy ratios
 */
export async function benchEmbedded(
  options: EmbeddedBenchOptions,
): Promise<Record<string, number | string | null>> {
  const n = options.lines ?? 200_000;
  const batch = options.batch ?? 500;
  const rssEntries = options.rssEntries ?? 1_000_000;
  const rounds = options.rounds ?? 3;
  const figures: Record<string, number | string | null> = {
    lines: n,
    batch,
    rounds,
    rss_entries: rssEntries,
  };
  const legacy = await _legacyTree(options.log);
  try {
    const sides: _Side[] = legacy ? ["legacy", "sqlite"] : ["sqlite"];
    if (!legacy) figures.legacy = `not available (git archive ${LEGACY_REF} failed)`;
    const runs = [
      ...Array.from({ length: rounds }, () => sides.map((side) => [side, "rates"] as const)).flat(),
      ...sides.map((side) => [side, "rss"] as const),
    ];
    for (const [side, what] of runs) {
      options.log(`${side}: ${what} in a child process`);
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          new URL(import.meta.url).pathname,
          side,
          what,
          String(what === "rates" ? n : rssEntries),
          String(batch),
          side === "legacy" ? legacy! : "",
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`the ${side} ${what} part of the embedded bench failed`);
      const got = JSON.parse(new TextDecoder().decode(out.stdout)) as Record<string, number>;
      for (const [k, v] of Object.entries(got)) {
        const key = `${side}_${k}`;
        const old = figures[key];
        // Rates: the best round; times: the best (least) round; sizes: the same every round.
        figures[key] = typeof old !== "number"
          ? v
          : k.endsWith("_per_s")
          ? Math.max(old, v)
          : k.endsWith("_ms") || k.includes("_cpu_")
          ? Math.min(old, v)
          : v;
      }
    }
  } finally {
    if (legacy) await Deno.remove(legacy, { recursive: true });
  }
  for (const k of ["stream_append", "stream_read_ack", "history_write", "history_read"]) {
    const a = figures[`sqlite_${k}_lines_per_s`];
    const b = figures[`legacy_${k}_lines_per_s`];
    if (typeof a === "number" && typeof b === "number") {
      figures[`ratio_${k}`] = Math.round((a / b) * 100) / 100;
    }
    // CPU per line: legacy / SQLite, so that above 1 means SQLite costs less.
    const ca = figures[`sqlite_${k}_cpu_us_per_line`];
    const cb = figures[`legacy_${k}_cpu_us_per_line`];
    if (typeof ca === "number" && typeof cb === "number" && ca > 0) {
      figures[`ratio_${k}_cpu`] = Math.round((cb / ca) * 100) / 100;
    }
  }
  return figures;
}

/** Extracts `shared/` of {@linkcode LEGACY_REF} into a temp dir; null when git cannot. */
async function _legacyTree(log: (msg: string) => void): Promise<string | null> {
  const root = new URL("..", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "tailwise-legacy-" });
  try {
    const archive = await new Deno.Command("git", {
      args: ["-C", root, "archive", "--format=tar", LEGACY_REF, "shared/"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!archive.success) throw new Error(new TextDecoder().decode(archive.stderr));
    const tar = new Deno.Command("tar", { args: ["-x", "-C", dir], stdin: "piped" }).spawn();
    const w = tar.stdin.getWriter();
    await w.write(archive.stdout);
    await w.close();
    if (!(await tar.status).success) throw new Error("tar failed");
    return dir;
  } catch (e) {
    log(`legacy adapters not available: ${e instanceof Error ? e.message : e}`);
    await Deno.remove(dir, { recursive: true });
    return null;
  }
}

interface _Adapters {
  stream(): Promise<LogStream & { compact?(): Promise<void> }>;
  store(): Promise<LogStore>;
}

async function _open(side: _Side, dir: string, tree: string): Promise<_Adapters> {
  if (side === "sqlite") {
    const { SqliteLogStream } = await import("../shared/adapters/sqlite/sqlite_log_stream.ts");
    const { SqliteLogStore } = await import("../shared/adapters/sqlite/sqlite_log_store.ts");
    return {
      stream: () => SqliteLogStream.open(dir),
      store: () => SqliteLogStore.open(dir, { retentionMs: 0 }),
    };
  }
  const base = `file://${tree}/shared/adapters/embedded`;
  // deno-lint-ignore no-explicit-any
  const s = await import(`${base}/embedded_log_stream.ts`) as any;
  // deno-lint-ignore no-explicit-any
  const h = await import(`${base}/embedded_log_store.ts`) as any;
  return {
    stream: () => s.EmbeddedLogStream.open(dir),
    store: () => h.EmbeddedLogStore.open(dir, { retentionMs: 0 }),
  };
}

/** The rates of one side, in this (child) process; prints its figures as JSON. */
async function _runRates(side: _Side, n: number, batch: number, tree: string): Promise<void> {
  const log = (msg: string) => console.error(`[embedded:${side}] ${msg}`);
  const entries = _entries(n);
  const dir = await Deno.makeTempDir({ prefix: `tailwise-bench-${side}-` });
  const open = await _open(side, dir, tree);
  const figures: Record<string, number> = {};
  try {
    {
      await using stream = await open.stream();
      await stream.createGroup("logs", "ingest");
      log(`stream: appending ${n} lines`);
      let t = performance.now();
      let cpu = _cpu();
      for (let i = 0; i < n; i += batch) {
        await stream.append("logs", entries.slice(i, i + batch).map(entryToFields), {
          state: { "collect:checkpoint": String(i) },
        });
      }
      figures.stream_append_lines_per_s = _rate(n, t);
      figures.stream_append_cpu_us_per_line = (_cpu() - cpu) / n;
      log("stream: reading and acking");
      t = performance.now();
      cpu = _cpu();
      let read = 0;
      for (;;) {
        const got = await stream.readNew("logs", "ingest", "bench", { count: batch });
        if (got.length === 0) break;
        await stream.ack("logs", "ingest", got.map((m) => m.id));
        read += got.length;
      }
      figures.stream_read_ack_lines_per_s = _rate(read, t);
      figures.stream_read_ack_cpu_us_per_line = (_cpu() - cpu) / read;
    }
    {
      const t = performance.now();
      await using stream = await open.stream();
      figures.stream_reopen_ms = performance.now() - t;
      assert(await stream.length("logs") === n);
    }
    figures.stream_bytes_per_line = await _size(dir) / n;
    {
      await using store = await open.store();
      log(`history: writing ${n} lines`);
      let t = performance.now();
      let cpu = _cpu();
      for (let i = 0; i < n; i += batch) await store.write(entries.slice(i, i + batch));
      figures.history_write_lines_per_s = _rate(n, t);
      figures.history_write_cpu_us_per_line = (_cpu() - cpu) / n;
      t = performance.now();
      cpu = _cpu();
      let count = 0;
      for await (const _ of store.history("web-0", { limit: n })) count++;
      figures.history_read_lines_per_s = _rate(count, t);
      figures.history_read_cpu_us_per_line = (_cpu() - cpu) / count;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const k in figures) {
    const v = figures[k]!;
    figures[k] = /bytes|mib/.test(k)
      ? Math.round(v * 10) / 10
      : /cpu/.test(k)
      ? Math.round(v * 100) / 100
      : Math.round(v);
  }
  console.log(JSON.stringify(figures));
}

/**
 * RSS of one side, in this (child) process: a fresh stream grown to `total`
 * entries (nothing acked, nothing trimmed), RSS read at a tenth and at the
 * end; prints the figures as JSON.
 */
async function _runRss(side: _Side, total: number, batch: number, tree: string): Promise<void> {
  const log = (msg: string) => console.error(`[embedded:${side}] ${msg}`);
  const dir = await Deno.makeTempDir({ prefix: `tailwise-bench-${side}-` });
  const open = await _open(side, dir, tree);
  const figures: Record<string, number> = {};
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  try {
    await using stream = await open.stream();
    await stream.createGroup("logs", "ingest");
    log(`stream: growing to ${total} entries`);
    const fields = _entries(batch * 20).map(entryToFields);
    let have = 0;
    for (let i = 0; have < total; i++) {
      const k = (i % 20) * batch;
      const part = fields.slice(k, k + Math.min(batch, total - have));
      have += (await stream.append("logs", part, { state: { "collect:checkpoint": String(i) } }))
        .length;
      if (have === total / 10) {
        gc();
        figures.rss_mib_at_tenth = Deno.memoryUsage().rss / 2 ** 20;
      }
    }
    gc();
    figures.stream_entries = await stream.length("logs");
    figures.rss_mib_at_entries = Deno.memoryUsage().rss / 2 ** 20;
    figures.disk_mib_at_entries = await _size(dir) / 2 ** 20;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const k in figures) figures[k] = Math.round(figures[k]! * 10) / 10;
  console.log(JSON.stringify(figures));
}

function _entries(n: number): LogEntry[] {
  const start = Date.now() - 3_600_000;
  const paths = ["/api/items", "/api/users/42", "/health", "/static/app.js", "/login"];
  return Array.from({ length: n }, (_, i) => {
    const ms = start + Math.floor(i / 4);
    const c = i % 4;
    return {
      containerId: `c0ffee${c}`.padEnd(64, "0"),
      containerName: `web-${c}`,
      image: "nginx:1.27",
      stream: i % 50 === 0 ? "stderr" : "stdout",
      ts: `${new Date(ms).toISOString().slice(0, 23)}${String(i % 1_000_000).padStart(6, "0")}Z`,
      seq: 0,
      line: `10.0.${i % 256}.${(i * 7) % 256} - - "GET ${paths[i % 5]}?id=${i} HTTP/1.1" ${
        i % 97 === 0 ? 500 : 200
      } ${512 + (i % 4096)} "-" "curl/8.5.0" rt=0.0${i % 90 + 10}`,
    } satisfies LogEntry;
  });
}

/** CPU time of this process (user + system), in µs. */
function _cpu(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function _rate(lines: number, since: number): number {
  return lines / ((performance.now() - since) / 1000);
}

async function _size(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    total += e.isDirectory ? await _size(path) : (await Deno.stat(path)).size;
  }
  return total;
}

if (import.meta.main) {
  const [side, what, n, batch, tree] = Deno.args;
  if ((side !== "sqlite" && side !== "legacy") || (what !== "rates" && what !== "rss")) {
    console.error(
      "Usage: deno run -A bench/embedded_bench.ts sqlite|legacy rates|rss N BATCH [TREE]",
    );
    Deno.exit(2);
  }
  const run = what === "rates" ? _runRates : _runRss;
  await run(side, Number(n), Number(batch), tree ?? "");
}
