import assert from "node:assert/strict";
import { type Anomaly, anomalyToFields } from "../../../shared/ports/anomaly.ts";
import { type Deploy, deployToFields } from "../../../shared/ports/deploy.ts";
import type { LogEntry } from "../../../shared/ports/log_entry.ts";
import { buildDeployReport } from "../../../functions/api/deploy_report.ts";
import { apiFixture, TOKEN } from "./api_fixture.ts";

const AT = Date.UTC(2026, 11, 1, 12, 0, 0);

function _deploy(container: string, at: number, image = "web:2"): Deploy {
  return {
    id: "",
    container,
    version: `sha256:${image}`,
    image,
    previousVersion: "sha256:web:1",
    previousImage: "web:1",
    at,
    containerName: `${container}.1.abc`,
    containerId: "c".repeat(64),
  };
}

function _entry(ms: number, line: string, image: string): LogEntry {
  return {
    containerId: "c1",
    containerName: "web.1.x",
    key: "web",
    image,
    stream: "stdout",
    ts: new Date(ms).toISOString(),
    seq: 0,
    line,
  };
}

/** One hour of v1 before the deploy, ten minutes of v2 after it (v1's last task still logging). */
function _history(): LogEntry[] {
  const out: LogEntry[] = [];
  for (let s = 3600; s > 0; s -= 10) {
    out.push(_entry(AT - s * 1000, `GET /api/items/${s} 200 12ms`, "web:1"));
    out.push(_entry(AT - s * 1000 + 1, `legacy cache hit key=${s}`, "web:1"));
  }
  for (let s = 0; s < 600; s += 10) {
    out.push(_entry(AT + s * 1000, `GET /api/items/${s} 200 12ms`, "web:2"));
    out.push(_entry(AT + s * 1000 + 1, `GET /api/items/${s} 200 14ms`, "web:2"));
    out.push(_entry(AT + s * 1000 + 2, `warming shard ${s} of 16`, "web:2"));
    if (s < 60) out.push(_entry(AT + s * 1000 + 3, `legacy cache hit key=${s}`, "web:1"));
  }
  return out;
}

function _sources(entries: LogEntry[], anomalies: Anomaly[] = []) {
  return {
    history: async function* (_key: string, o: { from: Date; to: Date; limit: number }) {
      for (const e of entries) {
        const ms = Date.parse(e.ts);
        if (ms >= o.from.getTime() && ms < o.to.getTime()) yield e;
      }
    },
    anomalies: (_key: string, from: number, to: number) =>
      Promise.resolve(anomalies.filter((a) => a.scoredAt >= from && a.scoredAt < to)),
  };
}

Deno.test("buildDeployReport() finds new templates with their version, gone ones, rate changes and anomalies", async () => {
  const anomaly = {
    id: "1-0",
    container: "web",
    containerId: "c1",
    containerName: "web.1.x",
    entryId: "9-0",
    ts: new Date(AT + 5000).toISOString(),
    line: "warming shard 0 of 16",
    score: 0.9,
    threshold: 0.5,
    reasons: ["new_template"],
    template: "warming shard <*> of <*>",
    templateId: "x",
    tokens: [],
    modelVersion: 3,
    scoredAt: AT + 5000,
  } satisfies Anomaly;
  const report = await buildDeployReport(_deploy("web", AT), _sources(_history(), [anomaly]), {
    now: () => AT + 10 * 60_000,
  });
  assert.equal(report.complete, false);
  assert.deepEqual(report.lines, { baseline: 720, window: 180 });
  assert.deepEqual(report.newTemplates.map((t) => [t.template, t.count, t.version]), [
    ["warming shard <*> of <*>", 60, "web:2"],
  ]);
  assert.equal(report.newTemplates[0]!.firstSeen, new Date(AT + 2).toISOString());
  // v1's last task still logged it in the window: the new version did not.
  assert.deepEqual(report.goneTemplates.map((t) => [t.template, t.baselineCount, t.expected]), [
    ["legacy cache hit key=<*>", 360, 60],
  ]);
  // 6/min before, 12/min after (two lines per 10 s of one template).
  assert.deepEqual(report.rateChanges.map((r) => [r.beforePerMin, r.afterPerMin, r.ratio]), [
    [6, 12, 2],
  ]);
  assert.deepEqual(report.anomalies.byReason, { new_template: 1 });
  assert.equal(report.anomalies.count, 1);
});

Deno.test("GET /deploys lists deploys newest first, by service; GET /deploys/:id reports one", async (t) => {
  const deploysStream = `test:deploys:${crypto.randomUUID()}`;
  const history = _history();
  await using f = apiFixture({ history: _sources(history).history }, {
    deploysStream,
    now: () => AT + 10 * 60_000,
  });
  const ids = await f.stream.append(deploysStream, [
    deployToFields(_deploy("db", AT - 60_000, "db:2")),
    deployToFields(_deploy("web", AT)),
  ]);
  await f.stream.append(f.anomalies, [
    anomalyToFields({
      id: "",
      container: "web",
      containerId: "c1",
      containerName: "web.1.x",
      entryId: "1-0",
      ts: new Date().toISOString(),
      line: "warming shard 1 of 16",
      score: 1,
      threshold: 0.5,
      reasons: ["new_template"],
      template: "warming shard <*> of <*>",
      templateId: "t",
      tokens: [],
      modelVersion: 2,
      scoredAt: Date.now(),
    }),
  ]);
  await t.step("the list, and one service's", async () => {
    const all = await (await f.call("/deploys")).json();
    assert.deepEqual(all.deploys.map((d: Deploy) => [d.id, d.container]), [
      [ids[1], "web"],
      [ids[0], "db"],
    ]);
    const db = await (await f.call("/deploys?container=db&limit=5")).json();
    assert.deepEqual(db.deploys.map((d: Deploy) => d.image), ["db:2"]);
  });
  await t.step("the report", async () => {
    const res = await f.call(`/deploys/${ids[1]}`);
    assert.equal(res.status, 200);
    const report = await res.json();
    assert.equal(report.deploy.id, ids[1]);
    assert.deepEqual(report.newTemplates.map((x: { template: string }) => x.template), [
      "warming shard <*> of <*>",
    ]);
  });
  await t.step("bad and unknown ids, bad limits, no token", async () => {
    const bad = await f.call("/deploys/nope");
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /expected a deploy id/);
    const unknown = await f.call("/deploys/1-0");
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    const limit = await f.call("/deploys?limit=0");
    assert.equal(limit.status, 400);
    await limit.body?.cancel();
    const anon = await f.app.request("/deploys");
    assert.equal(anon.status, 401);
    await anon.body?.cancel();
  });
  await t.step(
    "the dashboard lists the deploys and marks them on the anomaly timeline",
    async () => {
      const login = await f.app.request(`/login?token=${TOKEN}`);
      assert.equal(login.status, 303);
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
      const page = await (await f.app.request("/", { headers: { cookie } })).text();
      assert.match(page, new RegExp(`<tr class="deploy" data-deploy="${ids[1]}">`));
      assert.match(page, /web:1 → web:2/);
      // The anomaly is newer than both deploys: the markers follow its row.
      const anomaly = page.indexOf('class="anomaly');
      const marker = page.indexOf(`class="deploy-marker" data-deploy="${ids[1]}"`);
      assert.ok(anomaly > 0 && marker > anomaly, `${anomaly} < ${marker}`);
    },
  );
  await t.step("/metrics has each service's last deploy", async () => {
    const text = await (await f.call("/metrics")).text();
    assert.match(
      text,
      new RegExp(`tailwise_last_deploy_timestamp_seconds\\{container="web"\\} ${AT / 1000}`),
    );
    assert.match(text, /tailwise_deploys\{container="db"\} 1/);
  });
});
