import assert from "node:assert/strict";
import { freePort, waitFor } from "../harness/services.ts";
import { TaskProcess } from "../harness/task.ts";
import type { SqliteConnection } from "../../shared/adapters/sqlite/sqlite_database.ts";

const _SQLITE = "node:sqlite";
const LINES = 4000;
const FULL = "is on a full disk: free space on it; intake paused, nothing lost";

async function _run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

async function _avail(dir: string): Promise<number> {
  const out = await _run("df", ["-B1", "--output=avail", dir]);
  return Number(new TextDecoder().decode(out.stdout).trim().split("\n").pop());
}

/** Fills `dir`'s file system up to `leave` bytes free. */
async function _fill(path: string, leave: number): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  const f = await Deno.open(path, { write: true, create: true, append: true });
  try {
    const chunk = new Uint8Array(64 * 1024);
    for (let free = await _avail(dir); free > leave; free = await _avail(dir)) {
      await f.write(chunk.subarray(0, Math.min(chunk.length, free - leave)));
    }
  } catch (e) {
    if (!(e instanceof Error && /space/i.test(e.message))) throw e;
  } finally {
    f.close();
  }
}

/** The lines of the log store's history, read beside the running process. */
async function _stored(db: string): Promise<string[]> {
  // (node:sqlite loaded by name: the type check's @types/node predates it)
  const { DatabaseSync } = await import(_SQLITE) as {
    DatabaseSync: new (path: string, options: { readOnly: boolean }) => SqliteConnection;
  };
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return (conn.prepare("SELECT line FROM history_entries").all() as { line: string }[])
      .map((r) => r.line);
  } finally {
    conn.close();
  }
}

function _fullLines(p: TaskProcess): number {
  return p.lines.filter((l) => l.includes(FULL)).length;
}

/**
 * Issue 16 item 7: with the data dir's disk full, `deno task start` said
 * "database or disk is full" over and over, and SIGTERM did not stop it. Now:
 * one clear line, intake paused, SIGTERM stops it promptly, the lock does not
 * outlive it (a restart while still full says the same line), and once space
 * returns every line of the file is stored exactly once.
 */
Deno.test({
  name: "deno task start on a full disk: one clear line, stops on SIGTERM, recovers, loses nothing",
  ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
}, async () => {
  const root = await Deno.makeTempDir({ prefix: "tailwise-disk-full-" });
  const mnt = `${root}/mnt`;
  await Deno.mkdir(mnt);
  const mounted = await _run("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt]);
  assert.ok(mounted.success, new TextDecoder().decode(mounted.stderr));
  try {
    const file = `${root}/app.log`;
    const lines = Array.from(
      { length: LINES },
      (_, i) =>
        `INFO request ${String(i).padStart(5, "0")} served /items/${i % 37} in ${i % 91} ms`,
    );
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    const filler = `${mnt}/filler`;
    // Room to open the database and take in a little, not the whole file.
    await _fill(filler, 1024 * 1024);
    const port = freePort();
    const env = {
      TAILWISE_DATA_DIR: `${mnt}/data`,
      API_PORT: String(port),
      API_TOKEN: "disk-full-token-0123456789abcdef",
    };
    const args = ["--file", file, "--no-docker"];
    {
      await using first = await TaskProcess.start("start", { args, env });
      await waitFor(() => _fullLines(first) > 0, { timeoutMs: 20_000, what: "the full-disk line" });
      const t0 = Date.now();
      const status = await first.stop("SIGTERM");
      const stopMs = Date.now() - t0;
      assert.ok(
        stopMs < 10_000,
        `SIGTERM took ${stopMs} ms:\n${first.lines.slice(-12).join("\n")}`,
      );
      assert.equal(status.code, 0, first.lines.slice(-5).join("\n"));
      assert.equal(_fullLines(first), 1, first.lines.join("\n"));
      const noisy = first.records().filter((r) =>
        (r.level === "warn" || r.level === "error") && /full/.test(JSON.stringify(r))
      );
      assert.deepEqual(noisy, []);
    }
    // Restart while still full: the lock was released, and it says the same line.
    await using second = await TaskProcess.start("start", { args, env });
    await waitFor(() => _fullLines(second) > 0, { timeoutMs: 20_000, what: "the line again" });
    assert.ok(
      !second.lines.some((l) => /locked|Uncaught|panicked/i.test(l)),
      second.lines.join("\n"),
    );
    // Space returns: intake resumes by itself, and every line arrives once.
    await Deno.remove(filler);
    let stored: string[] = [];
    await waitFor(async () => {
      stored = await _stored(`${mnt}/data/tailwise.db`);
      return stored.length >= LINES;
    }, { timeoutMs: 25_000, intervalMs: 250, what: `${LINES} lines stored` });
    // The space probe says so on its own timer: the appends' retries may
    // have stored everything just before it looked.
    await waitFor(
      () => second.records().some((r) => String(r.msg).includes("has free space again")),
      { timeoutMs: 10_000, what: `the free-space line:\n${second.lines.slice(-10).join("\n")}` },
    );
    const status = await second.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.equal(_fullLines(second), 1, second.lines.join("\n"));
    const noisy = second.records().filter((r) =>
      (r.level === "warn" || r.level === "error") && /full/.test(JSON.stringify(r))
    );
    assert.deepEqual(noisy, []);
    stored = await _stored(`${mnt}/data/tailwise.db`);
    assert.deepEqual(stored.toSorted(), lines.toSorted());
  } finally {
    await _run("umount", ["-l", mnt]);
    await Deno.remove(root, { recursive: true });
  }
});
