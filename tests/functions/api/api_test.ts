import assert from "node:assert/strict";
import { openApiDocument } from "../../../functions/api/openapi.ts";
import { type Anomaly, anomalyToFields } from "../../../shared/ports/anomaly.ts";
import { ModelNotFoundError } from "../../../shared/ports/model_registry.ts";
import { apiFixture, jsonPost, TOKEN } from "./api_fixture.ts";

function _anomaly(partial: Partial<Anomaly>): Anomaly {
  return {
    id: "",
    container: "web",
    containerId: "c0ffee",
    containerName: "web-1",
    entryId: "1-0",
    ts: "2026-11-24T12:00:00.000000000Z",
    line: "ERROR something odd",
    score: 0.9,
    threshold: 0.6,
    reasons: ["new_template"],
    template: "ERROR something <*>",
    templateId: "tpl-1",
    tokens: ["odd"],
    modelVersion: 1,
    scoredAt: Date.now(),
    ...partial,
  };
}

Deno.test("createApi() answers 401 JSON without the right bearer token, except on /health", async (t) => {
  await using f = apiFixture();
  await t.step("missing token", async () => {
    const res = await f.app.request("/models");
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="tailwise"');
    assert.match((await res.json()).error, /Missing bearer token/);
  });
  await t.step("wrong token, and a token of another scheme", async () => {
    for (const value of [`Bearer ${TOKEN}x`, "Bearer short", `Basic ${btoa(`u:${TOKEN}`)}`]) {
      const res = await f.app.request("/models", { headers: { authorization: value } });
      assert.equal(res.status, 401, value);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm="tailwise"/);
      const body = await res.json();
      assert.equal(typeof body.error, "string");
      assert.ok(!JSON.stringify(body).includes(TOKEN), "the answer never echoes a token");
    }
  });
  await t.step("right token", async () => {
    const res = await f.call("/models");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { models: [] });
  });
  await t.step("/health needs no token and reports each dependency", async () => {
    const res = await f.app.request("/health");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: "ok",
      checks: { redis: { ok: true }, models: { ok: true } },
    });
  });
  await t.step("answers carry the security headers", async () => {
    const res = await f.app.request("/health");
    await res.body?.cancel();
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    assert.equal(res.headers.get("cache-control"), "no-store");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /object-src 'none'/);
  });
  assert.deepEqual(f.logged, []);
});

Deno.test("GET /health answers 503 with the failing dependencies, hiding error messages", async () => {
  const slow = Promise.withResolvers<boolean>();
  await using f = apiFixture({
    health: {
      redis: () => Promise.resolve(true),
      influx: () => Promise.resolve({ ok: false, detail: "write failed" }),
      docker: () => Promise.reject(new Error("connect ECONNREFUSED /secret/path.sock")),
      slow: () => slow.promise,
    },
  }, { healthTimeoutMs: 50 });
  const res = await f.app.request("/health");
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.status, "failing");
  assert.deepEqual(body.checks.redis, { ok: true });
  assert.deepEqual(body.checks.influx, { ok: false, detail: "write failed" });
  assert.deepEqual(body.checks.docker, { ok: false, detail: "check failed (Error)" });
  assert.deepEqual(body.checks.slow, { ok: false, detail: "timed out after 50 ms" });
  slow.resolve(true);
});

Deno.test("createApi() answers 413 JSON past the body limit", async (t) => {
  await using f = apiFixture({}, { bodyLimit: 2048 });
  await t.step("with a Content-Length", async () => {
    const res = await f.call(
      "/score",
      jsonPost({ container: "web", lines: ["x".repeat(4096)] }),
    );
    assert.equal(res.status, 413);
    assert.deepEqual(await res.json(), {
      error: "Request body too large: expected at most 2048 bytes",
    });
  });
  await t.step("with a streamed body and no Content-Length, over real HTTP", async () => {
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      f.app.fetch,
    );
    const chunk = new TextEncoder().encode(`"${"y".repeat(1000)}",`);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 10) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/score`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body,
    });
    assert.equal(res.status, 413);
    assert.match((await res.json()).error, /at most 2048 bytes/);
  });
});

Deno.test("createApi() answers 400 JSON naming the field and what was expected", async (t) => {
  await using f = apiFixture({}, { maxScoreLines: 3, maxLineBytes: 10 });
  const cases: [string, RequestInit, RegExp][] = [
    ["/score", jsonPost({ lines: ["a"] }), /container: expected a container name, got nothing/],
    ["/score", jsonPost([1]), /body: expected a JSON object, got an array/],
    ["/score", jsonPost({ container: "web", lines: "a" }), /lines: expected an array of strings/],
    ["/score", jsonPost({ container: "web", lines: [] }), /lines: expected 1 to 3 lines, got 0/],
    [
      "/score",
      jsonPost({ container: "web", lines: ["a", "b", "c", "d"] }),
      /lines: expected 1 to 3 lines, got 4/,
    ],
    ["/score", jsonPost({ container: "web", lines: ["a", 2] }), /lines\[1\]: expected a string/],
    [
      "/score",
      jsonPost({ container: "web", lines: ["ééééééé"] }),
      /lines\[0\]: expected at most 10 bytes, got 14/,
    ],
    [
      "/score",
      jsonPost({ container: "a\u0000b", lines: ["a"] }),
      /container: expected a name without control characters/,
    ],
    [
      "/score",
      { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" },
      /body: expected valid JSON/,
    ],
    ["/anomalies?limit=0", {}, /limit: expected an integer from 1 to 1000, got "0"/],
    ["/anomalies?limit=abc", {}, /limit: expected an integer from 1 to 1000/],
    ["/anomalies?since=yesterday", {}, /since: expected an ISO 8601 time or ms since the epoch/],
    ["/anomalies?since=2000&until=1000", {}, /since: expected a time at or before until/],
    ["/anomalies?cursor=12", {}, /cursor: expected a stream id/],
    [
      "/anomalies/1-0/feedback",
      jsonPost({ label: "maybe" }),
      /label: expected "normal" or "anomaly", got "maybe"/,
    ],
    ["/anomalies/x/feedback", jsonPost({ label: "normal" }), /id: expected an anomaly id/],
    ["/models/a%00b", {}, /container: expected a name without control characters/],
    [`/models/${"x".repeat(1025)}`, {}, /container: expected at most 1024 bytes, got 1025/],
    [
      "/models/web/rollback",
      jsonPost({ version: 0 }),
      /version: expected an integer of at least 1/,
    ],
  ];
  for (const [path, init, pattern] of cases) {
    await t.step(`${init.method ?? "GET"} ${path.slice(0, 60)}`, async () => {
      const res = await f.call(path, init);
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("content-type"), "application/json");
      const body = await res.json();
      assert.match(body.error, /^Invalid request: /);
      assert.match(body.error, pattern);
    });
  }
  await t.step("a body that is not JSON is 415", async () => {
    const res = await f.call("/score", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "container=web",
    });
    assert.equal(res.status, 415);
    assert.match((await res.json()).error, /expected application\/json/);
  });
  await t.step("an unknown route is 404 JSON", async () => {
    const res = await f.call("/nope");
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "No route for GET /nope" });
  });
  assert.deepEqual(f.logged, []);
});

Deno.test("GET /anomalies pages newest first with a cursor and filters by container and time", async (t) => {
  await using f = apiFixture({}, { maxScan: 7 });
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const container = i % 3 === 0 ? "db" : "web";
    const [id] = await f.stream.append(f.anomalies, [
      anomalyToFields(_anomaly({ container, line: `line ${i}`, entryId: `${i}-0` })),
    ]);
    ids.push(id!);
  }
  const newestFirst = [...ids].reverse();

  await t.step("every anomaly once, across pages", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const res = await f.call(`/anomalies?limit=5${q}`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.ok(body.anomalies.length <= 5);
      seen.push(...body.anomalies.map((a: Anomaly) => a.id));
      cursor = body.nextCursor;
      if (cursor === null) break;
    }
    assert.deepEqual(seen, newestFirst);
  });

  await t.step("decoded anomalies carry their fields", async () => {
    const body = await (await f.call("/anomalies?limit=1")).json();
    const a = body.anomalies[0] as Anomaly;
    assert.equal(a.id, ids[11]);
    assert.equal(a.line, "line 11");
    assert.equal(a.score, 0.9);
    assert.deepEqual(a.reasons, ["new_template"]);
  });

  await t.step("filtered by container, within the scan cap per request", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const body = await (await f.call(`/anomalies?container=db&limit=2${q}`)).json();
      assert.ok(body.scanned <= 7);
      for (const a of body.anomalies as Anomaly[]) {
        assert.equal(a.container, "db");
        seen.push(a.id);
      }
      cursor = body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 20);
    assert.deepEqual(seen, [ids[9], ids[6], ids[3], ids[0]]);
  });

  await t.step("filtered by time", async () => {
    const ms = (id: string) => Number(id.split("-")[0]);
    const since = ms(ids[4]!);
    const until = ms(ids[8]!);
    const got: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const body = await (await f.call(
        `/anomalies?since=${since}&until=${new Date(until).toISOString()}&limit=3${q}`,
      )).json();
      got.push(...(body.anomalies as Anomaly[]).map((a) => a.id));
      cursor = body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 20);
    const expected = newestFirst.filter((id) => ms(id) >= since && ms(id) <= until);
    assert.deepEqual(got, expected);
    assert.ok(got.includes(ids[4]!) && got.includes(ids[8]!));
  });

  await t.step("an empty or missing stream gives an empty page", async () => {
    const body = await (await f.call("/anomalies?container=nobody")).json();
    assert.deepEqual(body.anomalies, []);
  });
});

Deno.test("POST /anomalies/:id/feedback records feedback and suppresses the template", async (t) => {
  await using f = apiFixture();
  const [normalId, confirmId] = await f.stream.append(f.anomalies, [
    anomalyToFields(_anomaly({ container: "web", templateId: "tpl-n", line: "GC pause 812ms" })),
    anomalyToFields(_anomaly({ container: "web", templateId: "tpl-a", line: "segfault" })),
  ]);

  await t.step("normal suppresses the template in the feedback store", async () => {
    const res = await f.call(`/anomalies/${normalId}/feedback`, jsonPost({ label: "normal" }));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      anomalyId: normalId,
      container: "web",
      templateId: "tpl-n",
      label: "normal",
      suppressed: true,
    });
    assert.equal(await f.feedback.isSuppressed("web", "tpl-n"), true);
    assert.deepEqual(await f.feedback.suppressedTemplates("web"), new Set(["tpl-n"]));
    assert.deepEqual(await f.feedback.normalLines("web"), ["GC pause 812ms"]);
  });

  await t.step("anomaly confirms it for the next training", async () => {
    const res = await f.call(`/anomalies/${confirmId}/feedback`, jsonPost({ label: "anomaly" }));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).suppressed, false);
    const confirmed = await f.feedback.confirmedAnomalies("web");
    assert.deepEqual(confirmed.map((c) => [c.anomalyId, c.line]), [[confirmId, "segfault"]]);
  });

  await t.step("an unknown anomaly is 404", async () => {
    const res = await f.call("/anomalies/1-0/feedback", jsonPost({ label: "normal" }));
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: "Anomaly 1-0 not found" });
  });
});

Deno.test("GET /models, GET /models/:container and rollback work on the real registry", async (t) => {
  await using f = apiFixture();
  const odd = "stack_api.1/é x";
  for (let v = 1; v <= 3; v++) {
    await f.registry.put("web", new Uint8Array([v]), { lines: 100 * v, threshold: 0.5 + v / 100 });
  }
  await f.registry.put(odd, new Uint8Array([9]), { lines: 10, threshold: 0.7 });

  await t.step("the list shows every container and its current version", async () => {
    const body = await (await f.call("/models")).json();
    const byName = new Map(
      body.models.map((m: { container: string }) => [m.container, m] as const),
    );
    const web = byName.get("web") as { current: { version: number }; versions: number[] };
    assert.equal(web.current.version, 3);
    assert.deepEqual(web.versions, [3, 2, 1]);
    assert.ok(byName.has(odd));
  });

  await t.step("one container, its name URL-encoded in the path", async () => {
    const res = await f.call(`/models/${encodeURIComponent(odd)}`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.container, odd);
    assert.equal(body.current.version, 1);
    assert.equal(body.current.lines, 10);
  });

  await t.step("rollback moves the current pointer back", async () => {
    const res = await f.call("/models/web/rollback", { method: "POST" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.current.version, 2);
    assert.equal(await f.registry.currentVersion("web"), 2);
  });

  await t.step("rollback with a version promotes that version", async () => {
    const res = await f.call("/models/web/rollback", jsonPost({ version: 3 }));
    assert.equal(res.status, 200);
    assert.equal((await res.json()).current.version, 3);
    assert.equal(await f.registry.currentVersion("web"), 3);
  });

  await t.step("unknown containers and versions are 404 JSON", async () => {
    for (
      const [path, init] of [
        ["/models/nobody", {}],
        ["/models/nobody/rollback", { method: "POST" }],
        ["/models/web/rollback", jsonPost({ version: 99 })],
      ] as [string, RequestInit][]
    ) {
      const res = await f.call(path, init);
      assert.equal(res.status, 404, path);
      assert.match((await res.json()).error, /nobody|99/);
    }
  });
});

Deno.test("POST /train/:container calls requestTraining with the decoded name", async () => {
  const asked: string[] = [];
  await using f = apiFixture({
    requestTraining: (container) => {
      asked.push(container);
      return Promise.resolve({ status: "promoted", version: 4 });
    },
  });
  const res = await f.call(`/train/${encodeURIComponent("my app")}`, { method: "POST" });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { container: "my app", status: "promoted", version: 4 });
  assert.deepEqual(asked, ["my app"]);
});

Deno.test("POST /score answers 404 JSON for a container without a model", async () => {
  await using f = apiFixture({
    scoreLines: (container) => Promise.reject(new ModelNotFoundError(container, null)),
  });
  const res = await f.call("/score", jsonPost({ container: "ghost", lines: ["hello"] }));
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'Container "ghost" has no current model' });
});

Deno.test("GET /metrics renders Prometheus text with lag, model versions and requests", async () => {
  await using f = apiFixture();
  await f.stream.createGroup(f.logs, "score");
  await f.stream.append(f.logs, [{ l: "a" }, { l: "b" }, { l: "c" }]);
  await f.stream.readNew(f.logs, "score", "c1", { count: 1 });
  await f.registry.put("web", new Uint8Array([1]), { lines: 1, threshold: 0.5 });
  await f.registry.put("web", new Uint8Array([2]), { lines: 1, threshold: 0.5 });
  await (await f.call("/models")).body?.cancel();
  const res = await f.call("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  assert.ok(text.endsWith("\n"));
  assert.ok(text.includes(`tailwise_stream_lag{stream="${f.logs}",group="score"} 2\n`));
  assert.ok(text.includes(`tailwise_stream_pending{stream="${f.logs}",group="score"} 1\n`));
  assert.ok(text.includes('tailwise_model_version{container="web"} 2\n'));
  assert.ok(
    text.includes('tailwise_http_requests_total{method="GET",route="/models",status="200"} 1\n'),
  );
  assert.match(
    text,
    /^tailwise_http_request_duration_seconds_bucket\{method="GET",route="\/models",le="\+Inf"\} 1$/m,
  );
  // Every sample line is `name{labels} value` and every family has HELP and TYPE.
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("#")) {
      assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
    } else {
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/);
    }
  }
});

Deno.test("GET /openapi.json is an OpenAPI 3.1 document listing every route and the auth", async () => {
  await using f = apiFixture();
  const res = await f.call("/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.openapi, "3.1.0");
  assert.deepEqual(doc.components.securitySchemes.bearerAuth, {
    type: "http",
    scheme: "bearer",
    description: "API_TOKEN (or the file named by API_TOKEN_FILE)",
  });
  assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
  assert.deepEqual(doc.paths["/health"].get.security, []);
  const routes = f.app.routes
    .filter((r) => r.method !== "ALL")
    .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
  const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
  assert.equal(routes.length, 30);
  assert.deepEqual(new Set(documented), new Set(routes));
  assert.deepEqual(doc, openApiDocument());
});
