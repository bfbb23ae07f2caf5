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
  /**
   * The slots and values that drove the score, for people
   * (`status=502: never seen here`); absent from older messages.
   */
  explanation?: string[];
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
  /**
   * What kind of anomaly: `line` (one line or event scored) or `rate` (a
   * window's volume, see `rate`).
   * @default "line"
   */
  kind?: "line" | "rate";
  /** For a rate anomaly: the window, its counts and the reasons with expected and observed counts. */
  rate?: RateAnomalyDetails;
}

/** The window behind a rate anomaly. */
export interface RateAnomalyDetails {
  /** Window start (RFC 3339). */
  start: string;
  /** Window end (RFC 3339). */
  end: string;
  /** Lines in the window. */
  lines: number;
  /** Lines expected; null where the history is too thin. */
  expected: number | null;
  /** The reasons, each with its expected and observed counts. */
  reasons: {
    code: string;
    expected: number;
    observed: number;
    templateId?: string;
    template?: string;
    windows: number;
  }[];
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
    ...(a.explanation === undefined ? {} : { explanation: JSON.stringify(a.explanation) }),
    modelVersion: String(a.modelVersion),
    scoredAt: String(a.scoredAt),
    ...(a.kind && a.kind !== "line" ? { kind: a.kind } : {}),
    ...(a.rate ? { rate: JSON.stringify(a.rate) } : {}),
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
  let explanation: string[] | undefined;
  if (f.explanation !== undefined) {
    try {
      const parsed = JSON.parse(f.explanation);
      explanation = Array.isArray(parsed) ? parsed.map(String) : [];
    } catch {
      explanation = [];
    }
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
    ...(explanation === undefined ? {} : { explanation }),
    modelVersion: Number(f.modelVersion ?? 0),
    scoredAt: Number(f.scoredAt ?? 0),
    ...(f.kind === "rate" ? { kind: "rate" as const } : {}),
    ...(f.rate ? { rate: _parseRate(f.rate) } : {}),
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

function _parseRate(text: string): RateAnomalyDetails | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" ? v as RateAnomalyDetails : undefined;
  } catch {
    return undefined;
  }
}
