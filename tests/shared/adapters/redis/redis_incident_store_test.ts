import { Redis } from "ioredis";
import { RedisIncidentStore } from "../../../../shared/adapters/redis/redis_incident_store.ts";
import { startRedisCluster, suiteEnv } from "../../../harness/services.ts";
import { createRedisClient } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { incidentStoreConformance } from "../../ports/incident_store_conformance.ts";

Deno.test("RedisIncidentStore passes the incident store conformance suite", async (t) => {
  const { redisUrl } = suiteEnv();
  const client = new Redis(redisUrl);
  const prefixes: string[] = [];
  try {
    await incidentStoreConformance(t, () => {
      const prefix = `test:incidents:${crypto.randomUUID()}`;
      prefixes.push(prefix);
      return Promise.resolve(new RedisIncidentStore(client, { prefix }));
    });
  } finally {
    for (const prefix of prefixes) {
      const keys = await client.keys(`${prefix}:*`);
      if (keys.length > 0) await client.del(...keys);
    }
    await client.quit();
  }
});

Deno.test("RedisIncidentStore passes the incident store conformance suite on a 3-master Redis Cluster", async (t) => {
  await using cluster = await startRedisCluster();
  const client = createRedisClient(cluster.url, { cluster: true, name: "tailwise-test-incidents" });
  try {
    await incidentStoreConformance(
      t,
      () =>
        Promise.resolve(
          new RedisIncidentStore(client, { prefix: `test:incidents:${crypto.randomUUID()}` }),
        ),
    );
  } finally {
    await client.quit();
  }
});
