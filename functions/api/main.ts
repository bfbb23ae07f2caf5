/**
 * The api as a process: reads the config, opens the adapters (Redis when
 * `REDIS_URL` is set, the embedded ones under the data dir otherwise) and
 * serves {@linkcode createApi} on `API_HOST:API_PORT` until SIGTERM or
 * SIGINT, then stops taking requests, lets running ones finish and closes the
 * adapters. `POST /train/:container` trains in this process with the train
 * function's `trainContainer` (its Redis lease keeps it from racing the train
 * replica).
 *
 * `deno task api`. {@linkcode serveApi} is the same without reading the
 * environment, for the one-process mode.
 *
 * @module
 */

import { openAdapters } from "../../shared/adapters/open_adapters.ts";
import { type Config, ConfigError, loadConfig, redactConfig } from "../../shared/runtime/config.ts";
import type { FeedbackStore } from "../../shared/ports/feedback_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { createTailwiseMetrics, type TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { logBadVersions, ModelCache } from "../../shared/runtime/model_cache.ts";
import { ModelNotFoundError, type ModelRegistry } from "../../shared/ports/model_registry.ts";
import { scoreLines } from "../score/score.ts";
import { trainSettings } from "../train/main.ts";
import { trainContainer, type TrainDeps } from "../train/train.ts";
import { type ApiDeps, createApi, type HealthCheck } from "./api.ts";

/** The consumer groups whose lag `/metrics` reports. */
export const REPORTED_GROUPS: readonly string[] = ["ingest", "score"];

/** What {@linkcode serveApi} needs besides the config. */
export interface ServeApiOptions {
  /** The streams. */
  stream: LogStream;
  /** The model registry. */
  registry: ModelRegistry;
  /** The feedback store. */
  feedback: FeedbackStore;
  /** Trains a container now (the train function's `trainContainer`). */
  requestTraining: ApiDeps["requestTraining"];
  /** The api token (`config.api.token`, or one generated for the embedded mode). */
  token: string;
  /** Stops the server. */
  signal: AbortSignal;
  /**
   * The shared metrics (one registry per process).
   * @default createTailwiseMetrics()
   */
  metrics?: TailwiseMetrics;
  /**
   * More health checks, by dependency name (e.g. the log store).
   * @default {}
   */
  health?: Readonly<Record<string, HealthCheck>>;
  /**
   * Where the api logs.
   * @default createLogger("api")
   */
  log?: Logger;
  /**
   * Lines per container since a time, for the dashboard's "N lines until the
   * first model" (the log store's `containers`).
   */
  lineCounts?: ApiDeps["lineCounts"];
  /** A service's history (the log store's `history`), for deploy reports. */
  history?: ApiDeps["history"];
}

/**
 * Serves the api on `config.api.host:config.api.port` until `signal` aborts.
 *
 * @param config the settings (`api`, `streams`, `score.coldStart`)
 * @param options the adapters, the training entry, the token and the stop signal
 * @returns the server; `finished` resolves once it stopped
 */
export function serveApi(config: Config, options: ServeApiOptions): Deno.HttpServer<Deno.NetAddr> {
  const log = options.log ?? createLogger("api", { level: config.logLevel });
  const models = new ModelCache(options.registry, {
    onBadVersion: logBadVersions(log),
  });
  const feedback = options.feedback;
  const app = createApi({
    registry: options.registry,
    logStream: options.stream,
    feedback,
    metrics: options.metrics ?? createTailwiseMetrics(),
    health: {
      stream: () => options.stream.ping(),
      registry: () => options.registry.ping(),
      feedback: () => feedback.ping(),
      ...options.health,
    },
    scoreLines: async (container, lines) => {
      // On-demand scoring needs a trained model: no cold-start answers here.
      if (await models.get(container) === null) throw new ModelNotFoundError(container, null);
      return await scoreLines(container, lines, { models, feedback });
    },
    requestTraining: options.requestTraining,
    consumerGroups: REPORTED_GROUPS.map((group) => ({ stream: config.streams.logs, group })),
    ...(options.lineCounts ? { lineCounts: options.lineCounts } : {}),
    ...(options.history ? { history: options.history } : {}),
  }, {
    token: options.token,
    anomaliesStream: config.streams.anomalies,
    deploysStream: config.streams.deploys,
    deploys: config.deploys,
    bodyLimit: config.api.bodyLimit,
    dashboard: {
      logsStream: config.streams.logs,
      minLines: config.train.minLines,
      trainWindowMs: config.train.windowMs,
      suppressMs: config.api.suppressMs,
      signal: options.signal,
    },
    logError: (msg, error) => log.error(msg, { error }),
  });
  return Deno.serve({
    hostname: config.api.host,
    port: config.api.port,
    signal: options.signal,
    onListen: ({ hostname, port }) => log.info("listening", { hostname, port }),
  }, app.fetch);
}

/**
 * The api token: `config.api.token`, else (embedded mode only) the one in
 * `<dataDir>/api_token`, generated on first start with mode 0600. The token
 * is never logged; the file's path is.
 *
 * @param config the settings
 * @returns the token and where it came from
 * @throws {ConfigError} when Redis is used and no token is configured
 */
export async function apiToken(config: Config): Promise<{ token: string; source: string }> {
  if (config.api.token !== null) return { token: config.api.token, source: "API_TOKEN" };
  if (config.redis.url !== null) {
    throw new ConfigError([
      "API_TOKEN or API_TOKEN_FILE is not set: expected a token of at least 16 characters " +
      "when REDIS_URL is set",
    ]);
  }
  const path = `${config.dataDir}/api_token`;
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token.length >= 16) return { token, source: path };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.mkdir(config.dataDir, { recursive: true });
  await Deno.writeTextFile(path, `${token}\n`, { mode: 0o600 });
  return { token, source: path };
}

if (import.meta.main) {
  let config: Config;
  let token: { token: string; source: string };
  try {
    config = loadConfig();
    token = await apiToken(config);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(2);
    }
    throw e;
  }
  const log = createLogger("api", { level: config.logLevel });
  log.info("starting", { config: redactConfig(config), token: `from ${token.source}` });
  await using adapters = await openAdapters(config, {
    name: `api-${config.instance}`,
    logStore: true,
  });
  const logStore = adapters.logStore!;
  await logStore.prepare();
  const trainDeps: TrainDeps = {
    logStore,
    registry: adapters.registry,
    feedback: adapters.feedback,
    lock: adapters.lock,
    models: new ModelCache(adapters.registry),
    log,
  };
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => stop.abort());
  }
  const server = serveApi(config, {
    stream: adapters.stream,
    registry: adapters.registry,
    feedback: adapters.feedback,
    requestTraining: async (container) => ({
      ...await trainContainer(container, trainDeps, trainSettings(config)),
    }),
    health: { logStore: () => logStore.ping() },
    lineCounts: (since) => logStore.containers({ since }),
    history: (key, o) => logStore.history(key, o),
    token: token.token,
    signal: stop.signal,
    log,
  });
  await server.finished;
  log.info("stopped");
}
