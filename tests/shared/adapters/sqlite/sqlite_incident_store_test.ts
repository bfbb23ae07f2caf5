import { SqliteIncidentStore } from "../../../../shared/adapters/sqlite/sqlite_incident_store.ts";
import { incidentStoreConformance } from "../../ports/incident_store_conformance.ts";

Deno.test("SqliteIncidentStore passes the incident store conformance suite", async (t) => {
  const dirs: string[] = [];
  try {
    await incidentStoreConformance(t, async () => {
      const dir = await Deno.makeTempDir({ prefix: "tailwise_incidents_" });
      dirs.push(dir);
      return await SqliteIncidentStore.open(dir);
    });
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
});
