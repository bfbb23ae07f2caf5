/**
 * Builds the adapters of every port from the config: the Redis and InfluxDB
 * ones when `REDIS_URL` / `INFLUX_URL` are set, the embedded ones otherwise:
 * one SQLite database, `<TAILWISE_DATA_DIR>/tailwise.db`, opened once per
 * process by its owner (the data-dir lock) and shared by the embedded
 * stream, history, registry and feedback. A function's `main.ts` calls this
 * once and closes what it got on shutdown; nothing else opens connections.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Config } from "../runtime/config.ts";
import { SqliteDatabase } from "./sqlite/sqlite_database.ts";
import { SqliteFeedbackStore } from "./sqlite/sqlite_feedback_store.ts";
import { SqliteLock } from "./sqlite/sqlite_lock.ts";
import { SqliteLogStream } from "./sqlite/sqlite_log_stream.ts";
import { SqliteLogStore } from "./sqlite/sqlite_log_store.ts";
import { SqliteModelRegistry } from "./sqlite/sqlite_model_registry.ts";
import type { FeedbackStore } from "../ports/feedback_store.ts";
import type { Lock } from "../ports/lock.ts";
import type { LogStream } from "../ports/log_stream.ts";
import type { ModelRegistry } from "../ports/model_registry.ts";
import { RedisFeedbackStore } from "./redis/redis_feedback_store.ts";
import { RedisLock } from "./redis/redis_lock.ts";
import { createRedisClient, RedisLogStream } from "./redis/redis_log_stream.ts";
import { RedisModelRegistry } from "./redis/redis_model_registry.ts";
import { InfluxLogStore, type InfluxLogStoreOptions } from "./influx/influx_log_store.ts";
import type { LogStore } from "../ports/log_store.ts";
import type { RateStore } from "../ports/rate_store.ts";
import { RedisRateStore } from "./redis/redis_rate_store.ts";
import { SqliteRateStore } from "./sqlite/sqlite_rate_store.ts";
import type { IncidentStore } from "../ports/incident_store.ts";
import { RedisIncidentStore } from "./redis/redis_incident_store.ts";
import { SqliteIncidentStore } from "./sqlite/sqlite_incident_store.ts";

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
  /** Lines counted per service, window and template (the live rate models). */
  rates: RateStore;
  /** Incidents (anomalies of one service close in time). */
  incidents: IncidentStore;
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
  return await SqliteLogStore.open(config.dataDir, { retentionMs: config.influx.retentionMs });
}

/**
 * Opens the adapters the config selects.
 *
 * @param config the settings
 * @param options a name for the Redis connections (`CLIENT LIST`), and
 *   whether this function needs the log store
 * @param options.name @default "tailwise"
 * @param options.logStore @default false
 * @param options.onDiskFull embedded: told once when the data dir's disk fills (with the line to
 *   show) and when space returns; by default both lines go to stderr
 * @returns the adapters; dispose them to close every connection and file
 * @throws {DataDirLockedError} embedded, when another process owns the data dir
 * @throws {DataDirError} embedded, when an old-format data dir cannot be migrated
 */
export async function openAdapters(
  config: Config,
  options: {
    name?: string;
    logStore?: boolean;
    onDiskFull?: (full: boolean, message: string) => void;
    /**
     * Stores this process only reads (its Redis user may not write them):
     * it leaves moving their keys of an older layout to a writer.
     */
    readOnly?: readonly ("registry" | "feedback")[];
  } = {},
): Promise<Adapters> {
  const name = options.name ?? "tailwise";
  if (config.redis.url) {
    const logStore = options.logStore ? await openLogStore(config) : null;
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
      {
        keepVersions: config.train.keepVersions,
        ownsClient: true,
        moveOldKeys: !options.readOnly?.includes("registry"),
      },
    );
    const feedback = new RedisFeedbackStore(client, {
      suppressMs: config.api.suppressMs,
      moveOldKeys: !options.readOnly?.includes("feedback"),
    });
    return {
      mode: "redis",
      stream,
      registry,
      feedback,
      lock: new RedisLock(client),
      logStore,
      rates: new RedisRateStore(client),
      incidents: new RedisIncidentStore(client),
      [Symbol.asyncDispose]: () => _closeAll(stream, [logStore, registry, feedback]),
    };
  }
  const db = await SqliteDatabase.open(config.dataDir, {
    owner: true,
    // Without a handler (collect, api on their own): the same one line on stderr.
    onDiskFull: options.onDiskFull ?? ((_full, message) => console.error(`tailwise: ${message}`)),
  });
  try {
    const logStore = options.logStore
      ? (config.influx.url
        ? await openLogStore(config)
        : new SqliteLogStore(db, { retentionMs: config.influx.retentionMs }))
      : null;
    const stream = new SqliteLogStream(db);
    const registry = new SqliteModelRegistry(db, { keepVersions: config.train.keepVersions });
    const feedback = new SqliteFeedbackStore(db, { suppressMs: config.api.suppressMs });
    const rates = new SqliteRateStore(db);
    const incidents = new SqliteIncidentStore(db);
    return {
      mode: "embedded",
      stream,
      registry,
      feedback,
      lock: new SqliteLock(db),
      logStore,
      rates,
      incidents,
      [Symbol.asyncDispose]: async () => {
        try {
          await _closeAll(stream, [logStore, registry, feedback, rates, incidents]);
        } finally {
          db.close();
        }
      },
    };
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Closes the other adapters together, then the stream (they may share its connection). */
async function _closeAll(
  stream: AsyncDisposable,
  others: readonly (AsyncDisposable | null | undefined)[],
): Promise<void> {
  await Promise.allSettled(others.map((a) => a?.[Symbol.asyncDispose]()));
  await stream[Symbol.asyncDispose]();
}
