/**
 * The embedded adapter of the {@linkcode FeedbackStore} port: feedback and
 * template suppressions in the SQLite database of the data dir
 * ({@linkcode SqliteDatabase}), tables `feedback_items` and
 * `feedback_suppressions`. A `record` is one transaction.
 *
 * @module
 */

import {
  DEFAULT_MAX_FEEDBACK_PER_CONTAINER,
  DEFAULT_SUPPRESS_MS,
  type Feedback,
  type FeedbackListOptions,
  type FeedbackStore,
  type FeedbackStoreOptions,
  validateFeedback,
} from "../../ports/feedback_store.ts";
import { openOwnedBy, settle, SqliteDatabase, textOf } from "./sqlite_database.ts";

/** Options of {@linkcode SqliteFeedbackStore}. */
export interface SqliteFeedbackStoreOptions extends FeedbackStoreOptions {
  /**
   * Close the database when the store is disposed.
   * @default false
   */
  ownsDatabase?: boolean;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS feedback_items (
  container TEXT NOT NULL,
  anomaly_id TEXT NOT NULL,
  template_id TEXT NOT NULL,
  line TEXT NOT NULL,
  label TEXT NOT NULL,
  at REAL NOT NULL,
  PRIMARY KEY (container, anomaly_id)
);
CREATE INDEX IF NOT EXISTS feedback_items_at ON feedback_items (container, label, at);
CREATE TABLE IF NOT EXISTS feedback_suppressions (
  container TEXT NOT NULL,
  template_id TEXT NOT NULL,
  until REAL NOT NULL,
  PRIMARY KEY (container, template_id)
);
`;

interface _Row {
  container: Uint8Array;
  anomaly_id: Uint8Array;
  template_id: Uint8Array;
  line: Uint8Array;
  label: Feedback["label"];
  at: number;
}

/** Feedback in the data dir's SQLite database. */
export class SqliteFeedbackStore implements FeedbackStore {
  #db: SqliteDatabase;
  #suppressMs: number;
  #max: number;
  #ownsDb: boolean;
  #closed = false;

  /**
   * Uses the feedback in a database, creating its tables if missing.
   *
   * @param db the data dir's database
   * @param options suppression time, cap, ownership of the database
   * @throws {RangeError} when an option is out of range
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise", { owner: true });
   * const feedback = new SqliteFeedbackStore(db, { suppressMs: 86_400_000 });
   * console.log(await feedback.suppressedTemplates("web"));
   * ```
   */
  constructor(db: SqliteDatabase, options: SqliteFeedbackStoreOptions = {}) {
    this.#suppressMs = options.suppressMs ?? DEFAULT_SUPPRESS_MS;
    this.#max = options.maxPerContainer ?? DEFAULT_MAX_FEEDBACK_PER_CONTAINER;
    if (!Number.isFinite(this.#suppressMs) || this.#suppressMs < 0) {
      throw new RangeError(`Cannot use suppressMs ${this.#suppressMs}: expected a number >= 0`);
    }
    if (!Number.isInteger(this.#max) || this.#max < 1) {
      throw new RangeError(`Cannot use maxPerContainer ${this.#max}: expected an integer >= 1`);
    }
    this.#db = db;
    this.#ownsDb = options.ownsDatabase ?? false;
    db.schema("feedback", 1, _SCHEMA);
  }

  /**
   * Opens the feedback of a data dir on a database of its own, without the
   * data dir's lock.
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`)
   * @param options suppression time and cap
   * @returns the store; disposing it closes the database
   */
  static async open(
    dataDir: string,
    options: FeedbackStoreOptions = {},
  ): Promise<SqliteFeedbackStore> {
    return await openOwnedBy(
      dataDir,
      (db) => new SqliteFeedbackStore(db, { ...options, ownsDatabase: true }),
    );
  }

  /** {@inheritDoc FeedbackStore.record} */
  record(feedback: Feedback): Promise<void> {
    return this.#sync(() => {
      const f = validateFeedback(feedback);
      this.#db.write(() => this.#record(f, Date.now()));
    });
  }

  /** {@inheritDoc FeedbackStore.get} */
  get(container: string, anomalyId: string): Promise<Feedback | null> {
    return this.#sync(() => {
      const row = this.#db.prepare(
        "SELECT CAST(container AS BLOB) AS container, CAST(anomaly_id AS BLOB) AS anomaly_id, " +
          "CAST(template_id AS BLOB) AS template_id, CAST(line AS BLOB) AS line, label, at " +
          "FROM feedback_items WHERE container = ? AND anomaly_id = ?",
      ).get(container, anomalyId) as _Row | undefined;
      return row ? _toFeedback(row) : null;
    });
  }

  /** {@inheritDoc FeedbackStore.isSuppressed} */
  isSuppressed(container: string, templateId: string, now = Date.now()): Promise<boolean> {
    return this.#sync(() => {
      const row = this.#db.prepare(
        "SELECT until FROM feedback_suppressions WHERE container = ? AND template_id = ?",
      ).get(container, templateId) as { until: number } | undefined;
      return row !== undefined && row.until > now;
    });
  }

  /** {@inheritDoc FeedbackStore.suppressedTemplates} */
  suppressedTemplates(container: string, now = Date.now()): Promise<Set<string>> {
    return this.#sync(() => {
      const rows = this.#db.prepareArrays(
        "SELECT CAST(template_id AS BLOB) FROM feedback_suppressions WHERE container = ? AND until > ?",
      ).all(container, now) as unknown as [Uint8Array][];
      return new Set(rows.map((r) => textOf(r[0])));
    });
  }

  /** {@inheritDoc FeedbackStore.normalLines} */
  normalLines(container: string, options: FeedbackListOptions = {}): Promise<string[]> {
    return this.#sync(() => this.#list(container, "normal", options).map((f) => f.line));
  }

  /** {@inheritDoc FeedbackStore.confirmedAnomalies} */
  confirmedAnomalies(container: string, options: FeedbackListOptions = {}): Promise<Feedback[]> {
    return this.#sync(() => this.#list(container, "anomaly", options));
  }

  /** {@inheritDoc FeedbackStore.ping} */
  ping(): Promise<boolean> {
    return Promise.resolve(!this.#closed && !this.#db.closed);
  }

  /**
   * Writes feedback and suppressions as the earlier file-based store held
   * them (the migration of an old data dir), in the caller's transaction.
   *
   * @param items the feedback
   * @param suppressions template suppressions: container, template id, until (ms)
   */
  importFeedback(
    items: readonly Feedback[],
    suppressions: readonly [string, string, number][],
  ): void {
    const ins = this.#db.prepare(
      "INSERT OR REPLACE INTO feedback_items (container, anomaly_id, template_id, line, label, at) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const f of items) ins.run(f.container, f.anomalyId, f.templateId, f.line, f.label, f.at);
    const sup = this.#db.prepare(
      "INSERT OR REPLACE INTO feedback_suppressions (container, template_id, until) VALUES (?, ?, ?)",
    );
    for (const [container, templateId, until] of suppressions) {
      sup.run(container, templateId, until);
    }
  }

  /** Later calls fail; closes the database if this store owns it. */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#ownsDb) this.#db.close();
    return Promise.resolve();
  }

  #sync<T>(fn: () => T): Promise<T> {
    return settle(() => {
      if (this.#closed) throw new Error("Cannot use SqliteFeedbackStore: it is closed");
      return fn();
    });
  }

  #record(f: Feedback, now: number): void {
    this.#db.prepare(
      "INSERT OR REPLACE INTO feedback_items (container, anomaly_id, template_id, line, label, at) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    ).run(f.container, f.anomalyId, f.templateId, f.line, f.label, f.at);
    if (f.label === "normal") {
      this.#db.prepare(
        "INSERT INTO feedback_suppressions (container, template_id, until) VALUES (?, ?, ?) " +
          "ON CONFLICT (container, template_id) DO UPDATE SET until = max(until, excluded.until)",
      ).run(f.container, f.templateId, f.at + this.#suppressMs);
    } else {
      this.#db.prepare(
        "DELETE FROM feedback_suppressions WHERE container = ? AND template_id = ?",
      ).run(f.container, f.templateId);
    }
    this.#db.prepare("DELETE FROM feedback_suppressions WHERE container = ? AND until <= ?")
      .run(f.container, now);
    const { n } = this.#db.prepare(
      "SELECT count(*) AS n FROM feedback_items WHERE container = ?",
    ).get(f.container) as { n: number };
    if (n > this.#max) {
      this.#db.prepare(
        "DELETE FROM feedback_items WHERE container = ? AND anomaly_id IN (SELECT anomaly_id " +
          "FROM feedback_items WHERE container = ? ORDER BY at, anomaly_id LIMIT ?)",
      ).run(f.container, f.container, n - this.#max);
    }
  }

  #list(container: string, label: Feedback["label"], options: FeedbackListOptions): Feedback[] {
    const limit = options.limit === undefined || !Number.isFinite(options.limit)
      ? -1
      : Math.max(0, Math.floor(options.limit));
    const rows = this.#db.prepare(
      "SELECT CAST(container AS BLOB) AS container, CAST(anomaly_id AS BLOB) AS anomaly_id, " +
        "CAST(template_id AS BLOB) AS template_id, CAST(line AS BLOB) AS line, label, at " +
        "FROM feedback_items WHERE container = ? AND label = ? " +
        "ORDER BY at DESC, anomaly_id DESC LIMIT ?",
    ).all(container, label, limit) as unknown as _Row[];
    return rows.map(_toFeedback);
  }
}

function _toFeedback(r: _Row): Feedback {
  return {
    anomalyId: textOf(r.anomaly_id),
    container: textOf(r.container),
    templateId: textOf(r.template_id),
    line: textOf(r.line),
    label: r.label,
    at: r.at,
  };
}
