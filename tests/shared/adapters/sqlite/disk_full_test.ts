import assert from "node:assert/strict";
import { SqliteDatabase } from "../../../../shared/adapters/sqlite/sqlite_database.ts";
import { isStorageFull } from "../../../../shared/ports/storage_full.ts";
import { waitFor } from "../../../harness/services.ts";

async function _run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

Deno.test({
  name:
    "SqliteDatabase: a full disk is reported once, writes throw StorageFullError, space is noticed",
  ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
}, async () => {
  const root = await Deno.makeTempDir({ prefix: "tailwise-sqlite-full-" });
  const mnt = `${root}/mnt`;
  await Deno.mkdir(mnt);
  const mounted = await _run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
  assert.ok(mounted.success, new TextDecoder().decode(mounted.stderr));
  const told: [boolean, string][] = [];
  try {
    const db = await SqliteDatabase.open(`${mnt}/data`, {
      owner: true,
      diskProbeMs: 50,
      onDiskFull: (full, message) => told.push([full, message]),
    });
    try {
      db.schema("t", 1, "CREATE TABLE IF NOT EXISTS t_rows (v BLOB)");
      // Fill the rest of the disk with a file.
      const filler = await Deno.open(`${mnt}/filler`, { write: true, create: true });
      try {
        const chunk = new Uint8Array(64 * 1024);
        for (;;) await filler.write(chunk);
      } catch (e) {
        assert.match(String(e), /space/i);
      } finally {
        filler.close();
      }
      const blob = new Uint8Array(256 * 1024);
      // Outside a transaction, and inside one: the same error, told once.
      const insert = db.prepare("INSERT INTO t_rows (v) VALUES (?)");
      assert.throws(() => insert.run(blob), (e) => isStorageFull(e));
      assert.throws(() => db.write(() => insert.run(blob)), (e) => isStorageFull(e));
      assert.ok(db.diskFull);
      assert.equal(told.length, 1);
      assert.deepEqual(told[0]![0], true);
      assert.match(told[0]![1], /is on a full disk: free space on it; intake paused, nothing lost/);
      await Deno.remove(`${mnt}/filler`);
      await waitFor(() => !db.diskFull, { timeoutMs: 5000, what: "space noticed" });
      assert.deepEqual(told.map(([full]) => full), [true, false]);
      db.write(() => insert.run(blob));
      assert.equal((db.prepare("SELECT count(*) AS n FROM t_rows").get() as { n: number }).n, 1);
    } finally {
      db.close();
    }
  } finally {
    await _run("umount", ["-l", mnt]);
    await Deno.remove(root, { recursive: true });
  }
});
