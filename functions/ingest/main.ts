/**
 * `deno task ingest`: reads log entries from the log stream in the consumer
 * group `ingest` and writes them to InfluxDB, acking each entry once it is
 * stored. Needs `REDIS_URL` and `INFLUX_URL` (the embedded default runs all
 * functions in one process through `deno task start`). SIGTERM and SIGINT
 * stop it cleanly: the batch in flight is finished or left pending, never
 * acked unwritten.
 *
 * Logs are JSON lines on stderr; secrets never appear in them.
 *
 * @module
 */

import { messagesForLines } from "../../shared/ports/log_entry.ts";
import { ConfigError, loadConfig, redactConfig } from "../../shared/runtime/config.ts";
import { openLogStore } from "../../shared/adapters/open_adapters.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { GROUP_LOST_MESSAGE } from "../../shared/runtime/stream_consumer.ts";
import { ShardedConsumer } from "../../shared/runtime/sharded_consumer.ts";
import { configuredLogShards } from "../../shared/ports/log_shards.ts";
import { ingestBatch } from "./ingest.ts";

/** The consumer group of ingest. */
export const INGEST_GROUP = "ingest";

function _log(level: string, msg: string, extra: Record<string, unknown> = {}): void {
  console.error(
    JSON.stringify({ time: new Date().toISOString(), level, fn: "ingest", msg, ...extra }),
  );
}

function _message(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

async function _main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      _log("error", e.message);
      return 2;
    }
    throw e;
  }
  if (config.redis.url === null || config.influx.url === null) {
    _log(
      "error",
      "ingest needs REDIS_URL and INFLUX_URL: expected both set (the embedded default runs through `deno task start`)",
    );
    return 2;
  }
  _log("info", "starting", { config: redactConfig(config) });

  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) Deno.exit(130);
    _log("info", "stopping: finishing the batch in flight");
    stop.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);

  await using stream = RedisLogStream.connect(config.redis.url, {
    username: config.redis.username,
    password: config.redis.password,
    name: `tailwise-ingest-${config.instance}`,
    cluster: config.redis.cluster,
  });
  await using store = await openLogStore(config, {
    onRetry: (e, { attempt, delayMs }) => {
      if (attempt === 1 || attempt % 10 === 0) {
        _log("warn", "InfluxDB write failed, retrying", { error: _message(e), attempt, delayMs });
      }
    },
  });
  try {
    await store.prepare({ signal: stop.signal });
  } catch (e) {
    if (stop.signal.aborted) return 0;
    _log("error", "cannot prepare InfluxDB", { error: _message(e) });
    return 1;
  }

  const streams = configuredLogShards(config);
  const consumer = new ShardedConsumer(
    stream,
    (batch, context) => ingestBatch(batch, { store }, context),
    streams,
    {
      group: INGEST_GROUP,
      consumer: config.instance,
      deadLetterStream: config.streams.deadLetter,
      batch: messagesForLines(config.ingest.batchLines),
      concurrency: config.ingest.concurrency,
      blockMs: config.consumer.blockMs,
      claimIdleMs: config.consumer.claimIdleMs,
      maxDeliveries: config.consumer.maxDeliveries,
      onError: (e, { retryInMs }) => {
        _log("error", "batch not stored, nothing acked; retrying", {
          error: _message(e),
          retryInMs,
        });
      },
      onGroupLost: (lost) => {
        _log("warn", GROUP_LOST_MESSAGE, { ...lost });
      },
    },
  );
  const report = setInterval(async () => {
    try {
      _log("info", "status", { ...await consumer.status() });
    } catch (e) {
      _log("warn", "cannot read the group's status", { error: _message(e) });
    }
  }, 30_000);
  try {
    _log("info", "consuming", {
      streams,
      group: INGEST_GROUP,
      consumer: config.instance,
    });
    await consumer.run(stop.signal);
  } finally {
    clearInterval(report);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  _log("info", "stopped", { ...consumer.counters });
  return 0;
}

if (import.meta.main) {
  Deno.exit(await _main());
}
