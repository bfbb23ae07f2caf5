/**
 * Migration of a data dir written by the file-based embedded adapters (before
 * SQLite) into `<dataDir>/tailwise.db`, at the first start of its owner:
 *
 * - `streams/` (a snapshot and a journal of JSON lines): every stream's
 *   entries with their ids, every group with its last delivered id, its
 *   consumers and its pending entries (unacked entries are delivered again),
 *   and the state keys (collect's checkpoints, sequence and append-once keys);
 * - `history/<container>/<hour>.jsonl`: every entry, byte-exact;
 * - `models/index.json` and the blobs: every kept version with its number,
 *   times and status, and each container's current version;
 * - `feedback.json`: feedback and suppressions.
 *
 * All of it is written in one transaction: a crash midway leaves the old
 * files as they were and the next start migrates again. Then the old files
 * are moved (not deleted) into `<dataDir>/pre-sqlite-<time>/`, which the log
 * line names; remove it once satisfied. A file that cannot be read stops the
 * start with a message naming it and what to do; nothing is dropped
 * silently (a version whose blob was already missing is named in the log).
 *
 * @module
 */

import { join } from "node:path";
import type { Fields } from "../../ports/log_stream.ts";
import type { LogEntry, StreamName } from "../../ports/log_entry.ts";
import type { Feedback } from "../../ports/feedback_store.ts";
import { base64ToBytes } from "../../runtime/base64.ts";
import { DataDirError, type SqliteDatabase } from "./sqlite_database.ts";
import { type ImportedStream, SqliteLogStream } from "./sqlite_log_stream.ts";
import { SqliteLogStore } from "./sqlite_log_store.ts";
import { SqliteModelRegistry, type StoredModelVersion } from "./sqlite_model_registry.ts";
import { SqliteFeedbackStore } from "./sqlite_feedback_store.ts";

const _PARTS = ["streams", "history", "models", "feedback.json"];
const _MARK = "legacy-import";

/**
 * The old-format files and dirs present in a data dir.
 *
 * @param dataDir the data dir
 * @returns their names (`streams`, `history`, `models`, `feedback.json`)
 */
export async function legacyFiles(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of _PARTS) {
    try {
      await Deno.lstat(join(dataDir, name));
      out.push(name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

/** What a migration did, for the log and tests. */
export interface MigrationReport {
  /** Stream entries imported, by stream. */
  streams: Record<string, number>;
  /** Pending (unacked) entries imported, over every group. */
  pending: number;
  /** State keys imported. */
  stateKeys: number;
  /** History entries imported. */
  historyEntries: number;
  /** Model versions imported. */
  modelVersions: number;
  /** Feedback items imported. */
  feedback: number;
  /** Where the old files went. */
  movedTo: string;
  /** What could not be imported because it was already missing. */
  missing: string[];
}

/**
 * Migrates the old-format files of the database's data dir, if any, into it.
 *
 * @param db the data dir's database, opened by its owner
 * @param options where to tell what happened (default: one line on stderr)
 * @returns what was imported, or null when there was nothing to migrate
 * @throws {DataDirError} when an old file cannot be read, naming it and what to do
 */
export async function migrateDataDir(
  db: SqliteDatabase,
  options: { log?: (message: string) => void } = {},
): Promise<MigrationReport | null> {
  const log = options.log ?? ((m: string) => console.error(`tailwise: ${m}`));
  const dir = db.dataDir;
  const present = await legacyFiles(dir);
  if (present.length === 0) return null;
  const movedTo = join(dir, `pre-sqlite-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  const report: MigrationReport = {
    streams: {},
    pending: 0,
    stateKeys: 0,
    historyEntries: 0,
    modelVersions: 0,
    feedback: 0,
    movedTo,
    missing: [],
  };
  const done = db.prepare("SELECT 1 FROM schema_parts WHERE part = ?").get(_MARK) !== undefined;
  if (!done) {
    const stream = new SqliteLogStream(db);
    const store = new SqliteLogStore(db, { retentionMs: 0 });
    const registry = new SqliteModelRegistry(db, { keepVersions: 1_000_000 });
    const feedback = new SqliteFeedbackStore(db);
    db.write(() => {
      if (present.includes("streams")) _importStreams(join(dir, "streams"), stream, report);
      if (present.includes("history")) _importHistory(join(dir, "history"), store, report);
      if (present.includes("models")) _importModels(join(dir, "models"), registry, report);
      if (present.includes("feedback.json")) {
        _importFeedback(join(dir, "feedback.json"), feedback, report);
      }
      db.prepare("INSERT INTO schema_parts (part, version) VALUES (?, 1)").run(_MARK);
    });
  }
  await Deno.mkdir(movedTo, { recursive: true });
  for (const name of present) await Deno.rename(join(dir, name), join(movedTo, name));
  if (done) {
    log(`moved old-format files left after an earlier migration to ${movedTo}`);
  } else {
    const streams = Object.entries(report.streams).map(([s, n]) => `${s}: ${n}`).join(", ");
    log(
      `migrated data dir ${dir} to ${db.path}: stream entries (${streams || "none"}), ` +
        `${report.pending} pending, ${report.stateKeys} state keys, ${report.historyEntries} ` +
        `history entries, ${report.modelVersions} model versions, ${report.feedback} feedback; ` +
        `the old files are in ${movedTo} (remove it once satisfied)` +
        (report.missing.length > 0 ? `; already missing: ${report.missing.join("; ")}` : ""),
    );
  }
  return report;
}

function _fail(path: string, what: string, cause?: unknown): never {
  throw new DataDirError(
    `Cannot migrate ${path} to SQLite: ${what}; expected a file written by tailwise. Nothing ` +
      `was changed: move ${path} out of the data dir to start without it (keep it if it matters), ` +
      `then start again`,
    cause === undefined ? undefined : { cause },
  );
}

function _readLines(path: string): unknown[][] {
  let data: Uint8Array;
  try {
    data = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    _fail(path, "it cannot be read", e);
  }
  // A torn last line (a crash mid-write) was never acknowledged: left out, as the old adapters did.
  const good = data.lastIndexOf(0x0a) + 1;
  const text = new TextDecoder().decode(data.subarray(0, good));
  const out: unknown[][] = [];
  let n = 0;
  for (const line of text.split("\n")) {
    n++;
    if (line.length === 0) continue;
    try {
      const r = JSON.parse(line);
      if (!Array.isArray(r)) throw new SyntaxError("not an array");
      out.push(r);
    } catch (e) {
      _fail(path, `line ${n} is not a JSON array`, e);
    }
  }
  return out;
}

interface _Pending {
  ms: number;
  seq: number;
  consumer: string;
  deliveries: number;
  at: number;
}

interface _OldStream {
  msgs: [number, number, Fields][];
  head: number;
  lastMs: number;
  lastSeq: number;
  groups: Map<
    string,
    { lastMs: number; lastSeq: number; consumers: Set<string>; pel: Map<string, _Pending> }
  >;
}

function _id(id: string): [number, number] {
  const dash = id.indexOf("-");
  return dash < 0 ? [Number(id), 0] : [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
}

/** Replays the old stream files (the newest snapshot, then its journal). */
function _importStreams(dir: string, target: SqliteLogStream, report: MigrationReport): void {
  let snapshot = -1;
  let journal = -1;
  for (const e of Deno.readDirSync(dir)) {
    const m = /^(snapshot|journal)-(\d+)\.jsonl$/.exec(e.name);
    if (!m) continue;
    if (m[1] === "snapshot") snapshot = Math.max(snapshot, Number(m[2]));
    else journal = Math.max(journal, Number(m[2]));
  }
  const gen = snapshot >= 0 ? snapshot : Math.max(journal, 0);
  const records: unknown[][] = [];
  if (snapshot >= 0) {
    const path = join(dir, `snapshot-${gen}.jsonl`);
    const lines = _readLines(path);
    if (lines[lines.length - 1]?.[0] !== "E") _fail(path, "the snapshot has no end record");
    for (const r of lines) records.push(r);
  } else if (journal > 0) {
    _fail(join(dir, `journal-${journal}.jsonl`), "its snapshot is missing");
  }
  // No spread: a journal may hold millions of records.
  for (const r of _readLines(join(dir, `journal-${gen}.jsonl`))) records.push(r);

  const streams = new Map<string, _OldStream>();
  const state = new Map<string, { value: string; exp: number }>();
  const stream = (name: string) => {
    let s = streams.get(name);
    if (!s) streams.set(name, s = { msgs: [], head: 0, lastMs: 0, lastSeq: 0, groups: new Map() });
    return s;
  };
  const push = (s: _OldStream, id: string, fields: Fields) => {
    const [ms, seq] = _id(id);
    s.msgs.push([ms, seq, fields]);
    if (ms > s.lastMs || (ms === s.lastMs && seq > s.lastSeq)) [s.lastMs, s.lastSeq] = [ms, seq];
  };
  const consumerOf = (name: string, g: string) => streams.get(name)?.groups.get(g);
  for (const r of records) {
    const [kind] = r as [string];
    switch (kind) {
      case "a":
      case "o": {
        const [, name, items, maxLen, extra, seqRec] = r as [
          string,
          string,
          [string, Fields, string?][],
          number,
          unknown,
          [string, number, number]?,
        ];
        const s = stream(name);
        for (const [id, fields, key] of items) {
          push(s, id, fields);
          if (key !== undefined) state.set(key, { value: "1", exp: extra as number });
        }
        if (kind === "a" && extra) {
          for (const [k, v] of Object.entries(extra as Record<string, string>)) {
            state.set(k, { value: v, exp: 0 });
          }
        }
        if (kind === "a" && seqRec) {
          state.set(seqRec[0], { value: String(seqRec[1]), exp: seqRec[2] });
        }
        if (maxLen > 0) {
          const len = s.msgs.length - s.head;
          if (len > maxLen + Math.min(100, Math.ceil(maxLen / 10))) s.head += len - maxLen;
        }
        break;
      }
      case "x":
        for (const k of r[1] as string[]) state.delete(k);
        break;
      case "g": {
        const s = stream(r[1] as string);
        if (!s.groups.has(r[2] as string)) {
          s.groups.set(r[2] as string, {
            lastMs: 0,
            lastSeq: 0,
            consumers: new Set(),
            pel: new Map(),
          });
        }
        break;
      }
      case "c":
        consumerOf(r[1] as string, r[2] as string)?.consumers.add(r[3] as string);
        break;
      case "d":
      case "r": {
        const [, name, gname, consumer, ids, t] = r as [
          string,
          string,
          string,
          string,
          string[],
          number,
        ];
        const g = consumerOf(name, gname);
        if (!g) break;
        g.consumers.add(consumer);
        for (const id of ids) {
          if (kind === "d") {
            const [ms, seq] = _id(id);
            g.pel.set(id, { ms, seq, consumer, deliveries: 1, at: t });
            [g.lastMs, g.lastSeq] = [ms, seq];
          } else {
            const p = g.pel.get(id);
            if (!p) continue;
            p.consumer = consumer;
            p.deliveries++;
            p.at = t;
          }
        }
        break;
      }
      case "k": {
        const g = consumerOf(r[1] as string, r[2] as string);
        for (const id of r[3] as string[]) g?.pel.delete(id);
        break;
      }
      case "S": {
        const s = stream(r[1] as string);
        [s.lastMs, s.lastSeq] = _id(r[2] as string);
        break;
      }
      case "m": {
        const s = stream(r[1] as string);
        for (const [id, fields] of r[2] as [string, Fields][]) s.msgs.push([..._id(id), fields]);
        break;
      }
      case "G": {
        const [ms, seq] = _id(r[3] as string);
        stream(r[1] as string).groups.set(r[2] as string, {
          lastMs: ms,
          lastSeq: seq,
          consumers: new Set(r[4] as string[]),
          pel: new Map(),
        });
        break;
      }
      case "P": {
        const g = consumerOf(r[1] as string, r[2] as string);
        for (const [id, consumer, deliveries, at] of r[3] as [string, string, number, number][]) {
          const [ms, seq] = _id(id);
          g?.pel.set(id, { ms, seq, consumer, deliveries, at });
        }
        break;
      }
      case "V":
        for (const [k, value, exp] of r[1] as [string, string, number][]) {
          state.set(k, { value, exp });
        }
        break;
      case "E":
        break;
      default:
        _fail(dir, `unknown record ${JSON.stringify(kind)}`);
    }
  }
  for (const [name, s] of streams) {
    const entries = s.msgs.slice(s.head);
    const data: ImportedStream = {
      lastMs: s.lastMs,
      lastSeq: s.lastSeq,
      entries,
      groups: [...s.groups].map(([gname, g]) => ({
        name: gname,
        lastMs: g.lastMs,
        lastSeq: g.lastSeq,
        consumers: [...g.consumers],
        pending: [...g.pel.values()],
      })),
    };
    target.importStream(name, data);
    report.streams[name] = entries.length;
    for (const g of data.groups) report.pending += g.pending.length;
  }
  const now = Date.now();
  for (const [k, v] of state) {
    if (v.exp !== 0 && v.exp <= now) continue;
    target.importState(k, v.value, v.exp);
    report.stateKeys++;
  }
}

/** Imports every hour file of every container. */
function _importHistory(dir: string, store: SqliteLogStore, report: MigrationReport): void {
  for (const c of Deno.readDirSync(dir)) {
    if (!c.isDirectory) continue;
    let container: string;
    try {
      container = decodeURIComponent(c.name);
    } catch (e) {
      _fail(join(dir, c.name), "its name is not a container name as tailwise encodes it", e);
    }
    const files = [...Deno.readDirSync(join(dir, c.name))]
      .filter((f) => /^\d{4}-\d\d-\d\dT\d\d\.jsonl$/.test(f.name))
      .map((f) => f.name)
      .sort();
    for (const file of files) {
      const path = join(dir, c.name, file);
      let meta = ["", "", "", "", ""];
      const entries: LogEntry[] = [];
      for (const row of _readLines(path)) {
        const [ts, seq, stream, line, raw, truncated, m] = row as [
          string,
          number,
          StreamName,
          string,
          string | 0,
          0 | 1,
          string[]?,
        ];
        if (m) meta = m;
        const entry: LogEntry = {
          containerId: meta[0] ?? "",
          // The dir is the model key; a container behind a service key is named in meta.
          containerName: meta[5] || container,
          image: meta[1] ?? "",
          stream,
          ts,
          seq,
          line,
        };
        if (entry.containerName !== container) entry.key = container;
        if (meta[2]) entry.service = meta[2];
        if (meta[3]) entry.task = meta[3];
        if (meta[4]) entry.node = meta[4];
        if (raw !== 0) entry.raw = base64ToBytes(raw);
        if (truncated === 1) entry.truncated = true;
        entries.push(entry);
      }
      const { rejected } = store.importEntries(entries);
      if (rejected.size > 0) {
        const [i, e] = rejected.entries().next().value as [number, Error];
        _fail(path, `entry ${i + 1} cannot be stored (${e.message})`);
      }
      report.historyEntries += entries.length;
    }
  }
}

interface _OldVersion extends StoredModelVersion {}

/** Imports the model index and its blobs. */
function _importModels(dir: string, registry: SqliteModelRegistry, report: MigrationReport): void {
  const path = join(dir, "index.json");
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    _fail(path, "it cannot be read", e);
  }
  let index: {
    format: number;
    containers: {
      name: string;
      dir: string;
      seq: number;
      current: number | null;
      versions: _OldVersion[];
    }[];
  };
  try {
    index = JSON.parse(text);
    if (index.format !== 1 || !Array.isArray(index.containers)) throw new TypeError("format");
  } catch (e) {
    _fail(path, "it is not a model index of format 1", e);
  }
  for (const c of index.containers) {
    let current = c.current;
    for (const v of c.versions) {
      let blob: Uint8Array;
      try {
        blob = Deno.readFileSync(join(dir, c.dir, `${v.version}.bin`));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          _fail(join(dir, c.dir), "a blob cannot be read", e);
        }
        report.missing.push(`model ${JSON.stringify(c.name)} version ${v.version} (no blob)`);
        if (current === v.version) current = null;
        continue;
      }
      registry.importVersion(c.name, v, blob);
      report.modelVersions++;
    }
    registry.importContainer(c.name, c.seq, current);
  }
}

/** Imports the feedback file. */
function _importFeedback(path: string, store: SqliteFeedbackStore, report: MigrationReport): void {
  let data: {
    version: number;
    containers: Record<string, { items: Feedback[]; suppress: Record<string, number> }>;
  };
  try {
    data = JSON.parse(Deno.readTextFileSync(path));
    if (data.version !== 1 || typeof data.containers !== "object") throw new TypeError("shape");
  } catch (e) {
    _fail(path, "it is not a feedback file of version 1", e);
  }
  for (const [name, c] of Object.entries(data.containers)) {
    store.importFeedback(
      c.items,
      Object.entries(c.suppress).map(([t, until]) => [name, t, until] as [string, string, number]),
    );
    report.feedback += c.items.length;
  }
}
