/**
 * The Redis adapter of the {@linkcode ModelRegistry} port (ioredis).
 *
 * Keys, with `P` the prefix (default `tailwise:models:`) and `C` the
 * container's name as base64url of its UTF-8 bytes, so a hostile name never
 * reaches a key unencoded:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P containers` | set | the container names |
 * | `P c:C:seq` | string | last version number (INCR) |
 * | `P c:C:current` | string | the current version: the cheap per-batch GET |
 * | `P c:C:versions` | sorted set | kept versions, score = version |
 * | `P c:C:meta` | hash | version → JSON metadata |
 * | `P c:C:promoted` | hash | version → when it was first made current |
 * | `P c:C:rolledback` | hash | version → when a rollback left it |
 * | `P c:C:blob:<v>` | string | the blob, binary |
 *
 * Every change (put, promote, rollback, with the trimming to the last K
 * versions) is one Lua script, so it is atomic; a change of the current
 * version is published on the channel `P changes` as `<version> <name>`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { createRedisClient, pingRedis, type RedisConnectOptions } from "./redis_log_stream.ts";
import {
  checkContainerName,
  checkNewModelMeta,
  CurrentVersionCorruptError,
  type ModelChange,
  modelChecksum,
  ModelCorruptError,
  type ModelMeta,
  ModelNotFoundError,
  type ModelRegistry,
  type NewModelMeta,
  type PutModelOptions,
} from "../../ports/model_registry.ts";

/** Options of {@linkcode RedisModelRegistry}. */
export interface RedisModelRegistryOptions {
  /**
   * Prefix of every key and of the change channel.
   * @default "tailwise:models:"
   */
  prefix?: string;
  /**
   * Most versions kept per container: the newest, the current one always among them.
   * @default 5
   */
  keepVersions?: number;
  /**
   * Close the client on dispose.
   * @default false
   */
  ownsClient?: boolean;
}

// KEYS: containers, seq, current, versions, meta, promoted, rolledback.
// ARGV: name, meta json, blob, promote (1/0), now, keep, blob key prefix, channel.
const _PUT = `
local v = redis.call('INCR', KEYS[2])
redis.call('SET', ARGV[7] .. v, ARGV[3])
redis.call('HSET', KEYS[5], v, ARGV[2])
redis.call('ZADD', KEYS[4], v, v)
redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[4] == '1' then
  redis.call('SET', KEYS[3], v)
  redis.call('HSETNX', KEYS[6], v, ARGV[5])
  redis.call('HDEL', KEYS[7], v)
end
local cur = redis.call('GET', KEYS[3])
local all = redis.call('ZRANGE', KEYS[4], 0, -1)
local excess = #all - tonumber(ARGV[6])
local i = 1
while excess > 0 and i <= #all do
  local old = all[i]
  if old ~= cur then
    redis.call('DEL', ARGV[7] .. old)
    redis.call('HDEL', KEYS[5], old)
    redis.call('HDEL', KEYS[6], old)
    redis.call('HDEL', KEYS[7], old)
    redis.call('ZREM', KEYS[4], old)
    excess = excess - 1
  end
  i = i + 1
end
if ARGV[4] == '1' then redis.call('PUBLISH', ARGV[8], v .. ' ' .. ARGV[1]) end
return v
`;

// KEYS: current, meta, promoted, rolledback. ARGV: version, now, channel, name.
const _PROMOTE = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. ARGV[4])
return 1
`;

// KEYS: current, versions, promoted, rolledback. ARGV: now, channel, name, blob key prefix.
// Returns the new current version, -1 without a current one, 0 without an earlier good one.
const _ROLLBACK = `
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local older = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. cur, '-inf')
for _, v in ipairs(older) do
  if redis.call('HEXISTS', KEYS[3], v) == 1 and redis.call('HEXISTS', KEYS[4], v) == 0
    and redis.call('EXISTS', ARGV[4] .. v) == 1 then
    redis.call('SET', KEYS[1], v)
    redis.call('HSET', KEYS[4], cur, ARGV[1])
    redis.call('PUBLISH', ARGV[2], v .. ' ' .. ARGV[3])
    return tonumber(v)
  end
end
return 0
`;

interface _StoredMeta {
  trainedAt: string;
  lines: number;
  threshold: number;
  checksum: string;
  size: number;
  evaluation?: Record<string, number>;
  note?: string;
}

interface _Keys {
  seq: string;
  current: string;
  versions: string;
  meta: string;
  promoted: string;
  rolledback: string;
  blob: string;
}

/** Model versions in Redis, shared by every scorer and trainer. */
export class RedisModelRegistry implements ModelRegistry {
  #client: Redis;
  #prefix: string;
  #keep: number;
  #ownsClient: boolean;
  #closing = new AbortController();

  /**
   * Wraps a client; prefer {@linkcode RedisModelRegistry.connect}.
   *
   * @param client a connected ioredis client
   * @param options key prefix, versions kept, client ownership
   * @throws {RangeError} when `keepVersions` is not a positive integer
   */
  constructor(client: Redis, options: RedisModelRegistryOptions = {}) {
    const keep = options.keepVersions ?? 5;
    if (!Number.isInteger(keep) || keep < 1) {
      throw new RangeError(`Cannot keep ${keep} versions: expected an integer of at least 1`);
    }
    this.#client = client;
    this.#prefix = options.prefix ?? "tailwise:models:";
    this.#keep = keep;
    this.#ownsClient = options.ownsClient ?? false;
  }

  /**
   * Connects to Redis with its own client, closed on dispose.
   *
   * @param url a redis:// or rediss:// URL
   * @param options credentials, client name, key prefix, versions kept
   * @returns the registry
   */
  static connect(
    url: string,
    options: RedisConnectOptions & Omit<RedisModelRegistryOptions, "ownsClient"> = {},
  ): RedisModelRegistry {
    const client = createRedisClient(url, {
      username: options.username ?? null,
      password: options.password ?? null,
      name: options.name ?? "tailwise-models",
      cluster: options.cluster ?? false,
    });
    return new RedisModelRegistry(client, { ...options, ownsClient: true });
  }

  #keys(container: string): _Keys {
    const bytes = checkContainerName(container);
    const base = `${this.#prefix}c:${Buffer.from(bytes).toString("base64url")}:`;
    return {
      seq: `${base}seq`,
      current: `${base}current`,
      versions: `${base}versions`,
      meta: `${base}meta`,
      promoted: `${base}promoted`,
      rolledback: `${base}rolledback`,
      blob: `${base}blob:`,
    };
  }

  get #channel(): string {
    return `${this.#prefix}changes`;
  }

  /** {@inheritDoc ModelRegistry.put} */
  async put(
    container: string,
    blob: Uint8Array,
    meta: NewModelMeta,
    options: PutModelOptions = {},
  ): Promise<ModelMeta> {
    const k = this.#keys(container);
    checkNewModelMeta(meta);
    const stored: _StoredMeta = {
      trainedAt: meta.trainedAt ?? new Date().toISOString(),
      lines: meta.lines,
      threshold: meta.threshold,
      checksum: await modelChecksum(blob),
      size: blob.byteLength,
      ...(meta.evaluation ? { evaluation: { ...meta.evaluation } } : {}),
      ...(meta.note !== undefined ? { note: meta.note } : {}),
    };
    const promote = options.promote ?? true;
    const now = new Date().toISOString();
    const version = Number(
      await this.#client.eval(
        _PUT,
        7,
        `${this.#prefix}containers`,
        k.seq,
        k.current,
        k.versions,
        k.meta,
        k.promoted,
        k.rolledback,
        container,
        JSON.stringify(stored),
        Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength),
        promote ? "1" : "0",
        now,
        String(this.#keep),
        k.blob,
        this.#channel,
      ),
    );
    return {
      container,
      version,
      ...stored,
      status: promote ? "current" : "candidate",
      ...(promote ? { promotedAt: now } : {}),
    };
  }

  /** {@inheritDoc ModelRegistry.currentVersion} */
  async currentVersion(container: string): Promise<number | null> {
    let v: string | null;
    try {
      v = await this.#client.get(this.#keys(container).current);
    } catch (e) {
      if (_wrongType(e)) {
        throw new CurrentVersionCorruptError(container, "its key holds the wrong Redis type", {
          cause: e,
        });
      }
      throw e;
    }
    if (v === null) return null;
    const n = _version(v);
    if (n === null) {
      throw new CurrentVersionCorruptError(
        container,
        `it holds ${JSON.stringify(v.slice(0, 40))}: expected an integer of at least 1`,
      );
    }
    return n;
  }

  /** {@inheritDoc ModelRegistry.current} */
  async current(container: string): Promise<ModelMeta | null> {
    const version = await this.currentVersion(container);
    if (version === null) return null;
    try {
      return (await this.#read(container, version, false)).meta;
    } catch (e) {
      // Trimmed or promoted away between the two reads: ask again.
      if (e instanceof ModelNotFoundError) return await this.current(container);
      throw e;
    }
  }

  /** {@inheritDoc ModelRegistry.get} */
  async get(container: string, version?: number): Promise<{ meta: ModelMeta; blob: Uint8Array }> {
    let v = version;
    if (v === undefined) {
      const cur = await this.currentVersion(container);
      if (cur === null) throw new ModelNotFoundError(container, null);
      v = cur;
    } else _checkVersion(v);
    const { meta, blob } = await this.#read(container, v, true);
    if (blob === null) {
      throw new ModelCorruptError(container, v, "the blob is missing");
    }
    const sum = await modelChecksum(blob);
    if (sum !== meta.checksum) {
      throw new ModelCorruptError(
        container,
        v,
        `expected sha-256 ${meta.checksum} (${meta.size} bytes), got ${sum} (${blob.byteLength} bytes)`,
      );
    }
    return { meta, blob };
  }

  async #read(
    container: string,
    version: number,
    withBlob: boolean,
  ): Promise<{ meta: ModelMeta; blob: Uint8Array | null }> {
    const k = this.#keys(container);
    const p = this.#client.pipeline()
      .hget(k.meta, String(version))
      .hget(k.promoted, String(version))
      .hget(k.rolledback, String(version))
      .get(k.current);
    if (withBlob) p.getBuffer(`${k.blob}${version}`);
    const replies = await p.exec();
    if (replies === null) throw new Error("Redis aborted the read of a model");
    // A key of the wrong type spoils this version only; an unreadable
    // current pointer only means this version is not known to be current.
    replies.forEach(([err], i) => {
      if (!err) return;
      if (!_wrongType(err)) throw err;
      if (i === 3) replies[3] = [null, null];
      else {
        throw new ModelCorruptError(
          container,
          version,
          `its ${
            ["metadata", "promotion time", "rollback time", "", "blob"][i]
          } key holds the wrong Redis type`,
          { cause: err },
        );
      }
    });
    const [json, promotedAt, rolledBackAt, current, blob] = replies.map((r) => r[1]) as [
      string | null,
      string | null,
      string | null,
      string | null,
      Buffer | null | undefined,
    ];
    if (json === null) throw new ModelNotFoundError(container, version);
    const meta = _toMeta(container, version, json, promotedAt, rolledBackAt, current);
    return { meta, blob: blob ? new Uint8Array(blob) : null };
  }

  /** {@inheritDoc ModelRegistry.list} */
  async list(container?: string): Promise<ModelMeta[]> {
    const names = container === undefined ? await this.containers() : [container];
    if (names.length === 0) return [];
    const p = this.#client.pipeline();
    for (const name of names) {
      const k = this.#keys(name);
      p.hgetall(k.meta).hgetall(k.promoted).hgetall(k.rolledback).get(k.current);
    }
    const replies = await p.exec();
    if (replies === null) throw new Error("Redis aborted the listing of models");
    for (const [err] of replies) if (err && !_wrongType(err)) throw err;
    const out: ModelMeta[] = [];
    names.forEach((name, i) => {
      // A broken entry (a key of the wrong type, metadata that is not JSON)
      // leaves out what it spoils, never the other containers.
      const [metas, promoted, rolledback, current] = replies.slice(i * 4, i * 4 + 4)
        .map(([err, value]) => (err ? null : value)) as [
          Record<string, string> | null,
          Record<string, string> | null,
          Record<string, string> | null,
          string | null,
        ];
      if (metas === null) return;
      const versions = Object.keys(metas).map(Number).filter((v) => _version(String(v)) !== null)
        .sort((a, b) => b - a);
      for (const v of versions) {
        try {
          out.push(
            _toMeta(
              name,
              v,
              metas[String(v)]!,
              promoted?.[String(v)] ?? null,
              rolledback?.[String(v)] ?? null,
              current,
            ),
          );
        } catch (e) {
          if (!(e instanceof ModelCorruptError)) throw e;
        }
      }
    });
    return out;
  }

  /** {@inheritDoc ModelRegistry.containers} */
  async containers(): Promise<string[]> {
    const names = await this.#client.smembers(`${this.#prefix}containers`);
    return names.sort();
  }

  /** {@inheritDoc ModelRegistry.promote} */
  async promote(container: string, version: number): Promise<ModelMeta> {
    const k = this.#keys(container);
    _checkVersion(version);
    const ok = await this.#client.eval(
      _PROMOTE,
      4,
      k.current,
      k.meta,
      k.promoted,
      k.rolledback,
      String(version),
      new Date().toISOString(),
      this.#channel,
      container,
    );
    if (Number(ok) !== 1) throw new ModelNotFoundError(container, version);
    return (await this.#read(container, version, false)).meta;
  }

  /** {@inheritDoc ModelRegistry.rollback} */
  async rollback(container: string): Promise<ModelMeta> {
    const k = this.#keys(container);
    const v = Number(
      await this.#client.eval(
        _ROLLBACK,
        4,
        k.current,
        k.versions,
        k.promoted,
        k.rolledback,
        new Date().toISOString(),
        this.#channel,
        container,
        k.blob,
      ),
    );
    if (v === -1) throw new ModelNotFoundError(container, null);
    if (v === 0) {
      throw new ModelNotFoundError(container, null, {
        reason: "no earlier good version to roll back to",
      });
    }
    return (await this.#read(container, v, false)).meta;
  }

  /** {@inheritDoc ModelRegistry.watch} */
  async *watch(signal: AbortSignal): AsyncIterable<ModelChange> {
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (stop.aborted) return;
    const sub = this.#client.duplicate();
    sub.on("error", () => {});
    const queue: ModelChange[] = [];
    let wake: (() => void) | null = null;
    const onMessage = (_channel: string, message: string) => {
      const space = message.indexOf(" ");
      const version = Number(message.slice(0, space));
      if (space > 0 && Number.isInteger(version)) {
        queue.push({ container: message.slice(space + 1), version });
        wake?.();
      }
    };
    const onStop = () => wake?.();
    sub.on("message", onMessage);
    stop.addEventListener("abort", onStop);
    try {
      await sub.subscribe(this.#channel);
      while (!stop.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      stop.removeEventListener("abort", onStop);
      sub.off("message", onMessage);
      sub.disconnect();
    }
  }

  /** {@inheritDoc ModelRegistry.ping} */
  ping(): Promise<boolean> {
    return pingRedis(this.#client);
  }

  /** Ends every watch and closes the client if this registry owns it. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closing.abort();
    if (!this.#ownsClient) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#client.quit(),
        new Promise((_, reject) => (timer = setTimeout(reject, 500))),
      ]);
    } catch {
      this.#client.disconnect();
    } finally {
      clearTimeout(timer);
    }
  }
}

function _wrongType(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith("WRONGTYPE");
}

/** A stored version number, or null when it is not one. */
function _version(text: string): number | null {
  if (!/^[1-9]\d{0,15}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

function _checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new RangeError(`Cannot use model version ${version}: expected an integer of at least 1`);
  }
}

function _toMeta(
  container: string,
  version: number,
  json: string,
  promotedAt: string | null,
  rolledBackAt: string | null,
  current: string | null,
): ModelMeta {
  let stored: _StoredMeta;
  try {
    stored = JSON.parse(json);
    if (typeof stored !== "object" || stored === null || Array.isArray(stored)) {
      throw new TypeError("not an object");
    }
  } catch (e) {
    throw new ModelCorruptError(
      container,
      version,
      `its metadata is not a JSON object (${e instanceof Error ? e.message : String(e)})`,
      { cause: e },
    );
  }
  const status = current !== null && Number(current) === version
    ? "current"
    : promotedAt !== null
    ? "retired"
    : "candidate";
  return {
    container,
    version,
    ...stored,
    status,
    ...(promotedAt !== null ? { promotedAt } : {}),
    ...(rolledBackAt !== null ? { rolledBackAt } : {}),
  };
}
