/**
 * The shared stream trigger of ingest and score: a consumer in a consumer
 * group of a {@linkcode LogStream} that gives its handler at-least-once
 * delivery.
 *
 * One loop, in this order: the consumer's own pending messages first (left by
 * a previous run of the same consumer name, or by a handler that did not
 * finish them), then, every `claimEveryMs`, messages left idle by another
 * consumer (`claimIdle`), then new messages (a blocking read). Each batch goes
 * to the handler, which reports per message what became of it:
 *
 * - `done`: finished; the consumer acks it.
 * - `failed`: failed this time; it stays pending and is delivered again, and
 *   once it has been delivered `maxDeliveries` times it is moved to the dead
 *   letter stream with its error, and acked.
 * - `rejected`: can never succeed (e.g. undecodable fields); moved to the dead
 *   letter stream at once, and acked.
 * - not reported: unfinished (e.g. the abort signal fired); it stays pending
 *   and is delivered again, without counting as a failure.
 *
 * A handler that throws has finished nothing: the batch stays pending and is
 * handed over again after a jittered backoff, so an outage of what the
 * handler writes to (or a revoked credential) stops acking instead of losing
 * or dead-lettering entries.
 *
 * A group that disappears (Redis restarted empty, or without the group) is
 * re-created at once, from the start of the stream, and reported once per
 * loss through `onGroupLost`: the consumer goes on without a restart.
 *
 * @module
 */

import { isStorageFull } from "../ports/storage_full.ts";
import type { Fields, LogStream, StreamMessage } from "../ports/log_stream.ts";
import { sleep } from "./sleep.ts";

/** What a handler made of a batch; ids not named anywhere are unfinished. */
export interface BatchOutcome {
  /** Ids of messages finished: they are acked. */
  done?: Iterable<string>;
  /** Ids of messages that failed this time, with why; retried up to `maxDeliveries`. */
  failed?: ReadonlyMap<string, Error>;
  /** Ids of messages that can never succeed, with why; dead-lettered at once. */
  rejected?: ReadonlyMap<string, Error>;
}

/** The context a handler gets with each batch. */
export interface BatchContext {
  /** Fires when the consumer stops: finish or abandon the batch quickly. */
  signal: AbortSignal;
}

/**
 * Handles one batch of messages and reports what became of each.
 *
 * @param batch the messages, oldest first
 * @param context the abort signal
 * @returns the outcome per message
 */
export type BatchHandler = (
  batch: readonly StreamMessage[],
  context: BatchContext,
) => Promise<BatchOutcome>;

/** Counters of a {@linkcode StreamConsumer} since it started. */
export interface ConsumerCounters {
  /** Messages handed to the handler (a redelivery counts again). */
  read: number;
  /** Messages acked after the handler finished them. */
  acked: number;
  /** Failed deliveries (`failed` outcomes). */
  failed: number;
  /** Messages moved to the dead letter stream. */
  deadLettered: number;
  /** Messages taken over from idle consumers. */
  claimed: number;
  /** Handler calls that threw. */
  handlerErrors: number;
  /** Batches handed to the handler. */
  batches: number;
  /** Times the group was found missing and re-created. */
  groupsRecreated: number;
}

/**
 * Counters all at zero (a new consumer's; the start of a sum).
 *
 * @returns fresh counters
 */
export function zeroCounters(): ConsumerCounters {
  return {
    read: 0,
    acked: 0,
    failed: 0,
    deadLettered: 0,
    claimed: 0,
    handlerErrors: 0,
    batches: 0,
    groupsRecreated: 0,
  };
}

/** Counters plus the group's state, for metrics. */
export interface ConsumerStatus extends ConsumerCounters {
  /** Messages delivered to the group and not acked (all consumers). */
  pending: number;
  /** Messages not yet delivered to the group; null when the stream cannot tell. */
  lag: number | null;
  /** The last error the handler threw, or null. */
  lastError: string | null;
}

/** Options of {@linkcode StreamConsumer}. */
export interface StreamConsumerOptions {
  /** The stream read. */
  stream: string;
  /** The consumer group. */
  group: string;
  /** This consumer's name in the group; keep it stable across restarts of one replica. */
  consumer: string;
  /** Where messages that failed too often go. */
  deadLetterStream: string;
  /**
   * Most messages per batch.
   * @default 1000
   */
  batch?: number;
  /**
   * How long a read waits for new messages, in ms.
   * @default 1000
   */
  blockMs?: number;
  /**
   * Pending messages idle this long (their consumer presumably dead) are claimed, in ms.
   * @default 30000
   */
  claimIdleMs?: number;
  /**
   * How often to look for idle messages to claim, in ms.
   * @default min(claimIdleMs, 5000)
   */
  claimEveryMs?: number;
  /**
   * Deliveries after which a failing message is dead-lettered.
   * @default 5
   */
  maxDeliveries?: number;
  /**
   * Read the next batch of new messages while the handler works on the current one.
   * @default true
   */
  readAhead?: boolean;
  /**
   * Batches of new messages handed to the handler at once (each acked on its
   * own); more than 1 overlaps reading, decoding and writing.
   * @default 1
   */
  concurrency?: number;
  /**
   * First backoff after a handler error or a stream error, in ms (doubles, jittered).
   * @default 200
   */
  backoffMs?: number;
  /**
   * Longest backoff, in ms.
   * @default 30000
   */
  maxBackoffMs?: number;
  /**
   * Called with errors that did not stop the consumer (handler throws, stream
   * errors), before it backs off.
   * @default ignore
   */
  onError?: (error: unknown, context: { retryInMs: number }) => void;
  /**
   * Called once each time the group was found missing (the stream's server
   * lost it) and re-created from the start of the stream.
   * @default report it through `onError` with `retryInMs` 0
   */
  onGroupLost?: (lost: GroupLost) => void;
}

/** What {@linkcode StreamConsumerOptions.onGroupLost} is told. */
export interface GroupLost {
  /** The stream. */
  stream: string;
  /** The group, now re-created. */
  group: string;
  /** The error that showed it missing (e.g. `NOGROUP ...`). */
  error: string;
}

/** The log message of a lost and re-created group, the same in every function. */
export const GROUP_LOST_MESSAGE =
  "consumer group was missing (Redis lost it: restarted empty or from an older snapshot); " +
  "re-created it from the start of the stream, which collect fills again from Docker";

/**
 * Whether an error of a group read says the stream or the group does not
 * exist (Redis' `NOGROUP`, or `UNBLOCKED` for a blocked read whose stream was
 * deleted).
 *
 * @param e the error
 * @returns true for a missing group
 */
export function isMissingGroupError(e: unknown): boolean {
  const message = e instanceof Error ? e.message : String(e);
  // A read blocked on a stream that is deleted meanwhile ends with UNBLOCKED.
  return /\bNOGROUP\b|^UNBLOCKED the stream key no longer exists/.test(message);
}

/** Field names added to a dead-lettered message (the original fields are kept). */
export const DEAD_LETTER_FIELDS = {
  error: "dead.error",
  stream: "dead.stream",
  group: "dead.group",
  id: "dead.id",
  deliveries: "dead.deliveries",
  consumer: "dead.consumer",
  at: "dead.at",
} as const;

/** A consumer in a consumer group that hands batches to a handler. */
export class StreamConsumer {
  #log: LogStream;
  #handler: BatchHandler;
  #o: Required<Omit<StreamConsumerOptions, "onError" | "onGroupLost">> & {
    onError: NonNullable<StreamConsumerOptions["onError"]>;
    onGroupLost: NonNullable<StreamConsumerOptions["onGroupLost"]>;
  };
  #counters: ConsumerCounters = zeroCounters();
  #lastError: string | null = null;
  #lastErrorValue: unknown = null;
  #running = false;

  /**
   * @param log the stream adapter
   * @param handler what to do with each batch
   * @param options stream, group, consumer name and tuning
   * @throws {RangeError} when a numeric option is out of range
   */
  constructor(log: LogStream, handler: BatchHandler, options: StreamConsumerOptions) {
    this.#log = log;
    this.#handler = handler;
    const claimIdleMs = options.claimIdleMs ?? 30_000;
    const onError = options.onError ?? (() => {});
    this.#o = {
      stream: options.stream,
      group: options.group,
      consumer: options.consumer,
      deadLetterStream: options.deadLetterStream,
      batch: options.batch ?? 1000,
      blockMs: options.blockMs ?? 1000,
      claimIdleMs,
      claimEveryMs: options.claimEveryMs ?? Math.min(claimIdleMs, 5000),
      maxDeliveries: options.maxDeliveries ?? 5,
      readAhead: options.readAhead ?? true,
      concurrency: options.concurrency ?? 1,
      backoffMs: options.backoffMs ?? 200,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      onError,
      onGroupLost: options.onGroupLost ?? ((lost) =>
        onError(
          new Error(
            `Consumer group ${lost.group} of ${lost.stream} was missing (${lost.error}): ` +
              "re-created it from the start of the stream",
          ),
          { retryInMs: 0 },
        )),
    };
    for (const key of ["batch", "maxDeliveries", "concurrency"] as const) {
      const v = this.#o[key];
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`Cannot use ${key} ${v}: expected an integer of at least 1`);
      }
    }
    for (const key of ["blockMs", "claimIdleMs", "claimEveryMs", "backoffMs"] as const) {
      const v = this.#o[key];
      if (!Number.isFinite(v) || v < 0) {
        throw new RangeError(`Cannot use ${key} ${v}: expected a number of ms of at least 0`);
      }
    }
  }

  /** A copy of the counters since the consumer was made. */
  get counters(): ConsumerCounters {
    return { ...this.#counters };
  }

  /**
   * The counters with the group's pending and lag.
   *
   * @returns counters and group state
   */
  async status(): Promise<ConsumerStatus> {
    const info = await this.#log.groupInfo(this.#o.stream, this.#o.group);
    return {
      ...this.#counters,
      pending: info.pending,
      lag: info.lag,
      lastError: this.#lastError,
    };
  }

  /**
   * Creates the group when missing and consumes until `signal` aborts. The
   * batch in the handler's hands when the signal fires is finished or
   * abandoned by the handler; only what it reports done is acked.
   *
   * @param signal stops the consumer
   * @returns when stopped
   * @throws {Error} when called while already running
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error(`Consumer ${this.#o.consumer} is already running`);
    this.#running = true;
    try {
      await this.#retrying(signal, () => this.#log.createGroup(this.#o.stream, this.#o.group));
      await this.#loop(signal);
    } finally {
      this.#running = false;
    }
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    let checkPending = true;
    let nextClaimAt = 0;
    let ahead: Promise<StreamMessage[]> | null = null;
    let failures = 0;
    // Batches of new messages handled concurrently, and their results.
    const inflight = new Set<Promise<void>>();
    const results: (_Settled | { error: unknown })[] = [];
    const drain = async () => {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      if (ahead) {
        // Whatever was read ahead stays pending for us: read it back through
        // readPending next, not after claimIdleMs through a claim.
        const dropped = await ahead.catch(() => [] as StreamMessage[]);
        ahead = null;
        if (dropped.length > 0) checkPending = true;
      }
    };
    /** Applies a batch's result; true when the loop should back off. */
    const apply = (r: _Settled | { error: unknown }): unknown | null => {
      if (r === "all") {
        failures = 0;
        return null;
      }
      // Some stay pending: failed (delivered again until dead-lettered) or unfinished.
      checkPending = true;
      if (r === "left") return null;
      failures++;
      if (r === "threw") return this.#lastErrorValue;
      if (r === "stuck") return signal.aborted ? null : _NO_ERROR;
      // The stream failed while acking: what was not acked is delivered again.
      return r.error;
    };
    while (!signal.aborted) {
      if (results.length > 0) {
        let trouble: unknown = null;
        for (const r of results.splice(0)) trouble = apply(r) ?? trouble;
        if (trouble !== null) {
          await drain();
          for (const r of results.splice(0)) apply(r);
          await this.#backoff(trouble === _NO_ERROR ? null : trouble, failures, signal);
          continue;
        }
      }
      let batch: StreamMessage[];
      let fromNew = false;
      try {
        if (checkPending) {
          await drain();
          batch = await this.#log.readPending(o.stream, o.group, o.consumer, { count: o.batch });
          if (batch.length === 0) checkPending = false;
        } else if (Date.now() >= nextClaimAt) {
          await drain();
          batch = await this.#log.claimIdle(o.stream, o.group, o.consumer, {
            minIdleMs: o.claimIdleMs,
            count: o.batch,
          });
          this.#counters.claimed += batch.length;
          // Keep claiming while there is more; otherwise wait for the next round.
          if (batch.length < o.batch) nextClaimAt = Date.now() + o.claimEveryMs;
        } else {
          const read = ahead ?? this.#readNew(signal, inflight.size > 0 ? 0 : o.blockMs);
          ahead = null;
          batch = await read;
          fromNew = true;
        }
      } catch (e) {
        ahead = null;
        if (signal.aborted) break;
        if (isMissingGroupError(e)) {
          await drain();
          if (await this.#recreateGroup(e)) {
            failures = 0;
            checkPending = true;
            nextClaimAt = 0;
            continue;
          }
        }
        failures++;
        await drain();
        await this.#backoff(e, failures, signal);
        continue;
      }
      if (batch.length === 0) {
        // Nothing new while batches are in flight: wait for one instead of spinning.
        if (fromNew && inflight.size > 0) await Promise.race(inflight);
        continue;
      }
      if (
        fromNew && o.readAhead && o.concurrency === 1 && batch.length === o.batch &&
        !signal.aborted
      ) {
        ahead = this.#readNew(signal, 0);
        // A rejection is seen when the read is awaited; do not let it go unhandled meanwhile.
        ahead.catch(() => {});
      }
      const handling = this.#handle(batch, signal).then(
        (settled) => void results.push(settled),
        (error: unknown) => void results.push({ error }),
      );
      if (fromNew && o.concurrency > 1) {
        const p = handling.finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= o.concurrency) await Promise.race(inflight);
      } else {
        await handling;
      }
    }
    await drain();
  }

  /** Re-creates a lost group and reports it; false when that failed too. */
  async #recreateGroup(error: unknown): Promise<boolean> {
    const o = this.#o;
    try {
      await this.#log.createGroup(o.stream, o.group);
    } catch {
      return false;
    }
    this.#counters.groupsRecreated++;
    o.onGroupLost({ stream: o.stream, group: o.group, error: _describe(error) });
    return true;
  }

  #readNew(signal: AbortSignal, blockMs: number): Promise<StreamMessage[]> {
    const o = this.#o;
    // Short blocking reads keep the reaction to the abort signal quick.
    const block = signal.aborted ? 0 : blockMs;
    return this.#log.readNew(o.stream, o.group, o.consumer, { count: o.batch, blockMs: block });
  }

  /**
   * Runs the handler on a batch and settles its outcome: "all" settled,
   * "left" some still pending, "stuck" none settled, "threw".
   */
  async #handle(
    batch: StreamMessage[],
    signal: AbortSignal,
  ): Promise<_Settled> {
    const o = this.#o;
    this.#counters.read += batch.length;
    this.#counters.batches++;
    let outcome: BatchOutcome;
    try {
      outcome = await this.#handler(batch, { signal });
    } catch (e) {
      this.#counters.handlerErrors++;
      this.#lastError = _describe(e);
      this.#lastErrorValue = e;
      return "threw";
    }
    const byId = new Map<string, StreamMessage>();
    for (const m of batch) byId.set(m.id, m);
    const toAck: string[] = [];
    const dead: { message: StreamMessage; error: Error }[] = [];
    const settled = new Set<string>();
    for (const id of outcome.done ?? []) {
      if (byId.has(id) && !settled.has(id)) {
        settled.add(id);
        toAck.push(id);
      }
    }
    for (const [id, error] of outcome.rejected ?? []) {
      const message = byId.get(id);
      if (message && !settled.has(id)) {
        settled.add(id);
        dead.push({ message, error });
      }
    }
    for (const [id, error] of outcome.failed ?? []) {
      const message = byId.get(id);
      if (!message || settled.has(id)) continue;
      settled.add(id);
      this.#counters.failed++;
      if (message.deliveries >= o.maxDeliveries) dead.push({ message, error });
    }
    // Acks and dead letters must land even when the signal has fired: retry
    // them without the signal for a short while.
    if (dead.length > 0) {
      await this.#retrying(null, () => this.#deadLetter(dead));
      this.#counters.deadLettered += dead.length;
    }
    if (toAck.length > 0) {
      await this.#retrying(null, () => this.#log.ack(o.stream, o.group, toAck));
      this.#counters.acked += toAck.length;
    }
    if (toAck.length + dead.length === batch.length) return "all";
    return toAck.length + dead.length > 0 ? "left" : "stuck";
  }

  async #deadLetter(dead: { message: StreamMessage; error: Error }[]): Promise<void> {
    const o = this.#o;
    const at = new Date().toISOString();
    const messages: Fields[] = dead.map(({ message, error }) => ({
      ...message.fields,
      [DEAD_LETTER_FIELDS.error]: _describe(error),
      [DEAD_LETTER_FIELDS.stream]: o.stream,
      [DEAD_LETTER_FIELDS.group]: o.group,
      [DEAD_LETTER_FIELDS.id]: message.id,
      [DEAD_LETTER_FIELDS.deliveries]: String(message.deliveries),
      [DEAD_LETTER_FIELDS.consumer]: o.consumer,
      [DEAD_LETTER_FIELDS.at]: at,
    }));
    // Appending twice (a crash between append and ack) only duplicates a dead
    // letter; acking first could lose the entry.
    await this.#log.append(o.deadLetterStream, messages);
    await this.#log.ack(o.stream, o.group, dead.map((d) => d.message.id));
  }

  /** Retries `op` with backoff until it succeeds or `signal` aborts (then rethrows). */
  async #retrying<T>(signal: AbortSignal | null, op: () => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await op();
      } catch (e) {
        if (signal?.aborted || (signal === null && attempt >= 8)) throw e;
        await this.#backoff(e, attempt, signal);
      }
    }
  }

  async #backoff(error: unknown, attempt: number, signal: AbortSignal | null): Promise<void> {
    const o = this.#o;
    let cap = Math.min(o.maxBackoffMs, o.backoffMs * 2 ** Math.min(attempt - 1, 20));
    // A full disk: retry every second or so, to resume soon once space returns.
    if (isStorageFull(error)) cap = Math.min(cap, 1000);
    const ms = Math.round(cap / 2 + Math.random() * cap / 2);
    if (error !== null) o.onError(error, { retryInMs: ms });
    await sleep(ms, signal);
  }
}

function _describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

type _Settled = "all" | "left" | "stuck" | "threw";

/** A backoff without an error to report. */
const _NO_ERROR = Symbol("no error");
