/**
 * The train function as a process: runs {@linkcode buildTrain} (on the
 * `TRAIN_SCHEDULE` cron it trains every container with new data from the log
 * store and stores the models in the registry) until SIGTERM or SIGINT.
 * `--once` trains what is due and exits; `--container NAME` trains that one
 * container now. `deno task start` builds the same function.
 *
 * `deno task train` (needs `REDIS_URL`, and `INFLUX_URL` for the history;
 * without them, `deno task start` runs every function in one process).
 *
 * @module
 */

import { exitOnHelp } from "../../shared/runtime/task_help.ts";
import { createTailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { parseArgs } from "node:util";
import { openAdapters } from "../../shared/adapters/open_adapters.ts";
import { loadConfigOrExit, redactConfig } from "../../shared/runtime/config.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { logSettings, runUntilSignal } from "../../shared/runtime/tailwise_function.ts";
import { buildTrain } from "./build.ts";

if (import.meta.main) {
  exitOnHelp("train");
  Deno.exit(await _main());
}

async function _main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { once: { type: "boolean", default: false }, container: { type: "string" } },
  });
  const config = loadConfigOrExit();
  const log = createLogger("train", { level: config.logLevel });
  if (!config.redis.url) {
    log.error("train runs on its own only with REDIS_URL set; `deno task start` runs all in one");
    return 2;
  }
  log.info("starting", { config: redactConfig(config) });
  await using adapters = await openAdapters(config, {
    name: `train-${config.instance}`,
    logStore: true,
    // train's Redis user reads feedback only.
    readOnly: ["feedback"],
  });
  // A service's first model as soon as it has TRAIN_MIN_LINES lines, as in
  // the one-process mode, not at the next scheduled run.
  const train = buildTrain(config, { ...adapters, logStore: adapters.logStore! }, {
    log,
    firstModelsEveryMs: 5000,
  });
  if (values.container || values.once) {
    logSettings(train, log);
    await adapters.logStore!.prepare();
    const results = values.container
      ? [await train.trainNow(values.container)]
      : await train.trainDue();
    for (const r of results) console.log(JSON.stringify(r));
    await train.close();
  } else {
    const metrics = createTailwiseMetrics();
    await runUntilSignal(train, log, {
      metrics: { endpoint: config.metrics, registry: metrics.registry },
    });
  }
  return 0;
}
