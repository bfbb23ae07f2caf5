/**
 * The collect function as a process: reads the config, connects to the
 * Docker engine and the log stream, and runs {@linkcode buildCollect}
 * (follows every container) until SIGTERM or SIGINT, then writes what it
 * holds and exits. `deno task start` builds the same function.
 *
 * `deno task collect` (with `REDIS_URL` the entries go to Redis; without it
 * to the embedded log stream under `TAILWISE_DATA_DIR`).
 *
 * @module
 */

import { exitOnHelp } from "../../shared/runtime/task_help.ts";
import { createTailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { loadConfigOrExit, redactConfig } from "../../shared/runtime/config.ts";
import { DataDirLockedError } from "../../shared/adapters/sqlite/data_dir_lock.ts";
import { DataDirError } from "../../shared/adapters/sqlite/sqlite_database.ts";
import { SqliteLogStream } from "../../shared/adapters/sqlite/sqlite_log_stream.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { runUntilSignal } from "../../shared/runtime/tailwise_function.ts";
import { buildCollect, dockerClient } from "./build.ts";

/**
 * The id of the container this process runs in, read from the mounts Docker
 * sets up (`/var/lib/docker/containers/<id>/hostname`).
 *
 * @param mountinfo the text of `/proc/self/mountinfo`
 * @returns the full container id, or null outside a container
 */
export function ownContainerId(mountinfo: string): string | null {
  const m = /\/containers\/([0-9a-f]{64})\/(?:hostname|resolv\.conf|hosts)\s/.exec(mountinfo);
  return m ? m[1]! : null;
}

if (import.meta.main) {
  exitOnHelp("collect");
  const config = loadConfigOrExit();
  const log = createLogger("collect", { level: config.logLevel });
  log.info("starting", { config: redactConfig(config) });
  let self: string | null = null;
  try {
    self = ownContainerId(Deno.readTextFileSync("/proc/self/mountinfo"));
  } catch {
    // not Linux, or no permission: follow every container
  }
  let stream: LogStream;
  try {
    stream = config.redis.url
      ? RedisLogStream.connect(config.redis.url, {
        username: config.redis.username,
        password: config.redis.password,
        name: `collect-${config.instance}`,
        cluster: config.redis.cluster,
        onTrimmed: ({ stream, minId, removed }) =>
          removed > 0
            ? log.warn(
              "Redis is out of memory: trimmed the log stream of entries every consumer group " +
                "had acked, and appending again",
              { stream, removed, belowId: minId },
            )
            : log.error(
              "Redis is out of memory and the log stream holds nothing every group acked: " +
                "appends wait (raise Redis maxmemory, or check that ingest and score keep up)",
              { stream },
            ),
      })
      : await SqliteLogStream.open(config.dataDir);
  } catch (e) {
    if (!(e instanceof DataDirLockedError || e instanceof DataDirError)) throw e;
    log.error(e.message);
    Deno.exit(2);
  }
  const metrics = createTailwiseMetrics();
  try {
    await runUntilSignal(
      buildCollect(config, { stream }, {
        docker: dockerClient(config.docker),
        excludeContainers: self ? [self] : [],
        log,
        metrics,
      }),
      log,
      { metrics: { endpoint: config.metrics, registry: metrics.registry } },
    );
  } finally {
    await stream[Symbol.asyncDispose]();
  }
  Deno.exit(0);
}
