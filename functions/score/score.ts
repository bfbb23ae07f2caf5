/**
 * The score function's logic: a {@linkcode BatchHandler} for the shared
 * stream consumer (group `score`). Per batch it decodes the entries, groups
 * them by model key, asks the model cache for each container's current model
 * (one cheap version read; the blob only when the version changed), scores
 * the lines, and appends the anomalies to the anomalies stream keyed by the
 * source line's id (`<message id>#<n>` for a packed message, see `lineId` in
 * shared/ports/log_entry.ts; key `{<anomaly stream>}:seen:<line id>`), so a
 * replay of the batch adds no duplicate. Then it hands
 * the new anomalies to the alert sink (which never blocks) and reports every
 * entry done, so the consumer acks them.
 *
 * A container without a model is `learning`; with `coldStart: "severity"` its
 * lines that carry a strong severity word (error, fatal, panic, exception...)
 * are raised meanwhile, with reason `severity` and model version 0.
 *
 * @module
 */

import { type Anomaly, anomalyToFields } from "../../shared/ports/anomaly.ts";
import type { AlertSink } from "../../shared/ports/alert_sink.ts";
import type { FeedbackStore } from "../../shared/ports/feedback_store.ts";
import {
  type LogEntry,
  type MessageLine,
  modelKey,
  unpackMessage,
} from "../../shared/ports/log_entry.ts";
import type { LogStream, StreamMessage } from "../../shared/ports/log_stream.ts";
import { keyOfStream } from "../../shared/ports/log_shards.ts";
import type { Logger } from "../../shared/runtime/logger.ts";
import type { TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import type { ModelCache } from "../../shared/runtime/model_cache.ts";
import { scoreLines } from "../../shared/scoring/score_lines.ts";
import type { BatchHandler, BatchOutcome } from "../../shared/runtime/stream_consumer.ts";
import type { RateGroup, RateTracker } from "./rate_tracker.ts";
import { alertOrRecord, type IncidentManager } from "../../shared/runtime/incidents.ts";

/**
 * A line appended to the stream more than this long after its timestamp is
 * not live: `tailwise_score_latency_seconds` leaves it out.
 */
export const LIVE_LINE_MS = 60_000;

/** What the score handler needs. */
export interface ScoreDeps {
  /** The current model per container. */
  models: ModelCache;
  /** Where anomalies are appended. */
  stream: LogStream;
  /** Suppressed templates per container (feedback `normal`). */
  feedback: FeedbackStore;
  /** Where alerts go, if anywhere. */
  alerts?: AlertSink | null;
  /** Counters and the latency histogram. */
  metrics?: TailwiseMetrics;
  /** Where problems are reported. */
  log?: Logger;
  /** Counts lines per window for the rate models, if rates are tracked. */
  rates?: RateTracker | null;
  /** Groups anomalies into incidents; the sink is then told about incidents. */
  incidents?: IncidentManager | null;
}

/** Options of {@linkcode createScoreHandler}. */
export interface ScoreOptions {
  /** The anomalies stream. */
  anomalyStream: string;
  /**
   * What a container without a model alerts on.
   * @default "severity"
   */
  coldStart?: "severity" | "none";
  /**
   * Approximate length the anomalies stream is trimmed to; 0 keeps all.
   * @default 100000
   */
  anomalyMaxLen?: number;
  /**
   * How long the replay key of a scored entry is kept, in ms.
   * @default 7 days
   */
  replayKeyTtlMs?: number;
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
}

/**
 * Creates the score function's batch handler.
 *
 * @param deps models, streams, feedback, alerts, metrics
 * @param options the anomalies stream and the cold-start policy
 * @returns the handler for a {@linkcode StreamConsumer}
 */
export function createScoreHandler(deps: ScoreDeps, options: ScoreOptions): BatchHandler {
  const now = options.now ?? Date.now;
  const maxLen = options.anomalyMaxLen ?? 100_000;
  const ttlMs = options.replayKeyTtlMs ?? 7 * 86_400_000;
  return async (batch: readonly StreamMessage[]): Promise<BatchOutcome> => {
    const rejected = new Map<string, Error>();
    const groups = new Map<string, { id: string; entry: LogEntry }[]>();
    const done: string[] = [];
    for (const msg of batch) {
      let lines: MessageLine[];
      try {
        lines = unpackMessage(msg.id, msg.fields);
      } catch (e) {
        rejected.set(msg.id, e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      // Every line of a message is scored in this call, or the call throws.
      done.push(msg.id);
      for (const line of lines) {
        const key = modelKey(line.entry);
        let group = groups.get(key);
        if (!group) groups.set(key, group = []);
        group.push(line);
      }
    }
    const found: Anomaly[] = [];
    // Every container's model and feedback lookups go out at once (one round
    // trip for the batch, not two per container); each scores when its answers are in.
    const all = [...groups];
    const results = await Promise.all(
      all.map(([container, items]) =>
        scoreLines(container, items.map((i) => i.entry.line), deps, {
          coldStart: options.coldStart,
          formerKeys: _formerKeys(container, items),
        })
      ),
    );
    const tsMs = _tsParser();
    const counts: RateGroup[] = [];
    for (let g = 0; g < all.length; g++) {
      const [container, items] = all[g]!;
      const scored = results[g]!;
      const counted = deps.rates
        ? { service: container, times: [] as number[], templateIds: [] as string[] }
        : null;
      if (counted) counts.push(counted);
      const at = now();
      for (let i = 0; i < items.length; i++) {
        const { id, entry } = items[i]!;
        const s = scored[i]!;
        const t = tsMs(entry.ts);
        // Latency of live lines only: a line appended long after its
        // timestamp (the demo's backdated history, a backlog read again)
        // says nothing about how fast scoring is.
        if (!(Number.parseInt(id, 10) - t > LIVE_LINE_MS)) {
          deps.metrics?.scoreLatency.observe(Math.max(0, at - t) / 1000);
        }
        if (counted) {
          counted.times.push(t);
          counted.templateIds.push(s.templateId);
        }
        if (!s.anomaly) continue;
        found.push({
          id: "",
          container,
          containerId: entry.containerId,
          containerName: entry.containerName,
          entryId: id,
          ts: entry.ts,
          line: entry.line,
          score: s.score,
          threshold: s.threshold,
          reasons: s.reasons,
          template: s.template,
          templateId: s.templateId,
          tokens: s.tokens,
          ...(s.explanation === undefined ? {} : { explanation: s.explanation }),
          modelVersion: s.modelVersion,
          scoredAt: at,
          ...(entry.image ? { version: entry.image } : {}),
        });
      }
      deps.metrics?.linesScored.inc({ container }, items.length);
    }
    // One round trip for the whole batch's counts, beside the anomalies' append.
    const counting = deps.rates && counts.length > 0
      ? deps.rates.countBatch(counts, `${batch[0]!.id}+${batch.length}`)
      : undefined;
    if (found.length > 0) {
      const ids = await deps.stream.appendOnce(
        options.anomalyStream,
        found.map((a) => ({
          // In the anomaly stream's slot, so the script runs on Redis Cluster too.
          key: keyOfStream(options.anomalyStream, `seen:${a.entryId}`),
          fields: anomalyToFields(a),
        })),
        { maxLen, ttlMs },
      );
      const fresh: Anomaly[] = [];
      ids.forEach((id, i) => {
        if (id === null) return;
        const a = found[i]!;
        a.id = id;
        fresh.push(a);
        deps.metrics?.anomalies.inc({ container: a.container });
      });
      // The sink queues and returns at once; it never rejects (the stream keeps every anomaly).
      await alertOrRecord(fresh, deps.incidents, deps.alerts);
    }
    await counting;
    return { done, rejected };
  };
}

/** The container names behind a service key other than the key, in order of first appearance. */
function _formerKeys(key: string, items: readonly { entry: LogEntry }[]): string[] {
  const names = new Set<string>();
  for (const { entry } of items) if (entry.containerName !== key) names.add(entry.containerName);
  return [...names];
}

/**
 * Milliseconds of Docker timestamps, for the latency metric: the lines of a
 * batch share their second, so the `YYYY-MM-DDTHH:MM:SS` part is parsed once
 * and the fraction added (Date.parse per line cost about 0.5 µs).
 */
function _tsParser(): (ts: string) => number {
  let prefix = "";
  let base = NaN;
  return (ts) => {
    // `...:SS.fffZ` in UTC only; anything else goes to Date.parse.
    if (ts.length < 21 || ts.charCodeAt(19) !== 46 || ts.charCodeAt(ts.length - 1) !== 90) {
      return Date.parse(ts);
    }
    if (ts.slice(0, 19) !== prefix) {
      prefix = ts.slice(0, 19);
      base = Date.parse(prefix + "Z");
    }
    let ms = 0;
    for (let i = 20, scale = 100; i < 23 && i < ts.length - 1; i++, scale /= 10) {
      const d = ts.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return Date.parse(ts);
      ms += d * scale;
    }
    return base + ms;
  };
}
