/**
 * The score function's logic: a {@linkcode BatchHandler} for the shared
 * stream consumer (group `score`). Per batch it decodes the entries, groups
 * them by model key, asks the model cache for each container's current model
 * (one cheap version read; the blob only when the version changed), scores
 * the lines, and appends the anomalies to the anomalies stream keyed by the
 * source entry id, so a replay of the batch adds no duplicate. Then it hands
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
import { contentHash64 } from "../../shared/detector/hash.ts";
import { createMaskedLine, maskTokens, templateText } from "../../shared/detector/mask.ts";
import { severityOf } from "../../shared/detector/severity.ts";
import type { FeedbackStore } from "../../shared/ports/feedback_store.ts";
import { fieldsToEntry, type LogEntry, modelKey } from "../../shared/ports/log_entry.ts";
import type { LogStream, StreamMessage } from "../../shared/ports/log_stream.ts";
import type { Logger } from "../../shared/runtime/logger.ts";
import type { TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import type { ModelCache } from "../../shared/runtime/model_cache.ts";
import type { BatchHandler, BatchOutcome } from "../../shared/runtime/stream_consumer.ts";

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

/** One scored line, as on-demand scoring returns it. */
export interface ScoredLine {
  /** Score in [0, 1]. */
  score: number;
  /** True when the score is above the threshold and the template is not suppressed. */
  anomaly: boolean;
  /** The threshold applied. */
  threshold: number;
  /** Reason codes. */
  reasons: string[];
  /** The line's template. */
  template: string;
  /** Its stable id. */
  templateId: string;
  /** The tokens that drove the score. */
  tokens: string[];
  /** True when feedback suppressed this template. */
  suppressed: boolean;
  /** The model version used; 0 while learning. */
  modelVersion: number;
}

/** Options of {@linkcode scoreLines}. */
export interface ScoreLinesOptions {
  /**
   * What a container without a model alerts on.
   * @default "severity"
   */
  coldStart?: "severity" | "none";
  /**
   * Keys the lines' model was stored under before (the container names behind
   * a service key), tried in order while the key itself has no model.
   * @default []
   */
  formerKeys?: readonly string[];
}

/** The strongest severity weight that raises a line while a container is learning. */
export const COLD_START_SEVERITY = 0.8;

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
    const groups = new Map<string, { msg: StreamMessage; entry: LogEntry }[]>();
    for (const msg of batch) {
      try {
        const entry = fieldsToEntry(msg.fields);
        const key = modelKey(entry);
        let group = groups.get(key);
        if (!group) groups.set(key, group = []);
        group.push({ msg, entry });
      } catch (e) {
        rejected.set(msg.id, e instanceof Error ? e : new Error(String(e)));
      }
    }
    const found: Anomaly[] = [];
    const done: string[] = [];
    for (const [container, items] of groups) {
      const lines = items.map((i) => i.entry.line);
      const scored = await scoreLines(container, lines, deps, {
        coldStart: options.coldStart,
        formerKeys: _formerKeys(container, items),
      });
      const at = now();
      for (let i = 0; i < items.length; i++) {
        const { msg, entry } = items[i]!;
        const s = scored[i]!;
        done.push(msg.id);
        deps.metrics?.scoreLatency.observe(Math.max(0, at - Date.parse(entry.ts)) / 1000);
        if (!s.anomaly) continue;
        found.push({
          id: "",
          container,
          containerId: entry.containerId,
          containerName: entry.containerName,
          entryId: msg.id,
          ts: entry.ts,
          line: entry.line,
          score: s.score,
          threshold: s.threshold,
          reasons: s.reasons,
          template: s.template,
          templateId: s.templateId,
          tokens: s.tokens,
          modelVersion: s.modelVersion,
          scoredAt: at,
          ...(entry.image ? { version: entry.image } : {}),
        });
      }
      deps.metrics?.linesScored.inc({ container }, items.length);
    }
    if (found.length > 0) {
      const ids = await deps.stream.appendOnce(
        options.anomalyStream,
        found.map((a) => ({
          key: `${options.anomalyStream}:seen:${a.entryId}`,
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
      if (fresh.length > 0 && deps.alerts) await deps.alerts.send(fresh);
    }
    return { done, rejected };
  };
}

/**
 * Scores lines of one container with its current model, or, while it is
 * learning, by the cold-start policy. Templates suppressed by feedback are
 * scored but never anomalies.
 *
 * @param container the model key
 * @param lines the lines
 * @param deps the model cache and the feedback store
 * @param options the cold-start policy and former keys
 * @returns one result per line, in order
 */
export async function scoreLines(
  container: string,
  lines: readonly string[],
  deps: Pick<ScoreDeps, "models" | "feedback">,
  options: ScoreLinesOptions = {},
): Promise<ScoredLine[]> {
  let [model, suppressed] = await Promise.all([
    deps.models.get(container),
    deps.feedback.suppressedTemplates(container),
  ]);
  // A service key without a model yet keeps serving with the model its
  // container had under its own name (before service keys), and that
  // model's feedback, until the service's first model is trained.
  for (const former of options.formerKeys ?? []) {
    if (model || former === container) break;
    const [m, s] = await Promise.all([
      deps.models.get(former),
      deps.feedback.suppressedTemplates(former),
    ]);
    if (m) {
      model = m;
      suppressed = new Set([...suppressed, ...s]);
    }
  }
  if (model) {
    return model.detector.scoreBatch(lines).map((s) => {
      const off = suppressed.has(s.templateId);
      return {
        score: s.score,
        anomaly: s.anomaly && !off,
        threshold: s.threshold,
        reasons: [...s.reasons],
        template: s.template,
        templateId: s.templateId,
        tokens: [...s.tokens],
        suppressed: off && s.anomaly,
        modelVersion: model.version,
      };
    });
  }
  const coldStart = options.coldStart ?? "severity";
  return lines.map((line) => {
    const { template, templateId, severity, token } = _coldStart(line);
    const raised = coldStart === "severity" && severity >= COLD_START_SEVERITY;
    const off = raised && suppressed.has(templateId);
    return {
      score: severity,
      anomaly: raised && !off,
      threshold: COLD_START_SEVERITY,
      reasons: raised ? ["severity"] : [],
      template,
      templateId,
      tokens: raised && token ? [token] : [],
      suppressed: off,
      modelVersion: 0,
    };
  });
}

/** The container names behind a service key other than the key, in order of first appearance. */
function _formerKeys(key: string, items: readonly { entry: LogEntry }[]): string[] {
  const names = new Set<string>();
  for (const { entry } of items) if (entry.containerName !== key) names.add(entry.containerName);
  return [...names];
}

const _masked = createMaskedLine();

function _coldStart(
  line: string,
): { template: string; templateId: string; severity: number; token: string } {
  maskTokens(line, _masked);
  let severity = 0;
  let token = "";
  for (let i = 0; i < _masked.count; i++) {
    const t = _masked.tokens[i]!;
    const w = severityOf(t);
    if (w > severity) {
      severity = w;
      token = t;
    }
  }
  const template = templateText(_masked.tokens, _masked.count);
  return { template, templateId: contentHash64(template), severity, token };
}
