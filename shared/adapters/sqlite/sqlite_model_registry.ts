/**
 * The embedded adapter of the {@linkcode ModelRegistry} port: model versions
 * in the SQLite database of the data dir ({@linkcode SqliteDatabase}).
 *
 * Tables (`model_*`): one row per container (its last version number and
 * current version) and one per kept version (metadata as JSON, the blob).
 * A put, promote or rollback is one transaction, so the current pointer
 * moves atomically with the write; another process on the same database (the
 * CLI while `deno task start` runs) waits its turn (busy timeout) and sees
 * every change. Container names are column values, never paths or keys.
 *
 * Change notices come at once from this process and, by polling the current
 * pointers every `pollMs`, from other connections.
 *
 * @module
 */

import {
  checkContainerName,
  checkNewModelMeta,
  CurrentVersionCorruptError,
  type ModelChange,
  modelChecksum,
  ModelCorruptError,
  type ModelMeta,
  ModelNotFoundError,
  type ModelRegistry,
  type NewModelMeta,
  type PutModelOptions,
} from "../../ports/model_registry.ts";
import { openOwnedBy, settle, SqliteDatabase, textOf } from "./sqlite_database.ts";

/** Options of {@linkcode SqliteModelRegistry}. */
export interface SqliteModelRegistryOptions {
  /**
   * Most versions kept per container: the newest, the current one always among them.
   * @default 5
   */
  keepVersions?: number;
  /**
   * How often a watch polls for changes made by other connections, in ms.
   * @default 1000
   */
  pollMs?: number;
  /**
   * Close the database when the registry is disposed.
   * @default false
   */
  ownsDatabase?: boolean;
}

const _SCHEMA = `
CREATE TABLE IF NOT EXISTS model_containers (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  current INTEGER
);
CREATE TABLE IF NOT EXISTS model_versions (
  id INTEGER PRIMARY KEY,
  container TEXT NOT NULL,
  version INTEGER NOT NULL,
  meta TEXT NOT NULL,
  blob BLOB NOT NULL,
  UNIQUE (container, version)
);
`;

/** The metadata of a version as stored (no container, no status). */
export type StoredModelVersion = Omit<ModelMeta, "container" | "status">;
type _Stored = StoredModelVersion;

/** Model versions in the data dir's SQLite database. */
export class SqliteModelRegistry implements ModelRegistry {
  #db: SqliteDatabase;
  #keep: number;
  #pollMs: number;
  #ownsDb: boolean;
  #changes = new EventTarget();
  #closing = new AbortController();

  /**
   * Uses the registry in a database, creating its tables if missing.
   *
   * @param db the data dir's database
   * @param options versions kept, poll interval, ownership of the database
   * @throws {RangeError} when an option is out of range
   * @example
   * ```ts
   * await using db = await SqliteDatabase.open("./.tailwise");
   * const registry = new SqliteModelRegistry(db);
   * console.log(await registry.currentVersion("web"));
   * ```
   */
  constructor(db: SqliteDatabase, options: SqliteModelRegistryOptions = {}) {
    const keep = options.keepVersions ?? 5;
    if (!Number.isInteger(keep) || keep < 1) {
      throw new RangeError(`Cannot keep ${keep} versions: expected an integer of at least 1`);
    }
    const pollMs = options.pollMs ?? 1000;
    if (!(pollMs > 0)) {
      throw new RangeError(`Cannot poll every ${pollMs} ms: expected a number above 0`);
    }
    this.#db = db;
    this.#keep = keep;
    this.#pollMs = pollMs;
    this.#ownsDb = options.ownsDatabase ?? false;
    db.schema("model", 1, _SCHEMA);
  }

  /**
   * Opens the registry of a data dir on a database of its own, without the
   * data dir's lock: it may run beside the process that owns the dir.
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`)
   * @param options versions kept, poll interval
   * @returns the registry; disposing it closes the database
   * @throws {DataDirError} when the data dir still has the old format
   */
  static async open(
    dataDir: string,
    options: Omit<SqliteModelRegistryOptions, "ownsDatabase"> = {},
  ): Promise<SqliteModelRegistry> {
    return await openOwnedBy(
      dataDir,
      (db) => new SqliteModelRegistry(db, { ...options, ownsDatabase: true }),
    );
  }

  /** {@inheritDoc ModelRegistry.put} */
  async put(
    container: string,
    blob: Uint8Array,
    meta: NewModelMeta,
    options: PutModelOptions = {},
  ): Promise<ModelMeta> {
    checkContainerName(container);
    checkNewModelMeta(meta);
    const checksum = await modelChecksum(blob);
    const promote = options.promote ?? true;
    this.#check();
    const result = this.#db.write(() => {
      const c = this.#container(container);
      const version = (c?.seq ?? 0) + 1;
      const now = new Date().toISOString();
      const stored: _Stored = {
        version,
        trainedAt: meta.trainedAt ?? now,
        lines: meta.lines,
        threshold: meta.threshold,
        checksum,
        size: blob.byteLength,
        ...(promote ? { promotedAt: now } : {}),
        ...(meta.evaluation ? { evaluation: { ...meta.evaluation } } : {}),
        ...(meta.note !== undefined ? { note: meta.note } : {}),
      };
      const current = promote ? version : c?.current ?? null;
      this.#db.prepare(
        "INSERT INTO model_containers (name, seq, current) VALUES (?, ?, ?) " +
          "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, current = excluded.current",
      ).run(container, version, current);
      this.#db.prepare(
        "INSERT INTO model_versions (container, version, meta, blob) VALUES (?, ?, ?, ?)",
      ).run(container, version, JSON.stringify(stored), blob);
      this.#trim(container, current);
      return _toMeta(container, stored, current);
    });
    if (promote) this.#notify({ container, version: result.version });
    return result;
  }

  /** {@inheritDoc ModelRegistry.currentVersion} */
  currentVersion(container: string): Promise<number | null> {
    return this.#sync(() => {
      checkContainerName(container);
      return this.#container(container)?.current ?? null;
    });
  }

  /** {@inheritDoc ModelRegistry.current} */
  current(container: string): Promise<ModelMeta | null> {
    return this.#sync(() => {
      checkContainerName(container);
      const c = this.#container(container);
      if (!c || c.current === null) return null;
      const v = this.#version(container, c.current);
      return v ? _toMeta(container, v, c.current) : null;
    });
  }

  /** {@inheritDoc ModelRegistry.get} */
  async get(container: string, version?: number): Promise<{ meta: ModelMeta; blob: Uint8Array }> {
    checkContainerName(container);
    if (version !== undefined) _checkVersion(version);
    this.#check();
    const c = this.#container(container);
    const wanted = version ?? c?.current ?? null;
    if (!c || wanted === null) throw new ModelNotFoundError(container, null);
    const row = this.#db.prepare(
      "SELECT meta, blob FROM model_versions WHERE container = ? AND version = ?",
    ).get(container, wanted) as { meta: string; blob: Uint8Array } | undefined;
    if (!row) throw new ModelNotFoundError(container, wanted);
    const stored = _parseMeta(container, wanted, row.meta);
    const blob = new Uint8Array(row.blob);
    const sum = await modelChecksum(blob);
    if (sum !== stored.checksum) {
      throw new ModelCorruptError(
        container,
        wanted,
        `expected sha-256 ${stored.checksum} (${stored.size} bytes), got ${sum} (${blob.byteLength} bytes)`,
      );
    }
    return { meta: _toMeta(container, stored, c.current), blob };
  }

  /** {@inheritDoc ModelRegistry.list} */
  list(container?: string): Promise<ModelMeta[]> {
    return this.#sync(() => {
      if (container !== undefined) checkContainerName(container);
      const rows = (container === undefined
        ? this.#db.prepare(
          "SELECT CAST(v.container AS BLOB) AS container, v.meta, c.current FROM model_versions v " +
            "JOIN model_containers c ON c.name = v.container ORDER BY v.container, v.version DESC",
        ).all()
        : this.#db.prepare(
          "SELECT CAST(v.container AS BLOB) AS container, v.meta, c.current FROM model_versions v " +
            "JOIN model_containers c ON c.name = v.container WHERE v.container = ? " +
            "ORDER BY v.version DESC",
        ).all(container)) as { container: Uint8Array; meta: string; current: number | null }[];
      // A version whose metadata cannot be read is left out (get() reports it): one
      // broken entry must not hide every container's models.
      const out: ModelMeta[] = [];
      for (const r of rows) {
        const name = textOf(r.container);
        try {
          // An unreadable current pointer only means no version is known to be current.
          const current = typeof r.current === "number" ? r.current : null;
          out.push(_toMeta(name, _parseMeta(name, 0, r.meta), current));
        } catch {
          // skipped
        }
      }
      // By code point within the sort by name, as the other adapters list them.
      return out.sort((a, b) =>
        a.container < b.container ? -1 : a.container > b.container ? 1 : b.version - a.version
      );
    });
  }

  /** {@inheritDoc ModelRegistry.containers} */
  containers(): Promise<string[]> {
    return this.#sync(() => {
      const rows = this.#db.prepareArrays(
        "SELECT CAST(name AS BLOB) FROM model_containers c WHERE EXISTS " +
          "(SELECT 1 FROM model_versions v WHERE v.container = c.name)",
      ).all() as unknown as [Uint8Array][];
      return rows.map((r) => textOf(r[0])).sort();
    });
  }

  /** {@inheritDoc ModelRegistry.promote} */
  promote(container: string, version: number): Promise<ModelMeta> {
    return this.#sync(() => {
      checkContainerName(container);
      _checkVersion(version);
      const meta = this.#db.write(() => {
        const v = this.#version(container, version);
        if (!v) throw new ModelNotFoundError(container, version);
        v.promotedAt ??= new Date().toISOString();
        delete v.rolledBackAt;
        this.#saveMeta(container, v);
        this.#db.prepare("UPDATE model_containers SET current = ? WHERE name = ?")
          .run(version, container);
        return _toMeta(container, v, version);
      });
      this.#notify({ container, version });
      return meta;
    });
  }

  /** {@inheritDoc ModelRegistry.rollback} */
  rollback(container: string): Promise<ModelMeta> {
    return this.#sync(() => {
      checkContainerName(container);
      const meta = this.#db.write(() => {
        const c = this.#container(container);
        const cur = c?.current != null ? this.#version(container, c.current) : null;
        if (!c || !cur) throw new ModelNotFoundError(container, null);
        const rows = this.#db.prepare(
          "SELECT meta FROM model_versions WHERE container = ? AND version < ? ORDER BY version DESC",
        ).all(container, cur.version) as { meta: string }[];
        const back = rows.map((r) => {
          try {
            return _parseMeta(container, 0, r.meta);
          } catch {
            return null;
          }
        }).find((v) => v?.promotedAt && !v.rolledBackAt);
        if (!back) {
          throw new ModelNotFoundError(container, null, {
            reason: "no earlier good version to roll back to",
          });
        }
        cur.rolledBackAt = new Date().toISOString();
        this.#saveMeta(container, cur);
        this.#db.prepare("UPDATE model_containers SET current = ? WHERE name = ?")
          .run(back.version, container);
        return _toMeta(container, back, back.version);
      });
      this.#notify({ container, version: meta.version });
      return meta;
    });
  }

  /** {@inheritDoc ModelRegistry.watch} */
  async *watch(signal: AbortSignal): AsyncIterable<ModelChange> {
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (stop.aborted) return;
    const seen = new Map<string, number | null>(this.#currents());
    const queue: ModelChange[] = [];
    let wake: (() => void) | null = null;
    const offer = (change: ModelChange) => {
      if (seen.get(change.container) === change.version) return;
      seen.set(change.container, change.version);
      queue.push(change);
    };
    const onLocal = (e: Event) => {
      offer((e as CustomEvent<ModelChange>).detail);
      wake?.();
    };
    const onStop = () => wake?.();
    this.#changes.addEventListener("change", onLocal);
    stop.addEventListener("abort", onStop);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!stop.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        let polled = false;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(() => {
            polled = true;
            resolve();
          }, this.#pollMs);
        });
        clearTimeout(timer);
        wake = null;
        if (polled && !stop.aborted) {
          try {
            for (const [container, version] of this.#currents()) {
              if (version !== null) offer({ container, version });
            }
          } catch {
            // a busy or closed database is retried on the next poll
          }
        }
      }
    } finally {
      clearTimeout(timer);
      this.#changes.removeEventListener("change", onLocal);
      stop.removeEventListener("abort", onStop);
    }
  }

  /** {@inheritDoc ModelRegistry.ping} */
  ping(): Promise<boolean> {
    try {
      this.#check();
      this.#db.prepare("SELECT 1").get();
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  }

  /**
   * Writes a version as the earlier file-based registry held it, number,
   * times and status kept (the migration of an old data dir), in the
   * caller's transaction.
   *
   * @param container the container
   * @param meta the version's metadata (without container and status)
   * @param blob the blob
   */
  importVersion(container: string, meta: StoredModelVersion, blob: Uint8Array): void {
    this.#db.prepare(
      "INSERT OR REPLACE INTO model_versions (container, version, meta, blob) VALUES (?, ?, ?, ?)",
    ).run(container, meta.version, JSON.stringify(meta), blob);
  }

  /**
   * Sets a container's last version number and current version (migration).
   *
   * @param container the container
   * @param seq its last version number
   * @param current its current version, or null
   */
  importContainer(container: string, seq: number, current: number | null): void {
    this.#db.prepare(
      "INSERT INTO model_containers (name, seq, current) VALUES (?, ?, ?) " +
        "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, current = excluded.current",
    ).run(container, seq, current);
  }

  /** Ends every watch; closes the database if this registry owns it. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#closing.abort();
    if (this.#ownsDb) this.#db.close();
    return Promise.resolve();
  }

  #check(): void {
    if (this.#db.closed) throw new Error("Cannot use SqliteModelRegistry: its database is closed");
  }

  #sync<T>(fn: () => T): Promise<T> {
    return settle(() => {
      this.#check();
      return fn();
    });
  }

  #notify(change: ModelChange): void {
    this.#changes.dispatchEvent(new CustomEvent("change", { detail: change }));
  }

  #container(name: string): { seq: number; current: number | null } | null {
    const row = this.#db.prepare("SELECT seq, current FROM model_containers WHERE name = ?")
      .get(name) as { seq: number; current: unknown } | undefined;
    return row ? { seq: Number(row.seq), current: _current(name, row.current) } : null;
  }

  #version(container: string, version: number): _Stored | null {
    const row = this.#db.prepare(
      "SELECT meta FROM model_versions WHERE container = ? AND version = ?",
    ).get(container, version) as { meta: string } | undefined;
    return row ? _parseMeta(container, version, row.meta) : null;
  }

  #saveMeta(container: string, v: _Stored): void {
    this.#db.prepare("UPDATE model_versions SET meta = ? WHERE container = ? AND version = ?")
      .run(JSON.stringify(v), container, v.version);
  }

  #currents(): [string, number | null][] {
    this.#check();
    const rows = this.#db.prepareArrays("SELECT CAST(name AS BLOB), current FROM model_containers")
      .all() as unknown as [Uint8Array, number | null][];
    return rows.map((
      [name, current],
    ) => [textOf(name), typeof current === "number" ? current : null]);
  }

  /** Keeps the newest `keep` versions, the current one always among them. */
  #trim(container: string, current: number | null): void {
    const versions = (this.#db.prepareArrays(
      "SELECT version FROM model_versions WHERE container = ? ORDER BY version",
    ).all(container) as unknown as [number][]).map((r) => r[0]);
    let excess = versions.length - this.#keep;
    const drop = this.#db.prepare(
      "DELETE FROM model_versions WHERE container = ? AND version = ?",
    );
    for (const v of versions) {
      if (excess <= 0) break;
      if (v === current) continue;
      drop.run(container, v);
      excess--;
    }
  }
}

function _toMeta(container: string, v: _Stored, current: number | null): ModelMeta {
  return {
    container,
    ...v,
    status: current === v.version ? "current" : v.promotedAt ? "retired" : "candidate",
  };
}

/** A stored current pointer, checked: null, or a version number. */
function _current(container: string, value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 1) return value;
  throw new CurrentVersionCorruptError(
    container,
    `it holds ${JSON.stringify(String(value).slice(0, 40))}: expected an integer of at least 1`,
  );
}

/** A version's stored metadata, or {@linkcode ModelCorruptError} naming it. */
function _parseMeta(container: string, version: number, text: string): _Stored {
  let meta: _Stored;
  try {
    meta = JSON.parse(text) as _Stored;
  } catch (e) {
    throw new ModelCorruptError(container, version, "its metadata is not JSON", { cause: e });
  }
  if (typeof meta !== "object" || meta === null || !Number.isSafeInteger(meta.version)) {
    throw new ModelCorruptError(container, version, "its metadata has no version number");
  }
  return meta;
}

function _checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new RangeError(`Cannot use model version ${version}: expected an integer of at least 1`);
  }
}
