/**
 * The conformance suite of the {@linkcode FeedbackStore} port: every adapter
 * runs it against its real backing service.
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  Feedback,
  FeedbackStore,
  FeedbackStoreOptions,
} from "../../../shared/ports/feedback_store.ts";

/**
 * Opens stores of one adapter; every store it opens shares one namespace
 * (so a store opened again sees what an earlier one recorded) that no other
 * test uses.
 */
export type OpenFeedbackStore = (options: FeedbackStoreOptions) => Promise<FeedbackStore>;

const HOUR = 3_600_000;

function _fb(partial: Partial<Feedback> & Pick<Feedback, "anomalyId">): Feedback {
  return {
    container: "web",
    templateId: "t1",
    line: `line of ${partial.anomalyId}`,
    label: "normal",
    at: Date.now(),
    ...partial,
  };
}

/**
 * Runs the suite as steps of one test.
 *
 * @param t the test context
 * @param open opens a store of the adapter under test
 */
export async function feedbackStoreConformance(
  t: Deno.TestContext,
  open: OpenFeedbackStore,
): Promise<void> {
  await using store = await open({ suppressMs: HOUR, maxPerContainer: 5 });

  await t.step("record() with normal suppresses the template for suppressMs", async () => {
    const at = Date.now();
    await store.record(_fb({ anomalyId: "1-0", container: "c-norm", templateId: "tA", at }));
    assert.equal(await store.isSuppressed("c-norm", "tA", at), true);
    assert.equal(await store.isSuppressed("c-norm", "tA", at + HOUR - 1), true);
    assert.equal(await store.isSuppressed("c-norm", "tA", at + HOUR), false);
    assert.equal(await store.isSuppressed("c-norm", "tB", at), false);
    assert.equal(await store.isSuppressed("c-other", "tA", at), false);
  });

  await t.step("suppressedTemplates() returns the live suppressions of a container", async () => {
    const at = Date.now();
    await store.record(_fb({ anomalyId: "2-0", container: "c-set", templateId: "x", at }));
    await store.record(
      _fb({ anomalyId: "2-1", container: "c-set", templateId: "y", at: at + 10 * 60_000 }),
    );
    assert.deepEqual(await store.suppressedTemplates("c-set", at), new Set(["x", "y"]));
    assert.deepEqual(await store.suppressedTemplates("c-set", at + HOUR + 1), new Set(["y"]));
    assert.deepEqual(await store.suppressedTemplates("c-set", at + 2 * HOUR), new Set());
    assert.deepEqual(await store.suppressedTemplates("nobody"), new Set());
  });

  await t.step("record() with anomaly confirms and lifts the template's suppression", async () => {
    const at = Date.now();
    await store.record(_fb({ anomalyId: "3-0", container: "c-conf", templateId: "t", at }));
    assert.equal(await store.isSuppressed("c-conf", "t", at), true);
    await store.record(
      _fb({ anomalyId: "3-1", container: "c-conf", templateId: "t", label: "anomaly", at }),
    );
    assert.equal(await store.isSuppressed("c-conf", "t", at), false);
    const confirmed = await store.confirmedAnomalies("c-conf");
    assert.deepEqual(confirmed.map((f) => f.anomalyId), ["3-1"]);
    assert.equal(confirmed[0]!.line, "line of 3-1");
    assert.equal(confirmed[0]!.templateId, "t");
  });

  await t.step("normalLines() lists lines marked normal, newest first, with a limit", async () => {
    const at = Date.now();
    await store.record(_fb({ anomalyId: "4-0", container: "c-lines", line: "old", at }));
    await store.record(_fb({ anomalyId: "4-1", container: "c-lines", line: "new", at: at + 1 }));
    await store.record(
      _fb({ anomalyId: "4-2", container: "c-lines", line: "bad", label: "anomaly", at: at + 2 }),
    );
    assert.deepEqual(await store.normalLines("c-lines"), ["new", "old"]);
    assert.deepEqual(await store.normalLines("c-lines", { limit: 1 }), ["new"]);
    assert.deepEqual(await store.normalLines("nobody"), []);
  });

  await t.step("a second feedback on one anomaly replaces the first", async () => {
    const at = Date.now();
    await store.record(_fb({ anomalyId: "5-0", container: "c-relabel", at }));
    await store.record(_fb({ anomalyId: "5-0", container: "c-relabel", label: "anomaly", at }));
    assert.deepEqual(await store.normalLines("c-relabel"), []);
    assert.equal((await store.confirmedAnomalies("c-relabel")).length, 1);
    assert.equal((await store.get("c-relabel", "5-0"))?.label, "anomaly");
    assert.equal(await store.get("c-relabel", "nope"), null);
  });

  await t.step("keeps maxPerContainer items per container, dropping the oldest", async () => {
    const at = Date.now();
    for (let i = 0; i < 8; i++) {
      await store.record(
        _fb({ anomalyId: `6-${i}`, container: "c-cap", line: `l${i}`, at: at + i }),
      );
    }
    assert.deepEqual(await store.normalLines("c-cap"), ["l7", "l6", "l5", "l4", "l3"]);
    assert.equal(await store.get("c-cap", "6-0"), null);
  });

  await t.step("container names with odd characters stay apart", async () => {
    const at = Date.now();
    await store.record(_fb({ anomalyId: "7-0", container: "a:b", templateId: "t", at }));
    assert.equal(await store.isSuppressed("a:b", "t", at), true);
    assert.equal(await store.isSuppressed("a", "t", at), false);
    assert.equal(await store.isSuppressed("a%3Ab", "t", at), false);
  });

  await t.step(
    "record() rejects malformed feedback with a TypeError naming the field",
    async () => {
      await assert.rejects(
        store.record(_fb({ anomalyId: "8-0", label: "maybe" as Feedback["label"] })),
        (e: unknown) => e instanceof TypeError && /label "maybe"/.test(e.message),
      );
      await assert.rejects(
        store.record(_fb({ anomalyId: "" })),
        (e: unknown) => e instanceof TypeError && /anomalyId/.test(e.message),
      );
    },
  );

  await t.step("ping() answers true", async () => {
    assert.equal(await store.ping(), true);
  });

  await t.step("a store opened again sees what was recorded", async () => {
    await using again = await open({ suppressMs: HOUR, maxPerContainer: 5 });
    const at = Date.now();
    assert.equal(await again.isSuppressed("c-norm", "tA", at), true);
    assert.deepEqual(await again.normalLines("c-lines"), ["new", "old"]);
  });
}
