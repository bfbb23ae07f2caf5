import assert from "node:assert/strict";
import { type Anomaly, anomalyToFields } from "../../../shared/ports/anomaly.ts";
import { RedisIncidentStore } from "../../../shared/adapters/redis/redis_incident_store.ts";
import { IncidentManager } from "../../../shared/runtime/incidents.ts";
import { openApiDocument } from "../../../functions/api/openapi.ts";
import { apiFixture, jsonPost } from "./api_fixture.ts";

function _anomaly(partial: Partial<Anomaly>): Anomaly {
  return {
    id: "",
    container: "shop_web",
    containerId: "c0ffee",
    containerName: "shop_web.1",
    entryId: crypto.randomUUID(),
    ts: new Date().toISOString(),
    line: "ERROR upstream timed out",
    score: 0.9,
    threshold: 0.6,
    reasons: ["new_template"],
    template: "ERROR upstream <*>",
    templateId: "tpl-1",
    tokens: [],
    modelVersion: 1,
    scoredAt: Date.now(),
    ...partial,
  };
}

Deno.test("GET /incidents, GET /incidents/:id, POST /incidents/:id/feedback", async (t) => {
  const prefix = `test:incidents:${crypto.randomUUID()}`;
  let store: RedisIncidentStore | undefined;
  await using f = apiFixture(({ logStream }) => {
    store = new RedisIncidentStore((logStream as unknown as { client: never }).client, { prefix });
    return { incidents: store };
  });
  const manager = new IncidentManager(store!);
  try {
    const appended: Anomaly[] = [];
    for (const a of [_anomaly({}), _anomaly({ templateId: "tpl-2", reasons: ["severity"] })]) {
      const [id] = await f.stream.append(f.anomalies, [anomalyToFields(a)]);
      appended.push({ ...a, id: id! });
    }
    const notices = await manager.record(appended);
    const id = notices[0]!.incident.id;

    await t.step("the list shows the incident, newest first, filtered by status", async () => {
      const res = await f.call("/incidents?status=open");
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.incidents.length, 1);
      assert.equal(body.incidents[0].id, id);
      assert.equal(body.incidents[0].anomalies, 2);
      assert.equal(body.nextBefore, null);
      const none = await (await f.call("/incidents?status=resolved")).json();
      assert.deepEqual(none.incidents, []);
      assert.equal((await f.call("/incidents?status=nope")).status, 400);
      assert.equal((await f.call("/incidents?limit=0")).status, 400);
      const unauth = await f.app.request("/incidents");
      assert.equal(unauth.status, 401);
      await unauth.body?.cancel();
    });

    await t.step("one incident by id, 404 for an unknown one", async () => {
      const res = await f.call(`/incidents/${id}`);
      assert.equal(res.status, 200);
      const { incident } = await res.json();
      assert.deepEqual(incident.members, appended.map((a) => a.id));
      assert.equal(incident.group, "shop");
      const missing = await f.call("/incidents/000000000-00000000");
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
      const bad = await f.call("/incidents/..%2Fx");
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
    });

    await t.step("feedback on the incident applies to every member", async () => {
      const res = await f.call(`/incidents/${id}/feedback`, jsonPost({ label: "normal" }));
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.applied, 2);
      assert.deepEqual(body.templates.sort(), ["tpl-1", "tpl-2"]);
      assert.equal(await f.feedback.isSuppressed("shop_web", "tpl-1"), true);
      assert.equal(await f.feedback.isSuppressed("shop_web", "tpl-2"), true);
      assert.equal((await f.feedback.get("shop_web", appended[1]!.id))?.label, "normal");
    });

    await t.step("the OpenAPI document lists the routes", () => {
      const paths = Object.keys((openApiDocument() as { paths: Record<string, unknown> }).paths);
      for (const p of ["/incidents", "/incidents/{id}", "/incidents/{id}/feedback"]) {
        assert.ok(paths.includes(p), p);
      }
    });
  } finally {
    const keys = await f.stream.client.keys(`${prefix}:*`);
    if (keys.length > 0) await f.stream.client.del(...keys);
  }
});
