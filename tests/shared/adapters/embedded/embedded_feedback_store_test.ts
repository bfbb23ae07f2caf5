import assert from "node:assert/strict";
import {
  EmbeddedFeedbackStore,
  FeedbackFileError,
} from "../../../../shared/adapters/embedded/embedded_feedback_store.ts";
import { feedbackStoreConformance } from "../../ports/feedback_store_conformance.ts";

Deno.test("EmbeddedFeedbackStore passes the feedback store conformance suite", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-feedback-" });
  try {
    await feedbackStoreConformance(t, (options) => EmbeddedFeedbackStore.open(dir, options));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("EmbeddedFeedbackStore.open() names a feedback file it cannot read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-feedback-" });
  try {
    await Deno.writeTextFile(`${dir}/feedback.json`, "{not json");
    await assert.rejects(
      EmbeddedFeedbackStore.open(dir),
      (e: unknown) => e instanceof FeedbackFileError && e.message.includes(`${dir}/feedback.json`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
