import assert from "node:assert/strict";
import { SqliteLogStream } from "../../../../shared/adapters/sqlite/sqlite_log_stream.ts";
import { waitFor } from "../../../harness/services.ts";

// The flags of `deno task start` (deno.json), never -A for the code under test.
const START_FLAGS = ["--allow-env", "--allow-net", "--allow-read", "--allow-sys", "--allow-write"];

Deno.test("SqliteLogStream: SIGKILL during appends and acks loses no acknowledged entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-crash-" });
  const appended: string[] = [];
  const acked = new Set<string>();
  try {
    for (let round = 0; round < 3; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...START_FLAGS, new URL("./crash_writer.ts", import.meta.url).pathname, dir],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines: string[] = [];
      let buffer = "";
      const reading = (async () => {
        for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
          buffer += chunk;
          const parts = buffer.split("\n");
          buffer = parts.pop()!;
          lines.push(...parts);
        }
      })();
      // Kill it at a different point each round, while it appends and acks.
      const appends = 40 + round * 37;
      await waitFor(() => lines.filter((l) => l.startsWith("A ")).length >= appends, {
        timeoutMs: 30_000,
        what: `${appends} appends`,
      });
      child.kill("SIGKILL");
      await child.status;
      await reading;
      let checkpoint = -1;
      for (const l of lines) {
        const [kind, ...rest] = l.split(" ");
        if (kind === "A") {
          const [first, n, ckpt] = rest as [string, string, string];
          const [ms, seq] = first.split("-").map(Number) as [number, number];
          for (let i = 0; i < Number(n); i++) appended.push(`${ms}-${seq + i}`);
          checkpoint = Number(ckpt);
        } else if (kind === "K") {
          for (const id of rest) acked.add(id);
        }
      }
      await using stream = await SqliteLogStream.open(dir);
      const stored = new Set((await stream.range("logs")).map((m) => m.id));
      for (const id of appended) assert.ok(stored.has(id), `appended entry ${id} is kept`);
      assert.ok(Number(await stream.getState("ckpt")) >= checkpoint, "the checkpoint kept");
      // Every stored entry is acked, pending or not yet delivered: none is lost to the group.
      const pending = new Set<string>();
      for (;;) {
        const got = await stream.readPending("logs", "g", "c", { count: 10_000 });
        if (got.every((m) => pending.has(m.id))) break;
        for (const m of got) pending.add(m.id);
      }
      for (const id of acked) assert.ok(!pending.has(id), `acked ${id} stays acked`);
      const info = await stream.groupInfo("logs", "g");
      const delivered = stored.size - info.lag!;
      const ackedStored = [...stored].filter((id) => acked.has(id)).length;
      assert.ok(
        ackedStored + pending.size >= delivered - 40 * (round + 1),
        `delivered ${delivered}: acked ${ackedStored} + pending ${pending.size} (at most one ` +
          "batch per kill acked without its line printed)",
      );
      assert.equal(stored.size >= appended.length, true);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
