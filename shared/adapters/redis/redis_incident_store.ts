/**
 * The Redis adapter of the {@linkcode IncidentStore} port.
 *
 * Keys under a prefix: `<prefix>:i:<id>` (hash: `rev`, `json`),
 * `<prefix>:current:<service>` (the service's open incident id),
 * `<prefix>:opened` (sorted set: id by opening time),
 * `<prefix>:updated` (sorted set: id by last change) and
 * `<prefix>:svc:<service>` (sorted set: the service's ids by opening time).
 * A save is one Lua script: revision check, write, indexes, current pointer.
 *
 * On a Redis Cluster client the prefix is a hash tag (`{<prefix>}:i:<id>`,
 * ...): the script spans an incident and the global indexes, so every
 * incident key sits in one slot (incidents are few; one master holds them).
 * On a single Redis the keys keep the names above, so nothing moves on
 * upgrade; a cluster never held the untagged names (the script could not run
 * there).
 *
 * @module
 */

import type { Redis } from "ioredis";
import { isClusterClient } from "./redis_log_stream.ts";
import type { Incident, IncidentListOptions, IncidentStore } from "../../ports/incident_store.ts";

/** Options of {@linkcode RedisIncidentStore}. */
export interface RedisIncidentStoreOptions {
  /**
   * Prefix of every key.
   * @default "tailwise:incidents"
   */
  prefix?: string;
}

// KEYS: incident, current, opened, updated, svc. ARGV: id, expected, json, status, openedAt, updatedAt.
const _SAVE = `
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev ~= tonumber(ARGV[2]) then return 0 end
local cur = redis.call('GET', KEYS[2])
if rev == 0 and cur and cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rev', rev + 1, 'json', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
if ARGV[4] == 'open' then
  redis.call('SET', KEYS[2], ARGV[1])
elseif cur == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
`;

/** Incidents kept in Redis. */
export class RedisIncidentStore implements IncidentStore {
  #client: Redis;
  #prefix: string;

  /**
   * @param client An ioredis client (not closed by the store).
   * @param options Key prefix.
   */
  constructor(client: Redis, options: RedisIncidentStoreOptions = {}) {
    this.#client = client;
    const prefix = options.prefix ?? "tailwise:incidents";
    this.#prefix = isClusterClient(client) ? `{${prefix}}` : prefix;
  }

  #svc(service: string): string {
    return encodeURIComponent(service);
  }

  /** {@inheritDoc IncidentStore.get} */
  async get(id: string): Promise<Incident | null> {
    const [json, rev] = await this.#client.hmget(`${this.#prefix}:i:${id}`, "json", "rev");
    return json ? { ...JSON.parse(json), revision: Number(rev) } : null;
  }

  /** {@inheritDoc IncidentStore.current} */
  async current(service: string): Promise<Incident | null> {
    const id = await this.#client.get(`${this.#prefix}:current:${this.#svc(service)}`);
    return id ? await this.get(id) : null;
  }

  /** {@inheritDoc IncidentStore.list} */
  async list(options: IncidentListOptions = {}): Promise<Incident[]> {
    const limit = options.limit ?? 50;
    let ids: string[];
    if (options.since !== undefined) {
      ids = await this.#client.zrevrangebyscore(
        `${this.#prefix}:updated`,
        "+inf",
        options.since,
      );
    } else {
      const key = options.service !== undefined
        ? `${this.#prefix}:svc:${this.#svc(options.service)}`
        : `${this.#prefix}:opened`;
      const max = options.before !== undefined ? `(${options.before}` : "+inf";
      // Read more than asked when filtering by status.
      const take = options.status !== undefined ? Math.max(limit * 4, 200) : limit;
      ids = await this.#client.zrevrangebyscore(key, max, "-inf", "LIMIT", 0, take);
    }
    const out: Incident[] = [];
    if (ids.length === 0) return out;
    const pipe = this.#client.pipeline();
    for (const id of ids) pipe.hmget(`${this.#prefix}:i:${id}`, "json", "rev");
    const res = await pipe.exec();
    for (const [err, value] of res ?? []) {
      if (err) throw err;
      const [json, rev] = value as [string | null, string | null];
      if (!json) continue;
      const inc: Incident = { ...JSON.parse(json), revision: Number(rev) };
      if (options.service !== undefined && inc.service !== options.service) continue;
      if (options.status !== undefined && inc.status !== options.status) continue;
      if (options.before !== undefined && inc.openedAt >= options.before) continue;
      out.push(inc);
    }
    out.sort((a, b) => b.openedAt - a.openedAt || (a.id < b.id ? 1 : -1));
    return out.slice(0, limit);
  }

  /** {@inheritDoc IncidentStore.save} */
  async save(incident: Incident, expected: number): Promise<boolean> {
    const svc = this.#svc(incident.service);
    const { revision: _r, ...rest } = incident;
    const r = await this.#client.eval(
      _SAVE,
      5,
      `${this.#prefix}:i:${incident.id}`,
      `${this.#prefix}:current:${svc}`,
      `${this.#prefix}:opened`,
      `${this.#prefix}:updated`,
      `${this.#prefix}:svc:${svc}`,
      incident.id,
      expected,
      JSON.stringify(rest),
      incident.status,
      incident.openedAt,
      incident.updatedAt,
    );
    return r === 1;
  }

  /** Nothing to close: the client belongs to the caller. */
  async [Symbol.asyncDispose](): Promise<void> {}
}
