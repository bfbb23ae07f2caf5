/**
 * The log stream port: append-only streams with consumer groups, as Redis
 * Streams provide them. Adapters: {@linkcode RedisLogStream} (real) and the
 * embedded `SqliteLogStream`; both pass `tests/shared/ports/log_stream_conformance.ts`.
 *
 * @module
 */

import type { Fields } from "./log_entry.ts";

export type { Fields };

/** One message read from a stream. */
export interface StreamMessage {
  /** The stream's id of the message (`<ms>-<seq>`). */
  id: string;
  /** Its fields. */
  fields: Fields;
  /** How often it has been delivered to a consumer of the group (1 on first read). */
  deliveries: number;
}

/** Options of {@linkcode LogStream.append}. */
export interface AppendOptions {
  /**
   * Trim the stream to about this many messages (approximate MAXLEN); 0 keeps all.
   * @default 0
   */
  maxLen?: number;
  /**
   * Keys set in the same atomic step as the append, e.g. a collector's
   * checkpoint: either the messages and the keys are both written, or neither.
   */
  state?: Record<string, string>;
  /**
   * Applies the append once and in order among the appends of one writer,
   * so a writer may pipeline appends and resend them after a lost reply.
   * `key` holds the last applied `n`: an append with an `n` not above it was
   * applied before and is skipped (it returns no ids); one that leaves a gap
   * fails with {@linkcode AppendOutOfOrderError} and writes nothing. When the
   * key is absent only `n` = 1 (a writer's first append) is applied; a larger
   * `n` fails with {@linkcode AppendOutOfOrderError} too, since the store lost
   * the writer's state (it restarted empty, or the key expired): the writer
   * must start a new sequence and re-send what the store no longer has. The
   * key expires `ttlMs` after the last append (default one day).
   */
  sequence?: { key: string; n: number; ttlMs?: number };
}

/**
 * Checks the sequence of an append (see {@linkcode AppendOptions.sequence}).
 *
 * @param sequence the option, if given
 * @throws {RangeError} when its number is not an integer > 0
 */
export function checkSequence(sequence: AppendOptions["sequence"]): void {
  if (sequence && !(Number.isSafeInteger(sequence.n) && sequence.n > 0)) {
    throw new RangeError(
      `Cannot append with sequence number ${sequence.n}: expected an integer > 0`,
    );
  }
}

/**
 * An append with a sequence number that leaves a gap after the last applied
 * one (`append 846 after 746`), or that is not the first of a sequence the
 * store does not know (`append 846 after none`).
 */
export class AppendOutOfOrderError extends Error {
  override name = "AppendOutOfOrderError";
}

/** Options of the group reads. */
export interface ReadOptions {
  /** Most messages returned. */
  count: number;
  /**
   * How long to wait for new messages, in ms; 0 returns at once.
   * @default 0
   */
  blockMs?: number;
}

/** The state of a consumer group. */
export interface GroupInfo {
  /** Messages delivered to the group and not acked yet. */
  pending: number;
  /** Messages not yet delivered to the group (null when the server cannot tell). */
  lag: number | null;
  /** Consumers known to the group. */
  consumers: number;
}

/** Append-only streams with consumer groups. */
export interface LogStream extends AsyncDisposable {
  /**
   * Appends messages in order, atomically with the optional state keys.
   * @returns the ids of the new messages
   */
  append(stream: string, messages: readonly Fields[], options?: AppendOptions): Promise<string[]>;
  /**
   * Appends each message only if its key was not used before (within `ttlMs`),
   * atomically per message: a replay of the same keys appends nothing.
   * @returns per item, the new message's id, or null when its key was seen
   */
  appendOnce(
    stream: string,
    items: readonly { key: string; fields: Fields }[],
    options?: { maxLen?: number; ttlMs?: number },
  ): Promise<(string | null)[]>;
  /** Reads a key written with {@linkcode AppendOptions.state}; null when absent. */
  getState(key: string): Promise<string | null>;
  /** Deletes state keys. */
  deleteState(keys: readonly string[]): Promise<void>;
  /**
   * Creates a consumer group (and the stream) if missing; new groups start at
   * the beginning of the stream.
   */
  createGroup(stream: string, group: string): Promise<void>;
  /** Reads messages never delivered to the group, marking them pending for `consumer`. */
  readNew(
    stream: string,
    group: string,
    consumer: string,
    options: ReadOptions,
  ): Promise<StreamMessage[]>;
  /** Reads the messages pending for `consumer` (delivered, not acked), oldest first. */
  readPending(
    stream: string,
    group: string,
    consumer: string,
    options: ReadOptions,
  ): Promise<StreamMessage[]>;
  /** Takes over messages that have been pending for another consumer at least `minIdleMs`. */
  claimIdle(
    stream: string,
    group: string,
    consumer: string,
    options: { minIdleMs: number; count: number },
  ): Promise<StreamMessage[]>;
  /** Acknowledges messages; returns how many were pending. */
  ack(stream: string, group: string, ids: readonly string[]): Promise<number>;
  /** Pending and lag of a group. */
  groupInfo(stream: string, group: string): Promise<GroupInfo>;
  /** Messages between two ids (inclusive; `-` and `+` are the ends), oldest first. */
  range(
    stream: string,
    options?: { start?: string; end?: string; count?: number; reverse?: boolean },
  ): Promise<StreamMessage[]>;
  /** Number of messages in the stream. */
  length(stream: string): Promise<number>;
  /** True when the backing service answers. */
  ping(): Promise<boolean>;
}
