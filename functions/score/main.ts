/**
 * The score function as a process: reads the config, builds the adapters and
 * binds the score handler to the shared stream consumer (group `score`) on
 * the log stream, until SIGTERM or SIGINT.
 *
 * `deno task score` (needs `REDIS_URL`; without it, `deno task start` runs
 * every function in one process).
 *
 * @module
 */

import { openAdapters } from "../../shared/adapters/open_adapters.ts";
import { loadConfigOrExit, redactConfig } from "../../shared/runtime/config.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { createTailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { logBadVersions, ModelCache } from "../../shared/runtime/model_cache.ts";
import { GROUP_LOST_MESSAGE, StreamConsumer } from "../../shared/runtime/stream_consumer.ts";
import { openAlertSink } from "../../shared/adapters/open_alert_sink.ts";
import { createScoreHandler } from "./score.ts";
import { RateTracker } from "./rate_tracker.ts";
import { IncidentManager } from "../../shared/runtime/incidents.ts";

/** The consumer group of the score function. */
export const SCORE_GROUP = "score";

if (import.meta.main) {
  const config = loadConfigOrExit();
  const log = createLogger("score", { level: config.logLevel });
  if (!config.redis.url) {
    log.error("score runs on its own only with REDIS_URL set; `deno task start` runs all in one");
    Deno.exit(2);
  }
  log.info("starting", { config: redactConfig(config) });
  await using adapters = await openAdapters(config, { name: `score-${config.instance}` });
  await using alerts = openAlertSink(config, adapters.stream, log);
  const metrics = createTailwiseMetrics();
  const models = new ModelCache(adapters.registry, {
    onBadVersion: logBadVersions(log),
  });
  const incidents = config.alerts.mode === "incident"
    ? new IncidentManager(adapters.incidents, { quietMs: config.alerts.incidentQuietMs })
    : null;
  const rates = new RateTracker(
    { store: adapters.rates, models, stream: adapters.stream, alerts, incidents, log },
    { anomalyStream: config.streams.anomalies },
  );
  const handler = createScoreHandler(
    {
      models,
      stream: adapters.stream,
      feedback: adapters.feedback,
      alerts,
      metrics,
      log,
      rates,
      incidents,
    },
    { anomalyStream: config.streams.anomalies, coldStart: config.score.coldStart },
  );
  await adapters.stream.createGroup(config.streams.logs, SCORE_GROUP);
  const consumer = new StreamConsumer(adapters.stream, handler, {
    stream: config.streams.logs,
    group: SCORE_GROUP,
    consumer: config.instance,
    deadLetterStream: config.streams.deadLetter,
    batch: config.consumer.batch,
    blockMs: config.consumer.blockMs,
    claimIdleMs: config.consumer.claimIdleMs,
    maxDeliveries: config.consumer.maxDeliveries,
    onError: (error, { retryInMs }) => log.warn("scoring failed; retrying", { error, retryInMs }),
    onGroupLost: (lost) => log.warn(GROUP_LOST_MESSAGE, { ...lost }),
  });
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => stop.abort());
  }
  log.info("scoring", { stream: config.streams.logs, group: SCORE_GROUP });
  await Promise.all([
    consumer.run(stop.signal),
    rates.run(stop.signal),
    incidents?.run(stop.signal, async (n) => {
      if (alerts?.notify) await alerts.notify(n);
    }),
  ]);
  log.info("stopped", { ...consumer.counters });
}
