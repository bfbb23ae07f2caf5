import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DataDirError,
  SqliteDatabase,
} from "../../../../shared/adapters/sqlite/sqlite_database.ts";
import { SqliteFeedbackStore } from "../../../../shared/adapters/sqlite/sqlite_feedback_store.ts";
import { SqliteLogStore } from "../../../../shared/adapters/sqlite/sqlite_log_store.ts";
import { SqliteLogStream } from "../../../../shared/adapters/sqlite/sqlite_log_stream.ts";
import { SqliteModelRegistry } from "../../../../shared/adapters/sqlite/sqlite_model_registry.ts";
import { modelChecksum } from "../../../../shared/ports/model_registry.ts";
import type { LogEntry } from "../../../../shared/ports/log_entry.ts";
import { freePort, waitFor } from "../../../harness/services.ts";
import { TaskProcess } from "../../../harness/task.ts";

const FUTURE = Date.now() + 86_400_000;
const HOUR = "2026-12-01T10";

/** Writes a data dir as the file-based adapters before SQLite left it. */
async function _writeOldDataDir(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "streams"), { recursive: true });
  const journal = [
    ["g", "logs", "ingest"],
    ["g", "logs", "score"],
    [
      "a",
      "logs",
      [["1000-0", { l: "one" }], ["1000-1", { l: "two \u0000" }], [
        "1001-0",
        { l: "three" },
      ]],
      0,
      { "collect:ckpt": "c3" },
      ["collect:seq", 3, FUTURE],
    ],
    ["c", "logs", "ingest", "ing-1"],
    ["d", "logs", "ingest", "ing-1", ["1000-0", "1000-1"], 1500],
    ["k", "logs", "ingest", ["1000-0"]],
    ["d", "logs", "score", "sc-1", ["1000-0", "1000-1", "1001-0"], 1600],
    ["k", "logs", "score", ["1000-0", "1000-1", "1001-0"]],
    ["o", "tailwise:anomalies", [["2000-0", { a: "x" }, "once:1"]], 0, FUTURE],
  ].map((r) => JSON.stringify(r)).join("\n") + "\n";
  // A torn last line: an append that never resolved.
  await Deno.writeTextFile(
    join(dir, "streams", "journal-0.jsonl"),
    journal + '["a","logs",[["9999-0",{"l":"tor',
  );
  const cjk = "日本語.log";
  const encoded = [...new TextEncoder().encode(`file:${cjk}`)]
    .map((b) =>
      /[A-Za-z0-9_-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, "0")}`
    )
    .join("");
  for (const name of ["web-1", encoded]) {
    await Deno.mkdir(join(dir, "history", name), { recursive: true });
  }
  await Deno.writeTextFile(
    join(dir, "history", "web-1", `${HOUR}.jsonl`),
    [
      [`${HOUR}:00:00.000000001Z`, 0, "stdout", "hello", 0, 0, ["cid1", "img:1", "svc", "", ""]],
      [`${HOUR}:00:01.5Z`, 0, "stderr", "a\ufffd", btoa("a\xff"), 1],
    ].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  await Deno.writeTextFile(
    join(dir, "history", encoded, `${HOUR}.jsonl`),
    JSON.stringify([`${HOUR}:30:00Z`, 0, "stdout", "from a file", 0, 0, ["f", "", "", "", ""]]) +
      "\n",
  );
  // A service key's history, with the replica's container name in the metadata.
  await Deno.mkdir(join(dir, "history", "shop_web"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "history", "shop_web", `${HOUR}.jsonl`),
    JSON.stringify([`${HOUR}:40:00Z`, 0, "stdout", "replica", 0, 0, [
      "r1",
      "shop:2",
      "shop_web",
      "aaa",
      "n1",
      "shop_web.1.aaa",
    ]]) + "\n",
  );
  await Deno.mkdir(join(dir, "models", "abc"), { recursive: true });
  const blobs = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5, 6, 7])];
  await Deno.writeFile(join(dir, "models", "abc", "2.bin"), blobs[0]!);
  await Deno.writeFile(join(dir, "models", "abc", "3.bin"), blobs[1]!);
  const version = async (v: number, blob: Uint8Array, extra: Record<string, unknown>) => ({
    version: v,
    trainedAt: "2026-12-01T09:00:00.000Z",
    lines: 100 * v,
    threshold: 0.5,
    checksum: await modelChecksum(blob),
    size: blob.length,
    ...extra,
  });
  await Deno.writeTextFile(
    join(dir, "models", "index.json"),
    JSON.stringify({
      format: 1,
      containers: [{
        name: "web-1",
        dir: "abc",
        seq: 3,
        current: 2,
        versions: [
          await version(2, blobs[0]!, { promotedAt: "2026-12-01T09:01:00.000Z" }),
          await version(3, blobs[1]!, {
            promotedAt: "2026-12-01T09:02:00.000Z",
            rolledBackAt: "2026-12-01T09:03:00.000Z",
          }),
        ],
      }],
    }),
  );
  await Deno.writeTextFile(
    join(dir, "feedback.json"),
    JSON.stringify({
      version: 1,
      containers: {
        "web-1": {
          items: [{
            anomalyId: "2000-0",
            container: "web-1",
            templateId: "t1",
            line: "odd line",
            label: "normal",
            at: 1000,
          }],
          suppress: { t1: FUTURE },
        },
      },
    }),
  );
  // The old pid lock file of a process long gone.
  await Deno.writeTextFile(join(dir, "tailwise.lock"), JSON.stringify({ pid: 999999 }));
}

async function _history(store: SqliteLogStore, container: string): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of store.history(container)) out.push(e);
  return out;
}

Deno.test("an old-format data dir is migrated at its owner's first open, nothing lost", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-migrate-" });
  try {
    await _writeOldDataDir(dir);
    const told: string[] = [];
    {
      await using db = await SqliteDatabase.open(dir, { owner: true, log: (m) => told.push(m) });
      assert.equal(told.length, 1);
      assert.match(told[0]!, /migrated data dir .*logs: 3, tailwise:anomalies: 1.*1 pending/);
      assert.match(told[0]!, /4 history entries, 2 model versions, 1 feedback/);
      const stream = new SqliteLogStream(db);
      assert.deepEqual((await stream.range("logs")).map((m) => [m.id, m.fields.l]), [
        ["1000-0", "one"],
        ["1000-1", "two \u0000"],
        ["1001-0", "three"],
      ]);
      assert.equal(await stream.getState("collect:ckpt"), "c3");
      assert.equal(await stream.getState("collect:seq"), "3");
      // The unacked entry is delivered again, with its count; the group goes on from its place.
      const again = await stream.readPending("logs", "ingest", "ing-1", { count: 10 });
      assert.deepEqual(again.map((m) => [m.id, m.deliveries]), [["1000-1", 2]]);
      assert.deepEqual(
        (await stream.readNew("logs", "ingest", "ing-1", { count: 10 })).map((m) => m.id),
        ["1001-0"],
      );
      assert.deepEqual(await stream.groupInfo("logs", "score"), {
        pending: 0,
        lag: 0,
        consumers: 1,
      });
      assert.deepEqual(
        await stream.appendOnce("tailwise:anomalies", [{ key: "once:1", fields: {} }]),
        [
          null,
        ],
      );
      const later = await stream.append("logs", [{ l: "four" }]);
      assert.ok(Number(later[0]!.split("-")[0]) > 1001, "ids go on after the old ones");

      const store = new SqliteLogStore(db, { retentionMs: 0 });
      const web = await _history(store, "web-1");
      assert.deepEqual(web.map((e) => [e.ts, e.line, e.stream, e.service, e.truncated]), [
        [`${HOUR}:00:00.000000001Z`, "hello", "stdout", "svc", undefined],
        [`${HOUR}:00:01.5Z`, "a\ufffd", "stderr", "svc", true],
      ]);
      assert.deepEqual(web[1]!.raw, new Uint8Array([0x61, 0xff]));
      const file = await _history(store, "file:日本語.log");
      assert.deepEqual(file.map((e) => e.line), ["from a file"]);
      const shop = await _history(store, "shop_web");
      assert.deepEqual(shop.map((e) => [e.containerName, e.key, e.task, e.line]), [
        ["shop_web.1.aaa", "shop_web", "aaa", "replica"],
      ]);

      const registry = new SqliteModelRegistry(db);
      assert.equal(await registry.currentVersion("web-1"), 2);
      const { blob, meta } = await registry.get("web-1", 3);
      assert.deepEqual(blob, new Uint8Array([4, 5, 6, 7]));
      assert.equal(meta.rolledBackAt, "2026-12-01T09:03:00.000Z");
      assert.equal(meta.status, "retired");
      const next = await registry.put("web-1", new Uint8Array([9]), { lines: 1, threshold: 0.1 });
      assert.equal(next.version, 4, "version numbers go on");

      const feedback = new SqliteFeedbackStore(db);
      assert.equal((await feedback.get("web-1", "2000-0"))?.line, "odd line");
      assert.equal(await feedback.isSuppressed("web-1", "t1"), true);
    }
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    const moved = left.find((n) => n.startsWith("pre-sqlite-"));
    assert.ok(moved, `old files moved aside: ${left}`);
    assert.ok(!left.includes("streams") && !left.includes("history"));
    assert.deepEqual(
      [...Deno.readDirSync(join(dir, moved))].map((e) => e.name).sort(),
      ["feedback.json", "history", "models", "streams"],
    );
    assert.match(told[0]!, new RegExp(moved));
    // A second start has nothing to migrate and keeps what was imported.
    await using db = await SqliteDatabase.open(dir, { owner: true, log: (m) => told.push(m) });
    assert.equal(told.length, 1);
    assert.equal(await new SqliteLogStream(db).length("logs"), 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an old data dir that cannot be read is refused, naming the file and what to do, unchanged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-migrate-" });
  try {
    await _writeOldDataDir(dir);
    const path = join(dir, "history", "web-1", `${HOUR}.jsonl`);
    await Deno.writeTextFile(path, "not json\n", { append: true });
    await assert.rejects(
      () => SqliteDatabase.open(dir, { owner: true, log: () => {} }),
      (e: unknown) =>
        e instanceof DataDirError && e.message.includes(path) &&
        /line 3 is not a JSON array/.test(e.message) && /Nothing was changed: move/.test(e.message),
    );
    const left = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.ok(left.includes("streams") && left.includes("history"), "the old files are kept");
    // Once the bad file is moved out, the rest migrates.
    await Deno.remove(path);
    await using db = await SqliteDatabase.open(dir, { owner: true, log: () => {} });
    assert.equal(await new SqliteLogStream(db).length("logs"), 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a process that does not own the data dir refuses an unmigrated one, saying what to do", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-migrate-" });
  try {
    await _writeOldDataDir(dir);
    await assert.rejects(
      () => SqliteModelRegistry.open(dir),
      (e: unknown) =>
        e instanceof DataDirError && /run `deno task start` once on it/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start migrates an old-format data dir at its first start and serves what it held", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-migrate-" });
  const port = freePort();
  await _writeOldDataDir(dataDir);
  const child = await TaskProcess.start("start", {
    env: { TAILWISE_DATA_DIR: dataDir, API_PORT: String(port) },
    args: ["--no-docker"],
  });
  try {
    await waitFor(() => child.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "start",
    });
    assert.match(child.text(), /migrated data dir .* 2 model versions/);
    const token = (await Deno.readTextFile(join(dataDir, "api_token"))).trim();
    const res = await fetch(`http://127.0.0.1:${port}/models`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /"web-1"/);
  } finally {
    assert.equal((await child.stop()).code, 0);
    await Deno.remove(dataDir, { recursive: true });
  }
});
