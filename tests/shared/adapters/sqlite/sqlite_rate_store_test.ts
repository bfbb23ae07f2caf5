import assert from "node:assert/strict";
import { SqliteRateStore } from "../../../../shared/adapters/sqlite/sqlite_rate_store.ts";
import { rateStoreConformance } from "../../ports/rate_store_conformance.ts";

Deno.test("SqliteRateStore passes the rate store conformance suite", async (t) => {
  const dirs: string[] = [];
  try {
    await rateStoreConformance(t, async () => {
      const dir = await Deno.makeTempDir({ prefix: "tailwise_rates_" });
      dirs.push(dir);
      return await SqliteRateStore.open(dir);
    });
    await t.step("counts and claims survive a restart", async () => {
      const dir = await Deno.makeTempDir({ prefix: "tailwise_rates_" });
      dirs.push(dir);
      const T = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
      {
        await using s = await SqliteRateStore.open(dir);
        await s.add([{ service: "web", window: T, total: 4, templates: new Map([["a", 4]]) }]);
        assert.equal(await s.claim("web", T), true);
      }
      await using again = await SqliteRateStore.open(dir);
      assert.equal((await again.read("web", T, T, 60_000))[0]!.templates.get("a"), 4);
      assert.equal(await again.claim("web", T), false);
    });
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});
