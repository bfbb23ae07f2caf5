import assert from "node:assert/strict";
import { fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";
import { bundleModel, learnRates, trainDetector } from "../../../shared/detector/detector.ts";
import { ModelCache } from "../../../shared/runtime/model_cache.ts";
import {
  createRedisClient,
  RedisLogStream,
} from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { RedisRateStore } from "../../../shared/adapters/redis/redis_rate_store.ts";
import { RateTracker } from "../../../functions/score/rate_tracker.ts";
import { generateRateScenario } from "../../../bench/rate_eval.ts";
import { suiteEnv } from "../../harness/services.ts";

const W = 60_000;

Deno.test("RateTracker: two replicas count into Redis, one closes each window, silence is raised", async (t) => {
  const env = suiteEnv();
  const id = crypto.randomUUID().slice(0, 8);
  const stream = RedisLogStream.connect(env.redisUrl);
  const client = createRedisClient(env.redisUrl);
  const registry = new RedisModelRegistry(client, { prefix: `test:${id}:models:` });
  const anomalies = `test:${id}:anomalies`;
  try {
    const sc = generateRateScenario({
      seed: 3,
      peakPerMinute: 60,
      startHour: 12,
      incidents: false,
    });
    const detector = await trainDetector(sc.history.map((l) => l.line));
    const rates = learnRates(detector, sc.history);
    await registry.put("web", bundleModel(detector.toBytes(), rates.toBytes()), {
      lines: sc.history.length,
      threshold: detector.info.threshold,
    });
    let now = sc.test[0]!.time;
    const replica = () => {
      const models = new ModelCache(registry);
      const store = new RedisRateStore(client, { prefix: `test:${id}:rates` });
      const tracker = new RateTracker(
        { store, models, stream },
        { anomalyStream: anomalies, now: () => now, graceMs: 5000 },
      );
      return { models, tracker };
    };
    const a = replica(), b = replica();
    await a.models.get("web");
    await b.models.get("web");
    const start = Math.floor(sc.test[0]!.time / W) * W;
    const silentFrom = start + 20 * W;
    const lines = sc.test.filter((l) => l.time < silentFrom);

    await t.step("lines split over two replicas are each counted once", async () => {
      for (let i = 0; i < lines.length; i += 50) {
        const part = lines.slice(i, i + 50);
        const chunk = [{
          service: "web",
          times: part.map((l) => l.time),
          templateIds: part.map((l) => detector.score(l.line).templateId),
        }];
        const r = (i / 50) % 2 === 0 ? a : b;
        await r.tracker.countBatch(chunk, `${i}-0+50`);
        // The same batch again (a redelivery after a crash) adds nothing.
        if (i === 0) await b.tracker.countBatch(chunk, `${i}-0+50`);
      }
      const store = new RedisRateStore(client, { prefix: `test:${id}:rates` });
      const stored = await store.read("web", start, silentFrom - W, W);
      assert.equal(stored.reduce((s, w) => s + w.total, 0), lines.length);
    });

    await t.step("each window is closed by one replica; normal windows raise nothing", async () => {
      for (let w = start + W; w <= silentFrom; w += W) {
        now = w + 6000;
        const [ra, rb] = await Promise.all([a.tracker.closeDue(), b.tracker.closeDue()]);
        assert.deepEqual([...ra, ...rb], [], `window ${new Date(w - W).toISOString()}`);
      }
      assert.equal(a.tracker.closed + b.tracker.closed, 20);
    });

    await t.step("a silent window is raised within the window plus the grace", async () => {
      now = silentFrom + W + 6000;
      const [ra, rb] = await Promise.all([a.tracker.closeDue(), b.tracker.closeDue()]);
      const raised = [...ra, ...rb];
      assert.equal(raised.length, 1);
      const an = raised[0]!;
      assert.equal(an.kind, "rate");
      assert.deepEqual(an.reasons, ["silence"]);
      assert.equal(an.rate!.lines, 0);
      assert.ok(an.rate!.expected! > 10, `expected ${an.rate!.expected}`);
      const stored = await stream.range(anomalies, { count: 10 });
      assert.equal(stored.length, 1);
      const back = fieldsToAnomaly(stored[0]!.id, stored[0]!.fields);
      assert.equal(back.kind, "rate");
      assert.equal(back.rate!.reasons[0]!.code, "silence");
      assert.equal(back.rate!.reasons[0]!.observed, 0);
    });

    await t.step("a restarted replica judges from the stored counts alike", async () => {
      const c = replica();
      await c.models.get("web");
      const v = await c.tracker.judge("web", silentFrom);
      assert.equal(v?.anomaly, true);
      assert.equal(v?.reasons[0]?.code, "silence");
      const before = await c.tracker.judge("web", silentFrom - W);
      assert.equal(before?.anomaly, false);
    });
  } finally {
    const keys = await client.keys(`test:${id}:*`);
    if (keys.length > 0) await client.del(...keys);
    await registry[Symbol.asyncDispose]();
    await stream[Symbol.asyncDispose]();
    client.disconnect();
  }
});
