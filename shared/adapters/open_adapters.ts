/**
 * Builds the adapters of every port from the config: the Redis and InfluxDB
 * ones when `REDIS_URL` / `INFLUX_URL` are set, the embedded ones (persisted
 * in `TAILWISE_DATA_DIR`) otherwise. A function's `main.ts` calls this once
 * and closes what it got on shutdown; nothing else opens connections.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Config } from "../runtime/config.ts";
import { EmbeddedFeedbackStore } from "./embedded/embedded_feedback_store.ts";
import { EmbeddedLogStream } from "./embedded/embedded_log_stream.ts";
import { EmbeddedModelRegistry } from "./embedded/embedded_model_registry.ts";
import type { FeedbackStore } from "../ports/feedback_store.ts";
import { type Lock, MemoryLock } from "../ports/lock.ts";
import type { LogStream } from "../ports/log_stream.ts";
import type { ModelRegistry } from "../ports/model_registry.ts";
import { RedisFeedbackStore } from "./redis/redis_feedback_store.ts";
import { RedisLock } from "./redis/redis_lock.ts";
import { createRedisClient, RedisLogStream } from "./redis/redis_log_stream.ts";
import { RedisModelRegistry } from "./redis/redis_model_registry.ts";
import { EmbeddedLogStore } from "./embedded/embedded_log_store.ts";
import { InfluxLogStore, type InfluxLogStoreOptions } from "./influx/influx_log_store.ts";
import type { LogStore } from "../ports/log_store.ts";

/** The ports' adapters for one process. */
export interface Adapters extends AsyncDisposable {
  /** `redis` or `embedded`. */
  mode: "redis" | "embedded";
  /** Log, anomalies and dead-letter streams. */
  stream: LogStream;
  /** Model versions. */
  registry: ModelRegistry;
  /** Feedback on anomalies. */
  feedback: FeedbackStore;
  /** Leases (one trainer per container). */
  lock: Lock;
  /** The history of lines; null unless asked for with `logStore: true`. */
  logStore: LogStore | null;
}

/**
 * Opens the configured log store: InfluxDB when `INFLUX_URL` is set, else the
 * embedded one under the data dir.
 *
 * @param config the settings
 * @param options what to tell about InfluxDB write retries
 * @returns the store (not yet prepared)
 */
export async function openLogStore(
  config: Config,
  options: Pick<InfluxLogStoreOptions, "onRetry"> = {},
): Promise<LogStore> {
  if (config.influx.url) {
    return new InfluxLogStore({
      url: config.influx.url,
      database: config.influx.database,
      retentionPolicy: config.influx.retentionPolicy,
      retentionMs: config.influx.retentionMs,
      username: config.influx.username,
      password: config.influx.password,
      token: config.influx.token,
      createDatabase: config.influx.createDatabase,
      batchLines: config.ingest.batchLines,
      batchBytes: config.ingest.batchBytes,
      maxLineBytes: Math.max(config.collect.maxLineBytes, 64_000),
      ...options,
    });
  }
  return await EmbeddedLogStore.open(config.dataDir, { retentionMs: config.influx.retentionMs });
}

/**
 * Opens the adapters the config selects.
 *
 * @param config the settings
 * @param options a name for the Redis connections (`CLIENT LIST`), and
 *   whether this function needs the log store
 * @param options.name @default "tailwise"
 * @param options.logStore @default false
 * @returns the adapters; dispose them to close every connection and file
 */
export async function openAdapters(
  config: Config,
  options: { name?: string; logStore?: boolean } = {},
): Promise<Adapters> {
  const name = options.name ?? "tailwise";
  const logStore = options.logStore ? await openLogStore(config) : null;
  if (config.redis.url) {
    const auth = {
      username: config.redis.username,
      password: config.redis.password,
      cluster: config.redis.cluster,
    };
    const stream = RedisLogStream.connect(config.redis.url, { ...auth, name });
    const client: Redis = stream.client;
    const registry = new RedisModelRegistry(
      createRedisClient(config.redis.url, {
        ...auth,
        name: `${name}-models`,
      }),
      { keepVersions: config.train.keepVersions, ownsClient: true },
    );
    const feedback = new RedisFeedbackStore(client, { suppressMs: config.api.suppressMs });
    return {
      mode: "redis",
      stream,
      registry,
      feedback,
      lock: new RedisLock(client),
      logStore,
      [Symbol.asyncDispose]: () => _closeAll(stream, [logStore, registry, feedback]),
    };
  }
  const stream = await EmbeddedLogStream.open(config.dataDir);
  const registry = await EmbeddedModelRegistry.open(config.dataDir, {
    keepVersions: config.train.keepVersions,
  });
  const feedback = await EmbeddedFeedbackStore.open(config.dataDir, {
    suppressMs: config.api.suppressMs,
  });
  return {
    mode: "embedded",
    stream,
    registry,
    feedback,
    lock: new MemoryLock(),
    logStore,
    [Symbol.asyncDispose]: () => _closeAll(stream, [logStore, registry, feedback]),
  };
}

/** Closes the other adapters together, then the stream (they may share its connection). */
async function _closeAll(
  stream: AsyncDisposable,
  others: readonly (AsyncDisposable | null | undefined)[],
): Promise<void> {
  await Promise.allSettled(others.map((a) => a?.[Symbol.asyncDispose]()));
  await stream[Symbol.asyncDispose]();
}
