import assert from "node:assert/strict";
import { freePort, waitFor } from "../../../harness/services.ts";
import { TaskProcess } from "../../../harness/task.ts";

// The tasks run with their own flags (deno.json): no --allow-run, so no pid can be probed.
function _spawn(task: string, dataDir: string, args: string[], port = freePort()) {
  return TaskProcess.start(task, {
    env: {
      TAILWISE_DATA_DIR: dataDir,
      API_PORT: String(port),
      DOCKER_HOST: `unix://${dataDir}/no-docker.sock`,
    },
    args,
  });
}

Deno.test("data dir lock: a second deno task start refuses, a stray collect --help leaves the lock", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-lock-" });
  const first = await _spawn("start", dataDir, ["--no-docker"]);
  try {
    await waitFor(() => first.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "the first start",
    });
    const second = await _spawn("start", dataDir, ["--no-docker"]);
    assert.equal((await second.status).code, 2);
    const refusal = second.text().trim().split("\n").filter((l) =>
      l.includes("Cannot use data dir")
    );
    assert.equal(refusal.length, 1, second.text());
    assert.match(refusal[0]!, new RegExp(`tailwise process ${first.pid} .*is using it`));
    assert.match(refusal[0]!, /stop that one, or set TAILWISE_DATA_DIR to another dir/);
    assert.doesNotMatch(second.text(), /at .*\.ts:\d+/, "no stack trace");

    // Whether it prints its usage or is refused, it must not take the lock away.
    const stray = await _spawn("collect", dataDir, ["--help"]);
    await stray.status;

    const api = await _spawn("api", dataDir, []);
    assert.equal((await api.status).code, 2);
    assert.match(api.text(), /is using it/);
    assert.doesNotMatch(api.text(), /at .*\.ts:\d+/, "no stack trace");

    const third = await _spawn("start", dataDir, ["--no-docker"]);
    assert.equal((await third.status).code, 2, "the lock still holds after the stray collect");
    assert.match(third.text(), /is using it/);
  } finally {
    await first.stop();
  }
  // The lock went with its owner: the next start runs.
  const next = await _spawn("start", dataDir, ["--no-docker"]);
  try {
    await waitFor(() => next.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "a start after the first stopped",
    });
  } finally {
    await next.stop("SIGKILL");
  }
  // A SIGKILLed owner leaves no stale lock either.
  const after = await _spawn("start", dataDir, ["--no-docker"]);
  try {
    await waitFor(() => after.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "a start after a SIGKILL",
    });
  } finally {
    assert.equal((await after.stop()).code, 0);
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task start on a damaged database says which file and what to do, in one line", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-lock-" });
  try {
    await Deno.writeTextFile(`${dataDir}/tailwise.db`, "this is not a database, ".repeat(400));
    const run = await _spawn("start", dataDir, ["--no-docker"]);
    assert.equal((await run.status).code, 2);
    const lines = run.text().trim().split("\n").filter((l) => l.includes("Cannot open"));
    assert.equal(lines.length, 1, run.text());
    assert.match(lines[0]!, /tailwise\.db: file is not a database/);
    assert.match(lines[0]!, /move the file aside/);
    assert.doesNotMatch(run.text(), /at .*\.ts:\d+/, "no stack trace");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
