import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RedisRateStore } from "../../../../shared/adapters/redis/redis_rate_store.ts";
import { startRedisCluster, suiteEnv } from "../../../harness/services.ts";
import { createRedisClient } from "../../../../shared/adapters/redis/redis_log_stream.ts";
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

Deno.test("RedisRateStore passes the rate store conformance suite on a 3-master Redis Cluster", async (t) => {
  await using cluster = await startRedisCluster();
  const client = createRedisClient(cluster.url, { cluster: true, name: "tailwise-test-rates" });
  try {
    await rateStoreConformance(
      t,
      () =>
        Promise.resolve(
          new RedisRateStore(client, { prefix: `test:rates:${crypto.randomUUID()}` }),
        ),
    );
    await t.step("one add() of services in several slots", async () => {
      const store = new RedisRateStore(client, { prefix: `test:rates:${crypto.randomUUID()}` });
      const T = Math.floor(Date.now() / 60_000) * 60_000;
      const services = Array.from({ length: 8 }, (_, i) => `svc-${i}`);
      const batch = services.map((service, i) => ({
        service,
        window: T,
        total: i + 1,
        templates: new Map([["t", i + 1]]),
      }));
      assert.equal(await store.add(batch, { batchId: "b1" }), true);
      assert.equal(await store.add(batch, { batchId: "b1" }), false, "a batch counts once");
      for (const [i, service] of services.entries()) {
        assert.equal((await store.read(service, T, T, 60_000))[0]!.total, i + 1);
      }
      assert.deepEqual([...(await store.services(T)).keys()].sort(), services);
    });
  } finally {
    await client.quit();
  }
});
