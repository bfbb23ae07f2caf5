import assert from "node:assert/strict";
import { createPrng } from "../../shared/detector/detector.ts";
import { freePort, waitForHttp } from "../harness/services.ts";
import { TaskProcess } from "../harness/task.ts";

const TOKEN = "training-stall-token-0123456789";
const LINES = 40_000;

/**
 * Issue 16 item 5: lines that share a tree leaf and are never similar made
 * training quadratic and blocked the process (a `/health` took 55 s while
 * the first model trained). Under `deno task start` with its permissions,
 * the api now answers quickly throughout, and the model trains.
 */
Deno.test("deno task start: /health answers while the first model trains on adversarial lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-stall-" });
  const file = `${dir}/app.log`;
  const rnd = createPrng(11);
  const word = () =>
    Array.from({ length: 6 }, () => String.fromCharCode(97 + rnd.nextInt(26))).join("");
  const lines = Array.from(
    { length: LINES },
    () => `svc event ${Array.from({ length: 10 }, word).join(" ")}`,
  );
  await Deno.writeTextFile(file, lines.join("\n") + "\n");
  const port = freePort();
  await using start = await TaskProcess.start("start", {
    args: ["--file", file, "--no-docker"],
    env: {
      TAILWISE_DATA_DIR: `${dir}/data`,
      API_PORT: String(port),
      API_TOKEN: TOKEN,
      TRAIN_MIN_LINES: String(LINES),
    },
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${base}/health`, { what: "the api to listen" });
    let slowest = 0;
    let trained = false;
    const deadline = Date.now() + 90_000;
    while (!trained && Date.now() < deadline) {
      const t0 = performance.now();
      // Bounded, so that a stalled process fails the test instead of hanging it.
      const h = await fetch(`${base}/health`, { signal: AbortSignal.timeout(5000) }).catch(() =>
        null
      );
      await h?.body?.cancel();
      slowest = Math.max(slowest, h === null ? Infinity : performance.now() - t0);
      if (h === null) break;
      const m = await fetch(`${base}/models`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: AbortSignal.timeout(5000),
      });
      const body = await m.json() as { models: { current: { lines: number } | null }[] };
      trained = body.models.some((x) => x.current !== null);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(slowest < 2000, `the slowest /health took ${slowest.toFixed(0)} ms`);
    assert.ok(trained, "no model trained within 90 s");
  } finally {
    await start.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
