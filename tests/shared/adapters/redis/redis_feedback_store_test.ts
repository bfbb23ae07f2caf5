import assert from "node:assert/strict";
import { readOnlyUser } from "./read_only_user.ts";
import { Redis } from "ioredis";
import { RedisFeedbackStore } from "../../../../shared/adapters/redis/redis_feedback_store.ts";
import { startRedisCluster, suiteEnv } from "../../../harness/services.ts";
import { feedbackStoreConformance } from "../../ports/feedback_store_conformance.ts";

Deno.test("RedisFeedbackStore passes the feedback store conformance suite", async (t) => {
  const { redisUrl } = suiteEnv();
  const prefix = `test:feedback:${crypto.randomUUID()}`;
  const client = new Redis(redisUrl);
  try {
    await feedbackStoreConformance(
      t,
      (options) => Promise.resolve(RedisFeedbackStore.connect(redisUrl, { ...options, prefix })),
    );
  } finally {
    const keys = await client.keys(`${prefix}:*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
  }
});

Deno.test("RedisFeedbackStore passes the feedback store conformance suite on a 3-master Redis Cluster", async (t) => {
  await using cluster = await startRedisCluster();
  const prefix = `test:feedback:${crypto.randomUUID()}`;
  await feedbackStoreConformance(
    t,
    (options) =>
      Promise.resolve(
        RedisFeedbackStore.connect(cluster.url, { ...options, prefix, cluster: true }),
      ),
  );
  await t.step("record, suppress and list for containers in several slots", async () => {
    await using store = RedisFeedbackStore.connect(cluster.url, { prefix, cluster: true });
    const names = Array.from({ length: 8 }, (_, i) => `svc-${i}`);
    const at = Date.now();
    for (const container of names) {
      for (const [i, label] of (["normal", "anomaly"] as const).entries()) {
        await store.record({
          anomalyId: `${container}-${i}`,
          container,
          templateId: `t${i}`,
          line: `${label} line`,
          label,
          at: at + i,
        });
      }
    }
    for (const container of names) {
      assert.deepEqual(await store.normalLines(container), ["normal line"]);
      assert.deepEqual(
        (await store.confirmedAnomalies(container)).map((f) => f.anomalyId),
        [`${container}-1`],
      );
      assert.equal(await store.isSuppressed(container, "t0"), true);
      assert.deepEqual([...await store.suppressedTemplates(container)], ["t0"]);
    }
  });
});

Deno.test("RedisFeedbackStore: a reader whose Redis user may not rename reads the old layout, then the moved one", async () => {
  const { redisUrl } = suiteEnv();
  const prefix = `test:feedback:${crypto.randomUUID()}`;
  const raw = new Redis(redisUrl);
  const now = Date.now();
  try {
    const old = `${prefix}:web:`;
    await raw.hset(`${old}suppress`, "t1", String(now + 3_600_000));
    await raw.hset(
      `${old}items`,
      "a1",
      JSON.stringify({
        anomalyId: "a1",
        container: "web",
        templateId: "t1",
        line: "line a1",
        label: "normal",
        at: now,
      }),
    );
    await raw.zadd(`${old}order`, now, "a1");
    // As score's user in deploy/redis/users.acl: reads feedback, runs no script on it.
    await using aclUser = await readOnlyUser(raw, prefix);
    const { username: user, password } = aclUser;
    await using reader = RedisFeedbackStore.connect(redisUrl, {
      prefix,
      username: user,
      password,
      moveOldKeys: false,
    });
    assert.deepEqual([...await reader.suppressedTemplates("web", now)], ["t1"]);
    assert.deepEqual(await reader.normalLines("web"), ["line a1"]);
    {
      await using writer = RedisFeedbackStore.connect(redisUrl, { prefix });
      await writer.record({
        anomalyId: "a2",
        container: "web",
        templateId: "t2",
        line: "line a2",
        label: "normal",
        at: now + 1,
      });
    }
    // The same reader right after the move: everything, in the new layout.
    assert.deepEqual([...await reader.suppressedTemplates("web", now)].sort(), ["t1", "t2"]);
    assert.deepEqual((await reader.normalLines("web")).sort(), ["line a1", "line a2"]);
    assert.equal(await aclUser.denied(), "", "the reader ran a command its user lacks");
  } finally {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
  }
});

Deno.test("RedisFeedbackStore reads feedback written with the key layout from before hash tags", async (t) => {
  const { redisUrl } = suiteEnv();
  const prefix = `test:feedback:${crypto.randomUUID()}`;
  const raw = new Redis(redisUrl);
  const now = Date.now();
  const item = (container: string, id: string, label: string, at: number) =>
    JSON.stringify({
      anomalyId: id,
      container,
      templateId: `t-${id}`,
      line: `line ${id}`,
      label,
      at,
    });
  try {
    // The layout before hash tags: <prefix>:<container URI-encoded>:<kind>.
    for (const container of ["web", "db/ä"]) {
      const old = `${prefix}:${encodeURIComponent(container)}:`;
      await raw.hset(`${old}items`, "a1", item(container, "a1", "normal", now - 2));
      await raw.hset(`${old}items`, "a2", item(container, "a2", "anomaly", now - 1));
      await raw.zadd(`${old}order`, now - 2, "a1", now - 1, "a2");
      await raw.hset(`${old}suppress`, "t-a1", String(now + 3_600_000));
    }

    await t.step("every item, the order and the suppressions are there", async () => {
      await using store = RedisFeedbackStore.connect(redisUrl, { prefix, maxPerContainer: 2 });
      for (const container of ["web", "db/ä"]) {
        assert.deepEqual(await store.normalLines(container), ["line a1"]);
        assert.deepEqual(
          (await store.confirmedAnomalies(container)).map((f) => f.anomalyId),
          ["a2"],
        );
        assert.equal((await store.get(container, "a1"))?.label, "normal");
        assert.equal(await store.isSuppressed(container, "t-a1"), true);
      }
      // The moved order still drives the cap: a third item drops the oldest (a1).
      await store.record({
        anomalyId: "a3",
        container: "web",
        templateId: "t-a3",
        line: "line a3",
        label: "anomaly",
        at: now,
      });
      assert.equal(await store.get("web", "a1"), null);
      assert.deepEqual(
        (await store.confirmedAnomalies("web")).map((f) => f.anomalyId),
        ["a3", "a2"],
      );
      const old = (await raw.keys(`${prefix}:*`)).filter((k) => !k.includes("{"));
      assert.deepEqual(old, [], "no key of the old layout is left");
    });

    await t.step("new keys win: old ones written later are left alone", async () => {
      await raw.hset(`${prefix}:web:items`, "stale", item("web", "stale", "normal", now));
      await using store = RedisFeedbackStore.connect(redisUrl, { prefix });
      assert.equal(await store.get("web", "stale"), null);
      assert.equal(await raw.hlen(`${prefix}:web:items`), 1, "old key untouched");
    });
  } finally {
    const keys = await raw.keys(`${prefix}:*`);
    if (keys.length > 0) await raw.del(...keys);
    await raw.quit();
  }
});
