import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RedisRateStore } from "../../../../shared/adapters/redis/redis_rate_store.ts";
import { suiteEnv } from "../../../harness/services.ts";
import { rateStoreConformance } from "../../ports/rate_store_conformance.ts";

Deno.test("RedisRateStore passes the rate store conformance suite", async (t) => {
  const { redisUrl } = suiteEnv();
  const client = new Redis(redisUrl);
  const prefixes: string[] = [];
  try {
    await rateStoreConformance(t, () => {
      const prefix = `test:rates:${crypto.randomUUID()}`;
      prefixes.push(prefix);
      return Promise.resolve(new RedisRateStore(client, { prefix }));
    });
    await t.step("two replicas add to the same windows; counts outlive a replica", async () => {
      const prefix = `test:rates:${crypto.randomUUID()}`;
      prefixes.push(prefix);
      const other = new Redis(redisUrl);
      try {
        const a = new RedisRateStore(client, { prefix });
        const b = new RedisRateStore(other, { prefix });
        const T = Math.floor(Date.now() / 60_000) * 60_000;
        await a.add([{ service: "web", window: T, total: 2, templates: new Map([["t", 2]]) }]);
        await b.add([{ service: "web", window: T, total: 3, templates: new Map([["t", 3]]) }]);
        const fresh = new RedisRateStore(client, { prefix });
        assert.equal((await fresh.read("web", T, T, 60_000))[0]!.total, 5);
        const ttl = await client.pttl(`${prefix}:{web}:${T}`);
        assert.ok(ttl > 0, `counts expire (pttl ${ttl})`);
      } finally {
        await other.quit();
      }
    });
  } finally {
    for (const prefix of prefixes) {
      const keys = await client.keys(`${prefix}:*`);
      if (keys.length > 0) await client.del(...keys);
    }
    await client.quit();
  }
});
