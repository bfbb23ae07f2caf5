/**
 * The embedded adapter of the {@linkcode RateStore} port: counts, claims,
 * batch ids and active services in the SQLite database of the data dir
 * ({@linkcode SqliteDatabase}), tables `rate_counts`, `rate_claims`,
 * `rate_batches` and `rate_services`. An `add` is one transaction; rows
 * older than the TTL are deleted as windows are claimed.
 *
 * @module
 */

import {
  RATE_COUNT_TTL_MS,
  type RateIncrement,
  type RateStore,
  type StoredWindow,
} from "../../ports/rate_store.ts";
import { openOwnedBy, settle, SqliteDatabase, textOf } from "./sqlite_database.ts";

/** Options of {@linkcode SqliteRateStore}. */
export interface SqliteRateStoreOptions {
  /**
   * How long counts and claims are kept (ms).
   * @default RATE_COUNT_TTL_MS (6 hours)
   */
  ttlMs?: number;
  /**
   * Close the database when the store is disposed.
   * @default false
   */
  ownsDatabase?: boolean;
  /**
   * The clock (ms since the epoch), for expiry.
   * @default Date.now
   */
  now?: () => number;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS rate_counts (
  service TEXT NOT NULL,
  win INTEGER NOT NULL,
  template TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (service, win, template)
);
CREATE INDEX IF NOT EXISTS rate_counts_win ON rate_counts (win);
CREATE TABLE IF NOT EXISTS rate_claims (
  service TEXT NOT NULL,
  win INTEGER NOT NULL,
  until REAL NOT NULL,
  PRIMARY KEY (service, win)
);
CREATE TABLE IF NOT EXISTS rate_batches (id TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rate_services (service TEXT PRIMARY KEY, last INTEGER NOT NULL);
`;

/** The total's row in `rate_counts` (template ids are hex, so it never clashes). */
const _TOTAL = "_";

/** Rate counts in the data dir's SQLite database. */
export class SqliteRateStore implements RateStore {
  #db: SqliteDatabase;
  #ttlMs: number;
  #ownsDb: boolean;
  #now: () => number;
  #closed = false;
  #lastExpire = 0;

  /**
   * Uses the rate counts in a database, creating its tables if missing.
   *
   * @param db The data dir's database.
   * @param options TTL, ownership of the database, clock.
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise", { owner: true });
   * const rates = new SqliteRateStore(db);
   * console.log(await rates.services(Date.now() - 3_600_000));
   * ```
   */
  constructor(db: SqliteDatabase, options: SqliteRateStoreOptions = {}) {
    this.#ttlMs = options.ttlMs ?? RATE_COUNT_TTL_MS;
    if (!Number.isFinite(this.#ttlMs) || this.#ttlMs < 1000) {
      throw new RangeError(`Cannot use ttlMs ${this.#ttlMs}: expected a number >= 1000`);
    }
    this.#db = db;
    this.#ownsDb = options.ownsDatabase ?? false;
    this.#now = options.now ?? Date.now;
    db.schema("rates", 1, _SCHEMA);
  }

  /**
   * Opens the rate counts of a data dir on a database of its own, without
   * the data dir's lock.
   *
   * @param dataDir The data dir (`TAILWISE_DATA_DIR`).
   * @param options TTL and clock.
   * @returns The store; disposing it closes the database.
   */
  static async open(
    dataDir: string,
    options: SqliteRateStoreOptions = {},
  ): Promise<SqliteRateStore> {
    return await openOwnedBy(
      dataDir,
      (db) => new SqliteRateStore(db, { ...options, ownsDatabase: true }),
    );
  }

  /** {@inheritDoc RateStore.add} */
  add(increments: readonly RateIncrement[], options: { batchId?: string } = {}): Promise<boolean> {
    return this.#sync(() =>
      this.#db.write(() => {
        const now = this.#now();
        if (options.batchId !== undefined) {
          const r = this.#db.prepare(
            "INSERT OR IGNORE INTO rate_batches (id, until) VALUES (?, ?)",
          ).run(options.batchId, now + this.#ttlMs);
          if (Number(r.changes) === 0) return false;
        }
        const up = this.#db.prepare(
          "INSERT INTO rate_counts (service, win, template, n) VALUES (?, ?, ?, ?) " +
            "ON CONFLICT (service, win, template) DO UPDATE SET n = n + excluded.n",
        );
        const seen = this.#db.prepare(
          "INSERT INTO rate_services (service, last) VALUES (?, ?) " +
            "ON CONFLICT (service) DO UPDATE SET last = max(last, excluded.last)",
        );
        for (const inc of increments) {
          up.run(inc.service, inc.window, _TOTAL, inc.total);
          for (const [id, n] of inc.templates) up.run(inc.service, inc.window, id, n);
          seen.run(inc.service, inc.window);
        }
        return true;
      })
    );
  }

  /** {@inheritDoc RateStore.read} */
  read(service: string, from: number, to: number, windowMs: number): Promise<StoredWindow[]> {
    return this.#sync(() => {
      const rows = this.#db.prepareArrays(
        "SELECT win, CAST(template AS BLOB), n FROM rate_counts " +
          "WHERE service = ? AND win >= ? AND win <= ?",
      ).all(service, from, to) as unknown as [number, Uint8Array, number][];
      const byWin = new Map<number, StoredWindow>();
      const out: StoredWindow[] = [];
      for (let w = from; w <= to; w += windowMs) {
        const s = { window: w, total: 0, templates: new Map<string, number>() };
        byWin.set(w, s);
        out.push(s);
      }
      for (const [win, template, n] of rows) {
        const s = byWin.get(Number(win));
        if (s === undefined) continue;
        const id = textOf(template);
        if (id === _TOTAL) s.total = Number(n);
        else s.templates.set(id, Number(n));
      }
      return out;
    });
  }

  /** {@inheritDoc RateStore.claim} */
  claim(service: string, window: number): Promise<boolean> {
    return this.#sync(() =>
      this.#db.write(() => {
        const now = this.#now();
        this.#expire(now);
        const r = this.#db.prepare(
          "INSERT OR IGNORE INTO rate_claims (service, win, until) VALUES (?, ?, ?)",
        ).run(service, window, now + this.#ttlMs);
        return Number(r.changes) === 1;
      })
    );
  }

  /** {@inheritDoc RateStore.services} */
  services(since: number): Promise<Map<string, number>> {
    return this.#sync(() => {
      const rows = this.#db.prepareArrays(
        "SELECT CAST(service AS BLOB), last FROM rate_services WHERE last >= ?",
      ).all(since) as unknown as [Uint8Array, number][];
      return new Map(rows.map(([s, last]) => [textOf(s), Number(last)]));
    });
  }

  #expire(now: number): void {
    if (now - this.#lastExpire < 60_000) return;
    this.#lastExpire = now;
    const oldest = now - this.#ttlMs;
    this.#db.prepare("DELETE FROM rate_counts WHERE win < ?").run(oldest);
    this.#db.prepare("DELETE FROM rate_claims WHERE until < ?").run(now);
    this.#db.prepare("DELETE FROM rate_batches WHERE until < ?").run(now);
    this.#db.prepare("DELETE FROM rate_services WHERE last < ?").run(oldest);
  }

  #sync<T>(fn: () => T): Promise<T> {
    return settle(() => {
      if (this.#closed) throw new Error("Cannot use SqliteRateStore: it is closed");
      return fn();
    });
  }

  /** Closes the database when the store owns it. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    if (this.#ownsDb) this.#db.close();
    return Promise.resolve();
  }
}
