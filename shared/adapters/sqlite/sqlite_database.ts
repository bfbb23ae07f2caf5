/**
 * The one SQLite database of the embedded mode: `<dataDir>/tailwise.db`,
 * opened through `node:sqlite` in WAL mode. Every embedded adapter (log
 * stream, log store, model registry, feedback store) takes this handle and
 * keeps its tables in it, so one process has one connection and one writer.
 *
 * - `journal_mode=WAL`, `synchronous=NORMAL`: a commit is in the WAL file
 *   (the OS's page cache) when the call returns, so a killed process loses
 *   nothing committed; a power cut may lose the last commits, never the
 *   database. `synchronous: "full"` syncs every commit.
 * - `busy_timeout` 5000 ms: other processes on the same file (the CLI's
 *   registry while `deno task start` runs) wait their turn instead of failing.
 * - Every statement runs synchronously and no transaction spans an `await`,
 *   so the adapters of one process never wait on one another.
 *
 * The owner of a data dir (the process that runs the stream) opens it with
 * `owner: true`: it takes the data-dir lock ({@linkcode lockDataDir}) and
 * migrates a data dir written by the earlier file-based adapters.
 *
 * @module
 */

import { join } from "node:path";
import { type DataDirLock, lockDataDir } from "./data_dir_lock.ts";
import { StorageFullError } from "../../ports/storage_full.ts";

/**
 * The part of `node:sqlite`'s `SqliteStatement` the adapters use. (`node:sqlite`
 * is loaded at run time: the `@types/node` that npm packages pull into the
 * type check predates it.)
 */
export interface SqliteStatement {
  /** Runs the statement; how many rows it changed. */
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  /** The first row, or undefined. */
  get(...params: unknown[]): unknown;
  /** Every row. */
  all(...params: unknown[]): unknown[];
}

/** The part of `node:sqlite`'s `DatabaseSync` the adapters use. */
export interface SqliteConnection {
  /** Runs SQL without results. */
  exec(sql: string): void;
  /** Prepares a statement. */
  prepare(sql: string): SqliteStatement;
  /** Closes the connection. */
  close(): void;
  /** True inside a transaction. */
  readonly isTransaction: boolean;
}

const _MODULE = "node:sqlite";

/** Options of {@linkcode SqliteDatabase.open}. */
export interface SqliteDatabaseOptions {
  /**
   * Take the data-dir lock for the life of the handle (one owner per data
   * dir) and migrate an old-format data dir.
   * @default false
   */
  owner?: boolean;
  /**
   * `normal`: commits survive a killed process; `full`: also a power cut.
   * @default "normal"
   */
  synchronous?: "normal" | "full";
  /**
   * How long a write waits for another process's write to finish, in ms.
   * @default 5000
   */
  busyTimeoutMs?: number;
  /** Told what a migration did. */
  log?: (message: string) => void;
  /**
   * Told when a write fails for lack of space (`full` true, once, with the
   * line to show) and when space returns (`full` false). Writes meanwhile
   * throw {@linkcode StorageFullError}; the handle looks for space every
   * `diskProbeMs`.
   */
  onDiskFull?: (full: boolean, message: string) => void;
  /**
   * How often to look for free space while the disk is full, in ms.
   * @default 1000
   */
  diskProbeMs?: number;
}

/**
 * The line shown when the data dir's disk is full.
 *
 * @param dataDir the data dir
 * @param atStart true when the process cannot even start (it exits)
 * @returns what is wrong and what to do
 */
export function diskFullMessage(dataDir: string, atStart = false): string {
  return atStart
    ? `the data dir ${dataDir} is on a full disk: free space on it, then start again; nothing lost`
    : `the data dir ${dataDir} is on a full disk: free space on it; intake paused, ` +
      "nothing lost, resuming when space returns";
}

/**
 * True when `e` is SQLite's or the OS's "out of space" error.
 *
 * @param e any thrown value
 * @returns whether the disk is full
 */
export function isDiskFullError(e: unknown): boolean {
  if (e instanceof StorageFullError) return true;
  if (!(e instanceof Error)) return false;
  const code = (e as { errcode?: unknown }).errcode;
  return code === 13 || /database or disk is full|no space left on device|os error 28/i.test(
    e.message,
  );
}

/** Thrown when the database cannot be opened or migrated, saying what to do. */
export class DataDirError extends Error {
  override name = "DataDirError";
}

/** The embedded mode's SQLite database, shared by the adapters of one process. */
export class SqliteDatabase implements AsyncDisposable {
  /** The connection. */
  readonly db: SqliteConnection;
  /** The data dir. */
  readonly dataDir: string;
  /** The database file. */
  readonly path: string;
  #lock: DataDirLock | null;
  #statements = new Map<string, SqliteStatement>();
  #arrays = new Map<string, SqliteStatement>();
  #depth = 0;
  #closed = false;
  #onClose: (() => void)[] = [];
  #onDiskFull: ((full: boolean, message: string) => void) | undefined;
  #diskProbeMs = 1000;
  #diskProbe: ReturnType<typeof setInterval> | undefined;

  private constructor(
    dataDir: string,
    path: string,
    db: SqliteConnection,
    lock: DataDirLock | null,
  ) {
    this.dataDir = dataDir;
    this.path = path;
    this.db = db;
    this.#lock = lock;
  }

  /**
   * Opens (or creates) `<dataDir>/tailwise.db`.
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`), created if missing
   * @param options ownership, durability
   * @returns the handle; dispose it after the adapters that use it
   * @throws {DataDirLockedError} when `owner` and another process owns the data dir
   * @throws {DataDirError} when an old-format data dir cannot be migrated
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise", { owner: true });
   * const stream = new SqliteLogStream(db);
   * ```
   */
  static async open(
    dataDir: string,
    options: SqliteDatabaseOptions = {},
  ): Promise<SqliteDatabase> {
    const busy = options.busyTimeoutMs ?? 5000;
    if (!Number.isInteger(busy) || busy < 0) {
      throw new RangeError(
        `Cannot open the database: busyTimeoutMs ${busy}; expected an integer >= 0`,
      );
    }
    await Deno.mkdir(dataDir, { recursive: true });
    const lock = options.owner ? await lockDataDir(dataDir) : null;
    let db: SqliteConnection | null = null;
    try {
      const path = join(dataDir, "tailwise.db");
      const { DatabaseSync } = await import(_MODULE) as {
        DatabaseSync: new (path: string) => SqliteConnection;
      };
      try {
        db = new DatabaseSync(path);
        db.exec(`PRAGMA busy_timeout = ${busy}`);
        const mode = db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
        if (mode.journal_mode !== "wal") {
          throw new Error(`journal_mode is ${mode.journal_mode}, not wal`);
        }
        db.exec(`PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
        db.exec(
          "CREATE TABLE IF NOT EXISTS schema_parts (part TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        );
      } catch (e) {
        if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
          throw e;
        }
        if (isDiskFullError(e)) {
          throw new DataDirError(diskFullMessage(dataDir, true), { cause: e });
        }
        throw new DataDirError(
          `Cannot open ${path}: ${
            e instanceof Error ? e.message : String(e)
          }; expected a tailwise ` +
            "database in WAL mode on a local disk: move the file aside (with its -wal and -shm " +
            "files) to start afresh, or restore it from a backup",
          { cause: e },
        );
      }
      const self = new SqliteDatabase(dataDir, path, db, lock);
      self.#onDiskFull = options.onDiskFull;
      self.#diskProbeMs = options.diskProbeMs ?? 1000;
      if (lock) {
        const { migrateDataDir } = await import("./legacy_migration.ts");
        try {
          await migrateDataDir(self, { log: options.log });
        } catch (e) {
          if (!isDiskFullError(e)) throw e;
          throw new DataDirError(diskFullMessage(dataDir, true), { cause: e });
        }
      } else {
        const { legacyFiles } = await import("./legacy_migration.ts");
        const old = await legacyFiles(dataDir);
        if (old.length > 0) {
          throw new DataDirError(
            `Cannot use data dir ${JSON.stringify(dataDir)}: it holds data in the format of ` +
              `tailwise before SQLite (${old.join(", ")}); expected it migrated: run ` +
              "`deno task start` once on it (it migrates at start), then retry",
          );
        }
      }
      return self;
    } catch (e) {
      db?.close();
      lock?.release();
      throw e;
    }
  }

  /** True when this handle holds the data-dir lock. */
  get owner(): boolean {
    return this.#lock !== null;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Creates a part's tables once: runs `sql` unless the part is at `version`
   * already. Parts are an adapter's tables, e.g. `"stream"`.
   *
   * @param part the part's name
   * @param version its schema version
   * @param sql the statements that create it (`CREATE TABLE IF NOT EXISTS ...`)
   * @throws {DataDirError} when the database holds a newer version of the part
   */
  schema(part: string, version: number, sql: string): void {
    const row = this.prepare("SELECT version FROM schema_parts WHERE part = ?").get(part) as
      | { version: number }
      | undefined;
    if (row?.version === version) return;
    if (row && row.version > version) {
      throw new DataDirError(
        `Cannot use ${this.path}: its ${part} tables are of version ${row.version}; expected ` +
          `${version} or older (written by a newer tailwise)`,
      );
    }
    this.write(() => {
      this.db.exec(sql);
      this.prepare(
        "INSERT INTO schema_parts (part, version) VALUES (?, ?) " +
          "ON CONFLICT (part) DO UPDATE SET version = excluded.version",
      ).run(part, version);
    });
  }

  /**
   * A prepared statement, cached by its text.
   *
   * @param sql the statement
   * @returns the prepared statement
   */
  prepare(sql: string): SqliteStatement {
    this.#check();
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#guard(this.db.prepare(sql));
      this.#statements.set(sql, s);
    }
    return s;
  }

  /**
   * A prepared statement whose rows come back as arrays (no object per row:
   * faster for many rows), cached by its text.
   *
   * @param sql the statement
   * @returns the prepared statement
   */
  prepareArrays(sql: string): SqliteStatement {
    this.#check();
    let s = this.#arrays.get(sql);
    if (!s) {
      s = this.#guard(this.db.prepare(sql));
      (s as SqliteStatement & { setReturnArrays(on: boolean): void }).setReturnArrays(true);
      this.#arrays.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `fn` in a write transaction (`BEGIN IMMEDIATE`), committed when it
   * returns and rolled back when it throws; nested calls join the outer one.
   * `fn` must not be async.
   *
   * @param fn the statements
   * @returns what `fn` returned
   */
  write<T>(fn: () => T): T {
    this.#check();
    if (this.#depth > 0) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    this.#depth++;
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (e) {
      if (this.db.isTransaction) {
        try {
          this.db.exec("ROLLBACK");
        } catch {
          // SQLite rolled back by itself (e.g. after SQLITE_FULL)
        }
      }
      if (isDiskFullError(e) && !(e instanceof StorageFullError)) throw this.#diskFull(e);
      throw e;
    } finally {
      this.#depth--;
    }
  }

  /**
   * A statement whose `run` reports a full disk like {@linkcode SqliteDatabase.write}
   * does, for writes outside a transaction.
   */
  #guard(statement: SqliteStatement): SqliteStatement {
    const run = statement.run.bind(statement);
    statement.run = (...params: unknown[]) => {
      try {
        return run(...params);
      } catch (e) {
        if (isDiskFullError(e) && !(e instanceof StorageFullError)) throw this.#diskFull(e);
        throw e;
      }
    };
    return statement;
  }

  /** True while writes fail for lack of space (until the probe finds space again). */
  get diskFull(): boolean {
    return this.#diskProbe !== undefined;
  }

  /** Reports a full disk once, then looks for space until a write can succeed. */
  #diskFull(cause: unknown): StorageFullError {
    const message = diskFullMessage(this.dataDir);
    if (this.#diskProbe === undefined && !this.#closed) {
      this.#onDiskFull?.(true, message);
      const probe = join(this.dataDir, ".tailwise-space-probe");
      // Space for a few batches, not just one page, so intake does not flap.
      const bytes = new Uint8Array(1 << 20);
      const timer = setInterval(() => {
        try {
          Deno.writeFileSync(probe, bytes);
          Deno.removeSync(probe);
        } catch {
          try {
            Deno.removeSync(probe);
          } catch {
            // not written
          }
          return;
        }
        clearInterval(this.#diskProbe);
        this.#diskProbe = undefined;
        this.#onDiskFull?.(
          false,
          `the data dir ${this.dataDir} has free space again; intake resumed`,
        );
      }, this.#diskProbeMs);
      this.#diskProbe = timer;
      Deno.unrefTimer(timer as unknown as number);
    }
    return new StorageFullError(message, { cause });
  }

  /**
   * Registers a callback run when the handle closes (an adapter stops its timers).
   *
   * @param fn the callback
   */
  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  /** Closes the connection and lets the data-dir lock go. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#diskProbe);
    this.#diskProbe = undefined;
    for (const fn of this.#onClose) {
      try {
        fn();
      } catch {
        // closing goes on
      }
    }
    this.#statements.clear();
    this.#arrays.clear();
    try {
      this.db.close();
    } finally {
      this.#lock?.release();
    }
  }

  /** Same as {@linkcode SqliteDatabase.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #check(): void {
    if (this.#closed) throw new Error(`Cannot use ${this.path}: the database is closed`);
  }
}

const _utf8 = new TextDecoder();

/**
 * A text column read back as `CAST(column AS BLOB)`: `node:sqlite` cuts TEXT
 * values at the first NUL character, so columns that may hold one are read
 * as bytes and decoded here.
 *
 * @param value the column's value (bytes, or text when it was not cast)
 * @returns the text
 */
export function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return _utf8.decode(value);
  if (value === null || value === undefined) return "";
  return String(value);
}

/**
 * Opens a data dir's database for an adapter that will own it (an adapter's
 * `static open`); closes it again when the adapter refuses it.
 *
 * @param dataDir The data dir (`TAILWISE_DATA_DIR`).
 * @param make Builds the adapter on the database (with `ownsDatabase: true`).
 * @param options How to open it (`owner` takes the data dir's lock).
 * @returns The adapter.
 */
export async function openOwnedBy<T>(
  dataDir: string,
  make: (db: SqliteDatabase) => T,
  options: SqliteDatabaseOptions = {},
): Promise<T> {
  const db = await SqliteDatabase.open(dataDir, options);
  try {
    return make(db);
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Runs synchronous database work as a promise: its result, or what it threw
 * as a rejection (an adapter's async port methods never throw synchronously).
 *
 * @param fn The work.
 * @returns Its result.
 */
export function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}
