/**
 * The dashboard: a server-rendered page of the api (Hono, `hono/html`, no
 * front-end build step) with the containers (log rate, model state), the
 * anomaly timeline with feedback buttons, retrain and rollback, and live
 * updates over server-sent events (`GET /events`).
 *
 * {@linkcode createApi} mounts {@linkcode createDashboard} at `/` behind its
 * auth middleware, which lets the public paths through
 * ({@linkcode isPublicDashboardPath}) and accepts the session cookie besides
 * the bearer header. Signing in (`POST /login` with the token, or
 * `GET /login?token=...`, or the link of {@linkcode dashboardLoginUrl} whose
 * token stays in the URL fragment) sets an `HttpOnly; SameSite=Strict`
 * cookie holding an expiry and an HMAC of it keyed by the token, never the
 * token itself. Requests authenticated by the cookie that change state must
 * come from the same origin (`Origin`, else `Sec-Fetch-Site`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { streamSSE } from "hono/streaming";
import { fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import { messageLineCount } from "../../shared/ports/log_entry.ts";
import { DEFAULT_SUPPRESS_MS } from "../../shared/ports/feedback_store.ts";
import type { ModelMeta } from "../../shared/ports/model_registry.ts";
import type { ApiDeps } from "./api.ts";
import { DASHBOARD_CSS, DASHBOARD_JS } from "./dashboard_assets.ts";
import {
  type AnomalyView,
  anomalyView,
  type ContainerView,
  deployView,
  displayText,
  renderDashboard,
  renderLogin,
} from "./dashboard_view.ts";
import { sleep } from "../../shared/runtime/sleep.ts";
import { listDeploys } from "./deploys.ts";

/** The name of the session cookie. */
export const SESSION_COOKIE = "tailwise_session";

/** What the dashboard reads: the api's adapters. */
export type DashboardDeps = Pick<ApiDeps, "registry" | "logStream" | "feedback" | "lineCounts">;

/** Options of {@linkcode createDashboard}. */
export interface DashboardOptions {
  /** The api token; the session cookie is derived from it. */
  token: string;
  /** The anomalies stream (`config.streams.anomalies`). */
  anomaliesStream: string;
  /** The log stream (`config.streams.logs`), for the log rates. */
  logsStream: string;
  /**
   * Every shard of the log stream (`configuredLogShards(config)`): the log
   * rates read them all, since each container's lines go to one of them.
   * @default [logsStream]
   */
  logsStreams?: readonly string[];
  /**
   * The deploys stream (`config.streams.deploys`): the newest deploys are
   * listed, with their reports, and marked on the anomaly timeline.
   * @default "tailwise:deploys"
   */
  deploysStream?: string;
  /**
   * Lines a container needs before its first model (`config.train.minLines`).
   * @default 500
   */
  minLines?: number;
  /**
   * The training window (`config.train.windowMs`), for the lines counted towards the first model.
   * @default 86_400_000
   */
  trainWindowMs?: number;
  /**
   * How long `normal` feedback silences a template (`config.api.suppressMs`), for the hints.
   * @default 86_400_000
   */
  suppressMs?: number;
  /**
   * How long a session lasts, in ms.
   * @default 604_800_000 (7 days)
   */
  sessionTtlMs?: number;
  /**
   * Anomalies on the page when it loads.
   * @default 100
   */
  pageAnomalies?: number;
  /**
   * How often `/events` looks for new anomalies, in ms.
   * @default 500
   */
  pollMs?: number;
  /**
   * How often `/events` sends the containers' states, in ms.
   * @default 5000
   */
  stateEveryMs?: number;
  /**
   * Longest life of one `/events` connection, in ms; the browser reconnects
   * where it left off.
   * @default 900_000
   */
  maxStreamMs?: number;
  /** Ends every `/events` stream, e.g. when the server stops (it would wait for them). */
  signal?: AbortSignal;
  /**
   * Where unexpected errors go.
   * @default console.error
   */
  logError?: (message: string, error: unknown) => void;
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
}

const _PUBLIC = new Set(["/", "/login", "/logout", "/ui/dashboard.css", "/ui/dashboard.js"]);
const _STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const _RATE_SCAN = 20_000;

/**
 * True for the dashboard's paths that answer without a session: the page
 * (which shows the login form without one), login, logout and the assets.
 *
 * @param path the request path
 * @returns whether the api's auth lets it through
 */
export function isPublicDashboardPath(path: string): boolean {
  return _PUBLIC.has(path);
}

/**
 * A session cookie value: an expiry and the HMAC-SHA256 of it keyed by the
 * token, so it holds no secret and dies with the token.
 *
 * @param token the api token
 * @param expiresAt when the session ends, in ms since the epoch
 * @returns the cookie value
 */
export function createSession(token: string, expiresAt: number): string {
  const exp = String(Math.floor(expiresAt));
  return `${exp}.${_mac(token, exp)}`;
}

/**
 * Checks a session cookie value.
 *
 * @param token the api token
 * @param value the cookie value
 * @param now the time, in ms since the epoch
 * @returns true when it was made with this token and has not expired
 */
export function verifySession(token: string, value: string, now: number): boolean {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) return false;
  const expected = Buffer.from(_mac(token, m[1]!));
  const given = Buffer.from(m[2]!);
  return given.length === expected.length && timingSafeEqual(given, expected) &&
    Number(m[1]) > now;
}

/**
 * True when a request comes from the page's own origin: its `Origin` names
 * the host it was sent to, or, when `Origin` is absent or `null` (browsers
 * send `null` under `Referrer-Policy: no-referrer`), `Sec-Fetch-Site` (which
 * scripts cannot set) says `same-origin`. The CSRF check for
 * cookie-authenticated changes.
 *
 * @param c the request context
 * @returns whether it is same-origin
 */
export function isSameOrigin(c: Context): boolean {
  const origin = c.req.header("origin");
  const host = c.req.header("host") ?? new URL(c.req.url).host;
  // Under Referrer-Policy: no-referrer, browsers send `Origin: null` on same-origin posts.
  if (origin !== undefined && origin !== "null") {
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  }
  return c.req.header("sec-fetch-site") === "same-origin";
}

/**
 * The one-time sign-in link `deno task start` prints: the token travels in
 * the fragment, which browsers never send to a server, and the login page
 * posts it and removes it from the address bar and history.
 *
 * @param baseUrl where the api listens, e.g. `http://127.0.0.1:8080`
 * @param token the api token
 * @returns the link
 */
export function dashboardLoginUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/login#token=${encodeURIComponent(token)}`;
}

/**
 * Builds the dashboard's routes: `GET /` (the page, or the login form
 * without a session), `GET|POST /login`, `POST /logout`, `GET /events`
 * (server-sent events: `anomaly` and `containers`) and the assets under
 * `/ui/`. Mount it in an app whose auth accepts the session cookie
 * ({@linkcode createApi} does).
 *
 * @param deps the registry, the streams and the feedback store
 * @param options the token, the streams and the timings
 * @returns the sub-app
 */
export function createDashboard(deps: DashboardDeps, options: DashboardOptions): Hono {
  const now = options.now ?? Date.now;
  const minLines = options.minLines ?? 500;
  const windowMs = options.trainWindowMs ?? 86_400_000;
  const suppressMs = options.suppressMs ?? DEFAULT_SUPPRESS_MS;
  const ttlMs = options.sessionTtlMs ?? 7 * 86_400_000;
  const pageAnomalies = options.pageAnomalies ?? 100;
  const pollMs = options.pollMs ?? 500;
  const stateEveryMs = options.stateEveryMs ?? 5000;
  const maxStreamMs = options.maxStreamMs ?? 900_000;
  const logError = options.logError ?? ((m, e) => console.error(m, e));
  const states = new _ContainerStates(deps, {
    logs: options.logsStreams?.length ? [...options.logsStreams] : [options.logsStream],
    minLines,
    windowMs,
    now,
  });

  const app = new Hono();

  const signIn = (c: Context, token: unknown) => {
    if (typeof token !== "string" || !_sameToken(token, options.token)) return false;
    setCookie(c, SESSION_COOKIE, createSession(options.token, now() + ttlMs), {
      path: "/",
      httpOnly: true,
      sameSite: "Strict",
      secure: _isHttps(c),
      maxAge: Math.floor(ttlMs / 1000),
    });
    return true;
  };
  const hasSession = (c: Context) => {
    const v = getCookie(c, SESSION_COOKIE);
    return v !== undefined && verifySession(options.token, v, now());
  };

  app.get("/ui/dashboard.css", (c) => c.body(DASHBOARD_CSS, 200, { "Content-Type": "text/css" }));
  app.get(
    "/ui/dashboard.js",
    (c) => c.body(DASHBOARD_JS, 200, { "Content-Type": "text/javascript" }),
  );

  app.get("/login", (c) => {
    const token = c.req.query("token");
    if (token === undefined) return c.html(renderLogin(null));
    // The token leaves the address bar with the redirect; no-referrer keeps it off other sites.
    if (signIn(c, token)) return c.redirect("/", 303);
    return c.html(renderLogin("That token is not right."), 401);
  });

  app.post("/login", async (c) => {
    if (!isSameOrigin(c)) throw new HTTPException(403, { message: "Cross-origin sign-in refused" });
    const form = await c.req.parseBody();
    if (signIn(c, form.token)) return c.redirect("/", 303);
    return c.html(renderLogin("That token is not right."), 401);
  });

  app.post("/logout", (c) => {
    if (!isSameOrigin(c)) {
      throw new HTTPException(403, { message: "Cross-origin sign-out refused" });
    }
    deleteCookie(c, SESSION_COOKIE, { path: "/", secure: _isHttps(c) });
    return c.redirect("/", 303);
  });

  app.get("/", async (c) => {
    if (!hasSession(c)) return c.html(renderLogin(null));
    const [containers, anomalies, deploys] = await Promise.all([
      states.get(),
      _recentAnomalies(deps, options.anomaliesStream, pageAnomalies, now()),
      listDeploys(deps.logStream, options.deploysStream ?? "tailwise:deploys", { limit: 20 })
        .then((list) => list.map(deployView))
        .catch((e) => {
          logError("dashboard: cannot list deploys", e);
          return [];
        }),
    ]);
    return c.html(renderDashboard({ containers, anomalies, suppressMs, minLines, deploys }));
  });

  app.get("/events", (c) => {
    const resume = c.req.header("last-event-id") ?? c.req.query("after") ?? "";
    const after = _STREAM_ID.test(resume) ? resume : null;
    return streamSSE(c, async (sse) => {
      const stop = new AbortController();
      sse.onAbort(() => stop.abort());
      const onShutdown = () => stop.abort();
      options.signal?.addEventListener("abort", onShutdown, { once: true });
      if (options.signal?.aborted) stop.abort();
      const until = now() + maxStreamMs;
      try {
        let last = after ?? await _newestId(deps, options.anomaliesStream);
        await sse.writeSSE({ event: "hello", data: JSON.stringify({ at: now() }), retry: 3000 });
        let nextState = 0;
        let failures = 0;
        while (!stop.signal.aborted && now() < until) {
          try {
            const batch = await deps.logStream.range(options.anomaliesStream, {
              start: `(${last}`,
              end: "+",
              count: 100,
            });
            for (const m of batch) {
              last = m.id;
              const view = anomalyView(fieldsToAnomaly(m.id, m.fields));
              await sse.writeSSE({ event: "anomaly", id: m.id, data: JSON.stringify(view) });
            }
            if (batch.length === 100) continue;
            if (now() >= nextState) {
              nextState = now() + stateEveryMs;
              const containers = await states.get();
              await sse.writeSSE({ event: "containers", data: JSON.stringify({ containers }) });
            }
            failures = 0;
          } catch (e) {
            if (failures++ === 0) logError("dashboard: cannot read for /events", e);
          }
          await sleep(
            failures > 0 ? Math.min(pollMs * 2 ** failures, 10_000) : pollMs,
            stop.signal,
          );
        }
      } finally {
        options.signal?.removeEventListener("abort", onShutdown);
      }
    }, (e) => {
      logError("dashboard: /events failed", e);
      return Promise.resolve();
    });
  });

  return app;
}

async function _recentAnomalies(
  deps: DashboardDeps,
  stream: string,
  count: number,
  at: number,
): Promise<AnomalyView[]> {
  const messages = await deps.logStream.range(stream, {
    start: "-",
    end: "+",
    count,
    reverse: true,
  });
  const anomalies = messages.map((m) => fieldsToAnomaly(m.id, m.fields));
  const suppressed = new Map<string, Promise<Set<string>>>();
  for (const a of anomalies) {
    if (!suppressed.has(a.container)) {
      suppressed.set(a.container, deps.feedback.suppressedTemplates(a.container, at));
    }
  }
  return await Promise.all(anomalies.map(async (a) => {
    const [fb, off] = await Promise.all([
      deps.feedback.get(a.container, a.id),
      suppressed.get(a.container)!,
    ]);
    return anomalyView(a, { feedback: fb?.label ?? null, suppressed: off.has(a.templateId) });
  }));
}

async function _newestId(deps: DashboardDeps, stream: string): Promise<string> {
  const [m] = await deps.logStream.range(stream, { start: "-", end: "+", count: 1, reverse: true });
  return m?.id ?? "0-0";
}

/** The containers' states, computed at most once per second whatever the number of viewers. */
class _ContainerStates {
  #deps: DashboardDeps;
  #o: { logs: string[]; minLines: number; windowMs: number; now: () => number };
  #cached: { at: number; value: Promise<ContainerView[]> } | null = null;
  #counts: { at: number; value: Map<string, number> } | null = null;
  #seen = new Map<string, number>();
  /** Container names seen behind each key (service replicas, tasks). */
  #behind = new Map<string, Set<string>>();
  #ratesBehind = new Map<string, Set<string>>();
  #countsBehind = new Map<string, string[]>();

  constructor(
    deps: DashboardDeps,
    options: { logs: string[]; minLines: number; windowMs: number; now: () => number },
  ) {
    this.#deps = deps;
    this.#o = options;
  }

  get(): Promise<ContainerView[]> {
    const at = this.#o.now();
    if (this.#cached && at - this.#cached.at < 1000) return this.#cached.value;
    const value = this.#compute(at);
    this.#cached = { at, value };
    value.catch(() => (this.#cached = null));
    return value;
  }

  async #compute(at: number): Promise<ContainerView[]> {
    const [models, rates] = await Promise.all([this.#deps.registry.list(), this.#rates(at)]);
    const byContainer = new Map<string, ModelMeta[]>();
    for (const m of models) {
      const list = byContainer.get(m.container) ?? [];
      list.push(m);
      byContainer.set(m.container, list);
    }
    for (const name of rates.keys()) this.#seen.set(name, at);
    for (const [key, names] of this.#ratesBehind) {
      let known = this.#behind.get(key);
      if (!known) this.#behind.set(key, known = new Set());
      for (const n of names) known.add(n);
      // Tasks replaced long ago leave the list.
      while (known.size > 20) known.delete(known.values().next().value!);
    }
    // Containers quiet for an hour and without a model leave the table.
    for (const [name, seenAt] of this.#seen) {
      if (at - seenAt > 3_600_000 || this.#seen.size > 2000) {
        this.#seen.delete(name);
        this.#behind.delete(name);
      }
    }
    const names = new Set([...byContainer.keys(), ...this.#seen.keys()]);
    const learning = [...names].some((n) =>
      !byContainer.get(n)?.some((v) => v.status === "current")
    );
    const counts = learning ? await this.#lineCounts(at) : null;
    for (const name of counts?.keys() ?? []) names.add(name);
    for (const [key, behind] of this.#countsBehind) {
      if (this.#behind.has(key)) continue;
      this.#behind.set(key, new Set(behind));
    }
    return [...names].sort().map((name): ContainerView => {
      const versions = byContainer.get(name) ?? [];
      const current = versions.find((v) => v.status === "current") ?? null;
      const count = counts?.get(name);
      return {
        name: displayText(name, 200).text,
        key: name,
        linesPerMin: rates.get(name) ?? 0,
        state: current ? "trained" : "learning",
        version: current?.version ?? null,
        threshold: current?.threshold ?? null,
        trainedAt: current?.trainedAt ?? null,
        linesToModel: current || count === undefined ? null : Math.max(0, this.#o.minLines - count),
        canRollback: current !== null &&
          versions.some((v) =>
            v.version < current.version && v.promotedAt !== undefined &&
            v.rolledBackAt === undefined
          ),
        behind: _behindText(name, this.#behind.get(name)),
      };
    });
  }

  /** Lines per minute per container over the last minute of every shard of the log stream. */
  async #rates(at: number): Promise<Map<string, number>> {
    const shards = await Promise.all(this.#o.logs.map((stream) => this.#shardRates(stream, at)));
    const counts = new Map<string, number>();
    const behind = new Map<string, Set<string>>();
    for (const shard of shards) {
      for (const [key, n] of shard.counts) counts.set(key, (counts.get(key) ?? 0) + n);
      for (const [key, names] of shard.behind) {
        const b = behind.get(key);
        if (b) { for (const name of names) b.add(name); }
        else behind.set(key, names);
      }
    }
    this.#ratesBehind = behind;
    return counts;
  }

  /** Lines per minute per container over the last minute of one shard. */
  async #shardRates(
    stream: string,
    at: number,
  ): Promise<{ counts: Map<string, number>; behind: Map<string, Set<string>> }> {
    const recent = await this.#deps.logStream.range(stream, {
      start: String(at - 60_000),
      end: "+",
      count: _RATE_SCAN,
      reverse: true,
    });
    const counts = new Map<string, number>();
    const behind = new Map<string, Set<string>>();
    for (const m of recent) {
      const name = m.fields.n;
      if (name === undefined) continue;
      const key = m.fields.k || name;
      // A packed message carries many lines of one container.
      counts.set(key, (counts.get(key) ?? 0) + messageLineCount(m.fields));
      let b = behind.get(key);
      if (!b) behind.set(key, b = new Set());
      b.add(name);
    }
    // A full scan did not reach back a minute: scale by the time this shard's scan covered.
    const oldest = recent.at(-1);
    const span = recent.length === _RATE_SCAN && oldest
      ? Math.max(1000, at - Number(oldest.id.slice(0, oldest.id.indexOf("-"))))
      : 60_000;
    for (const [name, n] of counts) counts.set(name, (n * 60_000) / span);
    return { counts, behind };
  }

  /** Lines per container in the training window, refreshed at most every 30 s. */
  async #lineCounts(at: number): Promise<Map<string, number> | null> {
    const source = this.#deps.lineCounts;
    if (!source) return null;
    if (this.#counts && at - this.#counts.at < 30_000) return this.#counts.value;
    const list = await source(new Date(at - this.#o.windowMs));
    const value = new Map(list.map((c) => [c.container, c.count]));
    this.#countsBehind = new Map(list.map((c) => [c.container, c.containers ?? []]));
    this.#counts = { at, value };
    return value;
  }
}

/** "a, b, c +2 more" of the names behind a key, or "" when it is only the key itself. */
function _behindText(key: string, names: Set<string> | undefined): string {
  if (!names || names.size === 0 || (names.size === 1 && names.has(key))) return "";
  const list = [...names].sort();
  const shown = list.slice(0, 3).map((n) => displayText(n, 80).text).join(", ");
  return list.length > 3 ? `${shown} +${list.length - 3} more` : shown;
}

function _mac(token: string, exp: string): string {
  return createHmac("sha256", token).update(`tailwise-session:${exp}`).digest("base64url");
}

function _sameToken(given: string, token: string): boolean {
  const a = createHmac("sha256", "tailwise-login").update(given).digest();
  const b = createHmac("sha256", "tailwise-login").update(token).digest();
  return timingSafeEqual(a, b);
}

function _isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" ||
    c.req.header("x-forwarded-proto") === "https";
}
