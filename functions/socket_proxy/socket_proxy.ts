/**
 * A read-only gate in front of the Docker Engine API: the collector reaches
 * Docker only through it. {@linkcode isAllowed} is the whole policy, a pure
 * allowlist of the read endpoints collect needs (ping, version, events,
 * container list, inspect and logs, each with an optional `/v1.xx` prefix
 * and only the query parameters those endpoints document); every other
 * request gets `403` with a JSON body. {@linkcode createSocketProxy} applies
 * it to HTTP requests and streams the engine's answers back unchanged, so
 * the long-lived `events` and `logs?follow=1` streams flow as they come.
 *
 * @module
 */

/** The verdict of {@linkcode isAllowed}. */
export interface Verdict {
  /** True when the request may reach the engine. */
  allowed: boolean;
  /** Why it was refused (empty when allowed). */
  reason: string;
}

/** One allowed endpoint: its path shape and the query parameters it takes. */
interface _Rule {
  methods: readonly string[];
  pattern: RegExp;
  params: readonly string[];
}

// A container id or name: Docker allows [a-zA-Z0-9][a-zA-Z0-9_.-]*, so no
// segment can be "." or ".." and nothing needs percent-encoding.
const _ID = "[A-Za-z0-9][A-Za-z0-9_.-]{0,127}";

const _RULES: readonly _Rule[] = [
  { methods: ["GET", "HEAD"], pattern: /^\/_ping$/, params: [] },
  { methods: ["GET"], pattern: /^\/version$/, params: [] },
  { methods: ["GET"], pattern: /^\/events$/, params: ["since", "until", "filters"] },
  {
    methods: ["GET"],
    pattern: /^\/containers\/json$/,
    params: ["all", "limit", "size", "filters"],
  },
  { methods: ["GET"], pattern: new RegExp(`^/containers/${_ID}/json$`), params: ["size"] },
  {
    methods: ["GET"],
    pattern: new RegExp(`^/containers/${_ID}/logs$`),
    params: ["follow", "stdout", "stderr", "since", "until", "timestamps", "tail", "details"],
  },
];

const _VERSION_PREFIX = /^\/v[0-9]{1,2}\.[0-9]{1,3}(?=\/)/;

/**
 * Decides whether a request may reach the Docker engine. The path is the raw
 * request target (path and optional query string), checked as sent: it is
 * refused, not normalised, when it holds dot segments, empty segments,
 * backslashes, percent-encoding or a fragment, so what is checked is exactly
 * what the engine would route.
 *
 * @param method the HTTP method
 * @param target the request target, e.g. `/v1.41/containers/abc/logs?follow=1`
 * @returns the verdict, with the reason of a refusal
 */
export function isAllowed(method: string, target: string): Verdict {
  const refuse = (reason: string): Verdict => ({ allowed: false, reason });
  if (!target.startsWith("/")) return refuse("the target is not an absolute path");
  if (target.length > 4096) return refuse("the target is longer than 4096 characters");
  if ([...target].some((c) => c <= " " || c === "\x7f" || c === "#" || c === "\\")) {
    return refuse("the target holds a control character, space, '#' or backslash");
  }
  const q = target.indexOf("?");
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? "" : target.slice(q + 1);
  if (rawPath.includes("%")) return refuse("percent-encoding in the path is not allowed");
  if (rawPath.includes("//")) return refuse("empty path segments are not allowed");
  if (rawPath.split("/").some((s) => s === "." || s === "..")) {
    return refuse("dot segments in the path are not allowed");
  }
  const path = rawPath.replace(_VERSION_PREFIX, "");
  const rule = _RULES.find((r) => r.pattern.test(path));
  if (!rule) return refuse(`${path} is not a read endpoint collect needs`);
  if (!rule.methods.includes(method)) return refuse(`${method} ${path} is not allowed`);
  const bad = _badParam(query, rule.params);
  if (bad !== null) return refuse(bad);
  return { allowed: true, reason: "" };
}

function _badParam(query: string, allowed: readonly string[]): string | null {
  if (query === "") return null;
  const seen = new Set<string>();
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = eq === -1 ? pair : pair.slice(0, eq);
    if (!allowed.includes(name)) {
      return `the query parameter ${JSON.stringify(name)} is not allowed`;
    }
    if (seen.has(name)) return `the query parameter ${JSON.stringify(name)} is repeated`;
    seen.add(name);
    try {
      decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return `the query parameter ${JSON.stringify(name)} is not valid percent-encoding`;
    }
  }
  return null;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are never forwarded either way.
const _HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
];

/** Options of {@linkcode createSocketProxy}. */
export interface SocketProxyOptions {
  /**
   * Called for every refused request, for logging.
   * @default no-op
   */
  onRefused?: (method: string, target: string, reason: string) => void;
}

/**
 * Builds the proxy's request handler. A request that {@linkcode isAllowed}
 * refuses, one that asks for a protocol upgrade (attach, hijack) and one
 * with a body get `403` and `{"error": ..., "message": ...}` (`message` is
 * what Docker clients show); an allowed one is sent to the engine with its
 * hop-by-hop headers removed, and the engine's answer is streamed back.
 *
 * @param engine sends a request to the Docker engine (e.g. `fetch` with a
 *   unix-socket client); the URL's host is `127.0.0.1` (an IP: Deno resolves the
 *   host name even when a unix transport carries the request)
 * @param options a hook for refusals
 * @returns the handler for `Deno.serve`
 */
export function createSocketProxy(
  engine: (request: Request) => Promise<Response>,
  options: SocketProxyOptions = {},
): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    const target = url.pathname + url.search;
    let verdict = isAllowed(request.method, target);
    const connection = request.headers.get("connection") ?? "";
    if (verdict.allowed && (request.headers.has("upgrade") || /upgrade/i.test(connection))) {
      verdict = { allowed: false, reason: "protocol upgrades (attach, hijack) are not allowed" };
    }
    if (verdict.allowed && request.body !== null) {
      verdict = { allowed: false, reason: "requests with a body are not allowed" };
    }
    if (!verdict.allowed) {
      await request.body?.cancel();
      options.onRefused?.(request.method, target, verdict.reason);
      const text = `tailwise socket proxy: ${verdict.reason}`;
      return Response.json({ error: text, message: text }, { status: 403 });
    }
    const headers = new Headers(request.headers);
    for (const h of _HOP_BY_HOP) headers.delete(h);
    let upstream: Response;
    try {
      upstream = await engine(
        new Request(`http://127.0.0.1${target}`, {
          method: request.method,
          headers,
        }),
      );
    } catch (e) {
      const text = `tailwise socket proxy: the Docker engine is unreachable (${
        e instanceof Error ? e.message : String(e)
      })`;
      return Response.json({ error: text, message: text }, { status: 502 });
    }
    const out = new Headers(upstream.headers);
    for (const h of _HOP_BY_HOP) out.delete(h);
    return new Response(upstream.body, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: out,
    });
  };
}
