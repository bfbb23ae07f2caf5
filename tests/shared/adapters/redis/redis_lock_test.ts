import assert from "node:assert/strict";
import { createRedisClient } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisLock } from "../../../../shared/adapters/redis/redis_lock.ts";
import { MemoryLock } from "../../../../shared/ports/lock.ts";
import type { Lock } from "../../../../shared/ports/lock.ts";
import { suiteEnv } from "../../../harness/services.ts";

async function _lockBehaviour(t: Deno.TestContext, a: Lock, b: Lock): Promise<void> {
  const name = `train:${crypto.randomUUID()}`;
  await t.step("only one holder at a time", async () => {
    const first = await a.tryAcquire(name, 10_000);
    assert.ok(first);
    assert.equal(await b.tryAcquire(name, 10_000), null);
    await first.release();
    const second = await b.tryAcquire(name, 10_000);
    assert.ok(second);
    await second.release();
  });
  await t.step("a stale lease cannot release the next holder's lock", async () => {
    const stale = await a.tryAcquire(`${name}:ttl`, 30);
    assert.ok(stale);
    await new Promise((r) => setTimeout(r, 60)); // the lease's own time limit passing is the behaviour under test
    const next = await b.tryAcquire(`${name}:ttl`, 10_000);
    assert.ok(next);
    await stale.release();
    assert.equal(await a.tryAcquire(`${name}:ttl`, 10_000), null);
    await next.release();
  });
}

Deno.test("RedisLock gives a lease to one process at a time", async (t) => {
  const c1 = createRedisClient(suiteEnv().redisUrl);
  const c2 = createRedisClient(suiteEnv().redisUrl);
  try {
    await _lockBehaviour(t, new RedisLock(c1), new RedisLock(c2));
  } finally {
    c1.disconnect();
    c2.disconnect();
  }
});

Deno.test("MemoryLock gives a lease to one holder at a time", async (t) => {
  const lock = new MemoryLock();
  await _lockBehaviour(t, lock, lock);
});
