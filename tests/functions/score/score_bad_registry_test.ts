import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { trainDetector } from "../../../shared/detector/detector.ts";
import { entryToFields, type LogEntry } from "../../../shared/ports/log_entry.ts";
import { createRedisClient } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { freePort, startRedis, waitFor, waitForHttp } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";

const TOKEN = "bad-registry-token-0123456789";

function _line(i: number): string {
  const paths = ["/api/users", "/api/orders", "/health", "/static/app.js"];
  return `GET ${paths[i % 4]}/${i % 97} 200 ${(i * 7) % 500}ms user=${i % 31}`;
}

function _key(container: string): string {
  return `tailwise:models:c:{${Buffer.from(container).toString("base64url")}}:`;
}

/**
 * Issue 16 item 4: a broken registry entry (a current pointer that is not a
 * number, a blob of the wrong Redis type, metadata that is not JSON) affects
 * only its own container, in the score and api processes run with their
 * tasks' permissions.
 */
Deno.test("deno task score / api: a broken model entry affects only its own container", async (t) => {
  await using redis = await startRedis();
  const client = createRedisClient(redis.url);
  const registry = new RedisModelRegistry(createRedisClient(redis.url), { ownsClient: true });
  const containers = ["good", "bad-ptr", "bad-type", "bad-meta"];
  const detector = await trainDetector(Array.from({ length: 2000 }, (_, i) => _line(i)));
  for (const c of containers) {
    for (let v = 0; v < 2; v++) {
      await registry.put(c, detector.toBytes(), {
        lines: 2000,
        threshold: detector.info.threshold,
      });
    }
  }
  await client.set(`${_key("bad-ptr")}current`, "abc");
  await client.del(`${_key("bad-type")}blob:2`);
  await client.hset(`${_key("bad-type")}blob:2`, "not", "a string");
  await client.hset(`${_key("bad-meta")}meta`, "2", "{not json");

  let n = 0;
  const append = async () => {
    const start = Date.now();
    for (const c of containers) {
      const fields = Array.from({ length: 100 }, (_, i) => {
        const e: LogEntry = {
          containerId: `id-${c}`,
          containerName: c,
          image: "app:1",
          stream: "stdout",
          ts: new Date(start + i).toISOString(),
          seq: n++,
          line: _line(i),
        };
        return entryToFields(e);
      });
      for (const f of fields) await client.xadd("tailwise:logs", "*", ...Object.entries(f).flat());
    }
  };
  const settled = async () => {
    const groups = await client.xinfo("GROUPS", "tailwise:logs") as unknown[][];
    const score = groups.map((g) => Object.fromEntries(_pairs(g))).find((g) => g.name === "score");
    return score?.pending === 0 && score?.lag === 0;
  };
  const env = { REDIS_URL: redis.url, API_TOKEN: TOKEN };
  await using score = await TaskProcess.start("score", {
    env: { ...env, TAILWISE_INSTANCE: "score-bad", CONSUMER_BLOCK_MS: "200" },
  });
  const port = freePort();
  await using api = await TaskProcess.start("api", {
    env: { ...env, API_PORT: String(port), TAILWISE_INSTANCE: "api-bad" },
  });
  const base = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  try {
    await t.step(
      "score acks every container's lines and reports each broken entry once",
      async () => {
        await append();
        await waitFor(settled, { timeoutMs: 20_000, what: "every entry scored and acked" });
        await append();
        await waitFor(settled, { timeoutMs: 20_000, what: "the second round scored and acked" });
        const bad = score.records().filter((r) => r.level === "error" && r.container !== undefined);
        assert.deepEqual(bad.map((r) => r.container).sort(), ["bad-meta", "bad-ptr", "bad-type"]);
        assert.equal(await client.xlen("tailwise:dead"), 0);
      },
    );

    await t.step("api: GET /models answers 200 and POST /score serves a good version", async () => {
      await waitForHttp(`${base}/health`, { what: "the api to listen" });
      const res = await fetch(`${base}/models`, { headers: auth });
      assert.equal(res.status, 200);
      const body = await res.json() as { models: { container: string; versions: number[] }[] };
      const versions = Object.fromEntries(body.models.map((m) => [m.container, m.versions]));
      assert.deepEqual(versions.good, [2, 1]);
      assert.deepEqual(versions["bad-meta"], [1]);
      assert.deepEqual(versions["bad-ptr"], [2, 1]);
      const expect = { good: 2, "bad-ptr": 2, "bad-type": 1, "bad-meta": 1 };
      for (const [container, version] of Object.entries(expect)) {
        const r = await fetch(`${base}/score`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ container, lines: [_line(3)] }),
        });
        assert.equal(r.status, 200, `${container}: ${await r.clone().text()}`);
        const scored = await r.json() as { results: { modelVersion: number }[] };
        assert.equal(scored.results[0]!.modelVersion, version, container);
      }
    });
  } finally {
    await score.stop();
    await api.stop();
    await registry[Symbol.asyncDispose]();
    client.disconnect();
  }
});

function _pairs(flat: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}
