/**
 * The anomaly: a scored log line above its container's threshold, with the
 * explanation of why, as score appends it to the anomalies stream and the
 * api, the alert sinks and the dashboard read it. This file owns its encoding
 * into stream fields.
 *
 * @module
 */

import type { Fields } from "./log_entry.ts";

/** One anomalous log line and why it is one. */
export interface Anomaly {
  /** Its id in the anomalies stream (empty until appended). */
  id: string;
  /** The model key (the container's name, see `modelKey`). */
  container: string;
  /** The full id of the container that wrote the line. */
  containerId: string;
  /** The container's name. */
  containerName: string;
  /** The id of the source entry in the log stream (the replay key). */
  entryId: string;
  /** Docker's timestamp of the line. */
  ts: string;
  /** The line (text; invalid UTF-8 replaced). */
  line: string;
  /** The score in [0, 1]. */
  score: number;
  /** The container's threshold the score exceeded. */
  threshold: number;
  /** Reason codes, strongest first (`new_template`, `unseen_tokens`, ...). */
  reasons: string[];
  /** The line's template. */
  template: string;
  /** The template's stable id. */
  templateId: string;
  /** The tokens that drove the score. */
  tokens: string[];
  /** The model version that scored it; 0 while the container is learning. */
  modelVersion: number;
  /** When it was scored (ms since the epoch). */
  scoredAt: number;
  /**
   * The image (tag) of the container that wrote the line: the version a
   * template first seen after a deploy appeared in.
   */
  version?: string;
  /**
   * The container's last lines before a lifecycle anomaly (`oom_killed`,
   * `exited`, `unhealthy`, `restart_loop`), oldest first.
   */
  lastLines?: string[];
}

/**
 * The reason codes of Docker lifecycle anomalies, which collect raises
 * itself: killed for lack of memory, exited with a non-zero code, health
 * check failing, restarting 3 or more times in 5 minutes.
 */
export const LIFECYCLE_REASONS = ["oom_killed", "exited", "unhealthy", "restart_loop"] as const;

/** One of {@linkcode LIFECYCLE_REASONS}. */
export type LifecycleReason = typeof LIFECYCLE_REASONS[number];

/**
 * Encodes an anomaly as stream fields.
 *
 * @param a the anomaly
 * @returns its fields (without its id)
 */
export function anomalyToFields(a: Anomaly): Fields {
  const f: Fields = {
    container: a.container,
    containerId: a.containerId,
    containerName: a.containerName,
    entryId: a.entryId,
    ts: a.ts,
    line: a.line,
    score: String(a.score),
    threshold: String(a.threshold),
    reasons: a.reasons.join(","),
    template: a.template,
    templateId: a.templateId,
    tokens: JSON.stringify(a.tokens),
    modelVersion: String(a.modelVersion),
    scoredAt: String(a.scoredAt),
  };
  if (a.version) f.version = a.version;
  if (a.lastLines) f.lastLines = JSON.stringify(a.lastLines);
  return f;
}

/**
 * Decodes stream fields into an anomaly; missing fields get neutral values,
 * so an old or foreign message still shows.
 *
 * @param id the message's id in the anomalies stream
 * @param f its fields
 * @returns the anomaly
 */
export function fieldsToAnomaly(id: string, f: Fields): Anomaly {
  let tokens: string[] = [];
  try {
    const parsed = JSON.parse(f.tokens ?? "[]");
    if (Array.isArray(parsed)) tokens = parsed.map(String);
  } catch {
    tokens = [];
  }
  const a: Anomaly = {
    id,
    container: f.container ?? "",
    containerId: f.containerId ?? "",
    containerName: f.containerName ?? f.container ?? "",
    entryId: f.entryId ?? "",
    ts: f.ts ?? "",
    line: f.line ?? "",
    score: Number(f.score ?? 0),
    threshold: Number(f.threshold ?? 0),
    reasons: f.reasons ? f.reasons.split(",") : [],
    template: f.template ?? "",
    templateId: f.templateId ?? "",
    tokens,
    modelVersion: Number(f.modelVersion ?? 0),
    scoredAt: Number(f.scoredAt ?? 0),
  };
  if (f.version) a.version = f.version;
  if (f.lastLines) {
    try {
      const parsed = JSON.parse(f.lastLines);
      if (Array.isArray(parsed)) a.lastLines = parsed.map(String);
    } catch {
      // a foreign message: no last lines
    }
  }
  return a;
}
