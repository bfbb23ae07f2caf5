/**
 * The embedded adapter of the {@linkcode Lock} port: leases in the data dir's
 * SQLite database (table `lock_leases`), so that every process sharing the
 * data dir (`deno task start`, the CLI) sees them. A lease is a row with a
 * random token and an expiry; taking a free or expired one and releasing
 * one's own are single transactions.
 *
 * @module
 */

import type { Lease, Lock } from "../../ports/lock.ts";
import type { SqliteDatabase } from "./sqlite_database.ts";

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS lock_leases (
  name TEXT PRIMARY KEY,
  token TEXT NOT NULL,
  until INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Leases in the data dir's SQLite database. */
export class SqliteLock implements Lock {
  #db: SqliteDatabase;

  /**
   * @param db the data dir's database (not closed by this lock)
   * @example
   * ```ts
   * const lock = new SqliteLock(db);
   * await using lease = await lock.tryAcquire("train:web", 60_000);
   * ```
   */
  constructor(db: SqliteDatabase) {
    this.#db = db;
    db.schema("lock", 1, _SCHEMA);
  }

  /** {@inheritDoc Lock.tryAcquire} */
  tryAcquire(name: string, ttlMs: number): Promise<Lease | null> {
    try {
      if (!(ttlMs > 0)) {
        throw new RangeError(
          `Cannot take lock ${JSON.stringify(name)} for ${ttlMs} ms: expected > 0`,
        );
      }
      const token = crypto.randomUUID();
      const now = Date.now();
      const taken = this.#db.write(() =>
        Number(
          this.#db.prepare(
            "INSERT INTO lock_leases (name, token, until) VALUES (?, ?, ?) " +
              "ON CONFLICT (name) DO UPDATE SET token = excluded.token, until = excluded.until " +
              "WHERE lock_leases.until <= ?",
          ).run(name, token, now + ttlMs, now).changes,
        ) > 0
      );
      if (!taken) return Promise.resolve(null);
      const release = () => {
        if (!this.#db.closed) {
          this.#db.write(() =>
            this.#db.prepare("DELETE FROM lock_leases WHERE name = ? AND token = ?").run(
              name,
              token,
            )
          );
        }
        return Promise.resolve();
      };
      return Promise.resolve({ name, release, [Symbol.asyncDispose]: release });
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
