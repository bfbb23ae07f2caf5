/**
 * The collect function's builder: the log sources (the Docker engine, files
 * followed like `tail -F`, the demo) appending to the log stream.
 * `deno task collect` and `deno task start` build it the same way, so the
 * `COLLECT_*` settings mean the same for every source in both modes.
 *
 * @example
 * ```ts
 * import { buildCollect, dockerClient } from "./build.ts";
 * // const collect = buildCollect(config, { stream }, { docker: dockerClient(config.docker) });
 * // await collect.run(signal);
 * ```
 *
 * @module
 */

import { configuredLogShards } from "../../shared/ports/log_shards.ts";
import type { TailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { countLinesIn } from "../../shared/runtime/metrics_server.ts";
import Docker from "dockerode";
import type { AlertSink } from "../../shared/ports/alert_sink.ts";
import type { IncidentStore } from "../../shared/ports/incident_store.ts";
import { openAlertSink } from "../../shared/adapters/open_alert_sink.ts";
import { IncidentManager } from "../../shared/runtime/incidents.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import type { Config, DockerEndpoint } from "../../shared/runtime/config.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import type { TailwiseFunction } from "../../shared/runtime/tailwise_function.ts";
import { runDemo } from "../../shared/sources/demo/demo_log_source.ts";
import { followFile } from "../../shared/sources/file/file_log_source.ts";
import { collect } from "./collect.ts";

/** The effective settings of collect. */
export interface CollectSettings {
  /** The log stream written (`LOG_STREAM`). */
  stream: string;
  /** Its shards (`LOG_STREAM_SHARDS`): each container goes to the shard of its model key. */
  streams: string[];
  /** Its approximate MAXLEN (`STREAM_MAXLEN`). */
  maxLen: number;
  /** Longest line (`COLLECT_MAX_LINE_BYTES`). */
  maxLineBytes: number;
  /** Entries per append (`COLLECT_BATCH_LINES`). */
  batchLines: number;
  /** Entries buffered before reading pauses (`COLLECT_BUFFER_LINES`). */
  bufferLines: number;
  /** Longest wait of an entry for its batch, in ms (`COLLECT_FLUSH_MS`). */
  flushMs: number;
  /** Appends under way at once (`COLLECT_APPENDS_IN_FLIGHT`). */
  appendsInFlight: number;
  /** Multi-line grouping (`COLLECT_MULTILINE`). */
  multiline: Config["collect"]["multiline"];
  /** Longest wait of an open event for more lines, in ms (`COLLECT_MULTILINE_FLUSH_MS`). */
  multilineFlushMs: number;
  /** Wait of a plain event (no stack trace) for more lines, in ms (`COLLECT_MULTILINE_QUIET_MS`). */
  multilineQuietMs: number;
  /** Most lines in one event (`COLLECT_MULTILINE_MAX_LINES`). */
  multilineMaxLines: number;
  /** Most bytes in one event (`COLLECT_MULTILINE_MAX_BYTES`). */
  multilineMaxBytes: number;
  /** Last lines attached to lifecycle anomalies (`COLLECT_LAST_LINES`). */
  lastLines: number;
  /** Where lifecycle anomalies go (`ANOMALY_STREAM`). */
  anomalyStream: string;
  /** Where deploys are recorded (`DEPLOY_STREAM`). */
  deployStream: string;
  /** The sources: `docker`, `file:<path>`, `demo`. */
  sources: string[];
  /** Containers not followed (e.g. the collector's own). */
  excludeContainers: string[];
}

/** The adapters collect uses. */
export interface CollectAdapters {
  /** Where entries and checkpoints go (and lifecycle anomalies and deploys). */
  stream: LogStream;
  /**
   * Where lifecycle anomalies are alerted; null: nowhere.
   * @default openAlertSink(config, stream), closed by `close()`
   */
  alerts?: AlertSink | null;
  /** Incidents: with `ALERT_MODE=incident`, lifecycle anomalies join their service's incident. */
  incidents?: IncidentStore;
}

/** Options of {@linkcode buildCollect}: the sources and the logger. */
export interface BuildCollectOptions {
  /**
   * The process's metrics: `tailwise_lines_in_total` counts what the sources append.
   * @default none
   */
  metrics?: TailwiseMetrics;
  /**
   * The Docker engine to follow; null follows none.
   * @default null
   */
  docker?: Docker | null;
  /**
   * Files to follow like `tail -F`.
   * @default []
   */
  files?: readonly string[];
  /**
   * Whether to run the demo source.
   * @default false
   */
  demo?: boolean;
  /**
   * Containers not to follow (full or short ids).
   * @default []
   */
  excludeContainers?: readonly string[];
  /**
   * Where it logs.
   * @default createLogger("collect")
   */
  log?: Logger;
}

/**
 * A dockerode client for an endpoint of the config.
 *
 * @param endpoint the `DOCKER_HOST` setting
 * @returns the client (connections open on demand)
 */
export function dockerClient(endpoint: DockerEndpoint): Docker {
  return endpoint.kind === "socket"
    ? new Docker({ socketPath: endpoint.socketPath })
    : new Docker({ host: endpoint.host, port: endpoint.port, protocol: endpoint.protocol });
}

/**
 * The settings collect runs with under a config.
 *
 * @param config the settings
 * @param options the sources
 * @returns the effective settings
 */
export function collectSettings(
  config: Config,
  options: BuildCollectOptions = {},
): CollectSettings {
  const sources: string[] = [];
  if (options.docker) sources.push("docker");
  for (const f of options.files ?? []) sources.push(`file:${f}`);
  if (options.demo) sources.push("demo");
  return {
    stream: config.streams.logs,
    streams: configuredLogShards(config),
    maxLen: config.streams.maxLen,
    ...config.collect,
    anomalyStream: config.streams.anomalies,
    deployStream: config.streams.deploys,
    sources,
    excludeContainers: [...options.excludeContainers ?? []],
  };
}

/**
 * Builds collect: `run(signal)` runs every source until the signal aborts,
 * then writes what they hold.
 *
 * @param config the settings
 * @param adapters the log stream
 * @param options the sources and the logger
 * @returns the function
 */
export function buildCollect(
  config: Config,
  adapters: CollectAdapters,
  options: BuildCollectOptions = {},
): TailwiseFunction<CollectSettings> {
  const settings = collectSettings(config, options);
  const log = options.log ?? createLogger("collect", { level: config.logLevel });
  const stream = options.metrics
    ? countLinesIn(adapters.stream, settings.streams, options.metrics.linesIn)
    : adapters.stream;
  const ownAlerts = adapters.alerts === undefined;
  const alerts = ownAlerts
    ? openAlertSink(config, stream, log.child({ part: "alerts" }))
    : adapters.alerts ?? null;
  const incidents = config.alerts.mode === "incident" && adapters.incidents
    ? new IncidentManager(adapters.incidents, { quietMs: config.alerts.incidentQuietMs })
    : null;
  return {
    name: "collect",
    settings,
    async run(signal) {
      // The one source pipeline's settings, the same for every source; the
      // rest is the Docker source's own.
      const {
        sources: _,
        excludeContainers,
        lastLines,
        anomalyStream,
        deployStream,
        ...pipeline
      } = settings;
      const tasks: Promise<unknown>[] = [];
      if (options.docker) {
        tasks.push(collect({
          docker: options.docker,
          log: stream,
          logger: log,
          signal,
          alerts,
          incidents,
        }, { ...pipeline, excludeContainers, lastLines, anomalyStream, deployStream }));
      }
      // The file and demo sources write to the first shard (consumers read every shard).
      const { streams, ...unsharded } = pipeline;
      for (const path of options.files ?? []) {
        tasks.push(followFile(path, stream, {
          ...unsharded,
          stream: streams[0]!,
          signal,
          log: log.child({ source: "file" }),
        }));
      }
      if (options.demo) {
        const { stream: _name, multiline: _off, ...append } = unsharded;
        tasks.push(runDemo(stream, { stream: streams[0]!, signal, pipeline: append }));
      }
      const results = await Promise.allSettled(tasks);
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    },
    close: async () => {
      if (ownAlerts) await alerts?.[Symbol.asyncDispose]();
    },
  };
}
