/**
 * A Swarm service's update end to end, on a private single-node swarm and
 * the suite's Redis and InfluxDB: collect, ingest, score and train run as
 * their tasks (their own permission flags); the api answers in-process.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createApi } from "../../functions/api/api.ts";
import type { DeployReport } from "../../functions/api/deploy_report.ts";
import type { Deploy } from "../../shared/ports/deploy.ts";
import { modelKey } from "../../shared/ports/log_entry.ts";
import { InfluxLogStore } from "../../shared/adapters/influx/influx_log_store.ts";
import { RedisFeedbackStore } from "../../shared/adapters/redis/redis_feedback_store.ts";
import { RedisLogStream } from "../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../shared/adapters/redis/redis_model_registry.ts";
import { createTailwiseMetrics } from "../../shared/runtime/metrics.ts";
import { startDocker, suiteEnv, swarmInitPorts, waitFor } from "../harness/services.ts";
import { gwbridgePresent, tearDownSwarm } from "../harness/swarm.ts";
import { TaskProcess } from "../harness/task.ts";
import { readAnomalies, readDeploys, redisReader, StreamReader } from "./collect/helpers.ts";

const TOKEN = "deploys-test-token-0123456789";

// v1 logs a legacy line and requests; v2 (another tag and PHASE=2) logs a
// new line instead of the legacy one, and the same requests.
const SCRIPT = 'i=0; while true; do i=$((i+1)); if [ "$PHASE" = 2 ]; ' +
  'then echo "cache warmed for shard $i in 3ms"; else echo "legacy handler served id=$i"; fi; ' +
  'echo "request ok id=$i status=200"; sleep 0.05; done';

Deno.test("a Swarm service updated keeps its model, gets a deploy report, and is retrained on its new version", async (t) => {
  const env = suiteEnv();
  const tag = crypto.randomUUID().slice(0, 8);
  const service = `shop${tag}_web`;
  const names = {
    logs: `test:logs:${tag}`,
    anomalies: `test:anomalies:${tag}`,
    deploys: `test:deploys:${tag}`,
  };
  const database = `t_${tag}`;
  const gwbridgeBefore = await gwbridgePresent();
  const engine = await startDocker({ network: true });
  let swarm = false;
  const tasks: TaskProcess[] = [];
  await using redis = redisReader(env.redisUrl);
  const stream = RedisLogStream.connect(env.redisUrl);
  const registry = new RedisModelRegistry(stream.client);
  const feedback = new RedisFeedbackStore(stream.client);
  const logStore = new InfluxLogStore({
    url: env.influxUrl,
    database,
    retentionPolicy: "tailwise",
    retentionMs: 0,
  });
  const common = {
    REDIS_URL: env.redisUrl,
    INFLUX_URL: env.influxUrl,
    INFLUX_DATABASE: database,
    LOG_STREAM: names.logs,
    ANOMALY_STREAM: names.anomalies,
    DEPLOY_STREAM: names.deploys,
    TRAIN_MIN_LINES: "150",
    LOG_LEVEL: "debug",
  };
  const start = async (task: string, args: string[] = []) => {
    const p = await TaskProcess.start(task, {
      env: { ...common, TAILWISE_INSTANCE: `${task}-${tag}`, DOCKER_HOST: engine.url },
      args,
    });
    tasks.push(p);
    return p;
  };
  const train = async (args: string[]) => {
    const p = await start("train", args);
    const status = await p.status;
    assert.equal(status.code, 0, p.lines.slice(-10).join("\n"));
    return p.stdout.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  };
  const reader = new StreamReader(redis, names.logs);
  const ofService = async () => (await reader.all()).filter((e) => modelKey(e) === service);
  const historyCount = async (from?: Date) => {
    let n = 0;
    for await (const _ of logStore.history(service, from ? { from } : {})) n++;
    return n;
  };
  try {
    await t.step("a single-node swarm, collect, ingest and score running", async () => {
      // Own ports: other engines on this machine may run a swarm too.
      await engine.docker(["swarm", "init", ...swarmInitPorts()]);
      swarm = true;
      for (const v of ["v1", "v2"]) {
        await engine.docker(["tag", engine.image, `tailwise-test/busybox:${v}`]);
      }
      await start("collect");
      await start("ingest");
      await start("score");
    });
    await t.step(
      "v1 of the service runs; its first model is trained under the service key",
      async () => {
        await engine.docker([
          "service",
          "create",
          "--detach",
          "--no-resolve-image",
          "--name",
          service,
          "--replicas",
          "2",
          "--env",
          "PHASE=1",
          "tailwise-test/busybox:v1",
          "sh",
          "-c",
          SCRIPT,
        ]);
        await waitFor(async () => (await historyCount()) >= 300, {
          timeoutMs: 60_000,
          what: "300 lines of v1 in InfluxDB",
        });
        const replicas = new Set((await ofService()).map((e) => e.containerName));
        assert.equal(replicas.size, 2, `two replicas behind one key: ${[...replicas]}`);
        const [result] = await train(["--container", service]);
        assert.equal(result.status, "promoted");
        assert.equal((await registry.current(service))?.version, 1);
      },
    );
    const before = new Set((await ofService()).map((e) => e.containerName));
    let deploy: Deploy;
    await t.step("docker service update: one deploy recorded, v1 -> v2", async () => {
      await engine.docker([
        "service",
        "update",
        "--detach",
        "--no-resolve-image",
        "--image",
        "tailwise-test/busybox:v2",
        "--env-add",
        "PHASE=2",
        service,
      ]);
      await waitFor(async () => (await readDeploys(redis, names.deploys)).length > 0, {
        timeoutMs: 60_000,
        what: "the deploy record",
      });
      const deploys = await readDeploys(redis, names.deploys);
      assert.equal(deploys.length, 1, JSON.stringify(deploys));
      deploy = deploys[0]!;
      assert.equal(deploy.container, service);
      assert.equal(deploy.image, "tailwise-test/busybox:v2");
      assert.equal(deploy.previousImage, "tailwise-test/busybox:v1");
    });
    await t.step(
      "the new tasks keep the service's model: scored with it, not learning",
      async () => {
        await waitFor(async () => {
          const list = await readAnomalies(redis, names.anomalies);
          return list.some((a) => a.line.startsWith("cache warmed"));
        }, { timeoutMs: 60_000, what: "an anomaly on v2's new line" });
        const fresh = (await ofService()).filter((e) => !before.has(e.containerName));
        assert.ok(fresh.length > 0, "lines of the new tasks");
        const a = (await readAnomalies(redis, names.anomalies)).find((a) =>
          a.line.startsWith("cache warmed")
        )!;
        assert.equal(a.container, service);
        assert.ok(!before.has(a.containerName), "raised on a new task");
        assert.equal(a.modelVersion, 1, "the service's model, not cold start");
        assert.equal(a.version, "tailwise-test/busybox:v2");
        assert.ok(a.reasons.includes("new_template"), a.reasons.join(","));
        // The update stopped the old tasks: no lifecycle anomaly.
        const lifecycle = (await readAnomalies(redis, names.anomalies)).filter((x) =>
          x.entryId.startsWith("lifecycle:")
        );
        assert.deepEqual(lifecycle, []);
      },
    );
    const app = createApi({
      registry,
      logStream: stream,
      feedback,
      metrics: createTailwiseMetrics(),
      health: {},
      scoreLines: () => Promise.reject(new Error("not used")),
      requestTraining: () => Promise.reject(new Error("not used")),
      consumerGroups: [],
      history: (key, o) => logStore.history(key, o),
    }, { token: TOKEN, anomaliesStream: names.anomalies, deploysStream: names.deploys });
    const call = async (path: string) => {
      const res = await app.request(path, { headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 200, path);
      return res;
    };
    await t.step("GET /deploys and GET /deploys/:id: the report", async () => {
      await waitFor(async () => (await historyCount(new Date(deploy.at))) >= 150, {
        timeoutMs: 60_000,
        what: "150 lines of v2 in InfluxDB",
      });
      const { deploys } = await (await call(`/deploys?container=${service}`)).json();
      assert.deepEqual(deploys.map((d: Deploy) => d.id), [deploy.id]);
      const report = await (await call(`/deploys/${deploy.id}`)).json() as DeployReport;
      assert.equal(report.complete, false);
      const fresh = report.newTemplates.find((x) => x.example.startsWith("cache warmed"));
      assert.ok(fresh, JSON.stringify({ ...report, anomalies: null, deploy }));
      assert.equal(fresh.version, "tailwise-test/busybox:v2");
      assert.ok(
        report.goneTemplates.some((x) => x.template.startsWith("legacy handler served")),
        JSON.stringify(report.goneTemplates),
      );
      assert.ok(report.anomalies.count >= 1);
      assert.ok((report.anomalies.byReason.new_template ?? 0) >= 1);
      assert.ok(!report.newTemplates.some((x) => x.template.startsWith("request ok")));
      const unauthorized = await app.request(`/deploys/${deploy.id}`);
      assert.equal(unauthorized.status, 401);
      await unauthorized.body?.cancel();
      const metrics = await (await call("/metrics")).text();
      assert.match(
        metrics,
        new RegExp(
          `tailwise_last_deploy_timestamp_seconds\\{container="${service}"\\} ${deploy.at / 1000}`,
        ),
      );
    });
    await t.step("train --once retrains the service on its new version", async () => {
      const results = await train(["--once"]);
      const mine = results.find((r) => r.container === service);
      assert.ok(mine, JSON.stringify(results));
      assert.match(mine.note, /^after the deploy of /);
      assert.equal(mine.status, "promoted", mine.note);
      assert.equal((await registry.current(service))?.version, 2);
      // Done once: nothing due after the deploy any more.
      const again = await train(["--once"]);
      assert.ok(!again.some((r) => r.container === service && /after the deploy/.test(r.note)));
    });
  } finally {
    await engine.docker(["service", "rm", service]).catch(() => "");
    for (const p of tasks) await p.stop();
    await tearDownSwarm(engine, { swarm, gwbridgeBefore });
    await fetch(`${env.influxUrl}/query`, {
      method: "POST",
      body: new URLSearchParams({ q: `DROP DATABASE "${database}"` }),
    }).then((r) => r.body?.cancel());
    await logStore[Symbol.asyncDispose]();
    await registry[Symbol.asyncDispose]();
    await stream[Symbol.asyncDispose]();
  }
});
