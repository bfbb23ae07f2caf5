import assert from "node:assert/strict";
import { WebhookAlertSink } from "../../../../shared/adapters/webhook/webhook_alert_sink.ts";
import type { Incident, IncidentNotice } from "../../../../shared/ports/incident_store.ts";
import { waitFor } from "../../../harness/services.ts";

function _incident(partial: Partial<Incident> = {}): Incident {
  return {
    id: "0mi3x2k1s-1a2b3c4d",
    service: "shop_web",
    group: "shop",
    status: "open",
    openedAt: Date.UTC(2026, 11, 2, 10),
    updatedAt: Date.UTC(2026, 11, 2, 10, 5),
    lastAnomalyAt: Date.UTC(2026, 11, 2, 10, 5),
    resolvedAt: null,
    anomalies: 7,
    members: [],
    reasons: { silence: 5, new_template: 2 },
    kinds: { rate: 5, line: 2 },
    maxScore: 0.83,
    title: "shop_web: silence ×5, new_template ×2 (7 anomalies)",
    samples: [{
      id: "1-0",
      ts: "2026-12-02T10:01:00.000Z",
      kind: "rate",
      line: "10:00-10:01 UTC: silence: 0 lines, 42 expected <!channel> @here",
      reasons: ["silence"],
      score: 0.83,
      templateId: "",
    }],
    links: [],
    notified: { anomalies: 7, reasons: ["new_template", "silence"] },
    revision: 3,
    ...partial,
  };
}

async function _receive(
  format: "json" | "slack",
  notices: IncidentNotice[],
): Promise<Record<string, unknown>[]> {
  const bodies: Record<string, unknown>[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      bodies.push(await req.json());
      return new Response("ok");
    },
  );
  await using sink = new WebhookAlertSink({
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    format,
  });
  await sink.notify(notices);
  await waitFor(() => bodies.length >= notices.length, { timeoutMs: 5000 });
  assert.equal(sink.stats().delivered, notices.length);
  return bodies;
}

Deno.test("WebhookAlertSink.notify() posts one message per incident notice, in order", async () => {
  const bodies = await _receive("json", [
    { event: "opened", incident: _incident({ anomalies: 1 }) },
    {
      event: "resolved",
      incident: _incident({ status: "resolved", resolvedAt: Date.UTC(2026, 11, 2, 10, 20) }),
    },
  ]);
  assert.deepEqual(bodies.map((b) => [b.kind, b.event, b.container]), [
    ["incident", "opened", "shop_web"],
    ["incident", "resolved", "shop_web"],
  ]);
  assert.equal((bodies[1]!.incident as Incident).status, "resolved");
});

Deno.test("WebhookAlertSink.notify() in Slack format reads well and links nothing", async () => {
  const [body] = await _receive("slack", [{
    event: "resolved",
    incident: _incident({ status: "resolved", resolvedAt: Date.UTC(2026, 11, 2, 10, 20) }),
  }]);
  const text = body!.text as string;
  assert.match(
    text,
    /incident resolved in \*shop_web\* · 7 anomalies since 2026-12-02 10:00 UTC \(lasted 20 min\)/,
  );
  const all = JSON.stringify(body);
  assert.match(all, /silence ×5, new_template ×2/);
  assert.ok(!all.includes("<!channel>"), "mentions are escaped");
  assert.ok(all.includes("&lt;!channel&gt;"));
});
