/**
 * The conformance suite of the {@linkcode ModelRegistry} port: every adapter
 * runs it with a fixture that opens registries over one fresh store.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type ModelChange,
  modelChecksum,
  ModelCorruptError,
  ModelNotFoundError,
  type ModelRegistry,
} from "../../../shared/ports/model_registry.ts";
import { waitFor } from "../../harness/services.ts";

/** One fresh store, and ways to open registries over it and to damage it. */
export interface ModelRegistryFixture extends AsyncDisposable {
  /**
   * Opens a registry over the fixture's store: a second call is another
   * client (Redis) or another process' view (embedded) of the same data.
   */
  open(options: { keepVersions: number }): Promise<ModelRegistry>;
  /** Changes the stored bytes of a version's blob behind the registry's back. */
  corrupt(container: string, version: number): Promise<void>;
}

const _enc = new TextEncoder();

function _blob(text: string): Uint8Array {
  return _enc.encode(text);
}

/**
 * Runs the suite as steps of `t`.
 *
 * @param t the test context
 * @param makeFixture makes a fresh store per step
 */
export async function modelRegistryConformance(
  t: Deno.TestContext,
  makeFixture: () => Promise<ModelRegistryFixture>,
): Promise<void> {
  const step = (name: string, fn: (f: ModelRegistryFixture) => Promise<void>) =>
    t.step(name, async () => {
      await using f = await makeFixture();
      await fn(f);
    });

  await step("put() numbers versions per container and moves the current pointer", async (f) => {
    await using reg = await f.open({ keepVersions: 5 });
    assert.equal(await reg.currentVersion("web"), null);
    assert.equal(await reg.current("web"), null);
    const m1 = await reg.put("web", _blob("model one"), { lines: 100, threshold: 0.6 });
    const m2 = await reg.put("web", _blob("model two"), {
      lines: 200,
      threshold: 0.7,
      trainedAt: "2025-01-02T03:04:05.000Z",
      evaluation: { alertRate: 0.0021, shadowRate: 0.003 },
      note: "nightly",
    });
    const other = await reg.put("db", _blob("db model"), { lines: 5, threshold: 1 });
    assert.equal(m1.version, 1);
    assert.equal(m2.version, 2);
    assert.equal(other.version, 1);
    assert.equal(await reg.currentVersion("web"), 2);
    const cur = await reg.current("web");
    assert.ok(cur);
    assert.equal(cur.status, "current");
    assert.equal(cur.lines, 200);
    assert.equal(cur.threshold, 0.7);
    assert.equal(cur.trainedAt, "2025-01-02T03:04:05.000Z");
    assert.deepEqual(cur.evaluation, { alertRate: 0.0021, shadowRate: 0.003 });
    assert.equal(cur.note, "nightly");
    assert.equal(cur.checksum, await modelChecksum(_blob("model two")));
    assert.equal(cur.size, _blob("model two").byteLength);
    assert.ok(cur.promotedAt);
    assert.deepEqual(cur, m2);
    const got = await reg.get("web");
    assert.deepEqual(got.blob, _blob("model two"));
    assert.deepEqual(got.meta, cur);
    const old = await reg.get("web", 1);
    assert.deepEqual(old.blob, _blob("model one"));
    assert.equal(old.meta.status, "retired");
    assert.ok(!Number.isNaN(Date.parse(old.meta.trainedAt)));
    assert.deepEqual(
      (await reg.list("web")).map((m) => [m.version, m.status]),
      [[2, "current"], [1, "retired"]],
    );
    assert.deepEqual(
      (await reg.list()).map((m) => [m.container, m.version]),
      [["db", 1], ["web", 2], ["web", 1]],
    );
    assert.deepEqual(await reg.containers(), ["db", "web"]);
    assert.equal(await reg.ping(), true);
  });

  await step("put() stores binary blobs byte for byte", async (f) => {
    await using reg = await f.open({ keepVersions: 5 });
    const bytes = new Uint8Array(70_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
    const view = new Uint8Array(bytes.buffer, 3, 65_536);
    await reg.put("bin", view, { lines: 1, threshold: 0.5 });
    const { blob, meta } = await reg.get("bin");
    assert.equal(meta.size, 65_536);
    assert.deepEqual(blob, view.slice());
  });

  await step("candidates, promote() and the not-found cases", async (f) => {
    await using reg = await f.open({ keepVersions: 5 });
    await reg.put("api", _blob("a1"), { lines: 1, threshold: 0.5 });
    const cand = await reg.put("api", _blob("a2"), { lines: 2, threshold: 0.5 }, {
      promote: false,
    });
    assert.equal(cand.status, "candidate");
    assert.equal(cand.promotedAt, undefined);
    assert.equal(await reg.currentVersion("api"), 1);
    assert.equal((await reg.get("api", 2)).meta.status, "candidate");
    const promoted = await reg.promote("api", 2);
    assert.equal(promoted.status, "current");
    assert.ok(promoted.promotedAt);
    assert.equal(await reg.currentVersion("api"), 2);
    await assert.rejects(() => reg.promote("api", 9), (e: unknown) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.equal(e.name, "ModelNotFoundError");
      assert.equal(e.container, "api");
      assert.equal(e.version, 9);
      assert.match(e.message, /"api"/);
      return true;
    });
    await assert.rejects(() => reg.get("api", 7), ModelNotFoundError);
    await assert.rejects(() => reg.get("nobody"), (e: unknown) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.equal(e.version, null);
      return true;
    });
    await assert.rejects(() => reg.get("api", 0), RangeError);
    await assert.rejects(() => reg.rollback("nobody"), ModelNotFoundError);
    await assert.rejects(
      () => reg.put("api", _blob("x"), { lines: -1, threshold: 0.5 }),
      TypeError,
    );
    await assert.rejects(
      () => reg.put("api", _blob("x"), { lines: 1, threshold: Number.NaN }),
      TypeError,
    );
  });

  await step("keeps at most K versions, the current one always among them", async (f) => {
    await using reg = await f.open({ keepVersions: 3 });
    for (let i = 1; i <= 5; i++) {
      await reg.put("svc", _blob(`m${i}`), { lines: i, threshold: 0.5 });
    }
    assert.deepEqual((await reg.list("svc")).map((m) => m.version), [5, 4, 3]);
    await assert.rejects(() => reg.get("svc", 2), ModelNotFoundError);
    await reg.put("old", _blob("keep me"), { lines: 1, threshold: 0.5 });
    for (let i = 2; i <= 5; i++) {
      await reg.put("old", _blob(`c${i}`), { lines: i, threshold: 0.5 }, { promote: false });
    }
    assert.deepEqual((await reg.list("old")).map((m) => m.version), [5, 4, 1]);
    assert.deepEqual((await reg.get("old")).blob, _blob("keep me"));
    await reg.put("svc", _blob("m6"), { lines: 6, threshold: 0.5 });
    assert.equal(await reg.currentVersion("svc"), 6);
    assert.deepEqual((await reg.list("svc")).map((m) => m.version), [6, 5, 4]);
  });

  await step("rollback() returns to the previous good version", async (f) => {
    await using reg = await f.open({ keepVersions: 10 });
    await reg.put("web", _blob("v1"), { lines: 1, threshold: 0.5 });
    await reg.put("web", _blob("v2"), { lines: 2, threshold: 0.5 });
    await reg.put("web", _blob("v3"), { lines: 3, threshold: 0.5 }, { promote: false });
    await reg.put("web", _blob("v4"), { lines: 4, threshold: 0.5 });
    const back = await reg.rollback("web");
    assert.equal(back.version, 2, "a candidate is never rolled back to");
    assert.equal(back.status, "current");
    assert.equal(await reg.currentVersion("web"), 2);
    const left = (await reg.list("web")).find((m) => m.version === 4);
    assert.equal(left?.status, "retired");
    assert.ok(left?.rolledBackAt);
    assert.equal((await reg.rollback("web")).version, 1);
    await assert.rejects(() => reg.rollback("web"), (e: unknown) => {
      assert.ok(e instanceof ModelNotFoundError);
      assert.match(e.message, /no earlier good version/);
      return true;
    });
    assert.equal(await reg.currentVersion("web"), 1);
    const again = await reg.promote("web", 4);
    assert.equal(again.rolledBackAt, undefined);
    assert.equal((await reg.rollback("web")).version, 1, "2 was rolled back from");
  });

  await step(
    "get() of a corrupt blob throws ModelCorruptError naming container and version",
    async (f) => {
      await using reg = await f.open({ keepVersions: 5 });
      await reg.put("my app", _blob("good one"), { lines: 1, threshold: 0.5 });
      await reg.put("my app", _blob("good two"), { lines: 2, threshold: 0.5 });
      await f.corrupt("my app", 2);
      await assert.rejects(() => reg.get("my app"), (e: unknown) => {
        assert.ok(e instanceof ModelCorruptError);
        assert.equal(e.name, "ModelCorruptError");
        assert.equal(e.container, "my app");
        assert.equal(e.version, 2);
        assert.match(e.message, /version 2 of container "my app" is corrupt/);
        return true;
      });
      assert.deepEqual((await reg.get("my app", 1)).blob, _blob("good one"));
      assert.equal((await reg.rollback("my app")).version, 1);
      assert.deepEqual((await reg.get("my app")).blob, _blob("good one"));
    },
  );

  await step("watch() reports current version changes from another registry", async (f) => {
    await using writer = await f.open({ keepVersions: 5 });
    await using watcher = await f.open({ keepVersions: 5 });
    const name = "web 1\nx:{y}";
    await writer.put(name, _blob("w1"), { lines: 1, threshold: 0.5 });
    const seen: ModelChange[] = [];
    const ac = new AbortController();
    const done = (async () => {
      for await (const change of watcher.watch(ac.signal)) seen.push(change);
    })();
    try {
      // A subscription starts asynchronously: toggle until the watcher hears one.
      let flip = false;
      await waitFor(async () => {
        flip = !flip;
        await writer.put(name, _blob(`w${flip}`), { lines: 1, threshold: 0.5 });
        return seen.length > 0;
      }, { what: "the first change notice", intervalMs: 100 });
      const last = await writer.put(name, _blob("final"), { lines: 1, threshold: 0.5 });
      await waitFor(() => seen.some((c) => c.version === last.version), {
        what: `a notice of version ${last.version}`,
      });
      assert.ok(seen.every((c) => c.container === name));
      await writer.put(name, _blob("cand"), { lines: 1, threshold: 0.5 }, { promote: false });
      const back = await writer.rollback(name);
      await waitFor(() => seen.at(-1)?.version === back.version, { what: "the rollback notice" });
      assert.ok(!seen.some((c) => c.version === last.version + 1), "a candidate is no change");
    } finally {
      ac.abort();
      await done;
    }
  });

  await step("container names are hostile input", async (f) => {
    await using reg = await f.open({ keepVersions: 5 });
    const names = [
      "a:b*",
      "a:b",
      "{tag}x",
      "../../etc/passwd",
      "/abs/path",
      "with space\nand newline\r\t",
      "__proto__",
      "constructor",
      "\u0000nul",
      "ключ 🔥",
      "a",
      "a ",
      "x".repeat(1024),
    ];
    for (const [i, name] of names.entries()) {
      await reg.put(name, _blob(`blob ${i}`), { lines: i, threshold: 0.5 });
    }
    assert.deepEqual(await reg.containers(), [...names].sort());
    for (const [i, name] of names.entries()) {
      assert.equal(await reg.currentVersion(name), 1, JSON.stringify(name));
      const { blob, meta } = await reg.get(name);
      assert.deepEqual(blob, _blob(`blob ${i}`));
      assert.equal(meta.container, name);
    }
    await assert.rejects(() => reg.put("", _blob("x"), { lines: 1, threshold: 0.5 }), TypeError);
    await assert.rejects(
      () => reg.put("bad \ud800", _blob("x"), { lines: 1, threshold: 0.5 }),
      TypeError,
    );
    await assert.rejects(
      () => reg.put("y".repeat(1025), _blob("x"), { lines: 1, threshold: 0.5 }),
      RangeError,
    );
    await assert.rejects(() => reg.currentVersion(""), TypeError);
  });

  await step("another registry over the same store sees every change", async (f) => {
    {
      await using a = await f.open({ keepVersions: 5 });
      await a.put("web", _blob("one"), { lines: 1, threshold: 0.5, note: "first" });
      await a.put("web", _blob("two"), { lines: 2, threshold: 0.5 });
    }
    await using b = await f.open({ keepVersions: 5 });
    await using c = await f.open({ keepVersions: 5 });
    assert.equal(await b.currentVersion("web"), 2);
    assert.deepEqual((await b.get("web", 1)).blob, _blob("one"));
    assert.equal((await b.get("web", 1)).meta.note, "first");
    assert.equal(await c.currentVersion("web"), 2);
    await b.rollback("web");
    assert.equal(await c.currentVersion("web"), 1);
    const third = await c.put("web", _blob("three"), { lines: 3, threshold: 0.5 });
    assert.equal(third.version, 3);
    assert.equal(await b.currentVersion("web"), 3);
    assert.deepEqual((await b.get("web")).blob, _blob("three"));
  });

  await step("concurrent puts from two registries get distinct versions", async (f) => {
    await using a = await f.open({ keepVersions: 50 });
    await using b = await f.open({ keepVersions: 50 });
    const metas = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => (i % 2 ? a : b).put("busy", _blob(`m${i}`), { lines: i, threshold: 0.5 }),
      ),
    );
    assert.deepEqual(metas.map((m) => m.version).sort((x, y) => x - y), [
      ...Array.from({ length: 20 }, (_, i) => i + 1),
    ]);
    assert.equal((await a.list("busy")).length, 20);
    for (const m of metas) {
      assert.deepEqual((await b.get("busy", m.version)).blob, _blob(`m${m.lines}`));
    }
  });
}
