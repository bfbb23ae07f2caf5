import assert from "node:assert/strict";
import type { Incident, IncidentStore } from "../../../shared/ports/incident_store.ts";

function _incident(
  id: string,
  service: string,
  openedAt: number,
  status: Incident["status"] = "open",
): Incident {
  return {
    id,
    service,
    group: null,
    status,
    openedAt,
    updatedAt: openedAt,
    lastAnomalyAt: openedAt,
    resolvedAt: status === "resolved" ? openedAt : null,
    anomalies: 1,
    members: [`${id}-a1`],
    reasons: { silence: 1 },
    kinds: { rate: 1 },
    maxScore: 0.8,
    title: `${service}: silence`,
    samples: [],
    links: [],
    notified: { anomalies: 1, reasons: ["silence"] },
    revision: 0,
  };
}

/**
 * The incident store conformance suite every adapter's test runs.
 *
 * @param t The test context.
 * @param open Opens a fresh, empty store.
 */
export async function incidentStoreConformance(
  t: Deno.TestContext,
  open: () => Promise<IncidentStore>,
): Promise<void> {
  await t.step("save() of a new incident makes it its service's current one", async () => {
    await using s = await open();
    const inc = _incident("i1", "web é/1", 1000);
    assert.equal(await s.save(inc, 0), true);
    const got = await s.get("i1");
    assert.equal(got?.revision, 1);
    assert.deepEqual({ ...got, revision: 0 }, inc);
    assert.equal((await s.current("web é/1"))?.id, "i1");
    assert.equal(await s.current("db"), null);
    assert.equal(await s.get("nope"), null);
  });

  await t.step(
    "save() checks the revision; a second open incident of a service is refused",
    async () => {
      await using s = await open();
      const inc = _incident("i1", "web", 1000);
      assert.equal(await s.save(inc, 0), true);
      assert.equal(await s.save(inc, 0), false, "stale revision");
      assert.equal(await s.save(_incident("i2", "web", 2000), 0), false, "web has an open one");
      const updated = { ...inc, anomalies: 5, revision: 1 };
      assert.equal(await s.save(updated, 1), true);
      assert.equal((await s.get("i1"))?.anomalies, 5);
      assert.equal((await s.get("i1"))?.revision, 2);
      const results = await Promise.all([
        s.save({ ...updated, anomalies: 6 }, 2),
        s.save({ ...updated, anomalies: 7 }, 2),
      ]);
      assert.deepEqual(results.filter(Boolean).length, 1, "one of two concurrent saves wins");
    },
  );

  await t.step("a resolved incident stops being current; the next one can open", async () => {
    await using s = await open();
    const inc = _incident("i1", "web", 1000);
    await s.save(inc, 0);
    assert.equal(
      await s.save({ ...inc, status: "resolved", resolvedAt: 5000, updatedAt: 5000 }, 1),
      true,
    );
    assert.equal(await s.current("web"), null);
    assert.equal(await s.save(_incident("i2", "web", 6000), 0), true);
    assert.equal((await s.current("web"))?.id, "i2");
  });

  await t.step("list() is newest first, by service, status, time and limit", async () => {
    await using s = await open();
    await s.save(_incident("a", "web", 1000, "resolved"), 0);
    await s.save(_incident("b", "db", 2000), 0);
    await s.save(_incident("c", "web", 3000), 0);
    await s.save(_incident("d", "cache", 4000, "resolved"), 0);
    const ids = (xs: Incident[]) => xs.map((x) => x.id);
    assert.deepEqual(ids(await s.list()), ["d", "c", "b", "a"]);
    assert.deepEqual(ids(await s.list({ service: "web" })), ["c", "a"]);
    assert.deepEqual(ids(await s.list({ status: "open" })), ["c", "b"]);
    assert.deepEqual(ids(await s.list({ before: 3000 })), ["b", "a"]);
    assert.deepEqual(ids(await s.list({ limit: 2 })), ["d", "c"]);
    assert.deepEqual(ids(await s.list({ since: 2500 })), ["d", "c"]);
  });
}
