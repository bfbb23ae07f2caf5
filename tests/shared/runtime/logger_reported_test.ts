import assert from "node:assert/strict";
import { createLogger } from "../../../shared/runtime/logger.ts";
import { isStorageFull, StorageFullError } from "../../../shared/ports/storage_full.ts";

Deno.test("an error already reported to the user (a full disk) is logged at debug, others as asked", () => {
  const out: { level: string; msg: string }[] = [];
  const log = createLogger("t", { level: "debug", write: (l) => out.push(JSON.parse(l)) });
  const full = new StorageFullError("the data dir /x is on a full disk");
  log.warn("retrying", { error: full });
  // Wrapped by a caller: still the same error underneath.
  log.error("batch not stored", { error: new Error("batch failed", { cause: full }) });
  log.warn("retrying", { error: new Error("connection refused") });
  assert.deepEqual(out.map((r) => [r.level, r.msg]), [
    ["debug", "retrying"],
    ["debug", "batch not stored"],
    ["warn", "retrying"],
  ]);
  const quiet: string[] = [];
  createLogger("t", { write: (l) => quiet.push(l) }).warn("retrying", { error: full });
  assert.deepEqual(quiet, []);
  assert.ok(isStorageFull(new Error("x", { cause: full })));
  assert.ok(!isStorageFull(new Error("database or disk is full")));
});
