/**
 * The Redis adapter of the {@linkcode ModelRegistry} port (ioredis).
 *
 * Keys, with `P` the prefix (default `tailwise:models:`) and `C` the
 * container's name as base64url of its UTF-8 bytes, so a hostile name never
 * reaches a key unencoded. `{C}` is a Redis Cluster hash tag: a container's
 * keys share one slot, so each script touches one slot only.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P containers` | set | the container names |
 * | `P c:{C}:seq` | string | last version number (INCR) |
 * | `P c:{C}:current` | string | the current version: the cheap per-batch GET |
 * | `P c:{C}:versions` | sorted set | kept versions, score = version |
 * | `P c:{C}:meta` | hash | version → JSON metadata |
 * | `P c:{C}:promoted` | hash | version → when it was first made current |
 * | `P c:{C}:rolledback` | hash | version → when a rollback left it |
 * | `P c:{C}:blob:<v>` | string | the blob, binary |
 *
 * Every change of a container (put, promote, rollback, with the trimming to
 * the last K versions) is one Lua script over its slot, so it is atomic; a
 * put first adds the name to `P containers` (idempotent, and before the
 * model can be current). A change of the current version is published on the
 * channel `P changes` as `<version> <name>` (PUBLISH reaches every node of a
 * cluster).
 *
 * Upgrade: before the hash tags the keys were `P c:C:<kind>` (a single Redis
 * only). On a client that is not a Cluster, the first touch of a container
 * in a process moves its old keys to the new names in one script, when
 * none of the new ones exists yet.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import {
  createRedisClient,
  isClusterClient,
  pingRedis,
  type RedisConnectOptions,
} from "./redis_log_stream.ts";
import { KeyLayoutUpgrade } from "./key_layout_upgrade.ts";
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
  /**
   * Move a container's keys of the layout before hash tags (`P c:C:<kind>`)
   * to their new names on its first touch in this process, when none of the
   * new ones exists. Only a single Redis can hold the old layout, so a
   * Cluster client never looks.
   * @default true, false on a Cluster client
   */
  upgradeOldKeys?: boolean;
  /**
   * Whether this process may move old keys (it needs to run a script that
   * renames them). A reader without that right (score's Redis user) leaves
   * the move to a writer and reads whichever layout holds a container.
   * @default true
   */
  moveOldKeys?: boolean;
}

// KEYS: seq, current, versions, meta, promoted, rolledback (one slot: the
// container's hash tag; blob keys are the blob key prefix and the version, in
// the same slot). ARGV: name, meta json, blob, promote (1/0), now, keep, blob
// key prefix, channel. The containers set is added to before, not here.
const _PUT = `
local v = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[7] .. v, ARGV[3])
redis.call('HSET', KEYS[4], v, ARGV[2])
redis.call('ZADD', KEYS[3], v, v)
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], v)
  redis.call('HSETNX', KEYS[5], v, ARGV[5])
  redis.call('HDEL', KEYS[6], v)
end
local cur = redis.call('GET', KEYS[2])
local all = redis.call('ZRANGE', KEYS[3], 0, -1)
local excess = #all - tonumber(ARGV[6])
local i = 1
while excess > 0 and i <= #all do
  local old = all[i]
  if old ~= cur then
    redis.call('DEL', ARGV[7] .. old)
    redis.call('HDEL', KEYS[4], old)
    redis.call('HDEL', KEYS[5], old)
    redis.call('HDEL', KEYS[6], old)
    redis.call('ZREM', KEYS[3], old)
    excess = excess - 1
  end
  i = i + 1
end
if ARGV[4] == '1' then redis.call('PUBLISH', ARGV[8], v .. ' ' .. ARGV[1]) end
return v
`;

// Single Redis only (keys of two layouts, blob keys built here). KEYS: the
// old seq, current, versions, meta, promoted, rolledback, then the new ones
// in the same order. ARGV: old blob key prefix, new blob key prefix. Moves
// every old key to its new name when no new key exists; returns the keys moved.
const _UPGRADE = `
for k = 7, 12 do
  if redis.call('EXISTS', KEYS[k]) == 1 then return 0 end
end
local versions = {}
local function collect(reply)
  if type(reply) == 'table' and not reply.err then
    for _, v in ipairs(reply) do versions[v] = true end
  end
end
collect(redis.pcall('ZRANGE', KEYS[3], 0, -1))
collect(redis.pcall('HKEYS', KEYS[4]))
collect(redis.pcall('HKEYS', KEYS[5]))
local cur = redis.pcall('GET', KEYS[2])
if type(cur) == 'string' then versions[cur] = true end
local moved = 0
for v in pairs(versions) do
  if redis.call('EXISTS', ARGV[1] .. v) == 1 then
    redis.call('RENAME', ARGV[1] .. v, ARGV[2] .. v)
    moved = moved + 1
  end
end
for k = 1, 6 do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    redis.call('RENAME', KEYS[k], KEYS[k + 6])
    moved = moved + 1
  end
end
return moved
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
  /** The move from the untagged key layout; null where none can exist (a cluster). */
  #layout: KeyLayoutUpgrade | null;
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
    this.#layout = (options.upgradeOldKeys ?? !isClusterClient(client))
      ? new KeyLayoutUpgrade(client, {
        mayMove: options.moveOldKeys ?? true,
        probe: (container) => {
          const { old, now } = this.#layouts(container);
          return { old: [old.current, old.versions], now: [now.current, now.versions] };
        },
        move: (container) => {
          const { old, now } = this.#layouts(container);
          const kinds = ["seq", "current", "versions", "meta", "promoted", "rolledback"] as const;
          return this.#client.eval(
            _UPGRADE,
            12,
            ...kinds.map((k) => old[k]),
            ...kinds.map((k) => now[k]),
            old.blob,
            now.blob,
          );
        },
      })
      : null;
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
    const { old, now } = this.#layouts(container);
    return this.#layout?.isOld(container) ? old : now;
  }

  /** The container's keys in the layout before hash tags and in today's. */
  #layouts(container: string): { old: _Keys; now: _Keys } {
    const b64 = Buffer.from(checkContainerName(container)).toString("base64url");
    return { old: _keysAt(`${this.#prefix}c:${b64}:`), now: _keysAt(`${this.#prefix}c:{${b64}}:`) };
  }

  /** Settles the container's key layout (see `KeyLayoutUpgrade`). */
  async #ready(container: string): Promise<void> {
    await this.#layout?.ready(container);
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
    checkContainerName(container);
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
    await this.#ready(container);
    // After #ready: it decides which layout the container is read from.
    const k = this.#keys(container);
    // Listed before the model can be current; idempotent, and a set of its
    // own slot, so outside the container's script.
    await this.#client.sadd(`${this.#prefix}containers`, container);
    const now = new Date().toISOString();
    const version = Number(
      await this.#client.eval(
        _PUT,
        6,
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
    checkContainerName(container);
    await this.#ready(container);
    const key = this.#keys(container).current;
    let v: string | null;
    try {
      v = await this.#client.get(key);
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
    checkContainerName(container);
    await this.#ready(container);
    const legacy = this.#layout?.isOld(container) ?? false;
    const got = await this.#readAt(container, version, withBlob);
    // Read the old way and found nothing (or half): a writer may have moved
    // the keys in between; look again, and read the new keys if so.
    if (legacy && (got === null || (withBlob && got.blob === null))) {
      await this.#ready(container);
      if (!this.#layout?.isOld(container)) {
        return _found(container, version, await this.#readAt(container, version, withBlob));
      }
    }
    return _found(container, version, got);
  }

  /** One read of a version's keys; null when it has no metadata. */
  async #readAt(
    container: string,
    version: number,
    withBlob: boolean,
  ): Promise<{ meta: ModelMeta; blob: Uint8Array | null } | null> {
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
    if (json === null) return null;
    const meta = _toMeta(container, version, json, promotedAt, rolledBackAt, current);
    return { meta, blob: blob ? new Uint8Array(blob) : null };
  }

  /** {@inheritDoc ModelRegistry.list} */
  async list(container?: string): Promise<ModelMeta[]> {
    const names = container === undefined ? await this.containers() : [container];
    // One pipeline per container: its keys share a slot, other containers'
    // may sit on other nodes of a cluster.
    const lists = await Promise.all(names.map((name) => this.#listOne(name)));
    return lists.flat();
  }

  async #listOne(name: string): Promise<ModelMeta[]> {
    checkContainerName(name);
    await this.#ready(name);
    const k = this.#keys(name);
    const replies = await this.#client.pipeline()
      .hgetall(k.meta).hgetall(k.promoted).hgetall(k.rolledback).get(k.current)
      .exec();
    if (replies === null) throw new Error("Redis aborted the listing of models");
    for (const [err] of replies) if (err && !_wrongType(err)) throw err;
    // A broken entry (a key of the wrong type, metadata that is not JSON)
    // leaves out what it spoils, never the other containers.
    const [metas, promoted, rolledback, current] = replies
      .map(([err, value]) => (err ? null : value)) as [
        Record<string, string> | null,
        Record<string, string> | null,
        Record<string, string> | null,
        string | null,
      ];
    if (metas === null) return [];
    const versions = Object.keys(metas).map(Number).filter((v) => _version(String(v)) !== null)
      .sort((a, b) => b - a);
    const out: ModelMeta[] = [];
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
    return out;
  }

  /** {@inheritDoc ModelRegistry.containers} */
  async containers(): Promise<string[]> {
    const names = await this.#client.smembers(`${this.#prefix}containers`);
    return names.sort();
  }

  /** {@inheritDoc ModelRegistry.promote} */
  async promote(container: string, version: number): Promise<ModelMeta> {
    checkContainerName(container);
    _checkVersion(version);
    await this.#ready(container);
    const k = this.#keys(container);
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
    checkContainerName(container);
    await this.#ready(container);
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

function _keysAt(base: string): _Keys {
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

function _found<T>(container: string, version: number, got: T | null): T {
  if (got === null) throw new ModelNotFoundError(container, version);
  return got;
}
