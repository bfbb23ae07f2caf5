/**
 * The ingest function's builder: the shared stream consumer in group
 * `ingest` with the {@linkcode ingestBatch} handler, built the same way by
 * `deno task ingest` and by `deno task start`.
 *
 * @example
 * ```ts
 * import { buildIngest } from "./build.ts";
 * // const ingest = buildIngest(config, { stream, logStore }, { log });
 * // await ingest.run(signal);
 * ```
 *
 * @module
 */

import type { Config } from "../../shared/runtime/config.ts";
import { INGEST_GROUP } from "../../shared/runtime/consumer_groups.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { GROUP_LOST_MESSAGE } from "../../shared/runtime/stream_consumer.ts";
import { ShardedConsumer } from "../../shared/runtime/sharded_consumer.ts";
import { configuredLogShards } from "../../shared/ports/log_shards.ts";
import { messagesForLines } from "../../shared/ports/log_entry.ts";
import type { TailwiseFunction } from "../../shared/runtime/tailwise_function.ts";
import { ingestBatch } from "./ingest.ts";

/** The effective settings of ingest. */
export interface IngestSettings {
  /** The log stream (`LOG_STREAM`). */
  stream: string;
  /** Its shards, all read (`LOG_STREAM_SHARDS`; one: the stream itself). */
  streams: string[];
  /** Its consumer group. */
  group: string;
  /** Its consumer name in the group. */
  consumer: string;
  /** Where entries that failed too often go (`DEAD_LETTER_STREAM`). */
  deadLetterStream: string;
  /**
   * Messages per read: `INGEST_BATCH_LINES` over the lines a packed message
   * holds (see `messagesForLines`).
   */
  batch: number;
  /** Batches written at once (`INGEST_CONCURRENCY`). */
  concurrency: number;
  /** How long one read waits (`CONSUMER_BLOCK_MS`). */
  blockMs: number;
  /** Idle time before pending entries are claimed (`CONSUMER_CLAIM_IDLE_MS`). */
  claimIdleMs: number;
  /** Deliveries before the dead letter (`CONSUMER_MAX_DELIVERIES`). */
  maxDeliveries: number;
  /** How often the group's status is logged, in ms. */
  statusEveryMs: number;
}

/** The adapters ingest uses. */
export interface IngestAdapters {
  /** The log stream. */
  stream: LogStream;
  /** Where entries are written. */
  logStore: LogStore;
}

/** Options of {@linkcode buildIngest}. */
export interface BuildIngestOptions {
  /**
   * Where it logs.
   * @default createLogger("ingest")
   */
  log?: Logger;
  /**
   * Its consumer name in the group.
   * @default config.instance
   */
  consumer?: string;
}

/**
 * The settings ingest runs with under a config.
 *
 * @param config the settings
 * @param options the consumer name
 * @returns the effective settings
 */
export function ingestSettings(config: Config, options: BuildIngestOptions = {}): IngestSettings {
  return {
    stream: config.streams.logs,
    streams: configuredLogShards(config),
    group: INGEST_GROUP,
    consumer: options.consumer ?? config.instance,
    deadLetterStream: config.streams.deadLetter,
    batch: messagesForLines(config.ingest.batchLines),
    concurrency: config.ingest.concurrency,
    blockMs: config.consumer.blockMs,
    claimIdleMs: config.consumer.claimIdleMs,
    maxDeliveries: config.consumer.maxDeliveries,
    statusEveryMs: 30_000,
  };
}

/**
 * Builds ingest: prepares the log store, then consumes the log stream into
 * it, acking each entry once it is stored, until the signal aborts (the
 * batch in flight is finished or left pending, never acked unwritten).
 *
 * @param config the settings
 * @param adapters the log stream and the log store
 * @param options logger and consumer name
 * @returns the function
 */
export function buildIngest(
  config: Config,
  adapters: IngestAdapters,
  options: BuildIngestOptions = {},
): TailwiseFunction<IngestSettings> {
  const settings = ingestSettings(config, options);
  const log = options.log ?? createLogger("ingest", { level: config.logLevel });
  const { stream, logStore } = adapters;
  return {
    name: "ingest",
    settings,
    async run(signal) {
      try {
        await logStore.prepare({ signal });
      } catch (e) {
        if (signal.aborted) return;
        throw e;
      }
      // One consumer per shard, each creating its group.
      const consumer = new ShardedConsumer(
        stream,
        (batch, context) => ingestBatch(batch, { store: logStore }, context),
        settings.streams,
        {
          ...settings,
          onError: (error, { retryInMs }) => {
            log.error("batch not stored, nothing acked; retrying", { error, retryInMs });
          },
          onGroupLost: (lost) => log.warn(GROUP_LOST_MESSAGE, { ...lost }),
        },
      );
      const report = setInterval(async () => {
        try {
          log.info("status", { ...await consumer.status() });
        } catch (e) {
          log.warn("cannot read the group's status", { error: e });
        }
      }, settings.statusEveryMs);
      try {
        log.info("consuming", {
          streams: settings.streams,
          group: settings.group,
          consumer: settings.consumer,
        });
        await consumer.run(signal);
      } finally {
        clearInterval(report);
      }
      log.info("stopped", { ...consumer.counters });
    },
    close: () => Promise.resolve(),
  };
}
