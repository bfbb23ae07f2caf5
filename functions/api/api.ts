/**
 * The tailwise HTTP api (Hono): on-demand scoring, anomalies with feedback,
 * models, training, health, metrics and its OpenAPI document.
 *
 * {@linkcode createApi} is a pure function of its dependencies: it opens no
 * connection and reads no environment; `main.ts` builds the adapters.
 *
 * Every route but `GET /health` and the dashboard's public paths needs
 * `Authorization: Bearer <token>` or the dashboard's session cookie (then a
 * request that changes state must come from the same origin). Errors
 * are JSON `{ "error": "..." }`: handlers throw `HTTPException` for 4xx and
 * one `onError` maps the domain errors (a missing model is 404).
 *
 * @module
 */

import { createIncidentsApi } from "./incidents.ts";
import { createVolumeView } from "./volume.ts";
import { createServiceView } from "./service_view.ts";
import { createPatternsView } from "./patterns_view.ts";
import { createIncidentsView } from "./incidents_view.ts";
import type { RateStore } from "../../shared/ports/rate_store.ts";
import type { RateModel } from "../../shared/detector/detector.ts";
import type { IncidentStore } from "../../shared/ports/incident_store.ts";
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { bodyLimit } from "hono/body-limit";
import { secureHeaders } from "hono/secure-headers";
import { getCookie } from "hono/cookie";
import { routePath } from "hono/route";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type Anomaly, fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import {
  FEEDBACK_LABELS,
  type FeedbackLabel,
  feedbackOn,
  type FeedbackStore,
} from "../../shared/ports/feedback_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import type { LogEntry } from "../../shared/ports/log_entry.ts";
import {
  CONTEXT_MAX,
  type LogContext,
  type LogStore,
  SEARCH_MAX,
} from "../../shared/ports/log_store.ts";
import { displayText } from "./dashboard_view.ts";
import { METRICS_CONTENT_TYPE, type TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import {
  displayContainer,
  MAX_CONTAINER_NAME_BYTES,
  ModelCorruptError,
  type ModelMeta,
  ModelNotFoundError,
  type ModelRegistry,
} from "../../shared/ports/model_registry.ts";
import {
  createDashboard,
  type DashboardOptions,
  isPublicDashboardPath,
  isSameOrigin,
  SESSION_COOKIE,
  verifySession,
} from "./dashboard.ts";
import { openApiDocument } from "./openapi.ts";
import { createDeploysApp, type DeploysDeps, listDeploys } from "./deploys.ts";

/** One line scored on demand, with its explanation, as {@linkcode ApiDeps.scoreLines} returns it. */
export interface ScoredLine {
  /** The score in [0, 1]. */
  score: number;
  /** True when the score is above the threshold and feedback does not suppress the template. */
  anomaly: boolean;
  /** The threshold applied. */
  threshold: number;
  /** The line's template. */
  template: string;
  /** The template's stable id. */
  templateId: string;
  /** Reason codes, strongest first. */
  reasons: readonly string[];
  /** The tokens that drove the score. */
  tokens?: readonly string[];
  /** The slots and values that drove the score (`status=502: never seen here`). */
  explanation?: readonly string[];
  /** True when feedback suppressed an anomaly of this template. */
  suppressed?: boolean;
  /** The model version that scored it. */
  modelVersion?: number;
}

/** What a health check found. */
export interface HealthResult {
  /** True when the dependency works. */
  ok: boolean;
  /** A short, non-secret description. */
  detail?: string;
}

/** Checks one dependency; a throw or a timeout counts as not ok. */
export type HealthCheck = () => Promise<boolean | HealthResult>;

/** The answer of {@linkcode ApiDeps.requestTraining}. */
export interface TrainingResult {
  /** What happened, e.g. `promoted`, `candidate`, `learning`, `busy`. */
  status: string;
  /** The new version, when one was stored. */
  version?: number;
  /** More fields the trainer reports. */
  [key: string]: unknown;
}

/** A consumer group whose lag `/metrics` reports. */
export interface ConsumerGroupRef {
  /** The stream. */
  stream: string;
  /** The group. */
  group: string;
}

/** The dependencies of {@linkcode createApi}. */
export interface ApiDeps {
  /** Rate counts per window (the volume view); the view is absent without it. */
  rateStore?: RateStore;
  /** A service's rate model, for the volume view. */
  rateModel?: (service: string) => Promise<RateModel | null>;
  /** Incidents (`/incidents`); the routes are absent without it. */
  incidents?: IncidentStore;
  /** Models per container. */
  registry: ModelRegistry;
  /** The streams (the anomalies stream and the consumer groups' streams). */
  logStream: LogStream;
  /** Feedback on anomalies. */
  feedback: FeedbackStore;
  /** The shared metrics; `/metrics` renders their registry. */
  metrics: TailwiseMetrics;
  /** Health checks by dependency name, for `/health`. */
  health: Readonly<Record<string, HealthCheck>>;
  /**
   * Scores lines with the container's current model.
   * @throws {ModelNotFoundError} when the container has no model (the api answers 404)
   */
  scoreLines: (container: string, lines: readonly string[]) => Promise<ScoredLine[]>;
  /** Trains the container's model now (or queues it). */
  requestTraining: (container: string) => Promise<TrainingResult>;
  /** Consumer groups whose lag and pending counts `/metrics` reports. */
  consumerGroups: readonly ConsumerGroupRef[];
  /**
   * Lines per model key since a time, with the containers behind each key
   * (the log store's `containers`), for the dashboard's "N lines until the
   * first model" and the `containers` of `GET /models`; without it a learning
   * container shows no count and models list no containers.
   */
  lineCounts?: (
    since: Date,
  ) => Promise<{ container: string; count: number; containers?: string[] }[]>;
  /**
   * A service's history (the log store's `history`), for deploy reports;
   * without it a report lists anomalies but no templates.
   */
  history?: DeploysDeps["history"];
  /**
   * The lines of a service around a moment (the log store's `context`), for
   * `GET /context/:container`; without it that route answers 503.
   */
  context?: LogStore["context"];
  /**
   * A service's lines containing a text (the log store's `search`), for
   * `GET /search/:container` and the service page; without it that route answers 503.
   */
  search?: LogStore["search"];
}

/** Options of {@linkcode createApi}. */
export interface ApiOptions {
  /** The bearer token (`config.api.token`), at least 16 characters. */
  token: string;
  /** The anomalies stream (`config.streams.anomalies`). */
  anomaliesStream: string;
  /**
   * The deploys stream (`config.streams.deploys`).
   * @default "tailwise:deploys"
   */
  deploysStream?: string;
  /**
   * The windows of deploy reports (`config.deploys`: `reportWindowMs`, `baselineMs`).
   * @default { reportWindowMs: 1800000, baselineMs: 21600000 }
   */
  deploys?: { reportWindowMs?: number; baselineMs?: number };
  /**
   * Largest request body in bytes (`config.api.bodyLimit`).
   * @default 1_048_576
   */
  bodyLimit?: number;
  /**
   * Most lines per `POST /score`.
   * @default 1000
   */
  maxScoreLines?: number;
  /**
   * Largest line in `POST /score`, in UTF-8 bytes.
   * @default 16_384
   */
  maxLineBytes?: number;
  /**
   * Most anomalies one `GET /anomalies` reads from the stream while filtering.
   * @default 10_000
   */
  maxScan?: number;
  /**
   * How long one health check may take, in ms.
   * @default 2000
   */
  healthTimeoutMs?: number;
  /**
   * Where unexpected errors go (never with a token in them).
   * @default console.error
   */
  logError?: (message: string, error: unknown) => void;
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
  /**
   * The dashboard's settings: `logsStream` and `logsStreams` (the log stream
   * and its shards, for the log rates), `minLines` and `trainWindowMs` (`config.train`), `suppressMs`
   * (`config.api.suppressMs`) and `signal` (the server's stop signal, which
   * ends the live streams); see {@linkcode DashboardOptions}.
   * @default {} (logsStream: the stream of the first consumer group, else "tailwise:logs";
   *   logsStreams: [logsStream] when that is given, else the consumer groups' streams)
   */
  dashboard?: Partial<Omit<DashboardOptions, "token" | "anomaliesStream">>;
}

/** The methods `/metrics` labels by name; any other is counted as `other`. */
export const HTTP_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
]);

/** Most anomalies per page of `GET /anomalies`. */
export const MAX_PAGE = 1000;

const _STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * Builds the api.
 *
 * @param deps the adapters and injected functions
 * @param options the token, the anomalies stream and limits
 * @returns the Hono app; serve it with `Deno.serve(app.fetch)` or call `app.request()`
 * @throws {TypeError} when the token is shorter than 16 characters
 */
export function createApi(deps: ApiDeps, options: ApiOptions): Hono {
  if (typeof options.token !== "string" || options.token.length < 16) {
    throw new TypeError("Cannot use the api token: expected at least 16 characters");
  }
  const limit = options.bodyLimit ?? 1_048_576;
  const maxLines = options.maxScoreLines ?? 1000;
  const maxLineBytes = options.maxLineBytes ?? 16_384;
  const maxScan = options.maxScan ?? 10_000;
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const logError = options.logError ?? ((m, e) => console.error(m, e));
  const now = options.now ?? Date.now;
  const tokenDigest = _digest(options.token);
  const stream = options.anomaliesStream;
  const trainWindowMs = options.dashboard?.trainWindowMs ?? 86_400_000;
  const { metrics } = deps;

  const app = new Hono();

  /** The containers behind each model key in the training window (best effort). */
  const containersBehind = async (): Promise<Map<string, string[]>> => {
    if (!deps.lineCounts) return new Map();
    try {
      const since = new Date(now() - (options.dashboard?.trainWindowMs ?? 86_400_000));
      const list = await deps.lineCounts(since);
      return new Map(list.map((c) => [c.container, c.containers ?? []]));
    } catch (e) {
      logError("api: cannot list the containers behind the models", e);
      return new Map();
    }
  };

  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    // Every label is bounded: a request chooses its method and path, so only
    // known methods and matched route patterns become label values, and
    // unauthenticated requests are one unlabelled counter.
    if (c.res.status === 401) {
      metrics.httpUnauthenticated.inc();
      return;
    }
    let route = routePath(c, -1);
    if (route === "*" || route === "/*" || route === "") route = "unmatched";
    const method = HTTP_METHODS.has(c.req.method) ? c.req.method : "other";
    metrics.httpRequests.inc({ method, route, status: String(c.res.status) });
    metrics.httpDuration.observe({ method, route }, (performance.now() - started) / 1000);
  });

  app.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
      referrerPolicy: "no-referrer",
      xContentTypeOptions: "nosniff",
      xFrameOptions: "DENY",
      strictTransportSecurity: false,
    }),
  );

  app.use("*", async (c, next) => {
    c.header("Cache-Control", "no-store");
    if (c.req.path === "/health" || isPublicDashboardPath(c.req.path)) return await next();
    const session = c.req.header("authorization") === undefined
      ? getCookie(c, SESSION_COOKIE)
      : undefined;
    if (session !== undefined) {
      if (!verifySession(options.token, session, now())) {
        throw new HTTPException(401, { message: "Invalid or expired session: sign in again" });
      }
      if (!["GET", "HEAD", "OPTIONS"].includes(c.req.method) && !isSameOrigin(c)) {
        throw new HTTPException(403, {
          message: "Cross-origin request refused: expected the dashboard's own origin",
        });
      }
      return await next();
    }
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
    if (!match) {
      throw new HTTPException(401, {
        message: "Missing bearer token: expected an Authorization: Bearer <token> header",
      });
    }
    if (!timingSafeEqual(_digest(match[1]!), tokenDigest)) {
      throw new HTTPException(401, { message: "Invalid bearer token" });
    }
    await next();
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: limit,
      onError: () => {
        throw new HTTPException(413, {
          message: `Request body too large: expected at most ${limit} bytes`,
        });
      },
    }),
  );

  app.post("/score", async (c) => {
    const body = _object(await _readJson(c), "body");
    const container = _containerField(body.container, "container");
    const lines = body.lines;
    if (!Array.isArray(lines)) {
      _bad(`lines: expected an array of strings, got ${_kind(lines)}`);
    }
    if (lines.length === 0 || lines.length > maxLines) {
      _bad(`lines: expected 1 to ${maxLines} lines, got ${lines.length}`);
    }
    const encoder = new TextEncoder();
    lines.forEach((line, i) => {
      if (typeof line !== "string") _bad(`lines[${i}]: expected a string, got ${_kind(line)}`);
      const bytes = encoder.encode(line).length;
      if (bytes > maxLineBytes) {
        _bad(`lines[${i}]: expected at most ${maxLineBytes} bytes, got ${bytes}`);
      }
    });
    const scored = await deps.scoreLines(container, lines as string[]);
    if (scored.length !== lines.length) {
      throw new Error(`scoreLines returned ${scored.length} results for ${lines.length} lines`);
    }
    const results = scored.map((s, i) => ({ line: lines[i] as string, ...s }));
    return c.json({ container, results });
  });

  app.get("/anomalies", async (c) => {
    const q = c.req.query();
    const container = q.container === undefined ? null : _containerField(q.container, "container");
    const since = q.since === undefined ? null : _time(q.since, "since");
    const until = q.until === undefined ? null : _time(q.until, "until");
    if (since !== null && until !== null && since > until) {
      _bad(`since: expected a time at or before until (${new Date(until).toISOString()})`);
    }
    const pageSize = q.limit === undefined ? 100 : _int(q.limit, "limit", 1, MAX_PAGE);
    const cursor = q.cursor === undefined ? null : q.cursor;
    if (cursor !== null && !_STREAM_ID.test(cursor)) {
      _bad(`cursor: expected a stream id such as 1700000000000-0, got ${JSON.stringify(cursor)}`);
    }
    const start = since === null ? "-" : String(since);
    let end = cursor !== null ? `(${cursor}` : until === null ? "+" : String(until);
    if (cursor !== null && until !== null && _idMs(cursor) > until) end = String(until);

    const found: Anomaly[] = [];
    let scanned = 0;
    let last: string | null = null;
    let exhausted = false;
    while (found.length < pageSize && scanned < maxScan) {
      const count = Math.min(container === null ? pageSize - found.length : 500, maxScan - scanned);
      const batch = await deps.logStream.range(stream, { start, end, count, reverse: true });
      let i = 0;
      for (; i < batch.length && found.length < pageSize; i++) {
        const m = batch[i]!;
        scanned++;
        last = m.id;
        const a = fieldsToAnomaly(m.id, m.fields);
        if (container === null || a.container === container) found.push(a);
      }
      if (batch.length < count && i === batch.length) {
        exhausted = true;
        break;
      }
      if (last === null) break;
      end = `(${last}`;
    }
    const nextCursor = exhausted || last === null ? null : last;
    return c.json({ anomalies: found, nextCursor, scanned });
  });

  app.post("/anomalies/:id/feedback", async (c) => {
    const id = c.req.param("id");
    if (!_STREAM_ID.test(id)) {
      _bad(`id: expected an anomaly id such as 1700000000000-0, got ${_quote(id)}`);
    }
    const body = _object(await _readJson(c), "body");
    const label = body.label;
    if (!FEEDBACK_LABELS.includes(label as FeedbackLabel)) {
      _bad(`label: expected "normal" or "anomaly", got ${_quote(label)}`);
    }
    const [message] = await deps.logStream.range(stream, { start: id, end: id, count: 1 });
    if (!message) throw new HTTPException(404, { message: `Anomaly ${id} not found` });
    const a = fieldsToAnomaly(message.id, message.fields);
    const at = now();
    await deps.feedback.record(feedbackOn(a, label as FeedbackLabel, at));
    const suppressed = await deps.feedback.isSuppressed(a.container, a.templateId, at);
    return c.json({
      anomalyId: a.id,
      container: a.container,
      templateId: a.templateId,
      label,
      suppressed,
    });
  });

  app.get("/models", async (c) => {
    const all = await deps.registry.list();
    const byContainer = new Map<string, ModelMeta[]>();
    for (const m of all) {
      const list = byContainer.get(m.container) ?? [];
      list.push(m);
      byContainer.set(m.container, list);
    }
    const behind = await containersBehind();
    const models = [...byContainer].map(([container, versions]) => ({
      container,
      containers: behind.get(container) ?? [],
      current: versions.find((v) => v.status === "current") ?? null,
      versions: versions.map((v) => v.version),
    }));
    return c.json({ models });
  });

  app.get("/models/:container", async (c) => {
    const container = _containerParam(c);
    const versions = await deps.registry.list(container);
    if (versions.length === 0) {
      throw new HTTPException(404, {
        message: `Container ${displayContainer(container)} has no model versions`,
      });
    }
    const current = versions.find((v) => v.status === "current") ?? null;
    const containers = (await containersBehind()).get(container) ?? [];
    return c.json({ container, containers, current, versions });
  });

  app.get("/context/:container", async (c) => {
    const container = _containerParam(c);
    if (!deps.context) {
      throw new HTTPException(503, { message: "This api has no log history to read context from" });
    }
    const ts = c.req.query("ts") ?? "";
    if (ts === "") _bad("ts: expected an RFC 3339 timestamp (an anomaly's ts)");
    const count = (name: string): number | undefined => {
      const v = c.req.query(name);
      if (v === undefined) return undefined;
      if (!/^\d{1,4}$/.test(v)) {
        _bad(`${name}: expected an integer 0..${CONTEXT_MAX}, got ${_quote(v)}`);
      }
      return Number(v);
    };
    const before = count("before");
    const after = count("after");
    let got: LogContext;
    try {
      got = await deps.context(container, ts, {
        ...(before === undefined ? {} : { before }),
        ...(after === undefined ? {} : { after }),
        signal: c.req.raw.signal,
      });
    } catch (e) {
      if (e instanceof RangeError) _bad(e.message);
      throw e;
    }
    const view = _contextLine;
    return c.json({
      container,
      ts,
      before: got.before.map(view),
      at: got.at.map(view),
      after: got.after.map(view),
    });
  });

  app.get("/search/:container", async (c) => {
    const container = _containerParam(c);
    if (!deps.search) {
      throw new HTTPException(503, { message: "This api has no log history to search" });
    }
    const q = c.req.query("q") ?? "";
    const time = (name: string): Date | undefined => {
      const v = c.req.query(name);
      if (v === undefined || v === "") return undefined;
      const ms = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
      if (!Number.isFinite(ms)) {
        _bad(`${name}: expected ISO 8601 or ms since the epoch, got ${_quote(v)}`);
      }
      return new Date(ms);
    };
    const from = time("from");
    const to = time("to");
    const l = c.req.query("limit");
    if (l !== undefined && !/^\d{1,4}$/.test(l)) {
      _bad(`limit: expected an integer 1..${SEARCH_MAX}, got ${_quote(l)}`);
    }
    let found: LogEntry[];
    try {
      found = await deps.search(container, q, {
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
        ...(l === undefined ? {} : { limit: Number(l) }),
        signal: c.req.raw.signal,
      });
    } catch (e) {
      if (e instanceof RangeError) _bad(e.message);
      throw e;
    }
    return c.json({ container, q, lines: found.map(_contextLine) });
  });

  app.post("/models/:container/rollback", async (c) => {
    const container = _containerParam(c);
    const raw = await _readJson(c, { optional: true });
    let version: number | null = null;
    if (raw !== undefined) {
      const body = _object(raw, "body");
      if (body.version !== undefined) {
        if (!Number.isInteger(body.version) || (body.version as number) < 1) {
          _bad(`version: expected an integer of at least 1, got ${_quote(body.version)}`);
        }
        version = body.version as number;
      }
    }
    const current = version === null
      ? await deps.registry.rollback(container)
      : await deps.registry.promote(container, version);
    return c.json({ container, current });
  });

  app.post("/train/:container", async (c) => {
    const container = _containerParam(c);
    if (!await _known(deps, container, now() - trainWindowMs)) {
      throw new HTTPException(404, {
        message: `Container ${
          displayContainer(container)
        } is unknown: it has no history and no model versions`,
      });
    }
    const result = await deps.requestTraining(container);
    return c.json({ container, ...result });
  });

  app.get("/health", async (c) => {
    const names = Object.keys(deps.health);
    const results = await Promise.all(
      names.map((n) => _runCheck(deps.health[n]!, healthTimeoutMs)),
    );
    const checks: Record<string, HealthResult> = {};
    names.forEach((n, i) => (checks[n] = results[i]!));
    const ok = results.every((r) => r.ok);
    return c.json({ status: ok ? "ok" : "failing", checks }, ok ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    await _refreshGauges(deps, logError, options.deploysStream ?? "tailwise:deploys");
    return c.body(metrics.registry.render(), 200, { "Content-Type": METRICS_CONTENT_TYPE });
  });

  if (deps.rateStore && deps.rateModel) {
    app.route(
      "/",
      createVolumeView({
        rates: deps.rateStore,
        rateModel: deps.rateModel,
        ...(deps.incidents ? { incidents: deps.incidents } : {}),
        deploys: (service) =>
          listDeploys(deps.logStream, options.deploysStream ?? "tailwise:deploys", {
            container: service,
            limit: 50,
          }),
        now,
      }),
    );
  }

  if (deps.incidents) {
    app.route("/", createIncidentsView({ incidents: deps.incidents }));
    app.route(
      "/incidents",
      createIncidentsApi({
        incidents: deps.incidents,
        logStream: deps.logStream,
        feedback: deps.feedback,
        anomaliesStream: stream,
        now,
      }),
    );
  }

  app.get("/openapi.json", (c) => c.json(openApiDocument()));

  app.route(
    "/deploys",
    createDeploysApp({
      logStream: deps.logStream,
      ...(deps.history ? { history: deps.history } : {}),
    }, {
      deployStream: options.deploysStream ?? "tailwise:deploys",
      anomalyStream: stream,
      reportWindowMs: options.deploys?.reportWindowMs,
      baselineMs: options.deploys?.baselineMs,
      maxScan,
      now,
    }),
  );

  app.route(
    "/",
    createPatternsView({ ...(deps.history ? { history: deps.history } : {}), now }),
  );

  app.route(
    "/",
    createServiceView({
      registry: deps.registry,
      ...(deps.search ? { search: deps.search } : {}),
      ...(deps.lineCounts ? { lineCounts: deps.lineCounts } : {}),
      deploys: (service) =>
        listDeploys(deps.logStream, options.deploysStream ?? "tailwise:deploys", {
          container: service,
          limit: 10,
        }),
      now,
    }),
  );

  app.route(
    "/",
    createDashboard(deps, {
      logError,
      now,
      ...options.dashboard,
      token: options.token,
      anomaliesStream: stream,
      deploysStream: options.deploysStream ?? "tailwise:deploys",
      logsStream: options.dashboard?.logsStream ?? deps.consumerGroups[0]?.stream ??
        "tailwise:logs",
      logsStreams: options.dashboard?.logsStreams ??
        (options.dashboard?.logsStream !== undefined
          ? [options.dashboard.logsStream]
          : [...new Set(deps.consumerGroups.map((g) => g.stream))]),
    }),
  );

  // A known path with another method is 405 with the methods it takes, not
  // 404: derived from every route registered above, sub-apps included.
  for (const [path, allow] of allowedMethods(app.routes)) {
    app.all(path, (c) =>
      c.json(
        { error: `Method ${_quote(c.req.method)} not allowed on ${path}: expected ${allow}` },
        405,
        { Allow: allow },
      ));
  }

  app.notFound((c) => c.json({ error: `No route for ${c.req.method} ${c.req.path}` }, 404));

  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      const headers: Record<string, string> = {};
      if (err.status === 401) {
        headers["WWW-Authenticate"] = err.message.startsWith("Invalid")
          ? 'Bearer realm="tailwise", error="invalid_token"'
          : 'Bearer realm="tailwise"';
      }
      return c.json({ error: err.message || "Request failed" }, err.status, headers);
    }
    if (err instanceof ModelNotFoundError) return c.json({ error: err.message }, 404);
    if (err instanceof ModelCorruptError) {
      logError("api: corrupt model", err);
      return c.json({ error: err.message }, 500);
    }
    logError(`api: ${c.req.method} ${c.req.path} failed`, err);
    return c.json({ error: "Internal server error" }, 500 as ContentfulStatusCode);
  });

  return app;
}

const _METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The methods each concrete route path takes, as an `Allow` header value
 * (`GET` implies `HEAD`), from a Hono app's registered routes. Wildcard paths
 * (middleware) and paths with a handler for every method are left out.
 *
 * @example
 * ```ts
 * allowedMethods([{ method: "GET", path: "/models" }, { method: "ALL", path: "*" }]);
 * // Map { "/models" => "GET, HEAD" }
 * ```
 *
 * @param routes the app's `routes`
 * @returns path → `Allow` value, in registration order
 */
export function allowedMethods(
  routes: readonly { method: string; path: string }[],
): Map<string, string> {
  const methods = new Map<string, Set<string>>();
  const any = new Set<string>();
  for (const { method, path } of routes) {
    if (path.includes("*")) continue;
    if (method === "ALL") {
      any.add(path);
      continue;
    }
    let set = methods.get(path);
    if (!set) methods.set(path, set = new Set());
    set.add(method.toUpperCase());
    if (method.toUpperCase() === "GET") set.add("HEAD");
  }
  const out = new Map<string, string>();
  for (const [path, set] of methods) {
    if (any.has(path)) continue;
    const known = _METHOD_ORDER.filter((m) => set.has(m));
    const other = [...set].filter((m) => !_METHOD_ORDER.includes(m)).sort();
    out.set(path, [...known, ...other].join(", "));
  }
  return out;
}

/** Whether a container has history in the training window or model versions. */
async function _known(deps: ApiDeps, container: string, since: number): Promise<boolean> {
  if ((await deps.registry.list(container)).length > 0) return true;
  // Without a line count (a test's api), training itself says what it found.
  if (!deps.lineCounts) return true;
  const counts = await deps.lineCounts(new Date(since));
  return counts.some((c) => c.container === container && c.count > 0);
}

async function _refreshGauges(
  deps: ApiDeps,
  logError: (message: string, error: unknown) => void,
  deploysStream: string,
): Promise<void> {
  const { metrics } = deps;
  await Promise.all(deps.consumerGroups.map(async ({ stream, group }) => {
    try {
      const info = await deps.logStream.groupInfo(stream, group);
      metrics.streamPending.set({ stream, group }, info.pending);
      metrics.streamLag.set({ stream, group }, info.lag ?? NaN);
    } catch (e) {
      logError(`api: cannot read consumer group ${group} of ${stream}`, e);
    }
  }));
  try {
    const models = await deps.registry.list();
    metrics.modelVersion.reset();
    for (const m of models) {
      if (m.status === "current") metrics.modelVersion.set({ container: m.container }, m.version);
    }
  } catch (e) {
    logError("api: cannot list models", e);
  }
  try {
    const deploys = await listDeploys(deps.logStream, deploysStream, { limit: 10_000 });
    metrics.lastDeploy.reset();
    metrics.deploys.reset();
    const counts = new Map<string, number>();
    // Newest first: the first deploy of a service is its latest.
    for (const d of deploys) {
      if (!counts.has(d.container)) metrics.lastDeploy.set({ container: d.container }, d.at / 1000);
      counts.set(d.container, (counts.get(d.container) ?? 0) + 1);
    }
    for (const [container, n] of counts) metrics.deploys.set({ container }, n);
  } catch (e) {
    logError("api: cannot list deploys", e);
  }
}

async function _runCheck(check: HealthCheck, timeoutMs: number): Promise<HealthResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<HealthResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  try {
    const r = await Promise.race([
      check().then((v): HealthResult => (typeof v === "boolean" ? { ok: v } : v)),
      timeout,
    ]);
    return r.detail === undefined ? { ok: r.ok === true } : { ok: r.ok === true, detail: r.detail };
  } catch (e) {
    // Error messages may name hosts or paths; /health is unauthenticated.
    return { ok: false, detail: `check failed (${e instanceof Error ? e.name : typeof e})` };
  } finally {
    clearTimeout(timer);
  }
}

function _digest(token: string): Uint8Array {
  // Comparing digests keeps the comparison independent of the token's length.
  return new Uint8Array(createHash("sha256").update(token, "utf8").digest());
}

/** A history line as `GET /context` and `GET /search` answer it. */
function _contextLine(e: LogEntry) {
  return {
    container: e.containerName,
    ts: e.ts,
    stream: e.stream,
    line: e.line,
    display: displayText(e.line).text,
    ...(e.truncated ? { truncated: true } : {}),
  };
}

function _bad(message: string): never {
  throw new HTTPException(400, { message: `Invalid request: ${message}` });
}

function _kind(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function _quote(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  return v === undefined ? "nothing" : _kind(v);
}

async function _readJson(c: Context, opts: { optional?: boolean } = {}): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") {
    if (opts.optional) return undefined;
    _bad("body: expected a JSON object, got an empty body");
  }
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new HTTPException(415, {
      message: `Unsupported content type ${_quote(type)}: expected application/json`,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    _bad("body: expected valid JSON");
  }
}

function _object(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    _bad(`${field}: expected a JSON object, got ${_kind(v)}`);
  }
  return v as Record<string, unknown>;
}

function _containerField(v: unknown, field: string): string {
  if (typeof v !== "string") _bad(`${field}: expected a container name, got ${_kind(v)}`);
  return _checkContainer(v, field);
}

function _containerParam(c: Context): string {
  // Hono decodes path parameters; a malformed escape stays as written.
  return _checkContainer(c.req.param("container") ?? "", "container");
}

function _checkContainer(name: string, field: string): string {
  if (name.length === 0) _bad(`${field}: expected a non-empty container name`);
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_CONTAINER_NAME_BYTES) {
    _bad(`${field}: expected at most ${MAX_CONTAINER_NAME_BYTES} bytes, got ${bytes}`);
  }
  // deno-lint-ignore no-control-regex
  if (!name.isWellFormed() || /[\u0000-\u001f\u007f-\u009f]/.test(name)) {
    _bad(`${field}: expected a name without control characters, got ${displayContainer(name)}`);
  }
  return name;
}

function _time(v: string, field: string): number {
  if (/^\d{1,16}$/.test(v)) return Number(v);
  const ms = /^\d{4}-\d\d-\d\dT/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(ms) || ms < 0) {
    _bad(`${field}: expected an ISO 8601 time or ms since the epoch, got ${_quote(v)}`);
  }
  return ms;
}

function _int(v: string, field: string, min: number, max: number): number {
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    _bad(`${field}: expected an integer from ${min} to ${max}, got ${_quote(v)}`);
  }
  return n;
}

function _idMs(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}
