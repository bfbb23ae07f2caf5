import { Redis } from "ioredis";
import { RedisIncidentStore } from "../../../../shared/adapters/redis/redis_incident_store.ts";
import { suiteEnv } from "../../../harness/services.ts";
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
