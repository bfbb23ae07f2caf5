import assert from "node:assert/strict";
import { TaskProcess } from "../../harness/task.ts";

/**
 * Issue 16 item 7: with the api's port taken, `deno task start` and
 * `deno task api` (run with their own permissions) say so in one line and
 * what to do, and exit with 2, instead of an uncaught error about a closed
 * stream.
 */
Deno.test("deno task start / api: a busy API_PORT is one clear line and exit code 2", async (t) => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((listener.addr as Deno.NetAddr).port);
  for (const task of ["start", "api"]) {
    await t.step(task, async () => {
      const dir = await Deno.makeTempDir({ prefix: "tailwise-addr-" });
      try {
        const p = await TaskProcess.start(task, {
          args: task === "start" ? ["--no-docker"] : [],
          env: {
            TAILWISE_DATA_DIR: dir,
            API_PORT: port,
            API_TOKEN: "addr-in-use-token-0123456789",
          },
        });
        const status = await p.status;
        assert.equal(status.code, 2, p.lines.join("\n"));
        const plain = p.lines.filter((l) => !l.startsWith("{"));
        const said = plain.filter((l) => /address is in use/.test(l));
        assert.equal(said.length, 1, plain.join("\n"));
        assert.match(said[0]!, new RegExp(`127\\.0\\.0\\.1:${port}.*Set API_PORT`));
        assert.ok(!p.lines.some((l) => /Uncaught|is closed/.test(l)), p.lines.join("\n"));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});
