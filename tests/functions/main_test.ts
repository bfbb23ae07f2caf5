import assert from "node:assert/strict";
import { SqliteLogStore } from "../../shared/adapters/sqlite/sqlite_log_store.ts";
import { freePort, waitFor } from "../harness/services.ts";
import { runTask, TaskProcess } from "../harness/task.ts";

function _start(dataDir: string, port: number, args: string[]): Promise<TaskProcess> {
  return TaskProcess.start("start", {
    env: {
      TAILWISE_DATA_DIR: dataDir,
      API_PORT: String(port),
      DOCKER_HOST: `unix://${dataDir}/no-docker.sock`,
      TRAIN_MIN_LINES: "500",
    },
    args,
  });
}

async function _get(port: number, token: string, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${path}: ${res.status}`);
  }
  return await res.json();
}

Deno.test("deno task start --demo: a live anomaly within a minute, kept across a restart", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-start-" });
  const port = freePort();
  let run = await _start(dataDir, port, ["--demo"]);
  let token = "";
  let firstAnomaly: Record<string, unknown> | undefined;
  try {
    await t.step("without a Docker socket it says so in one clear line", async () => {
      await waitFor(() => run.text().includes("tailwise is running"), {
        timeoutMs: 30_000,
        what: "start",
      });
      const lines = run.text().split("\n").filter((l) => l.includes("no Docker engine"));
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, /--file PATH, or try --demo/);
      token = (await Deno.readTextFile(`${dataDir}/api_token`)).trim();
    });
    await t.step("models for the demo containers, then a scored anomaly", async () => {
      await waitFor(async () => {
        const { anomalies } = await _get(port, token, "/anomalies?limit=50") as {
          anomalies: Record<string, unknown>[];
        };
        firstAnomaly = anomalies.find((a) => Number(a.modelVersion) >= 1);
        return firstAnomaly !== undefined;
      }, { timeoutMs: 90_000, intervalMs: 500, what: "an anomaly scored by a trained model" });
      assert.ok(Number(firstAnomaly!.score) > Number(firstAnomaly!.threshold));
      assert.ok((firstAnomaly!.reasons as string[]).length > 0);
      const { models } = await _get(port, token, "/models") as { models: unknown[] };
      assert.equal(models.length, 3);
    });
    await t.step("SIGTERM stops it cleanly", async () => {
      assert.equal((await run.stop()).code, 0);
      assert.match(run.text(), /"msg":"stopped"/);
    });
    await t.step("history, models and anomalies survive the restart", async () => {
      {
        await using store = await SqliteLogStore.open(dataDir);
        let n = 0;
        for await (const _ of store.history("demo-web")) n++;
        assert.ok(n >= 1500, `demo-web history has ${n} lines`);
      }
      run = await _start(dataDir, port, ["--no-docker"]);
      await waitFor(() => run.text().includes("tailwise is running"), {
        timeoutMs: 30_000,
        what: "restart",
      });
      const { models } = await _get(port, token, "/models") as { models: unknown[] };
      assert.equal(models.length, 3);
      const { anomalies } = await _get(port, token, "/anomalies?limit=1000") as {
        anomalies: Record<string, unknown>[];
      };
      assert.ok(anomalies.some((a) => a.id === firstAnomaly!.id));
      assert.equal((await run.stop()).code, 0);
    });
  } finally {
    await run.stop("SIGKILL");
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task start refuses a --file that does not exist, naming it", async () => {
  const dataDir = await Deno.makeTempDir();
  const out = await runTask("start", {
    env: { TAILWISE_DATA_DIR: dataDir },
    args: ["--file", "/nope/app.log"],
  });
  await Deno.remove(dataDir, { recursive: true });
  assert.equal(out.code, 2);
  assert.match(out.stderr, /Cannot follow --file "\/nope\/app.log"/);
});
