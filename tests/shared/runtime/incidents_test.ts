import assert from "node:assert/strict";
import { SqliteIncidentStore } from "../../../shared/adapters/sqlite/sqlite_incident_store.ts";
import { IncidentManager, serviceGroup } from "../../../shared/runtime/incidents.ts";
import type { Anomaly } from "../../../shared/ports/anomaly.ts";

let seq = 0;
function _anomaly(container: string, reasons: string[], at: number, kind?: "rate"): Anomaly {
  seq++;
  return {
    id: `${at}-${seq}`,
    container,
    containerId: "",
    containerName: container,
    entryId: `e${seq}`,
    ts: new Date(at).toISOString(),
    line: `line ${seq}`,
    score: 0.7,
    threshold: 0.5,
    reasons,
    template: "t",
    templateId: "tid",
    tokens: [],
    modelVersion: 1,
    scoredAt: at,
    ...(kind ? { kind } : {}),
  };
}

Deno.test("IncidentManager: open, meaningful updates, idempotent replay, resolve, links", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise_incidents_" });
  try {
    await using store = await SqliteIncidentStore.open(dir);
    let now = Date.UTC(2026, 11, 2, 10);
    const m = new IncidentManager(store, { now: () => now, quietMs: 600_000 });

    await t.step("the first anomaly opens an incident; more of the same say nothing", async () => {
      const first = _anomaly("shop_web", ["new_template"], now);
      const n1 = await m.record([first]);
      assert.deepEqual(n1.map((n) => n.event), ["opened"]);
      const again = await m.record([first]);
      assert.deepEqual(again, [], "a replayed anomaly changes nothing");
      now += 1000;
      const n2 = await m.record([_anomaly("shop_web", ["new_template"], now)]);
      assert.deepEqual(n2, []);
      const inc = (await store.current("shop_web"))!;
      assert.equal(inc.anomalies, 2);
      assert.equal(inc.group, "shop");
    });

    await t.step("a new reason or twice the anomalies is a meaningful update", async () => {
      now += 1000;
      const n = await m.record([_anomaly("shop_web", ["silence"], now, "rate")]);
      assert.deepEqual(n.map((x) => x.event), ["updated"]);
      assert.deepEqual(n[0]!.incident.kinds, { line: 2, rate: 1 });
      const many = Array.from({ length: 4 }, () => _anomaly("shop_web", ["silence"], now, "rate"));
      const n2 = await m.record(many);
      assert.deepEqual(n2.map((x) => x.event), ["updated"], "7 anomalies vs 3 told");
      assert.match(n2[0]!.incident.title, /shop_web: silence ×5, new_template ×2/);
    });

    await t.step("another service of the same group in the same minutes is linked", async () => {
      now += 60_000;
      const [n] = await m.record([_anomaly("shop_db", ["rate_drop"], now, "rate")]);
      const web = (await store.current("shop_web"))!;
      assert.deepEqual(n!.incident.links, [web.id]);
      assert.deepEqual(web.links, [n!.incident.id]);
      const [other] = await m.record([_anomaly("billing", ["severity"], now)]);
      assert.deepEqual(other!.incident.links, []);
    });

    await t.step("two managers recording at once keep one incident", async () => {
      const m2 = new IncidentManager(store, { now: () => now });
      const xs = Array.from({ length: 10 }, () => _anomaly("api", ["isolation"], now));
      const notices = (await Promise.all(xs.map((x, i) => (i % 2 ? m : m2).record([x])))).flat();
      assert.equal(notices.filter((n) => n.event === "opened").length, 1);
      assert.equal((await store.list({ service: "api" })).length, 1);
      assert.equal((await store.current("api"))!.anomalies, 10);
    });

    await t.step("quiet for quietMs resolves, once", async () => {
      now += 601_000;
      const n = await m.sweep();
      assert.deepEqual(n.map((x) => x.event).sort(), [
        "resolved",
        "resolved",
        "resolved",
        "resolved",
      ]);
      assert.deepEqual(await m.sweep(), []);
      assert.equal(await store.current("shop_web"), null);
      const [again] = await m.record([_anomaly("shop_web", ["silence"], now, "rate")]);
      assert.equal(again!.event, "opened");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serviceGroup() is the stack or Compose project of a service key", () => {
  assert.equal(serviceGroup("shop_web"), "shop");
  assert.equal(serviceGroup("web"), null);
  assert.equal(serviceGroup("_x"), null);
});
