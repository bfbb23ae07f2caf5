import assert from "node:assert/strict";
import { createSession, SESSION_COOKIE, verifySession } from "../../../functions/api/dashboard.ts";
import { displayText } from "../../../functions/api/dashboard_view.ts";
import { type Anomaly, anomalyToFields } from "../../../shared/ports/anomaly.ts";
import { entryToFields } from "../../../shared/ports/log_entry.ts";
import { apiFixture, TOKEN } from "./api_fixture.ts";

function _anomaly(partial: Partial<Anomaly>): Anomaly {
  return {
    id: "",
    container: "web",
    containerId: "c0ffee",
    containerName: "web",
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

async function _signIn(
  app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> },
) {
  const res = await app.request(`/login?token=${TOKEN}`);
  assert.equal(res.status, 303);
  return (res.headers.get("set-cookie") ?? "").split(";")[0]!;
}

Deno.test("displayText() strips ANSI, shows controls and bidi overrides, cuts at 2 KB", () => {
  assert.deepEqual(displayText("\u001b[31mred\u001b[0m ok"), { text: "red ok", cut: null });
  assert.equal(displayText("a\u0000b\u0007c\u007f").text, "a\u2400b\u2407c\u2421");
  assert.equal(
    displayText('Traceback (most recent call last):\n  File "a.py"\r\nValueError').text,
    'Traceback (most recent call last):\n  File "a.py"\u240d\nValueError',
  );
  assert.equal(displayText("x\u202egnp.exe\u2066").text, "x[U+202E]gnp.exe[U+2066]");
  assert.equal(displayText("tab\there").text, "tab\there");
  const long = displayText("A".repeat(1 << 20));
  assert.equal(long.text.length, 2049);
  assert.ok(long.text.endsWith("…"));
  assert.equal(long.cut, 1 << 20);
  const emoji = displayText(`${"a".repeat(2047)}😀😀`);
  assert.ok(emoji.text.isWellFormed(), "never cuts a surrogate pair");
  assert.equal(displayText("\ud800 lone").text, "\ufffd lone");
});

Deno.test("verifySession() accepts only an unexpired cookie made with the token", () => {
  const now = Date.now();
  const value = createSession(TOKEN, now + 60_000);
  assert.ok(!value.includes(TOKEN));
  assert.equal(verifySession(TOKEN, value, now), true);
  assert.equal(verifySession(TOKEN, value, now + 60_000), false, "expired");
  assert.equal(verifySession(`${TOKEN}x`, value, now), false, "another token");
  const [exp, mac] = value.split(".");
  assert.equal(verifySession(TOKEN, `${Number(exp) + 1}.${mac}`, now), false, "tampered");
  for (const bad of ["", "x", `${exp}.`, `${exp}.${mac}x`]) {
    assert.equal(verifySession(TOKEN, bad, now), false, bad);
  }
});

Deno.test("dashboard: sign-in flow, cookie auth on the api, CSRF checks", async (t) => {
  await using f = apiFixture();
  await t.step("GET / without a session is the login form, with no data", async () => {
    await f.stream.append(f.anomalies, [anomalyToFields(_anomaly({ line: "secret-ish line" }))]);
    const res = await f.app.request("/");
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /<form class="card" method="post" action="\/login"/);
    assert.ok(!page.includes("secret-ish"));
  });
  await t.step("GET /login?token sets the cookie and redirects to /", async () => {
    const res = await f.app.request(`/login?token=${TOKEN}`);
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/");
    const cookie = res.headers.get("set-cookie") ?? "";
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=\\d+\\.[\\w-]{43}; `));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\//);
    assert.ok(!cookie.includes(TOKEN));
    const wrong = await f.app.request("/login?token=wrong-token-0123456789");
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("set-cookie"), null);
  });
  await t.step("POST /login checks the origin", async () => {
    const post = (headers: Record<string, string>) =>
      f.app.request("/login", {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          host: "tw.local",
          ...headers,
        },
        body: `token=${TOKEN}`,
      });
    assert.equal((await post({ origin: "http://tw.local" })).status, 303);
    assert.equal((await post({ origin: "null", "sec-fetch-site": "same-origin" })).status, 303);
    assert.equal((await post({ origin: "http://evil.example" })).status, 403);
    assert.equal((await post({ origin: "null", "sec-fetch-site": "cross-site" })).status, 403);
    assert.equal((await post({})).status, 403);
  });
  await t.step("the cookie works on the api; changes need the same origin", async () => {
    const cookie = await _signIn(f.app);
    const [id] = await f.stream.append(f.anomalies, [anomalyToFields(_anomaly({}))]);
    const list = await f.app.request("/anomalies", { headers: { cookie } });
    assert.equal(list.status, 200);
    await list.body?.cancel();
    const feedback = (headers: Record<string, string>) =>
      f.app.request(`/anomalies/${id}/feedback`, {
        method: "POST",
        headers: { cookie, "content-type": "application/json", host: "tw.local", ...headers },
        body: JSON.stringify({ label: "normal" }),
      });
    const ok = await feedback({ origin: "http://tw.local" });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).suppressed, true);
    const forged = await feedback({ origin: "http://evil.example" });
    assert.equal(forged.status, 403);
    assert.match((await forged.json()).error, /Cross-origin/);
    const bare = await feedback({});
    assert.equal(bare.status, 403);
    await bare.body?.cancel();
  });
  await t.step("an expired or forged cookie is 401; the bearer token still works", async () => {
    const expired = `${SESSION_COOKIE}=${createSession(TOKEN, Date.now() - 1)}`;
    const res = await f.app.request("/models", { headers: { cookie: expired } });
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, /session/);
    const forged = `${SESSION_COOKIE}=${
      createSession("another-token-0123456789", Date.now() + 60_000)
    }`;
    const res2 = await f.app.request("/models", { headers: { cookie: forged } });
    assert.equal(res2.status, 401);
    await res2.body?.cancel();
    const bearer = await f.call("/models");
    assert.equal(bearer.status, 200);
    await bearer.body?.cancel();
  });
  await t.step("POST /logout clears the cookie", async () => {
    const res = await f.app.request("/logout", {
      method: "POST",
      headers: { host: "tw.local", origin: "http://tw.local" },
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("set-cookie") ?? "", new RegExp(`^${SESSION_COOKIE}=; Max-Age=0`));
  });
  assert.deepEqual(f.logged, []);
});

Deno.test("GET / escapes log content and shows containers with rate and model state", async () => {
  await using f = apiFixture();
  const cookie = await _signIn(f.app);
  const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)> \u001b[1mbold\u001b[0m`;
  await f.stream.append(f.anomalies, [
    anomalyToFields(_anomaly({ line: hostile, template: "<b>tpl</b>", reasons: ["<i>x</i>"] })),
  ]);
  await f.registry.put("web", new Uint8Array([1, 2, 3]), { lines: 900, threshold: 0.61 });
  await f.stream.append(
    f.logs,
    Array.from({ length: 30 }, (_, i) =>
      entryToFields({
        containerId: "c",
        containerName: i < 20 ? "web" : "db",
        image: "x",
        stream: "stdout",
        ts: new Date().toISOString(),
        seq: i,
        line: "ok",
      })),
  );
  const res = await f.app.request("/", { headers: { cookie } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  const page = await res.text();
  assert.ok(!page.includes("<script>alert"), "no markup from a log line");
  assert.ok(!page.includes("<img src=x"));
  assert.ok(!page.includes("<b>tpl"));
  assert.ok(!page.includes("\u001b"));
  assert.ok(page.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(page.includes("&gt; bold"), "ANSI escapes removed, the text kept");
  assert.match(
    page,
    /data-key="web"[\s\S]*?data-f="rate">20<[\s\S]*?>trained<[\s\S]*?>v1<[\s\S]*?>0\.610</,
  );
  assert.match(page, /data-key="db"[\s\S]*?data-f="rate">10<[\s\S]*?>learning</);
  assert.equal((page.match(/<script/g) ?? []).length, 1, "only the page's own script tag");
});

Deno.test("GET / counts the log rates of every shard of the log stream", async () => {
  const shards = [0, 1].map((i) => `test:api:${crypto.randomUUID()}:logs:{${i}}`);
  await using f = apiFixture({
    consumerGroups: shards.flatMap((stream) => [{ stream, group: "score" }, {
      stream,
      group: "ingest",
    }]),
  });
  try {
    const cookie = await _signIn(f.app);
    // Each container's lines go to one shard: web to shard 0, db to shard 1.
    for (const [shard, name, n] of [[0, "web", 12], [1, "db", 7]] as const) {
      await f.stream.append(
        shards[shard]!,
        Array.from({ length: n }, (_, i) =>
          entryToFields({
            containerId: `id-${name}`,
            containerName: name,
            image: "x",
            stream: "stdout",
            ts: new Date().toISOString(),
            seq: i,
            line: "ok",
          })),
      );
    }
    const page = await (await f.app.request("/", { headers: { cookie } })).text();
    assert.match(page, /data-key="web"[\s\S]*?data-f="rate">12</);
    assert.match(page, /data-key="db"[\s\S]*?data-f="rate">7(?:\.0)?</);
  } finally {
    await f.stream.client.del(...shards);
  }
});

Deno.test("GET /events streams new anomalies and container states, resumes after Last-Event-ID", async (t) => {
  await using f = apiFixture({}, { dashboard: { pollMs: 50, stateEveryMs: 200 } });
  const cookie = await _signIn(f.app);
  const [old] = await f.stream.append(f.anomalies, [anomalyToFields(_anomaly({ line: "old" }))]);
  const read = async (res: Response, until: (text: string) => boolean) => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const deadline = Date.now() + 5000;
    while (!until(text) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    // The client goes away: the server's loop must stop (the sanitizers check no timer is left).
    await reader.cancel();
    return text;
  };
  await t.step("new anomalies only, then container states", async () => {
    const res = await f.app.request("/events", { headers: { cookie } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const appended = f.stream.append(f.anomalies, [
      anomalyToFields(_anomaly({ line: "<b>new</b>", score: 0.99 })),
    ]);
    const [id] = await appended;
    const text = await read(res, (s) => s.includes("event: anomaly") && s.includes("containers"));
    assert.match(text, /^event: hello\n/);
    assert.ok(!text.includes('"line":"old"'), "starts after the newest anomaly");
    const m = /event: anomaly\ndata: (.*)\nid: (\S+)\n/.exec(text);
    assert.ok(m, text);
    assert.equal(m[2], id);
    const view = JSON.parse(m[1]!);
    assert.equal(view.line, "<b>new</b>", "JSON data; the page inserts it as text");
    assert.equal(view.severity, "critical");
    assert.match(text, /event: containers\ndata: \{"containers":\[/);
  });
  await t.step("Last-Event-ID resumes after that anomaly", async () => {
    const res = await f.app.request("/events", { headers: { cookie, "last-event-id": old! } });
    const text = await read(res, (s) => s.includes("event: anomaly"));
    assert.match(text, /"line":"<b>new<\/b>"/);
    assert.ok(!text.includes('"line":"old"'));
  });
  await t.step("without a session it is 401", async () => {
    const res = await f.app.request("/events");
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });
});
