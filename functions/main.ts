/**
 * `deno task start`: every tailwise function in one process: collect (or the
 * file and demo sources), ingest, score, train and the api with its
 * dashboard. With nothing configured it runs on the embedded adapters,
 * persisted in `TAILWISE_DATA_DIR` (default `./.tailwise`); with `REDIS_URL`
 * and `INFLUX_URL` set, the same code runs on Redis and InfluxDB. The
 * functions and code paths are those of the distributed mode; only the
 * adapters differ.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { openAdapters } from "../shared/adapters/open_adapters.ts";
import { type Config, ConfigError, loadConfig, redactConfig } from "../shared/runtime/config.ts";
import { runDemo } from "../shared/sources/demo/demo_log_source.ts";
import { sleep } from "../shared/runtime/sleep.ts";
import { followFile } from "../shared/sources/file/file_log_source.ts";
import { createLogger, type Logger } from "../shared/runtime/logger.ts";
import { createTailwiseMetrics } from "../shared/runtime/metrics.ts";
import { logBadVersions, ModelCache } from "../shared/runtime/model_cache.ts";
import { openAlertSink } from "../shared/adapters/open_alert_sink.ts";
import { type BatchHandler, StreamConsumer } from "../shared/runtime/stream_consumer.ts";
import type { LogStream } from "../shared/ports/log_stream.ts";
import { apiToken, serveApi } from "./api/main.ts";
import { dashboardLoginUrl } from "./api/dashboard.ts";
import { collect } from "./collect/collect.ts";
import { dockerClient } from "./collect/main.ts";
import { ingestBatch } from "./ingest/ingest.ts";
import { createScoreHandler } from "./score/score.ts";
import { SCORE_GROUP } from "./score/main.ts";
import { scheduleTraining, trainSettings } from "./train/main.ts";
import { trainContainer, type TrainDeps } from "./train/train.ts";

const HELP = `Usage: deno task start [--demo] [--file PATH ...] [--no-docker]

Runs every tailwise function in one process: collect, ingest, score, train
and the api with its dashboard (http://API_HOST:API_PORT, default
http://127.0.0.1:8080). With no REDIS_URL / INFLUX_URL it keeps everything
in TAILWISE_DATA_DIR (default ./.tailwise).

Log sources:
  (default)        every container of the Docker engine at DOCKER_HOST
                   (default unix:///var/run/docker.sock), if there is one
  --file PATH      follow a file like tail -F, as container "file:<name>";
                   may be given more than once
  --demo           built-in demo containers with occasional anomalies
  --no-docker      do not look for a Docker engine
  -h, --help       this text`;

/** The consumer group of the ingest function. */
const INGEST_GROUP = "ingest";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

/**
 * Runs tailwise until SIGINT or SIGTERM.
 *
 * @param args the command line
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        demo: { type: "boolean", default: false },
        file: { type: "string", multiple: true, default: [] },
        "no-docker": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let config: Config;
  let token: { token: string; source: string };
  try {
    config = loadConfig();
    token = await apiToken(config);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  for (const path of values.file) {
    try {
      await Deno.stat(path);
    } catch {
      console.error(`Cannot follow --file ${JSON.stringify(path)}: no such file`);
      return 2;
    }
  }
  const log = createLogger("tailwise", { level: config.logLevel });
  log.info("starting", { config: redactConfig(config), token: `from ${token.source}` });
  await using adapters = await openAdapters(config, {
    name: `tailwise-${config.instance}`,
    logStore: true,
  });
  const logStore = adapters.logStore!;
  await logStore.prepare();
  const metrics = createTailwiseMetrics();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, onSignal);
  const tasks: Promise<unknown>[] = [];
  const stream = adapters.stream;
  const { signal } = stop;
  const alerts = openAlertSink(config, stream, log.child({ fn: "alerts" }));

  // Sources.
  let sources = 0;
  if (!values["no-docker"]) {
    const docker = dockerClient(config.docker);
    if (await _dockerReachable(docker)) {
      sources++;
      tasks.push(collect({
        docker,
        log: stream,
        logger: log.child({ fn: "collect" }),
        signal,
        alerts,
      }, {
        stream: config.streams.logs,
        maxLen: config.streams.maxLen,
        anomalyStream: config.streams.anomalies,
        deployStream: config.streams.deploys,
        lastLines: config.collect.lastLines,
        maxLineBytes: config.collect.maxLineBytes,
        batchLines: config.collect.batchLines,
        bufferLines: config.collect.bufferLines,
        flushMs: config.collect.flushMs,
        appendsInFlight: config.collect.appendsInFlight,
      }));
    } else {
      const where = config.docker.kind === "socket"
        ? config.docker.socketPath
        : `${config.docker.host}:${config.docker.port}`;
      console.error(
        `tailwise: no Docker engine at ${where} (set DOCKER_HOST); ` +
          "follow a file with --file PATH, or try --demo",
      );
    }
  }
  for (const path of values.file) {
    sources++;
    tasks.push(followFile(path, stream, {
      stream: config.streams.logs,
      maxLen: config.streams.maxLen,
      maxLineBytes: config.collect.maxLineBytes,
      signal,
      log: log.child({ fn: "file" }),
    }));
  }
  if (values.demo) {
    sources++;
    tasks.push(runDemo(stream, { stream: config.streams.logs, signal }));
  }
  if (sources === 0) log.warn("no log source: the api serves, but nothing new comes in");

  // ingest and score on the shared stream consumer.
  const consumer = (group: string, handler: BatchHandler) =>
    _consume(stream, config, group, handler, log, signal);
  tasks.push(consumer(INGEST_GROUP, (batch, ctx) => ingestBatch(batch, { store: logStore }, ctx)));
  const models = new ModelCache(adapters.registry, {
    onBadVersion: logBadVersions(log),
  });
  tasks.push(consumer(
    SCORE_GROUP,
    createScoreHandler(
      { models, stream, feedback: adapters.feedback, alerts, metrics, log },
      { anomalyStream: config.streams.anomalies, coldStart: config.score.coldStart },
    ),
  ));

  // train: the schedule, plus a first model as soon as a container has enough lines.
  const trainDeps: TrainDeps = {
    logStore,
    registry: adapters.registry,
    feedback: adapters.feedback,
    lock: adapters.lock,
    models: new ModelCache(adapters.registry),
    log: log.child({ fn: "train" }),
    deploys: { stream, name: config.streams.deploys },
  };
  scheduleTraining(trainDeps, config, log.child({ fn: "train" }));
  tasks.push(_trainFirstModels(trainDeps, config, signal, log));

  // api and dashboard.
  const server = serveApi(config, {
    stream,
    registry: adapters.registry,
    feedback: adapters.feedback,
    requestTraining: async (container) => ({
      ...await trainContainer(container, trainDeps, trainSettings(config)),
    }),
    health: { logStore: () => logStore.ping() },
    lineCounts: (since) => logStore.containers({ since }),
    history: (key, o) => logStore.history(key, o),
    metrics,
    token: token.token,
    signal,
    log: log.child({ fn: "api" }),
  });
  const url = `http://${config.api.host}:${server.addr.port}`;
  if (Deno.stdout.isTerminal()) {
    console.log(`\n  tailwise is running: open ${dashboardLoginUrl(url, token.token)}\n`);
  } else {
    console.log(`tailwise is running at ${url} (api token in ${token.source})`);
  }
  await Promise.race([server.finished, new Promise((r) => signal.addEventListener("abort", r))]);
  stop.abort();
  const results = await Promise.allSettled([server.finished, ...tasks]);
  for (const r of results) {
    if (r.status === "rejected") log.error("a function stopped with an error", { error: r.reason });
  }
  await alerts?.[Symbol.asyncDispose]();
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.removeSignalListener(sig, onSignal);
  log.info("stopped");
  return 0;
}

async function _consume(
  stream: LogStream,
  config: Config,
  group: string,
  handler: BatchHandler,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  await stream.createGroup(config.streams.logs, group);
  const consumer = new StreamConsumer(stream, handler, {
    stream: config.streams.logs,
    group,
    consumer: `${group}-${config.instance.replace(/-\d+$/, "")}`,
    deadLetterStream: config.streams.deadLetter,
    batch: config.consumer.batch,
    blockMs: config.consumer.blockMs,
    claimIdleMs: config.consumer.claimIdleMs,
    maxDeliveries: config.consumer.maxDeliveries,
    onError: (error, { retryInMs }) => log.warn(`${group} failed; retrying`, { error, retryInMs }),
  });
  await consumer.run(signal);
}

async function _trainFirstModels(
  deps: TrainDeps,
  config: Config,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const seen = await deps.logStore.containers({
        since: new Date(Date.now() - config.train.windowMs),
      });
      for (const { container, count } of seen) {
        if (signal.aborted || count < config.train.minLines) continue;
        if (await deps.registry.currentVersion(container) !== null) continue;
        if ((await deps.registry.list(container)).length > 0) continue;
        const r = await trainContainer(container, deps, trainSettings(config));
        log.info("first model", { container, status: r.status, version: r.version });
      }
    } catch (e) {
      log.warn("first-model training failed; retrying", { error: e });
    }
    await sleep(5000, signal);
  }
}

async function _dockerReachable(docker: { ping(): Promise<unknown> }): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => timer = setTimeout(() => reject(new Error("timeout")), 2000)),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
