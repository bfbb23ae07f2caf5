import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { dockerCli, suiteEnv } from "./services.ts";

Deno.test("suiteEnv() reaches the real Redis, InfluxDB and Docker started by the harness", async (t) => {
  const env = suiteEnv();
  await t.step("redis answers PING", async () => {
    const r = new Redis(env.redisUrl);
    try {
      assert.equal(await r.ping(), "PONG");
    } finally {
      r.disconnect();
    }
  });
  await t.step("influxd answers /ping with its 1.x version", async () => {
    const res = await fetch(`${env.influxUrl}/ping`);
    await res.body?.cancel();
    assert.equal(res.status, 204);
    assert.match(res.headers.get("x-influxdb-version") ?? "", /^1\./);
  });
  await t.step("dockerd runs a container from the imported busybox image", async () => {
    const out = await dockerCli(`unix://${env.dockerSocket}`, [
      "run",
      "--rm",
      env.dockerImage,
      "echo",
      "hello from busybox",
    ]);
    assert.equal(out, "hello from busybox");
  });
});
