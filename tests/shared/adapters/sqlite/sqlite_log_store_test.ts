import assert from "node:assert/strict";
import { SqliteLogStore } from "../../../../shared/adapters/sqlite/sqlite_log_store.ts";
import type { LogEntry } from "../../../../shared/ports/log_entry.ts";
import { logStoreConformance } from "../../ports/log_store_conformance.ts";

/** A store in a fresh temp dir that is removed on dispose. */
async function _openTemp(): Promise<SqliteLogStore> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-history-" });
  const store = await SqliteLogStore.open(dir, { retentionMs: 0, pageSize: 1000 });
  await store.prepare();
  return new Proxy(store, {
    get(target, prop) {
      if (prop === Symbol.asyncDispose) {
        return async () => {
          await target[Symbol.asyncDispose]();
          await Deno.remove(dir, { recursive: true });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

logStoreConformance("SqliteLogStore", _openTemp);

async function _withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-history-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function _entry(ms: number, line: string, more: Partial<LogEntry> = {}): LogEntry {
  return {
    containerId: "c1",
    containerName: "web-1",
    image: "nginx",
    stream: "stdout",
    ts: new Date(ms).toISOString(),
    seq: 0,
    line,
    ...more,
  };
}

async function _lines(store: SqliteLogStore, container = "web-1"): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.history(container)) out.push(e.line);
  return out;
}

Deno.test("SqliteLogStore.write() after a reopen still drops replayed entries", async () => {
  await _withDir(async (dir) => {
    const t = Date.now() - 60_000;
    {
      await using store = await SqliteLogStore.open(dir);
      await store.write([_entry(t, "a"), _entry(t + 1, "b")]);
    }
    await using store = await SqliteLogStore.open(dir);
    await store.write([_entry(t + 1, "b"), _entry(t + 2, "c")]);
    assert.deepEqual(await _lines(store), ["a", "b", "c"]);
    const [count] = await store.containers({ since: new Date(t - 3_600_000) });
    assert.deepEqual(count, { container: "web-1", count: 3, containers: ["web-1"] });
  });
});

Deno.test("SqliteLogStore.prepare() deletes entries past the retention, and their counts", async () => {
  await _withDir(async (dir) => {
    const now = Date.now();
    await using store = await SqliteLogStore.open(dir, { retentionMs: 3_600_000 });
    await store.write([
      _entry(now - 5 * 3_600_000, "old"),
      _entry(now - 90 * 60_000, "older than an hour"),
      _entry(now - 60_000, "new"),
    ]);
    await store.prepare();
    assert.deepEqual(await _lines(store), ["new"]);
    const counts = await store.containers({ since: new Date(0) });
    assert.deepEqual(counts, [{ container: "web-1", count: 1, containers: ["web-1"] }]);
  });
});

Deno.test("SqliteLogStore stores long non-ASCII names as they are and rejects only what cannot be stored", async () => {
  await _withDir(async (dir) => {
    const t = Date.now() - 60_000;
    await using store = await SqliteLogStore.open(dir);
    const cjk = `file:${"日".repeat(80)}`;
    const long = "x".repeat(1024);
    const tooLong = "y".repeat(1025);
    const result = await store.write([
      _entry(t, "from cjk", { containerName: cjk }),
      _entry(t, "from long", { containerName: long }),
      _entry(t, "never", { containerName: tooLong }),
      _entry(t, "bad ts", { ts: "yesterday" }),
      _entry(t, "fine"),
    ]);
    assert.equal(result.written, 3);
    assert.deepEqual([...result.rejected.keys()], [2, 3]);
    assert.match(result.rejected.get(2)!.message, /1025 bytes; expected at most 1024/);
    assert.deepEqual(await _lines(store, cjk), ["from cjk"]);
    assert.deepEqual(await _lines(store, long), ["from long"]);
    assert.deepEqual(await _lines(store), ["fine"]);
  });
});
