/**
 * The Redis Streams adapter of the {@linkcode LogStream} port (ioredis).
 *
 * One connection for everything that does not block, and one per stream for
 * blocking group reads (a blocking read holds its connection), so a read that
 * waits for new messages never holds up an ack, an append or the read of
 * another shard. Works the same on a Redis Cluster client (every script
 * touches keys of one slot only; see shared/ports/log_shards.ts).
 *
 * @module
 */

import { Cluster, Redis, type RedisOptions } from "ioredis";
import {
  type AppendOptions,
  AppendOutOfOrderError,
  checkSequence,
  type Fields,
  type GroupInfo,
  type LogStream,
  type ReadOptions,
  type StreamMessage,
} from "../../ports/log_stream.ts";

/** Options of {@linkcode RedisLogStream.connect}. */
export interface RedisConnectOptions {
  /** Overrides the URL's user. */
  username?: string | null;
  /** Overrides the URL's password. */
  password?: string | null;
  /**
   * Name shown by `CLIENT LIST`.
   * @default "tailwise"
   */
  name?: string;
  /**
   * The URL is a seed node of a Redis Cluster: connect with ioredis
   * `Cluster` (the other nodes are discovered).
   * @default false
   */
  cluster?: boolean;
  /**
   * Told each time an append found Redis out of memory (`OOM`, with
   * `noeviction`) and the stream was trimmed of what every consumer group
   * had acked (see {@linkcode RedisLogStream.trimAcked}); the append is then
   * tried once more.
   * @default ignore
   */
  onTrimmed?: (trimmed: TrimmedStream) => void;
}

/** What {@linkcode RedisLogStream.trimAcked} did. */
export interface TrimmedStream {
  /** The stream. */
  stream: string;
  /** Entries below this id were removed; null when no group exists (nothing is known acked). */
  minId: string | null;
  /** Entries removed. */
  removed: number;
}

type _RawMessage = [string, string[] | null];

// KEYS[1] the stream, then the sequence key when ARGV[3] > 0, then the state
// keys. ARGV: maxLen, message count, sequence number (0: none), sequence ttl
// in ms, per message its field count and fields, then the state values in
// KEYS order. An already applied sequence number returns false; a gap, or a
// number above 1 for an absent sequence key (the server lost it), is an
// OUTOFORDER error and writes nothing.
const _APPEND = `
local maxlen = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local seq = tonumber(ARGV[3])
local first = 2
if seq > 0 then
  first = 3
  local last = tonumber(redis.call('GET', KEYS[2]) or '')
  if last then
    if seq <= last then return false end
    if seq ~= last + 1 then
      return redis.error_reply('OUTOFORDER append ' .. seq .. ' after ' .. last)
    end
  elseif seq > 1 then
    return redis.error_reply('OUTOFORDER append ' .. seq .. ' after none')
  end
end
local a = 5
local ids = {}
for i = 1, n do
  local c = tonumber(ARGV[a])
  a = a + 1
  local f = {}
  for j = 1, c * 2 do f[j] = ARGV[a + j - 1] end
  a = a + c * 2
  if maxlen > 0 then
    ids[i] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(f))
  else
    ids[i] = redis.call('XADD', KEYS[1], '*', unpack(f))
  end
end
for k = first, #KEYS do
  redis.call('SET', KEYS[k], ARGV[a])
  a = a + 1
end
if seq > 0 then redis.call('SET', KEYS[2], seq, 'PX', ARGV[4]) end
return ids
`;

// KEYS[1] the stream, KEYS[2..] one key per message. ARGV: maxLen, ttlMs, then
// per message its field count and fields. A message is added only when SET NX
// of its key succeeds, in one atomic script.
const _APPEND_ONCE = `
local out = {}
local a = 3
for i = 2, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  local fields = {}
  for j = 1, n * 2 do fields[j] = ARGV[a + j - 1] end
  a = a + n * 2
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[2]) then
    if tonumber(ARGV[1]) > 0 then
      out[#out + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    else
      out[#out + 1] = redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
  else
    out[#out + 1] = ''
  end
end
return out
`;

/** Redis Streams behind the {@linkcode LogStream} port. */
export class RedisLogStream implements LogStream {
  #client: Redis;
  #blocking: Redis;
  #blockingByStream = new Map<string, Redis>();
  #claimCursor = new Map<string, string>();

  /**
   * Wraps two clients; prefer {@linkcode RedisLogStream.connect}.
   *
   * @param client for appends, acks and reads that do not block
   * @param blocking for blocking group reads
   */
  constructor(
    client: Redis,
    blocking: Redis,
    options: Pick<RedisConnectOptions, "onTrimmed"> = {},
  ) {
    // EVALSHA with a fallback to EVAL when the server does not know the script yet.
    if (!("tailwiseAppend" in client)) client.defineCommand("tailwiseAppend", { lua: _APPEND });
    this.#client = client;
    this.#blocking = blocking;
    this.#onTrimmed = options.onTrimmed ?? (() => {});
  }

  #onTrimmed: (trimmed: TrimmedStream) => void;

  /**
   * Removes the entries of a stream that every consumer group has acked:
   * below the oldest entry still pending in a group, and at or below every
   * group's last delivered id. Entries some group has not read are kept.
   * Without groups nothing is removed.
   *
   * @param stream the stream
   * @returns the bound and how many entries went
   */
  async trimAcked(stream: string): Promise<TrimmedStream> {
    const groups = await this.#client.xinfo("GROUPS", stream) as unknown[][];
    let min: string | null = null;
    for (const g of groups) {
      const o: Record<string, unknown> = {};
      for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1];
      let bound: string;
      if (Number(o.pending) > 0) {
        const summary = await this.#client.xpending(stream, String(o.name)) as unknown[];
        bound = String(summary[1]);
      } else {
        const [ms, seq] = String(o["last-delivered-id"]).split("-").map(BigInt) as [bigint, bigint];
        bound = `${ms}-${seq + 1n}`;
      }
      if (min === null || _compareIds(bound, min) < 0) min = bound;
    }
    if (min === null) return { stream, minId: null, removed: 0 };
    const removed = Number(await this.#client.xtrim(stream, "MINID", min));
    return { stream, minId: min, removed };
  }

  /**
   * Connects to Redis. Commands issued while Redis is down wait for the
   * reconnect (ioredis' offline queue), so callers see slowness, not loss.
   *
   * @param url a redis:// or rediss:// URL
   * @param options credentials and client name
   * @returns the adapter
   */
  static connect(url: string, options: RedisConnectOptions = {}): RedisLogStream {
    return new RedisLogStream(
      createRedisClient(url, options),
      createRedisClient(url, { ...options, name: `${options.name ?? "tailwise"}-blocking` }),
      options.onTrimmed ? { onTrimmed: options.onTrimmed } : {},
    );
  }

  /** The non-blocking client, for adapters that share this connection. */
  get client(): Redis {
    return this.#client;
  }

  /** {@inheritDoc LogStream.append} */
  append(
    stream: string,
    messages: readonly Fields[],
    options: AppendOptions = {},
  ): Promise<string[]> {
    return this.#append(stream, messages, options, false);
  }

  async #append(
    stream: string,
    messages: readonly Fields[],
    options: AppendOptions,
    retry: boolean,
  ): Promise<string[]> {
    const stateKeys = options.state ? Object.keys(options.state) : [];
    if (messages.length === 0 && stateKeys.length === 0) return [];
    const seq = options.sequence;
    checkSequence(seq);
    // One script call per batch: every XADD and the state keys in one atomic
    // step, with one reply (a MULTI costs a QUEUED reply and a promise per line).
    const keys = seq ? [stream, seq.key, ...stateKeys] : [stream, ...stateKeys];
    const args: (string | number)[] = [
      keys.length,
      ...keys,
      options.maxLen && options.maxLen > 0 ? options.maxLen : 0,
      messages.length,
      seq ? seq.n : 0,
      seq?.ttlMs ?? 86_400_000,
    ];
    for (const fields of messages) {
      const at = args.length;
      args.push(0);
      let n = 0;
      for (const k in fields) {
        args.push(k, fields[k]!);
        n++;
      }
      args[at] = n;
    }
    for (const k of stateKeys) args.push(options.state![k]!);
    let ids: string[] | null;
    try {
      // deno-lint-ignore no-explicit-any
      ids = await (this.#client as any).tailwiseAppend(...args) as string[] | null;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (message.startsWith("OUTOFORDER")) {
        throw new AppendOutOfOrderError(
          `Cannot append to ${stream} with sequence ${seq?.key}: ${message.slice(11)}`,
        );
      }
      // Out of memory: only MAXLEN trimmed the stream, so entries every group
      // acked long ago may fill it. Trim those, then try once more.
      if (message.startsWith("OOM") && !retry) {
        const trimmed = await this.trimAcked(stream);
        this.#onTrimmed(trimmed);
        if (trimmed.removed > 0) return await this.#append(stream, messages, options, true);
      }
      throw e;
    }
    return ids === null ? [] : ids.map(String);
  }

  /** {@inheritDoc LogStream.appendOnce} */
  async appendOnce(
    stream: string,
    items: readonly { key: string; fields: Fields }[],
    options: { maxLen?: number; ttlMs?: number } = {},
  ): Promise<(string | null)[]> {
    if (items.length === 0) return [];
    const args: string[] = [String(options.maxLen ?? 0), String(options.ttlMs ?? 7 * 86_400_000)];
    for (const { fields } of items) {
      const keys = Object.keys(fields);
      args.push(String(keys.length));
      for (const k of keys) args.push(k, fields[k]!);
    }
    const ids = await this.#client.eval(
      _APPEND_ONCE,
      items.length + 1,
      stream,
      ...items.map((i) => i.key),
      ...args,
    ) as string[];
    return ids.map((id) => (id === "" ? null : id));
  }

  /** {@inheritDoc LogStream.getState} */
  getState(key: string): Promise<string | null> {
    return this.#client.get(key);
  }

  /** {@inheritDoc LogStream.deleteState} */
  async deleteState(keys: readonly string[]): Promise<void> {
    // One DEL per key: on Redis Cluster the keys may be in different slots.
    if (keys.length === 1) await this.#client.del(keys[0]!);
    else if (keys.length > 1) await Promise.all(keys.map((k) => this.#client.del(k)));
  }

  /** {@inheritDoc LogStream.createGroup} */
  async createGroup(stream: string, group: string): Promise<void> {
    try {
      await this.#client.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    } catch (e) {
      if (!(e instanceof Error && e.message.includes("BUSYGROUP"))) throw e;
    }
  }

  /** {@inheritDoc LogStream.readNew} */
  async readNew(
    stream: string,
    group: string,
    consumer: string,
    options: ReadOptions,
  ): Promise<StreamMessage[]> {
    const args: (string | number)[] = ["GROUP", group, consumer, "COUNT", options.count];
    const client = options.blockMs ? this.#blockingFor(stream) : this.#client;
    if (options.blockMs) args.push("BLOCK", options.blockMs);
    args.push("STREAMS", stream, ">");
    // deno-lint-ignore no-explicit-any
    const reply = await (client as any).xreadgroup(...args) as
      | [string, _RawMessage[]][]
      | null;
    const raw = reply?.[0]?.[1] ?? [];
    return raw.map(([id, flat]) => ({ id, fields: _toFields(flat ?? []), deliveries: 1 }));
  }

  #blockingFor(stream: string): Redis {
    let client = this.#blockingByStream.get(stream);
    if (client === undefined) {
      // The first stream read with blocking gets the connection made for it; others a copy.
      client = this.#blockingByStream.size === 0 ? this.#blocking : this.#blocking.duplicate();
      client.on("error", () => {});
      this.#blockingByStream.set(stream, client);
    }
    return client;
  }

  /** {@inheritDoc LogStream.readPending} */
  async readPending(
    stream: string,
    group: string,
    consumer: string,
    options: ReadOptions,
  ): Promise<StreamMessage[]> {
    // deno-lint-ignore no-explicit-any
    const reply = await (this.#client as any).xreadgroup(
      "GROUP",
      group,
      consumer,
      "COUNT",
      options.count,
      "STREAMS",
      stream,
      "0",
    ) as [string, _RawMessage[]][] | null;
    const raw = reply?.[0]?.[1] ?? [];
    return await this.#withDeliveries(stream, group, raw, consumer);
  }

  /** {@inheritDoc LogStream.claimIdle} */
  async claimIdle(
    stream: string,
    group: string,
    consumer: string,
    options: { minIdleMs: number; count: number },
  ): Promise<StreamMessage[]> {
    const key = `${stream}\u0000${group}`;
    const cursor = this.#claimCursor.get(key) ?? "0-0";
    const reply = await this.#client.xautoclaim(
      stream,
      group,
      consumer,
      options.minIdleMs,
      cursor,
      "COUNT",
      options.count,
    ) as [string, _RawMessage[], string[]?];
    this.#claimCursor.set(key, reply[0]);
    return await this.#withDeliveries(stream, group, reply[1] ?? [], consumer);
  }

  async #withDeliveries(
    stream: string,
    group: string,
    raw: _RawMessage[],
    consumer: string,
  ): Promise<StreamMessage[]> {
    if (raw.length === 0) return [];
    const counts = new Map<string, number>();
    const pending = await this.#client.xpending(
      stream,
      group,
      raw[0]![0],
      raw[raw.length - 1]![0],
      raw.length,
      consumer,
    ) as [string, string, number, number][];
    for (const [id, , , n] of pending) counts.set(id, Number(n));
    const out: StreamMessage[] = [];
    const gone: string[] = [];
    for (const [id, flat] of raw) {
      // A message trimmed away while pending comes back without fields.
      if (flat === null) gone.push(id);
      else out.push({ id, fields: _toFields(flat), deliveries: counts.get(id) ?? 1 });
    }
    if (gone.length > 0) await this.#client.xack(stream, group, ...gone);
    return out;
  }

  /** {@inheritDoc LogStream.ack} */
  async ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return await this.#client.xack(stream, group, ...ids);
  }

  /** {@inheritDoc LogStream.groupInfo} */
  async groupInfo(stream: string, group: string): Promise<GroupInfo> {
    let groups: unknown[][];
    try {
      groups = await this.#client.xinfo("GROUPS", stream) as unknown[][];
    } catch (e) {
      if (e instanceof Error && e.message.includes("no such key")) {
        return { pending: 0, lag: 0, consumers: 0 };
      }
      throw e;
    }
    for (const flat of groups) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1]);
      if (info.get("name") !== group) continue;
      const lag = info.get("lag");
      return {
        pending: Number(info.get("pending") ?? 0),
        lag: lag === null || lag === undefined ? null : Number(lag),
        consumers: Number(info.get("consumers") ?? 0),
      };
    }
    return { pending: 0, lag: null, consumers: 0 };
  }

  /** {@inheritDoc LogStream.range} */
  async range(
    stream: string,
    options: { start?: string; end?: string; count?: number; reverse?: boolean } = {},
  ): Promise<StreamMessage[]> {
    const start = options.start ?? "-";
    const end = options.end ?? "+";
    const raw = options.reverse
      ? options.count !== undefined
        ? await this.#client.xrevrange(stream, end, start, "COUNT", options.count)
        : await this.#client.xrevrange(stream, end, start)
      : options.count !== undefined
      ? await this.#client.xrange(stream, start, end, "COUNT", options.count)
      : await this.#client.xrange(stream, start, end);
    return (raw as [string, string[]][]).map(([id, flat]) => ({
      id,
      fields: _toFields(flat),
      deliveries: 0,
    }));
  }

  /** {@inheritDoc LogStream.length} */
  length(stream: string): Promise<number> {
    return this.#client.xlen(stream);
  }

  /** {@inheritDoc LogStream.ping} */
  ping(): Promise<boolean> {
    return pingRedis(this.#client);
  }

  /** Closes every connection. */
  async [Symbol.asyncDispose](): Promise<void> {
    const blocking = new Set([this.#blocking, ...this.#blockingByStream.values()]);
    await Promise.allSettled([_quit(this.#client), ...[...blocking].map(_quit)]);
  }
}

/**
 * Creates an ioredis client that retries forever with capped backoff and
 * keeps commands queued while disconnected; with `cluster`, an ioredis
 * `Cluster` seeded with the URL's node, typed as `Redis` (its commands are
 * the same; what differs is routing by slot, which the key layout respects).
 *
 * @param url a redis:// or rediss:// URL
 * @param options credentials, client name, cluster
 * @returns the client (connecting)
 */
export function createRedisClient(url: string, options: RedisConnectOptions = {}): Redis {
  if (options.cluster) return _createCluster(url, options);
  const extra: RedisOptions = {
    connectionName: options.name ?? "tailwise",
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false,
  };
  if (options.username) extra.username = options.username;
  if (options.password) extra.password = options.password;
  const client = new Redis(url, extra);
  // Connection errors surface through the commands that wait on them; an
  // unhandled "error" event would crash the process.
  client.on("error", () => {});
  return client;
}

/**
 * Whether a client from {@linkcode createRedisClient} talks to a Redis
 * Cluster (an ioredis `Cluster` behind the `Redis` type).
 *
 * @example
 * ```ts
 * import { createRedisClient, isClusterClient } from "./redis_log_stream.ts";
 * const client = createRedisClient("redis://127.0.0.1:7000", { cluster: true });
 * isClusterClient(client); // true
 * ```
 *
 * @param client the client
 * @returns true for a Cluster client
 */
export function isClusterClient(client: Redis): boolean {
  return client instanceof Cluster || (client as { isCluster?: boolean }).isCluster === true;
}

function _createCluster(url: string, options: RedisConnectOptions): Redis {
  const u = new URL(url);
  const redisOptions: RedisOptions = {
    connectionName: options.name ?? "tailwise",
    maxRetriesPerRequest: null,
  };
  const username = options.username ?? (u.username ? decodeURIComponent(u.username) : null);
  const password = options.password ?? (u.password ? decodeURIComponent(u.password) : null);
  if (username) redisOptions.username = username;
  if (password) redisOptions.password = password;
  if (u.protocol === "rediss:") redisOptions.tls = {};
  const cluster = new Cluster([{ host: u.hostname, port: Number(u.port || 6379) }], {
    redisOptions,
    enableOfflineQueue: true,
    // Retry forever, capped, as the single-node client does.
    clusterRetryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 64,
    lazyConnect: false,
  });
  cluster.on("error", () => {});
  return cluster as unknown as Redis;
}

function _toFields(flat: string[]): Fields {
  const f: Fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return f;
}

async function _quit(client: Redis): Promise<void> {
  try {
    await _withTimeout(client.quit(), 500);
  } catch {
    client.disconnect();
  }
}

/**
 * Whether a Redis answers PING within `timeoutMs`; never throws.
 *
 * @param client the client
 * @param timeoutMs the longest wait
 * @default timeoutMs 1000
 * @returns true when it answered PONG in time
 */
export async function pingRedis(client: Redis, timeoutMs = 1000): Promise<boolean> {
  try {
    return (await _withTimeout(client.ping(), timeoutMs)) === "PONG";
  } catch {
    return false;
  }
}

function _withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function _compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}
