import assert from "node:assert/strict";
import { type Anomaly, anomalyToFields } from "../../../../shared/ports/anomaly.ts";
import { RedisLogStream } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { WebhookAlertSink } from "../../../../shared/adapters/webhook/webhook_alert_sink.ts";
import { freePort, suiteEnv, waitFor } from "../../../harness/services.ts";

interface _Receiver extends AsyncDisposable {
  url: string;
  port: number;
  bodies: Record<string, unknown>[];
  headers: Headers[];
}

/** A real local HTTP receiver; `status` picks each answer (200 by default). */
function _receiver(
  options: { port?: number; status?: (n: number) => number; path?: string } = {},
): _Receiver {
  const bodies: Record<string, unknown>[] = [];
  const headers: Headers[] = [];
  let n = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    async (req) => {
      const status = options.status?.(n++) ?? 200;
      const body = await req.json();
      if (status < 300) {
        bodies.push(body);
        headers.push(req.headers);
      }
      return new Response(status < 300 ? "ok" : "no", { status });
    },
  );
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}${options.path ?? "/hook"}`,
    port,
    bodies,
    headers,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

let _seq = 0;

function _anomaly(overrides: Partial<Anomaly> = {}): Anomaly {
  _seq++;
  return {
    id: `${1_700_000_000_000 + _seq}-0`,
    container: "web",
    containerId: "c0ffee",
    containerName: "web-1",
    entryId: `${1_600_000_000_000 + _seq}-0`,
    ts: `2026-01-01T00:00:${String(_seq % 60).padStart(2, "0")}.000000000Z`,
    line: `panic: worker ${_seq} crashed`,
    score: 0.93,
    threshold: 0.71,
    reasons: ["new_template", "severity"],
    template: "panic: worker <num> crashed",
    templateId: "t-panic",
    tokens: ["panic"],
    modelVersion: 3,
    scoredAt: Date.now(),
    ...overrides,
  };
}

Deno.test("WebhookAlertSink posts one JSON alert per anomaly with the anomaly in full", async () => {
  await using rx = _receiver();
  await using sink = new WebhookAlertSink({ url: rx.url, groupWindowMs: 0 });
  const a = _anomaly({ line: `{"evil": "<!channel> \\" @here"}\u0000` });
  await sink.send([a]);
  await waitFor(() => rx.bodies.length === 1, { what: "the alert" });
  const body = rx.bodies[0]!;
  assert.equal(body.source, "tailwise");
  assert.equal(body.kind, "anomaly");
  assert.equal(body.container, "web");
  assert.equal(body.containerName, "web-1");
  assert.equal(body.count, 1);
  assert.equal(body.rateLimited, 0);
  assert.deepEqual(body.anomalyIds, [a.id]);
  assert.deepEqual(body.anomaly, a);
  assert.equal(rx.headers[0]!.get("content-type"), "application/json");
  assert.equal(sink.stats().delivered, 1);
  assert.equal(sink.stats().queued, 0);
});

Deno.test("WebhookAlertSink slack format gives { text, blocks } and neutralises hostile lines", async () => {
  await using rx = _receiver();
  await using sink = new WebhookAlertSink({ url: rx.url, format: "slack", groupWindowMs: 0 });
  await sink.send([
    _anomaly({
      containerName: "<!here>web",
      line: "<!channel> @here @everyone <http://evil.example|click> & ``` break ```",
      reasons: ["<@U123>"],
    }),
  ]);
  await waitFor(() => rx.bodies.length === 1, { what: "the slack alert" });
  const body = rx.bodies[0] as { text: string; blocks: { type: string }[] };
  assert.deepEqual(Object.keys(body).sort(), ["blocks", "text"]);
  assert.match(body.text, /anomaly in \*&lt;!here&gt;web\*/);
  assert.equal(body.blocks[0]!.type, "section");
  const all = JSON.stringify(body);
  for (
    const bad of ["<!channel>", "<!here>", "<http", "<@U123>", "@here", "@everyone", "``` break"]
  ) {
    assert.ok(!all.includes(bad), `${bad} survived: ${all}`);
  }
  assert.ok(all.includes("&lt;!channel&gt;"));
  assert.ok(all.includes("&amp;"));
});

Deno.test("WebhookAlertSink groups repeats of a template within the window into one alert with a count", async () => {
  await using rx = _receiver();
  await using sink = new WebhookAlertSink({ url: rx.url, groupWindowMs: 400 });
  await sink.send([
    _anomaly(),
    _anomaly(),
    _anomaly(),
    _anomaly({ templateId: "t-other", template: "other <num>" }),
    _anomaly(),
  ]);
  await waitFor(() => rx.bodies.length === 2, { what: "two alerts" });
  const [panic, other] = rx.bodies as { kind: string; count: number; anomaly: Anomaly }[];
  assert.equal(panic!.kind, "anomaly");
  assert.equal(panic!.count, 4);
  assert.equal(other!.count, 1);
  assert.equal(other!.anomaly.templateId, "t-other");
  await sink.send([_anomaly(), _anomaly(), _anomaly()]);
  await waitFor(() => rx.bodies.length === 3, { what: "the repeats alert", timeoutMs: 5000 });
  const repeats = rx.bodies[2] as { kind: string; count: number };
  assert.equal(repeats.kind, "repeats");
  assert.equal(repeats.count, 3);
  assert.equal(sink.stats().anomaliesDelivered, 8);
});

Deno.test("WebhookAlertSink rate-limits per container and reports the held-back anomalies", async () => {
  await using rx = _receiver();
  // 120 a minute: a burst of 120, then one every 500 ms.
  await using sink = new WebhookAlertSink({ url: rx.url, groupWindowMs: 0, ratePerMinute: 120 });
  const burst = Array.from({ length: 125 }, (_, i) => _anomaly({ templateId: `t${i}` }));
  await sink.send(burst);
  await sink.send([_anomaly({ container: "db", containerName: "db-1" })]);
  await waitFor(() => rx.bodies.length === 122, { what: "the rate_limited alert" });
  const held = rx.bodies[121] as { kind: string; rateLimited: number; container: string };
  assert.equal(held.kind, "rate_limited");
  assert.equal(held.container, "web");
  assert.equal(held.rateLimited, 5);
  assert.equal(sink.stats().rateLimited, 0);
  assert.equal(sink.stats().anomaliesDelivered, 126);
});

Deno.test("WebhookAlertSink retries after 500s with backoff", async () => {
  await using rx = _receiver({ status: (n) => (n < 3 ? 500 : 200) });
  await using sink = new WebhookAlertSink({ url: rx.url, groupWindowMs: 0, retryBaseMs: 20 });
  const a = _anomaly();
  const started = Date.now();
  await sink.send([a]);
  assert.ok(Date.now() - started < 50, "send() returns at once");
  await waitFor(() => rx.bodies.length === 1, { what: "the alert after 3 failures" });
  assert.equal(sink.stats().retries, 3);
  assert.equal(sink.stats().lastError, null);
  assert.deepEqual((rx.bodies[0] as { anomaly: Anomaly }).anomaly, a);
});

Deno.test("WebhookAlertSink keeps anomalies while the receiver is down and names no secret", async () => {
  const port = freePort();
  const secretPath = "/services/T0SECRET/B0SECRET/XSECRETTOKEN";
  const url = `http://alice:pa55w0rd@127.0.0.1:${port}${secretPath}?token=QSECRET`;
  await using sink = new WebhookAlertSink({
    url,
    groupWindowMs: 0,
    retryBaseMs: 20,
    retryMaxMs: 100,
  });
  const lines: string[] = [];
  const log = {
    debug: (m: string, f?: Record<string, unknown>) => lines.push(JSON.stringify([m, f])),
    info: (m: string, f?: Record<string, unknown>) => lines.push(JSON.stringify([m, f])),
    warn: (m: string, f?: Record<string, unknown>) => lines.push(JSON.stringify([m, f])),
    error: (m: string, f?: Record<string, unknown>) => lines.push(JSON.stringify([m, f])),
    child() {
      return log;
    },
  };
  await using logged = new WebhookAlertSink({ url, groupWindowMs: 0, retryBaseMs: 20, log });
  const sent = [_anomaly(), _anomaly({ templateId: "t2" }), _anomaly({ templateId: "t3" })];
  await sink.send(sent);
  await logged.send([_anomaly()]);
  await waitFor(() => sink.stats().retries >= 3 && lines.length > 0, { what: "failed attempts" });
  const err = sink.stats().lastError ?? "";
  assert.match(err, new RegExp(`127\\.0\\.0\\.1:${port}`));
  for (const secret of ["SECRET", "pa55w0rd", "alice", "token="]) {
    assert.ok(!err.includes(secret), `${secret} in ${err}`);
    assert.ok(!lines.join("\n").includes(secret), `${secret} logged`);
  }
  assert.throws(
    () => new WebhookAlertSink({ url: "ftp://x/SECRET" }),
    (e: unknown) => e instanceof TypeError && !e.message.includes("SECRET"),
  );
  await using rx = _receiver({ port, path: secretPath });
  await waitFor(() => rx.bodies.length >= 4, { what: "delivery once the receiver is up" });
  const ids = rx.bodies.map((b) => (b as { anomaly: Anomaly }).anomaly.id);
  for (const a of sent) assert.ok(ids.includes(a.id));
  assert.equal(rx.headers[0]!.get("authorization"), `Basic ${btoa("alice:pa55w0rd")}`);
  await waitFor(() => sink.stats().queued === 0 && sink.stats().lastError === null);
});

Deno.test("WebhookAlertSink re-reads undelivered anomalies from the stream after a restart or an overflow", async (t) => {
  await using stream = RedisLogStream.connect(suiteEnv().redisUrl);
  const name = `test:anomalies:${crypto.randomUUID()}`;
  const cursorKey = `${name}:alerts:delivered`;
  const append = async (list: Anomaly[]) => {
    const ids = await stream.append(name, list.map(anomalyToFields));
    list.forEach((a, i) => (a.id = ids[i]!));
    return list;
  };
  const port = freePort();
  const url = `http://127.0.0.1:${port}/hook`;
  const options = { url, groupWindowMs: 0, retryBaseMs: 20, retryMaxMs: 100 };

  await t.step("a restarted sink delivers what the stopped one could not", async () => {
    const first = await append([_anomaly({ templateId: "r1" })]);
    {
      await using rx = _receiver({ port });
      await using sink = new WebhookAlertSink({
        ...options,
        stream: { log: stream, name, cursorKey },
      });
      await sink.send(first);
      await waitFor(() => rx.bodies.length === 1, { what: "the first alert" });
      const [ms, seq] = first[0]!.id.split("-");
      const next = `${ms}-${Number(seq) + 1}`;
      await waitFor(async () => (await stream.getState(cursorKey)) === next, {
        what: "the position past the first anomaly",
      });
    }
    const later = await append([_anomaly({ templateId: "r2" }), _anomaly({ templateId: "r3" })]);
    {
      await using sink = new WebhookAlertSink({
        ...options,
        stream: { log: stream, name, cursorKey },
      });
      await sink.send(later);
      await waitFor(() => sink.stats().retries >= 2, { what: "failed attempts" });
    }
    await using rx = _receiver({ port });
    await using _restarted = new WebhookAlertSink({
      ...options,
      stream: { log: stream, name, cursorKey },
    });
    await waitFor(() => rx.bodies.length === 2, { what: "the two undelivered alerts" });
    const ids = rx.bodies.map((b) => (b as { anomaly: Anomaly }).anomaly.id);
    assert.deepEqual(ids, later.map((a) => a.id));
    assert.equal((rx.bodies[0] as { anomaly: Anomaly }).anomaly.line, later[0]!.line);
  });

  await t.step("a queue overflow is caught up from the stream", async () => {
    await using rx = _receiver({ port });
    await using sink = new WebhookAlertSink({
      ...options,
      maxQueue: 3,
      stream: { log: stream, name, cursorKey },
    });
    const many = await append(
      Array.from({ length: 10 }, (_, i) => _anomaly({ templateId: `o${i}` })),
    );
    await sink.send(many.slice(0, 2));
    await sink.send(many.slice(2));
    assert.equal(sink.stats().overflowed, 8);
    await waitFor(() => rx.bodies.length === 10, { what: "all ten alerts" });
    const ids = rx.bodies.map((b) => (b as { anomaly: Anomaly }).anomaly.id);
    assert.deepEqual(ids, many.map((a) => a.id));
  });
  await stream.client.del(name, cursorKey);
});

Deno.test("WebhookAlertSink counts an overflow without a stream in the next alert", async () => {
  await using rx = _receiver();
  await using sink = new WebhookAlertSink({ url: rx.url, groupWindowMs: 0, maxQueue: 2 });
  await sink.send(["a", "b", "c", "d"].map((id) => _anomaly({ templateId: id })));
  assert.equal(sink.stats().overflowed, 4);
  await sink.send([_anomaly({ templateId: "e" })]);
  await waitFor(() => rx.bodies.length === 1, { what: "the next alert" });
  assert.equal((rx.bodies[0] as { overflowed: number }).overflowed, 4);
});

Deno.test("WebhookAlertSink slack format cuts after escaping (3,000-character sections) and strips ANSI, BEL and bidi", async () => {
  await using rx = _receiver();
  await using sink = new WebhookAlertSink({ url: rx.url, format: "slack", groupWindowMs: 0 });
  await sink.send([
    _anomaly({
      containerName: "web\u001b[31m\u202eevil\u202c\u0007",
      line: `${"<".repeat(3000)} \u001b[31mred\u001b[0m \u202eevil\u202c \u0007bell`,
      template: `\u001b]0;title\u0007${"&".repeat(400)}`,
    }),
  ]);
  await waitFor(() => rx.bodies.length === 1, { what: "the slack alert" });
  const body = rx.bodies[0] as { text: string; blocks: { text?: { text: string } }[] };
  const texts = [body.text, ...body.blocks.map((b) => b.text?.text ?? "")];
  for (const t of texts) assert.ok(t.length <= 3000, `a section of ${t.length} characters`);
  const code = body.blocks[1]!.text!.text;
  // 1,500 characters of escaped text, never a broken entity, then the cut mark.
  assert.match(code, /^```(&lt;){375}…```$/);
  const all = JSON.stringify(body);
  // deno-lint-ignore no-control-regex
  const unsafe = /[\u001b\u0007\u202e\u202c]/;
  assert.ok(!unsafe.test(texts.join("\n")), all.slice(0, 300));
  assert.match(body.text, /\*web\[U\+202E\]evil\[U\+202C\]\[U\+0007\]\*/);
  assert.match(all, /template `(&amp;){60}…`/);
});
