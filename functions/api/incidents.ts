/**
 * The api's incidents: `GET /incidents` (newest first; `service`, `status`,
 * `before`, `limit`), `GET /incidents/:id` and `POST /incidents/:id/feedback`
 * (a label for every member anomaly: `normal` suppresses their templates,
 * `anomaly` confirms them). A Hono sub-app mounted under `/incidents`; the
 * api's auth middleware covers it.
 *
 * @module
 */

import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import {
  FEEDBACK_LABELS,
  type FeedbackLabel,
  feedbackOn,
  type FeedbackStore,
} from "../../shared/ports/feedback_store.ts";
import type { IncidentStatus, IncidentStore } from "../../shared/ports/incident_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";

/** What the incidents sub-app needs. */
export interface IncidentsApiDeps {
  /** Where incidents are kept. */
  incidents: IncidentStore;
  /** The streams (member anomalies are read from the anomalies stream). */
  logStream: LogStream;
  /** Where feedback goes. */
  feedback: FeedbackStore;
  /** The anomalies stream. */
  anomaliesStream: string;
  /**
   * The clock (ms since the epoch).
   * @default Date.now
   */
  now?: () => number;
}

/** Most incidents per page. */
export const MAX_INCIDENTS_PAGE = 500;

/**
 * Build the incidents sub-app.
 *
 * @param deps The store, streams, feedback.
 * @returns The Hono app to mount at `/incidents`.
 * @example
 * ```ts
 * declare const deps: IncidentsApiDeps;
 * const app = new Hono().route("/incidents", createIncidentsApi(deps));
 * ```
 */
export function createIncidentsApi(deps: IncidentsApiDeps): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();

  app.get("/", async (c) => {
    const q = c.req.query();
    const status = q.status;
    if (status !== undefined && status !== "open" && status !== "resolved") {
      _bad(`status: expected "open" or "resolved", got ${JSON.stringify(status)}`);
    }
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_INCIDENTS_PAGE) {
      _bad(
        `limit: expected an integer in 1..${MAX_INCIDENTS_PAGE}, got ${JSON.stringify(q.limit)}`,
      );
    }
    let before: number | undefined;
    if (q.before !== undefined) {
      before = /^\d+$/.test(q.before) ? Number(q.before) : Date.parse(q.before);
      if (!Number.isFinite(before)) {
        _bad(
          `before: expected ms since the epoch or an RFC 3339 time, got ${
            JSON.stringify(q.before)
          }`,
        );
      }
    }
    const incidents = await deps.incidents.list({
      ...(q.service ? { service: q.service } : {}),
      ...(status ? { status: status as IncidentStatus } : {}),
      ...(before !== undefined ? { before } : {}),
      limit,
    });
    const last = incidents[incidents.length - 1];
    return c.json({
      incidents,
      nextBefore: incidents.length === limit && last ? last.openedAt : null,
    });
  });

  app.get("/:id", async (c) => {
    const incident = await deps.incidents.get(_id(c.req.param("id")));
    if (incident === null) {
      throw new HTTPException(404, { message: `Incident ${c.req.param("id")} not found` });
    }
    return c.json({ incident });
  });

  app.post("/:id/feedback", async (c) => {
    const id = _id(c.req.param("id"));
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      _bad('body: expected a JSON object such as {"label":"normal"}');
    }
    const label = (body as { label?: unknown } | null)?.label;
    if (!FEEDBACK_LABELS.includes(label as FeedbackLabel)) {
      _bad(`label: expected "normal" or "anomaly", got ${JSON.stringify(label)}`);
    }
    const incident = await deps.incidents.get(id);
    if (incident === null) throw new HTTPException(404, { message: `Incident ${id} not found` });
    const at = now();
    let applied = 0, missing = 0;
    const templates = new Set<string>();
    for (const anomalyId of incident.members) {
      const [m] = await deps.logStream.range(deps.anomaliesStream, {
        start: anomalyId,
        end: anomalyId,
        count: 1,
      });
      if (!m) {
        missing++;
        continue;
      }
      const a = fieldsToAnomaly(m.id, m.fields);
      await deps.feedback.record(feedbackOn(a, label as FeedbackLabel, at));
      if (a.templateId) templates.add(a.templateId);
      applied++;
    }
    return c.json({ incidentId: id, label, applied, missing, templates: [...templates] });
  });

  return app;
}

function _id(id: string): string {
  if (!/^[0-9a-z]{1,16}-[0-9a-f]{8}$/.test(id)) {
    _bad(`id: expected an incident id such as 0mi3x2k1s-1a2b3c4d, got ${JSON.stringify(id)}`);
  }
  return id;
}

function _bad(message: string): never {
  throw new HTTPException(400, { message });
}
