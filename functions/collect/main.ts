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
import { EmbeddedLogStream } from "../../shared/adapters/embedded/embedded_log_stream.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { openAlertSink } from "../../shared/adapters/open_alert_sink.ts";
import { collect } from "./collect.ts";

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
  const log: LogStream = config.redis.url
    ? RedisLogStream.connect(config.redis.url, {
      username: config.redis.username,
      password: config.redis.password,
      name: `collect-${config.instance}`,
    })
    : await EmbeddedLogStream.open(config.dataDir);
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => stop.abort());
  }
  const alerts = openAlertSink(config, log, logger);
  try {
    await collect({
      docker: dockerClient(config.docker),
      log,
      logger,
      signal: stop.signal,
      alerts,
    }, {
      stream: config.streams.logs,
      maxLen: config.streams.maxLen,
      anomalyStream: config.streams.anomalies,
      deployStream: config.streams.deploys,
      ...config.collect,
      excludeContainers: self ? [self] : [],
    });
  } finally {
    await alerts?.[Symbol.asyncDispose]();
    await log[Symbol.asyncDispose]();
  }
  Deno.exit(0);
}
