import assert from "node:assert/strict";
import { openLogStore } from "../../shared/adapters/open_adapters.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../shared/adapters/redis/redis_model_registry.ts";
import { fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import { entryToFields, type LogEntry } from "../../shared/ports/log_entry.ts";
import { logShards } from "../../shared/ports/log_shards.ts";
import { loadConfig } from "../../shared/runtime/config.ts";
import { startRedisCluster, suiteEnv, waitFor } from "../harness/services.ts";
import { dropDatabase } from "../shared/adapters/influx/influx_helpers.ts";
import { TaskProcess } from "../harness/task.ts";

function _entry(i: number, line: string, ms: number): LogEntry {
  return {
    containerId: "c-first",
    containerName: "first",
    image: "app:1",
    stream: "stdout",
    ts: new Date(ms).toISOString(),
    seq: i,
    line,
  };
}

Deno.test("on a 3-master Redis Cluster, train (under its task flags) publishes a model that score loads and scores with", async () => {
  const env = suiteEnv();
  await using cluster = await startRedisCluster();
  const database = `tw_cluster_${crypto.randomUUID().slice(0, 8)}`;
  const store = await openLogStore(
    loadConfig({ INFLUX_URL: env.influxUrl, INFLUX_DATABASE: database }, { hostname: "t" }),
  );
  const procEnv = {
    REDIS_URL: cluster.url,
    REDIS_CLUSTER: "true",
    INFLUX_URL: env.influxUrl,
    INFLUX_DATABASE: database,
    TRAIN_MIN_LINES: "500",
    TRAIN_SCHEDULE: "0 0 1 1 *",
    CONSUMER_BLOCK_MS: "200ms",
  };
  await using registry = RedisModelRegistry.connect(cluster.url, { cluster: true });
  await using log = RedisLogStream.connect(cluster.url, { cluster: true, name: "test-writer" });
  try {
    await store.prepare();
    const start = Date.now() - 600_000;
    await store.write(
      Array.from(
        { length: 600 },
        (_, i) => _entry(i, `GET /items/${i % 40} 200 ${i % 90}ms`, start + i * 500),
      ),
    );
    await store[Symbol.asyncDispose]();
    await using train = await TaskProcess.start("train", { env: procEnv });
    await waitFor(async () => (await registry.currentVersion("first")) !== null, {
      timeoutMs: 60_000,
      what: `the first model\n${train.lines.join("\n")}`,
    });
    const model = await registry.get("first");
    assert.equal(model.meta.status, "current");
    assert.deepEqual(await registry.containers(), ["first"]);
    await train.stop();

    await using score = await TaskProcess.start("score", { env: procEnv });
    await waitFor(() => score.lines.some((l) => /"scoring"/.test(l)), {
      timeoutMs: 60_000,
      what: `score consuming\n${score.lines.join("\n")}`,
    });
    const [stream] = logShards("tailwise:logs", 1, true);
    await log.append(stream!, [
      entryToFields(_entry(1, "GET /items/3 200 12ms", Date.now())),
      entryToFields(
        _entry(2, "FATAL kernel panic: segfault in module xyz at 0xdeadbeef", Date.now()),
      ),
    ]);
    let anomalies: { version: number; line: string }[] = [];
    await waitFor(async () => {
      const raw = await log.range("tailwise:anomalies", { start: "-", end: "+", count: 100 });
      anomalies = raw.map((m) => fieldsToAnomaly(m.id, m.fields))
        .map((a) => ({ version: a.modelVersion, line: a.line }));
      return anomalies.length > 0;
    }, { timeoutMs: 60_000, what: `an anomaly\n${score.lines.join("\n")}` });
    assert.deepEqual(
      anomalies.map((a) => a.version),
      anomalies.map(() => model.meta.version),
      "scored with the model train published",
    );
    assert.ok(anomalies.some((a) => a.line.startsWith("FATAL")));
  } finally {
    await dropDatabase(env.influxUrl, database).catch(() => {});
  }
});
