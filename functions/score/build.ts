/**
 * The score function's builder: the shared stream consumer in group `score`
 * with the {@linkcode createScoreHandler} handler, its model cache and its
 * alert sink, its rate tracker and incident manager, built the same way by `deno task score` and by
 * `deno task start`.
 *
 * @example
 * ```ts
 * import { buildScore } from "./build.ts";
 * // const score = buildScore(config, { stream, registry, feedback }, { log });
 * // await score.run(signal);
 * ```
 *
 * @module
 */

import { openAlertSink } from "../../shared/adapters/open_alert_sink.ts";
import type { FeedbackStore } from "../../shared/ports/feedback_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import type { ModelRegistry } from "../../shared/ports/model_registry.ts";
import type { RateStore } from "../../shared/ports/rate_store.ts";
import type { Config } from "../../shared/runtime/config.ts";
import {
  type ConsumerSettings,
  consumerSettings,
  SCORE_GROUP,
} from "../../shared/runtime/consumer_groups.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { createTailwiseMetrics, type TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { logBadVersions, ModelCache } from "../../shared/runtime/model_cache.ts";
import { GROUP_LOST_MESSAGE } from "../../shared/runtime/stream_consumer.ts";
import { ShardedConsumer } from "../../shared/runtime/sharded_consumer.ts";
import type { TailwiseFunction } from "../../shared/runtime/tailwise_function.ts";
import { RateTracker } from "./rate_tracker.ts";
import type { IncidentStore } from "../../shared/ports/incident_store.ts";
import { IncidentManager } from "../../shared/runtime/incidents.ts";
import { createScoreHandler } from "./score.ts";

/** The effective settings of score. */
export interface ScoreSettings extends ConsumerSettings {
  /** Where anomalies go (`ANOMALY_STREAM`). */
  anomalyStream: string;
  /** What a container without a model alerts on (`COLD_START_ALERTS`). */
  coldStart: "severity" | "none";
  /** Whether anomalies are sent to a webhook (`WEBHOOK_URL`). */
  webhook: boolean;
}

/** The adapters score uses. */
export interface ScoreAdapters {
  /** The log stream and the anomalies stream. */
  stream: LogStream;
  /** The models. */
  registry: ModelRegistry;
  /** Suppressed templates. */
  feedback: FeedbackStore;
  /** Lines counted per service, window and template (the live rate models). */
  rates: RateStore;
  /** Incidents (used with `ALERT_MODE=incident`). */
  incidents?: IncidentStore;
}

/** Options of {@linkcode buildScore}. */
export interface BuildScoreOptions {
  /**
   * Where it logs.
   * @default createLogger("score")
   */
  log?: Logger;
  /**
   * The process's metrics.
   * @default createTailwiseMetrics()
   */
  metrics?: TailwiseMetrics;
  /**
   * Its consumer name in the group.
   * @default config.instance
   */
  consumer?: string;
}

/**
 * The settings score runs with under a config.
 *
 * @param config the settings
 * @param options the consumer name
 * @returns the effective settings
 */
export function scoreSettings(config: Config, options: BuildScoreOptions = {}): ScoreSettings {
  return {
    ...consumerSettings(config, SCORE_GROUP, {
      batchLines: config.consumer.batch,
      consumer: options.consumer,
    }),
    anomalyStream: config.streams.anomalies,
    coldStart: config.score.coldStart,
    webhook: config.alerts.webhookUrl !== null,
  };
}

/**
 * Builds score: consumes the log stream, scores each container's lines with
 * its current model and appends anomalies (then alerts), and closes the rate
 * windows of the live rate models, until the signal aborts. Opens the alert sink the config asks for; `close()` closes it.
 *
 * @param config the settings
 * @param adapters the streams, the model registry and the feedback store
 * @param options logger, metrics and consumer name
 * @returns the function
 */
export function buildScore(
  config: Config,
  adapters: ScoreAdapters,
  options: BuildScoreOptions = {},
): TailwiseFunction<ScoreSettings> {
  const settings = scoreSettings(config, options);
  const log = options.log ?? createLogger("score", { level: config.logLevel });
  const { stream, registry, feedback } = adapters;
  const alerts = openAlertSink(config, stream, log.child({ part: "alerts" }));
  const models = new ModelCache(registry, { onBadVersion: logBadVersions(log) });
  const incidents = config.alerts.mode === "incident" && adapters.incidents
    ? new IncidentManager(adapters.incidents, { quietMs: config.alerts.incidentQuietMs })
    : null;
  const rates = new RateTracker(
    { store: adapters.rates, models, stream, alerts, incidents, log: log.child({ part: "rates" }) },
    { anomalyStream: settings.anomalyStream },
  );
  const metrics = options.metrics ?? createTailwiseMetrics();
  const handler = createScoreHandler(
    { models, stream, feedback, alerts, metrics, log, rates, incidents },
    { anomalyStream: settings.anomalyStream, coldStart: settings.coldStart },
  );
  return {
    name: "score",
    settings,
    async run(signal) {
      // One consumer per shard, each creating its group.
      const consumer = new ShardedConsumer(stream, handler, settings.streams, {
        ...settings,
        onError: (error, { retryInMs }) =>
          log.warn("scoring failed; retrying", { error, retryInMs }),
        onGroupLost: (lost) => log.warn(GROUP_LOST_MESSAGE, { ...lost }),
      });
      log.info("scoring", { streams: settings.streams, group: settings.group });
      await Promise.all([
        consumer.run(signal),
        rates.run(signal),
        incidents?.run(signal, async (notices) => {
          if (alerts?.notify) await alerts.notify(notices);
        }),
      ]);
      log.info("stopped", { ...consumer.counters });
    },
    close: async () => {
      await alerts?.[Symbol.asyncDispose]();
    },
  };
}
