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

import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { openAdapters } from "../shared/adapters/open_adapters.ts";
import { DataDirLockedError } from "../shared/adapters/sqlite/data_dir_lock.ts";
import {
  DataDirError,
  diskFullMessage,
  isDiskFullError,
} from "../shared/adapters/sqlite/sqlite_database.ts";
import { loadConfig, redactConfig } from "../shared/runtime/config.ts";
import { createLogger } from "../shared/runtime/logger.ts";
import { createTailwiseMetrics } from "../shared/runtime/metrics.ts";
import { logSettings, type TailwiseFunction } from "../shared/runtime/tailwise_function.ts";
import { AddressInUseError, buildApi, loadApiConfig } from "./api/build.ts";
import { dashboardLoginUrl } from "./api/dashboard.ts";
import { buildCollect, dockerClient } from "./collect/build.ts";
import { buildIngest } from "./ingest/build.ts";
import { buildScore } from "./score/build.ts";
import { buildTrain } from "./train/build.ts";

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
  let loaded;
  try {
    loaded = await loadApiConfig();
  } catch (e) {
    // Writing the api token on a full disk: the same line as a full disk later.
    if (!isDiskFullError(e)) throw e;
    console.error(`tailwise: ${diskFullMessage(loadConfig().dataDir, true)}`);
    return 2;
  }
  if (loaded === null) return 2;
  const { config, token } = loaded;
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
  let opened;
  let started = false;
  try {
    opened = await openAdapters(config, {
      name: `tailwise-${config.instance}`,
      logStore: true,
      // One clear line when the disk fills (the user has to act), one when it is fixed.
      // (While opening, a full disk stops the start: the catch below says so.)
      onDiskFull: (full, message) => {
        if (!started) return;
        if (full) console.error(`tailwise: ${message}`);
        else log.info(message);
      },
    });
    started = true;
  } catch (e) {
    if (isDiskFullError(e)) {
      console.error(`tailwise: ${diskFullMessage(config.dataDir, true)}`);
      return 2;
    }
    if (e instanceof DataDirLockedError || e instanceof DataDirError) {
      console.error(`tailwise: ${e.message}`);
      return 2;
    }
    throw e;
  }
  await using adapters = opened;
  const logStore = adapters.logStore!;
  const metrics = createTailwiseMetrics();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, onSignal);
  const { signal } = stop;

  let docker = null;
  if (!values["no-docker"]) {
    docker = dockerClient(config.docker);
    if (!await _dockerReachable(docker)) {
      docker = null;
      const where = config.docker.kind === "socket"
        ? config.docker.socketPath
        : `${config.docker.host}:${config.docker.port}`;
      console.error(
        `tailwise: no Docker engine at ${where} (set DOCKER_HOST); ` +
          "follow a file with --file PATH, or try --demo",
      );
    }
  }
  if (!docker && values.file.length === 0 && !values.demo) {
    log.warn("no log source: the api serves, but nothing new comes in");
  }
  // One process owns the data dir: its consumer names stay the same across
  // restarts, so what it left pending is read again at once.
  const stable = (group: string) => `${group}-${hostname()}`;
  const adaptersWithStore = { ...adapters, logStore };
  const train = buildTrain(config, adaptersWithStore, {
    log: log.child({ fn: "train" }),
    firstModelsEveryMs: 5000,
  });
  const api = buildApi(config, adaptersWithStore, {
    token: token.token,
    metrics,
    requestTraining: async (container) => ({ ...await train.trainNow(container) }),
    log: log.child({ fn: "api" }),
  });
  const functions: TailwiseFunction<object>[] = [
    buildCollect(config, adapters, {
      docker,
      files: values.file,
      demo: values.demo,
      log: log.child({ fn: "collect" }),
      metrics,
    }),
    buildIngest(config, adaptersWithStore, {
      consumer: stable("ingest"),
      log: log.child({ fn: "ingest" }),
    }),
    buildScore(config, adapters, {
      consumer: stable("score"),
      metrics,
      log: log.child({ fn: "score" }),
    }),
    train,
    api,
  ];
  for (const fn of functions) logSettings(fn, log.child({ fn: fn.name }));
  let failed = false;
  let usage = false;
  const runs = functions.map((fn) =>
    fn.run(signal).catch((error) => {
      failed = true;
      if (error instanceof AddressInUseError) {
        // One clear line, not a log record: the user has to act.
        console.error(`tailwise: ${error.message}`);
        usage = true;
        stop.abort();
        return;
      }
      log.error("a function stopped with an error", { function: fn.name, error });
      // Without the api there is nothing to serve: stop the rest too.
      if (fn === api) stop.abort();
    })
  );
  api.listening.then((addr) => {
    const url = `http://${config.api.host}:${addr.port}`;
    if (Deno.stdout.isTerminal()) {
      console.log(`\n  tailwise is running: open ${dashboardLoginUrl(url, token.token)}\n`);
    } else {
      console.log(`tailwise is running at ${url} (api token in ${token.source})`);
    }
  });
  try {
    await Promise.all(runs);
  } finally {
    stop.abort();
    await Promise.all(runs);
    await Promise.allSettled(functions.map((fn) => fn.close()));
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.removeSignalListener(sig, onSignal);
  }
  log.info("stopped");
  return usage ? 2 : failed ? 1 : 0;
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
