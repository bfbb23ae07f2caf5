/**
 * The Redis adapter of the {@linkcode FeedbackStore} port.
 *
 * Per container (its name URI-encoded in the keys), under a prefix:
 * `<prefix>:<container>:items` (hash: anomaly id → feedback as JSON),
 * `<prefix>:<container>:order` (sorted set: anomaly id by time, to drop the
 * oldest past the cap) and `<prefix>:<container>:suppress` (hash: template id
 * → suppressed until, ms). A record is one Lua script, so it is atomic.
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
import { createRedisClient, pingRedis, type RedisConnectOptions } from "./redis_log_stream.ts";

/** Options of {@linkcode RedisFeedbackStore}. */
export interface RedisFeedbackStoreOptions extends FeedbackStoreOptions {
  /**
   * Prefix of every key.
   * @default "tailwise:feedback"
   */
  prefix?: string;
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

/** Feedback kept in Redis. */
export class RedisFeedbackStore implements FeedbackStore {
  #client: Redis;
  #owned: boolean;
  #prefix: string;
  #suppressMs: number;
  #max: number;

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

  #key(container: string, kind: "items" | "order" | "suppress"): string {
    return `${this.#prefix}:${encodeURIComponent(container)}:${kind}`;
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
    const json = await this.#client.hget(this.#key(container, "items"), anomalyId);
    return json === null ? null : JSON.parse(json) as Feedback;
  }

  /** {@inheritDoc FeedbackStore.isSuppressed} */
  async isSuppressed(container: string, templateId: string, now = Date.now()): Promise<boolean> {
    const until = await this.#client.hget(this.#key(container, "suppress"), templateId);
    return until !== null && Number(until) > now;
  }

  /** {@inheritDoc FeedbackStore.suppressedTemplates} */
  async suppressedTemplates(container: string, now = Date.now()): Promise<Set<string>> {
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
