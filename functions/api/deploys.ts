/**
 * The api's deploys: `GET /deploys` lists the deploys collect recorded
 * (newest first, optionally of one service), `GET /deploys/:id` gives one with
 * its report (see {@linkcode buildDeployReport}). A sub-app mounted under
 * `/deploys` after the api's auth middleware, so it needs the same token or
 * session.
 *
 * @module
 */

import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { type Anomaly, fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import { type Deploy, fieldsToDeploy } from "../../shared/ports/deploy.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { buildDeployReport, type DeployReportSources } from "./deploy_report.ts";

/** What the deploys routes read. */
export interface DeploysDeps {
  /** The streams (deploys and anomalies). */
  logStream: LogStream;
  /** A service's history (the log store's `history`); without it reports list no templates. */
  history?: DeployReportSources["history"];
}

/** Options of {@linkcode createDeploysApp}. */
export interface DeploysOptions {
  /** The deploys stream (`config.streams.deploys`). */
  deployStream: string;
  /** The anomalies stream (`config.streams.anomalies`). */
  anomalyStream: string;
  /**
   * The window after a deploy its report covers, in ms (`DEPLOY_REPORT_WINDOW`).
   * @default 1800000
   */
  reportWindowMs?: number;
  /**
   * The baseline before it, in ms (`DEPLOY_BASELINE`).
   * @default 21600000
   */
  baselineMs?: number;
  /**
   * Most anomalies read from the stream for one report.
   * @default 10000
   */
  maxScan?: number;
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
}

/** Most deploys one `GET /deploys` returns. */
export const MAX_DEPLOYS_PAGE = 500;

const _STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * Reads the newest deploys.
 *
 * @param stream the log stream port
 * @param name the deploys stream
 * @param options most to return, and the service to keep
 * @returns the deploys, newest first
 */
export async function listDeploys(
  stream: LogStream,
  name: string,
  options: { limit?: number; container?: string | null } = {},
): Promise<Deploy[]> {
  const limit = options.limit ?? 100;
  const out: Deploy[] = [];
  let end = "+";
  for (;;) {
    const page = await stream.range(name, { start: "-", end, count: 1000, reverse: true });
    for (const m of page) {
      const d = fieldsToDeploy(m.id, m.fields);
      if (!d.container || (options.container && d.container !== options.container)) continue;
      out.push(d);
      if (out.length >= limit) return out;
    }
    if (page.length < 1000) return out;
    end = `(${page[page.length - 1]!.id}`;
  }
}

/**
 * Builds the deploys sub-app.
 *
 * @param deps the streams and the history
 * @param options stream names and the report's windows
 * @returns the Hono app, to mount with `app.route("/deploys", ...)`
 */
export function createDeploysApp(deps: DeploysDeps, options: DeploysOptions): Hono {
  const app = new Hono();
  const maxScan = options.maxScan ?? 10_000;
  const windowMs = options.reportWindowMs ?? 1_800_000;

  app.get("/", async (c) => {
    const q = c.req.query();
    let limit = 100;
    if (q.limit !== undefined) {
      limit = /^\d{1,4}$/.test(q.limit) ? Number(q.limit) : NaN;
      if (!(limit >= 1 && limit <= MAX_DEPLOYS_PAGE)) {
        _bad(
          `limit: expected an integer from 1 to ${MAX_DEPLOYS_PAGE}, got ${
            JSON.stringify(q.limit)
          }`,
        );
      }
    }
    const container = q.container === undefined || q.container === "" ? null : q.container;
    const deploys = await listDeploys(deps.logStream, options.deployStream, { limit, container });
    return c.json({ deploys });
  });

  app.get("/:id", async (c) => {
    const id = c.req.param("id");
    if (!_STREAM_ID.test(id)) {
      _bad(
        `id: expected a deploy id such as 1700000000000-0, got ${JSON.stringify(id.slice(0, 80))}`,
      );
    }
    const [m] = await deps.logStream.range(options.deployStream, { start: id, end: id, count: 1 });
    if (!m || m.id !== id) throw new HTTPException(404, { message: `No deploy ${id}` });
    const deploy = fieldsToDeploy(m.id, m.fields);
    const report = await buildDeployReport(deploy, {
      history: deps.history ?? _noHistory,
      anomalies: (key, from, to) =>
        _anomalies(deps.logStream, options.anomalyStream, key, from, to, maxScan),
    }, { windowMs, baselineMs: options.baselineMs, now: options.now });
    return c.json(report);
  });

  return app;
}

async function* _noHistory(): AsyncIterable<never> {}

async function _anomalies(
  stream: LogStream,
  name: string,
  key: string,
  from: number,
  to: number,
  maxScan: number,
): Promise<Anomaly[]> {
  const out: Anomaly[] = [];
  let start = String(from);
  let scanned = 0;
  while (scanned < maxScan) {
    const page = await stream.range(name, { start, end: String(to), count: 1000 });
    for (const m of page) {
      const a = fieldsToAnomaly(m.id, m.fields);
      if (a.container === key) out.push(a);
    }
    scanned += page.length;
    if (page.length < 1000) break;
    start = `(${page[page.length - 1]!.id}`;
  }
  return out;
}

function _bad(message: string): never {
  throw new HTTPException(400, { message: `Invalid request: ${message}` });
}
