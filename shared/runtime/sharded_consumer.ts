/**
 * A consumer of every shard of the log stream: one {@linkcode StreamConsumer}
 * per shard stream, all in the same group under the same consumer name, run
 * side by side. Each replica of ingest or score runs one; the consumer groups
 * spread each shard's entries over the replicas reading it, and a dead
 * replica's pending entries are claimed by the others shard by shard. With
 * one shard it is a plain {@linkcode StreamConsumer}.
 *
 * @example
 * ```ts
 * const consumer = new ShardedConsumer(log, handler, configuredLogShards(config), {
 *   group: "ingest", consumer: config.instance, deadLetterStream: "tailwise:dead",
 * });
 * await consumer.run(signal);
 * ```
 *
 * @module
 */

import type { LogStream } from "../ports/log_stream.ts";
import {
  type BatchHandler,
  type ConsumerCounters,
  type ConsumerStatus,
  StreamConsumer,
  type StreamConsumerOptions,
  zeroCounters,
} from "./stream_consumer.ts";

/** Consumes every shard stream in one group. */
export class ShardedConsumer {
  #consumers: StreamConsumer[];

  /**
   * @param log the stream adapter
   * @param handler what to do with each batch (batches never mix shards)
   * @param streams the shard streams (at least one)
   * @param options as for {@linkcode StreamConsumer}, without `stream`
   * @throws {RangeError} when `streams` is empty or an option is out of range
   */
  constructor(
    log: LogStream,
    handler: BatchHandler,
    streams: readonly string[],
    options: Omit<StreamConsumerOptions, "stream">,
  ) {
    if (streams.length === 0) {
      throw new RangeError("Cannot consume no stream: expected at least one shard stream");
    }
    this.#consumers = streams.map((stream) =>
      new StreamConsumer(log, handler, { ...options, stream })
    );
  }

  /** The per-shard consumers, shard 0 first. */
  get consumers(): readonly StreamConsumer[] {
    return this.#consumers;
  }

  /** The counters summed over the shards. */
  get counters(): ConsumerCounters {
    const sum = zeroCounters();
    for (const c of this.#consumers) {
      const k = c.counters;
      for (const key of Object.keys(sum) as (keyof ConsumerCounters)[]) sum[key] += k[key];
    }
    return sum;
  }

  /**
   * The counters and the groups' pending and lag, summed over the shards
   * (lag null when a shard cannot tell).
   *
   * @returns counters and group state
   */
  async status(): Promise<ConsumerStatus> {
    const all = await Promise.all(this.#consumers.map((c) => c.status()));
    const status: ConsumerStatus = { ...this.counters, pending: 0, lag: 0, lastError: null };
    for (const s of all) {
      status.pending += s.pending;
      status.lag = status.lag === null || s.lag === null ? null : status.lag + s.lag;
      status.lastError ??= s.lastError;
    }
    return status;
  }

  /**
   * Runs every shard's consumer until `signal` aborts.
   *
   * @param signal stops them
   * @returns when all stopped
   */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all(this.#consumers.map((c) => c.run(signal)));
  }
}
