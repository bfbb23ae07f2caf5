/**
 * A wait that an abort signal cuts short, for loops that poll or back off and
 * must stop at once on shutdown.
 *
 * @module
 */

/**
 * Waits `ms` milliseconds, or less when `signal` aborts (then it resolves at
 * once, without an error: the caller checks `signal.aborted`).
 *
 * @param ms how long to wait
 * @param signal ends the wait early
 * @returns once the time passed or the signal aborted
 */
export function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
