import assert from "node:assert/strict";
import { TaskProcess } from "../harness/task.ts";

/**
 * Issue 16 item 10: `--help` on every function task, run with the task's
 * own permissions and no settings at all, prints the usage and the settings
 * it reads and exits 0 without starting.
 */
Deno.test("deno task collect|ingest|score|train|api --help prints usage and settings, starts nothing", async (t) => {
  const config = await Deno.readTextFile(
    new URL("../../shared/runtime/config.ts", import.meta.url),
  );
  for (const task of ["collect", "ingest", "score", "train", "api"]) {
    await t.step(task, async () => {
      const p = await TaskProcess.start(task, { args: ["--help"] });
      const status = await p.status;
      assert.equal(status.code, 0, p.lines.join("\n"));
      assert.match(p.stdout[0] ?? "", new RegExp(`^Usage: deno task ${task}\\b`));
      const text = p.stdout.join("\n");
      const names =
        text.slice(text.indexOf("\n", text.indexOf("Settings"))).match(/\b[A-Z][A-Z0-9_]{3,}\b/g) ??
          [];
      assert.ok(names.length >= 8, text);
      for (const name of names) {
        assert.ok(
          config.includes(`"${name}"`),
          `${task} --help lists ${name}, which config.ts never reads`,
        );
      }
      assert.deepEqual(p.records().filter((r) => r.msg === "starting"), []);
    });
  }
});
