/**
 * `deno task ingest`: reads log entries from the log stream in the consumer
 * group `ingest` and writes them to InfluxDB, acking each entry once it is
 * stored. Needs `REDIS_URL` and `INFLUX_URL` (the embedded default runs all
 * functions in one process through `deno task start`). SIGTERM and SIGINT
 * stop it cleanly: the batch in flight is finished or left pending, never
 * acked unwritten. The function itself is {@linkcode buildIngest}, which
 * `deno task start` builds the same way.
 *
 * Logs are JSON lines on stderr; secrets never appear in them.
 *
 * @module
 */

import { exitOnHelp } from "../../shared/runtime/task_help.ts";
import { createTailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { loadConfigOrExit, redactConfig } from "../../shared/runtime/config.ts";
import { openLogStore } from "../../shared/adapters/open_adapters.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { runUntilSignal } from "../../shared/runtime/tailwise_function.ts";
import { buildIngest } from "./build.ts";

async function _main(): Promise<number> {
  const config = loadConfigOrExit();
  const log = createLogger("ingest", { level: config.logLevel });
  if (config.redis.url === null || config.influx.url === null) {
    log.error(
      "ingest needs REDIS_URL and INFLUX_URL: expected both set (the embedded default runs through `deno task start`)",
    );
    return 2;
  }
  log.info("starting", { config: redactConfig(config) });
  await using stream = RedisLogStream.connect(config.redis.url, {
    username: config.redis.username,
    password: config.redis.password,
    name: `tailwise-ingest-${config.instance}`,
    cluster: config.redis.cluster,
  });
  await using logStore = await openLogStore(config, {
    onRetry: (error, { attempt, delayMs }) => {
      if (attempt === 1 || attempt % 10 === 0) {
        log.warn("InfluxDB write failed, retrying", { error, attempt, delayMs });
      }
    },
  });
  try {
    const metrics = createTailwiseMetrics();
    await runUntilSignal(buildIngest(config, { stream, logStore }, { log }), log, {
      metrics: { endpoint: config.metrics, registry: metrics.registry },
    });
  } catch (e) {
    log.error("ingest stopped with an error", { error: e });
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  exitOnHelp("ingest");
  Deno.exit(await _main());
}
