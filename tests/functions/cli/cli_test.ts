import assert from "node:assert/strict";
import { generateEventServices } from "../../../bench/events_eval.ts";
import { runTask, type TaskOutput } from "../../harness/task.ts";

const FIXTURE = new URL("../../fixtures/hdfs_sample.log", import.meta.url).pathname;

function cli(dataDir: string, ...args: string[]): Promise<TaskOutput> {
  return runTask("cli", { env: { TAILWISE_DATA_DIR: dataDir }, args });
}

Deno.test("cli train and score: the contract from a fresh data dir", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise_cli_" });
  try {
    await t.step("train stores a model", async () => {
      const r = await cli(dataDir, "train", "--container", "web", "--file", FIXTURE);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout);
      assert.equal(info.container, "web");
      assert.equal(info.version, 1);
      assert.equal(info.lines, 400);
      assert.equal(r.stderr, "", "no progress when stderr is not a terminal");
    });

    await t.step("score prints one JSON object per input line, in order", async () => {
      const input = `${dataDir}/input.log`;
      const lines = (await Deno.readTextFile(FIXTURE)).split("\r\n").slice(0, 20);
      lines.push("081109 999999 1 FATAL dfs.DataNode: kernel panic: disk controller on fire");
      lines.push("");
      await Deno.writeTextFile(input, lines.join("\r\n") + "\r\n");
      const r = await cli(dataDir, "score", "--container", "web", "--file", input, "--jsonl");
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(rows.length, lines.length);
      rows.forEach((row, i) => {
        assert.equal(row.line, i + 1);
        assert.equal(typeof row.score, "number");
        assert.equal(typeof row.anomaly, "boolean");
        assert.ok(Array.isArray(row.reasons));
        assert.equal(typeof row.template, "string");
        assert.ok(!row.template.includes("\r"));
      });
      assert.equal(rows[20].anomaly, true);
      assert.ok(rows[20].reasons.includes("severity"));
      assert.equal(rows.slice(0, 20).filter((r) => r.anomaly).length <= 1, true);
    });

    await t.step("score without --jsonl prints the same objects", async () => {
      const r = await cli(dataDir, "score", "--container", "web", "--file", FIXTURE);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split("\n").length, 400);
    });

    await t.step("an unknown container is a runtime error", async () => {
      const r = await cli(dataDir, "score", "--container", "nope", "--file", FIXTURE);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Unknown container "nope"/);
    });

    await t.step("a missing file is a runtime error", async () => {
      const r = await cli(dataDir, "train", "--container", "web", "--file", `${dataDir}/none`);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Cannot read file ".*none": no such file/);
    });

    await t.step("bad flags and commands are usage errors", async () => {
      for (
        const args of [
          ["score", "--bogus"],
          ["train", "--file", FIXTURE],
          ["train", "--container", "x", "--file", FIXTURE, "--trees", "zero"],
          ["frobnicate"],
          [],
        ]
      ) {
        const r = await cli(dataDir, ...args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      }
    });

    await t.step("--help works on every command", async () => {
      for (const args of [["--help"], ["train", "--help"], ["score", "--help"], ["help"]]) {
        const r = await cli(dataDir, ...args);
        assert.equal(r.code, 0);
        assert.match(r.stdout, /Usage: deno task cli/);
      }
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("cli score: a stack trace is one event with one verdict, a known one is not flagged", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise_cli_events_" });
  try {
    const [service] = generateEventServices(5, { trainEvents: 1500, testEvents: 300 });
    const trainFile = `${dataDir}/train.log`;
    await Deno.writeTextFile(trainFile, service!.train.flatMap((e) => e.lines).join("\n") + "\n");
    await t.step("train groups lines into events", async () => {
      const r = await cli(dataDir, "train", "--container", "worker", "--file", trainFile);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout);
      assert.equal(info.lines, service!.train.reduce((n, e) => n + e.lines.length, 0));
      assert.equal(info.events, service!.train.length);
    });
    await t.step("score prints one object per input line with its event's verdict", async () => {
      const known = service!.train.find((e) => e.kind === "known")!;
      const fresh = service!.test.find((e) => e.kind === "new")!;
      const normal = service!.train.find((e) => e.kind === "normal")!;
      const events = [normal, known, normal, fresh, normal];
      const input = `${dataDir}/input.log`;
      await Deno.writeTextFile(input, events.flatMap((e) => e.lines).join("\n") + "\n");
      const r = await cli(dataDir, "score", "--container", "worker", "--file", input, "--jsonl");
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(rows.length, events.reduce((n, e) => n + e.lines.length, 0));
      let line = 1;
      for (const e of events) {
        const first = rows[line - 1];
        for (let k = 0; k < e.lines.length; k++) {
          const row = rows[line - 1 + k];
          assert.equal(row.line, line + k);
          assert.equal(row.event, line);
          assert.equal(row.score, first.score);
          assert.equal(row.anomaly, first.anomaly);
        }
        assert.equal(first.anomaly, e.kind === "new", `${e.kind}: ${e.lines[0]}`);
        line += e.lines.length;
      }
    });
    await t.step("--multiline off scores every line alone", async () => {
      const input = `${dataDir}/input.log`;
      const r = await cli(
        dataDir,
        "score",
        "--container",
        "worker",
        "--file",
        input,
        "--multiline",
        "off",
      );
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      rows.forEach((row) => assert.equal(row.event, row.line));
      const bad = await cli(
        dataDir,
        "score",
        "--container",
        "worker",
        "--file",
        input,
        "--multiline",
        "([",
      );
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--multiline "\(\["/);
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
