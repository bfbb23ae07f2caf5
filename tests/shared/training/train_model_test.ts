import assert from "node:assert/strict";
import { InfluxLogStore } from "../../../shared/adapters/influx/influx_log_store.ts";
import type { LogEntry } from "../../../shared/ports/log_entry.ts";
import { ModelCache } from "../../../shared/runtime/model_cache.ts";
import { RedisFeedbackStore } from "../../../shared/adapters/redis/redis_feedback_store.ts";
import { RedisLock } from "../../../shared/adapters/redis/redis_lock.ts";
import { createRedisClient } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { trainContainer, type TrainDeps, trainDue } from "../../../shared/training/train_model.ts";
import { suiteEnv } from "../../harness/services.ts";
import { dropDatabase, testDatabase } from "../../shared/adapters/influx/influx_helpers.ts";

const SETTINGS = {
  windowMs: 3_600_000,
  maxLines: 100_000,
  minLines: 200,
  shadowFactor: 3,
  alertRate: 0.005,
  seed: 7,
};

function _web(i: number): string {
  return `GET /api/items/${i % 113} 200 ${(i * 13) % 900}ms user=${i % 41}`;
}

function _batch(i: number): string {
  return `job ${i % 17} processed ${i * 3} records in ${(i * 7) % 300}ms queue=jobs-${i % 5}`;
}

function _entries(container: string, lines: string[], startMs: number): LogEntry[] {
  return lines.map((line, i) => ({
    containerId: `id-${container}`,
    containerName: container,
    image: "app:1",
    stream: "stdout",
    ts: new Date(startMs + i).toISOString(),
    seq: 0,
    line,
  }));
}

async function _setup() {
  const env = suiteEnv();
  const db = testDatabase();
  const id = crypto.randomUUID().slice(0, 8);
  const store = new InfluxLogStore({ url: env.influxUrl, database: db });
  await store.prepare();
  const client = createRedisClient(env.redisUrl);
  const registry = new RedisModelRegistry(client, { prefix: `test:${id}:models:` });
  const feedback = new RedisFeedbackStore(client, { prefix: `test:${id}:feedback` });
  const deps: TrainDeps = {
    logStore: store,
    registry,
    feedback,
    lock: new RedisLock(client, { prefix: `test:${id}:lock:` }),
    models: new ModelCache(registry),
  };
  return {
    deps,
    store,
    async [Symbol.asyncDispose]() {
      await store[Symbol.asyncDispose]();
      await registry[Symbol.asyncDispose]();
      client.disconnect();
      await dropDatabase(env.influxUrl, db);
    },
  };
}

Deno.test("trainContainer() learns from InfluxDB history into the registry", async (t) => {
  await using s = await _setup();
  const start = Date.now() - 600_000;
  await t.step("too few lines: learning, nothing stored", async () => {
    await s.store.write(_entries("web", Array.from({ length: 50 }, (_, i) => _web(i)), start));
    const r = await trainContainer("web", s.deps, SETTINGS);
    assert.equal(r.status, "learning");
    assert.equal(await s.deps.registry.currentVersion("web"), null);
  });
  await t.step("enough lines: version 1 promoted with its figures", async () => {
    await s.store.write(
      _entries("web", Array.from({ length: 2000 }, (_, i) => _web(i + 50)), start + 50),
    );
    const r = await trainContainer("web", s.deps, SETTINGS);
    assert.equal(r.status, "promoted");
    assert.equal(r.version, 1);
    const meta = await s.deps.registry.current("web");
    assert.equal(meta?.version, 1);
    assert.ok(meta!.lines >= 1800);
    assert.equal(typeof meta!.evaluation?.shadowAlertRate, "number");
  });
  await t.step("two trainers at once: one trains, the other is told it is busy", async () => {
    const [a, b] = await Promise.all([
      trainContainer("web", s.deps, SETTINGS),
      trainContainer("web", s.deps, SETTINGS),
    ]);
    assert.deepEqual([a.status, b.status].sort(), ["busy", "promoted"]);
  });
});

Deno.test("trainContainer() holds back a model whose shadow alert rate jumps", async () => {
  await using s = await _setup();
  const start = Date.now() - 600_000;
  // The current model knows the batch lines; then the history fills with web
  // lines and the newest tenth (the shadow set) is batch lines again: the new
  // model, trained on web lines, flags them; the current one does not.
  const batchLines = Array.from({ length: 2000 }, (_, i) => _batch(i));
  await s.store.write(_entries("jobs", batchLines, start));
  assert.equal((await trainContainer("jobs", s.deps, SETTINGS)).status, "promoted");
  const later = start + 100_000;
  await s.store.write(
    _entries("jobs", Array.from({ length: 3600 }, (_, i) => _web(i)), later),
  );
  await s.store.write(
    _entries("jobs", Array.from({ length: 400 }, (_, i) => _batch(i + 5000)), later + 10_000),
  );
  const r = await trainContainer("jobs", s.deps, { ...SETTINGS, maxLines: 4000 });
  assert.equal(r.status, "candidate");
  assert.ok(r.shadowAlertRate! > 3 * Math.max(r.currentAlertRate!, SETTINGS.alertRate));
  assert.equal(await s.deps.registry.currentVersion("jobs"), 1);
  const versions = await s.deps.registry.list("jobs");
  assert.equal(versions[0]?.status, "candidate");
  assert.match(versions[0]?.note ?? "", /held back/);
});

Deno.test("trainContainer() leaves out confirmed anomalies and learns lines marked normal", async () => {
  await using s = await _setup();
  const start = Date.now() - 600_000;
  const odd = "WARN cache rebuild took 12000ms after cold start";
  const bad = "ERROR payment gateway returned 502 for order 991";
  const lines = Array.from({ length: 1500 }, (_, i) => _web(i));
  lines.splice(700, 0, bad, bad, bad);
  await s.store.write(_entries("shop", lines, start));
  const at = Date.now();
  await s.deps.feedback.record({
    anomalyId: "1-0",
    container: "shop",
    templateId: "t-bad",
    line: bad,
    label: "anomaly",
    at,
  });
  await s.deps.feedback.record({
    anomalyId: "2-0",
    container: "shop",
    templateId: "t-odd",
    line: odd,
    label: "normal",
    at,
  });
  const r = await trainContainer("shop", s.deps, SETTINGS);
  assert.equal(r.status, "promoted");
  const model = await s.deps.models.get("shop");
  const [oddScore, badScore] = model!.detector.scoreBatch([odd, bad]);
  assert.equal(oddScore!.reasons.includes("new_template"), false);
  assert.equal(badScore!.reasons.includes("new_template"), true);
  const meta = await s.deps.registry.current("shop");
  assert.equal(meta?.evaluation?.excludedLines, 3);
  assert.equal(meta?.evaluation?.normalFeedbackLines, 1);
});

Deno.test("trainDue() trains containers with new data only", async () => {
  await using s = await _setup();
  const start = Date.now() - 600_000;
  await s.store.write(_entries("a", Array.from({ length: 600 }, (_, i) => _web(i)), start));
  await s.store.write(_entries("b", Array.from({ length: 20 }, (_, i) => _web(i)), start));
  const first = await trainDue(s.deps, SETTINGS);
  assert.deepEqual(first.map((r) => [r.container, r.status]), [["a", "promoted"]]);
  const second = await trainDue(s.deps, SETTINGS);
  assert.deepEqual(second, []);
  await s.store.write(
    _entries("a", Array.from({ length: 300 }, (_, i) => _web(i + 900)), Date.now()),
  );
  const third = await trainDue(s.deps, SETTINGS);
  assert.deepEqual(third.map((r) => [r.container, r.status, r.version]), [["a", "promoted", 2]]);
});

Deno.test("trainDue() trains a service key on its replicas' lines and on their history from before service keys", async () => {
  await using s = await _setup();
  const start = Date.now() - 30 * 60_000;
  // Before service keys: the task's lines under its own container name.
  const old = _entries("shop_web.1.aaa", Array.from({ length: 150 }, (_, i) => _web(i)), start);
  // After: both replicas' lines carry the key.
  const keyed = [
    ..._entries(
      "shop_web.1.aaa",
      Array.from({ length: 50 }, (_, i) => _web(i + 150)),
      start + 1000,
    ),
    ..._entries(
      "shop_web.2.bbb",
      Array.from({ length: 50 }, (_, i) => _web(i + 200)),
      start + 2000,
    ),
  ].map((e) => ({ ...e, key: "shop_web" }));
  await s.store.write([...old, ...keyed]);
  const results = await trainDue(s.deps, SETTINGS);
  const mine = results.find((r) => r.container === "shop_web");
  assert.ok(mine, JSON.stringify(results));
  assert.equal(mine.status, "promoted");
  // 250 lines (150 former + 100 keyed), less the shadow tenth: 225 learned.
  assert.equal(mine.lines, 225);
  assert.equal(results.find((r) => r.container === "shop_web.2.bbb"), undefined);
});
