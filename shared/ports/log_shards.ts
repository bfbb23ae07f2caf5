/**
 * The log stream sharded over N streams, and key names that keep a shard's
 * keys together on Redis Cluster.
 *
 * With one shard and no hash tags the log stream is `LOG_STREAM` itself and
 * every key keeps its name from before sharding. Otherwise shard `i` is the
 * stream `<LOG_STREAM>:{<i>}`; the part in braces is a Redis Cluster hash
 * tag, so the stream and every key written in the same script as its
 * entries (collect's checkpoints and append sequence, see
 * {@linkcode keyBeside}) hash to one slot. A container (more exactly its
 * model key) always goes to the same shard: {@linkcode shardOf}.
 *
 * Adapter-neutral: the embedded log stream takes the same names.
 *
 * @example
 * ```ts
 * const streams = logShards("tailwise:logs", 4, true); // tailwise:logs:{0} ... :{3}
 * const stream = streams[shardOf("shop_web", streams.length)]!;
 * const checkpoint = keyBeside(stream, "tailwise:collect:ckpt:", containerId);
 * ```
 *
 * @module
 */

/**
 * The names of the log stream's shards.
 *
 * @param base `LOG_STREAM`
 * @param shards how many (`LOG_STREAM_SHARDS`)
 * @param hashTags whether keys need hash tags (Redis Cluster)
 * @returns one stream name per shard, shard 0 first
 * @throws {RangeError} when `shards` is not an integer from 1 to 1024
 */
export function logShards(base: string, shards: number, hashTags: boolean): string[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > 1024) {
    throw new RangeError(`Cannot shard the log stream ${shards} ways: expected 1 to 1024`);
  }
  if (shards === 1 && !hashTags) return [base];
  return Array.from({ length: shards }, (_, i) => `${base}:{${i}}`);
}

/**
 * The shard of a key (FNV-1a over its UTF-16 code units): the same key
 * always gives the same shard for a given count.
 *
 * @param key a model key (service or container)
 * @param shards the shard count
 * @returns the shard index, 0 to shards - 1
 */
export function shardOf(key: string, shards: number): number {
  if (shards <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/**
 * The hash tag of a key (what Redis Cluster hashes), or null when it has
 * none: the text between the first `{` and the next `}`, if not empty.
 *
 * @param key a key
 * @returns the tag without braces, or null
 */
export function hashTag(key: string): string | null {
  const open = key.indexOf("{");
  if (open < 0) return null;
  const close = key.indexOf("}", open + 1);
  if (close < 0 || close === open + 1) return null;
  return key.slice(open + 1, close);
}

/**
 * A key in the same Redis Cluster slot as `stream`: `<prefix>{<tag>}:<name>`
 * when the stream has a hash tag, else `<prefix><name>` (the name it had
 * before sharding). Use it for keys written in one script with the stream.
 *
 * @param stream the stream's name
 * @param prefix the key family, e.g. `tailwise:collect:ckpt:`
 * @param name the rest of the key
 * @returns the key
 */
export function keyBeside(stream: string, prefix: string, name: string): string {
  const tag = hashTag(stream);
  return tag === null ? prefix + name : `${prefix}{${tag}}:${name}`;
}

/**
 * A key in the same slot as `stream` whatever its name: the stream's own
 * name as the hash tag when it has none (`{tailwise:anomalies}:seen:<id>`
 * hashes like `tailwise:anomalies`), else `<stream>:<name>`.
 *
 * @param stream the stream's name
 * @param name the rest of the key
 * @returns the key
 */
export function keyOfStream(stream: string, name: string): string {
  return hashTag(stream) === null ? `{${stream}}:${name}` : `${stream}:${name}`;
}

/**
 * The shard streams a config names (`LOG_STREAM`, `LOG_STREAM_SHARDS`, and
 * hash tags with `REDIS_CLUSTER`).
 *
 * @param config the settings (only these fields are read)
 * @returns the stream names, shard 0 first
 */
export function configuredLogShards(config: {
  streams: { logs: string; shards: number };
  redis: { url: string | null; cluster: boolean };
}): string[] {
  return logShards(
    config.streams.logs,
    config.streams.shards,
    config.redis.url !== null && config.redis.cluster,
  );
}
