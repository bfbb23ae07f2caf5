/**
 * Scoring lines of one container: with its current model, or, while it is
 * learning, by the cold-start policy (a strong severity word raises a line).
 * Used by the score function's handler and by the api's on-demand scoring.
 *
 * @module
 */

import { coldStartLine } from "../detector/detector.ts";
import type { FeedbackStore } from "../ports/feedback_store.ts";
import type { ModelCache } from "../runtime/model_cache.ts";

/** What {@linkcode scoreLines} needs. */
export interface ScoreLinesDeps {
  /** The current model per container. */
  models: ModelCache;
  /** Suppressed templates per container (feedback `normal`). */
  feedback: FeedbackStore;
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
  /** The slots and values that drove the score (`status=502: never seen here`). */
  explanation?: string[];
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
  deps: ScoreLinesDeps,
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
        explanation: [...s.explanation],
        suppressed: off && s.anomaly,
        modelVersion: model.version,
      };
    });
  }
  const coldStart = options.coldStart ?? "severity";
  return lines.map((line) => {
    const { template, templateId, severity, token } = coldStartLine(line);
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
