import { SqliteFeedbackStore } from "../../../../shared/adapters/sqlite/sqlite_feedback_store.ts";
import { feedbackStoreConformance } from "../../ports/feedback_store_conformance.ts";

Deno.test("SqliteFeedbackStore passes the feedback store conformance suite", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-feedback-" });
  try {
    await feedbackStoreConformance(t, (options) => SqliteFeedbackStore.open(dir, options));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
