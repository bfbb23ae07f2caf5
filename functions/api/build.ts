/**
 * The api function's builder: the Hono app of {@linkcode createApi} served
 * on `API_HOST:API_PORT`, with on-demand scoring and training in process.
 * `deno task api` and `deno task start` build it the same way.
 * {@linkcode serveApi} serves the app with adapters given one by one (tests);
 * {@linkcode apiToken} finds or makes the api token.
 *
 * @example
 * ```ts
 * import { apiToken, buildApi } from "./build.ts";
 * // const { token } = await apiToken(config);
 * // const api = buildApi(config, adapters, { token });
 * // await api.run(signal);
 * ```
 *
 * @module
 */

import { configuredLogShards } from "../../shared/ports/log_shards.ts";
import { type Config, ConfigError, loadConfig } from "../../shared/runtime/config.ts";
import type { IncidentStore } from "../../shared/ports/incident_store.ts";
import type { RateStore } from "../../shared/ports/rate_store.ts";
import { REPORTED_GROUPS } from "../../shared/runtime/consumer_groups.ts";
import type { FeedbackStore } from "../../shared/ports/feedback_store.ts";
import type { Lock } from "../../shared/ports/lock.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { createTailwiseMetrics, type TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { logBadVersions, ModelCache } from "../../shared/runtime/model_cache.ts";
import { ModelNotFoundError, type ModelRegistry } from "../../shared/ports/model_registry.ts";
import { prepareLogStore, type TailwiseFunction } from "../../shared/runtime/tailwise_function.ts";
import { scoreLines } from "../../shared/scoring/score_lines.ts";
import { trainContainer, trainSettings } from "../../shared/training/train_model.ts";
import { type ApiDeps, createApi, type HealthCheck } from "./api.ts";

/** The effective settings of the api. */
export interface ApiSettings {
  /** `API_HOST`. */
  host: string;
  /** `API_PORT` (0: any free port). */
  port: number;
  /** `API_BODY_LIMIT`, in bytes. */
  bodyLimit: number;
  /** `FEEDBACK_SUPPRESS`, in ms. */
  suppressMs: number;
  /** The log stream whose groups it reports (`LOG_STREAM`). */
  logsStream: string;
  /** The anomalies stream it lists (`ANOMALY_STREAM`). */
  anomaliesStream: string;
  /** The consumer groups whose lag it reports. */
  reportedGroups: readonly string[];
  /** Lines a container needs for its first model (`TRAIN_MIN_LINES`), for the dashboard. */
  minLines: number;
  /** History training uses (`TRAIN_WINDOW`), for the dashboard. */
  trainWindowMs: number;
}

/** The adapters the api uses. */
export interface ApiAdapters {
  /** The streams. */
  stream: LogStream;
  /** The models. */
  registry: ModelRegistry;
  /** Feedback. */
  feedback: FeedbackStore;
  /** The history (health, line counts, on-demand training). */
  logStore: LogStore;
  /** One trainer per container (on-demand training). */
  lock: Lock;
  /** Incidents, for `/incidents` (absent: no such routes). */
  incidents?: IncidentStore;
  /** Rate counts, for the volume view (absent: no volume view). */
  rates?: RateStore;
}

/** Options of {@linkcode buildApi}. */
export interface BuildApiOptions {
  /** The api token (`config.api.token`, or the one {@linkcode apiToken} found). */
  token: string;
  /**
   * Where it logs.
   * @default createLogger("api")
   */
  log?: Logger;
  /**
   * The process's metrics.
   * @default createTailwiseMetrics()
   */
  metrics?: TailwiseMetrics;
  /**
   * Trains a container now (the train function's, when one runs in the same
   * process).
   * @default training in this process from the adapters
   */
  requestTraining?: ApiDeps["requestTraining"];
}

/** The api function, with where it listens once it does. */
export interface ApiFunction extends TailwiseFunction<ApiSettings> {
  /** Resolves with the address once the server listens. */
  readonly listening: Promise<Deno.NetAddr>;
}

/**
 * The settings the api runs with under a config.
 *
 * @param config the settings
 * @returns the effective settings
 */
export function apiSettings(config: Config): ApiSettings {
  return {
    host: config.api.host,
    port: config.api.port,
    bodyLimit: config.api.bodyLimit,
    suppressMs: config.api.suppressMs,
    logsStream: config.streams.logs,
    anomaliesStream: config.streams.anomalies,
    reportedGroups: REPORTED_GROUPS,
    minLines: config.train.minLines,
    trainWindowMs: config.train.windowMs,
  };
}

/**
 * Builds the api: `run(signal)` prepares the log store and serves until the
 * signal aborts, then lets running requests finish.
 *
 * @param config the settings
 * @param adapters streams, registry, feedback, log store, lock
 * @param options token, logger, metrics, training entry
 * @returns the function
 */
export function buildApi(
  config: Config,
  adapters: ApiAdapters,
  options: BuildApiOptions,
): ApiFunction {
  const settings = apiSettings(config);
  const log = options.log ?? createLogger("api", { level: config.logLevel });
  const { logStore } = adapters;
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const requestTraining = options.requestTraining ?? (() => {
    const deps = { ...adapters, models: new ModelCache(adapters.registry), log };
    return async (container: string) => ({
      ...await trainContainer(container, deps, trainSettings(config)),
    });
  })();
  return {
    name: "api",
    settings,
    listening: listening.promise,
    async run(signal) {
      if (!await prepareLogStore(logStore, signal)) return;
      const server = serveApi(config, {
        ...adapters,
        requestTraining,
        health: {
          // With Redis but no INFLUX_URL the history is an empty local one:
          // on-demand training finds no lines, so say so.
          logStore: config.redis.url !== null && config.influx.url === null
            ? () =>
              Promise.resolve({
                ok: false,
                detail: "INFLUX_URL is not set: the api has no history to train from",
              })
            : () => logStore.ping(),
        },
        lineCounts: (since) => logStore.containers({ since }),
        history: (key, o) => logStore.history(key, o),
        context: (key, ts, o) => logStore.context(key, ts, o),
        search: (key, q, o) => logStore.search(key, q, o),
        token: options.token,
        signal,
        log,
        ...(options.metrics ? { metrics: options.metrics } : {}),
      });
      listening.resolve(server.addr);
      await server.finished;
      log.info("stopped");
    },
    close: () => Promise.resolve(),
  };
}

/** What {@linkcode serveApi} needs besides the config. */
export interface ServeApiOptions {
  /** The streams. */
  stream: LogStream;
  /** The model registry. */
  registry: ModelRegistry;
  /** The feedback store. */
  feedback: FeedbackStore;
  /** Incidents, for `/incidents`. */
  incidents?: IncidentStore;
  /** Rate counts, for the volume view. */
  rates?: RateStore;
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
  /** A service's lines around a moment (the log store's `context`), for `GET /context/:container`. */
  context?: ApiDeps["context"];
  /** A service's lines containing a text (the log store's `search`), for `GET /search/:container`. */
  search?: ApiDeps["search"];
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
    consumerGroups: configuredLogShards(config).flatMap((stream) =>
      REPORTED_GROUPS.map((group) => ({ stream, group }))
    ),
    ...(options.incidents ? { incidents: options.incidents } : {}),
    ...(options.rates
      ? {
        rateStore: options.rates,
        rateModel: async (service: string) => (await models.get(service))?.rates ?? null,
      }
      : {}),
    ...(options.lineCounts ? { lineCounts: options.lineCounts } : {}),
    ...(options.history ? { history: options.history } : {}),
    ...(options.context ? { context: options.context } : {}),
    ...(options.search ? { search: options.search } : {}),
  }, {
    token: options.token,
    anomaliesStream: config.streams.anomalies,
    deploysStream: config.streams.deploys,
    deploys: config.deploys,
    bodyLimit: config.api.bodyLimit,
    dashboard: {
      // The dashboard's log rates read every shard.
      logsStream: configuredLogShards(config)[0]!,
      logsStreams: configuredLogShards(config),
      minLines: config.train.minLines,
      trainWindowMs: config.train.windowMs,
      suppressMs: config.api.suppressMs,
      signal: options.signal,
    },
    logError: (msg, error) => log.error(msg, { error }),
  });
  try {
    return Deno.serve({
      hostname: config.api.host,
      port: config.api.port,
      signal: options.signal,
      onListen: ({ hostname, port }) => log.info("listening", { hostname, port }),
    }, app.fetch);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new AddressInUseError(config.api.host, config.api.port, { cause: e });
    }
    throw e;
  }
}

/** The api's address is taken by another process; the message says what to do. */
export class AddressInUseError extends Error {
  override name = "AddressInUseError";

  /**
   * @param host the host the api tried to listen on (`API_HOST`)
   * @param port the port (`API_PORT`)
   * @param options the cause
   */
  constructor(host: string, port: number, options: { cause?: unknown } = {}) {
    super(
      `Cannot listen on ${host}:${port}: the address is in use. Set API_PORT (or API_HOST) to a ` +
        "free address, or stop the process that listens there",
      options,
    );
  }
}

/**
 * Reads the config and finds the api token, for a process that serves the
 * api (`deno task api`, `deno task start`); a bad setting is printed on
 * stderr.
 *
 * @returns the config and the token, or null after printing what is wrong
 */
export async function loadApiConfig(): Promise<
  { config: Config; token: { token: string; source: string } } | null
> {
  try {
    const config = loadConfig();
    return { config, token: await apiToken(config) };
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return null;
    }
    throw e;
  }
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
