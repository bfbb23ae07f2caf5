import assert from "node:assert/strict";
import { generateRateScenario } from "../../../bench/rate_eval.ts";
import { runTask, type TaskOutput } from "../../harness/task.ts";

function cli(dataDir: string, ...args: string[]): Promise<TaskOutput> {
  return runTask("cli", { env: { TAILWISE_DATA_DIR: dataDir }, args });
}

const _fmt = (l: { time: number; line: string }) =>
  new Date(l.time).toISOString().replace("Z", "123456Z") + " " + l.line;

Deno.test("cli train --timestamps and rates: one verdict per window, incidents caught", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise_cli_rates_" });
  try {
    const sc = generateRateScenario({ seed: 11, peakPerMinute: 30, startHour: 9 });
    const hist = `${dataDir}/history.log`, test = `${dataDir}/test.log`;
    await Deno.writeTextFile(hist, sc.history.map(_fmt).join("\n") + "\n");
    await Deno.writeTextFile(test, sc.test.map(_fmt).join("\n") + "\n");

    await t.step("rates without a rate model says how to train one", async () => {
      const plain = `${dataDir}/plain.log`;
      await Deno.writeTextFile(plain, sc.history.slice(0, 500).map((l) => l.line).join("\n"));
      assert.equal((await cli(dataDir, "train", "--container", "plain", "--file", plain)).code, 0);
      const r = await cli(dataDir, "rates", "--container", "plain", "--file", test, "--timestamps");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no rate model: train it with timestamped lines/);
    });

    await t.step("train --timestamps learns the rates", async () => {
      const r = await cli(dataDir, "train", "--container", "svc", "--file", hist, "--timestamps");
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout);
      assert.equal(info.lines, sc.history.length);
      assert.equal(info.rates.windowSeconds, 60);
      assert.equal(info.rates.profile, "time-of-day");
      assert.ok(info.rates.templates >= 5);
    });

    await t.step("score --timestamps strips the timestamp from the template", async () => {
      const few = `${dataDir}/few.log`;
      await Deno.writeTextFile(few, sc.test.slice(0, 5).map(_fmt).join("\n") + "\n");
      const r = await cli(dataDir, "score", "--container", "svc", "--file", few, "--timestamps");
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(rows.length, 5);
      for (const [i, row] of rows.entries()) {
        assert.ok(!row.template.includes("2026-"), row.template);
        assert.equal(row.time, new Date(sc.test[i]!.time).toISOString());
      }
    });

    await t.step("rates prints every window in order, silent ones included", async () => {
      const r = await cli(
        dataDir,
        "rates",
        "--container",
        "svc",
        "--file",
        test,
        "--timestamps",
        "--jsonl",
      );
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(rows.length, 720);
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i].start, rows[i - 1].end);
      for (const row of rows) {
        assert.equal(Date.parse(row.end) - Date.parse(row.start), 60_000);
        assert.equal(typeof row.lines, "number");
        assert.equal(typeof row.anomaly, "boolean");
        assert.ok(row.score >= 0 && row.score <= 1);
        assert.ok(Array.isArray(row.reasons) && Array.isArray(row.templates));
      }
      const inside = (row: { start: string }, i: { start: number; end: number }) =>
        Date.parse(row.start) >= i.start && Date.parse(row.start) < i.end + 120_000;
      for (const inc of sc.incidents) {
        const hit = rows.find((row) => row.anomaly && inside(row, inc));
        assert.ok(hit, `incident ${inc.kind} caught`);
        const want = {
          silence: "silence",
          drop: "rate_drop",
          flood: "rate_spike",
          warning_spike: "rate_spike",
        }[inc.kind];
        const codes = rows.filter((row) => inside(row, inc)).flatMap((row) =>
          row.reasons.map((x: { code: string }) => x.code)
        );
        assert.ok(codes.includes(want), `${inc.kind}: ${codes.join(",")}`);
      }
      const silent = rows.filter((row) => row.lines === 0 && row.anomaly);
      assert.ok(silent.length >= 10, "the silent windows are printed and flagged");
      for (const s of silent) {
        const reason = s.reasons.find((x: { code: string }) => x.code === "silence");
        assert.ok(reason.expected > 1 && reason.observed === 0);
      }
      const falseAlarms = rows.filter((row) =>
        row.anomaly && !sc.incidents.some((i) => inside(row, i))
      );
      assert.ok(falseAlarms.length <= 1, JSON.stringify(falseAlarms));
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
