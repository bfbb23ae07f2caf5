/**
 * The embedded adapter of the {@linkcode LogStore} port: the history of
 * every model key (`modelKey`: the service key, else the container name) in
 * the SQLite database of the data dir ({@linkcode SqliteDatabase}), indexed by
 * key and time.
 *
 * Tables (`history_*`): names (model keys and container names are column
 * values, never file names, so any name up to 1,024 bytes is stored as is);
 * the per-entry metadata (container id, image, Swarm service, task, node),
 * stored once per distinct value; the entries, keyed by (key, time in ns,
 * stream, seq, container), so a replayed write leaves one copy and two
 * replicas' lines at one nanosecond are both kept; and a count per key,
 * container and hour, so that {@linkcode SqliteLogStore.containers} does not
 * count rows.
 *
 * An entry keeps its timestamp text, its line and, when the line is not
 * valid UTF-8, its bytes: it comes back exactly as written. Entries older than
 * `retentionMs` are deleted (by their timestamps) at most once a minute.
 *
 * An entry that can never be stored (a bad timestamp, a container name that
 * is empty, not well-formed or over 1,024 bytes) is rejected on its own and the
 * rest of the batch is stored: ingest sends it to the dead letter stream.
 *
 * @module
 */

import { type LogEntry, modelKey, type StreamName, tsToNanos } from "../../ports/log_entry.ts";
import {
  type ContainerCount,
  CONTEXT_AT_MAX,
  contextCounts,
  type ContextOptions,
  type HistoryOptions,
  type LogContext,
  type LogStore,
  searchLimit,
  type SearchOptions,
  type WriteOptions,
  type WriteResult,
} from "../../ports/log_store.ts";
import { MAX_CONTAINER_NAME_BYTES } from "../../ports/model_registry.ts";
import { openOwnedBy, SqliteDatabase, textOf } from "./sqlite_database.ts";

/** Options of {@linkcode SqliteLogStore}. */
export interface SqliteLogStoreOptions {
  /**
   * How long history is kept, in ms (by the entries' timestamps); 0 keeps it forever.
   * @default 604800000
   */
  retentionMs?: number;
  /**
   * Entries fetched per page while {@linkcode LogStore.history} iterates.
   * @default 5000
   */
  pageSize?: number;
  /**
   * Close the database when the store is disposed.
   * @default false
   */
  ownsDatabase?: boolean;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS history_containers (
  cid INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS history_meta (
  mid INTEGER PRIMARY KEY,
  container_id TEXT NOT NULL,
  image TEXT NOT NULL,
  service TEXT NOT NULL,
  task TEXT NOT NULL,
  node TEXT NOT NULL,
  UNIQUE (container_id, image, service, task, node)
);
CREATE TABLE IF NOT EXISTS history_entries (
  cid INTEGER NOT NULL,
  ns INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  nid INTEGER NOT NULL,
  ts TEXT NOT NULL,
  line TEXT NOT NULL,
  raw BLOB,
  flags INTEGER NOT NULL,
  mid INTEGER NOT NULL,
  PRIMARY KEY (cid, ns, stream, seq, nid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_hours (
  cid INTEGER NOT NULL,
  hour INTEGER NOT NULL,
  nid INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (cid, hour, nid)
) WITHOUT ROWID;
`;

const _HOUR_MS = 3_600_000;
// Rows bound to one INSERT statement (9 values each).
const _ROWS_PER_INSERT = 100;
const _HOUR_NS = 3_600_000_000_000n;
// stderr sorts before stdout, as InfluxDB gives them back.
const _STREAMS: StreamName[] = ["stderr", "stdout"];
const _encoder = new TextEncoder();

/** The {@linkcode LogStore} port on the data dir's SQLite database. */
export class SqliteLogStore implements LogStore {
  #db: SqliteDatabase;
  #retentionMs: number;
  #pageSize: number;
  #ownsDb: boolean;
  #cids = new Map<string, number>();
  #names = new Map<number, string>();
  #mids = new Map<string, number>();
  #metas = new Map<number, _Meta>();
  #lastSweep = 0;
  #closed = false;

  /**
   * Uses the history in a database, creating its tables if missing.
   *
   * @param db the data dir's database
   * @param options retention, page size, ownership of the database
   * @throws {RangeError} when an option is out of range
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise", { owner: true });
   * const store = new SqliteLogStore(db, { retentionMs: 7 * 86_400_000 });
   * for await (const entry of store.history("web")) console.log(entry.line);
   * ```
   */
  constructor(db: SqliteDatabase, options: SqliteLogStoreOptions = {}) {
    const retention = options.retentionMs ?? 7 * 86_400_000;
    if (!Number.isFinite(retention) || retention < 0) {
      throw new RangeError(
        `Cannot open embedded history: retentionMs ${retention}; expected a number >= 0`,
      );
    }
    const page = options.pageSize ?? 5000;
    if (!Number.isInteger(page) || page < 1) {
      throw new RangeError(
        `Cannot open embedded history: pageSize ${page}; expected an integer >= 1`,
      );
    }
    this.#db = db;
    this.#retentionMs = retention;
    this.#pageSize = page;
    this.#ownsDb = options.ownsDatabase ?? false;
    db.schema("history", 1, _SCHEMA);
  }

  /**
   * Opens the history of a data dir on a database of its own, taking the
   * data dir's lock (tests and single-adapter processes).
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`)
   * @param options retention, page size
   * @returns the store; disposing it closes the database
   * @throws {DataDirLockedError} when another process owns the data dir
   */
  static async open(
    dataDir: string,
    options: Omit<SqliteLogStoreOptions, "ownsDatabase"> = {},
  ): Promise<SqliteLogStore> {
    return await openOwnedBy(
      dataDir,
      (db) => new SqliteLogStore(db, { ...options, ownsDatabase: true }),
      { owner: true },
    );
  }

  /** Deletes entries past the retention. */
  prepare(options: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      this.#check();
      options.signal?.throwIfAborted();
      this.#sweep(Date.now());
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@inheritDoc LogStore.write} */
  write(entries: readonly LogEntry[], options: WriteOptions = {}): Promise<WriteResult> {
    try {
      this.#check();
      options.signal?.throwIfAborted();
      const result = this.#write(entries);
      const now = Date.now();
      if (now - this.#lastSweep > 60_000) this.#sweep(now);
      return Promise.resolve(result);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@inheritDoc LogStore.history} */
  async *history(container: string, options: HistoryOptions = {}): AsyncIterable<LogEntry> {
    this.#check();
    const limit = options.limit ?? 100_000;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`Cannot read history: limit ${limit}; expected an integer >= 0`);
    }
    if (limit === 0) return;
    const cid = this.#cid(container, false);
    if (cid === null) return;
    const from = options.from ? BigInt(options.from.getTime()) * 1_000_000n : -1n;
    const to = BigInt((options.to ?? new Date()).getTime()) * 1_000_000n;
    const page = this.#db.prepareArrays(
      "SELECT CAST(ns AS TEXT), stream, seq, ts, " +
        "CASE WHEN flags & 2 THEN CAST(line AS BLOB) ELSE line END, raw, flags, mid, nid " +
        "FROM history_entries WHERE cid = ? AND (ns, stream, seq, nid) > (?, ?, ?, ?) AND ns < ? " +
        "ORDER BY ns, stream, seq, nid LIMIT ?",
    );
    let after: [bigint, number, number, number] = [
      from - 1n,
      1,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER,
    ];
    let left = limit;
    while (left > 0) {
      options.signal?.throwIfAborted();
      this.#check();
      const rows = page.all(cid, ...after, to, Math.min(left, this.#pageSize)) as unknown as _Row[];
      for (const r of rows) {
        options.signal?.throwIfAborted();
        const entry = _toEntry(container, r, this.#meta(r[7]));
        if (r[8] !== cid) {
          entry.containerName = this.#name(r[8]);
          entry.key = container;
        }
        yield entry;
      }
      left -= rows.length;
      if (rows.length < Math.min(left + rows.length, this.#pageSize)) return;
      const last = rows[rows.length - 1]!;
      after = [BigInt(last[0]), last[1], last[2], last[8]];
    }
  }

  /** {@inheritDoc LogStore.context} */
  context(key: string, ts: string, options: ContextOptions = {}): Promise<LogContext> {
    try {
      this.#check();
      const { before, after } = contextCounts(options);
      const ns = tsToNanos(ts);
      options.signal?.throwIfAborted();
      const out: LogContext = { before: [], at: [], after: [] };
      const cid = this.#cid(key, false);
      if (cid === null) return Promise.resolve(out);
      const cols = "SELECT CAST(ns AS TEXT), stream, seq, ts, " +
        "CASE WHEN flags & 2 THEN CAST(line AS BLOB) ELSE line END, raw, flags, mid, nid " +
        "FROM history_entries WHERE cid = ? AND ";
      const read = (sql: string, n: number) =>
        n <= 0 ? [] : (this.#db.prepareArrays(cols + sql).all(cid, ns, n) as unknown as _Row[])
          .map((r) => this.#entryOf(key, cid, r));
      out.before = read(
        "ns < ? ORDER BY ns DESC, stream DESC, seq DESC, nid DESC LIMIT ?",
        before,
      ).reverse();
      out.at = read("ns = ? ORDER BY stream, seq, nid LIMIT ?", CONTEXT_AT_MAX);
      out.after = read("ns > ? ORDER BY ns, stream, seq, nid LIMIT ?", after);
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@inheritDoc LogStore.search} */
  search(key: string, query: string, options: SearchOptions = {}): Promise<LogEntry[]> {
    try {
      this.#check();
      const limit = searchLimit(query, options);
      options.signal?.throwIfAborted();
      const cid = this.#cid(key, false);
      if (cid === null) return Promise.resolve([]);
      const from = options.from ? BigInt(options.from.getTime()) * 1_000_000n : -1n;
      const to = BigInt((options.to ?? new Date()).getTime()) * 1_000_000n;
      // The key's time range comes from the primary key; LIKE folds ASCII case.
      const pattern = `%${query.replace(/[\\%_]/g, "\\$&")}%`;
      const rows = this.#db.prepareArrays(
        "SELECT CAST(ns AS TEXT), stream, seq, ts, " +
          "CASE WHEN flags & 2 THEN CAST(line AS BLOB) ELSE line END, raw, flags, mid, nid " +
          "FROM history_entries WHERE cid = ? AND ns >= ? AND ns < ? AND raw IS NULL " +
          "AND line LIKE ? ESCAPE '\\' ORDER BY ns DESC, stream DESC, seq DESC, nid DESC LIMIT ?",
      ).all(cid, from, to, pattern, limit) as unknown as _Row[];
      return Promise.resolve(rows.map((r) => this.#entryOf(key, cid, r)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #entryOf(key: string, cid: number, r: _Row): LogEntry {
    const entry = _toEntry(key, r, this.#meta(r[7]));
    if (r[8] !== cid) {
      entry.containerName = this.#name(r[8]);
      entry.key = key;
    }
    return entry;
  }

  /** {@inheritDoc LogStore.containers} */
  containers(options: { since: Date; signal?: AbortSignal }): Promise<ContainerCount[]> {
    try {
      this.#check();
      options.signal?.throwIfAborted();
      const since = options.since.getTime();
      const hour = Math.floor(since / _HOUR_MS) * _HOUR_MS;
      const sinceNs = BigInt(since) * 1_000_000n;
      const endNs = BigInt(hour + _HOUR_MS) * 1_000_000n;
      // Whole hours from the counts; the first, partial hour by its rows.
      const found = new Map<number, { count: number; names: Set<number> }>();
      const add = (cid: number, nid: number, n: number) => {
        if (n <= 0) return;
        let f = found.get(cid);
        if (!f) found.set(cid, f = { count: 0, names: new Set() });
        f.count += n;
        f.names.add(nid);
      };
      const whole = this.#db.prepareArrays(
        "SELECT cid, nid, sum(count) FROM history_hours WHERE hour > ? GROUP BY cid, nid",
      ).all(hour) as unknown as [number, number, number][];
      for (const [cid, nid, n] of whole) add(cid, nid, n);
      const partial = this.#db.prepareArrays(
        "SELECT DISTINCT cid FROM history_hours WHERE hour = ?",
      ).all(hour) as unknown as [number][];
      const rows = this.#db.prepareArrays(
        "SELECT nid, count(*) FROM history_entries WHERE cid = ? AND ns >= ? AND ns < ? " +
          "GROUP BY nid",
      );
      for (const [cid] of partial) {
        options.signal?.throwIfAborted();
        for (const [nid, n] of rows.all(cid, sinceNs, endNs) as unknown as [number, number][]) {
          add(cid, nid, n);
        }
      }
      const out: ContainerCount[] = [...found].map(([cid, f]) => ({
        container: this.#name(cid),
        count: f.count,
        containers: [...f.names].map((nid) => this.#name(nid)).sort(),
      }));
      // By code point, as the other adapters sort.
      return Promise.resolve(
        out.sort((a, b) => (a.container < b.container ? -1 : a.container > b.container ? 1 : 0)),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Stores entries in the caller's transaction, synchronously (the migration
   * of an old data dir).
   *
   * @param entries the entries
   * @returns how many were stored and which were refused
   */
  importEntries(entries: readonly LogEntry[]): WriteResult {
    this.#check();
    return this.#write(entries);
  }

  /** True while the store and its database are open. */
  ping(): Promise<boolean> {
    return Promise.resolve(!this.#closed && !this.#db.closed);
  }

  /** Closes the database if this store owns it. */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#ownsDb) this.#db.close();
    return Promise.resolve();
  }

  #check(): void {
    if (this.#closed) throw new Error("Cannot use SqliteLogStore: it is closed");
  }

  #write(entries: readonly LogEntry[]): WriteResult {
    const rejected = new Map<number, Error>();
    const groups = new Map<string, { cid: number; nid: number; hour: number; rows: _Insert[] }>();
    this.#db.write(() => {
      entries.forEach((entry, index) => {
        let row: _Insert;
        let cid: number;
        let nid: number;
        let hour: number;
        try {
          const ns = _check(entry);
          const key = modelKey(entry);
          cid = this.#cid(key, true)!;
          nid = key === entry.containerName ? cid : this.#cid(entry.containerName, true)!;
          hour = Number(ns / _HOUR_NS) * _HOUR_MS;
          row = [
            cid,
            ns,
            entry.stream === "stderr" ? 0 : 1,
            entry.seq,
            nid,
            entry.ts,
            entry.line,
            entry.raw ?? null,
            (entry.truncated ? 1 : 0) | (entry.line.includes("\u0000") ? 2 : 0),
            this.#mid(entry),
          ];
        } catch (e) {
          rejected.set(index, e instanceof Error ? e : new Error(String(e)));
          return;
        }
        const group = `${cid}:${nid}:${hour}`;
        let g = groups.get(group);
        if (!g) groups.set(group, g = { cid, nid, hour, rows: [] });
        g.rows.push(row);
      });
      const count = this.#db.prepare(
        "INSERT INTO history_hours (cid, hour, nid, count) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (cid, hour, nid) DO UPDATE SET count = count + excluded.count",
      );
      for (const g of groups.values()) {
        const added = this.#insert(g.rows);
        if (added > 0) count.run(g.cid, g.hour, g.nid, added);
      }
    });
    // A replayed entry is stored (once): it counts as written.
    return { written: entries.length - rejected.size, rejected };
  }

  /** Inserts rows, many per statement; returns how many were new. */
  #insert(rows: readonly _Insert[]): number {
    let added = 0;
    for (let i = 0; i < rows.length; i += _ROWS_PER_INSERT) {
      const part = rows.slice(i, i + _ROWS_PER_INSERT);
      const sql = "INSERT OR IGNORE INTO history_entries " +
        "(cid, ns, stream, seq, nid, ts, line, raw, flags, mid) VALUES " +
        Array(part.length).fill("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ");
      added += Number(this.#db.prepare(sql).run(...part.flat()).changes);
    }
    return added;
  }

  #cid(name: string, create: boolean): number | null {
    const known = this.#cids.get(name);
    if (known !== undefined) return known;
    const get = this.#db.prepare("SELECT cid FROM history_containers WHERE name = ?");
    let row = get.get(name) as { cid: number } | undefined;
    if (!row && create) {
      this.#db.prepare("INSERT INTO history_containers (name) VALUES (?)").run(name);
      row = get.get(name) as { cid: number };
    }
    if (!row) return null;
    this.#cids.set(name, row.cid);
    this.#names.set(row.cid, name);
    return row.cid;
  }

  /** The name of a cid (cached). */
  #name(cid: number): string {
    let name = this.#names.get(cid);
    if (name === undefined) {
      const row = this.#db.prepareArrays(
        "SELECT CAST(name AS BLOB) FROM history_containers WHERE cid = ?",
      ).get(cid) as unknown as [Uint8Array] | undefined;
      name = row ? textOf(row[0]) : "";
      this.#names.set(cid, name);
    }
    return name;
  }

  /** The metadata of a mid (cached: there are few distinct ones). */
  #meta(mid: number): _Meta {
    let meta = this.#metas.get(mid);
    if (!meta) {
      const row = this.#db.prepareArrays(
        "SELECT CAST(container_id AS BLOB), CAST(image AS BLOB), CAST(service AS BLOB), " +
          "CAST(task AS BLOB), CAST(node AS BLOB) FROM history_meta WHERE mid = ?",
      ).get(mid) as unknown as Uint8Array[] | undefined;
      meta = (row ?? ["", "", "", "", ""]).map(textOf) as _Meta;
      if (this.#metas.size > 10_000) this.#metas.clear();
      this.#metas.set(mid, meta);
    }
    return meta;
  }

  #mid(entry: LogEntry): number {
    const values = [
      entry.containerId ?? "",
      entry.image ?? "",
      entry.service ?? "",
      entry.task ?? "",
      entry.node ?? "",
    ];
    const key = values.join("\u0000");
    const known = this.#mids.get(key);
    if (known !== undefined) return known;
    this.#db.prepare(
      "INSERT OR IGNORE INTO history_meta (container_id, image, service, task, node) " +
        "VALUES (?, ?, ?, ?, ?)",
    ).run(...values);
    const row = this.#db.prepare(
      "SELECT mid FROM history_meta WHERE container_id = ? AND image = ? AND service = ? " +
        "AND task = ? AND node = ?",
    ).get(...values) as { mid: number };
    if (this.#mids.size > 10_000) this.#mids.clear();
    this.#mids.set(key, row.mid);
    return row.mid;
  }

  /** Deletes entries and hour counts past the retention. */
  #sweep(now: number): void {
    this.#lastSweep = now;
    if (this.#retentionMs === 0) return;
    const cutoff = now - this.#retentionMs;
    const cutoffNs = BigInt(cutoff) * 1_000_000n;
    const cids = this.#db.prepareArrays("SELECT cid FROM history_containers")
      .all() as unknown as [number][];
    for (const [cid] of cids) {
      this.#db.write(() => {
        this.#db.prepare("DELETE FROM history_entries WHERE cid = ? AND ns < ?").run(cid, cutoffNs);
        this.#db.prepare("DELETE FROM history_hours WHERE cid = ? AND hour + ? <= ?")
          .run(cid, _HOUR_MS, cutoff);
        // The hour the cutoff falls in lost some rows: count it again.
        const hour = Math.floor(cutoff / _HOUR_MS) * _HOUR_MS;
        this.#db.prepare("DELETE FROM history_hours WHERE cid = ? AND hour = ?").run(cid, hour);
        this.#db.prepare(
          "INSERT INTO history_hours (cid, hour, nid, count) SELECT cid, ?, nid, count(*) " +
            "FROM history_entries WHERE cid = ? AND ns >= ? AND ns < ? GROUP BY cid, nid",
        ).run(hour, cid, BigInt(hour) * 1_000_000n, BigInt(hour + _HOUR_MS) * 1_000_000n);
      });
    }
  }
}

type _Insert = [
  number,
  bigint,
  number,
  number,
  number,
  string,
  string,
  Uint8Array | null,
  number,
  number,
];
type _Row = [
  string,
  number,
  number,
  string,
  string | Uint8Array,
  Uint8Array | null,
  number,
  number,
  number,
];
type _Meta = [string, string, string, string, string];

function _toEntry(container: string, r: _Row, meta: _Meta): LogEntry {
  const entry: LogEntry = {
    containerId: meta[0],
    containerName: container,
    image: meta[1],
    stream: _STREAMS[r[1]]!,
    ts: r[3],
    seq: r[2],
    line: typeof r[4] === "string" ? r[4] : textOf(r[4]),
  };
  if (meta[2]) entry.service = meta[2];
  if (meta[3]) entry.task = meta[3];
  if (meta[4]) entry.node = meta[4];
  if (r[5] !== null) entry.raw = new Uint8Array(r[5]);
  if (r[6] & 1) entry.truncated = true;
  return entry;
}

/** Validates an entry for storage and returns its time in ns. */
function _check(entry: LogEntry): bigint {
  _checkName(entry.containerName, "containerName");
  if (entry.key !== undefined && entry.key !== "") _checkName(entry.key, "key");
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
  if (typeof entry.line !== "string") {
    throw new TypeError(`Cannot store log entry: line is ${typeof entry.line}; expected a string`);
  }
  const ns = tsToNanos(entry.ts);
  if (ns < 0n) {
    throw new RangeError(
      `Cannot store log entry: ts ${JSON.stringify(entry.ts)}; expected a time after 1970`,
    );
  }
  return ns;
}

/** Checks a container name or key for storage. */
function _checkName(name: string, what: string): void {
  if (typeof name !== "string" || name === "" || !name.isWellFormed()) {
    throw new TypeError(
      `Cannot store log entry: ${what} ${
        JSON.stringify(typeof name === "string" ? name.slice(0, 120) : name)
      }; expected a non-empty, well-formed string`,
    );
  }
  const bytes = _encoder.encode(name).length;
  if (bytes > MAX_CONTAINER_NAME_BYTES) {
    throw new RangeError(
      `Cannot store log entry: ${what} ${
        JSON.stringify(name.slice(0, 60) + "…")
      } has ${bytes} bytes; expected at most ${MAX_CONTAINER_NAME_BYTES}`,
    );
  }
}
