/**
 * The embedded adapter of the {@linkcode IncidentStore} port: incidents in
 * the SQLite database of the data dir ({@linkcode SqliteDatabase}), table
 * `incidents` (one row per incident, the incident as JSON beside the
 * columns it is searched by). A save is one transaction with the revision
 * check.
 *
 * @module
 */

import type { Incident, IncidentListOptions, IncidentStore } from "../../ports/incident_store.ts";
import { openOwnedBy, settle, SqliteDatabase, textOf } from "./sqlite_database.ts";

/** Options of {@linkcode SqliteIncidentStore}. */
export interface SqliteIncidentStoreOptions {
  /**
   * Close the database when the store is disposed.
   * @default false
   */
  ownsDatabase?: boolean;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY,
  service TEXT NOT NULL,
  status TEXT NOT NULL,
  opened_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  rev INTEGER NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);
CREATE INDEX IF NOT EXISTS incidents_service ON incidents (service, status);
CREATE INDEX IF NOT EXISTS incidents_updated ON incidents (updated_at);
`;

/** Incidents in the data dir's SQLite database. */
export class SqliteIncidentStore implements IncidentStore {
  #db: SqliteDatabase;
  #ownsDb: boolean;
  #closed = false;

  /**
   * Uses the incidents in a database, creating the table if missing.
   *
   * @param db The data dir's database.
   * @param options Ownership of the database.
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise", { owner: true });
   * const incidents = new SqliteIncidentStore(db);
   * console.log(await incidents.list({ status: "open" }));
   * ```
   */
  constructor(db: SqliteDatabase, options: SqliteIncidentStoreOptions = {}) {
    this.#db = db;
    this.#ownsDb = options.ownsDatabase ?? false;
    db.schema("incidents", 1, _SCHEMA);
  }

  /**
   * Opens the incidents of a data dir on a database of its own, without the
   * data dir's lock.
   *
   * @param dataDir The data dir (`TAILWISE_DATA_DIR`).
   * @returns The store; disposing it closes the database.
   */
  static async open(dataDir: string): Promise<SqliteIncidentStore> {
    return await openOwnedBy(dataDir, (db) => new SqliteIncidentStore(db, { ownsDatabase: true }));
  }

  /** {@inheritDoc IncidentStore.get} */
  get(id: string): Promise<Incident | null> {
    return this.#sync(() => {
      const row = this.#db.prepareArrays(
        "SELECT CAST(json AS BLOB), rev FROM incidents WHERE id = ?",
      ).get(id) as [Uint8Array, number] | undefined;
      return row ? _parse(row) : null;
    });
  }

  /** {@inheritDoc IncidentStore.current} */
  current(service: string): Promise<Incident | null> {
    return this.#sync(() => {
      const row = this.#db.prepareArrays(
        "SELECT CAST(json AS BLOB), rev FROM incidents WHERE service = ? AND status = 'open' " +
          "ORDER BY opened_at DESC LIMIT 1",
      ).get(service) as [Uint8Array, number] | undefined;
      return row ? _parse(row) : null;
    });
  }

  /** {@inheritDoc IncidentStore.list} */
  list(options: IncidentListOptions = {}): Promise<Incident[]> {
    return this.#sync(() => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (options.service !== undefined) {
        where.push("service = ?");
        params.push(options.service);
      }
      if (options.status !== undefined) {
        where.push("status = ?");
        params.push(options.status);
      }
      if (options.before !== undefined) {
        where.push("opened_at < ?");
        params.push(options.before);
      }
      if (options.since !== undefined) {
        where.push("updated_at >= ?");
        params.push(options.since);
      }
      const sql = "SELECT CAST(json AS BLOB), rev FROM incidents" +
        (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
        " ORDER BY opened_at DESC, id DESC LIMIT ?";
      const rows = this.#db.prepareArrays(sql).all(...params, options.limit ?? 50) as unknown as [
        Uint8Array,
        number,
      ][];
      return rows.map(_parse);
    });
  }

  /** {@inheritDoc IncidentStore.save} */
  save(incident: Incident, expected: number): Promise<boolean> {
    return this.#sync(() =>
      this.#db.write(() => {
        const row = this.#db.prepare("SELECT rev FROM incidents WHERE id = ?").get(incident.id) as
          | { rev: number }
          | undefined;
        if ((row?.rev ?? 0) !== expected) return false;
        if (expected === 0 && incident.status === "open") {
          const other = this.#db.prepare(
            "SELECT id FROM incidents WHERE service = ? AND status = 'open' AND id != ?",
          ).get(incident.service, incident.id);
          if (other !== undefined) return false;
        }
        const { revision: _r, ...rest } = incident;
        this.#db.prepare(
          "INSERT INTO incidents (id, service, status, opened_at, updated_at, rev, json) " +
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, " +
            "updated_at = excluded.updated_at, rev = excluded.rev, json = excluded.json",
        ).run(
          incident.id,
          incident.service,
          incident.status,
          incident.openedAt,
          incident.updatedAt,
          expected + 1,
          JSON.stringify(rest),
        );
        return true;
      })
    );
  }

  #sync<T>(fn: () => T): Promise<T> {
    return settle(() => {
      if (this.#closed) throw new Error("Cannot use SqliteIncidentStore: it is closed");
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

function _parse([json, rev]: [Uint8Array, number]): Incident {
  return { ...JSON.parse(textOf(json)), revision: Number(rev) };
}
