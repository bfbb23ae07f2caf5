/**
 * The rate store port: lines counted per service, window and template, shared
 * by every score replica, so counts survive a replica's restart and two
 * replicas add to the same windows instead of each keeping half. It also
 * hands out each window's close exactly once (one replica judges it) and
 * remembers which services are active.
 *
 * Adapters: `RedisRateStore` (a hash per service and window, `HINCRBY` in one
 * Lua script per batch, with a TTL) and `EmbeddedRateStore` (memory, saved to
 * the data dir); both pass `tests/shared/ports/rate_store_conformance.ts`.
 *
 * @module
 */

/** What a batch counted for one service in one window. */
export interface RateIncrement {
  /** The service (model key). */
  service: string;
  /** The window's start (ms since the epoch). */
  window: number;
  /** Lines in total. */
  total: number;
  /** Lines per template id. */
  templates: ReadonlyMap<string, number>;
}

/** The counts of one window as stored. */
export interface StoredWindow {
  /** The window's start (ms since the epoch). */
  window: number;
  /** Lines in total. */
  total: number;
  /** Lines per template id. */
  templates: Map<string, number>;
}

/** The rate store. */
export interface RateStore extends AsyncDisposable {
  /**
   * Add a batch's counts. With a `batchId`, a second call with the same id
   * (a batch delivered again after a crash) adds nothing.
   *
   * @param increments The counts.
   * @param options `batchId` for idempotence.
   * @returns Whether the counts were added (false for a repeated batch).
   */
  add(increments: readonly RateIncrement[], options?: { batchId?: string }): Promise<boolean>;
  /**
   * The counts of a service's windows `from` to `to` (inclusive starts, step
   * `windowMs`), in order; a window nobody counted has zero lines.
   */
  read(service: string, from: number, to: number, windowMs: number): Promise<StoredWindow[]>;
  /**
   * Claim the close of a service's window: true for exactly one caller,
   * whichever replica asks first.
   */
  claim(service: string, window: number): Promise<boolean>;
  /** Services that counted a line since `since` (ms since the epoch), with their last time. */
  services(since: number): Promise<Map<string, number>>;
}

/** How long counts are kept, in ms (they only serve the live monitor). */
export const RATE_COUNT_TTL_MS = 6 * 3_600_000;
