/**
 * The embedded adapter of the {@linkcode LogStore} port: every model key's
 * history (see `modelKey`: the service key, else the container name) in
 * append-only files of JSON lines under `<dataDir>/history/`, one per key per
 * UTC hour of the entries' timestamps: `history/<key>/<YYYY-MM-DD>T<HH>.jsonl`.
 * History written before service keys sits under the container's name, which
 * is that container's key when it has no service: it keeps serving.
 *
 * A line is `[ts, seq, stream, line, raw, truncated, meta?]`: the entry's own
 * timestamp text, its seq, `stdout`/`stderr`, the text, the original bytes as
 * base64 when they are not valid UTF-8 (else 0), 1 when cut (else 0), and
 * `[containerId, image, service, task, node, containerName?]` only when it
 * differs from the line before in the same file (`containerName` is left out
 * when it is the key). Entries come back exactly as written.
 *
 * Writes are idempotent: the first write to a file in a process reads it once
 * and remembers the keys (container, ts, stream, seq) it holds, so a replay is
 * filtered out; a torn last line (a crash mid-write) is cut off then. Files
 * older than `retentionMs` are removed.
 *
 * @module
 */

import { join } from "node:path";
import { type LogEntry, modelKey, type StreamName, tsToNanos } from "../../ports/log_entry.ts";
import type {
  ContainerCount,
  HistoryOptions,
  LogStore,
  WriteOptions,
  WriteResult,
} from "../../ports/log_store.ts";
import { type DataDirLock, lockDataDir } from "./embedded_data_dir_lock.ts";
import { base64ToBytes, bytesToBase64 } from "../../runtime/base64.ts";

/** Options of {@linkcode EmbeddedLogStore.open}. */
export interface EmbeddedLogStoreOptions {
  /**
   * How long history is kept, in ms (by the entries' timestamps); 0 keeps it forever.
   * @default 604800000
   */
  retentionMs?: number;
  /**
   * Flush each write to the disk (`fdatasync`) before it resolves.
   * @default true
   */
  fsync?: boolean;
  /**
   * Most files whose keys are remembered for idempotent writes at once; the
   * least recently written is forgotten (and read again if written again).
   * @default 64
   */
  openFiles?: number;
}

type _Meta = [string, string, string, string, string, string?];
type _Row = [string, number, StreamName, string, string | 0, 0 | 1, _Meta?];

interface _File {
  path: string;
  handle: Deno.FsFile;
  /** Keys of entries with seq 0: nanoseconds within the hour × 2 + (stderr ? 1 : 0). */
  keys: Set<number>;
  /** Keys of the other entries. */
  otherKeys: Set<string>;
  meta: _Meta | null;
  size: number;
  lines: number;
}

const _HOUR_MS = 3_600_000;
const _HOUR_NS = 3_600_000_000_000n;
const _encoder = new TextEncoder();

/** The {@linkcode LogStore} port on files under `<dataDir>/history/`. */
export class EmbeddedLogStore implements LogStore {
  #dir: string;
  #lock: DataDirLock;
  #retentionMs: number;
  #fsync: boolean;
  #openFiles: number;
  #files = new Map<string, _File>();
  #counts = new Map<string, { size: number; lines: number }>();
  /** Container names in a file, valid while the file has that size. */
  #names = new Map<string, { size: number; names: Set<string> }>();
  #chain: Promise<unknown> = Promise.resolve();
  #lastSweep = 0;
  #closed = false;

  private constructor(dir: string, lock: DataDirLock, options: EmbeddedLogStoreOptions) {
    this.#dir = dir;
    this.#lock = lock;
    this.#retentionMs = options.retentionMs ?? 7 * 86_400_000;
    this.#fsync = options.fsync ?? true;
    this.#openFiles = options.openFiles ?? 64;
  }

  /**
   * Opens (or creates) the history of a data dir and takes its lock.
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`); files go to `<dataDir>/history/`
   * @param options retention and durability
   * @returns the store
   * @throws {RangeError} when an option is out of range
   * @throws {DataDirLockedError} when another live process owns the data dir
   */
  static async open(
    dataDir: string,
    options: EmbeddedLogStoreOptions = {},
  ): Promise<EmbeddedLogStore> {
    const retention = options.retentionMs ?? 0;
    if (!Number.isFinite(retention) || retention < 0) {
      throw new RangeError(
        `Cannot open embedded history: retentionMs ${retention}; expected a number >= 0`,
      );
    }
    const openFiles = options.openFiles ?? 64;
    if (!Number.isInteger(openFiles) || openFiles < 1) {
      throw new RangeError(
        `Cannot open embedded history: openFiles ${openFiles}; expected an integer >= 1`,
      );
    }
    const lock = await lockDataDir(dataDir, "history");
    try {
      const dir = join(dataDir, "history");
      await Deno.mkdir(dir, { recursive: true });
      return new EmbeddedLogStore(dir, lock, options);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /** Creates the history dir and removes files past the retention. */
  async prepare(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#check();
    options.signal?.throwIfAborted();
    await this.#serial(async () => {
      await Deno.mkdir(this.#dir, { recursive: true });
      await this.#sweep(Date.now());
    });
  }

  /** {@inheritDoc LogStore.write} */
  async write(entries: readonly LogEntry[], options: WriteOptions = {}): Promise<WriteResult> {
    this.#check();
    options.signal?.throwIfAborted();
    return await this.#serial(() => this.#write(entries));
  }

  /** {@inheritDoc LogStore.history} */
  async *history(container: string, options: HistoryOptions = {}): AsyncIterable<LogEntry> {
    this.#check();
    const from = options.from ? BigInt(options.from.getTime()) * 1_000_000n : null;
    const to = BigInt((options.to ?? new Date()).getTime()) * 1_000_000n;
    const limit = options.limit ?? 100_000;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`Cannot read history: limit ${limit}; expected an integer >= 0`);
    }
    let left = limit;
    if (left === 0) return;
    const dir = join(this.#dir, _encodeName(container));
    for (const hour of await _hours(dir)) {
      const start = BigInt(hour) * 1_000_000n;
      if (start >= to) break;
      if (from !== null && start + _HOUR_NS <= from) continue;
      options.signal?.throwIfAborted();
      const rows = await this.#readRows(join(dir, _fileName(hour)), container);
      for (const { entry, ns } of rows) {
        if ((from !== null && ns < from) || ns >= to) continue;
        options.signal?.throwIfAborted();
        yield entry;
        if (--left === 0) return;
      }
    }
  }

  /** {@inheritDoc LogStore.containers} */
  async containers(options: { since: Date; signal?: AbortSignal }): Promise<ContainerCount[]> {
    this.#check();
    const since = options.since.getTime();
    const sinceNs = BigInt(since) * 1_000_000n;
    const out: ContainerCount[] = [];
    for await (const e of Deno.readDir(this.#dir)) {
      if (!e.isDirectory) continue;
      options.signal?.throwIfAborted();
      const container = _decodeName(e.name);
      let count = 0;
      const names = new Set<string>();
      for (const hour of await _hours(join(this.#dir, e.name))) {
        if (hour + _HOUR_MS <= since) continue;
        const path = join(this.#dir, e.name, _fileName(hour));
        if (hour >= since) {
          const n = await this.#lineCount(path);
          count += n;
          if (n > 0) { for (const name of await this.#namesIn(path, container)) names.add(name); }
        } else {
          for (const { entry, ns } of await this.#readRows(path, container)) {
            if (ns < sinceNs) continue;
            count++;
            names.add(entry.containerName);
          }
        }
      }
      if (count > 0) out.push({ container, count, containers: [...names].sort() });
    }
    return out.sort((a, b) => (a.container < b.container ? -1 : a.container > b.container ? 1 : 0));
  }

  /** True while the store is open. */
  ping(): Promise<boolean> {
    return Promise.resolve(!this.#closed);
  }

  /** Waits for writes in progress, closes the files and lets the lock go. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#chain.catch(() => {});
      for (const f of this.#files.values()) f.handle.close();
      this.#files.clear();
    } finally {
      await this.#lock.release();
    }
  }

  #check(): void {
    if (this.#closed) throw new Error("Cannot use EmbeddedLogStore: it is closed");
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  async #write(entries: readonly LogEntry[]): Promise<WriteResult> {
    const rejected = new Map<number, Error>();
    const groups = new Map<string, { container: string; hour: number; items: _Item[] }>();
    entries.forEach((entry, index) => {
      let ns: bigint;
      try {
        ns = _check(entry);
      } catch (e) {
        rejected.set(index, e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const hour = Number(ns / _HOUR_NS) * _HOUR_MS;
      const key = modelKey(entry);
      const path = join(this.#dir, _encodeName(key), _fileName(hour));
      let g = groups.get(path);
      if (!g) groups.set(path, g = { container: key, hour, items: [] });
      g.items.push({ entry, within: ns - BigInt(hour) * 1_000_000n });
    });
    const touched: _File[] = [];
    for (const [path, g] of groups) {
      const file = await this.#file(path, g.container);
      const names = this.#names.get(path);
      const known = names !== undefined && names.size === file.size;
      const lines: string[] = [];
      for (const { entry, within } of g.items) {
        const other = entry.containerName === g.container ? "" : entry.containerName;
        if (!_addKey(file, other, within, entry.stream, entry.seq)) continue;
        const meta: _Meta = [
          entry.containerId,
          entry.image,
          entry.service ?? "",
          entry.task ?? "",
          entry.node ?? "",
        ];
        if (other) meta.push(other);
        if (known) names.names.add(entry.containerName);
        const row: _Row = [
          entry.ts,
          entry.seq,
          entry.stream,
          entry.line,
          entry.raw ? bytesToBase64(entry.raw) : 0,
          entry.truncated ? 1 : 0,
        ];
        if (!file.meta || !_sameMeta(file.meta, meta)) {
          row.push(meta);
          file.meta = meta;
        }
        lines.push(JSON.stringify(row));
      }
      if (lines.length === 0) continue;
      const bytes = _encoder.encode(lines.join("\n") + "\n");
      await _writeAll(file.handle, bytes);
      file.size += bytes.length;
      file.lines += lines.length;
      if (known) names.size = file.size;
      this.#counts.set(path, { size: file.size, lines: file.lines });
      touched.push(file);
    }
    if (this.#fsync) await Promise.all(touched.map((f) => f.handle.syncData()));
    const now = Date.now();
    if (now - this.#lastSweep > 60_000) await this.#sweep(now);
    // A replayed entry is stored (once): it counts as written.
    return { written: entries.length - rejected.size, rejected };
  }

  /** The state of a file for writing: its keys (read once) and an open handle. */
  async #file(path: string, key: string): Promise<_File> {
    const known = this.#files.get(path);
    if (known) {
      // Most recently used last.
      this.#files.delete(path);
      this.#files.set(path, known);
      return known;
    }
    while (this.#files.size >= this.#openFiles) {
      const [oldest, f] = this.#files.entries().next().value as [string, _File];
      f.handle.close();
      this.#files.delete(oldest);
    }
    await Deno.mkdir(join(path, ".."), { recursive: true });
    const hour = _hourOf(path);
    const file: _File = {
      path,
      handle: await Deno.open(path, { read: true, write: true, create: true }),
      keys: new Set(),
      otherKeys: new Set(),
      meta: null,
      size: 0,
      lines: 0,
    };
    try {
      const data = await Deno.readFile(path);
      const good = data.lastIndexOf(0x0a) + 1;
      if (good < data.length) await file.handle.truncate(good);
      await file.handle.seek(good, Deno.SeekMode.Start);
      file.size = good;
      const base = BigInt(hour) * 1_000_000n;
      _parseLines(data.subarray(0, good), path, (row) => {
        file.lines++;
        if (row[6]) file.meta = row[6];
        const name = file.meta?.[5] ?? "";
        _addKey(file, name === key ? "" : name, tsToNanos(row[0]) - base, row[2], row[1]);
      });
    } catch (e) {
      file.handle.close();
      throw e;
    }
    this.#files.set(path, file);
    return file;
  }

  async #readRows(path: string, container: string): Promise<{ entry: LogEntry; ns: bigint }[]> {
    let data: Uint8Array;
    try {
      data = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    const good = data.lastIndexOf(0x0a) + 1;
    const rows: { entry: LogEntry; ns: bigint }[] = [];
    let meta: _Meta = ["", "", "", "", ""];
    const names = new Set<string>();
    _parseLines(data.subarray(0, good), path, (row) => {
      if (row[6]) meta = row[6];
      const entry: LogEntry = {
        containerId: meta[0],
        containerName: meta[5] || container,
        image: meta[1],
        stream: row[2],
        ts: row[0],
        seq: row[1],
        line: row[3],
      };
      if (entry.containerName !== container) entry.key = container;
      names.add(entry.containerName);
      if (meta[2]) entry.service = meta[2];
      if (meta[3]) entry.task = meta[3];
      if (meta[4]) entry.node = meta[4];
      if (row[4] !== 0) entry.raw = base64ToBytes(row[4]);
      if (row[5] === 1) entry.truncated = true;
      rows.push({ entry, ns: tsToNanos(row[0]) });
    });
    this.#counts.set(path, { size: good, lines: rows.length });
    this.#names.set(path, { size: good, names });
    // Time, then stream, then seq, as InfluxDB gives them back.
    return rows.sort((a, b) =>
      a.ns !== b.ns
        ? (a.ns < b.ns ? -1 : 1)
        : a.entry.stream !== b.entry.stream
        ? (a.entry.stream < b.entry.stream ? -1 : 1)
        : a.entry.seq - b.entry.seq
    );
  }

  /** The names of the containers with entries in a file (read once per size). */
  async #namesIn(path: string, key: string): Promise<Set<string>> {
    const cached = this.#names.get(path);
    const size = this.#counts.get(path)?.size;
    if (cached && cached.size === size) return cached.names;
    await this.#readRows(path, key);
    return this.#names.get(path)?.names ?? new Set();
  }

  async #lineCount(path: string): Promise<number> {
    let size: number;
    try {
      size = (await Deno.stat(path)).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return 0;
      throw e;
    }
    const cached = this.#counts.get(path);
    if (cached && cached.size === size) return cached.lines;
    const data = await Deno.readFile(path);
    let lines = 0;
    for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) lines++;
    this.#counts.set(path, { size, lines });
    return lines;
  }

  /** Removes the files of hours that ended before the retention. */
  async #sweep(now: number): Promise<void> {
    this.#lastSweep = now;
    if (this.#retentionMs === 0) return;
    const cutoff = now - this.#retentionMs;
    for await (const e of Deno.readDir(this.#dir)) {
      if (!e.isDirectory) continue;
      const dir = join(this.#dir, e.name);
      const hours = await _hours(dir);
      let kept = hours.length;
      for (const hour of hours) {
        if (hour + _HOUR_MS > cutoff) continue;
        const path = join(dir, _fileName(hour));
        const open = this.#files.get(path);
        if (open) {
          open.handle.close();
          this.#files.delete(path);
        }
        this.#counts.delete(path);
        this.#names.delete(path);
        await Deno.remove(path).catch(() => {});
        kept--;
      }
      if (kept === 0) await Deno.remove(dir).catch(() => {});
    }
  }
}

interface _Item {
  entry: LogEntry;
  within: bigint;
}

/** Validates an entry for storage and returns its time in ns. */
function _check(entry: LogEntry): bigint {
  if (typeof entry.containerName !== "string" || entry.containerName === "") {
    throw new TypeError(
      `Cannot store log entry: containerName ${
        JSON.stringify(entry.containerName)
      }; expected a non-empty string`,
    );
  }
  if (entry.stream !== "stdout" && entry.stream !== "stderr") {
    throw new TypeError(
      `Cannot store log entry: stream ${JSON.stringify(entry.stream)}; expected stdout or stderr`,
    );
  }
  if (!Number.isSafeInteger(entry.seq) || entry.seq < 0) {
    throw new RangeError(
      `Cannot store log entry: seq ${entry.seq}; expected a non-negative integer`,
    );
  }
  const ns = tsToNanos(entry.ts);
  if (ns < 0n) {
    throw new RangeError(
      `Cannot store log entry: ts ${JSON.stringify(entry.ts)}; expected a time after 1970`,
    );
  }
  return ns;
}

/**
 * Adds an entry's key to a file's set; false when it was there already.
 * `other` is the entry's container name when it is not the file's key.
 */
function _addKey(
  file: _File,
  other: string,
  within: bigint,
  stream: StreamName,
  seq: number,
): boolean {
  if (other !== "") {
    const key = `${other}\u0000${within}:${stream}:${seq}`;
    if (file.otherKeys.has(key)) return false;
    file.otherKeys.add(key);
    return true;
  }
  if (seq === 0) {
    const key = Number(within) * 2 + (stream === "stderr" ? 1 : 0);
    if (file.keys.has(key)) return false;
    file.keys.add(key);
    return true;
  }
  const key = `${within}:${stream}:${seq}`;
  if (file.otherKeys.has(key)) return false;
  file.otherKeys.add(key);
  return true;
}

function _sameMeta(a: _Meta, b: _Meta): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] &&
    (a[5] ?? "") === (b[5] ?? "");
}

function _parseLines(data: Uint8Array, path: string, each: (row: _Row) => void): void {
  const text = new TextDecoder().decode(data);
  let start = 0;
  let n = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const end = nl < 0 ? text.length : nl;
    const line = text.slice(start, end);
    start = end + 1;
    n++;
    if (line.length === 0) continue;
    let row: _Row;
    try {
      row = JSON.parse(line) as _Row;
    } catch (e) {
      throw new SyntaxError(
        `Cannot read history file ${path}: line ${n} is not JSON (${
          e instanceof Error ? e.message : String(e)
        }); expected one entry per line`,
      );
    }
    each(row);
  }
}

/** Start (ms since the epoch) of each hour file in a container's dir, ascending. */
async function _hours(dir: string): Promise<number[]> {
  const hours: number[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const hour = _parseFileName(e.name);
      if (hour !== null) hours.push(hour);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return hours.sort((a, b) => a - b);
}

function _fileName(hour: number): string {
  return `${new Date(hour).toISOString().slice(0, 13)}.jsonl`;
}

function _parseFileName(name: string): number | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d)\.jsonl$/.exec(name);
  if (!m) return null;
  const t = Date.parse(`${m[1]}:00:00Z`);
  return Number.isNaN(t) ? null : t;
}

function _hourOf(path: string): number {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return _parseFileName(name)!;
}

/** A container name as a directory name: bytes other than [A-Za-z0-9_-] as %XX. */
function _encodeName(name: string): string {
  let out = "";
  for (const b of _encoder.encode(name)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function _decodeName(dir: string): string {
  return decodeURIComponent(dir);
}

async function _writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}
