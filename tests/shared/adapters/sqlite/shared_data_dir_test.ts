import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, waitFor } from "../../../harness/services.ts";
import { runTask, TaskProcess } from "../../../harness/task.ts";

const FIXTURE = new URL("../../../fixtures/hdfs_sample.log", import.meta.url).pathname;

Deno.test("deno task cli trains into a data dir that deno task start is using, and start serves the model", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-shared-" });
  const port = freePort();
  const start = await TaskProcess.start("start", {
    env: { TAILWISE_DATA_DIR: dataDir, API_PORT: String(port) },
    args: ["--no-docker"],
  });
  try {
    await waitFor(() => start.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "start",
    });
    const cli = await runTask("cli", {
      env: { TAILWISE_DATA_DIR: dataDir },
      args: ["train", "--container", "hdfs", "--file", FIXTURE],
    });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).version, 1);
    const token = (await Deno.readTextFile(join(dataDir, "api_token"))).trim();
    await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/models`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = await res.json() as { models: { container: string }[] };
      return res.ok && body.models.some((m) => m.container === "hdfs");
    }, { timeoutMs: 15_000, what: "the CLI's model in the running api" });
  } finally {
    assert.equal((await start.stop()).code, 0);
    await Deno.remove(dataDir, { recursive: true });
  }
});
