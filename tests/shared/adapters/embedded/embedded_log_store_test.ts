import assert from "node:assert/strict";
import { join } from "node:path";
import { EmbeddedLogStore } from "../../../../shared/adapters/embedded/embedded_log_store.ts";
import type { LogEntry } from "../../../../shared/ports/log_entry.ts";
import { logStoreConformance } from "../../ports/log_store_conformance.ts";

/** Opens an embedded store in a fresh temp dir that is removed on dispose. */
async function _openTemp(): Promise<EmbeddedLogStore> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-history-" });
  const store = await EmbeddedLogStore.open(dir, { fsync: false, retentionMs: 0 });
  await store.prepare();
  // Private fields need the real object as `this`, so methods are bound to it.
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

logStoreConformance("EmbeddedLogStore", _openTemp);

async function _withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-history-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function _entry(ms: number, line: string, seq = 0): LogEntry {
  return {
    containerId: "c1",
    containerName: "web-1",
    image: "nginx",
    stream: "stdout",
    ts: new Date(ms).toISOString(),
    seq,
    line,
  };
}

async function _lines(store: EmbeddedLogStore, container = "web-1"): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.history(container)) out.push(e.line);
  return out;
}

Deno.test("EmbeddedLogStore.write() after a restart still drops replayed entries", async () => {
  await _withDir(async (dir) => {
    const t = Date.now() - 60_000;
    {
      await using store = await EmbeddedLogStore.open(dir);
      await store.write([_entry(t, "a"), _entry(t + 1, "b")]);
    }
    await using store = await EmbeddedLogStore.open(dir);
    const result = await store.write([_entry(t + 1, "b"), _entry(t + 2, "c")]);
    assert.deepEqual({ written: result.written, rejected: result.rejected.size }, {
      written: 2,
      rejected: 0,
    });
    assert.deepEqual(await _lines(store), ["a", "b", "c"]);
  });
});

Deno.test("EmbeddedLogStore.write() cuts a torn last line and goes on", async () => {
  await _withDir(async (dir) => {
    const t = Date.now() - 60_000;
    {
      await using store = await EmbeddedLogStore.open(dir);
      await store.write([_entry(t, "a")]);
    }
    const hourDir = join(dir, "history", "web-1");
    const [file] = [...Deno.readDirSync(hourDir)].map((e) => join(hourDir, e.name));
    await Deno.writeTextFile(file!, '["2026-01-01T00:00:00Z",0,"stdout","tor', { append: true });
    await using store = await EmbeddedLogStore.open(dir);
    assert.deepEqual(await _lines(store), ["a"], "a reader skips the torn line");
    await store.write([_entry(t + 1, "b")]);
    assert.deepEqual(await _lines(store), ["a", "b"]);
    assert.ok(!(await Deno.readTextFile(file!)).includes("tor"));
  });
});

Deno.test("EmbeddedLogStore.write() rejects entries it cannot store, by index", async () => {
  await using store = await _openTemp();
  const t = Date.now() - 60_000;
  const result = await store.write([
    _entry(t, "ok"),
    { ..._entry(t, "bad ts"), ts: "yesterday" },
    { ..._entry(t, "no name"), containerName: "" },
  ]);
  assert.equal(result.written, 1);
  assert.deepEqual([...result.rejected.keys()], [1, 2]);
  assert.match(result.rejected.get(1)!.message, /yesterday/);
  assert.deepEqual(await _lines(store), ["ok"]);
});

Deno.test("EmbeddedLogStore.prepare() removes hours past the retention", async () => {
  await _withDir(async (dir) => {
    const now = Date.now();
    {
      await using store = await EmbeddedLogStore.open(dir, { retentionMs: 0 });
      await store.write([_entry(now - 5 * 3_600_000, "old"), _entry(now - 60_000, "new")]);
      assert.deepEqual(await _lines(store), ["old", "new"]);
    }
    await using store = await EmbeddedLogStore.open(dir, { retentionMs: 2 * 3_600_000 });
    await store.prepare();
    assert.deepEqual(await _lines(store), ["new"]);
    assert.equal([...Deno.readDirSync(join(dir, "history", "web-1"))].length, 1);
  });
});

Deno.test("EmbeddedLogStore.containers() names containers whose names need escaping", async () => {
  await using store = await _openTemp();
  const t = Date.now() - 60_000;
  const odd = "../we b/é%";
  await store.write([{ ..._entry(t, "x"), containerName: odd }]);
  assert.deepEqual(await store.containers({ since: new Date(t - 1000) }), [
    { container: odd, count: 1, containers: [odd] },
  ]);
  assert.deepEqual(await _lines(store, odd), ["x"]);
});
