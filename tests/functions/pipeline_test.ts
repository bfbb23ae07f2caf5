import assert from "node:assert/strict";
import { fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { dockerCli, suiteEnv, waitFor } from "../harness/services.ts";
import { runTask, TaskProcess } from "../harness/task.ts";
import { dropDatabase } from "../shared/adapters/influx/influx_helpers.ts";

/**
 * The distributed mode end to end: collect, ingest and score as separate
 * processes on the suite's real Docker engine, Redis and InfluxDB; train run
 * on demand; a container whose logs go through all of them.
 */
Deno.test("collect → ingest → train → score: a real container's anomaly, scored by its model", async (t) => {
  const env = suiteEnv();
  const id = crypto.randomUUID().slice(0, 8);
  const database = `tw_e2e_${id}`;
  const base = {
    REDIS_URL: env.redisUrl,
    INFLUX_URL: env.influxUrl,
    INFLUX_DATABASE: database,
    DOCKER_HOST: `unix://${env.dockerSocket}`,
    LOG_STREAM: `e2e:${id}:logs`,
    ANOMALY_STREAM: `e2e:${id}:anomalies`,
    DEAD_LETTER_STREAM: `e2e:${id}:dead`,
    TRAIN_MIN_LINES: "300",
    CONSUMER_BLOCK_MS: "200",
    LOG_LEVEL: "warn",
  };
  const options = (fn: string, args: string[] = []) => ({
    env: { ...base, TAILWISE_INSTANCE: `${fn}-${id}` },
    args,
  });
  const procs = await Promise.all(
    ["collect", "ingest", "score"].map((fn) => TaskProcess.start(fn, options(fn))),
  );
  const container = `e2e-${id}`;
  const docker = (args: string[]) => dockerCli(`unix://${env.dockerSocket}`, args);
  await using stream = RedisLogStream.connect(env.redisUrl);
  const weird = "checksum mismatch on segment 42: replica diverged from leader";
  try {
    await docker([
      "run",
      "-d",
      "--name",
      container,
      env.dockerImage,
      "sh",
      "-c",
      'i=0; while [ $i -lt 600 ]; do echo "GET /api/items/$((i % 40)) 200 $((i % 90))ms user=$((i % 7))"; ' +
      "i=$((i+1)); done; " +
      `while true; do if [ -f /tmp/go ]; then echo "${weird}"; busybox rm /tmp/go; fi; sleep 1; done`,
    ]);
    await t.step("collect and ingest bring 600 lines into InfluxDB", async () => {
      await waitFor(async () => {
        const res = await fetch(
          `${env.influxUrl}/query?db=${database}&q=${
            encodeURIComponent(`SELECT count("cid") FROM "logs" WHERE "container" = '${container}'`)
          }`,
        );
        const body = await res.json();
        return body.results?.[0]?.series?.[0]?.values?.[0]?.[1] === 600;
      }, { timeoutMs: 60_000, intervalMs: 250, what: "600 rows in InfluxDB" });
    });
    await t.step("train stores version 1 from that history", async () => {
      const out = await runTask("train", options("train", ["--container", container]));
      assert.equal(out.code, 0, out.stderr);
      const result = JSON.parse(out.stdout.trim());
      assert.equal(result.status, "promoted");
      assert.equal(result.version, 1);
    });
    await t.step("the running scorer takes v1 and flags the new line, within seconds", async () => {
      await docker(["exec", container, "busybox", "touch", "/tmp/go"]);
      let found: ReturnType<typeof fieldsToAnomaly> | undefined;
      await waitFor(async () => {
        const all = await stream.range(base.ANOMALY_STREAM);
        found = all.map((m) => fieldsToAnomaly(m.id, m.fields)).find((a) => a.line === weird);
        return found !== undefined;
      }, { timeoutMs: 30_000, intervalMs: 100, what: "the anomaly in the anomalies stream" });
      assert.equal(found!.container, container);
      assert.equal(found!.modelVersion, 1);
      assert.ok(found!.reasons.includes("new_template"));
      assert.ok(found!.score > found!.threshold);
    });
    await t.step("no line left unscored", async () => {
      await waitFor(async () => {
        const info = await stream.groupInfo(base.LOG_STREAM, "score");
        return info.pending === 0 && info.lag === 0;
      }, { timeoutMs: 20_000, what: "score group caught up" });
      const normalAnomalies = (await stream.range(base.ANOMALY_STREAM))
        .map((m) => fieldsToAnomaly(m.id, m.fields))
        .filter((a) => a.modelVersion === 1 && a.line !== weird);
      assert.ok(normalAnomalies.length <= 3, `${normalAnomalies.length} normal lines flagged`);
    });
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await docker(["rm", "-f", container]).catch(() => {});
    await dropDatabase(env.influxUrl, database);
  }
});
