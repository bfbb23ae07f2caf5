import assert from "node:assert/strict";
import { freePort, waitFor } from "../../../harness/services.ts";

// The tasks' own flags (deno.json): no --allow-run, so no pid can be probed.
const FLAGS = {
  start: ["--allow-env", "--allow-net", "--allow-read", "--allow-sys", "--allow-write"],
  collect: ["--allow-env", "--allow-net", "--allow-read", "--allow-sys", "--allow-write"],
  api: ["--allow-env", "--allow-net", "--allow-read", "--allow-sys", "--allow-write"],
};
const MAINS = {
  start: "functions/main.ts",
  collect: "functions/collect/main.ts",
  api: "functions/api/main.ts",
};
const ROOT = new URL("../../../../", import.meta.url).pathname;

function _spawn(task: keyof typeof FLAGS, dataDir: string, args: string[], port = freePort()) {
  const main = MAINS[task];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS[task], main, ...args],
    cwd: ROOT,
    env: {
      TAILWISE_DATA_DIR: dataDir,
      API_PORT: String(port),
      DOCKER_HOST: `unix://${dataDir}/no-docker.sock`,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out: string[] = [];
  const done = Promise.all([child.stdout, child.stderr].map(async (s) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) out.push(chunk);
  }));
  return {
    child,
    text: () => out.join(""),
    async exit(): Promise<number> {
      const { code } = await child.status;
      await done;
      return code;
    },
  };
}

Deno.test("data dir lock: a second deno task start refuses, a stray collect --help leaves the lock", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-lock-" });
  const first = _spawn("start", dataDir, ["--no-docker"]);
  try {
    await waitFor(() => first.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "the first start",
    });
    const second = _spawn("start", dataDir, ["--no-docker"]);
    assert.equal(await second.exit(), 2);
    const refusal = second.text().trim().split("\n").filter((l) =>
      l.includes("Cannot use data dir")
    );
    assert.equal(refusal.length, 1, second.text());
    assert.match(refusal[0]!, new RegExp(`tailwise process ${first.child.pid} .*is using it`));
    assert.match(refusal[0]!, /stop that one, or set TAILWISE_DATA_DIR to another dir/);
    assert.doesNotMatch(second.text(), /at .*\.ts:\d+/, "no stack trace");

    // Whether it prints its usage or is refused, it must not take the lock away.
    const stray = _spawn("collect", dataDir, ["--help"]);
    await stray.exit();

    const api = _spawn("api", dataDir, []);
    assert.equal(await api.exit(), 2);
    assert.match(api.text(), /is using it/);
    assert.doesNotMatch(api.text(), /at .*\.ts:\d+/, "no stack trace");

    const third = _spawn("start", dataDir, ["--no-docker"]);
    assert.equal(await third.exit(), 2, "the lock still holds after the stray collect");
    assert.match(third.text(), /is using it/);
  } finally {
    first.child.kill("SIGTERM");
    await first.exit();
  }
  // The lock went with its owner: the next start runs.
  const next = _spawn("start", dataDir, ["--no-docker"]);
  try {
    await waitFor(() => next.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "a start after the first stopped",
    });
  } finally {
    next.child.kill("SIGKILL");
    await next.exit();
  }
  // A SIGKILLed owner leaves no stale lock either.
  const after = _spawn("start", dataDir, ["--no-docker"]);
  try {
    await waitFor(() => after.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "a start after a SIGKILL",
    });
  } finally {
    after.child.kill("SIGTERM");
    assert.equal(await after.exit(), 0);
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task start on a damaged database says which file and what to do, in one line", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-lock-" });
  try {
    await Deno.writeTextFile(`${dataDir}/tailwise.db`, "this is not a database, ".repeat(400));
    const run = _spawn("start", dataDir, ["--no-docker"]);
    assert.equal(await run.exit(), 2);
    const lines = run.text().trim().split("\n").filter((l) => l.includes("Cannot open"));
    assert.equal(lines.length, 1, run.text());
    assert.match(lines[0]!, /tailwise\.db: file is not a database/);
    assert.match(lines[0]!, /move the file aside/);
    assert.doesNotMatch(run.text(), /at .*\.ts:\d+/, "no stack trace");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
