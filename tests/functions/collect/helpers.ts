/**
 * Helpers of the collect tests: run the collector in-process against a
 * Docker engine and a Redis, read back what it appended.
 *
 * @module
 */

import Docker from "dockerode";
import { Redis } from "ioredis";
import {
  collect,
  type CollectOptions,
  type CollectSummary,
} from "../../../functions/collect/collect.ts";
import { lineBytes, type LogEntry, unpackEntries } from "../../../shared/ports/log_entry.ts";
import { type Anomaly, fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";
import { type Deploy, fieldsToDeploy } from "../../../shared/ports/deploy.ts";
import { createLogger } from "../../../shared/runtime/logger.ts";
import { RedisLogStream } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { dockerCli } from "../../harness/services.ts";

/** A collector running in this process. */
export interface RunningCollector extends AsyncDisposable {
  /** The stream it appends to. */
  stream: string;
  /** Its checkpoint key prefix. */
  prefix: string;
  /** Log lines it wrote (JSON objects). */
  logs: Record<string, unknown>[];
  /** Stops it and resolves with its summary. */
  stop(): Promise<CollectSummary>;
}

/**
 * Starts `collect()` on the engine at `socketPath`, appending to a fresh
 * stream of the Redis at `redisUrl`.
 *
 * @param socketPath the engine's socket
 * @param redisUrl the Redis
 * @param options collector options
 * @returns the running collector
 */
export function startCollector(
  socketPath: string,
  redisUrl: string,
  options: CollectOptions = {},
): RunningCollector {
  const stream = options.stream ?? `test:logs:${crypto.randomUUID()}`;
  const prefix = options.checkpointPrefix ?? `test:ckpt:${crypto.randomUUID()}:`;
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("collect", {
    level: "debug",
    write: (line) => logs.push(JSON.parse(line)),
  });
  const log = RedisLogStream.connect(redisUrl);
  const stop = new AbortController();
  const docker = new Docker({ socketPath });
  const done = collect({ docker, log, logger, signal: stop.signal }, {
    ...options,
    stream,
    checkpointPrefix: prefix,
  });
  let summary: Promise<CollectSummary> | null = null;
  const halt = () => {
    summary ??= (async () => {
      stop.abort();
      try {
        return await done;
      } finally {
        await log[Symbol.asyncDispose]();
      }
    })();
    return summary;
  };
  return {
    stream,
    prefix,
    logs,
    stop: halt,
    async [Symbol.asyncDispose]() {
      await halt();
    },
  };
}

/** A Redis client for reading back, closed on dispose. */
export function redisReader(url: string): Redis & AsyncDisposable {
  const r = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null });
  r.on("error", () => {});
  return Object.assign(r, {
    async [Symbol.asyncDispose]() {
      await r.quit().catch(() => r.disconnect());
    },
  });
}

/** Reads a stream incrementally: each call fetches only the new entries. */
export class StreamReader {
  #redis: Redis;
  #stream: string;
  #last = "-";
  #entries: LogEntry[] = [];

  /**
   * @param redis a client
   * @param stream the stream
   */
  constructor(redis: Redis, stream: string) {
    this.#redis = redis;
    this.#stream = stream;
  }

  /**
   * Every entry so far, in stream order.
   *
   * @returns the entries
   */
  async all(): Promise<LogEntry[]> {
    for (;;) {
      const page = await this.#redis.xrange(this.#stream, this.#last, "+", "COUNT", 10_000) as [
        string,
        string[],
      ][];
      for (const [, flat] of page) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
        this.#entries.push(...unpackEntries(f));
      }
      if (page.length > 0) this.#last = "(" + page[page.length - 1]![0];
      if (page.length < 10_000) return this.#entries;
    }
  }

  /**
   * The entries of one container so far.
   *
   * @param id the container id
   * @returns its entries, in stream order
   */
  async of(id: string): Promise<LogEntry[]> {
    return ofContainer(await this.all(), id);
  }
}

/**
 * The entries of one container.
 *
 * @param entries all entries
 * @param id the container id
 * @returns its entries, in stream order
 */
export function ofContainer(entries: LogEntry[], id: string): LogEntry[] {
  return entries.filter((e) => e.containerId === id);
}

/**
 * The text of entries' lines.
 *
 * @param entries entries
 * @returns their lines
 */
export function texts(entries: LogEntry[]): string[] {
  return entries.map((e) => new TextDecoder().decode(lineBytes(e)));
}

/**
 * Runs a container detached and returns its full id.
 *
 * @param host the engine (`unix://...`)
 * @param args `docker run` arguments after `-d`
 * @returns the container id
 */
export async function runContainer(host: string, args: string[]): Promise<string> {
  return await dockerCli(host, ["run", "-d", ...args]);
}

/**
 * Removes containers, ignoring ones already gone.
 *
 * @param host the engine
 * @param ids container ids
 */
export async function removeContainers(host: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await dockerCli(host, ["rm", "-f", ...ids]).catch(() => "");
}

/**
 * The numbers `1..n` as strings.
 *
 * @param n how many
 * @param prefix put before each
 * @default prefix ""
 * @returns the list
 */
export function numbered(n: number, prefix = ""): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

/**
 * Every anomaly of a stream.
 *
 * @param redis a client
 * @param stream the anomalies stream
 * @returns the anomalies, oldest first
 */
export async function readAnomalies(redis: Redis, stream: string): Promise<Anomaly[]> {
  const page = await redis.xrange(stream, "-", "+") as [string, string[]][];
  return page.map(([id, flat]) => fieldsToAnomaly(id, _fields(flat)));
}

/**
 * Every deploy of a stream.
 *
 * @param redis a client
 * @param stream the deploys stream
 * @returns the deploys, oldest first
 */
export async function readDeploys(redis: Redis, stream: string): Promise<Deploy[]> {
  const page = await redis.xrange(stream, "-", "+") as [string, string[]][];
  return page.map(([id, flat]) => fieldsToDeploy(id, _fields(flat)));
}

function _fields(flat: string[]): Record<string, string> {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return f;
}
