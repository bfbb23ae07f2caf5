import assert from "node:assert/strict";
import { type Anomaly, anomalyToFields, fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";

const base: Anomaly = {
  id: "",
  container: "web",
  containerId: "c0ffee",
  containerName: "web",
  entryId: "1-0",
  ts: "2026-03-14T08:00:00Z",
  line: '1.2.3.4 - - [14/Mar/2026:08:00:00 +0000] "GET / HTTP/1.1" 502 157 "-" "curl/8"',
  score: 0.91,
  threshold: 0.5,
  reasons: ["unusual_value"],
  template: "client=<*> user=<*> method=<*> path=<*> status=<*>",
  templateId: "0123456789abcdef",
  tokens: ["502"],
  modelVersion: 3,
  scoredAt: 1_700_000_000_000,
};

Deno.test("an anomaly's explanation survives the stream fields", () => {
  const a = {
    ...base,
    explanation: ["status=502: never seen here", 'path: shape never seen (..): "/.."'],
  };
  const back = fieldsToAnomaly("5-0", anomalyToFields(a));
  assert.deepEqual(back, { ...a, id: "5-0" });
});

Deno.test("an anomaly without an explanation (older messages) decodes without one", () => {
  const back = fieldsToAnomaly("5-0", anomalyToFields(base));
  assert.equal("explanation" in back, false);
  assert.deepEqual(back, { ...base, id: "5-0" });
  const broken = fieldsToAnomaly("6-0", { ...anomalyToFields(base), explanation: "not json" });
  assert.deepEqual(broken.explanation, []);
});
