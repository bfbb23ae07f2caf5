import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";
import { trainDetector } from "../../../shared/detector/detector.ts";
import { entryToFields, type LogEntry, packEntries } from "../../../shared/ports/log_entry.ts";
import { createTailwiseMetrics } from "../../../shared/runtime/metrics.ts";
import { ModelCache } from "../../../shared/runtime/model_cache.ts";
import { RedisFeedbackStore } from "../../../shared/adapters/redis/redis_feedback_store.ts";
import {
  createRedisClient,
  RedisLogStream,
} from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { StreamConsumer } from "../../../shared/runtime/stream_consumer.ts";
import { createScoreHandler } from "../../../functions/score/score.ts";
import { suiteEnv, waitFor } from "../../harness/services.ts";

function _entry(container: string, line: string, i: number): LogEntry {
  return {
    containerId: `id-${container}`,
    containerName: container,
    image: "app:1",
    stream: "stdout",
    ts: new Date(Date.now()).toISOString().replace("Z", `${String(i % 1e6).padStart(6, "0")}Z`),
    seq: 0,
    line,
  };
}

function _normal(i: number): string {
  const paths = ["/api/users", "/api/orders", "/health", "/static/app.js"];
  return `GET ${paths[i % 4]}/${i % 97} 200 ${(i * 7) % 500}ms user=${i % 31} region=eu-west-1`;
}

function _setup() {
  const env = suiteEnv();
  const id = crypto.randomUUID().slice(0, 8);
  const stream = RedisLogStream.connect(env.redisUrl);
  const client = createRedisClient(env.redisUrl);
  const registry = new RedisModelRegistry(client, { prefix: `test:${id}:models:` });
  const feedback = new RedisFeedbackStore(client, { prefix: `test:${id}:feedback` });
  const names = {
    logs: `test:${id}:logs`,
    anomalies: `test:${id}:anomalies`,
    dead: `test:${id}:dead`,
  };
  return {
    id,
    stream,
    client,
    registry,
    feedback,
    names,
    async [Symbol.asyncDispose]() {
      await registry[Symbol.asyncDispose]();
      await stream[Symbol.asyncDispose]();
      client.disconnect();
    },
  };
}

Deno.test("createScoreHandler() raises severity lines while learning, once per entry", async (t) => {
  await using s = _setup();
  const models = new ModelCache(s.registry);
  const handler = createScoreHandler(
    { models, stream: s.stream, feedback: s.feedback },
    { anomalyStream: s.names.anomalies },
  );
  const lines = ["starting worker 1", "ERROR connection refused to db:5432", "ready", "all fine"];
  const ids = await s.stream.append(
    s.names.logs,
    lines.map((l, i) => entryToFields(_entry("learner", l, i))),
  );
  const batch = (await s.stream.range(s.names.logs)).map((m) => ({ ...m, deliveries: 1 }));
  await t.step("every entry done, one anomaly for the error line", async () => {
    const outcome = await handler(batch, { signal: new AbortController().signal });
    assert.deepEqual([...outcome.done ?? []], ids);
    const anomalies = await s.stream.range(s.names.anomalies);
    assert.equal(anomalies.length, 1);
    const a = fieldsToAnomaly(anomalies[0]!.id, anomalies[0]!.fields);
    assert.equal(a.entryId, ids[1]);
    assert.equal(a.container, "learner");
    assert.deepEqual(a.reasons, ["severity"]);
    assert.equal(a.modelVersion, 0);
    assert.equal(a.line, lines[1]);
  });
  await t.step("a replay of the batch adds no duplicate anomaly", async () => {
    await handler(batch, { signal: new AbortController().signal });
    assert.equal(await s.stream.length(s.names.anomalies), 1);
  });
  await t.step("coldStart none raises nothing", async () => {
    const quiet = createScoreHandler(
      { models, stream: s.stream, feedback: s.feedback },
      { anomalyStream: `${s.names.anomalies}:quiet`, coldStart: "none" },
    );
    await quiet(batch, { signal: new AbortController().signal });
    assert.equal(await s.stream.length(`${s.names.anomalies}:quiet`), 0);
  });
  await t.step("a packed message: its anomalies keyed <message id>#<line>, once", async () => {
    const packedStream = `${s.names.logs}:packed`;
    const anomalies = `${s.names.anomalies}:packed`;
    const packed = createScoreHandler(
      { models, stream: s.stream, feedback: s.feedback },
      { anomalyStream: anomalies },
    );
    const [id] = await s.stream.append(
      packedStream,
      packEntries(lines.map((l, i) => _entry("learner", l, i))),
    );
    const msgs = (await s.stream.range(packedStream)).map((m) => ({ ...m, deliveries: 1 }));
    assert.equal(msgs.length, 1);
    for (let k = 0; k < 2; k++) {
      const outcome = await packed(msgs, { signal: new AbortController().signal });
      assert.deepEqual([...outcome.done ?? []], [id]);
    }
    const found = await s.stream.range(anomalies);
    assert.equal(found.length, 1, "one anomaly after a replay");
    assert.equal(found[0]!.fields.entryId, `${id}#1`);
    assert.equal(found[0]!.fields.line, lines[1]);
  });
  await t.step("an undecodable entry is rejected, the rest done", async () => {
    const bad = { id: "1-1", fields: { c: "x" }, deliveries: 1 };
    const outcome = await handler([bad, batch[0]!], { signal: new AbortController().signal });
    assert.ok(outcome.rejected?.has("1-1"));
    assert.deepEqual([...outcome.done ?? []], [batch[0]!.id]);
  });
});

Deno.test("createScoreHandler() takes a new model version on the next batch, no restart", async (t) => {
  await using s = _setup();
  const metrics = createTailwiseMetrics();
  const models = new ModelCache(s.registry);
  const handler = createScoreHandler(
    { models, stream: s.stream, feedback: s.feedback, metrics },
    { anomalyStream: s.names.anomalies },
  );
  const train = Array.from({ length: 3000 }, (_, i) => _normal(i));
  const v1 = await trainDetector(train, { seed: 1 });
  await s.registry.put("web", v1.toBytes(), { lines: 3000, threshold: v1.info.threshold });
  const weird = "FATAL kernel panic: segfault in module xyz at 0xdeadbeef, core dumped";
  const send = async (lines: string[]) => {
    const ids = await s.stream.append(
      s.names.logs,
      lines.map((l, i) => entryToFields(_entry("web", l, i))),
    );
    const batch = (await s.stream.range(s.names.logs, { start: ids[0] })).map((m) => ({
      ...m,
      deliveries: 1,
    }));
    await handler(batch, { signal: new AbortController().signal });
    return ids;
  };
  await t.step("v1 scores the first batch and flags the novel line", async () => {
    const ids = await send([_normal(5), weird, _normal(6)]);
    const anomalies = (await s.stream.range(s.names.anomalies)).map((m) =>
      fieldsToAnomaly(m.id, m.fields)
    );
    assert.equal(anomalies.length, 1);
    assert.equal(anomalies[0]!.entryId, ids[1]);
    assert.equal(anomalies[0]!.modelVersion, 1);
    assert.ok(anomalies[0]!.score > anomalies[0]!.threshold);
    assert.ok(anomalies[0]!.reasons.length > 0);
  });
  await t.step(
    "after a put of v2, the very next batch uses v2; the blob is fetched once",
    async () => {
      const v2 = await trainDetector([...train, weird], { seed: 2 });
      await s.registry.put("web", v2.toBytes(), { lines: 3001, threshold: v2.info.threshold });
      const loadsBefore = models.loads;
      await send([weird.replace("xyz", "abc")]);
      await send([_normal(7)]);
      assert.equal(models.loads - loadsBefore, 1);
      assert.equal((await models.get("web"))?.version, 2);
      assert.equal(models.loads - loadsBefore, 1);
      assert.ok(
        metrics.registry.render().includes('tailwise_lines_scored_total{container="web"} 5'),
      );
    },
  );
});

Deno.test("createScoreHandler() scores replicas under their service key, with the model their container had until the key has one", async (t) => {
  await using s = _setup();
  const models = new ModelCache(s.registry);
  const handler = createScoreHandler(
    { models, stream: s.stream, feedback: s.feedback },
    { anomalyStream: s.names.anomalies },
  );
  const train = Array.from({ length: 3000 }, (_, i) => _normal(i));
  const old = await trainDetector(train, { seed: 1 });
  // A model stored under a task's container name, before service keys.
  await s.registry.put("shop_web.1.aaa", old.toBytes(), {
    lines: 3000,
    threshold: old.info.threshold,
  });
  const weird = "FATAL kernel panic: segfault in module xyz at 0xdeadbeef, core dumped";
  const send = async (entries: LogEntry[]) => {
    const ids = await s.stream.append(s.names.logs, entries.map(entryToFields));
    const batch = (await s.stream.range(s.names.logs, { start: ids[0] })).map((m) => ({
      ...m,
      deliveries: 1,
    }));
    await handler(batch, { signal: new AbortController().signal });
    return ids;
  };
  const replica = (name: string, line: string, i: number): LogEntry => ({
    ..._entry(name, line, i),
    key: "shop_web",
  });
  await t.step(
    "the key without a model keeps serving with the container's former model",
    async () => {
      const ids = await send([
        replica("shop_web.1.aaa", weird, 0),
        replica("shop_web.1.aaa", _normal(3), 1),
      ]);
      const anomalies = (await s.stream.range(s.names.anomalies)).map((m) =>
        fieldsToAnomaly(m.id, m.fields)
      );
      assert.equal(anomalies.length, 1);
      assert.equal(anomalies[0]!.entryId, ids[0]);
      assert.equal(anomalies[0]!.container, "shop_web");
      assert.equal(anomalies[0]!.containerName, "shop_web.1.aaa");
      assert.equal(anomalies[0]!.modelVersion, 1, "scored by the former model, not cold start");
    },
  );
  await t.step("once the key has a model, every replica and a replacing task use it", async () => {
    const v = await trainDetector([...train, weird], { seed: 2 });
    await s.registry.put("shop_web", v.toBytes(), { lines: 3001, threshold: v.info.threshold });
    const ids = await send([
      replica("shop_web.2.bbb", _normal(4), 0),
      replica("shop_web.1.ccc", weird.replace("xyz", "q"), 1),
    ]);
    const anomalies = (await s.stream.range(s.names.anomalies)).map((m) =>
      fieldsToAnomaly(m.id, m.fields)
    ).filter((a) => ids.includes(a.entryId));
    assert.deepEqual(anomalies.map((a) => [a.container, a.containerName, a.threshold]), [
      ["shop_web", "shop_web.1.ccc", v.info.threshold],
    ]);
    assert.equal((await models.get("shop_web"))?.version, 1);
  });
});

Deno.test("ModelCache serves the previous version when the current blob in Redis is corrupt", async () => {
  await using s = _setup();
  const lines = Array.from({ length: 1000 }, (_, i) => _normal(i));
  const good = await trainDetector(lines, { seed: 3 });
  await s.registry.put("db", good.toBytes(), { lines: 1000, threshold: good.info.threshold });
  const bad: { container: string; version: number; error: Error }[] = [];
  const models = new ModelCache(s.registry, {
    onBadVersion: (container, version, error) => bad.push({ container, version, error }),
  });
  assert.equal((await models.get("db"))?.version, 1);
  await s.registry.put("db", good.toBytes(), { lines: 1000, threshold: good.info.threshold });
  // Corrupt version 2's blob in Redis, as a disk or a bad write would.
  const keys = await s.client.keys(`test:${s.id}:models:*blob:2`);
  assert.equal(keys.length, 1);
  await s.client.set(keys[0]!, Buffer.from("not a model"));
  const served = await models.get("db");
  assert.equal(served?.version, 1);
  assert.equal(bad.length, 1);
  assert.equal(bad[0]!.version, 2);
  assert.match(bad[0]!.error.message, /db/);
  // Asked again, the bad version is not fetched again and v1 keeps serving.
  const loads = models.loads;
  assert.equal((await models.get("db"))?.version, 1);
  assert.equal(models.loads, loads);
  assert.equal(bad.length, 1);
  // A fresh cache (a restarted scorer) falls back to v1 as well.
  const fresh = new ModelCache(s.registry);
  assert.equal((await fresh.get("db"))?.version, 1);
});

Deno.test("score via the stream consumer: killed before its ack, rescored with no duplicate anomaly", async () => {
  await using s = _setup();
  const lines = Array.from(
    { length: 600 },
    (_, i) => (i % 50 === 7 ? `ERROR request ${i} failed: timeout` : _normal(i)),
  );
  // Single-line messages (as before packing) and packed ones, in one stream.
  await s.stream.append(
    s.names.logs,
    lines.slice(0, 300).map((l, i) => entryToFields(_entry("api", l, i))),
  );
  await s.stream.append(
    s.names.logs,
    packEntries(lines.slice(300).map((l, i) => _entry("api", l, 300 + i))),
  );
  await s.stream.createGroup(s.names.logs, "score");
  const models = new ModelCache(s.registry);
  const deps = { models, stream: s.stream, feedback: s.feedback };
  // A scorer that appends its anomalies and dies before acking anything.
  const dying = createScoreHandler(deps, { anomalyStream: s.names.anomalies });
  const first = await s.stream.readNew(s.names.logs, "score", "scorer-a", { count: 300 });
  await dying(first, { signal: new AbortController().signal });
  assert.equal((await s.stream.groupInfo(s.names.logs, "score")).pending, 300);
  // Another replica claims the dead one's entries and finishes everything.
  const consumer = new StreamConsumer(
    s.stream,
    createScoreHandler(deps, { anomalyStream: s.names.anomalies }),
    {
      stream: s.names.logs,
      group: "score",
      consumer: "scorer-b",
      deadLetterStream: s.names.dead,
      claimIdleMs: 1,
      claimEveryMs: 10,
      blockMs: 50,
      batch: 100,
    },
  );
  const stop = new AbortController();
  const run = consumer.run(stop.signal);
  await waitFor(async () => {
    const info = await s.stream.groupInfo(s.names.logs, "score");
    return info.pending === 0 && info.lag === 0;
  }, { timeoutMs: 20_000, what: "every entry scored and acked" });
  stop.abort();
  await run;
  const anomalies = (await s.stream.range(s.names.anomalies)).map((m) => m.fields.entryId);
  assert.equal(anomalies.length, lines.filter((l) => l.startsWith("ERROR")).length);
  assert.equal(new Set(anomalies).size, anomalies.length);
});
