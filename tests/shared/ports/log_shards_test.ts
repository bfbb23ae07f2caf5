import assert from "node:assert/strict";
import {
  configuredLogShards,
  hashTag,
  keyBeside,
  keyOfStream,
  logShards,
  shardOf,
} from "../../../shared/ports/log_shards.ts";

Deno.test("logShards() keeps today's name unsharded and hash-tags shards", () => {
  assert.deepEqual(logShards("tailwise:logs", 1, false), ["tailwise:logs"]);
  assert.deepEqual(logShards("tailwise:logs", 1, true), ["tailwise:logs:{0}"]);
  assert.deepEqual(logShards("l", 3, false), ["l:{0}", "l:{1}", "l:{2}"]);
  assert.throws(() => logShards("l", 0, false), /Cannot shard the log stream 0 ways/);
  assert.deepEqual(
    configuredLogShards({
      streams: { logs: "l", shards: 2 },
      redis: { url: null, cluster: true },
    }),
    ["l:{0}", "l:{1}"],
  );
});

Deno.test("shardOf() gives a key the same shard every time and spreads keys", () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `service-${i}`);
  const counts = [0, 0, 0, 0];
  for (const k of keys) {
    const s = shardOf(k, 4);
    assert.equal(shardOf(k, 4), s);
    counts[s]!++;
  }
  assert.ok(counts.every((n) => n > 200), `spread: ${counts}`);
  assert.equal(shardOf("anything", 1), 0);
});

Deno.test("keyBeside() and keyOfStream() name keys of the stream's slot", () => {
  assert.equal(hashTag("tailwise:logs:{3}"), "3");
  assert.equal(hashTag("a{}b"), null);
  assert.equal(keyBeside("tailwise:logs:{3}", "ckpt:", "abc"), "ckpt:{3}:abc");
  assert.equal(keyBeside("tailwise:logs", "ckpt:", "abc"), "ckpt:abc");
  assert.equal(keyOfStream("tailwise:anomalies", "seen:1-0#2"), "{tailwise:anomalies}:seen:1-0#2");
  assert.equal(keyOfStream("a:{x}", "seen:1"), "a:{x}:seen:1");
});
