/**
 * The Redis adapter of the {@linkcode Lock} port: `SET NX PX` with a random
 * token, released only by its holder (compare-and-delete script).
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Lease, Lock } from "../../ports/lock.ts";

const _RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** Leases in Redis, safe across processes and hosts. */
export class RedisLock implements Lock {
  #client: Redis;
  #prefix: string;

  /**
   * @param client a connected ioredis client (not closed by this lock)
   * @param options key prefix
   * @param options.prefix @default "tailwise:lock:"
   */
  constructor(client: Redis, options: { prefix?: string } = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? "tailwise:lock:";
  }

  /** {@inheritDoc Lock.tryAcquire} */
  async tryAcquire(name: string, ttlMs: number): Promise<Lease | null> {
    const key = this.#prefix + name;
    const token = crypto.randomUUID();
    const ok = await this.#client.set(key, token, "PX", ttlMs, "NX");
    if (ok !== "OK") return null;
    const release = async () => {
      await this.#client.eval(_RELEASE, 1, key, token);
    };
    return { name, release, [Symbol.asyncDispose]: release };
  }
}
