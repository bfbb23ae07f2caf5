/**
 * The shape every tailwise function is built into: each function exports one
 * builder (`buildIngest(config, adapters, options)` and so on) that returns a
 * {@linkcode TailwiseFunction}. Its own `main.ts` and the one-process
 * `deno task start` call the same builder, so a setting means the same in
 * both modes; {@linkcode TailwiseFunction.settings} shows what the function
 * really runs with.
 *
 * @example
 * ```ts
 * import { runUntilSignal } from "./tailwise_function.ts";
 * // const fn = buildIngest(config, adapters, { log });
 * // await runUntilSignal(fn, log);
 * ```
 *
 * @module
 */

import type { LogStore } from "../ports/log_store.ts";
import type { Logger } from "./logger.ts";
import type { MetricsRegistry } from "./metrics.ts";
import { type MetricsEndpoint, serveMetrics } from "./metrics_server.ts";

/** A function built from the config and the adapters, ready to run. */
export interface TailwiseFunction<S extends object = Record<string, unknown>> {
  /** Its name (`collect`, `ingest`, `score`, `train`, `api`). */
  readonly name: string;
  /** The effective settings it runs with (from the config, after defaults). */
  readonly settings: Readonly<S>;
  /**
   * Runs until `signal` aborts (or, for a function with an end, until done),
   * then finishes what is under way.
   *
   * @param signal stops it
   */
  run(signal: AbortSignal): Promise<void>;
  /** Releases what the builder opened (never the adapters it was given). */
  close(): Promise<void>;
}

/**
 * Logs the function's settings (`msg: "settings"`), runs it until SIGTERM or
 * SIGINT (a second signal exits at once with 130) and closes it: what a
 * function's `main.ts` does once it built the function.
 *
 * @param fn the built function
 * @param log where the settings line goes
 * @param options the process's metrics, served on their endpoint (`METRICS_PORT`) while it runs
 */
export async function runUntilSignal(
  fn: TailwiseFunction<object>,
  log: Logger,
  options: { metrics?: { endpoint: MetricsEndpoint; registry: MetricsRegistry } } = {},
): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) Deno.exit(130);
    stop.abort();
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, onSignal);
  logSettings(fn, log);
  // The process's own /metrics (METRICS_PORT), for Prometheus to scrape each replica.
  const server = options.metrics
    ? serveMetrics(options.metrics.endpoint, options.metrics.registry, stop.signal, log)
    : null;
  try {
    await fn.run(stop.signal);
  } finally {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.removeSignalListener(sig, onSignal);
    stop.abort();
    await server?.finished;
    await fn.close();
  }
}

/**
 * Logs a function's effective settings as one line, `msg: "settings"`, with
 * `function` and `settings` fields (the same line in both modes).
 *
 * @param fn the built function
 * @param log where it goes
 */
export function logSettings(fn: TailwiseFunction<object>, log: Logger): void {
  log.info("settings", { function: fn.name, settings: fn.settings });
}

/**
 * Prepares the log store before a function runs (creates the database and
 * its policy, or the tables), giving up quietly when the function is stopped
 * meanwhile.
 *
 * @param store the log store
 * @param signal the function's stop signal
 * @returns true when prepared, false when stopped first (the function returns)
 * @throws {Error} when preparing failed for another reason
 */
export async function prepareLogStore(
  store: Pick<LogStore, "prepare">,
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await store.prepare({ signal });
  } catch (e) {
    if (signal.aborted) return false;
    throw e;
  }
  return !signal.aborted;
}
