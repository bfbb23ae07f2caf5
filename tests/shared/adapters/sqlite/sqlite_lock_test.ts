import assert from "node:assert/strict";
import { SqliteDatabase } from "../../../../shared/adapters/sqlite/sqlite_database.ts";
import { SqliteLock } from "../../../../shared/adapters/sqlite/sqlite_lock.ts";

Deno.test("SqliteLock gives a lease to one holder at a time, across connections", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-lock-" });
  const da = await SqliteDatabase.open(dir);
  const db = await SqliteDatabase.open(dir);
  try {
    const a = new SqliteLock(da);
    const b = new SqliteLock(db);
    await t.step("only one holder at a time", async () => {
      const first = await a.tryAcquire("train:web", 10_000);
      assert.ok(first);
      assert.equal(await b.tryAcquire("train:web", 10_000), null);
      await first.release();
      const second = await b.tryAcquire("train:web", 10_000);
      assert.ok(second);
      await second.release();
    });
    await t.step("a stale lease cannot release the next holder's lock", async () => {
      const stale = await a.tryAcquire("ttl", 30);
      assert.ok(stale);
      await new Promise((r) => setTimeout(r, 60)); // the lease's own time limit passing is the behaviour under test
      const next = await b.tryAcquire("ttl", 10_000);
      assert.ok(next);
      await stale.release();
      assert.equal(await a.tryAcquire("ttl", 10_000), null);
      await next.release();
    });
  } finally {
    da.close();
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
