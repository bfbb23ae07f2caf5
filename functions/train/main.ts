/**
 * The train function as a process: on the `TRAIN_SCHEDULE` cron (`Deno.cron`)
 * it trains every container with new data from the log store and stores the
 * models in the registry. `--once` trains what is due and exits; `--container
 * NAME` trains that one container now.
 *
 * `deno task train` (needs `REDIS_URL`, and `INFLUX_URL` for the history;
 * without them, `deno task start` runs every function in one process).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { openAdapters } from "../../shared/adapters/open_adapters.ts";
import { type Config, loadConfigOrExit, redactConfig } from "../../shared/runtime/config.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { ModelCache } from "../../shared/runtime/model_cache.ts";
import {
  trainAfterDeploys,
  trainContainer,
  type TrainDeps,
  trainDue,
  type TrainSettings,
} from "./train.ts";

/**
 * The training settings of a config.
 *
 * @param config the settings
 * @returns the part training uses
 */
export function trainSettings(config: Config): TrainSettings {
  return { ...config.train };
}

/**
 * Registers the training schedule with `Deno.cron`; each run trains what is
 * due, one run at a time.
 *
 * @param deps what training needs
 * @param config the settings (`train.schedule`)
 * @param log where results go
 */
export function scheduleTraining(deps: TrainDeps, config: Config, log: Logger): void {
  let running = false;
  Deno.cron("tailwise-train", config.train.schedule, async () => {
    if (running) return;
    running = true;
    try {
      const results = await trainDue(deps, trainSettings(config));
      log.info("scheduled training done", {
        results: results.map((r) => ({ container: r.container, status: r.status, v: r.version })),
      });
    } catch (e) {
      log.error("scheduled training failed", { error: e });
    } finally {
      running = false;
    }
  });
  // A deploy's new version is trained on as soon as it has enough lines.
  let afterDeploy = false;
  Deno.cron("tailwise-train-deploys", "* * * * *", async () => {
    if (afterDeploy || running || !deps.deploys) return;
    afterDeploy = true;
    try {
      const results = await trainAfterDeploys(deps, trainSettings(config));
      if (results.length > 0) {
        log.info("training after deploys done", {
          results: results.map((r) => ({ container: r.container, status: r.status, v: r.version })),
        });
      }
    } catch (e) {
      log.error("training after deploys failed", { error: e });
    } finally {
      afterDeploy = false;
    }
  });
}

if (import.meta.main) {
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
  });
  const deps: TrainDeps = {
    logStore: adapters.logStore!,
    registry: adapters.registry,
    feedback: adapters.feedback,
    lock: adapters.lock,
    models: new ModelCache(adapters.registry),
    log,
    deploys: { stream: adapters.stream, name: config.streams.deploys },
  };
  await deps.logStore.prepare();
  if (values.container) {
    const result = await trainContainer(values.container, deps, trainSettings(config));
    console.log(JSON.stringify(result));
  } else if (values.once) {
    const results = await trainDue(deps, trainSettings(config));
    for (const r of results) console.log(JSON.stringify(r));
  } else {
    scheduleTraining(deps, config, log);
    log.info("scheduled", { schedule: config.train.schedule });
    const stop = Promise.withResolvers<void>();
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => stop.resolve());
    }
    await stop.promise;
    log.info("stopped");
  }
  return 0;
}
