import { Buffer } from "node:buffer";
import { createRedisClient } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../../shared/adapters/redis/redis_model_registry.ts";
import { suiteEnv } from "../../../harness/services.ts";
import { modelRegistryConformance } from "../../ports/model_registry_conformance.ts";

Deno.test("RedisModelRegistry passes the model registry conformance suite", async (t) => {
  const url = suiteEnv().redisUrl;
  await modelRegistryConformance(t, () => {
    const prefix = `test:models:${crypto.randomUUID()}:`;
    const raw = createRedisClient(url, { name: "tailwise-test-raw" });
    return Promise.resolve({
      open: ({ keepVersions }) =>
        Promise.resolve(RedisModelRegistry.connect(url, { prefix, keepVersions })),
      async corrupt(container: string, version: number) {
        const name = Buffer.from(new TextEncoder().encode(container)).toString("base64url");
        const key = `${prefix}c:${name}:blob:${version}`;
        const blob = await raw.getBuffer(key);
        if (!blob) throw new Error(`no blob at ${key}`);
        blob[0] = blob[0]! ^ 0xff;
        await raw.set(key, blob);
      },
      async [Symbol.asyncDispose]() {
        const keys = await raw.keys(`${prefix}*`);
        if (keys.length > 0) await raw.del(...keys);
        await raw.quit();
      },
    });
  });
});
