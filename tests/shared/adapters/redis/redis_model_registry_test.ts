import assert from "node:assert/strict";
import { readOnlyUser } from "./read_only_user.ts";
import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import { createRedisClient } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { RedisModelRegistry } from "../../../../shared/adapters/redis/redis_model_registry.ts";
import { startRedisCluster, suiteEnv } from "../../../harness/services.ts";
import { modelRegistryConformance } from "../../ports/model_registry_conformance.ts";
import { modelChecksum } from "../../../../shared/ports/model_registry.ts";

function _b64(container: string): string {
  return Buffer.from(new TextEncoder().encode(container)).toString("base64url");
}

function _fixture(url: string, cluster: boolean) {
  return () => {
    const prefix = `test:models:${crypto.randomUUID()}:`;
    const raw = createRedisClient(url, { name: "tailwise-test-raw", cluster });
    return Promise.resolve({
      open: ({ keepVersions }: { keepVersions: number }) =>
        Promise.resolve(RedisModelRegistry.connect(url, { prefix, keepVersions, cluster })),
      async corrupt(container: string, version: number) {
        const key = `${prefix}c:{${_b64(container)}}:blob:${version}`;
        const blob = await raw.getBuffer(key);
        if (!blob) throw new Error(`no blob at ${key}`);
        blob[0] = blob[0]! ^ 0xff;
        await raw.set(key, blob);
      },
      async [Symbol.asyncDispose]() {
        // On a cluster, KEYS sees one node only: the cluster goes with its test.
        if (!cluster) {
          const keys = await raw.keys(`${prefix}*`);
          if (keys.length > 0) await raw.del(...keys);
        }
        await raw.quit();
      },
    });
  };
}

Deno.test("RedisModelRegistry passes the model registry conformance suite", async (t) => {
  await modelRegistryConformance(t, _fixture(suiteEnv().redisUrl, false));
});

Deno.test("RedisModelRegistry passes the model registry conformance suite on a 3-master Redis Cluster", async (t) => {
  await using cluster = await startRedisCluster();
  await modelRegistryConformance(t, _fixture(cluster.url, true));
  await t.step(
    "a container's keys share one slot, containers spread over the masters",
    async () => {
      const prefix = `test:models:${crypto.randomUUID()}:`;
      const raw = createRedisClient(cluster.url, { cluster: true, name: "tailwise-test-raw" });
      await using reg = RedisModelRegistry.connect(cluster.url, { prefix, cluster: true });
      try {
        const names = Array.from({ length: 12 }, (_, i) => `svc-${i}`);
        for (const name of names) {
          await reg.put(name, new Uint8Array([1, 2, 3]), { lines: 1, threshold: 0.5 });
        }
        const slots = new Set<number>();
        for (const name of names) {
          const base = `${prefix}c:{${_b64(name)}}:`;
          const own = new Set<number>();
          for (const kind of ["seq", "current", "versions", "meta", "promoted", "blob:1"]) {
            own.add(Number(await raw.call("CLUSTER", "KEYSLOT", base + kind)));
          }
          assert.equal(own.size, 1, `${name}: one slot`);
          slots.add([...own][0]!);
        }
        assert.ok(slots.size > 1, "containers in several slots");
        assert.deepEqual((await reg.list()).map((m) => m.container).sort(), names.sort());
      } finally {
        await raw.quit();
      }
    },
  );
});

/** Writes a container the way the registry did before hash tags (raw commands). */
async function _writeOldLayout(
  raw: Redis,
  prefix: string,
  container: string,
  blobs: Uint8Array[],
  current: number,
): Promise<void> {
  const base = `${prefix}c:${_b64(container)}:`;
  await raw.sadd(`${prefix}containers`, container);
  await raw.set(`${base}seq`, blobs.length);
  for (const [i, blob] of blobs.entries()) {
    const v = i + 1;
    await raw.set(`${base}blob:${v}`, Buffer.from(blob));
    await raw.zadd(`${base}versions`, v, String(v));
    await raw.hset(
      `${base}meta`,
      String(v),
      JSON.stringify({
        trainedAt: `2024-01-0${v}T00:00:00.000Z`,
        lines: 100 * v,
        threshold: 0.5,
        checksum: await modelChecksum(blob),
        size: blob.byteLength,
        note: `old ${v}`,
      }),
    );
    await raw.hset(`${base}promoted`, String(v), `2024-01-0${v}T00:00:01.000Z`);
  }
  await raw.hset(`${base}rolledback`, String(blobs.length), "2024-01-09T00:00:00.000Z");
  await raw.set(`${base}current`, String(current));
}

Deno.test("RedisModelRegistry: a reader whose Redis user may not rename reads the old layout until a writer moves it", async () => {
  const url = suiteEnv().redisUrl;
  const prefix = `test:models:${crypto.randomUUID()}:`;
  const raw = createRedisClient(url, { name: "tailwise-test-raw" });
  const blob = (v: number) => new TextEncoder().encode(`web model ${v}`);
  try {
    await _writeOldLayout(raw, prefix, "web", [blob(1), blob(2)], 2);
    // As score's user in deploy/redis/users.acl: reads models, runs no script on them.
    await using aclUser = await readOnlyUser(raw, prefix);
    const { username: user, password } = aclUser;
    const asReader = { prefix, username: user, password, moveOldKeys: false };
    await using reader = RedisModelRegistry.connect(url, asReader);
    assert.equal(await reader.currentVersion("web"), 2);
    assert.deepEqual((await reader.get("web")).blob, blob(2));
    assert.equal(await raw.get(`${prefix}c:${_b64("web")}:current`), "2", "nothing moved");
    {
      await using writer = RedisModelRegistry.connect(url, { prefix });
      assert.equal(await writer.currentVersion("web"), 2);
      assert.deepEqual(await raw.keys(`${prefix}c:[^{]*`), [], "the writer moved them");
      assert.equal((await writer.put("web", blob(3), { lines: 1, threshold: 0.5 })).version, 3);
    }
    // The same reader, right after the move: the new layout, no window of nothing.
    assert.equal(await reader.currentVersion("web"), 3);
    assert.deepEqual((await reader.get("web")).blob, blob(3));
    assert.deepEqual((await reader.get("web", 1)).blob, blob(1));
    assert.equal(await aclUser.denied(), "", "the reader ran a command its user lacks");
  } finally {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    await raw.quit();
  }
});

Deno.test("RedisModelRegistry reads a registry written with the key layout from before hash tags", async (t) => {
  const url = suiteEnv().redisUrl;
  const prefix = `test:models:${crypto.randomUUID()}:`;
  const raw = createRedisClient(url, { name: "tailwise-test-raw" });
  const blob = (v: number, c: string) => new TextEncoder().encode(`${c} model ${v}`);
  try {
    const web = [1, 2, 3].map((v) => blob(v, "web"));
    const db = [1, 2].map((v) => blob(v, "db"));
    await _writeOldLayout(raw, prefix, "web", web, 2);
    await _writeOldLayout(raw, prefix, "db/ä", db, 1);

    await t.step(
      "every version, its metadata, blob and the current pointer are there",
      async () => {
        await using reg = RedisModelRegistry.connect(url, { prefix });
        assert.deepEqual(await reg.containers(), ["db/ä", "web"]);
        const list = await reg.list();
        assert.deepEqual(
          list.map((m) => [m.container, m.version, m.status, m.note, m.rolledBackAt ?? null]),
          [
            ["db/ä", 2, "retired", "old 2", "2024-01-09T00:00:00.000Z"],
            ["db/ä", 1, "current", "old 1", null],
            ["web", 3, "retired", "old 3", "2024-01-09T00:00:00.000Z"],
            ["web", 2, "current", "old 2", null],
            ["web", 1, "retired", "old 1", null],
          ],
        );
        assert.equal(await reg.currentVersion("web"), 2);
        for (const [c, blobs] of [["web", web], ["db/ä", db]] as const) {
          for (const [i, b] of blobs.entries()) {
            const got = await reg.get(c, i + 1);
            assert.deepEqual(got.blob, b);
            assert.equal(got.meta.lines, 100 * (i + 1));
            assert.equal(got.meta.promotedAt, `2024-01-0${i + 1}T00:00:01.000Z`);
          }
        }
        const old = await raw.keys(`${prefix}c:[^{]*`);
        assert.deepEqual(old, [], "no key of the old layout is left");
      },
    );

    await t.step(
      "new versions continue the old numbering; a fresh process sees it all",
      async () => {
        await using reg = RedisModelRegistry.connect(url, { prefix, keepVersions: 3 });
        const put = await reg.put("web", blob(4, "web"), { lines: 400, threshold: 0.4 });
        assert.equal(put.version, 4);
        assert.equal((await reg.rollback("web")).version, 2, "back to the newest good old one");
        await using again = RedisModelRegistry.connect(url, { prefix });
        assert.deepEqual((await again.list("web")).map((m) => m.version), [4, 3, 2]);
        assert.deepEqual((await again.get("web")).blob, web[1]);
      },
    );

    await t.step("new keys win: old ones written later are left alone", async () => {
      await _writeOldLayout(raw, prefix, "web", [blob(9, "stale")], 1);
      await using reg = RedisModelRegistry.connect(url, { prefix });
      assert.equal(await reg.currentVersion("web"), 2);
      assert.equal(await raw.get(`${prefix}c:${_b64("web")}:seq`), "1", "old keys untouched");
    });
  } finally {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    await raw.quit();
  }
});
