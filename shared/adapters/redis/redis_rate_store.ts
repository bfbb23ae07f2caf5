/**
 * The Redis adapter of the {@linkcode RateStore} port.
 *
 * Keys (the service URI-encoded in a hash tag, so one service's keys share a
 * Cluster slot): `<prefix>:{<service>}:<window>` (hash: `_` → lines in
 * total, template id → lines), `<prefix>:{<service>}:batch:<id>` (a batch
 * already counted), `<prefix>:{<service>}:closed:<window>` (the window's
 * close was claimed), all with a TTL; `<prefix>:services` (sorted set:
 * service by last time counted). One Lua script per service and batch adds
 * the counts atomically, after checking the batch id; nothing is pipelined
 * across services, so it runs on a Redis Cluster client too.
 *
 * @module
 */

import type { Redis } from "ioredis";
import {
  RATE_COUNT_TTL_MS,
  type RateIncrement,
  type RateStore,
  type StoredWindow,
} from "../../ports/rate_store.ts";

/** Options of {@linkcode RedisRateStore}. */
export interface RedisRateStoreOptions {
  /**
   * Prefix of every key.
   * @default "tailwise:rates"
   */
  prefix?: string;
  /**
   * How long counts and claims are kept (ms).
   * @default RATE_COUNT_TTL_MS (6 hours)
   */
  ttlMs?: number;
}

// KEYS[1]: batch key (ignored when ARGV[1] == '0'); KEYS[2..]: window hashes.
// ARGV: useBatch, ttlMs, then per window hash: n, field1, count1, ... fieldN, countN.
const _ADD = `
if ARGV[1] == '1' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return 0 end
end
local a = 3
for k = 2, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('PEXPIRE', KEYS[k], ARGV[2])
end
return 1
`;

/** Rate counts kept in Redis. */
export class RedisRateStore implements RateStore {
  #client: Redis;
  #prefix: string;
  #ttlMs: number;

  /**
   * @param client An ioredis client (not closed by the store).
   * @param options Key prefix and TTL.
   */
  constructor(client: Redis, options: RedisRateStoreOptions = {}) {
    this.#client = client;
    this.#prefix = options.prefix ?? "tailwise:rates";
    this.#ttlMs = options.ttlMs ?? RATE_COUNT_TTL_MS;
    if (!Number.isInteger(this.#ttlMs) || this.#ttlMs < 1000) {
      throw new RangeError(`Cannot use ttlMs ${this.#ttlMs}: expected an integer >= 1000`);
    }
  }

  #base(service: string): string {
    return `${this.#prefix}:{${encodeURIComponent(service)}}`;
  }

  /** {@inheritDoc RateStore.add} */
  async add(
    increments: readonly RateIncrement[],
    options: { batchId?: string } = {},
  ): Promise<boolean> {
    const byService = new Map<string, RateIncrement[]>();
    for (const inc of increments) {
      let list = byService.get(inc.service);
      if (list === undefined) byService.set(inc.service, list = []);
      list.push(inc);
    }
    if (byService.size === 0) return true;
    // One script per service (its keys share a slot), and no pipeline across
    // services: on a cluster their slots may sit on different nodes.
    const now = Date.now();
    const seen: (string | number)[] = [];
    const scripts: Promise<unknown>[] = [];
    for (const [service, list] of byService) {
      const base = this.#base(service);
      const keys = [
        options.batchId === undefined ? `${base}:batch:-` : `${base}:batch:${options.batchId}`,
      ];
      const argv: (string | number)[] = [options.batchId === undefined ? "0" : "1", this.#ttlMs];
      let last = 0;
      for (const inc of list) {
        keys.push(`${base}:${inc.window}`);
        argv.push(inc.templates.size + 1, "_", inc.total);
        for (const [id, n] of inc.templates) argv.push(id, n);
        if (inc.window > last) last = inc.window;
      }
      scripts.push(this.#client.eval(_ADD, keys.length, ...keys, ...argv));
      seen.push(Math.max(last, 0) || now, service);
    }
    const [added] = await Promise.all([
      Promise.all(scripts).then((res) => res.every((value) => value !== 0)),
      this.#client.zadd(`${this.#prefix}:services`, ...seen),
    ]);
    return added;
  }

  /** {@inheritDoc RateStore.read} */
  async read(service: string, from: number, to: number, windowMs: number): Promise<StoredWindow[]> {
    const base = this.#base(service);
    const starts: number[] = [];
    for (let w = from; w <= to; w += windowMs) starts.push(w);
    if (starts.length === 0) return [];
    const pipe = this.#client.pipeline();
    for (const w of starts) pipe.hgetall(`${base}:${w}`);
    const res = await pipe.exec();
    return starts.map((window, i) => {
      const [err, value] = res?.[i] ?? [null, {}];
      if (err) throw err;
      const hash = (value ?? {}) as Record<string, string>;
      const templates = new Map<string, number>();
      let total = 0;
      for (const [k, v] of Object.entries(hash)) {
        if (k === "_") total = Number(v);
        else templates.set(k, Number(v));
      }
      return { window, total, templates };
    });
  }

  /** {@inheritDoc RateStore.claim} */
  async claim(service: string, window: number): Promise<boolean> {
    const r = await this.#client.set(
      `${this.#base(service)}:closed:${window}`,
      "1",
      "PX",
      this.#ttlMs,
      "NX",
    );
    return r === "OK";
  }

  /** {@inheritDoc RateStore.services} */
  async services(since: number): Promise<Map<string, number>> {
    const key = `${this.#prefix}:services`;
    await this.#client.zremrangebyscore(key, "-inf", `(${since - this.#ttlMs}`);
    const flat = await this.#client.zrangebyscore(key, since, "+inf", "WITHSCORES");
    const out = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!, Number(flat[i + 1]));
    return out;
  }

  /** Nothing to close: the client belongs to the caller. */
  async [Symbol.asyncDispose](): Promise<void> {}
}
