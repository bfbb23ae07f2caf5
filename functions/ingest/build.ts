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
import {
  type ConsumerSettings,
  consumerSettings,
  INGEST_GROUP,
} from "../../shared/runtime/consumer_groups.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { GROUP_LOST_MESSAGE } from "../../shared/runtime/stream_consumer.ts";
import { ShardedConsumer } from "../../shared/runtime/sharded_consumer.ts";
import { prepareLogStore, type TailwiseFunction } from "../../shared/runtime/tailwise_function.ts";
import { ingestBatch } from "./ingest.ts";

/** The effective settings of ingest. */
export interface IngestSettings extends ConsumerSettings {
  /** Batches written at once (`INGEST_CONCURRENCY`). */
  concurrency: number;
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
    ...consumerSettings(config, INGEST_GROUP, {
      batchLines: config.ingest.batchLines,
      consumer: options.consumer,
    }),
    concurrency: config.ingest.concurrency,
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
      if (!await prepareLogStore(logStore, signal)) return;
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
