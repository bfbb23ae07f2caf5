/**
 * Groups log entries into pipelined appends to the log stream, each written
 * atomically with the checkpoints of the containers it carries. A batch is
 * packed when it is sealed ({@linkcode packEntries}: one message per
 * container with its metadata once), so a resend sends the same messages. Up to
 * `inFlight` appends are under way at once; each carries the next number of
 * the batcher's sequence, so the stream applies them once and in order (a
 * resend after a lost reply is skipped, a gap is refused and retried from the
 * first unwritten batch) and keeps every container's order.
 *
 * It holds at most about `bufferLines` entries: {@linkcode AppendBatcher.full}
 * tells readers to pause, {@linkcode AppendBatcher.whenRoom} when to resume.
 *
 * When the oldest unwritten batch is refused as out of order, the stream has
 * lost state the batcher saw written (Redis restarted empty or from an older
 * snapshot): the batcher discards what it holds (none of it was written, nor
 * its checkpoints), starts a new sequence and calls `onStoreLost`, so the
 * writer re-reads from its source what the stream no longer has.
 *
 * @module
 */

import { isStorageFull } from "../ports/storage_full.ts";
import { type LogEntry, packEntries } from "../ports/log_entry.ts";
import {
  type AppendOptions,
  AppendOutOfOrderError,
  type Fields,
  type LogStream,
} from "../ports/log_stream.ts";
import type { Logger } from "../runtime/logger.ts";

/** Options of {@linkcode AppendBatcher}. */
export interface AppendBatcherOptions {
  /** The log stream's name. */
  stream: string;
  /**
   * Approximate MAXLEN of the stream; 0 keeps all.
   * @default 0
   */
  maxLen?: number;
  /**
   * Entries per append.
   * @default 1000
   */
  batchLines?: number;
  /**
   * Entries held before {@linkcode AppendBatcher.full} turns true.
   * @default 20000
   */
  bufferLines?: number;
  /**
   * Longest time an entry waits for its batch to fill, in ms.
   * @default 20
   */
  flushMs?: number;
  /**
   * Longest wait between retries of a failed append, in ms.
   * @default 5000
   */
  maxBackoffMs?: number;
  /**
   * The state key of this batcher's append sequence; one per writer (e.g.
   * per process). Without it one append is in flight at a time.
   */
  sequenceKey?: string;
  /**
   * Appends under way at once (with a `sequenceKey`).
   * @default 2
   */
  inFlight?: number;
  /**
   * While idle, how often to check that the stream still holds the
   * sequence's last confirmed number (with a `sequenceKey`), in ms.
   * @default 2000
   */
  probeMs?: number;
  /**
   * Called when the stream lost state the batcher saw written (see the
   * module doc), after the batcher discarded what it held. It runs before
   * any other entry is pushed, so the writer can drop what its readers hold.
   * @default ignore
   */
  onStoreLost?: (lost: StoreLost) => void;
}

/** What {@linkcode AppendBatcherOptions.onStoreLost} is told. */
export interface StoreLost {
  /** The refusal, e.g. `append 846 after 746` or `append 846 after none`. */
  error: AppendOutOfOrderError;
  /** Entries held and discarded (the writer reads them again). */
  discarded: number;
  /** The new sequence key. */
  sequenceKey: string;
}

interface _Waiter {
  upTo: number;
  resolve: () => void;
}

interface _Batch {
  entries: LogEntry[];
  /** The packed messages, once sealed. */
  fields: Fields[];
  keys: (string | null)[];
  positions: string[];
  /** Its number in the sequence, given when sealed. */
  n: number;
  /**
   * Sent before the stream had confirmed the batch before it (pipelined):
   * an out-of-order refusal may only mean that one was not applied yet.
   */
  pipelined: boolean;
}

/** Batches entries into atomic, ordered appends with checkpoints. */
export class AppendBatcher {
  #log: LogStream;
  #logger: Logger;
  #stream: string;
  #maxLen: number;
  #batchLines: number;
  #bufferLines: number;
  #flushMs: number;
  #maxBackoffMs: number;
  #failing = false;
  #storageFull = false;
  #sequenceKey: string | undefined;
  #sequenceBase: string | undefined;
  #inFlight: number;
  #sealedCount = 0;
  #onStoreLost: (lost: StoreLost) => void;
  #discarded = 0;
  #probeMs: number;
  /** The sequence number of the last batch the stream confirmed. */
  #confirmed = 0;

  #current: _Batch = _newBatch();
  #sealed: _Batch[] = [];
  #held = 0;
  #pushed = 0;
  #written = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | null = null;
  #roomWaiters: (() => void)[] = [];
  #writtenWaiters: _Waiter[] = [];
  #closing = false;
  #stopped = false;
  #loop: Promise<void>;

  /**
   * Starts the append loop.
   *
   * @param log the log stream port
   * @param logger where append failures are reported
   * @param options stream name, MAXLEN, batch and buffer sizes
   * @throws {RangeError} when a size is not a positive integer
   */
  constructor(log: LogStream, logger: Logger, options: AppendBatcherOptions) {
    this.#log = log;
    this.#logger = logger;
    this.#stream = options.stream;
    this.#maxLen = options.maxLen ?? 0;
    this.#batchLines = options.batchLines ?? 1000;
    this.#bufferLines = options.bufferLines ?? 20_000;
    this.#flushMs = options.flushMs ?? 20;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#sequenceKey = options.sequenceKey;
    this.#sequenceBase = options.sequenceKey;
    this.#onStoreLost = options.onStoreLost ?? (() => {});
    this.#probeMs = options.probeMs ?? 2000;
    this.#inFlight = this.#sequenceKey === undefined ? 1 : options.inFlight ?? 2;
    for (
      const [name, v] of [
        ["batchLines", this.#batchLines],
        ["bufferLines", this.#bufferLines],
        ["inFlight", this.#inFlight],
      ]
    ) {
      if (!Number.isInteger(v) || (v as number) < 1) {
        throw new RangeError(`Cannot batch appends with ${name} ${v}: expected a positive integer`);
      }
    }
    this.#loop = this.#run();
  }

  /**
   * True when the batcher holds `bufferLines` entries or more: readers
   * should stop reading until {@linkcode AppendBatcher.whenRoom} resolves.
   *
   * @returns whether it is full
   */
  get full(): boolean {
    return this.#held >= this.#bufferLines;
  }

  /**
   * Entries handed over so far.
   *
   * @returns the count
   */
  get pushed(): number {
    return this.#pushed;
  }

  /**
   * Entries written to the stream so far.
   *
   * @returns the count
   */
  get written(): number {
    return this.#written;
  }

  /**
   * Entries discarded because the stream lost state (see the module doc).
   *
   * @returns the count
   */
  get discarded(): number {
    return this.#discarded;
  }

  /**
   * Queues an entry.
   *
   * @param entry the log entry
   * @param checkpointKey the state key of the entry's source (container,
   *   file); null writes no checkpoint with it
   * @param position the checkpoint written with it (e.g. `<ts> <count>`)
   */
  push(entry: LogEntry, checkpointKey: string | null, position: string): void {
    const b = this.#current;
    b.entries.push(entry);
    b.keys.push(checkpointKey);
    b.positions.push(position);
    this.#held++;
    this.#pushed++;
    if (b.entries.length >= this.#batchLines) {
      this.#seal();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#seal();
      }, this.#flushMs);
    }
  }

  /**
   * Resolves when the batcher holds at most half of `bufferLines` entries.
   *
   * @returns a promise of room
   */
  whenRoom(): Promise<void> {
    if (this.#held <= this.#bufferLines / 2 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /**
   * Resolves when the first `count` entries pushed are written.
   *
   * @param count a value of {@linkcode AppendBatcher.pushed}
   * @returns a promise of the write
   */
  whenWritten(count: number): Promise<void> {
    if (this.#written + this.#discarded >= count || this.#stopped) return Promise.resolve();
    this.#seal();
    return new Promise((resolve) => this.#writtenWaiters.push({ upTo: count, resolve }));
  }

  /**
   * Writes what it holds, waiting at most `timeoutMs`, and stops. Entries not
   * written by then are dropped: their checkpoint was not written either, so
   * the next run reads them again.
   *
   * @param timeoutMs the longest wait
   * @returns true when everything was written
   */
  async close(timeoutMs: number): Promise<boolean> {
    this.#closing = true;
    this.#seal();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // While the disk is full, do not wait for space: what is unwritten was
    // not checkpointed either, and the next run reads it again.
    const wait = this.#storageFull ? 0 : timeoutMs;
    const timedOut = new Promise<void>((resolve) => timer = setTimeout(resolve, wait));
    await Promise.race([this.#loop, timedOut]);
    clearTimeout(timer);
    const complete = this.#held === 0;
    this.#stopped = true;
    this.#wake?.();
    for (const r of this.#roomWaiters.splice(0)) r();
    for (const w of this.#writtenWaiters.splice(0)) w.resolve();
    return complete;
  }

  #seal(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#current.entries.length > 0) {
      this.#current.n = ++this.#sealedCount;
      this.#current.fields = packEntries(this.#current.entries);
      this.#sealed.push(this.#current);
      this.#current = _newBatch();
    }
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #run(): Promise<void> {
    let backoff = 100;
    // Sent and not yet answered, oldest first: #sealed[0 .. sent.length).
    const sent: Promise<unknown>[] = [];
    while (!this.#stopped) {
      const next = this.#sealed[sent.length];
      if (next !== undefined && sent.length < this.#inFlight) {
        sent.push(this.#send(next));
        continue;
      }
      if (sent.length === 0) {
        if (this.#closing) return;
        const probing = this.#sequenceKey !== undefined && this.#confirmed > 0;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const woken = await new Promise<boolean>((resolve) => {
          this.#wake = () => resolve(true);
          if (probing) timer = setTimeout(() => resolve(false), this.#probeMs);
        });
        clearTimeout(timer);
        this.#wake = null;
        if (!woken && !this.#stopped) await this.#probe();
        continue;
      }
      const error = await sent.shift()!;
      if (this.#stopped) return;
      if (error instanceof AppendOutOfOrderError && this.#sealed[0]?.pipelined) {
        // Sent while the batch before it was still under way (e.g. retried
        // by the adapter after Redis ran out of memory), and refused before
        // that one was applied: send it again, now in order.
        await Promise.all(sent.splice(0));
        if (this.#stopped) return;
        continue;
      }
      if (error instanceof AppendOutOfOrderError) {
        // The oldest unwritten batch was sent after the stream confirmed the
        // batch before it: a refusal means the stream lost them, not a gap
        // of ours.
        await Promise.all(sent.splice(0));
        if (this.#stopped) return;
        this.#restart(error);
        this.#failing = false;
        backoff = 100;
        continue;
      }
      if (error !== null) {
        // The later ones fail as a gap, or are skipped when resent if they
        // were applied after all: wait for them, then resend in order.
        await Promise.all(sent.splice(0));
        if (this.#stopped) return;
        this.#storageFull = isStorageFull(error);
        if (this.#closing && this.#storageFull) return;
        if (!this.#failing) {
          this.#logger.warn("append to the log stream failed; retrying", {
            stream: this.#stream,
            error,
          });
        }
        this.#failing = true;
        await new Promise((r) => setTimeout(r, backoff));
        // A full disk: retry every second or so, to resume soon once space returns.
        backoff = Math.min(backoff * 2, isStorageFull(error) ? 1000 : this.#maxBackoffMs);
        continue;
      }
      if (this.#failing) this.#logger.info("append to the log stream works again", {});
      this.#failing = false;
      this.#storageFull = false;
      backoff = 100;
      const batch = this.#sealed.shift()!;
      this.#confirmed = batch.n;
      this.#held -= batch.entries.length;
      this.#written += batch.entries.length;
      if (this.#writtenWaiters.length > 0) {
        const still: _Waiter[] = [];
        for (const w of this.#writtenWaiters) {
          if (this.#written + this.#discarded >= w.upTo) w.resolve();
          else still.push(w);
        }
        this.#writtenWaiters = still;
      }
      if (this.#held <= this.#bufferLines / 2 && this.#roomWaiters.length > 0) {
        for (const r of this.#roomWaiters.splice(0)) r();
      }
    }
  }

  /** While idle: restarts when the stream no longer holds the last confirmed number. */
  async #probe(): Promise<void> {
    const key = this.#sequenceKey!;
    const confirmed = this.#confirmed;
    let value: string | null;
    try {
      value = await this.#log.getState(key);
    } catch {
      return; // the stream is down: the next append or probe tells
    }
    // An append confirmed meanwhile wrote the key itself.
    if (this.#stopped || key !== this.#sequenceKey || confirmed !== this.#confirmed) return;
    const n = value === null ? NaN : Number(value);
    if (n >= confirmed) return;
    this.#restart(
      new AppendOutOfOrderError(
        `Cannot find append ${confirmed} of sequence ${key} in ${this.#stream}: the sequence is at ${
          value ?? "none"
        }`,
      ),
    );
  }

  /** Discards what is held, starts a new sequence and tells the writer. */
  #restart(error: AppendOutOfOrderError): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const discarded = this.#held;
    this.#sealed = [];
    this.#current = _newBatch();
    this.#held = 0;
    this.#discarded += discarded;
    this.#sealedCount = 0;
    this.#confirmed = 0;
    // A new key: the old one may still hold a number from an older snapshot.
    this.#sequenceKey = `${this.#sequenceBase}:${crypto.randomUUID()}`;
    for (const w of this.#writtenWaiters.splice(0)) w.resolve();
    for (const r of this.#roomWaiters.splice(0)) r();
    this.#onStoreLost({ error, discarded, sequenceKey: this.#sequenceKey });
  }

  /** Sends one batch; resolves with null when it is written, else the error. */
  #send(batch: _Batch): Promise<unknown> {
    batch.pipelined = this.#confirmed < batch.n - 1;
    const state: Record<string, string> = {};
    for (let i = batch.keys.length - 1; i >= 0; i--) {
      const key = batch.keys[i] as string | null;
      if (key !== null && !(key in state)) state[key] = batch.positions[i]!;
    }
    const options: AppendOptions = { maxLen: this.#maxLen, state };
    if (this.#sequenceKey !== undefined) {
      options.sequence = { key: this.#sequenceKey, n: batch.n };
    }
    return this.#log.append(this.#stream, batch.fields, options).then(
      () => null,
      (e: unknown) => e ?? new Error("append failed"),
    );
  }
}

function _newBatch(): _Batch {
  return { entries: [], fields: [], keys: [], positions: [], n: 0, pipelined: false };
}
