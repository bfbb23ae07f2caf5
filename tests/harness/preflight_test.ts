import assert from "node:assert/strict";
import { missingRequirements, REQUIREMENTS } from "./preflight.ts";

Deno.test("missingRequirements() finds programs on PATH and absolute files, and names the rest", async () => {
  const missing = await missingRequirements([
    { need: "tar", pkg: "tar", why: "on PATH" },
    { need: "/etc/passwd", pkg: "base-files", why: "a file" },
    { need: "tailwise-no-such-program", pkg: "nothing", why: "missing on PATH" },
    { need: "/nonexistent/tailwise", pkg: "nothing-either", why: "missing file" },
  ]);
  assert.deepEqual(missing.map((m) => m.need), [
    "tailwise-no-such-program",
    "/nonexistent/tailwise",
  ]);
});

Deno.test("every service program the suite starts is a requirement of the preflight", async () => {
  const needs = new Set(REQUIREMENTS.map((r) => r.need));
  for (const program of ["redis-server", "redis-cli", "influxd", "dockerd", "docker"]) {
    assert.ok(needs.has(program), `${program} is not checked by the preflight`);
  }
  // The harness runs the suite only after the preflight passed: so on this machine nothing is missing.
  assert.deepEqual(await missingRequirements(), []);
});
