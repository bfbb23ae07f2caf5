/**
 * The feedback store port: what people said about anomalies. `normal`
 * feedback silences the anomaly's template for its container for a while and
 * gives the next training a line to learn as normal; `anomaly` feedback
 * confirms it, so the next training leaves the line out (and lifts a
 * suppression of that template).
 *
 * Adapters: {@linkcode RedisFeedbackStore} (real) and
 * `SqliteFeedbackStore`; both pass
 * `tests/shared/feedback_store_conformance.ts`.
 *
 * @module
 */

import type { Anomaly } from "./anomaly.ts";

/** What a person said about an anomaly. */
export type FeedbackLabel = "normal" | "anomaly";

/** The labels a feedback may carry. */
export const FEEDBACK_LABELS: readonly FeedbackLabel[] = ["normal", "anomaly"];

/** One piece of feedback on one anomaly. */
export interface Feedback {
  /** The anomaly's id (its id in the anomalies stream). */
  anomalyId: string;
  /** The container the anomalous line came from. */
  container: string;
  /** The template the detector matched the line to. */
  templateId: string;
  /** The anomalous line. */
  line: string;
  /** What the person said. */
  label: FeedbackLabel;
  /** When it was said, in ms since the epoch. */
  at: number;
}

/**
 * The feedback a person gives by labelling an anomaly.
 *
 * @param anomaly the labelled anomaly (its id, container, template and line)
 * @param label what the person said
 * @param at when, in ms since the epoch
 * @returns the feedback to record
 */
export function feedbackOn(
  anomaly: Pick<Anomaly, "id" | "container" | "templateId" | "line">,
  label: FeedbackLabel,
  at: number,
): Feedback {
  return {
    anomalyId: anomaly.id,
    container: anomaly.container,
    templateId: anomaly.templateId,
    line: anomaly.line,
    label,
    at,
  };
}

/** Options of the feedback store adapters. */
export interface FeedbackStoreOptions {
  /**
   * How long `normal` feedback suppresses the template, in ms
   * (`config.api.suppressMs`).
   * @default 86_400_000
   */
  suppressMs?: number;
  /**
   * Feedback kept per container; the oldest goes first.
   * @default 10_000
   */
  maxPerContainer?: number;
}

/** Options of {@linkcode FeedbackStore.normalLines} and {@linkcode FeedbackStore.confirmedAnomalies}. */
export interface FeedbackListOptions {
  /**
   * Most items returned, newest first.
   * @default Infinity
   */
  limit?: number;
}

/** Feedback on anomalies, for the api, the scorer and the trainer. */
export interface FeedbackStore extends AsyncDisposable {
  /**
   * Records feedback. A second feedback on the same anomaly replaces the
   * first. `normal` suppresses `templateId` for the container until
   * `at + suppressMs` (extending a running suppression); `anomaly` lifts a
   * suppression of that template.
   *
   * @throws {TypeError} when a field is missing or malformed
   */
  record(feedback: Feedback): Promise<void>;
  /** The feedback on one anomaly; null when there is none. */
  get(container: string, anomalyId: string): Promise<Feedback | null>;
  /** True while `templateId` is suppressed for the container at `now` (ms). */
  isSuppressed(container: string, templateId: string, now?: number): Promise<boolean>;
  /**
   * The templates suppressed for the container at `now` (ms), in one read:
   * the scorer's per-batch form of {@linkcode FeedbackStore.isSuppressed}.
   * Expired suppressions are left out.
   */
  suppressedTemplates(container: string, now?: number): Promise<Set<string>>;
  /** Lines marked `normal`, newest first, for the next training. */
  normalLines(container: string, options?: FeedbackListOptions): Promise<string[]>;
  /** Feedback that confirmed anomalies, newest first, for the next training. */
  confirmedAnomalies(container: string, options?: FeedbackListOptions): Promise<Feedback[]>;
  /** True when the backing service answers. */
  ping(): Promise<boolean>;
}

/** The default of {@linkcode FeedbackStoreOptions.suppressMs}. */
export const DEFAULT_SUPPRESS_MS = 86_400_000;
/** The default of {@linkcode FeedbackStoreOptions.maxPerContainer}. */
export const DEFAULT_MAX_FEEDBACK_PER_CONTAINER = 10_000;

/**
 * Checks a feedback's fields, for the adapters' `record`.
 *
 * @param feedback the feedback
 * @returns the same feedback
 * @throws {TypeError} naming the first bad field and what was expected
 */
export function validateFeedback(feedback: Feedback): Feedback {
  const f = feedback as unknown as Record<string, unknown>;
  for (const key of ["anomalyId", "container", "templateId"]) {
    if (typeof f[key] !== "string" || (f[key] as string).length === 0) {
      throw new TypeError(
        `Cannot record feedback: ${key} ${JSON.stringify(f[key])}; expected a non-empty string`,
      );
    }
  }
  if (typeof f.line !== "string") {
    throw new TypeError(
      `Cannot record feedback: line ${JSON.stringify(f.line)}; expected a string`,
    );
  }
  if (!FEEDBACK_LABELS.includes(f.label as FeedbackLabel)) {
    throw new TypeError(
      `Cannot record feedback: label ${JSON.stringify(f.label)}; expected "normal" or "anomaly"`,
    );
  }
  if (typeof f.at !== "number" || !Number.isFinite(f.at)) {
    throw new TypeError(
      `Cannot record feedback: at ${JSON.stringify(f.at)}; expected ms since the epoch`,
    );
  }
  return feedback;
}
