import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, waitFor } from "../../../harness/services.ts";

// The tasks' own flags (deno.json), never -A for the code under test.
const START = ["--allow-env", "--allow-net", "--allow-read", "--allow-sys", "--allow-write"];
const CLI = ["--allow-env", "--allow-net", "--allow-read", "--allow-sys", "--allow-write"];
const ROOT = new URL("../../../../", import.meta.url).pathname;
const FIXTURE = new URL("../../../fixtures/hdfs_sample.log", import.meta.url).pathname;

Deno.test("deno task cli trains into a data dir that deno task start is using, and start serves the model", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-shared-" });
  const port = freePort();
  const start = new Deno.Command(Deno.execPath(), {
    args: ["run", ...START, "functions/main.ts", "--no-docker"],
    cwd: ROOT,
    env: { TAILWISE_DATA_DIR: dataDir, API_PORT: String(port) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out: string[] = [];
  const done = Promise.all([start.stdout, start.stderr].map(async (s) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) out.push(chunk);
  }));
  try {
    await waitFor(() => out.join("").includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "start",
    });
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...CLI,
        "functions/cli/main.ts",
        "train",
        "--container",
        "hdfs",
        "--file",
        FIXTURE,
      ],
      cwd: ROOT,
      env: { TAILWISE_DATA_DIR: dataDir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
    assert.equal(JSON.parse(new TextDecoder().decode(cli.stdout)).version, 1);
    const token = (await Deno.readTextFile(join(dataDir, "api_token"))).trim();
    await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/models`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = await res.json() as { models: { container: string }[] };
      return res.ok && body.models.some((m) => m.container === "hdfs");
    }, { timeoutMs: 15_000, what: "the CLI's model in the running api" });
  } finally {
    start.kill("SIGTERM");
    assert.equal((await start.status).code, 0);
    await done;
    await Deno.remove(dataDir, { recursive: true });
  }
});
