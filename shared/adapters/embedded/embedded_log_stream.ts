/**
 * The embedded adapter of the {@linkcode LogStream} port: Redis-like streams
 * with consumer groups, in this process, persisted under `<dataDir>/streams/`.
 *
 * Everything lives in memory; every change is also a record in a journal of
 * JSON lines (`journal-<gen>.jsonl`), written in batches (group commit) so
 * that thousands of lines per second cost a few writes. When the journal
 * outgrows `compactBytes`, the whole state is written as a snapshot
 * (`snapshot-<gen+1>.jsonl`, renamed into place once complete) and a new,
 * empty journal starts. Opening replays the newest snapshot and its journal; a
 * torn last line (a crash in the middle of a write) is cut off.
 *
 * An append, its state keys, and an ack resolve only once their record is
 * written (and, with `fsync`, on the disk); a delivery (a read) is recorded
 * in the same order but not waited for: if the process dies first, the
 * message is simply delivered again, as at-least-once allows.
 *
 * @module
 */

import { join } from "node:path";
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
import { type DataDirLock, lockDataDir } from "./embedded_data_dir_lock.ts";

/** Options of {@linkcode EmbeddedLogStream.open}. */
export interface EmbeddedLogStreamOptions {
  /**
   * Flush each batch of records to the disk (`fdatasync`) before the calls
   * waiting on it resolve; without it, they survive a crash of the process
   * but not of the machine.
   * @default true
   */
  fsync?: boolean;
  /**
   * Journal size in bytes past which the state is compacted into a snapshot
   * (or twice the last snapshot's size, when larger).
   * @default 67108864
   */
  compactBytes?: number;
  /**
   * How long an {@linkcode LogStream.appendOnce} key is remembered, in ms,
   * when the call gives no `ttlMs`.
   * @default 604800000
   */
  onceTtlMs?: number;
}

/** Thrown by a group read of a stream or group that does not exist (as Redis' NOGROUP). */
export class NoGroupError extends Error {
  override name = "NoGroupError";
}

/** Thrown on open when the journal or a snapshot is damaged other than by a torn last line. */
export class StreamCorruptError extends Error {
  override name = "StreamCorruptError";
}

interface _Message {
  id: string;
  ms: number;
  seq: number;
  fields: Fields;
}

interface _Pending {
  id: string;
  ms: number;
  seq: number;
  consumer: string;
  deliveries: number;
  at: number;
}

interface _Group {
  lastMs: number;
  lastSeq: number;
  pel: Map<string, _Pending>;
  consumers: Map<string, Map<string, _Pending>>;
}

interface _Stream {
  msgs: _Message[];
  head: number;
  lastMs: number;
  lastSeq: number;
  groups: Map<string, _Group>;
}

interface _StateValue {
  value: string;
  /** Expiry in ms since the epoch; 0 never expires. */
  exp: number;
}

// Journal and snapshot records, one JSON array per line:
//   ["a", stream, [[id, fields], ...], maxLen, state | null, [seqKey, n, expireAt]?]
//                                                             append (+ state keys)
//   ["o", stream, [[id, fields, key], ...], maxLen, expireAt]  appendOnce
//   ["x", [key, ...]]                                          delete state keys
//   ["g", stream, group]                                       create group
//   ["c", stream, group, consumer]                             consumer seen
//   ["d", stream, group, consumer, [id, ...], t]               deliver new
//   ["r", stream, group, consumer, [id, ...], t]               deliver again (pending, claim)
//   ["k", stream, group, [id, ...]]                            ack
// and in snapshots only:
//   ["S", stream, lastId]  ["m", stream, [[id, fields], ...]]
//   ["G", stream, group, lastDeliveredId, [consumer, ...]]
//   ["P", stream, group, [[id, consumer, deliveries, t], ...]]
//   ["V", [[key, value, exp], ...]]  ["E"] (end of a complete snapshot)
type _Record = [string, ...unknown[]];

const _CHUNK = 1000;
const _encoder = new TextEncoder();

/** The {@linkcode LogStream} port in this process, persisted under `<dataDir>/streams/`. */
export class EmbeddedLogStream implements LogStream {
  #dir: string;
  #lock: DataDirLock;
  #fsync: boolean;
  #compactBytes: number;
  #onceTtlMs: number;
  #streams = new Map<string, _Stream>();
  #state = new Map<string, _StateValue>();
  #waiters = new Map<string, Set<() => void>>();
  #gen: number;
  #journal: Deno.FsFile;
  #journalBytes: number;
  #snapshotBytes: number;
  #queue: string[] = [];
  #queued: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #flushing: Promise<void> | null = null;
  #failed: unknown = null;
  #closed = false;
  #compactWanted = false;

  private constructor(
    dir: string,
    lock: DataDirLock,
    journal: { file: Deno.FsFile; gen: number; bytes: number; snapshotBytes: number },
    options: EmbeddedLogStreamOptions,
  ) {
    this.#dir = dir;
    this.#lock = lock;
    this.#journal = journal.file;
    this.#gen = journal.gen;
    this.#journalBytes = journal.bytes;
    this.#snapshotBytes = journal.snapshotBytes;
    this.#fsync = options.fsync ?? true;
    this.#compactBytes = options.compactBytes ?? 64 * 1024 * 1024;
    this.#onceTtlMs = options.onceTtlMs ?? 7 * 86_400_000;
  }

  /**
   * Opens (or creates) the streams of a data dir, replaying what was saved,
   * and takes the data dir's lock.
   *
   * @param dataDir the data dir (`TAILWISE_DATA_DIR`); files go to `<dataDir>/streams/`
   * @param options durability and compaction
   * @returns the adapter
   * @throws {DataDirLockedError} when another live process owns the data dir
   * @throws {StreamCorruptError} when a file is damaged other than by a torn last line
   */
  static async open(
    dataDir: string,
    options: EmbeddedLogStreamOptions = {},
  ): Promise<EmbeddedLogStream> {
    if (options.compactBytes !== undefined && !(options.compactBytes > 0)) {
      throw new RangeError(
        `Cannot open embedded streams: compactBytes ${options.compactBytes}; expected a positive number`,
      );
    }
    const lock = await lockDataDir(dataDir, "streams");
    try {
      const dir = join(dataDir, "streams");
      await Deno.mkdir(dir, { recursive: true });
      const files = await _listGenerations(dir);
      const gen = files.snapshot ?? files.journal ?? 0;
      const records: _Record[] = [];
      let snapshotBytes = 0;
      if (files.snapshot !== null) {
        const path = join(dir, `snapshot-${gen}.jsonl`);
        const { lines, bytes } = await _readLines(path);
        snapshotBytes = bytes;
        const last = lines[lines.length - 1];
        if (!last || last[0] !== "E") {
          throw new StreamCorruptError(
            `Cannot open embedded streams: snapshot ${path} has no end record; expected a complete snapshot`,
          );
        }
        records.push(...lines);
      }
      const journalPath = join(dir, `journal-${gen}.jsonl`);
      const journal = await _openJournal(journalPath, records);
      const self = new EmbeddedLogStream(
        dir,
        lock,
        { file: journal.file, gen, bytes: journal.bytes, snapshotBytes },
        options,
      );
      for (const record of records) self.#apply(record, false);
      await _removeStale(dir, gen);
      return self;
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /** {@inheritDoc LogStream.append} */
  async append(
    stream: string,
    messages: readonly Fields[],
    options: AppendOptions = {},
  ): Promise<string[]> {
    this.#check();
    const state = options.state && Object.keys(options.state).length > 0 ? options.state : null;
    if (messages.length === 0 && !state) return [];
    for (const k in state ?? {}) _checkString(state![k], `state key ${JSON.stringify(k)}`);
    const maxLen = _maxLen(options.maxLen);
    const sequence = options.sequence;
    checkSequence(sequence);
    if (sequence) {
      const last = this.#getState(sequence.key, Date.now());
      if (last !== null) {
        if (sequence.n <= Number(last)) return [];
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
    const s = this.#streams.get(stream);
    let ms = s?.lastMs ?? 0;
    let seq = s?.lastSeq ?? 0;
    const now = Date.now();
    const out: [string, Fields][] = [];
    for (const fields of messages) {
      _checkFields(fields);
      if (now > ms) {
        ms = now;
        seq = 0;
      } else seq++;
      out.push([`${ms}-${seq}`, { ...fields }]);
    }
    const record: _Record = ["a", stream, out, maxLen, state ? { ...state } : null];
    if (sequence) {
      record.push([sequence.key, sequence.n, now + (sequence.ttlMs ?? 86_400_000)]);
    }
    await this.#do(record);
    return out.map(([id]) => id);
  }

  /** {@inheritDoc LogStream.appendOnce} */
  async appendOnce(
    stream: string,
    items: readonly { key: string; fields: Fields }[],
    options: { maxLen?: number; ttlMs?: number } = {},
  ): Promise<(string | null)[]> {
    this.#check();
    if (items.length === 0) return [];
    const maxLen = _maxLen(options.maxLen);
    const ttl = options.ttlMs ?? this.#onceTtlMs;
    if (!(ttl > 0)) {
      throw new RangeError(`Cannot append once: ttlMs ${ttl}; expected a positive number of ms`);
    }
    const s = this.#streams.get(stream);
    let ms = s?.lastMs ?? 0;
    let seq = s?.lastSeq ?? 0;
    const now = Date.now();
    const seen = new Set<string>();
    const ids: (string | null)[] = [];
    const out: [string, Fields, string][] = [];
    for (const { key, fields } of items) {
      _checkFields(fields);
      if (seen.has(key) || this.#getState(key, now) !== null) {
        ids.push(null);
        continue;
      }
      seen.add(key);
      if (now > ms) {
        ms = now;
        seq = 0;
      } else seq++;
      const id = `${ms}-${seq}`;
      ids.push(id);
      out.push([id, { ...fields }, key]);
    }
    if (out.length > 0) await this.#do(["o", stream, out, maxLen, now + ttl]);
    return ids;
  }

  /** {@inheritDoc LogStream.getState} */
  getState(key: string): Promise<string | null> {
    this.#check();
    return Promise.resolve(this.#getState(key, Date.now()));
  }

  /** {@inheritDoc LogStream.deleteState} */
  async deleteState(keys: readonly string[]): Promise<void> {
    this.#check();
    const present = keys.filter((k) => this.#state.has(k));
    if (present.length > 0) await this.#do(["x", present]);
  }

  /** {@inheritDoc LogStream.createGroup} */
  async createGroup(stream: string, group: string): Promise<void> {
    this.#check();
    if (this.#streams.get(stream)?.groups.has(group)) return;
    await this.#do(["g", stream, group]);
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
      const { s, g } = this.#group(stream, group, "readNew");
      this.#seeConsumer(stream, group, g, consumer);
      const start = _upperBound(s, g.lastMs, g.lastSeq);
      const end = Math.min(s.msgs.length, start + count);
      if (end > start) {
        const batch = s.msgs.slice(start, end);
        this.#note(["d", stream, group, consumer, batch.map((m) => m.id), Date.now()]);
        return batch.map((m) => ({ id: m.id, fields: { ...m.fields }, deliveries: 1 }));
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
    this.#check();
    const count = _count(options.count);
    const { s, g } = this.#group(stream, group, "readPending");
    this.#seeConsumer(stream, group, g, consumer);
    const mine = [...(g.consumers.get(consumer)?.values() ?? [])].sort(_byId);
    return Promise.resolve(this.#redeliver(stream, group, consumer, s, mine, count));
  }

  /** {@inheritDoc LogStream.claimIdle} */
  claimIdle(
    stream: string,
    group: string,
    consumer: string,
    options: { minIdleMs: number; count: number },
  ): Promise<StreamMessage[]> {
    this.#check();
    const count = _count(options.count);
    const { s, g } = this.#group(stream, group, "claimIdle");
    this.#seeConsumer(stream, group, g, consumer);
    const before = Date.now() - options.minIdleMs;
    const idle = [...g.pel.values()].filter((p) => p.at <= before).sort(_byId);
    return Promise.resolve(this.#redeliver(stream, group, consumer, s, idle, count));
  }

  /** {@inheritDoc LogStream.ack} */
  async ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    this.#check();
    const g = this.#streams.get(stream)?.groups.get(group);
    if (!g || ids.length === 0) return 0;
    const acked = [...new Set(ids)].filter((id) => g.pel.has(id));
    if (acked.length > 0) await this.#do(["k", stream, group, acked]);
    return acked.length;
  }

  /** {@inheritDoc LogStream.groupInfo} */
  groupInfo(stream: string, group: string): Promise<GroupInfo> {
    this.#check();
    const s = this.#streams.get(stream);
    if (!s) return Promise.resolve({ pending: 0, lag: 0, consumers: 0 });
    const g = s.groups.get(group);
    if (!g) return Promise.resolve({ pending: 0, lag: null, consumers: 0 });
    return Promise.resolve({
      pending: g.pel.size,
      lag: s.msgs.length - _upperBound(s, g.lastMs, g.lastSeq),
      consumers: g.consumers.size,
    });
  }

  /** {@inheritDoc LogStream.range} */
  range(
    stream: string,
    options: { start?: string; end?: string; count?: number; reverse?: boolean } = {},
  ): Promise<StreamMessage[]> {
    this.#check();
    const s = this.#streams.get(stream);
    if (!s) return Promise.resolve([]);
    const lo = _lowerBoundOf(s, options.start ?? "-");
    const hi = _upperBoundOf(s, options.end ?? "+");
    const count = options.count === undefined ? Infinity : Math.max(0, options.count);
    const out: StreamMessage[] = [];
    if (options.reverse) {
      for (let i = hi - 1; i >= lo && out.length < count; i--) out.push(_toMessage(s.msgs[i]!));
    } else {
      for (let i = lo; i < hi && out.length < count; i++) out.push(_toMessage(s.msgs[i]!));
    }
    return Promise.resolve(out);
  }

  /** {@inheritDoc LogStream.length} */
  length(stream: string): Promise<number> {
    this.#check();
    const s = this.#streams.get(stream);
    return Promise.resolve(s ? s.msgs.length - s.head : 0);
  }

  /** {@inheritDoc LogStream.ping} */
  ping(): Promise<boolean> {
    return Promise.resolve(!this.#closed && this.#failed === null);
  }

  /**
   * Writes the whole state as a new snapshot and starts an empty journal, as
   * happens by itself when the journal outgrows `compactBytes`.
   */
  async compact(): Promise<void> {
    this.#check();
    await this.#enqueue(null);
  }

  /** Waits for pending writes, wakes blocked reads, closes the journal and lets the lock go. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const set of this.#waiters.values()) for (const wake of set) wake();
    this.#waiters.clear();
    try {
      while (this.#flushing) await this.#flushing;
    } finally {
      this.#journal.close();
      await this.#lock.release();
    }
  }

  /** Same as `[Symbol.asyncDispose]()`. */
  close(): Promise<void> {
    return this[Symbol.asyncDispose]();
  }

  #check(): void {
    if (this.#closed) throw new Error("Cannot use EmbeddedLogStream: it is closed");
    if (this.#failed !== null) {
      throw new Error(
        `Cannot use EmbeddedLogStream: a write to ${this.#dir} failed (${
          this.#failed instanceof Error ? this.#failed.message : String(this.#failed)
        }); expected a writable data dir, reopen it`,
        { cause: this.#failed },
      );
    }
  }

  #getState(key: string, now: number): string | null {
    const v = this.#state.get(key);
    if (!v) return null;
    if (v.exp !== 0 && v.exp <= now) return null;
    return v.value;
  }

  #group(stream: string, group: string, op: string): { s: _Stream; g: _Group } {
    const s = this.#streams.get(stream);
    const g = s?.groups.get(group);
    if (!s || !g) {
      throw new NoGroupError(
        `NOGROUP Cannot ${op} stream ${JSON.stringify(stream)} in group ${
          JSON.stringify(group)
        }: no such ${s ? "group" : "stream"}; expected createGroup() first`,
      );
    }
    return { s, g };
  }

  #seeConsumer(stream: string, group: string, g: _Group, consumer: string): void {
    if (!g.consumers.has(consumer)) this.#note(["c", stream, group, consumer]);
  }

  #redeliver(
    stream: string,
    group: string,
    consumer: string,
    s: _Stream,
    pending: _Pending[],
    count: number,
  ): StreamMessage[] {
    const found: _Message[] = [];
    const gone: string[] = [];
    for (const p of pending) {
      if (found.length >= count) break;
      const m = _find(s, p.ms, p.seq);
      if (m) found.push(m);
      else gone.push(p.id);
    }
    // A message trimmed away while pending can never be handled: drop it.
    if (gone.length > 0) this.#note(["k", stream, group, gone]);
    if (found.length === 0) return [];
    this.#note(["r", stream, group, consumer, found.map((m) => m.id), Date.now()]);
    const g = s.groups.get(group)!;
    return found.map((m) => ({
      id: m.id,
      fields: { ...m.fields },
      deliveries: g.pel.get(m.id)?.deliveries ?? 1,
    }));
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

  /** Applies a record now and waits until it is written. */
  #do(record: _Record): Promise<void> {
    this.#apply(record, true);
    return this.#enqueue(JSON.stringify(record));
  }

  /** Applies a record now and writes it in order, without waiting. */
  #note(record: _Record): void {
    this.#apply(record, true);
    // A failed write is kept in #failed and fails every later call.
    this.#enqueue(JSON.stringify(record)).catch(() => {});
  }

  /** Queues a line for the journal (or, for null, a compaction). */
  #enqueue(line: string | null): Promise<void> {
    return new Promise((resolve, reject) => {
      if (line === null) this.#compactWanted = true;
      else this.#queue.push(line);
      this.#queued.push({ resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    // Let the records of this turn of the event loop join the first batch.
    await Promise.resolve();
    while (this.#queued.length > 0) {
      const lines = this.#queue;
      const waiters = this.#queued;
      this.#queue = [];
      this.#queued = [];
      try {
        if (this.#failed !== null) throw this.#failed;
        const due = this.#compactWanted ||
          this.#journalBytes >= Math.max(this.#compactBytes, 2 * this.#snapshotBytes);
        if (due) {
          // The snapshot holds the state after these lines: they need no journal.
          await this.#compactNow();
        } else if (lines.length > 0) {
          const bytes = _encoder.encode(lines.join("\n") + "\n");
          await _writeAll(this.#journal, bytes);
          if (this.#fsync) await this.#journal.syncData();
          this.#journalBytes += bytes.length;
        }
        for (const w of waiters) w.resolve();
      } catch (e) {
        this.#failed ??= e;
        for (const w of waiters) w.reject(e);
      }
    }
    this.#flushing = null;
  }

  async #compactNow(): Promise<void> {
    const chunks = this.#snapshotRecords().map((r) => JSON.stringify(r) + "\n");
    const gen = this.#gen + 1;
    const tmp = join(this.#dir, `snapshot-${gen}.jsonl.tmp`);
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let bytes = 0;
    try {
      let batch: string[] = [];
      let size = 0;
      for (const chunk of chunks) {
        batch.push(chunk);
        size += chunk.length;
        if (size >= 1 << 20) {
          bytes += await _writeAll(file, _encoder.encode(batch.join("")));
          batch = [];
          size = 0;
        }
      }
      bytes += await _writeAll(file, _encoder.encode(batch.join("")));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, join(this.#dir, `snapshot-${gen}.jsonl`));
    const journal = await Deno.open(join(this.#dir, `journal-${gen}.jsonl`), {
      write: true,
      create: true,
      truncate: true,
    });
    await _syncDir(this.#dir);
    this.#journal.close();
    this.#journal = journal;
    this.#gen = gen;
    this.#journalBytes = 0;
    this.#snapshotBytes = bytes;
    this.#compactWanted = false;
    await _removeStale(this.#dir, gen).catch(() => {});
  }

  #snapshotRecords(): _Record[] {
    const out: _Record[] = [];
    for (const [name, s] of this.#streams) {
      out.push(["S", name, `${s.lastMs}-${s.lastSeq}`]);
      for (let i = s.head; i < s.msgs.length; i += _CHUNK) {
        const part = s.msgs.slice(i, Math.min(s.msgs.length, i + _CHUNK));
        out.push(["m", name, part.map((m) => [m.id, m.fields])]);
      }
      for (const [gname, g] of s.groups) {
        out.push(["G", name, gname, `${g.lastMs}-${g.lastSeq}`, [...g.consumers.keys()]]);
        const pel = [...g.pel.values()];
        for (let i = 0; i < pel.length; i += _CHUNK) {
          out.push([
            "P",
            name,
            gname,
            pel.slice(i, i + _CHUNK).map((p) => [p.id, p.consumer, p.deliveries, p.at]),
          ]);
        }
      }
    }
    const now = Date.now();
    const state = [...this.#state].filter(([, v]) => v.exp === 0 || v.exp > now);
    for (let i = 0; i < state.length; i += _CHUNK) {
      out.push(["V", state.slice(i, i + _CHUNK).map(([k, v]) => [k, v.value, v.exp])]);
    }
    out.push(["E"]);
    return out;
  }

  #stream(name: string): _Stream {
    let s = this.#streams.get(name);
    if (!s) {
      s = { msgs: [], head: 0, lastMs: 0, lastSeq: 0, groups: new Map() };
      this.#streams.set(name, s);
    }
    return s;
  }

  #apply(r: _Record, live: boolean): void {
    switch (r[0]) {
      case "a":
      case "o": {
        const [, name, items, maxLen, extra] = r as [
          string,
          string,
          [string, Fields, string?][],
          number,
          unknown,
        ];
        const s = this.#stream(name);
        for (const [id, fields, key] of items) {
          _push(s, id, fields);
          if (key !== undefined) this.#state.set(key, { value: "1", exp: extra as number });
        }
        if (r[0] === "a" && extra) {
          const state = extra as Record<string, string>;
          for (const k in state) this.#state.set(k, { value: state[k]!, exp: 0 });
        }
        if (r[0] === "a" && r[5]) {
          const [key, n, exp] = r[5] as [string, number, number];
          this.#state.set(key, { value: String(n), exp });
        }
        if (maxLen > 0) _trim(s, maxLen);
        if (live && items.length > 0) {
          const set = this.#waiters.get(name);
          if (set) { for (const wake of [...set]) wake(); }
        }
        return;
      }
      case "x":
        for (const k of r[1] as string[]) this.#state.delete(k);
        return;
      case "g": {
        const s = this.#stream(r[1] as string);
        if (!s.groups.has(r[2] as string)) {
          s.groups.set(r[2] as string, _newGroup(0, 0));
        }
        return;
      }
      case "c": {
        const g = this.#streams.get(r[1] as string)?.groups.get(r[2] as string);
        if (g && !g.consumers.has(r[3] as string)) g.consumers.set(r[3] as string, new Map());
        return;
      }
      case "d": {
        const [, name, gname, consumer, ids, t] = r as [
          string,
          string,
          string,
          string,
          string[],
          number,
        ];
        const g = this.#streams.get(name)?.groups.get(gname);
        if (!g) return;
        const mine = _consumer(g, consumer);
        for (const id of ids) {
          const [ms, seq] = _parseId(id);
          const p: _Pending = { id, ms, seq, consumer, deliveries: 1, at: t };
          g.pel.set(id, p);
          mine.set(id, p);
          g.lastMs = ms;
          g.lastSeq = seq;
        }
        return;
      }
      case "r": {
        const [, name, gname, consumer, ids, t] = r as [
          string,
          string,
          string,
          string,
          string[],
          number,
        ];
        const g = this.#streams.get(name)?.groups.get(gname);
        if (!g) return;
        const mine = _consumer(g, consumer);
        for (const id of ids) {
          const p = g.pel.get(id);
          if (!p) continue;
          if (p.consumer !== consumer) {
            g.consumers.get(p.consumer)?.delete(id);
            p.consumer = consumer;
            mine.set(id, p);
          }
          p.deliveries++;
          p.at = t;
        }
        return;
      }
      case "k": {
        const g = this.#streams.get(r[1] as string)?.groups.get(r[2] as string);
        if (!g) return;
        for (const id of r[3] as string[]) {
          const p = g.pel.get(id);
          if (!p) continue;
          g.pel.delete(id);
          g.consumers.get(p.consumer)?.delete(id);
        }
        return;
      }
      case "S": {
        const s = this.#stream(r[1] as string);
        [s.lastMs, s.lastSeq] = _parseId(r[2] as string);
        return;
      }
      case "m": {
        const s = this.#stream(r[1] as string);
        for (const [id, fields] of r[2] as [string, Fields][]) {
          const [ms, seq] = _parseId(id);
          s.msgs.push({ id, ms, seq, fields });
        }
        return;
      }
      case "G": {
        const s = this.#stream(r[1] as string);
        const [ms, seq] = _parseId(r[3] as string);
        const g = _newGroup(ms, seq);
        for (const c of r[4] as string[]) g.consumers.set(c, new Map());
        s.groups.set(r[2] as string, g);
        return;
      }
      case "P": {
        const g = this.#streams.get(r[1] as string)?.groups.get(r[2] as string);
        if (!g) return;
        for (const [id, consumer, deliveries, at] of r[3] as [string, string, number, number][]) {
          const [ms, seq] = _parseId(id);
          const p: _Pending = { id, ms, seq, consumer, deliveries, at };
          g.pel.set(id, p);
          _consumer(g, consumer).set(id, p);
        }
        return;
      }
      case "V":
        for (const [k, value, exp] of r[1] as [string, string, number][]) {
          this.#state.set(k, { value, exp });
        }
        return;
      case "E":
        return;
      default:
        throw new StreamCorruptError(
          `Cannot replay embedded streams in ${this.#dir}: unknown record ${
            JSON.stringify(r[0])
          }; expected one written by this version`,
        );
    }
  }
}

function _newGroup(lastMs: number, lastSeq: number): _Group {
  return { lastMs, lastSeq, pel: new Map(), consumers: new Map() };
}

function _consumer(g: _Group, name: string): Map<string, _Pending> {
  let mine = g.consumers.get(name);
  if (!mine) g.consumers.set(name, mine = new Map());
  return mine;
}

function _push(s: _Stream, id: string, fields: Fields): void {
  const [ms, seq] = _parseId(id);
  s.msgs.push({ id, ms, seq, fields });
  if (ms > s.lastMs || (ms === s.lastMs && seq > s.lastSeq)) {
    s.lastMs = ms;
    s.lastSeq = seq;
  }
}

/** Trims like `MAXLEN ~`: once the stream is a tenth (at most 100) over, back to maxLen. */
function _trim(s: _Stream, maxLen: number): void {
  const len = s.msgs.length - s.head;
  const slack = Math.min(100, Math.ceil(maxLen / 10));
  if (len <= maxLen + slack) return;
  s.head += len - maxLen;
  if (s.head > 1024 && s.head * 2 > s.msgs.length) {
    s.msgs = s.msgs.slice(s.head);
    s.head = 0;
  }
}

function _parseId(id: string): [number, number] {
  const dash = id.indexOf("-");
  return dash < 0 ? [Number(id), 0] : [Number(id.slice(0, dash)), Number(id.slice(dash + 1))];
}

function _cmp(ams: number, aseq: number, bms: number, bseq: number): number {
  return ams !== bms ? ams - bms : aseq - bseq;
}

function _byId(a: _Pending, b: _Pending): number {
  return _cmp(a.ms, a.seq, b.ms, b.seq);
}

/** Index of the first message with an id greater than (ms, seq). */
function _upperBound(s: _Stream, ms: number, seq: number): number {
  let lo = s.head;
  let hi = s.msgs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = s.msgs[mid]!;
    if (_cmp(m.ms, m.seq, ms, seq) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first message with an id at least (ms, seq). */
function _lowerBound(s: _Stream, ms: number, seq: number): number {
  let lo = s.head;
  let hi = s.msgs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = s.msgs[mid]!;
    if (_cmp(m.ms, m.seq, ms, seq) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function _find(s: _Stream, ms: number, seq: number): _Message | null {
  const i = _lowerBound(s, ms, seq);
  const m = s.msgs[i];
  return m && m.ms === ms && m.seq === seq ? m : null;
}

/** Parses a range bound: `-`, `+`, `<ms>`, `<ms>-<seq>`, optionally after `(` (exclusive). */
function _bound(text: string, end: boolean): { ms: number; seq: number; exclusive: boolean } {
  const exclusive = text.startsWith("(");
  const id = exclusive ? text.slice(1) : text;
  if (id === "-") return { ms: -1, seq: 0, exclusive: false };
  if (id === "+") return { ms: Infinity, seq: 0, exclusive: false };
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

function _lowerBoundOf(s: _Stream, text: string): number {
  const b = _bound(text, false);
  return b.exclusive ? _upperBound(s, b.ms, b.seq) : _lowerBound(s, b.ms, b.seq);
}

function _upperBoundOf(s: _Stream, text: string): number {
  const b = _bound(text, true);
  return b.exclusive ? _lowerBound(s, b.ms, b.seq) : _upperBound(s, b.ms, b.seq);
}

function _toMessage(m: _Message): StreamMessage {
  return { id: m.id, fields: { ...m.fields }, deliveries: 0 };
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

async function _writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<number> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
  return bytes.length;
}

async function _syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Not every platform can sync a directory; the rename is still atomic.
  }
}

/** The newest complete snapshot's generation and the newest journal's. */
async function _listGenerations(
  dir: string,
): Promise<{ snapshot: number | null; journal: number | null }> {
  let snapshot: number | null = null;
  let journal: number | null = null;
  for await (const e of Deno.readDir(dir)) {
    const m = /^(snapshot|journal)-(\d+)\.jsonl$/.exec(e.name);
    if (!m) continue;
    const gen = Number(m[2]);
    if (m[1] === "snapshot") snapshot = Math.max(snapshot ?? 0, gen);
    else journal = Math.max(journal ?? 0, gen);
  }
  if (snapshot === null && journal !== null && journal > 0) {
    throw new StreamCorruptError(
      `Cannot open embedded streams: ${dir} has journal-${journal}.jsonl but no snapshot; ` +
        `expected snapshot-${journal}.jsonl beside it`,
    );
  }
  return { snapshot, journal };
}

/** Reads complete JSON lines; a torn last line (no newline) is left out. */
async function _readLines(
  path: string,
): Promise<{ lines: _Record[]; bytes: number; good: number; size: number }> {
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { lines: [], bytes: 0, good: 0, size: 0 };
    throw e;
  }
  const good = data.lastIndexOf(0x0a) + 1;
  const text = new TextDecoder().decode(data.subarray(0, good));
  const lines: _Record[] = [];
  let start = 0;
  let n = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const line = text.slice(start, nl);
    start = nl + 1;
    n++;
    if (line.length === 0) continue;
    try {
      const r = JSON.parse(line);
      if (!Array.isArray(r) || typeof r[0] !== "string") throw new SyntaxError("not a record");
      lines.push(r as _Record);
    } catch (e) {
      throw new StreamCorruptError(
        `Cannot open embedded streams: line ${n} of ${path} is not a record (${
          e instanceof Error ? e.message : String(e)
        }); expected one JSON array per line`,
      );
    }
  }
  return { lines, bytes: good, good, size: data.length };
}

/** Replays a journal into `records`, cuts off a torn last line, and opens it for appending. */
async function _openJournal(
  path: string,
  records: _Record[],
): Promise<{ file: Deno.FsFile; bytes: number }> {
  const { lines, good, size } = await _readLines(path);
  for (const r of lines) records.push(r);
  const file = await Deno.open(path, { read: true, write: true, create: true });
  try {
    if (size > good) {
      await file.truncate(good);
      await file.syncData();
    }
    await file.seek(0, Deno.SeekMode.End);
  } catch (e) {
    file.close();
    throw e;
  }
  return { file, bytes: good };
}

/** Removes the files of older generations and unfinished snapshots. */
async function _removeStale(dir: string, gen: number): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const m = /^(?:snapshot|journal)-(\d+)\.jsonl(\.tmp)?$/.exec(e.name);
    if (!m) continue;
    if (m[2] || Number(m[1]) < gen) await Deno.remove(join(dir, e.name)).catch(() => {});
  }
}
