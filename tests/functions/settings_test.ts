import assert from "node:assert/strict";
import { hostname } from "node:os";
import { Redis } from "ioredis";
import { messagesForLines } from "../../shared/ports/log_entry.ts";
import { suiteEnv, waitFor } from "../harness/services.ts";
import { TaskProcess } from "../harness/task.ts";
import { dropDatabase, testDatabase } from "../shared/adapters/influx/influx_helpers.ts";

const FUNCTIONS = ["collect", "ingest", "score", "train", "api"] as const;

function _settings(p: TaskProcess): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const r of p.records()) {
    if (r.msg === "settings") out.set(String(r.function), r.settings as Record<string, unknown>);
  }
  return out;
}

Deno.test("every function setting reaches the function under `deno task start` as under its own task", async (t) => {
  const env = suiteEnv();
  const ns = `test:settings:${crypto.randomUUID()}`;
  const db = testDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-settings-" });
  const base: Record<string, string> = {
    REDIS_URL: env.redisUrl,
    INFLUX_URL: env.influxUrl,
    INFLUX_DATABASE: db,
    DOCKER_HOST: `unix://${env.dockerSocket}`,
    TAILWISE_DATA_DIR: dataDir,
    TAILWISE_INSTANCE: "settings-test",
    API_TOKEN: "settings-test-token-0123456789",
    API_PORT: "0",
    LOG_STREAM: `${ns}:logs`,
    ANOMALY_STREAM: `${ns}:anomalies`,
    DEAD_LETTER_STREAM: `${ns}:dead`,
    // Every value differs from its default, so a setting that does not
    // arrive shows as the default.
    STREAM_MAXLEN: "4321",
    COLLECT_MAX_LINE_BYTES: "4096",
    COLLECT_BATCH_LINES: "55",
    COLLECT_BUFFER_LINES: "555",
    COLLECT_FLUSH_MS: "33ms",
    COLLECT_APPENDS_IN_FLIGHT: "3",
    COLLECT_MULTILINE: "^\\d{4}-",
    COLLECT_MULTILINE_FLUSH_MS: "2s",
    COLLECT_MULTILINE_QUIET_MS: "75ms",
    COLLECT_MULTILINE_MAX_LINES: "50",
    COLLECT_MULTILINE_MAX_BYTES: "64KiB",
    CONSUMER_BATCH: "7700",
    CONSUMER_BLOCK_MS: "250ms",
    CONSUMER_CLAIM_IDLE_MS: "12s",
    CONSUMER_MAX_DELIVERIES: "4",
    INGEST_BATCH_LINES: "20000",
    INGEST_CONCURRENCY: "3",
    TRAIN_SCHEDULE: "7 * * * *",
    TRAIN_WINDOW: "2h",
    TRAIN_MAX_LINES: "9999",
    TRAIN_MIN_LINES: "321",
    TRAIN_SHADOW_FACTOR: "2.5",
    ALERT_RATE: "0.01",
    TRAIN_SEED: "9",
    COLD_START_ALERTS: "none",
    API_BODY_LIMIT: "2MiB",
    FEEDBACK_SUPPRESS: "2h",
    LOG_LEVEL: "info",
  };
  const seen = async (p: TaskProcess, names: readonly string[]) => {
    await waitFor(() => names.every((n) => _settings(p).has(n)), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `the settings of ${names.join(", ")}`,
    });
    return _settings(p);
  };
  try {
    let start!: Map<string, Record<string, unknown>>;
    await t.step("deno task start logs the settings of all five functions", async () => {
      await using p = await TaskProcess.start("start", { env: base });
      start = await seen(p, FUNCTIONS);
      assert.equal((await p.stop()).code, 0, p.lines.join("\n"));
    });
    await t.step("the values of the environment arrive, not the defaults", () => {
      const ingest = start.get("ingest")!;
      // Batches count stream messages, each packing up to MAX_PACKED_LINES lines.
      assert.equal(ingest.batch, messagesForLines(20_000));
      assert.notEqual(ingest.batch, messagesForLines(5000));
      assert.equal(ingest.concurrency, 3);
      assert.equal(ingest.group, "ingest");
      assert.equal(ingest.blockMs, 250);
      assert.equal(ingest.claimIdleMs, 12_000);
      assert.equal(ingest.maxDeliveries, 4);
      const score = start.get("score")!;
      assert.equal(score.batch, messagesForLines(7700));
      assert.notEqual(score.batch, messagesForLines(1000));
      assert.equal(score.group, "score");
      assert.equal(score.coldStart, "none");
      const collect = start.get("collect")!;
      assert.deepEqual(
        [collect.batchLines, collect.bufferLines, collect.flushMs, collect.appendsInFlight],
        [55, 555, 33, 3],
      );
      assert.deepEqual(
        [
          collect.multiline,
          collect.multilineFlushMs,
          collect.multilineQuietMs,
          collect.multilineMaxLines,
          collect.multilineMaxBytes,
        ],
        ["^\\d{4}-", 2000, 75, 50, 65536],
      );
      assert.equal(collect.maxLen, 4321);
      assert.equal(collect.maxLineBytes, 4096);
      assert.deepEqual(collect.sources, ["docker"]);
      const train = start.get("train")!;
      assert.equal(train.schedule, "7 * * * *");
      assert.deepEqual(
        [train.windowMs, train.maxLines, train.minLines, train.shadowFactor, train.alertRate],
        [7_200_000, 9999, 321, 2.5, 0.01],
      );
      assert.equal(train.seed, 9);
      assert.equal(train.firstModelsEveryMs, 5000);
      const api = start.get("api")!;
      assert.equal(api.bodyLimit, 2 * 1024 * 1024);
      assert.equal(api.suppressMs, 7_200_000);
      assert.deepEqual(api.reportedGroups, ["ingest", "score"]);
    });
    for (const name of FUNCTIONS) {
      await t.step(`deno task ${name} runs with the same settings`, async () => {
        await using p = await TaskProcess.start(name, { env: base });
        const own = (await seen(p, [name])).get(name)!;
        assert.equal((await p.stop()).code, 0, p.lines.join("\n"));
        const inStart = { ...start.get(name)! };
        if (name === "ingest" || name === "score") {
          // One process owns the embedded data dir: its consumer name stays
          // the same across restarts; a replica's is TAILWISE_INSTANCE.
          assert.equal(inStart.consumer, `${name}-${hostname()}`);
          assert.equal(own.consumer, "settings-test");
          delete inStart.consumer;
          delete own.consumer;
        }
        assert.deepEqual(own, inStart);
      });
    }
  } finally {
    const redis = new Redis(env.redisUrl);
    const keys = await redis.keys(`${ns}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await dropDatabase(env.influxUrl, db);
    await Deno.remove(dataDir, { recursive: true });
  }
});
