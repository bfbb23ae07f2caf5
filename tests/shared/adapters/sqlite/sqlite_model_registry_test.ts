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
