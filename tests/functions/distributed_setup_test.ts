import assert from "node:assert/strict";
import { openLogStore } from "../../shared/adapters/open_adapters.ts";
import { RedisModelRegistry } from "../../shared/adapters/redis/redis_model_registry.ts";
import type { LogEntry } from "../../shared/ports/log_entry.ts";
import { loadConfig } from "../../shared/runtime/config.ts";
import { freePort, startRedis, suiteEnv, waitFor } from "../harness/services.ts";
import { dropDatabase } from "../shared/adapters/influx/influx_helpers.ts";
import { TaskProcess } from "../harness/task.ts";

const TOKEN = "distributed-setup-token-0123456789";

/**
 * Issue 16 item 11, with the tasks' own permissions: the api without
 * INFLUX_URL says so in /health, and the distributed train trains a
 * service's first model as soon as it has TRAIN_MIN_LINES lines.
 */
Deno.test("distributed mode: api /health reports a missing INFLUX_URL; train trains a first model within seconds", async (t) => {
  const env = suiteEnv();
  await using redis = await startRedis();
  const database = `tw_first_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await t.step("api /health: 503 and the missing store named", async () => {
      const dir = await Deno.makeTempDir({ prefix: "tailwise-dist-" });
      const port = freePort();
      await using api = await TaskProcess.start("api", {
        env: {
          REDIS_URL: redis.url,
          API_TOKEN: TOKEN,
          API_PORT: String(port),
          TAILWISE_DATA_DIR: dir,
        },
      });
      try {
        let body:
          | { status: string; checks: Record<string, { ok: boolean; detail?: string }> }
          | null = null;
        await waitFor(async () => {
          const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
          if (r === null) return false;
          assert.equal(r.status, 503);
          body = await r.json();
          return true;
        }, { timeoutMs: 30_000, what: "the api" });
        assert.equal(body!.status, "failing");
        assert.equal(body!.checks.logStore!.ok, false);
        assert.match(body!.checks.logStore!.detail!, /INFLUX_URL is not set/);
        assert.equal(body!.checks.stream!.ok, true);
      } finally {
        await api.stop();
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("train: the first model without waiting for TRAIN_SCHEDULE", async () => {
      const store = await openLogStore(
        loadConfig({ INFLUX_URL: env.influxUrl, INFLUX_DATABASE: database }, { hostname: "t" }),
      );
      await store.prepare();
      const start = Date.now() - 600_000;
      const entries: LogEntry[] = Array.from({ length: 600 }, (_, i) => ({
        containerId: "c-first",
        containerName: "first",
        image: "app:1",
        stream: "stdout",
        ts: new Date(start + i * 500).toISOString(),
        seq: 0,
        line: `GET /items/${i % 40} 200 ${i % 90}ms`,
      }));
      await store.write(entries);
      await store[Symbol.asyncDispose]();
      const started = Date.now();
      await using train = await TaskProcess.start("train", {
        env: {
          REDIS_URL: redis.url,
          INFLUX_URL: env.influxUrl,
          INFLUX_DATABASE: database,
          TRAIN_MIN_LINES: "500",
          TRAIN_SCHEDULE: "0 0 1 1 *",
        },
      });
      await using registry = RedisModelRegistry.connect(redis.url);
      try {
        await waitFor(async () => (await registry.currentVersion("first")) !== null, {
          timeoutMs: 40_000,
          what: "the first model",
        });
        assert.ok(Date.now() - started < 40_000);
      } finally {
        await train.stop();
      }
    });
  } finally {
    await dropDatabase(env.influxUrl, database).catch(() => {});
  }
});
