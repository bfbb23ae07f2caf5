import assert from "node:assert/strict";
import { freePort, waitForHttp } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";

const TOKEN = "routes-test-token-0123456789";

/**
 * Issue 16 item 14, against `deno task api` with its permissions: an unknown
 * container is 404 on `POST /train`, a known path with another method is 405
 * with `Allow`, and validation messages read as English.
 */
Deno.test("deno task api: 404 for an unknown container to train, 405 for a wrong method", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-routes-" });
  const port = freePort();
  await using api = await TaskProcess.start("api", {
    env: { TAILWISE_DATA_DIR: dir, API_PORT: String(port), API_TOKEN: TOKEN },
  });
  const base = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  try {
    await waitForHttp(`${base}/health`, { what: "the api to listen" });
    await t.step("POST /train/nope is 404", async () => {
      const r = await fetch(`${base}/train/nope`, { method: "POST", headers: auth });
      assert.equal(r.status, 404);
      assert.match((await r.json()).error, /"nope" is unknown: it has no history and no model/);
    });
    await t.step("GET /score is 405 with Allow: POST", async () => {
      const r = await fetch(`${base}/score`, { headers: auth });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get("allow"), "POST");
      assert.match((await r.json()).error, /expected POST/);
      const m = await fetch(`${base}/models`, { method: "DELETE", headers: auth });
      assert.equal(m.status, 405);
      assert.equal(m.headers.get("allow"), "GET, HEAD");
      await m.body?.cancel();
    });
    await t.step(
      "newer routes (deploys, incidents, rates, volume) are 405 with Allow too",
      async () => {
        for (
          const [method, path, allow] of [
            ["DELETE", "/deploys", "GET, HEAD"],
            ["POST", "/deploys/some-id", "GET, HEAD"],
            ["PUT", "/incidents", "GET, HEAD"],
            ["GET", "/incidents/x/feedback", "POST"],
            ["POST", "/rates/web", "GET, HEAD"],
            ["POST", "/volume", "GET, HEAD"],
            ["DELETE", "/incident-list", "GET, HEAD"],
            ["PATCH", "/openapi.json", "GET, HEAD"],
          ] as const
        ) {
          const r = await fetch(`${base}${path}`, { method, headers: auth });
          assert.equal(r.status, 405, `${method} ${path}`);
          assert.equal(r.headers.get("allow"), allow, `${method} ${path}`);
          assert.match((await r.json()).error, new RegExp(`expected ${allow}`));
        }
        // Still 404 for a path no route takes.
        const r = await fetch(`${base}/nowhere`, { method: "POST", headers: auth });
        assert.equal(r.status, 404);
        await r.body?.cancel();
      },
    );
    await t.step('a missing field reads "got nothing"', async () => {
      const r = await fetch(`${base}/score`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ lines: ["x"] }),
      });
      assert.equal(r.status, 400);
      assert.equal(
        (await r.json()).error,
        "Invalid request: container: expected a container name, got nothing",
      );
    });
  } finally {
    await api.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
