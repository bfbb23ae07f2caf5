/**
 * The collect function as a process: reads the config, connects to the
 * Docker engine and the log stream, and follows every container until
 * SIGTERM or SIGINT, then writes what it holds and exits.
 *
 * `deno task collect` (with `REDIS_URL` the entries go to Redis; without it
 * to the embedded log stream under `TAILWISE_DATA_DIR`).
 *
 * @module
 */

import Docker from "dockerode";
import {
  type DockerEndpoint,
  loadConfigOrExit,
  redactConfig,
} from "../../shared/runtime/config.ts";
import { DataDirLockedError } from "../../shared/adapters/sqlite/data_dir_lock.ts";
import { DataDirError } from "../../shared/adapters/sqlite/sqlite_database.ts";
import { SqliteLogStream } from "../../shared/adapters/sqlite/sqlite_log_stream.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { collect } from "./collect.ts";
import { configuredLogShards } from "../../shared/ports/log_shards.ts";

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
  const config = loadConfigOrExit();
  const logger = createLogger("collect", { level: config.logLevel });
  logger.info("starting", { config: redactConfig(config) });
  let self: string | null = null;
  try {
    self = ownContainerId(Deno.readTextFileSync("/proc/self/mountinfo"));
  } catch {
    // not Linux, or no permission: follow every container
  }
  let log: LogStream;
  try {
    log = config.redis.url
      ? RedisLogStream.connect(config.redis.url, {
        username: config.redis.username,
        password: config.redis.password,
        name: `collect-${config.instance}`,
        cluster: config.redis.cluster,
      })
      : await SqliteLogStream.open(config.dataDir);
  } catch (e) {
    if (!(e instanceof DataDirLockedError || e instanceof DataDirError)) throw e;
    logger.error(e.message);
    Deno.exit(2);
  }
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => stop.abort());
  }
  try {
    await collect({ docker: dockerClient(config.docker), log, logger, signal: stop.signal }, {
      stream: config.streams.logs,
      streams: configuredLogShards(config),
      maxLen: config.streams.maxLen,
      ...config.collect,
      excludeContainers: self ? [self] : [],
    });
  } finally {
    await log[Symbol.asyncDispose]();
  }
  Deno.exit(0);
}
