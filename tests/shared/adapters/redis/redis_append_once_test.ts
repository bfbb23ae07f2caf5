import assert from "node:assert/strict";
import { RedisLogStream } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { suiteEnv } from "../../../harness/services.ts";

Deno.test("RedisLogStream.appendOnce() appends a key's message once, even on replay", async () => {
  await using stream = RedisLogStream.connect(suiteEnv().redisUrl);
  const name = `test:once:${crypto.randomUUID()}`;
  const k = (id: string) => `${name}:seen:${id}`;
  const first = await stream.appendOnce(name, [
    { key: k("1-0"), fields: { entry: "1-0", score: "0.9" } },
    { key: k("2-0"), fields: { entry: "2-0", score: "0.8", line: "a b\u0000c" } },
  ]);
  assert.equal(first.filter((id) => id !== null).length, 2);
  const replay = await stream.appendOnce(name, [
    { key: k("2-0"), fields: { entry: "2-0", score: "0.8" } },
    { key: k("3-0"), fields: { entry: "3-0", score: "0.7" } },
  ]);
  assert.equal(replay[0], null);
  assert.ok(replay[1]);
  const all = await stream.range(name);
  assert.deepEqual(all.map((m) => m.fields.entry), ["1-0", "2-0", "3-0"]);
  assert.equal(all[1]!.fields.line, "a b\u0000c");
});
