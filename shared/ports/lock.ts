/**
 * The lock port: a named lease held by one process at a time, so two trainers
 * never train one container at once. `SqliteLock` serves the embedded mode
 * (across the processes sharing a data dir), `RedisLock` the distributed one,
 * {@linkcode MemoryLock} one process on its own.
 *
 * @module
 */

/** A held lease; release it when done. */
export interface Lease extends AsyncDisposable {
  /** The lock's name. */
  readonly name: string;
  /** Gives the lock up (only if this lease still holds it). */
  release(): Promise<void>;
}

/** Named leases with a time limit. */
export interface Lock {
  /**
   * Takes the lock if free.
   * @returns the lease, or null when someone else holds it
   */
  tryAcquire(name: string, ttlMs: number): Promise<Lease | null>;
}

/** An in-process {@linkcode Lock} for the embedded mode. */
export class MemoryLock implements Lock {
  #held = new Map<string, { token: number; until: number }>();
  #next = 1;

  /** {@inheritDoc Lock.tryAcquire} */
  tryAcquire(name: string, ttlMs: number): Promise<Lease | null> {
    const now = Date.now();
    const cur = this.#held.get(name);
    if (cur && cur.until > now) return Promise.resolve(null);
    const token = this.#next++;
    this.#held.set(name, { token, until: now + ttlMs });
    const release = () => {
      if (this.#held.get(name)?.token === token) this.#held.delete(name);
      return Promise.resolve();
    };
    return Promise.resolve({ name, release, [Symbol.asyncDispose]: release });
  }
}
