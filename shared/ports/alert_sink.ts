/**
 * The alert sink port: where anomalies go after score appended them to the
 * anomalies stream. A sink never blocks scoring and never holds the only copy
 * of an anomaly: the stream keeps every one, so a sink may fall behind, retry
 * and catch up. Adapter: `WebhookAlertSink` (JSON, or Slack-compatible);
 * `openAlertSink(config, stream)` builds the configured one.
 *
 * @module
 */

import type { Anomaly } from "./anomaly.ts";
import type { IncidentNotice } from "./incident_store.ts";

export type { Anomaly };

/** Counters of a sink, for health and metrics. */
export interface AlertSinkStats {
  /** Anomalies accepted by `send` and not yet handled. */
  queued: number;
  /** Alerts the receiver accepted. */
  delivered: number;
  /** Anomalies covered by delivered alerts (repeats and held-back ones included). */
  anomaliesDelivered: number;
  /** Deliveries that failed and were retried. */
  retries: number;
  /** Alerts the receiver refused for good (a 4xx other than 408 and 429). */
  rejected: number;
  /** Anomalies not alerted on yet because of the per-container rate limit. */
  rateLimited: number;
  /** Anomalies that did not fit the queue and are re-read from the stream (or, without one, counted in the next alert). */
  overflowed: number;
  /** The last delivery error, secrets removed; null after a success. */
  lastError: string | null;
}

/** Delivers alerts about anomalies. */
export interface AlertSink extends AsyncDisposable {
  /**
   * Hands anomalies to the sink and returns at once; delivery happens in the
   * background. Never rejects: a full queue or a failing receiver is handled
   * by the sink (and visible in {@linkcode AlertSink.stats}).
   *
   * @param anomalies anomalies as appended to the anomalies stream, with their ids
   * @returns once they are queued
   */
  send(anomalies: readonly Anomaly[]): Promise<void>;
  /**
   * Tells the sink that an incident opened, changed meaningfully or
   * resolved; returns at once, delivery happens in the background. With
   * incidents on, the functions tell sinks about incidents instead of
   * sending every anomaly.
   *
   * @param notices the incident notices, in order
   * @returns once they are queued
   */
  notify?(notices: readonly IncidentNotice[]): Promise<void>;
  /**
   * What the sink has done and what it still owes.
   *
   * @returns a snapshot of its counters
   */
  stats(): AlertSinkStats;
}
