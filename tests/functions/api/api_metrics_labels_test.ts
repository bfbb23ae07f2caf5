import assert from "node:assert/strict";
import { freePort, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";

const TOKEN = "metrics-labels-token-0123456789";

Deno.test("deno task api: 5,000 made-up methods leave /metrics bounded", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-api-metrics-" });
  const port = freePort();
  await using api = await TaskProcess.start("api", {
    env: { TAILWISE_DATA_DIR: dataDir, API_PORT: String(port), API_TOKEN: TOKEN },
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => (await fetch(`${base}/health`).then((r) => r.body?.cancel())) === undefined,
      {
        timeoutMs: 30_000,
        what: "the api to listen",
      },
    );
    const pad = "A".repeat(1990);
    const send = async (i: number, auth: boolean) => {
      const res = await fetch(`${base}/models`, {
        method: `XMETHOD${i}${pad}`,
        headers: auth ? { authorization: `Bearer ${TOKEN}` } : {},
      });
      await res.body?.cancel();
      return res.status;
    };
    // 5,000 unauthenticated requests, 8 at a time, and 100 authenticated ones.
    const statuses = new Map<number, number>();
    for (let i = 0; i < 5000; i += 8) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, 5000 - i) }, (_, j) => send(i + j, false)),
      );
      for (const s of batch) statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    assert.deepEqual([...statuses], [[401, 5000]]);
    for (let i = 0; i < 100; i++) assert.equal(await send(5000 + i, true), 405);

    const started = performance.now();
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    const text = await res.text();
    const ms = performance.now() - started;
    assert.ok(!text.includes("XMETHOD"), "a made-up method became a label value");
    assert.ok(text.length < 64 * 1024, `/metrics is ${text.length} bytes: expected under 64 KiB`);
    assert.ok(ms < 2000, `/metrics took ${ms.toFixed(0)} ms`);
    assert.match(text, /^tailwise_http_unauthenticated_total 5000$/m);
    assert.match(
      text,
      /^tailwise_http_requests_total\{method="other",route="\/models",status="405"\} 100$/m,
    );
  } finally {
    await api.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
