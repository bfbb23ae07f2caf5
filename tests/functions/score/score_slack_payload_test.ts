import assert from "node:assert/strict";
import { entryToFields } from "../../../shared/ports/log_entry.ts";
import { createRedisClient } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { startRedis, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";

/**
 * Issue 16 item 13, through `deno task score` with its permissions and a
 * real local webhook receiver: a hostile line (3,000 `<`, ANSI escapes, a
 * BEL, a bidi override) reaches Slack cut after escaping and neutralised.
 */
Deno.test("deno task score: a Slack payload keeps sections within 3,000 characters and neutralises escapes", async () => {
  await using redis = await startRedis();
  const client = createRedisClient(redis.url);
  const received: unknown[] = [];
  const hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    received.push(await req.json());
    return new Response("ok");
  });
  await using score = await TaskProcess.start("score", {
    env: {
      REDIS_URL: redis.url,
      TAILWISE_INSTANCE: "score-slack",
      CONSUMER_BLOCK_MS: "200",
      COLD_START_ALERTS: "severity",
      WEBHOOK_URL: `http://127.0.0.1:${hook.addr.port}/hook`,
      WEBHOOK_FORMAT: "slack",
    },
  });
  try {
    const line = `FATAL panic: ${
      "<".repeat(3000)
    } \u001b[31mred\u001b[0m \u202eevil\u202c \u0007bell`;
    const fields = entryToFields({
      containerId: "c1",
      containerName: "web",
      image: "web:1",
      stream: "stderr",
      ts: new Date().toISOString(),
      seq: 0,
      line,
    });
    await client.xadd("tailwise:logs", "*", ...Object.entries(fields).flat());
    type Slack = { text: string; blocks: { text?: { text: string } }[] };
    // With incidents (the Redis adapters), Slack gets the incident's message with a sample.
    await waitFor(() => received.length > 0, { timeoutMs: 30_000, what: "the Slack message" });
    for (const payload of received as Slack[]) {
      const texts = [payload.text, ...payload.blocks.map((b) => b.text?.text ?? "")];
      for (const t of texts) assert.ok(t.length <= 3000, `a section of ${t.length} characters`);
      assert.ok(
        // deno-lint-ignore no-control-regex
        !/[\u001b\u0007\u202e\u202c]/.test(texts.join("\n")),
        "an escape or override passed through",
      );
      assert.ok(!JSON.stringify(payload).includes("<<"), "an unescaped < passed through");
    }
    const sample = (received as Slack[]).flatMap((p) => p.blocks.map((b) => b.text?.text ?? ""))
      .find((t) => t.includes("FATAL panic"));
    assert.match(sample ?? "", /`FATAL panic: (&lt;)+…`/);
  } finally {
    await score.stop();
    await hook.shutdown();
    client.disconnect();
  }
});
