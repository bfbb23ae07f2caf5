import assert from "node:assert/strict";
import type { RateStore } from "../../../shared/ports/rate_store.ts";

const W = 60_000;
const T = Math.floor(Date.now() / W) * W - 10 * W;

/**
 * The rate store conformance suite every adapter's test runs.
 *
 * @param t The test context.
 * @param open Opens a fresh, empty store; called more than once to stand for
 * two replicas sharing the same backing store (`shared: true`) or a restart.
 */
export async function rateStoreConformance(
  t: Deno.TestContext,
  open: () => Promise<RateStore>,
): Promise<void> {
  await t.step(
    "add() sums counts per window and template; read() fills gaps with zeros",
    async () => {
      await using s = await open();
      await s.add([{
        service: "web",
        window: T,
        total: 3,
        templates: new Map([["a", 2], ["b", 1]]),
      }]);
      await s.add([
        { service: "web", window: T, total: 2, templates: new Map([["a", 2]]) },
        { service: "web", window: T + 2 * W, total: 1, templates: new Map([["b", 1]]) },
        { service: "db", window: T, total: 7, templates: new Map([["q", 7]]) },
      ]);
      const got = await s.read("web", T, T + 2 * W, W);
      assert.deepEqual(got.map((w) => [w.window, w.total, Object.fromEntries(w.templates)]), [
        [T, 5, { a: 4, b: 1 }],
        [T + W, 0, {}],
        [T + 2 * W, 1, { b: 1 }],
      ]);
      assert.equal((await s.read("db", T, T, W))[0]!.total, 7);
      assert.equal((await s.read("nobody", T, T, W))[0]!.total, 0);
    },
  );

  await t.step("add() with a batch id already counted adds nothing", async () => {
    await using s = await open();
    const inc = [{ service: "svc:b", window: T, total: 4, templates: new Map([["x", 4]]) }];
    assert.equal(await s.add(inc, { batchId: "1-0+4" }), true);
    assert.equal(await s.add(inc, { batchId: "1-0+4" }), false);
    assert.equal(await s.add(inc, { batchId: "5-0+4" }), true);
    assert.equal((await s.read("svc:b", T, T, W))[0]!.total, 8);
  });

  await t.step("claim() hands out each window's close once", async () => {
    await using s = await open();
    const claims = await Promise.all([
      s.claim("web/1", T),
      s.claim("web/1", T),
      s.claim("web/1", T),
    ]);
    assert.deepEqual(claims.filter(Boolean).length, 1);
    assert.equal(await s.claim("web/1", T + W), true);
    assert.equal(await s.claim("other", T), true);
  });

  await t.step("services() lists services counted since a time", async () => {
    await using s = await open();
    const now = Date.now();
    const w = Math.floor(now / W) * W;
    await s.add([{ service: "svc é {x}", window: w, total: 1, templates: new Map() }]);
    await s.add([{ service: "old", window: w - 3 * W, total: 1, templates: new Map() }]);
    const got = await s.services(w - W);
    assert.equal(got.get("svc é {x}"), w);
    assert.equal(got.has("old"), false);
  });
}
