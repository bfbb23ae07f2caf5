/**
 * The consumer groups on the log stream, named once for every function, the
 * one-process start and the api's lag report, and the stream consumer
 * settings the consuming functions (ingest, score) share.
 *
 * @module
 */

import { configuredLogShards } from "../ports/log_shards.ts";
import { messagesForLines } from "../ports/log_entry.ts";
import type { Config } from "./config.ts";

/** The consumer group of the ingest function. */
export const INGEST_GROUP = "ingest";

/** The consumer group of the score function. */
export const SCORE_GROUP = "score";

/** The consumer groups whose lag the api's `/metrics` and health report. */
export const REPORTED_GROUPS: readonly string[] = [INGEST_GROUP, SCORE_GROUP];

/** The stream consumer settings of a consuming function (ingest, score). */
export interface ConsumerSettings {
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
   * Messages per read: the function's batch in lines (`INGEST_BATCH_LINES`,
   * `CONSUMER_BATCH`) over the lines a packed message holds (`messagesForLines`).
   */
  batch: number;
  /** How long one read waits (`CONSUMER_BLOCK_MS`). */
  blockMs: number;
  /** Idle time before pending entries are claimed (`CONSUMER_CLAIM_IDLE_MS`). */
  claimIdleMs: number;
  /** Deliveries before the dead letter (`CONSUMER_MAX_DELIVERIES`). */
  maxDeliveries: number;
}

/**
 * The stream consumer settings of a function in a group.
 *
 * @param config the settings
 * @param group its consumer group
 * @param options its batch in lines, and its consumer name (default `config.instance`)
 * @returns the settings
 */
export function consumerSettings(
  config: Config,
  group: string,
  options: { batchLines: number; consumer?: string | undefined },
): ConsumerSettings {
  return {
    stream: config.streams.logs,
    streams: configuredLogShards(config),
    group,
    consumer: options.consumer ?? config.instance,
    deadLetterStream: config.streams.deadLetter,
    batch: messagesForLines(options.batchLines),
    blockMs: config.consumer.blockMs,
    claimIdleMs: config.consumer.claimIdleMs,
    maxDeliveries: config.consumer.maxDeliveries,
  };
}
