import assert from "node:assert/strict";
import { serviceKey } from "../../../shared/ports/service_key.ts";
import { entryToFields, fieldsToEntry, modelKey } from "../../../shared/ports/log_entry.ts";

Deno.test("serviceKey() prefers the Swarm service, then Compose, then tailwise.model, then the name", () => {
  const swarm = { "com.docker.swarm.service.name": "shop_web" };
  const compose = { "com.docker.compose.project": "shop", "com.docker.compose.service": "api" };
  const chosen = { "tailwise.model": "payments" };
  assert.equal(serviceKey({ ...swarm, ...compose, ...chosen }, "shop_web.1.x0a"), "shop_web");
  assert.equal(serviceKey({ ...compose, ...chosen }, "shop-api-1"), "shop_api");
  assert.equal(serviceKey(chosen, "pay-7"), "payments");
  assert.equal(serviceKey({}, "redis"), "redis");
  assert.equal(serviceKey(null, "redis"), "redis");
  // Compose needs both labels.
  assert.equal(serviceKey({ "com.docker.compose.project": "shop" }, "x"), "x");
});

Deno.test("serviceKey() passes over empty, control-character and oversized label values", () => {
  assert.equal(serviceKey({ "tailwise.model": "  " }, "a"), "a");
  assert.equal(serviceKey({ "tailwise.model": "bad\u0000key" }, "a"), "a");
  assert.equal(serviceKey({ "tailwise.model": "x".repeat(600) }, "a"), "a");
  assert.equal(serviceKey({ "tailwise.model": " padded " }, "a"), "padded");
});

Deno.test("modelKey() reads the entry's key, and an entry without one keeps its container name", () => {
  const base = {
    containerId: "c1",
    containerName: "shop_web.1.x0a",
    image: "busybox",
    stream: "stdout" as const,
    ts: "2026-12-02T06:00:00.000000001Z",
    seq: 0,
    line: "hello",
  };
  const keyed = fieldsToEntry(entryToFields({ ...base, key: "shop_web" }));
  assert.equal(keyed.key, "shop_web");
  assert.equal(modelKey(keyed), "shop_web");
  const old = entryToFields(base);
  assert.equal(old.k, undefined, "no key field when the key is the container name");
  assert.equal(modelKey(fieldsToEntry(old)), "shop_web.1.x0a");
  const same = entryToFields({ ...base, key: base.containerName });
  assert.equal(same.k, undefined);
});
