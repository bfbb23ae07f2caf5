/**
 * The log store port: the history of every container's lines, written in
 * batches by ingest and read back per container by train. Adapters:
 * {@linkcode InfluxLogStore} (InfluxDB over its v1 HTTP API) and the embedded
 * `SqliteLogStore` (the data dir's SQLite database).
 *
 * Writes are idempotent: writing an entry again (a replay after a crash)
 * leaves one copy, and distinct entries (container, stream, ts, seq) never
 * replace one another.
 *
 * @module
 */

import type { LogEntry } from "./log_entry.ts";

/** Options of {@linkcode LogStore.write}. */
export interface WriteOptions {
  /** Stops retrying; the write then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What became of a {@linkcode LogStore.write}. */
export interface WriteResult {
  /** Entries stored. */
  written: number;
  /**
   * Entries the store refused for good (e.g. a field the server cannot
   * parse), by index into the written array, with why. The others are stored.
   */
  rejected: Map<number, Error>;
}

/** Options of {@linkcode LogStore.history}. */
export interface HistoryOptions {
  /**
   * Earliest time, inclusive.
   * @default the beginning
   */
  from?: Date;
  /**
   * Latest time, exclusive.
   * @default now
   */
  to?: Date;
  /**
   * Most entries returned, the oldest first.
   * @default 100000
   */
  limit?: number;
  /** Stops the iteration; it then throws the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@linkcode LogStore.context}. */
export interface ContextOptions {
  /**
   * Most entries earlier than the moment (the closest ones).
   * @default 20
   */
  before?: number;
  /**
   * Most entries later than the moment (the closest ones).
   * @default 20
   */
  after?: number;
  /** Stops the reads; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The lines of a model key around one moment, each list oldest first. */
export interface LogContext {
  /** Up to `before` entries strictly earlier than the moment, the closest ones. */
  before: LogEntry[];
  /** The entries at exactly the moment (the line asked about, and any sharing its timestamp; at most 100). */
  at: LogEntry[];
  /** Up to `after` entries strictly later than the moment, the closest ones. */
  after: LogEntry[];
}

/** Most entries of {@linkcode LogContext.at} (lines sharing one timestamp). */
export const CONTEXT_AT_MAX = 100;
/** Largest `before` / `after` of {@linkcode LogStore.context}. */
export const CONTEXT_MAX = 1000;

/**
 * Checks and fills in {@linkcode ContextOptions}.
 *
 * @param options the options as given
 * @returns `before` and `after`, integers in 0..{@linkcode CONTEXT_MAX}
 * @throws {RangeError} naming the bad value
 */
export function contextCounts(options: ContextOptions = {}): { before: number; after: number } {
  const out = { before: options.before ?? 20, after: options.after ?? 20 };
  for (const [name, n] of Object.entries(out)) {
    if (!Number.isInteger(n) || n < 0 || n > CONTEXT_MAX) {
      throw new RangeError(
        `Cannot read context: ${name} ${n}; expected an integer 0..${CONTEXT_MAX}`,
      );
    }
  }
  return out;
}

/** Options of {@linkcode LogStore.search}. */
export interface SearchOptions {
  /**
   * Earliest time, inclusive.
   * @default the beginning
   */
  from?: Date;
  /**
   * Latest time, exclusive.
   * @default now
   */
  to?: Date;
  /**
   * Most entries returned, the newest first (1 to {@linkcode SEARCH_MAX}).
   * @default 100
   */
  limit?: number;
  /** Stops the search; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Largest `limit` of {@linkcode LogStore.search}. */
export const SEARCH_MAX = 1000;
/** Longest search text, in characters. */
export const SEARCH_MAX_CHARS = 200;

/**
 * Checks a search text and its limit.
 *
 * @param query the text searched for
 * @param options the options as given
 * @returns the limit to use
 * @throws {RangeError} naming the bad value
 */
export function searchLimit(query: string, options: SearchOptions = {}): number {
  if (query.length === 0 || query.length > SEARCH_MAX_CHARS) {
    throw new RangeError(
      `Cannot search: query of ${query.length} characters; expected 1..${SEARCH_MAX_CHARS}`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(query)) {
    throw new RangeError("Cannot search: the query has control characters; expected plain text");
  }
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > SEARCH_MAX) {
    throw new RangeError(`Cannot search: limit ${limit}; expected an integer 1..${SEARCH_MAX}`);
  }
  return limit;
}

/**
 * Whether a line contains the search text, as {@linkcode LogStore.search}
 * matches: a substring, ASCII letters in any case.
 *
 * @param line the line
 * @param query the search text
 * @returns true when it matches
 */
export function searchMatches(line: string, query: string): boolean {
  const fold = (t: string) => t.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  return fold(line).includes(fold(query));
}

/** A model key seen in the store, with its line count and the containers behind it. */
export interface ContainerCount {
  /** The model key (service key, or container name; see `modelKey`). */
  container: string;
  /** Entries since the time asked for. */
  count: number;
  /** Names of the containers whose entries those are, sorted. */
  containers?: string[];
}

/** Where the history of log lines is kept. */
export interface LogStore extends AsyncDisposable {
  /**
   * Makes the store ready (creates the database and retention policy when
   * missing, if allowed).
   */
  prepare(options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Stores entries; retries transient failures until done or aborted.
   * @returns how many were stored and which were refused for good
   */
  write(entries: readonly LogEntry[], options?: WriteOptions): Promise<WriteResult>;
  /**
   * One model key's entries in a time window (those of every container
   * behind the key, and the older entries stored under a container of that
   * name), oldest first, fetched page by
   * page as the caller iterates (never loaded whole). Lines come back
   * byte-exact: `raw` set when they are not valid UTF-8, `truncated` when they
   * were cut.
   */
  history(container: string, options?: HistoryOptions): AsyncIterable<LogEntry>;
  /**
   * One model key's entries around a moment (an anomaly's line): those
   * before it, at it and after it, same key semantics as `history`.
   *
   * @param key the model key
   * @param ts the moment, RFC 3339 with up to nanoseconds (a `LogEntry.ts`)
   * @throws {RangeError} when `ts` is not RFC 3339 or a count is out of range
   */
  context(key: string, ts: string, options?: ContextOptions): Promise<LogContext>;
  /**
   * One model key's entries whose line contains a text (a substring, ASCII
   * letters in any case; same key semantics as `history`), the newest first.
   * Lines stored as raw bytes (not valid UTF-8) are not searched, and on
   * InfluxDB a match across the boundary of a long line's stored parts is
   * missed.
   *
   * @param key the model key
   * @param query the text, 1 to {@linkcode SEARCH_MAX_CHARS} characters, no control characters
   * @throws {RangeError} when the query or limit is out of range
   */
  search(key: string, query: string, options?: SearchOptions): Promise<LogEntry[]>;
  /** Model keys with entries since a time, with their counts and containers, by key. */
  containers(options: { since: Date; signal?: AbortSignal }): Promise<ContainerCount[]>;
  /** True when the backing service answers. */
  ping(): Promise<boolean>;
}
