import assert from "node:assert/strict";
import {
  CurrentVersionCorruptError,
  ModelCorruptError,
} from "../../../../shared/ports/model_registry.ts";
import { SqliteModelRegistry } from "../../../../shared/adapters/sqlite/sqlite_model_registry.ts";
import { SqliteDatabase } from "../../../../shared/adapters/sqlite/sqlite_database.ts";
import { modelRegistryConformance } from "../../ports/model_registry_conformance.ts";

Deno.test("SqliteModelRegistry passes the model registry conformance suite", async (t) => {
  await modelRegistryConformance(t, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tailwise-models-" });
    return {
      open: ({ keepVersions }) => SqliteModelRegistry.open(dir, { keepVersions, pollMs: 50 }),
      async corrupt(container: string, version: number) {
        await using db = await SqliteDatabase.open(dir);
        const row = db.prepare(
          "SELECT blob FROM model_versions WHERE container = ? AND version = ?",
        ).get(container, version) as { blob: Uint8Array };
        const blob = new Uint8Array(row.blob);
        blob[0] = blob[0]! ^ 0xff;
        db.prepare("UPDATE model_versions SET blob = ? WHERE container = ? AND version = ?")
          .run(blob, container, version);
      },
      async [Symbol.asyncDispose]() {
        await Deno.remove(dir, { recursive: true });
      },
    };
  });
});

Deno.test("SqliteModelRegistry: a broken entry affects only its own container", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-models-" });
  try {
    await using db = await SqliteDatabase.open(dir);
    const reg = new SqliteModelRegistry(db);
    for (const c of ["good", "bad-ptr", "bad-meta"]) {
      await reg.put(c, new Uint8Array([1]), { lines: 1, threshold: 0.5 });
      await reg.put(c, new Uint8Array([2]), { lines: 2, threshold: 0.5 });
    }
    db.prepare("UPDATE model_containers SET current = 'abc' WHERE name = 'bad-ptr'").run();
    db.prepare(
      "UPDATE model_versions SET meta = '{not json' WHERE container = 'bad-meta' AND version = 2",
    ).run();
    await assert.rejects(() => reg.currentVersion("bad-ptr"), CurrentVersionCorruptError);
    await assert.rejects(
      () => reg.get("bad-meta"),
      (e: unknown) => e instanceof ModelCorruptError && /metadata is not JSON/.test(e.message),
    );
    assert.equal(await reg.currentVersion("good"), 2);
    const listed = await reg.list();
    assert.deepEqual(
      listed.map((m) => `${m.container}:${m.version}`),
      ["bad-meta:1", "bad-ptr:2", "bad-ptr:1", "good:2", "good:1"],
    );
    assert.deepEqual(await reg.containers(), ["bad-meta", "bad-ptr", "good"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
