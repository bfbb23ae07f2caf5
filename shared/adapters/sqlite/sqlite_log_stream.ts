/**
 * The embedded adapter of the {@linkcode LogStream} port: Redis-like streams
 * with consumer groups in the SQLite database of the data dir
 * ({@linkcode SqliteDatabase}). Nothing is held in memory but a few ids: a
 * stream of a million entries costs disk, not RSS.
 *
 * Tables (`stream_*`): streams (last id, length), entries keyed by
 * (stream, ms, seq) with their fields as JSON text, groups (last delivered
 * id), consumers, pending entries (consumer, deliveries, last delivery time)
 * and state keys (checkpoints, sequence keys, append-once keys, with expiry).
 *
 * Every call is one transaction: an append and its state keys, a read and the
 * pending entries it records, an ack. A call resolves once its transaction is
 * committed, so what it returned survives a killed process. Ids are
 * `<ms>-<seq>` as in Redis: the time of the append, then a counter.
 *
 * @module
 */

import {
  type AppendOptions,
  AppendOutOfOrderError,
  checkSequence,
  type Fields,
  type GroupInfo,
  type LogStream,
  type ReadOptions,
  type StreamMessage,
} from "../../ports/log_stream.ts";
import { openOwnedBy, settle, SqliteDatabase, textOf } from "./sqlite_database.ts";

/** Options of {@linkcode SqliteLogStream}. */
export interface SqliteLogStreamOptions {
  /**
   * How long an {@linkcode LogStream.appendOnce} key is remembered, in ms,
   * when the call gives no `ttlMs`.
   * @default 604800000
   */
  onceTtlMs?: number;
  /**
   * Close the database when the stream is disposed.
   * @default false
   */
  ownsDatabase?: boolean;
}

/** Thrown by a group read of a stream or group that does not exist (as Redis' NOGROUP). */
export class NoGroupError extends Error {
  override name = "NoGroupError";
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS stream_streams (
  sid INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  last_ms INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  length INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stream_entries (
  sid INTEGER NOT NULL,
  ms INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  fields TEXT NOT NULL,
  PRIMARY KEY (sid, ms, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_groups (
  gid INTEGER PRIMARY KEY,
  sid INTEGER NOT NULL,
  name TEXT NOT NULL,
  last_ms INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sid, name)
);
CREATE TABLE IF NOT EXISTS stream_consumers (
  gid INTEGER NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (gid, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_pending (
  gid INTEGER NOT NULL,
  ms INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  consumer TEXT NOT NULL,
  deliveries INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (gid, ms, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  exp INTEGER NOT NULL
) WITHOUT ROWID;
`;

interface _Stream {
  sid: number;
  last_ms: number;
  last_seq: number;
  length: number;
}

interface _Delivered {
  ids: string[];
  first: [number, number];
  last: [number, number];
}

interface _Group {
  gid: number;
  sid: number;
  last_ms: number;
  last_seq: number;
}

/** The {@linkcode LogStream} port on the data dir's SQLite database. */
export class SqliteLogStream implements LogStream {
  #db: SqliteDatabase;
  #onceTtlMs: number;
  #ownsDb: boolean;
  #waiters = new Map<string, Set<() => void>>();
  #consumers = new Set<string>();
  #delivered = new Map<number, _Delivered[]>();
  #lastSweep = 0;
  #closed = false;

  /**
   * Uses the streams in a database, creating their tables if missing.
   *
   * @param db the data dir's database
   * @param options append-once memory, ownership of the database
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise", { owner: true });
   * await using stream = new SqliteLogStream(db);
   * await stream.append("logs", [{ l: "hello" }]);
   * ```
   */
  constructor(db: SqliteDatabase, options: SqliteLogStreamOptions = {}) {
    const ttl = options.onceTtlMs ?? 7 * 86_400_000;
    if (!(ttl > 0)) {
      throw new RangeError(`Cannot open embedded streams: onceTtlMs ${ttl}; expected a number > 0`);
    }
    this.#db = db;
    this.#onceTtlMs = ttl;
    this.#ownsDb = options.ownsDatabase ?? false;
    db.schema("stream", 1, _SCHEMA);
  }

  /**
   * Opens the streams of a data dir on a database of their own, taking the
   * data dir's lock (tests and single-adapter processes).
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`)
   * @param options append-once memory
   * @returns the stream; disposing it closes the database
   * @throws {DataDirLockedError} when another process owns the data dir
   */
  static async open(
    dataDir: string,
    options: Omit<SqliteLogStreamOptions, "ownsDatabase"> = {},
  ): Promise<SqliteLogStream> {
    return await openOwnedBy(
      dataDir,
      (db) => new SqliteLogStream(db, { ...options, ownsDatabase: true }),
      { owner: true },
    );
  }

  /** {@inheritDoc LogStream.append} */
  append(
    stream: string,
    messages: readonly Fields[],
    options: AppendOptions = {},
  ): Promise<string[]> {
    try {
      this.#check();
      const state = options.state && Object.keys(options.state).length > 0 ? options.state : null;
      if (messages.length === 0 && !state) return Promise.resolve([]);
      for (const k in state ?? {}) _checkString(state![k], `state key ${JSON.stringify(k)}`);
      for (const fields of messages) _checkFields(fields);
      const maxLen = _maxLen(options.maxLen);
      const sequence = options.sequence;
      checkSequence(sequence);
      const now = Date.now();
      const ids = this.#db.write(() => {
        if (sequence) {
          const last = this.#getState(sequence.key, now);
          if (last !== null) {
            if (sequence.n <= Number(last)) return null;
            if (sequence.n !== Number(last) + 1) {
              throw new AppendOutOfOrderError(
                `Cannot append to ${stream} with sequence ${sequence.key}: append ${sequence.n} after ${last}`,
              );
            }
          } else if (sequence.n > 1) {
            throw new AppendOutOfOrderError(
              `Cannot append to ${stream} with sequence ${sequence.key}: append ${sequence.n} after none`,
            );
          }
        }
        const ids = messages.length > 0 ? this.#insert(stream, messages, maxLen, now) : [];
        for (const k in state ?? {}) this.#setState(k, state![k]!, 0);
        if (sequence) {
          this.#setState(sequence.key, String(sequence.n), now + (sequence.ttlMs ?? 86_400_000));
        }
        return ids;
      });
      if (ids === null) return Promise.resolve([]);
      this.#afterWrite(stream, ids.length, now);
      return Promise.resolve(ids);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@inheritDoc LogStream.appendOnce} */
  appendOnce(
    stream: string,
    items: readonly { key: string; fields: Fields }[],
    options: { maxLen?: number; ttlMs?: number } = {},
  ): Promise<(string | null)[]> {
    try {
      this.#check();
      if (items.length === 0) return Promise.resolve([]);
      const maxLen = _maxLen(options.maxLen);
      const ttl = options.ttlMs ?? this.#onceTtlMs;
      if (!(ttl > 0)) {
        throw new RangeError(`Cannot append once: ttlMs ${ttl}; expected a positive number of ms`);
      }
      for (const { fields } of items) _checkFields(fields);
      const now = Date.now();
      let added = 0;
      const out = this.#db.write(() => {
        const seen = new Set<string>();
        const fresh: { index: number; fields: Fields; key: string }[] = [];
        items.forEach(({ key, fields }, index) => {
          if (seen.has(key) || this.#getState(key, now) !== null) return;
          seen.add(key);
          fresh.push({ index, fields, key });
        });
        const result: (string | null)[] = items.map(() => null);
        if (fresh.length === 0) return result;
        const ids = this.#insert(stream, fresh.map((f) => f.fields), maxLen, now);
        fresh.forEach((f, i) => {
          result[f.index] = ids[i]!;
          this.#setState(f.key, "1", now + ttl);
        });
        added = ids.length;
        return result;
      });
      this.#afterWrite(stream, added, now);
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@inheritDoc LogStream.getState} */
  getState(key: string): Promise<string | null> {
    return this.#sync(() => this.#getState(key, Date.now()));
  }

  /** {@inheritDoc LogStream.deleteState} */
  deleteState(keys: readonly string[]): Promise<void> {
    return this.#sync(() => {
      if (keys.length === 0) return;
      this.#db.prepare("DELETE FROM stream_state WHERE key IN (SELECT value FROM json_each(?))")
        .run(JSON.stringify(keys));
    });
  }

  /** {@inheritDoc LogStream.createGroup} */
  createGroup(stream: string, group: string): Promise<void> {
    return this.#sync(() =>
      this.#db.write(() => {
        const s = this.#streamRow(stream, true)!;
        this.#db.prepare("INSERT OR IGNORE INTO stream_groups (sid, name) VALUES (?, ?)")
          .run(s.sid, group);
      })
    );
  }

  /** {@inheritDoc LogStream.readNew} */
  async readNew(
    stream: string,
    group: string,
    consumer: string,
    options: ReadOptions,
  ): Promise<StreamMessage[]> {
    const count = _count(options.count);
    const blockMs = options.blockMs ?? 0;
    const deadline = Date.now() + blockMs;
    for (;;) {
      this.#check();
      let ids: string[] = [];
      const got = this.#db.write(() => {
        const g = this.#group(stream, group, "readNew");
        this.#seeConsumer(g.gid, consumer);
        const rows = this.#db.prepareArrays(
          "SELECT ms, seq, fields FROM stream_entries WHERE sid = ? AND (ms, seq) > (?, ?) " +
            "ORDER BY ms, seq LIMIT ?",
        ).all(g.sid, g.last_ms, g.last_seq, count) as unknown as [
          number,
          number,
          string,
        ][];
        if (rows.length === 0) return rows;
        const last = rows[rows.length - 1]!;
        this.#db.prepare(
          "INSERT OR REPLACE INTO stream_pending (gid, ms, seq, consumer, deliveries, at) " +
            "SELECT ?, ms, seq, ?, 1, ? FROM stream_entries " +
            "WHERE sid = ? AND (ms, seq) > (?, ?) AND (ms, seq) <= (?, ?)",
        ).run(g.gid, consumer, Date.now(), g.sid, g.last_ms, g.last_seq, last[0], last[1]);
        this.#db.prepare("UPDATE stream_groups SET last_ms = ?, last_seq = ? WHERE gid = ?")
          .run(last[0], last[1], g.gid);
        ids = this.#remember(g.gid, rows);
        return rows;
      });
      if (got.length > 0) {
        return got.map(([, , fields], i) => ({
          id: ids[i]!,
          fields: JSON.parse(fields) as Fields,
          deliveries: 1,
        }));
      }
      const left = deadline - Date.now();
      if (blockMs <= 0 || left <= 0) return [];
      await this.#waitForAppend(stream, left);
      if (this.#closed) return [];
    }
  }

  /** {@inheritDoc LogStream.readPending} */
  readPending(
    stream: string,
    group: string,
    consumer: string,
    options: ReadOptions,
  ): Promise<StreamMessage[]> {
    return this.#sync(() => {
      const count = _count(options.count);
      return this.#db.write(() => {
        const g = this.#group(stream, group, "readPending");
        this.#seeConsumer(g.gid, consumer);
        return this.#redeliver(
          g,
          consumer,
          count,
          "p.gid = ? AND p.consumer = ?",
          [g.gid, consumer],
        );
      });
    });
  }

  /** {@inheritDoc LogStream.claimIdle} */
  claimIdle(
    stream: string,
    group: string,
    consumer: string,
    options: { minIdleMs: number; count: number },
  ): Promise<StreamMessage[]> {
    return this.#sync(() => {
      const count = _count(options.count);
      return this.#db.write(() => {
        const g = this.#group(stream, group, "claimIdle");
        this.#seeConsumer(g.gid, consumer);
        const before = Date.now() - options.minIdleMs;
        return this.#redeliver(g, consumer, count, "p.gid = ? AND p.at <= ?", [g.gid, before]);
      });
    });
  }

  /** {@inheritDoc LogStream.ack} */
  ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    return this.#sync(() => {
      if (ids.length === 0) return 0;
      const g = this.#groupRow(stream, group);
      if (!g) return 0;
      const batch = this.#takeDelivered(g.gid, ids);
      if (batch) {
        // Exactly the ids of one readNew: the pending rows of their id range are theirs alone
        // (that read recorded every entry of the range), so one range delete acks them.
        return this.#db.write(() =>
          Number(
            this.#db.prepare(
              "DELETE FROM stream_pending WHERE gid = ? AND (ms, seq) >= (?, ?) AND (ms, seq) <= (?, ?)",
            ).run(g.gid, batch.first[0], batch.first[1], batch.last[0], batch.last[1]).changes,
          )
        );
      }
      const keys: [number, number][] = [];
      for (const id of ids) {
        const k = _parseId(id);
        if (k) keys.push(k);
      }
      if (keys.length === 0) return 0;
      return this.#db.write(() => this.#forKeys("DELETE FROM stream_pending", [], g.gid, keys));
    });
  }

  /** {@inheritDoc LogStream.groupInfo} */
  groupInfo(stream: string, group: string): Promise<GroupInfo> {
    return this.#sync(() => {
      const s = this.#streamRow(stream, false);
      if (!s) return { pending: 0, lag: 0, consumers: 0 };
      const g = this.#groupRow(stream, group);
      if (!g) return { pending: 0, lag: null, consumers: 0 };
      const one = (sql: string, ...args: number[]) =>
        Number((this.#db.prepare(sql).get(...args) as { n: number }).n);
      return {
        pending: one("SELECT count(*) AS n FROM stream_pending WHERE gid = ?", g.gid),
        lag: one(
          "SELECT count(*) AS n FROM stream_entries WHERE sid = ? AND (ms, seq) > (?, ?)",
          g.sid,
          g.last_ms,
          g.last_seq,
        ),
        consumers: one("SELECT count(*) AS n FROM stream_consumers WHERE gid = ?", g.gid),
      };
    });
  }

  /** {@inheritDoc LogStream.range} */
  range(
    stream: string,
    options: { start?: string; end?: string; count?: number; reverse?: boolean } = {},
  ): Promise<StreamMessage[]> {
    return this.#sync(() => {
      const lo = _bound(options.start ?? "-", false);
      const hi = _bound(options.end ?? "+", true);
      const s = this.#streamRow(stream, false);
      if (!s) return [];
      const where = ["sid = ?"];
      const args: number[] = [s.sid];
      if (lo) {
        where.push(`(ms, seq) ${lo.exclusive ? ">" : ">="} (?, ?)`);
        args.push(lo.ms, lo.seq);
      }
      if (hi) {
        where.push(`(ms, seq) ${hi.exclusive ? "<" : "<="} (?, ?)`);
        args.push(hi.ms, hi.seq);
      }
      const count = options.count === undefined ? -1 : Math.max(0, Math.floor(options.count));
      const order = options.reverse ? "DESC" : "ASC";
      const rows = this.#db.prepareArrays(
        `SELECT ms, seq, fields FROM stream_entries WHERE ${where.join(" AND ")} ` +
          `ORDER BY ms ${order}, seq ${order} LIMIT ?`,
      ).all(...args, count) as unknown as [number, number, string][];
      return rows.map(([ms, seq, fields]) => ({
        id: `${ms}-${seq}`,
        fields: JSON.parse(fields) as Fields,
        deliveries: 0,
      }));
    });
  }

  /** {@inheritDoc LogStream.length} */
  length(stream: string): Promise<number> {
    return this.#sync(() => this.#streamRow(stream, false)?.length ?? 0);
  }

  /** {@inheritDoc LogStream.ping} */
  ping(): Promise<boolean> {
    return Promise.resolve(!this.#closed && !this.#db.closed);
  }

  /**
   * Writes a whole stream as the earlier file-based adapter held it, ids
   * kept, in the caller's transaction (the migration of an old data dir).
   *
   * @param stream the stream's name
   * @param data its last id, entries, groups with their pending entries
   */
  importStream(stream: string, data: ImportedStream): void {
    const s = this.#streamRow(stream, true)!;
    const ins = this.#db.prepare(
      "INSERT OR REPLACE INTO stream_entries (sid, ms, seq, fields) VALUES (?, ?, ?, ?)",
    );
    for (const [ms, seq, fields] of data.entries) ins.run(s.sid, ms, seq, JSON.stringify(fields));
    const lastMs = Math.max(s.last_ms, data.lastMs);
    const lastSeq = lastMs === data.lastMs ? Math.max(data.lastSeq, s.last_seq) : s.last_seq;
    this.#db.prepare(
      "UPDATE stream_streams SET last_ms = ?, last_seq = ?, " +
        "length = (SELECT count(*) FROM stream_entries WHERE sid = ?) WHERE sid = ?",
    ).run(lastMs, lastSeq, s.sid, s.sid);
    for (const g of data.groups) {
      this.#db.prepare(
        "INSERT INTO stream_groups (sid, name, last_ms, last_seq) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (sid, name) DO UPDATE SET last_ms = excluded.last_ms, last_seq = excluded.last_seq",
      ).run(s.sid, g.name, g.lastMs, g.lastSeq);
      const row = this.#groupRow(stream, g.name)!;
      for (const c of g.consumers) this.#seeConsumer(row.gid, c);
      const pin = this.#db.prepare(
        "INSERT OR REPLACE INTO stream_pending (gid, ms, seq, consumer, deliveries, at) " +
          "VALUES (?, ?, ?, ?, ?, ?)",
      );
      for (const p of g.pending) pin.run(row.gid, p.ms, p.seq, p.consumer, p.deliveries, p.at);
    }
  }

  /**
   * Writes a state key as the earlier file-based adapter held it (migration).
   *
   * @param key the key
   * @param value its value
   * @param exp expiry in ms since the epoch; 0 never expires
   */
  importState(key: string, value: string, exp: number): void {
    this.#setState(key, value, exp);
  }

  /** Wakes blocked reads; closes the database if this stream owns it. */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const set of this.#waiters.values()) for (const wake of [...set]) wake();
    this.#waiters.clear();
    if (this.#ownsDb) this.#db.close();
    return Promise.resolve();
  }

  /** Same as `[Symbol.asyncDispose]()`. */
  close(): Promise<void> {
    return this[Symbol.asyncDispose]();
  }

  #check(): void {
    if (this.#closed) throw new Error("Cannot use SqliteLogStream: it is closed");
  }

  #sync<T>(fn: () => T): Promise<T> {
    return settle(() => {
      this.#check();
      return fn();
    });
  }

  /** Inserts messages (in the caller's transaction) and returns their ids. */
  #insert(stream: string, messages: readonly Fields[], maxLen: number, now: number): string[] {
    const s = this.#streamRow(stream, true)!;
    let ms: number;
    let seq: number;
    if (now > s.last_ms) {
      ms = now;
      seq = 0;
    } else {
      ms = s.last_ms;
      seq = s.last_seq + 1;
    }
    const n = messages.length;
    this.#db.prepare(
      "INSERT INTO stream_entries (sid, ms, seq, fields) SELECT ?, ?, ? + key, value FROM json_each(?)",
    ).run(s.sid, ms, seq, JSON.stringify(messages));
    let length = s.length + n;
    const slack = Math.min(100, Math.ceil(maxLen / 10));
    if (maxLen > 0 && length > maxLen + slack) {
      const r = this.#db.prepare(
        "DELETE FROM stream_entries WHERE sid = ? AND (ms, seq) < " +
          "(SELECT ms, seq FROM stream_entries WHERE sid = ? ORDER BY ms, seq LIMIT 1 OFFSET ?)",
      ).run(s.sid, s.sid, length - maxLen);
      length -= Number(r.changes);
    }
    this.#db.prepare(
      "UPDATE stream_streams SET last_ms = ?, last_seq = ?, length = ? WHERE sid = ?",
    ).run(ms, seq + n - 1, length, s.sid);
    const ids = new Array<string>(n);
    for (let i = 0; i < n; i++) ids[i] = `${ms}-${seq + i}`;
    return ids;
  }

  #afterWrite(stream: string, added: number, now: number): void {
    if (added > 0) {
      const set = this.#waiters.get(stream);
      if (set) { for (const wake of [...set]) wake(); }
    }
    if (now - this.#lastSweep > 60_000) {
      this.#lastSweep = now;
      this.#db.write(() =>
        this.#db.prepare("DELETE FROM stream_state WHERE exp > 0 AND exp <= ?").run(now)
      );
    }
  }

  #getState(key: string, now: number): string | null {
    const row = this.#db.prepare(
      "SELECT CAST(value AS BLOB) AS value, exp FROM stream_state WHERE key = ?",
    ).get(key) as { value: Uint8Array; exp: number } | undefined;
    if (!row || (row.exp !== 0 && row.exp <= now)) return null;
    return textOf(row.value);
  }

  #setState(key: string, value: string, exp: number): void {
    this.#db.prepare(
      "INSERT INTO stream_state (key, value, exp) VALUES (?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, exp = excluded.exp",
    ).run(key, value, exp);
  }

  #streamRow(name: string, create: boolean): _Stream | null {
    const get = this.#db.prepare(
      "SELECT sid, last_ms, last_seq, length FROM stream_streams WHERE name = ?",
    );
    let row = get.get(name) as _Stream | undefined;
    if (!row && create) {
      this.#db.prepare("INSERT OR IGNORE INTO stream_streams (name) VALUES (?)").run(name);
      row = get.get(name) as unknown as _Stream;
    }
    return row ?? null;
  }

  #groupRow(stream: string, group: string): _Group | null {
    return (this.#db.prepare(
      "SELECT g.gid, g.sid, g.last_ms, g.last_seq FROM stream_groups g " +
        "JOIN stream_streams s ON s.sid = g.sid WHERE s.name = ? AND g.name = ?",
    ).get(stream, group) as _Group | undefined) ?? null;
  }

  #group(stream: string, group: string, op: string): _Group {
    const g = this.#groupRow(stream, group);
    if (!g) {
      const s = this.#streamRow(stream, false);
      throw new NoGroupError(
        `NOGROUP Cannot ${op} stream ${JSON.stringify(stream)} in group ${
          JSON.stringify(group)
        }: no such ${s ? "group" : "stream"}; expected createGroup() first`,
      );
    }
    return g;
  }

  #seeConsumer(gid: number, consumer: string): void {
    const key = `${gid}\u0000${consumer}`;
    if (this.#consumers.has(key)) return;
    this.#db.prepare("INSERT OR IGNORE INTO stream_consumers (gid, name) VALUES (?, ?)")
      .run(gid, consumer);
    this.#consumers.add(key);
  }

  /** Delivers pending entries again to `consumer`, dropping those trimmed away. */
  #redeliver(
    g: _Group,
    consumer: string,
    count: number,
    where: string,
    args: (number | string)[],
  ): StreamMessage[] {
    const select = this.#db.prepareArrays(
      "SELECT p.ms, p.seq, e.fields, p.deliveries FROM stream_pending p " +
        "LEFT JOIN stream_entries e ON e.sid = ? AND e.ms = p.ms AND e.seq = p.seq " +
        `WHERE ${where} ORDER BY p.ms, p.seq LIMIT ?`,
    );
    for (;;) {
      const rows = select.all(g.sid, ...args, count) as unknown as [
        number,
        number,
        string | null,
        number,
      ][];
      const gone = rows.filter((r) => r[2] === null).map((r) => [r[0], r[1]]);
      const found = rows.filter((r) => r[2] !== null);
      if (gone.length > 0) {
        // A message trimmed away while pending can never be handled: drop it.
        this.#forKeys("DELETE FROM stream_pending", [], g.gid, gone as [number, number][]);
        if (found.length === 0 && rows.length === count) continue;
      }
      if (found.length === 0) return [];
      this.#forKeys(
        "UPDATE stream_pending SET deliveries = deliveries + 1, at = ?, consumer = ?",
        [Date.now(), consumer],
        g.gid,
        found.map((r) => [r[0], r[1]]),
      );
      return found.map(([ms, seq, fields, deliveries]) => ({
        id: `${ms}-${seq}`,
        fields: JSON.parse(fields!) as Fields,
        deliveries: deliveries + 1,
      }));
    }
  }

  /**
   * Runs `head WHERE gid = ? AND (ms, seq) IN (VALUES ...)` over pending
   * keys, up to 100 keys per statement (bound values: far cheaper than a
   * JSON list); returns the rows changed.
   */
  #forKeys(
    head: string,
    args: (number | string)[],
    gid: number,
    keys: readonly [number, number][],
  ): number {
    let changed = 0;
    for (let i = 0; i < keys.length; i += 100) {
      const part = keys.slice(i, i + 100);
      const sql = `${head} WHERE gid = ? AND (ms, seq) IN (VALUES ${
        Array(part.length).fill("(?, ?)").join(", ")
      })`;
      changed += Number(this.#db.prepare(sql).run(...args, gid, ...part.flat()).changes);
    }
    return changed;
  }

  /** Records the ids of a readNew batch (the last few per group) for a fast ack. */
  #remember(gid: number, rows: readonly [number, number, string][]): string[] {
    let list = this.#delivered.get(gid);
    if (!list) this.#delivered.set(gid, list = []);
    const ids = rows.map((r) => `${r[0]}-${r[1]}`);
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    list.push({ ids, first: [first[0], first[1]], last: [last[0], last[1]] });
    if (list.length > 8) list.shift();
    return ids;
  }

  /** The recorded readNew batch whose ids are exactly `ids`, in order (then forgotten). */
  #takeDelivered(gid: number, ids: readonly string[]): _Delivered | null {
    const list = this.#delivered.get(gid);
    if (!list) return null;
    const i = list.findIndex((b) =>
      b.ids.length === ids.length && b.ids[0] === ids[0] && b.ids[b.ids.length - 1] === ids.at(-1)
    );
    if (i < 0) return null;
    const b = list[i]!;
    for (let k = 0; k < ids.length; k++) if (b.ids[k] !== ids[k]) return null;
    list.splice(i, 1);
    return b;
  }

  #waitForAppend(stream: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(stream);
      if (!set) this.#waiters.set(stream, set = new Set());
      const wake = () => {
        clearTimeout(timer);
        set!.delete(wake);
        if (set!.size === 0 && this.#waiters.get(stream) === set) this.#waiters.delete(stream);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }
}

/** A stream as the migration of an old data dir hands it to {@linkcode SqliteLogStream.importStream}. */
export interface ImportedStream {
  /** The stream's last id. */
  lastMs: number;
  /** The stream's last id's counter. */
  lastSeq: number;
  /** Its entries: ms, seq, fields. */
  entries: [number, number, Fields][];
  /** Its groups. */
  groups: {
    name: string;
    lastMs: number;
    lastSeq: number;
    consumers: string[];
    pending: { ms: number; seq: number; consumer: string; deliveries: number; at: number }[];
  }[];
}

function _parseId(id: string): [number, number] | null {
  const dash = id.indexOf("-");
  const ms = dash < 0 ? id : id.slice(0, dash);
  const seq = dash < 0 ? "0" : id.slice(dash + 1);
  if (!_DIGITS.test(ms) || !_DIGITS.test(seq)) return null;
  return [Number(ms), Number(seq)];
}

const _DIGITS = /^\d+$/;

/** Parses a range bound: `-`, `+`, `<ms>`, `<ms>-<seq>`, optionally after `(` (exclusive). */
function _bound(
  text: string,
  end: boolean,
): { ms: number; seq: number; exclusive: boolean } | null {
  const exclusive = text.startsWith("(");
  const id = exclusive ? text.slice(1) : text;
  if (id === "-" || id === "+") return null;
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!m) {
    throw new TypeError(
      `Cannot read range: bound ${JSON.stringify(text)}; expected -, +, <ms> or <ms>-<seq>, ` +
        `optionally after (`,
    );
  }
  const seq = m[2] !== undefined ? Number(m[2]) : end ? Number.MAX_SAFE_INTEGER : 0;
  return { ms: Number(m[1]), seq, exclusive };
}

function _count(count: number): number {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Cannot read stream: count ${count}; expected a positive integer`);
  }
  return count;
}

function _maxLen(maxLen: number | undefined): number {
  const n = maxLen ?? 0;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Cannot append: maxLen ${maxLen}; expected a non-negative integer`);
  }
  return n;
}

function _checkString(value: unknown, what: string): void {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot append: ${what} is ${typeof value}; expected a string`);
  }
}

function _checkFields(fields: Fields): void {
  for (const k in fields) _checkString(fields[k], `field ${JSON.stringify(k)}`);
}
