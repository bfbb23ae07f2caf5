/**
 * Builds the configured alert sink: a {@linkcode WebhookAlertSink} when
 * `WEBHOOK_URL` is set, none otherwise (anomalies are still in the anomalies
 * stream and the api).
 *
 * @module
 */

import type { AlertSink } from "../ports/alert_sink.ts";
import type { Config } from "../runtime/config.ts";
import type { LogStream } from "../ports/log_stream.ts";
import type { Logger } from "../runtime/logger.ts";
import { WebhookAlertSink } from "./webhook/webhook_alert_sink.ts";

/**
 * Opens the alert sink the config asks for. Its position in the anomalies
 * stream is kept under `<ANOMALY_STREAM>:alerts:delivered`, so after a
 * restart it alerts on what it had not delivered.
 *
 * @param config the settings (`alerts`, `streams.anomalies`)
 * @param stream the log stream port holding the anomalies stream
 * @param log where delivery problems are logged (never the URL)
 * @returns the sink, or null when no webhook is configured; dispose it on shutdown
 */
export function openAlertSink(
  config: Config,
  stream: LogStream,
  log?: Logger,
): AlertSink | null {
  if (config.alerts.webhookUrl === null) return null;
  return new WebhookAlertSink({
    url: config.alerts.webhookUrl,
    format: config.alerts.webhookFormat,
    groupWindowMs: config.alerts.groupWindowMs,
    ratePerMinute: config.alerts.ratePerMinute,
    stream: {
      log: stream,
      name: config.streams.anomalies,
      cursorKey: `${config.streams.anomalies}:alerts:delivered`,
    },
    ...(log ? { log } : {}),
  });
}
