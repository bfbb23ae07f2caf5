import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { apiToken, serveApi } from "../../../functions/api/build.ts";
import { trainContainer, trainSettings } from "../../../shared/training/train_model.ts";
import { ConfigError, loadConfig } from "../../../shared/runtime/config.ts";
import { SqliteLogStore } from "../../../shared/adapters/sqlite/sqlite_log_store.ts";
import type { LogEntry } from "../../../shared/ports/log_entry.ts";
import { silentLogger } from "../../../shared/runtime/logger.ts";
import { ModelCache } from "../../../shared/runtime/model_cache.ts";
import { RedisFeedbackStore } from "../../../shared/adapters/redis/redis_feedback_store.ts";
import { RedisLock } from "../../../shared/adapters/redis/redis_lock.ts";
import { RedisLogStream } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { suiteEnv } from "../../harness/services.ts";

Deno.test("apiToken() uses API_TOKEN, else generates and keeps one in the data dir", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-api-" });
  try {
    await t.step("configured", async () => {
      const config = loadConfig({ API_TOKEN: "a".repeat(20) }, { hostname: "t" });
      assert.deepEqual(await apiToken(config), { token: "a".repeat(20), source: "API_TOKEN" });
    });
    await t.step("generated once, 0600, then reused", async () => {
      const config = loadConfig({ TAILWISE_DATA_DIR: dir }, { hostname: "t" });
      const first = await apiToken(config);
      assert.match(first.token, /^[0-9a-f]{64}$/);
      assert.equal(first.source, `${dir}/api_token`);
      assert.equal((await Deno.stat(`${dir}/api_token`)).mode! & 0o777, 0o600);
      assert.deepEqual(await apiToken(config), first);
    });
    await t.step("required with REDIS_URL", async () => {
      const config = loadConfig({ REDIS_URL: "redis://127.0.0.1:1" }, { hostname: "t" });
      await assert.rejects(apiToken(config), ConfigError);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serveApi() serves on a real port, trains on demand, and stops on its signal", async (t) => {
  const { redisUrl } = suiteEnv();
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-api-main-" });
  const ns = `test:apimain:${crypto.randomUUID()}`;
  const config = loadConfig({
    REDIS_URL: redisUrl,
    API_PORT: "0",
    API_TOKEN: "main-test-token-0123456789",
    LOG_STREAM: `${ns}:logs`,
    ANOMALY_STREAM: `${ns}:anomalies`,
    TRAIN_MIN_LINES: "100",
    TAILWISE_DATA_DIR: dataDir,
  }, { hostname: "t" });
  const stream = RedisLogStream.connect(redisUrl);
  const registry = new RedisModelRegistry(stream.client, { prefix: `${ns}:models:` });
  const feedback = new RedisFeedbackStore(stream.client, { prefix: `${ns}:feedback` });
  const logStore = await SqliteLogStore.open(dataDir);
  const start = Date.now() - 60_000;
  const entries: LogEntry[] = Array.from({ length: 300 }, (_, i) => ({
    containerId: "c0ffee",
    containerName: "web",
    image: "web:1",
    stream: "stdout",
    ts: new Date(start + i * 100).toISOString(),
    seq: 0,
    line: `GET /a 200 ${i % 30}ms`,
  }));
  await logStore.write(entries);
  const trainDeps = {
    logStore,
    registry,
    feedback,
    lock: new RedisLock(stream.client, { prefix: `${ns}:lock:` }),
    models: new ModelCache(registry),
  };
  const stop = new AbortController();
  const server = serveApi(config, {
    stream,
    registry,
    feedback,
    requestTraining: async (container) => ({
      ...await trainContainer(container, trainDeps, trainSettings(config)),
    }),
    token: config.api.token!,
    signal: stop.signal,
    log: silentLogger(),
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const auth = { authorization: `Bearer ${config.api.token}`, "content-type": "application/json" };
  const score = () =>
    fetch(`${base}/score`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ container: "web", lines: ["GET /a 200 3ms", "kernel panic"] }),
    });
  try {
    await t.step("GET /health reports stream, registry and feedback", async () => {
      const res = await fetch(`${base}/health`);
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys((await res.json()).checks).sort(), [
        "feedback",
        "registry",
        "stream",
      ]);
    });
    await t.step("POST /score is 404 before a model exists", async () => {
      const missing = await score();
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });
    await t.step("POST /train/:container trains from the history and promotes", async () => {
      const res = await fetch(`${base}/train/web`, { method: "POST", headers: auth });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.container, "web");
      assert.equal(body.status, "promoted");
      assert.equal(body.version, 1);
      assert.equal(await registry.currentVersion("web"), 1);
    });
    await t.step("POST /score then scores with the new model", async () => {
      const res = await score();
      assert.equal(res.status, 200);
      const { results } = await res.json();
      assert.equal(results.length, 2);
      assert.equal(results[0].anomaly, false);
      assert.equal(results[1].anomaly, true);
      assert.equal(results[1].modelVersion, 1);
    });
  } finally {
    stop.abort();
    await server.finished;
    await logStore[Symbol.asyncDispose]();
    const r = new Redis(redisUrl);
    const keys = await r.keys(`${ns}:*`);
    if (keys.length > 0) await r.del(...keys);
    await r.quit();
    await stream[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true });
  }
});
