/**
 * The one source pipeline: every log source (Docker, file, demo) hands its
 * raw lines here, and the pipeline does the rest the same way for all:
 *
 * 1. line assembly ({@linkcode SourcePipeline.assembler}: records into
 *    lines, Docker's 16 KiB partial records joined, lines cut at
 *    `maxLineBytes` and marked truncated);
 * 2. a {@linkcode SourceChannel} per followed thing (a container, a file):
 *    the multi-line stage ({@linkcode MultilineGrouper}: lines into events,
 *    between line assembly and entry building), then the entry
 *    ({@linkcode LogEntry}: the thing's fields, the event's first timestamp,
 *    its text, its raw bytes when not UTF-8, truncated);
 * 3. the checkpoint: an event goes out with the position after its last
 *    line, so a checkpoint never passes a line of an event still open (that
 *    one is read again after a restart);
 * 4. the batched append ({@linkcode AppendBatcher}): pipelined appends, each
 *    written atomically with the checkpoints of the events it carries, with
 *    back-pressure ({@linkcode SourcePipeline.full}).
 *
 * Sources keep only what is theirs: reading, their positions, where they
 * resume ({@linkcode LogStream.getState} of their checkpoint key).
 *
 * @example
 * ```ts
 * import { SourcePipeline } from "./pipeline.ts";
 * // const pipeline = new SourcePipeline(stream, logger, { stream: "tailwise:logs" });
 * // const sink = pipeline.channel({ checkpointKey: "ckpt:a", meta, checkpoint: String });
 * // sink.line({ stream: "stdout", ts, seq: 0, bytes, truncated: false, position: 42 });
 * // await pipeline.close(10_000);
 * ```
 *
 * @module
 */

import { decodeLine, type LogEntry } from "../ports/log_entry.ts";
import { keyBeside, shardOf } from "../ports/log_shards.ts";
import type { LineSink, SourceLine, SourceMeta } from "../ports/log_source.ts";
import type { LogStream } from "../ports/log_stream.ts";
import type { Logger } from "../runtime/logger.ts";
import { AppendBatcher, type StoreLost } from "./append_batcher.ts";
import { LineAssembler, type LineAssemblerOptions, type LineHandler } from "./line_assembler.ts";
import {
  MULTILINE_FLUSH_MS,
  MULTILINE_MAX_BYTES,
  MULTILINE_MAX_LINES,
  MULTILINE_QUIET_MS,
  type MultilineEvent,
  MultilineGrouper,
  type MultilineMode,
  parseMultilineMode,
} from "./multiline.ts";

/** Options of {@linkcode SourcePipeline}. */
export interface SourcePipelineOptions {
  /** The log stream's name. */
  stream: string;
  /**
   * The log stream's shards (`shared/ports/log_shards.ts`); overrides
   * `stream`. A channel appends to the shard it names, each shard with its
   * own append sequence.
   * @default [stream]
   */
  streams?: readonly string[];
  /**
   * Approximate MAXLEN of the stream; 0 keeps all.
   * @default 0
   */
  maxLen?: number;
  /**
   * Longest line; longer ones are cut and marked truncated.
   * @default 1048576
   */
  maxLineBytes?: number;
  /**
   * Entries per append.
   * @default 1000
   */
  batchLines?: number;
  /**
   * Entries held before {@linkcode SourcePipeline.full} turns true.
   * @default 20000
   */
  bufferLines?: number;
  /**
   * Longest time an entry waits for its batch, in ms.
   * @default 20
   */
  flushMs?: number;
  /**
   * Appends under way at once (pipelined, applied in order).
   * @default 2
   */
  appendsInFlight?: number;
  /**
   * Longest wait between retries of a failed append, in ms.
   * @default 5000
   */
  maxBackoffMs?: number;
  /**
   * The key family of this pipeline's append sequences (one per writer and
   * shard, beside the shard's stream); null appends one batch at a time
   * without a sequence.
   * @default "tailwise:collect:ckpt:"
   */
  sequencePrefix?: string | null;
  /**
   * Called when the stream lost appends it had confirmed (Redis restarted
   * empty or from an older snapshot), after what the pipeline held was
   * dropped: the source re-reads from its checkpoints.
   * @default ignore
   */
  onStoreLost?: (lost: StoreLost, shard: number) => void;
  /**
   * How lines join into events, unless a channel says otherwise: `auto`,
   * `off` or a regular expression matching an event's first line.
   * @default "auto"
   */
  multiline?: string | MultilineMode;
  /**
   * Longest wait of an open event for its next line, in ms.
   * @default 1000
   */
  multilineFlushMs?: number;
  /**
   * Wait of a plain event (no stack trace) for its next line, in ms
   * (see `MultilineOptions.quietMs`).
   * @default 50
   */
  multilineQuietMs?: number;
  /**
   * Most lines in one event.
   * @default 500
   */
  multilineMaxLines?: number;
  /**
   * Most bytes in one event.
   * @default 131072
   */
  multilineMaxBytes?: number;
}

/** Options of {@linkcode SourcePipeline.channel}. */
export interface ChannelOptions<P> {
  /**
   * The state key of the thing's checkpoint (beside its shard's stream:
   * {@linkcode SourcePipeline.keyBeside}); null writes none.
   */
  checkpointKey: string | null;
  /**
   * The shard its entries go to ({@linkcode SourcePipeline.shardOf}).
   * @default 0
   */
  shard?: number;
  /** The fields of every entry. */
  meta: SourceMeta;
  /**
   * The checkpoint text of a position (what the source parses back).
   *
   * @param position a line's position
   * @returns the text stored under `checkpointKey`
   */
  checkpoint(position: P): string;
  /**
   * How lines join into events here.
   * @default the pipeline's `multiline`
   */
  multiline?: MultilineMode;
  /**
   * The shortest wait of a plain event for more lines here, in ms: a source
   * that polls sees a continuation only at its next poll, so its events wait
   * at least two polls.
   * @default the pipeline's `multilineQuietMs`
   */
  minQuietMs?: number;
  /**
   * Sees every line with its decoded text before the multi-line stage (e.g.
   * to keep a container's last lines). Within {@linkcode SourceChannel.batch}
   * it runs after the read, when `line.bytes` is no longer valid: use `text`.
   * @default ignore
   */
  tap?: (text: string, line: SourceLine<P>) => void;
  /**
   * Told the position after an event's last line when the event is handed
   * to the append (the position the checkpoint moves to once written).
   * @default ignore
   */
  onEvent?: (position: P) => void;
}

/** The pipeline of every log source: multi-line events, entries, checkpoints, batched appends. */
export class SourcePipeline {
  readonly #streams: readonly string[];
  readonly #batchers: AppendBatcher[];
  readonly #maxLineBytes: number;
  readonly #multiline: MultilineMode;
  readonly #flushMs: number;
  readonly #quietMs: number;
  readonly #maxLines: number;
  readonly #maxBytes: number;

  /**
   * Starts the append loop.
   *
   * @param stream the log stream port
   * @param logger where append failures are reported
   * @param options stream name, line cap, batch sizes, multi-line defaults
   * @throws {RangeError} when a size is not a positive integer
   * @throws {TypeError} when `multiline` is not `auto`, `off` or a regular expression
   */
  constructor(log: LogStream, logger: Logger, options: SourcePipelineOptions) {
    this.#maxLineBytes = options.maxLineBytes ?? 1024 * 1024;
    this.#multiline = typeof options.multiline === "object"
      ? options.multiline
      : parseMultilineMode(options.multiline);
    this.#flushMs = options.multilineFlushMs ?? MULTILINE_FLUSH_MS;
    this.#quietMs = options.multilineQuietMs ?? MULTILINE_QUIET_MS;
    this.#maxLines = options.multilineMaxLines ?? MULTILINE_MAX_LINES;
    this.#maxBytes = options.multilineMaxBytes ?? MULTILINE_MAX_BYTES;
    const prefix = options.sequencePrefix === undefined
      ? "tailwise:collect:ckpt:"
      : options.sequencePrefix;
    const uuid = crypto.randomUUID();
    this.#streams = options.streams?.length ? [...options.streams] : [options.stream];
    this.#batchers = this.#streams.map((stream, shard) =>
      new AppendBatcher(log, logger, {
        stream,
        maxLen: options.maxLen ?? 0,
        batchLines: options.batchLines ?? 1000,
        bufferLines: options.bufferLines ?? 20_000,
        flushMs: options.flushMs ?? 20,
        maxBackoffMs: options.maxBackoffMs ?? 5000,
        // One sequence per writer and shard: its appends are pipelined, and
        // applied once and in order even when a reply is lost and resent.
        ...(prefix === null ? {} : { sequenceKey: keyBeside(stream, prefix, `seq:${uuid}`) }),
        inFlight: options.appendsInFlight ?? 2,
        ...(options.onStoreLost
          ? { onStoreLost: (lost: StoreLost) => options.onStoreLost!(lost, shard) }
          : {}),
      })
    );
  }

  /**
   * The shards' streams (one without sharding).
   *
   * @returns their names, shard 0 first
   */
  get streams(): readonly string[] {
    return this.#streams;
  }

  /**
   * The shard of a model key.
   *
   * @param key the model key of the entries (`modelKey`)
   * @returns the shard's index
   */
  shardOf(key: string): number {
    return shardOf(key, this.#streams.length);
  }

  /**
   * A state key beside a shard's stream (in its Redis Cluster slot), for a
   * checkpoint written with that shard's appends.
   *
   * @param shard the shard
   * @param prefix the key family, e.g. `tailwise:file:ckpt:`
   * @param name the rest of the key
   * @returns the key
   */
  keyBeside(shard: number, prefix: string, name: string): string {
    return keyBeside(this.#streams[shard]!, prefix, name);
  }

  /**
   * A line assembler with the pipeline's line cap: records (Docker's, or
   * plain bytes) into lines.
   *
   * @param onLine receives each line
   * @param options timestamps, framing, CR handling
   * @returns the assembler
   */
  assembler(
    onLine: LineHandler,
    options: Omit<LineAssemblerOptions, "maxLineBytes"> = {},
  ): LineAssembler {
    return new LineAssembler(onLine, { ...options, maxLineBytes: this.#maxLineBytes });
  }

  /**
   * Opens the sink of one followed thing (a container, a file).
   *
   * @param options its checkpoint key, entry fields, checkpoint text, multi-line mode
   * @returns where its lines go
   */
  channel<P>(options: ChannelOptions<P>): SourceChannel<P> {
    const batcher = this.#batchers[options.shard ?? 0];
    if (batcher === undefined) {
      throw new RangeError(
        `Cannot open a channel on shard ${options.shard}: expected 0 to ${
          this.#batchers.length - 1
        }`,
      );
    }
    return new SourceChannel(batcher, options, {
      mode: options.multiline ?? this.#multiline,
      flushMs: this.#flushMs,
      quietMs: Math.max(this.#quietMs, options.minQuietMs ?? 0),
      maxLines: this.#maxLines,
      maxBytes: this.#maxBytes,
    });
  }

  /**
   * True when a shard holds `bufferLines` entries or more: sources should
   * stop reading until {@linkcode SourcePipeline.whenRoom} resolves.
   *
   * @returns whether one is full
   */
  get full(): boolean {
    return this.#batchers.some((b) => b.full);
  }

  /**
   * Resolves when every shard has room again.
   *
   * @returns a promise of room
   */
  async whenRoom(): Promise<void> {
    await Promise.all(this.#batchers.map((b) => b.whenRoom()));
  }

  /**
   * Entries handed to the append so far.
   *
   * @returns the count
   */
  get pushed(): number {
    return this.#sum((b) => b.pushed);
  }

  /**
   * Entries written so far.
   *
   * @returns the count
   */
  get written(): number {
    return this.#sum((b) => b.written);
  }

  /**
   * Entries dropped because the stream lost state (read again by the source).
   *
   * @returns the count
   */
  get discarded(): number {
    return this.#sum((b) => b.discarded);
  }

  /**
   * Resolves when every entry pushed so far is written (or dropped because
   * the stream lost state).
   *
   * @returns a promise of the writes
   */
  async whenFlushed(): Promise<void> {
    await Promise.all(this.#batchers.map((b) => b.whenWritten(b.pushed)));
  }

  /**
   * Writes what it holds, waiting at most `timeoutMs`, and stops.
   *
   * @param timeoutMs the longest wait
   * @returns true when everything was written
   */
  async close(timeoutMs: number): Promise<boolean> {
    const done = await Promise.all(this.#batchers.map((b) => b.close(timeoutMs)));
    return done.every((d) => d);
  }

  #sum(of: (b: AppendBatcher) => number): number {
    let n = 0;
    for (const b of this.#batchers) n += of(b);
    return n;
  }
}

const _batchDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const _NO_BYTES = new Uint8Array(0);

/**
 * A line held by the multi-line stage: the source's own line object (its
 * `bytes` view is stale by then and not read), with the raw bytes of a line
 * that is not UTF-8 (rare: set only then, so no object per line is made).
 */
type _Held<P> = SourceLine<P> & { raw?: Uint8Array };

/**
 * The sink of one followed thing: the multi-line stage, then the entry and
 * its checkpoint into the append. An open event is handed on once no line
 * came for `multilineFlushMs` (a timer), but not while its source is paused
 * ({@linkcode SourceChannel.pause}: its next lines wait unread), and not
 * straight after the process stalled (a timer that fires late may run before
 * the read that holds the next lines): then it looks again shortly.
 */
export class SourceChannel<P> implements LineSink<P> {
  readonly #batcher: AppendBatcher;
  readonly #options: ChannelOptions<P>;
  readonly #grouper: MultilineGrouper<_Held<P>>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #paused = false;
  /** A late timer looked again once since the last data. */
  #stalled = false;

  /**
   * @param batcher the pipeline's append
   * @param options the thing's checkpoint key, fields and checkpoint text
   * @param grouping the multi-line mode and caps
   */
  constructor(
    batcher: AppendBatcher,
    options: ChannelOptions<P>,
    grouping: {
      mode: MultilineMode;
      flushMs: number;
      quietMs: number;
      maxLines: number;
      maxBytes: number;
    },
  ) {
    this.#batcher = batcher;
    this.#options = options;
    this.#grouper = new MultilineGrouper<_Held<P>>((e) => this.#emit(e), grouping);
  }

  /**
   * True while an event is open (its lines not yet handed to the append).
   *
   * @returns whether one is
   */
  get pending(): boolean {
    return this.#grouper.pending;
  }

  /**
   * The time the open event is due, in ms since the epoch.
   *
   * @returns the deadline, or undefined without an open event
   */
  get deadline(): number | undefined {
    return this.#grouper.deadline;
  }

  /**
   * Hands on a line.
   *
   * @param line the line and its position
   */
  line(line: SourceLine<P>): void {
    this.#stalled = false;
    if (this.#batching) {
      this.#defer(line);
      return;
    }
    const decoded = decodeLine(line.bytes);
    this.#accept(line, decoded.line, decoded.raw, line.bytes.length, Date.now());
  }

  /**
   * Runs `read`, which hands on lines, and decodes the UTF-8 of all the lines
   * it handed on at once when it returns: one decoder call per read of a
   * source instead of one per line (a decoder call costs about 0.4 µs even for
   * a short line, more than the rest of a line's way to the append). A batch
   * that is not valid UTF-8 is decoded line by line, so a bad line keeps its
   * raw bytes and the others are unaffected.
   *
   * @param read hands on lines (synchronously)
   */
  batch(read: () => void): void {
    if (this.#batching) {
      read();
      return;
    }
    this.openBatch();
    try {
      read();
    } finally {
      this.closeBatch();
    }
  }

  /**
   * Starts a batch (as {@linkcode SourceChannel.batch}) that lasts until
   * {@linkcode SourceChannel.closeBatch}: for a read that hands on its lines
   * in several callbacks (one per HTTP chunk of Docker's log stream, where
   * each line is a chunk of its own). Nothing may await in between.
   */
  openBatch(): void {
    this.#batching = true;
  }

  /** Ends the batch: decodes and hands on the lines it deferred. */
  closeBatch(): void {
    if (!this.#batching) return;
    this.#batching = false;
    this.#drain();
  }

  #batching = false;
  /** The deferred lines' bytes, each followed by `\n`. */
  #scratch = new Uint8Array(64 * 1024);
  #scratchLen = 0;
  #deferred: SourceLine<P>[] = [];
  #deferredEnds: number[] = [];

  #defer(line: SourceLine<P>): void {
    const b = line.bytes;
    const need = this.#scratchLen + b.length + 1;
    if (need > this.#scratch.length) {
      const grown = new Uint8Array(Math.max(need, this.#scratch.length * 2));
      grown.set(this.#scratch.subarray(0, this.#scratchLen));
      this.#scratch = grown;
    }
    this.#scratch.set(b, this.#scratchLen);
    this.#scratchLen += b.length;
    this.#deferredEnds.push(this.#scratchLen);
    this.#scratch[this.#scratchLen++] = 10;
    // The view is only valid during the call: the line keeps its bytes in scratch.
    this.#deferred.push(line);
  }

  #drain(): void {
    const lines = this.#deferred;
    const n = lines.length;
    if (n === 0) return;
    const ends = this.#deferredEnds;
    const scratch = this.#scratch;
    // The replacing decoder is several times faster than the fatal one; a
    // batch without U+FFFD in its text was valid UTF-8 (one with it, invalid
    // or a real U+FFFD, is decoded line by line). Lines hold no "\n" (it
    // ends them), so splitting gives them back.
    const text = _batchDecoder.decode(scratch.subarray(0, this.#scratchLen - 1));
    let texts: string[] | null = text.indexOf("\uFFFD") < 0 ? text.split("\n") : null;
    if (texts !== null && texts.length !== n) texts = null;
    const now = Date.now();
    let start = 0;
    try {
      for (let i = 0; i < n; i++) {
        const end = ends[i]!;
        const line = lines[i]!;
        if (texts !== null) {
          let text = texts[i]!;
          // As the per-line decoder does, a leading byte order mark is dropped.
          if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
          this.#accept(line, text, undefined, end - start, now);
        } else {
          const decoded = decodeLine(scratch.subarray(start, end));
          this.#accept(line, decoded.line, decoded.raw, end - start, now);
        }
        start = end + 1;
      }
    } finally {
      this.#dropDeferred();
    }
  }

  #dropDeferred(): void {
    this.#deferred = [];
    this.#deferredEnds = [];
    this.#scratchLen = 0;
    if (this.#scratch.length > 1024 * 1024) this.#scratch = new Uint8Array(64 * 1024);
  }

  #accept(
    line: SourceLine<P>,
    text: string,
    raw: Uint8Array | undefined,
    bytes: number,
    now: number,
  ): void {
    this.#options.tap?.(text, line);
    const held: _Held<P> = line;
    // The view is stale now; held, it would keep its buffer (a file chunk) alive.
    held.bytes = _NO_BYTES;
    if (raw !== undefined) held.raw = raw;
    this.#grouper.pushLine(text, held, line.stream, bytes, now);
    this.#arm();
  }

  /**
   * Tells the channel that data arrived (lines may follow): a stall is over.
   */
  touch(): void {
    this.#stalled = false;
  }

  /**
   * Holds the open event while the source does not read (the pipeline is
   * full); {@linkcode SourceChannel.resume} lets its timer run again.
   */
  pause(): void {
    this.#paused = true;
  }

  /** The source reads again. */
  resume(): void {
    this.#paused = false;
  }

  /** Hands on the open event now (the source ended). */
  end(): void {
    this.#drain();
    this.#grouper.flush();
    this.#disarm();
  }

  /** Drops the open event (it is read again from the checkpoint). */
  discard(): void {
    this.#dropDeferred();
    this.#grouper.discard();
    this.#disarm();
  }

  #arm(delay?: number): void {
    if (!this.#grouper.pending) return;
    const now = Date.now();
    // An armed timer due before any new deadline could be stays (the common
    // case, a line per call: no need to work out this event's hold).
    if (this.#timer !== undefined && this.#due <= now + this.#grouper.minHoldMs) return;
    const ms = delay ?? Math.max(0, this.#grouper.deadline! - now);
    const due = now + ms;
    if (this.#timer !== undefined) {
      // A shorter hold (a plain event after an error line) moves it earlier.
      if (delay !== undefined || due >= this.#due) return;
      clearTimeout(this.#timer);
    }
    this.#due = due;
    // Late by more than half the hold (at most 100 ms): the process stalled,
    // and the read holding the next lines may not have run yet.
    const lateMs = Math.min(100, Math.max(5, this.#grouper.holdMs / 2));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#paused || (!this.#stalled && Date.now() - due > lateMs)) {
        this.#stalled = !this.#paused;
        this.#arm(Math.min(50, this.#grouper.holdMs));
        return;
      }
      this.#grouper.flushDue(Date.now());
      this.#arm();
    }, ms);
  }

  /** When the armed timer fires, in ms since the epoch. */
  #due = 0;

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #emit(e: MultilineEvent<_Held<P>>): void {
    const lines = e.positions;
    const first = lines[0]!;
    const last = lines[lines.length - 1]!;
    const { meta } = this.#options;
    const entry: LogEntry = {
      containerId: meta.containerId,
      containerName: meta.containerName,
      image: meta.image,
      stream: first.stream,
      ts: first.ts,
      seq: first.seq,
      line: e.text,
    };
    if (meta.key !== undefined && meta.key !== meta.containerName) entry.key = meta.key;
    if (meta.service !== undefined) entry.service = meta.service;
    if (meta.task !== undefined) entry.task = meta.task;
    if (meta.node !== undefined) entry.node = meta.node;
    const raw = _joinRaw(e);
    if (raw !== undefined) entry.raw = raw;
    if (lines.length === 1 ? first.truncated : lines.some((l) => l.truncated)) {
      entry.truncated = true;
    }
    this.#options.onEvent?.(last.position);
    this.#batcher.push(
      entry,
      this.#options.checkpointKey,
      this.#options.checkpoint(last.position),
    );
  }
}

/**
 * Timestamps for sources without their own (a file, the demo): the time a
 * line was read, and its order among lines read in the same millisecond.
 */
export class LineClock {
  #lastTs = "";
  #seq = 0;

  /**
   * The timestamp and order of a line read at `ms`.
   *
   * @param ms the time, in ms since the epoch
   * @default {ms} Date.now()
   * @returns its RFC 3339 timestamp and order
   */
  stamp(ms: number = Date.now()): { ts: string; seq: number } {
    const ts = new Date(ms).toISOString();
    this.#seq = ts === this.#lastTs ? this.#seq + 1 : 0;
    this.#lastTs = ts;
    return { ts, seq: this.#seq };
  }
}

/** The bytes of an event whose lines are not all valid UTF-8, else undefined. */
function _joinRaw<P>(e: MultilineEvent<_Held<P>>): Uint8Array | undefined {
  const lines = e.positions;
  if (lines.length === 1) return lines[0]!.raw;
  if (!lines.some((l) => l.raw !== undefined)) return undefined;
  const encoder = new TextEncoder();
  const parts = lines.map((l, i) => l.raw ?? encoder.encode(e.lines[i]!));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + parts.length - 1);
  let at = 0;
  parts.forEach((p, i) => {
    if (i > 0) out[at++] = 10;
    out.set(p, at);
    at += p.length;
  });
  return out;
}
