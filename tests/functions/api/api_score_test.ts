import assert from "node:assert/strict";
import type { ScoredLine } from "../../../functions/api/api.ts";
import { anomalyToFields } from "../../../shared/ports/anomaly.ts";
import { Detector, trainDetector } from "../../../shared/detector/detector.ts";
import type { FeedbackStore } from "../../../shared/ports/feedback_store.ts";
import { ModelNotFoundError, type ModelRegistry } from "../../../shared/ports/model_registry.ts";
import { apiFixture, jsonPost } from "./api_fixture.ts";

/** On-demand scoring as the test wires it: the current model, and feedback suppressions. */
function _scoreLines(registry: ModelRegistry, feedback: FeedbackStore) {
  return async (container: string, lines: readonly string[]): Promise<ScoredLine[]> => {
    const version = await registry.currentVersion(container);
    if (version === null) throw new ModelNotFoundError(container, null);
    const [{ blob }, suppressed] = await Promise.all([
      registry.get(container, version),
      feedback.suppressedTemplates(container),
    ]);
    return Detector.fromBytes(blob).scoreBatch(lines).map((s) => {
      const off = s.anomaly && suppressed.has(s.templateId);
      return { ...s, anomaly: s.anomaly && !off, suppressed: off, modelVersion: version };
    });
  };
}

function _trainingLines(): string[] {
  const lines: string[] = [];
  const paths = ["/", "/login", "/api/items", "/api/users", "/static/app.js"];
  for (let i = 0; i < 400; i++) {
    const path = paths[i % paths.length];
    lines.push(`GET ${path} 200 ${5 + (i * 7) % 40}ms user=${1000 + (i % 50)}`);
    if (i % 10 === 0) lines.push(`cache refresh done in ${100 + (i % 30)}ms entries=${i}`);
  }
  return lines;
}

Deno.test("POST /score scores lines with a real trained detector and honours feedback", async (t) => {
  await using f = apiFixture((a) => ({ scoreLines: _scoreLines(a.registry, a.feedback) }));
  const detector = await trainDetector(_trainingLines(), { seed: 7, trees: 50 });
  await f.registry.put("web", detector.toBytes(), {
    lines: detector.info.trainedLines,
    threshold: detector.info.threshold,
  });
  const normal = "GET /api/items 200 17ms user=1012";
  const odd = "FATAL panic: segmentation violation at 0xdeadbeef in worker pool";

  let oddResult!: ScoredLine;
  await t.step("a normal line scores low, an odd one is an anomaly with reasons", async () => {
    const res = await f.call("/score", jsonPost({ container: "web", lines: [normal, odd] }));
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.container, "web");
    const [a, b] = body.results as (ScoredLine & { line: string })[];
    assert.equal(a!.line, normal);
    assert.equal(a!.anomaly, false);
    assert.equal(b!.line, odd);
    assert.equal(b!.anomaly, true);
    assert.ok(b!.score > b!.threshold);
    assert.ok(b!.reasons.length > 0);
    assert.equal(b!.modelVersion, 1);
    assert.equal(typeof b!.templateId, "string");
    oddResult = b!;
  });

  await t.step("normal feedback on its anomaly suppresses the template for scoring", async () => {
    const [id] = await f.stream.append(f.anomalies, [anomalyToFields({
      id: "",
      container: "web",
      containerId: "c0ffee",
      containerName: "web-1",
      entryId: "1-0",
      ts: "2026-11-24T12:00:00Z",
      line: odd,
      score: oddResult.score,
      threshold: oddResult.threshold,
      reasons: [...oddResult.reasons],
      template: oddResult.template,
      templateId: oddResult.templateId,
      tokens: [...(oddResult.tokens ?? [])],
      modelVersion: 1,
      scoredAt: Date.now(),
    })]);
    const fb = await f.call(`/anomalies/${id}/feedback`, jsonPost({ label: "normal" }));
    assert.equal(fb.status, 200);
    const res = await f.call("/score", jsonPost({ container: "web", lines: [odd] }));
    const [again] = (await res.json()).results as ScoredLine[];
    assert.equal(again!.anomaly, false);
    assert.equal(again!.suppressed, true);
  });

  await t.step("a container without a model is 404 JSON", async () => {
    const res = await f.call("/score", jsonPost({ container: "db", lines: [normal] }));
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'Container "db" has no current model' });
  });
});
