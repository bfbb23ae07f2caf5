/**
 * The storage under a log stream or store is out of space. Adapters throw
 * {@linkcode StorageFullError} (the cause is the driver's error) after they
 * told the user once, in one line, what is wrong and what to do; whoever
 * retries keeps retrying quietly (loggers write such an error at debug
 * level) and soon, since nothing is wrong with the data.
 *
 * @module
 */

/** A write failed because the disk (or the store's memory) is full. */
export class StorageFullError extends Error {
  override name = "StorageFullError";
  /** Already told to the user: loggers write it at debug level. */
  readonly reported = true;
}

/**
 * True when `e` (or an error in its `cause` chain) is a {@linkcode StorageFullError}.
 *
 * @param e any thrown value
 * @returns whether a write failed for lack of space
 */
export function isStorageFull(e: unknown): boolean {
  for (let i = 0; i < 8 && e instanceof Error; i++) {
    if (e instanceof StorageFullError || e.name === "StorageFullError") return true;
    e = e.cause;
  }
  return false;
}
