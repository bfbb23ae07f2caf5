import { Redis } from "ioredis";
import { RedisFeedbackStore } from "../../../../shared/adapters/redis/redis_feedback_store.ts";
import { suiteEnv } from "../../../harness/services.ts";
import { feedbackStoreConformance } from "../../ports/feedback_store_conformance.ts";

Deno.test("RedisFeedbackStore passes the feedback store conformance suite", async (t) => {
  const { redisUrl } = suiteEnv();
  const prefix = `test:feedback:${crypto.randomUUID()}`;
  const client = new Redis(redisUrl);
  try {
    await feedbackStoreConformance(
      t,
      (options) => Promise.resolve(RedisFeedbackStore.connect(redisUrl, { ...options, prefix })),
    );
  } finally {
    const keys = await client.keys(`${prefix}:*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
  }
});
