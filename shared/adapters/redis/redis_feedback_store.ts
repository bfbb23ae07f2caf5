/**
 * The Redis adapter of the {@linkcode FeedbackStore} port.
 *
 * Per container (its name URI-encoded in a Redis Cluster hash tag, so one
 * container's keys share a slot), under a prefix:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `<prefix>:{<container>}:items` | hash | anomaly id → feedback as JSON |
 * | `<prefix>:{<container>}:order` | sorted set | anomaly id by time, to drop the oldest past the cap |
 * | `<prefix>:{<container>}:suppress` | hash | template id → suppressed until, ms |
 *
 * A record is one Lua script over the container's slot, so it is atomic.
 *
 * Upgrade: before the hash tags the keys were `<prefix>:<container>:<kind>`
 * (a single Redis only). On a client that is not a Cluster, the first touch
 * of a container in a process moves its old keys to the new names in one
 * script, when none of the new ones exists yet.
 *
 * @module
 */

import type { Redis } from "ioredis";
import {
  DEFAULT_MAX_FEEDBACK_PER_CONTAINER,
  DEFAULT_SUPPRESS_MS,
  type Feedback,
  type FeedbackListOptions,
  type FeedbackStore,
  type FeedbackStoreOptions,
  validateFeedback,
} from "../../ports/feedback_store.ts";
import {
  createRedisClient,
  isClusterClient,
  pingRedis,
  type RedisConnectOptions,
} from "./redis_log_stream.ts";
import { KeyLayoutUpgrade } from "./key_layout_upgrade.ts";

/** Options of {@linkcode RedisFeedbackStore}. */
export interface RedisFeedbackStoreOptions extends FeedbackStoreOptions {
  /**
   * Prefix of every key.
   * @default "tailwise:feedback"
   */
  prefix?: string;
  /**
   * Move a container's keys of the layout before hash tags
   * (`<prefix>:<container>:<kind>`) to their new names on its first touch in
   * this process, when none of the new ones exists. Only a single Redis can
   * hold the old layout, so a Cluster client never looks.
   * @default true, false on a Cluster client
   */
  upgradeOldKeys?: boolean;
  /**
   * Whether this process may move old keys (it needs to run a script that
   * renames them). A reader without that right (score's Redis user) leaves
   * the move to a writer and reads whichever layout holds a container.
   * @default true
   */
  moveOldKeys?: boolean;
}

// KEYS: items, order, suppress. ARGV: anomalyId, json, at, label, templateId,
// until, maxPerContainer, now.
const _RECORD = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] == 'normal' then
  local cur = tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')
  if tonumber(ARGV[6]) > cur then redis.call('HSET', KEYS[3], ARGV[5], ARGV[6]) end
else
  redis.call('HDEL', KEYS[3], ARGV[5])
end
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= tonumber(ARGV[8]) then redis.call('HDEL', KEYS[3], all[i]) end
end
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[7])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  for _, id in ipairs(old) do redis.call('HDEL', KEYS[1], id) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
return 1
`;

// Single Redis only (keys of two layouts). KEYS: the old items, order,
// suppress, then the new ones. Moves each old key to its new name when no new
// key exists; returns the keys moved.
const _UPGRADE = `
for k = 4, 6 do
  if redis.call('EXISTS', KEYS[k]) == 1 then return 0 end
end
local moved = 0
for k = 1, 3 do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    redis.call('RENAME', KEYS[k], KEYS[k + 3])
    moved = moved + 1
  end
end
return moved
`;

const _KINDS = ["items", "order", "suppress"] as const;

/** Feedback kept in Redis. */
export class RedisFeedbackStore implements FeedbackStore {
  #client: Redis;
  #owned: boolean;
  #prefix: string;
  #suppressMs: number;
  #max: number;
  /** The move from the untagged key layout; null where none can exist (a cluster). */
  #layout: KeyLayoutUpgrade | null;

  /**
   * Uses an existing client (e.g. {@linkcode RedisLogStream.client}); the
   * store does not close it.
   *
   * @param client an ioredis client
   * @param options suppression time, cap and key prefix
   */
  constructor(client: Redis, options: RedisFeedbackStoreOptions = {}) {
    this.#client = client;
    this.#owned = false;
    this.#prefix = options.prefix ?? "tailwise:feedback";
    this.#suppressMs = options.suppressMs ?? DEFAULT_SUPPRESS_MS;
    this.#max = options.maxPerContainer ?? DEFAULT_MAX_FEEDBACK_PER_CONTAINER;
    const layouts = (container: string) => {
      const c = encodeURIComponent(container);
      return {
        old: _KINDS.map((k) => `${this.#prefix}:${c}:${k}`),
        now: _KINDS.map((k) => `${this.#prefix}:{${c}}:${k}`),
      };
    };
    this.#layout = (options.upgradeOldKeys ?? !isClusterClient(client))
      ? new KeyLayoutUpgrade(client, {
        mayMove: options.moveOldKeys ?? true,
        probe: layouts,
        move: (container) => {
          const { old, now } = layouts(container);
          return this.#client.eval(_UPGRADE, 6, ...old, ...now);
        },
      })
      : null;
    if (!Number.isFinite(this.#suppressMs) || this.#suppressMs < 0) {
      throw new RangeError(`Cannot use suppressMs ${this.#suppressMs}: expected a number >= 0`);
    }
    if (!Number.isInteger(this.#max) || this.#max < 1) {
      throw new RangeError(`Cannot use maxPerContainer ${this.#max}: expected an integer >= 1`);
    }
  }

  /**
   * Connects with its own client, closed with the store.
   *
   * @param url a redis:// or rediss:// URL
   * @param options store options and credentials
   * @returns the store
   */
  static connect(
    url: string,
    options: RedisFeedbackStoreOptions & RedisConnectOptions = {},
  ): RedisFeedbackStore {
    const store = new RedisFeedbackStore(
      createRedisClient(url, { ...options, name: options.name ?? "tailwise-feedback" }),
      options,
    );
    store.#owned = true;
    return store;
  }

  #key(container: string, kind: typeof _KINDS[number]): string {
    const c = encodeURIComponent(container);
    return this.#layout?.isOld(container)
      ? `${this.#prefix}:${c}:${kind}`
      : `${this.#prefix}:{${c}}:${kind}`;
  }

  /** Settles the container's key layout (see `KeyLayoutUpgrade`). */
  async #ready(container: string): Promise<void> {
    await this.#layout?.ready(container);
  }

  /** {@inheritDoc FeedbackStore.record} */
  async record(feedback: Feedback): Promise<void> {
    const f = validateFeedback(feedback);
    const json = JSON.stringify({
      anomalyId: f.anomalyId,
      container: f.container,
      templateId: f.templateId,
      line: f.line,
      label: f.label,
      at: f.at,
    });
    await this.#ready(f.container);
    await this.#client.eval(
      _RECORD,
      3,
      this.#key(f.container, "items"),
      this.#key(f.container, "order"),
      this.#key(f.container, "suppress"),
      f.anomalyId,
      json,
      String(f.at),
      f.label,
      f.templateId,
      String(f.at + this.#suppressMs),
      String(this.#max),
      String(Date.now()),
    );
  }

  /** {@inheritDoc FeedbackStore.get} */
  async get(container: string, anomalyId: string): Promise<Feedback | null> {
    await this.#ready(container);
    const json = await this.#client.hget(this.#key(container, "items"), anomalyId);
    return json === null ? null : JSON.parse(json) as Feedback;
  }

  /** {@inheritDoc FeedbackStore.isSuppressed} */
  async isSuppressed(container: string, templateId: string, now = Date.now()): Promise<boolean> {
    await this.#ready(container);
    const until = await this.#client.hget(this.#key(container, "suppress"), templateId);
    return until !== null && Number(until) > now;
  }

  /** {@inheritDoc FeedbackStore.suppressedTemplates} */
  async suppressedTemplates(container: string, now = Date.now()): Promise<Set<string>> {
    await this.#ready(container);
    const all = await this.#client.hgetall(this.#key(container, "suppress"));
    const out = new Set<string>();
    for (const id in all) if (Number(all[id]) > now) out.add(id);
    return out;
  }

  /** {@inheritDoc FeedbackStore.normalLines} */
  async normalLines(container: string, options: FeedbackListOptions = {}): Promise<string[]> {
    return (await this.#list(container, "normal", options)).map((f) => f.line);
  }

  /** {@inheritDoc FeedbackStore.confirmedAnomalies} */
  confirmedAnomalies(container: string, options: FeedbackListOptions = {}): Promise<Feedback[]> {
    return this.#list(container, "anomaly", options);
  }

  async #list(
    container: string,
    label: Feedback["label"],
    options: FeedbackListOptions,
  ): Promise<Feedback[]> {
    await this.#ready(container);
    const all = await this.#client.hgetall(this.#key(container, "items"));
    const items = Object.values(all)
      .map((json) => JSON.parse(json) as Feedback)
      .filter((f) => f.label === label)
      .sort((a, b) => b.at - a.at || (a.anomalyId < b.anomalyId ? 1 : -1));
    return items.slice(0, options.limit ?? Infinity);
  }

  /** {@inheritDoc FeedbackStore.ping} */
  ping(): Promise<boolean> {
    return pingRedis(this.#client);
  }

  /** Closes the client when the store opened it. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#owned) return;
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }
}
