/**
 * The score function as a process: reads the config, opens the adapters and
 * runs {@linkcode buildScore} (the shared stream consumer in group `score`
 * on the log stream) until SIGTERM or SIGINT. `deno task start` builds the
 * same function.
 *
 * `deno task score` (needs `REDIS_URL`; without it, `deno task start` runs
 * every function in one process).
 *
 * @module
 */

import { exitOnHelp } from "../../shared/runtime/task_help.ts";
import { createTailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { openAdapters } from "../../shared/adapters/open_adapters.ts";
import { loadConfigOrExit, redactConfig } from "../../shared/runtime/config.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { runUntilSignal } from "../../shared/runtime/tailwise_function.ts";
import { buildScore } from "./build.ts";

if (import.meta.main) {
  exitOnHelp("score");
  const config = loadConfigOrExit();
  const log = createLogger("score", { level: config.logLevel });
  if (!config.redis.url) {
    log.error("score runs on its own only with REDIS_URL set; `deno task start` runs all in one");
    Deno.exit(2);
  }
  log.info("starting", { config: redactConfig(config) });
  await using adapters = await openAdapters(config, {
    name: `score-${config.instance}`,
    // score's Redis user reads models and feedback only.
    readOnly: ["registry", "feedback"],
  });
  const metrics = createTailwiseMetrics();
  await runUntilSignal(buildScore(config, adapters, { log, metrics }), log, {
    metrics: { endpoint: config.metrics, registry: metrics.registry },
  });
}
