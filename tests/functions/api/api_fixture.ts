/**
 * A tailwise api on the suite's real Redis, with its own key prefix and
 * stream names, for the api tests.
 *
 * @module
 */

import type { Hono } from "hono";
import { Redis } from "ioredis";
import { type ApiDeps, type ApiOptions, createApi } from "../../../functions/api/api.ts";
import { createTailwiseMetrics, type TailwiseMetrics } from "../../../shared/runtime/metrics.ts";
import { RedisFeedbackStore } from "../../../shared/adapters/redis/redis_feedback_store.ts";
import { RedisLogStream } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../shared/adapters/redis/redis_model_registry.ts";
import { RedisIncidentStore } from "../../../shared/adapters/redis/redis_incident_store.ts";
import { suiteEnv } from "../../harness/services.ts";

/** The token every fixture accepts. */
export const TOKEN = "test-token-0123456789abcdef";

/** A running fixture. */
export interface ApiFixture extends AsyncDisposable {
  app: Hono;
  stream: RedisLogStream;
  registry: RedisModelRegistry;
  feedback: RedisFeedbackStore;
  metrics: TailwiseMetrics;
  /** The anomalies stream of this fixture. */
  anomalies: string;
  /** The log stream of this fixture (its consumer groups are reported). */
  logs: string;
  /** Every error the api logged. */
  logged: unknown[];
  /** Sends a request with the token. */
  call(path: string, init?: RequestInit): Promise<Response>;
}

/**
 * Builds an api on the suite's Redis.
 *
 * @param deps dependencies to replace, or a function of the fixture's adapters giving them
 * @param options options to replace
 * @returns the fixture; dispose it to close connections and delete its keys
 */
export function apiFixture(
  deps:
    | Partial<ApiDeps>
    | ((adapters: Pick<ApiDeps, "registry" | "feedback" | "logStream">) => Partial<ApiDeps>) = {},
  options: Partial<ApiOptions> = {},
): ApiFixture {
  const { redisUrl } = suiteEnv();
  const ns = `test:api:${crypto.randomUUID()}`;
  const stream = RedisLogStream.connect(redisUrl, { name: "tailwise-api-test" });
  const registry = new RedisModelRegistry(stream.client, { prefix: `${ns}:models:` });
  const feedback = new RedisFeedbackStore(stream.client, {
    prefix: `${ns}:feedback`,
    suppressMs: 3_600_000,
  });
  const metrics = createTailwiseMetrics();
  const anomalies = `${ns}:anomalies`;
  const logs = `${ns}:logs`;
  const logged: unknown[] = [];
  const replaced = typeof deps === "function"
    ? deps({ registry, feedback, logStream: stream })
    : deps;
  const app = createApi({
    registry,
    logStream: stream,
    feedback,
    metrics,
    health: { redis: () => stream.ping(), models: () => registry.ping() },
    scoreLines: () => Promise.reject(new Error("scoreLines is not part of this test")),
    requestTraining: (container) => Promise.resolve({ status: "queued", container }),
    consumerGroups: [{ stream: logs, group: "score" }, { stream: logs, group: "ingest" }],
    incidents: new RedisIncidentStore(stream.client, { prefix: `${ns}:incidents` }),
    ...replaced,
  }, {
    token: TOKEN,
    anomaliesStream: anomalies,
    logError: (_m, e) => logged.push(e),
    ...options,
  });
  return {
    app,
    stream,
    registry,
    feedback,
    metrics,
    anomalies,
    logs,
    logged,
    call(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TOKEN}`);
      return Promise.resolve(app.request(path, { ...init, headers }));
    },
    async [Symbol.asyncDispose]() {
      const r = new Redis(redisUrl);
      try {
        const keys = await r.keys(`${ns}:*`);
        if (keys.length > 0) await r.del(...keys);
      } finally {
        await r.quit();
      }
      await stream[Symbol.asyncDispose]();
    },
  };
}

/**
 * A JSON POST with the token.
 *
 * @param body the JSON body
 * @returns request init
 */
export function jsonPost(body: unknown): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}
