/**
 * The incident store port: anomalies of one service close in time (line,
 * event, rate and lifecycle anomalies alike) grouped into one incident that
 * opens, updates and resolves. The store keeps incidents and each service's
 * open one, and saves with a revision check, so two replicas recording
 * anomalies of one service at once never open two incidents: the loser reads
 * again and applies its anomalies to the winner's incident.
 *
 * Adapters: `RedisIncidentStore` and `SqliteIncidentStore`; both pass
 * `tests/shared/ports/incident_store_conformance.ts`. The grouping itself
 * (what joins an incident, what is a meaningful update) is
 * `shared/runtime/incidents.ts`.
 *
 * @module
 */

/** Where an incident stands. */
export type IncidentStatus = "open" | "resolved";

/** An anomaly kept on its incident as an example. */
export interface IncidentSample {
  /** The anomaly's id in the anomalies stream. */
  id: string;
  /** Its time (RFC 3339). */
  ts: string;
  /** `line` or `rate` (or another kind). */
  kind: string;
  /** The line, or the rate anomaly's description. */
  line: string;
  /** Its reason codes. */
  reasons: string[];
  /** Its score. */
  score: number;
  /** Its template id (empty for a whole-service rate anomaly). */
  templateId: string;
}

/** One incident. */
export interface Incident {
  /** Its id (time-ordered). */
  id: string;
  /** The service (model key). */
  service: string;
  /** The stack or Compose project the service belongs to, if any (incidents of one group in the same minutes are linked). */
  group: string | null;
  /** `open` or `resolved`. */
  status: IncidentStatus;
  /** When it opened (ms since the epoch). */
  openedAt: number;
  /** When it last changed. */
  updatedAt: number;
  /** When its last anomaly was recorded (ms since the epoch). */
  lastAnomalyAt: number;
  /** When it resolved; null while open. */
  resolvedAt: number | null;
  /** Anomalies it holds. */
  anomalies: number;
  /** Their ids (the first 500). */
  members: string[];
  /** Anomalies per reason code. */
  reasons: Record<string, number>;
  /** Anomalies per kind (`line`, `rate`, ...). */
  kinds: Record<string, number>;
  /** The highest score. */
  maxScore: number;
  /** One line that says what happened. */
  title: string;
  /** A few anomalies: the first ones and the strongest. */
  samples: IncidentSample[];
  /** Ids of incidents of other services of the same group in the same minutes. */
  links: string[];
  /** What the alert sinks were last told: anomalies and reasons then. */
  notified: { anomalies: number; reasons: string[] };
  /** Save counter, for the revision check. */
  revision: number;
}

/** Why the alert sinks are told about an incident. */
export type IncidentEvent = "opened" | "updated" | "resolved";

/** One thing to tell the alert sinks about an incident. */
export interface IncidentNotice {
  /** What happened to the incident. */
  event: IncidentEvent;
  /** The incident as it is now. */
  incident: Incident;
}

/** Options of {@linkcode IncidentStore.list}. */
export interface IncidentListOptions {
  /** Only this service's. */
  service?: string;
  /** Only open or only resolved ones. */
  status?: IncidentStatus;
  /** Only those opened before this time (ms), for paging. */
  before?: number;
  /** Only those updated since this time (ms). */
  since?: number;
  /**
   * Most returned, newest first.
   * @default 50
   */
  limit?: number;
}

/** Where incidents are kept. */
export interface IncidentStore extends AsyncDisposable {
  /** One incident; null when unknown. */
  get(id: string): Promise<Incident | null>;
  /** A service's open incident; null when it has none. */
  current(service: string): Promise<Incident | null>;
  /** Incidents, newest opened first. */
  list(options?: IncidentListOptions): Promise<Incident[]>;
  /**
   * Save an incident if its stored revision is `expected` (0: it is new, and
   * then only if the service has no other open incident); the stored one
   * gets revision `expected + 1`. An open incident becomes its service's
   * current one; a resolved one stops being it.
   *
   * @returns Whether it was saved (false: someone saved first; read again).
   */
  save(incident: Incident, expected: number): Promise<boolean>;
}
