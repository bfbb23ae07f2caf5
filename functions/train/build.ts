/**
 * The train function's builder: training on the `TRAIN_SCHEDULE` cron
 * (`Deno.cron`), and, when asked, a first model for each new container as
 * soon as it has enough lines. `deno task train` and `deno task start` build
 * it the same way.
 *
 * @example
 * ```ts
 * import { buildTrain } from "./build.ts";
 * // const train = buildTrain(config, { logStore, registry, feedback, lock }, { log });
 * // await train.run(signal);
 * ```
 *
 * @module
 */

import type { FeedbackStore } from "../../shared/ports/feedback_store.ts";
import type { Lock } from "../../shared/ports/lock.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import type { ModelRegistry } from "../../shared/ports/model_registry.ts";
import type { Config } from "../../shared/runtime/config.ts";
import { createLogger, type Logger } from "../../shared/runtime/logger.ts";
import { ModelCache } from "../../shared/runtime/model_cache.ts";
import { sleep } from "../../shared/runtime/sleep.ts";
import { prepareLogStore, type TailwiseFunction } from "../../shared/runtime/tailwise_function.ts";
import {
  trainAfterDeploys,
  trainContainer,
  type TrainDeps,
  trainDue,
  type TrainResult,
  type TrainSettings,
  trainSettings,
} from "../../shared/training/train_model.ts";

/** The effective settings of train. */
export interface TrainFunctionSettings extends TrainSettings {
  /** The cron expression of the scheduled runs (`TRAIN_SCHEDULE`). */
  schedule: string;
  /**
   * How often containers without a model are looked for between scheduled
   * runs, in ms; null: only on the schedule.
   */
  firstModelsEveryMs: number | null;
}

/** The adapters train uses. */
export interface TrainAdapters {
  /** The containers' history. */
  logStore: LogStore;
  /** Where models go. */
  registry: ModelRegistry;
  /** Feedback on lines and anomalies. */
  feedback: FeedbackStore;
  /** One trainer per container. */
  lock: Lock;
  /** The streams, for the deploys (a service is retrained once its new version has enough lines). */
  stream?: LogStream;
}

/** Options of {@linkcode buildTrain}. */
export interface BuildTrainOptions {
  /**
   * Where it logs.
   * @default createLogger("train")
   */
  log?: Logger;
  /**
   * Look for containers without a model this often (ms) besides the
   * schedule, so a new container gets its first model within seconds (the
   * one-process start does); null waits for the schedule.
   * @default null
   */
  firstModelsEveryMs?: number | null;
}

/** The train function, with its on-demand entries. */
export interface TrainFunction extends TailwiseFunction<TrainFunctionSettings> {
  /**
   * Trains one container now.
   *
   * @param container the model key
   * @returns what became of it
   */
  trainNow(container: string): Promise<TrainResult>;
  /**
   * Trains every container with new data now, as a scheduled run does.
   *
   * @returns one result per container trained or tried
   */
  trainDue(): Promise<TrainResult[]>;
}

/**
 * The settings train runs with under a config.
 *
 * @param config the settings
 * @param options the first-model polling
 * @returns the effective settings
 */
export function trainFunctionSettings(
  config: Config,
  options: BuildTrainOptions = {},
): TrainFunctionSettings {
  return {
    ...trainSettings(config),
    schedule: config.train.schedule,
    firstModelsEveryMs: options.firstModelsEveryMs ?? null,
  };
}

/**
 * Builds train. `run(signal)` prepares the log store, registers the schedule
 * (one run at a time) and, with `firstModelsEveryMs`, trains first models
 * between runs, until the signal aborts.
 *
 * @param config the settings
 * @param adapters the log store, registry, feedback store and lock
 * @param options logger and first-model polling
 * @returns the function
 */
export function buildTrain(
  config: Config,
  adapters: TrainAdapters,
  options: BuildTrainOptions = {},
): TrainFunction {
  const settings = trainFunctionSettings(config, options);
  const log = options.log ?? createLogger("train", { level: config.logLevel });
  const deps: TrainDeps = {
    logStore: adapters.logStore,
    registry: adapters.registry,
    feedback: adapters.feedback,
    lock: adapters.lock,
    models: new ModelCache(adapters.registry),
    log,
    ...(adapters.stream
      ? { deploys: { stream: adapters.stream, name: config.streams.deploys } }
      : {}),
  };
  let running = false;
  const scheduled = async () => {
    if (running) return;
    running = true;
    try {
      const results = await trainDue(deps, settings);
      log.info("scheduled training done", {
        results: results.map((r) => ({ container: r.container, status: r.status, v: r.version })),
      });
    } catch (e) {
      log.error("scheduled training failed", { error: e });
    } finally {
      running = false;
    }
  };
  // A deploy's new version is trained on as soon as it has enough lines.
  let afterDeploy = false;
  const afterDeploys = async () => {
    if (afterDeploy || running) return;
    afterDeploy = true;
    try {
      const results = await trainAfterDeploys(deps, settings);
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
  };
  return {
    name: "train",
    settings,
    trainNow: (container) => trainContainer(container, deps, settings),
    trainDue: () => trainDue(deps, settings),
    async run(signal) {
      if (!await prepareLogStore(adapters.logStore, signal)) return;
      const cron = Deno.cron("tailwise-train", settings.schedule, { signal }, scheduled);
      const deployCron = deps.deploys
        ? Deno.cron("tailwise-train-deploys", "* * * * *", { signal }, afterDeploys)
        : Promise.resolve();
      log.info("scheduled", { schedule: settings.schedule });
      const every = settings.firstModelsEveryMs;
      if (every !== null) await _trainFirstModels(deps, settings, every, signal, log);
      await new Promise((resolve) => {
        if (signal.aborted) resolve(null);
        else signal.addEventListener("abort", resolve, { once: true });
      });
      await cron;
      await deployCron;
      log.info("stopped");
    },
    close: () => Promise.resolve(),
  };
}

async function _trainFirstModels(
  deps: TrainDeps,
  settings: TrainSettings,
  everyMs: number,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const seen = await deps.logStore.containers({
        since: new Date(Date.now() - settings.windowMs),
      });
      for (const { container, count } of seen) {
        if (signal.aborted || count < settings.minLines) continue;
        if (await deps.registry.currentVersion(container) !== null) continue;
        if ((await deps.registry.list(container)).length > 0) continue;
        const r = await trainContainer(container, deps, settings);
        log.info("first model", { container, status: r.status, version: r.version });
      }
    } catch (e) {
      log.warn("first-model training failed; retrying", { error: e });
    }
    await sleep(everyMs, signal);
  }
}
