import assert from "node:assert/strict";
import { modelKey } from "../../../shared/ports/log_entry.ts";
import { suiteEnv, waitFor } from "../../harness/services.ts";
import {
  redisReader,
  removeContainers,
  runContainer,
  startCollector,
  StreamReader,
} from "./helpers.ts";

Deno.test("collect() puts the service key on every entry: Compose project and service, tailwise.model, else the name", async () => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const tag = crypto.randomUUID().slice(0, 8);
  await using redis = redisReader(env.redisUrl);
  await using collector = startCollector(env.dockerSocket, env.redisUrl);
  const reader = new StreamReader(redis, collector.stream);
  const ids: string[] = [];
  try {
    const compose = await runContainer(host, [
      "--name",
      `shop-web-1-${tag}`,
      "--label",
      `com.docker.compose.project=shop${tag}`,
      "--label",
      "com.docker.compose.service=web",
      env.dockerImage,
      "echo",
      "compose line",
    ]);
    ids.push(compose);
    const chosen = await runContainer(host, [
      "--name",
      `worker-${tag}`,
      "--label",
      `tailwise.model=payments-${tag}`,
      env.dockerImage,
      "echo",
      "chosen line",
    ]);
    ids.push(chosen);
    const plain = await runContainer(host, [
      "--name",
      `plain-${tag}`,
      env.dockerImage,
      "echo",
      "plain line",
    ]);
    ids.push(plain);
    await waitFor(async () => {
      const all = await reader.all();
      return ids.every((id) => all.some((e) => e.containerId === id));
    }, { timeoutMs: 20_000, what: "a line of each container" });
    const all = await reader.all();
    const keyOf = (id: string) => modelKey(all.find((e) => e.containerId === id)!);
    assert.equal(keyOf(compose), `shop${tag}_web`);
    assert.equal(keyOf(chosen), `payments-${tag}`);
    assert.equal(keyOf(plain), `plain-${tag}`);
    assert.equal(all.find((e) => e.containerId === plain)!.key, undefined);
  } finally {
    await removeContainers(host, ids);
  }
});
