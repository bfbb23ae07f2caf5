import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteDatabase } from "../../../../shared/adapters/sqlite/sqlite_database.ts";
import { SqliteLogStore } from "../../../../shared/adapters/sqlite/sqlite_log_store.ts";
import { SqliteLogStream } from "../../../../shared/adapters/sqlite/sqlite_log_stream.ts";
import { entryToFields, type LogEntry } from "../../../../shared/ports/log_entry.ts";
import { StreamConsumer } from "../../../../shared/runtime/stream_consumer.ts";
import { ingestBatch } from "../../../../functions/ingest/ingest.ts";
import { freePort, waitFor } from "../../../harness/services.ts";
import { TaskProcess } from "../../../harness/task.ts";

Deno.test("deno task start: a long non-ASCII file name stalls no history, a 1,024-byte name trains without a 500", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-names-" });
  const logs = await Deno.makeTempDir({ prefix: "tailwise-names-logs-" });
  const long = join(logs, `${"日".repeat(80)}.log`); // 244 bytes: a file name may be that long
  const plain = join(logs, "plain.log");
  const lines = (tag: string) =>
    Array.from({ length: 50 }, (_, i) => `${tag} GET /item/${i} 200 ${i}ms`).join("\n") + "\n";
  await Deno.writeTextFile(long, lines("long"));
  await Deno.writeTextFile(plain, lines("plain"));
  const port = freePort();
  const child = await TaskProcess.start("start", {
    env: { TAILWISE_DATA_DIR: dataDir, API_PORT: String(port), TRAIN_MIN_LINES: "100000" },
    args: ["--no-docker", "--file", long, "--file", plain],
  });
  try {
    await waitFor(() => child.text().includes("tailwise is running"), {
      timeoutMs: 30_000,
      what: "start",
    });
    // Read the history beside the running process (not its owner: SQLite shares the file).
    await using db = await SqliteDatabase.open(dataDir);
    const store = new SqliteLogStore(db, { retentionMs: 0 });
    const longName = `file:${"日".repeat(80)}.log`;
    await waitFor(async () => {
      const counts = await store.containers({ since: new Date(0) });
      const n = (name: string) => counts.find((c) => c.container === name)?.count ?? 0;
      return n(longName) === 50 && n("file:plain.log") === 50;
    }, { timeoutMs: 30_000, what: "the history of both files" });
    const first: string[] = [];
    for await (const e of store.history(longName, { limit: 1 })) first.push(e.line);
    assert.deepEqual(first, ["long GET /item/0 200 0ms"]);

    const token = (await Deno.readTextFile(join(dataDir, "api_token"))).trim();
    const name = "n".repeat(1024);
    const res = await fetch(`http://127.0.0.1:${port}/train/${name}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    const body = await res.json();
    assert.notEqual(res.status, 500, JSON.stringify(body));
    assert.ok(res.status === 200 || res.status === 404, `status ${res.status}`);
    assert.doesNotMatch(child.text(), /File name too long/);
  } finally {
    await child.stop();
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(logs, { recursive: true });
  }
});

Deno.test("ingest on SQLite: an entry that can never be stored goes to the dead letter, the rest are stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-names-" });
  try {
    await using db = await SqliteDatabase.open(dir, { owner: true });
    const stream = new SqliteLogStream(db);
    const store = new SqliteLogStore(db, { retentionMs: 0 });
    const ts = new Date(Date.now() - 60_000).toISOString();
    const entry = (name: string, line: string): LogEntry => ({
      containerId: "c",
      containerName: name,
      image: "i",
      stream: "stdout",
      ts,
      seq: 0,
      line,
    });
    await stream.append(
      "logs",
      [
        entry("web", "before"),
        entry("x".repeat(1025), "never storable"),
        entry(`file:${"日".repeat(80)}`, "long but fine"),
        { ...entry("web", "after"), seq: 1 },
      ].map(entryToFields),
    );
    const consumer = new StreamConsumer(
      stream,
      (batch, context) => ingestBatch(batch, { store }, context),
      { stream: "logs", group: "ingest", consumer: "i", deadLetterStream: "dead", blockMs: 50 },
    );
    await stream.createGroup("logs", "ingest");
    const ctl = new AbortController();
    const running = consumer.run(ctl.signal);
    try {
      await waitFor(async () => {
        const info = await stream.groupInfo("logs", "ingest");
        return info.lag === 0 && info.pending === 0;
      }, { what: "every entry handled" });
    } finally {
      ctl.abort();
      await running;
    }
    const dead = await stream.range("dead");
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.fields.l, "never storable");
    assert.match(JSON.stringify(dead[0]!.fields), /1025 bytes; expected at most 1024/);
    const web: string[] = [];
    for await (const e of store.history("web")) web.push(e.line);
    assert.deepEqual(web.sort(), ["after", "before"]);
    const counts = await store.containers({ since: new Date(0) });
    assert.ok(counts.some((c) => c.container === `file:${"日".repeat(80)}` && c.count === 1));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
