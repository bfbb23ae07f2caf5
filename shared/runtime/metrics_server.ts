/**
 * A function process's own `/metrics`: each replica of collect, ingest,
 * score and train serves its registry on `METRICS_HOST:METRICS_PORT`, so
 * Prometheus can scrape every replica (the api serves its own, behind its
 * token). Also {@linkcode countLinesIn}, which counts the lines a writer
 * appends to the log stream (`tailwise_lines_in_total`).
 *
 * @module
 */

import { type Fields, type LogStream } from "../ports/log_stream.ts";
import { messageLineCount } from "../ports/log_entry.ts";
import type { Logger } from "./logger.ts";
import { type Counter, METRICS_CONTENT_TYPE, type MetricsRegistry } from "./metrics.ts";

/** Where {@linkcode serveMetrics} listens (`config.metrics`). */
export interface MetricsEndpoint {
  /** `METRICS_HOST`. */
  host: string;
  /** `METRICS_PORT`; null serves nothing. */
  port: number | null;
}

/**
 * Serves `GET /metrics` (Prometheus text, no auth: bind it to a private
 * network) until `signal` aborts. Other paths are 404.
 *
 * @example
 * ```ts
 * const metrics = createTailwiseMetrics();
 * const stop = new AbortController();
 * serveMetrics({ host: "127.0.0.1", port: 9464 }, metrics.registry, stop.signal);
 * ```
 *
 * @param endpoint host and port; a null port serves nothing
 * @param registry what to render
 * @param signal stops the server
 * @param log where "listening" goes
 * @returns the server, or null when no port is set
 * @throws {Error} naming the address when it is in use
 */
export function serveMetrics(
  endpoint: MetricsEndpoint,
  registry: MetricsRegistry,
  signal: AbortSignal,
  log?: Logger,
): Deno.HttpServer<Deno.NetAddr> | null {
  if (endpoint.port === null) return null;
  try {
    return Deno.serve({
      hostname: endpoint.host,
      port: endpoint.port,
      signal,
      onListen: ({ hostname, port }) => log?.info("metrics listening", { hostname, port }),
    }, (req) => {
      const path = new URL(req.url).pathname;
      if (path !== "/metrics") return new Response("Not found\n", { status: 404 });
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("Method not allowed\n", { status: 405, headers: { Allow: "GET" } });
      }
      return new Response(registry.render(), { headers: { "Content-Type": METRICS_CONTENT_TYPE } });
    });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot serve /metrics on ${endpoint.host}:${endpoint.port}: the address is in use. ` +
          "Set METRICS_PORT to a free port (one per process)",
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * A log stream that counts, per container, the lines appended to the given
 * streams (what the stream applied: a resend it skipped counts nothing).
 *
 * @param log the stream adapter
 * @param streams the log stream's shards
 * @param counter `tailwise_lines_in_total{container}`
 * @returns the same adapter, counting
 */
export function countLinesIn(
  log: LogStream,
  streams: readonly string[],
  counter: Counter,
): LogStream {
  const counted = new Set(streams);
  return new Proxy(log, {
    get(target, prop) {
      if (prop === "append") {
        return async (stream: string, messages: readonly Fields[], options?: object) => {
          const ids = await target.append(stream, messages, options);
          if (counted.has(stream) && ids.length > 0) {
            for (const fields of messages) {
              const name = fields.n;
              if (typeof name === "string") {
                counter.inc({ container: name }, messageLineCount(fields));
              }
            }
          }
          return ids;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
