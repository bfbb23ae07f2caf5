import assert from "node:assert/strict";
import {
  createTailwiseMetrics,
  escapeLabelValue,
  MetricsRegistry,
} from "../../../shared/runtime/metrics.ts";

Deno.test("MetricsRegistry.render() writes counters and gauges in the 0.0.4 text format", () => {
  const m = new MetricsRegistry();
  const c = m.counter("t_lines_total", "Lines\nread \\ here", { labelNames: ["container"] });
  const g = m.gauge("t_lag", "Lag", { labelNames: ["stream", "group"] });
  const plain = m.counter("t_plain_total", "No labels");
  c.inc({ container: "web" }, 3);
  c.inc({ container: "web" });
  c.inc({ container: 'we"ird\\na\nme' });
  g.set({ stream: "s", group: "score" }, 7);
  g.set({ stream: "s", group: "ingest" }, Infinity);
  assert.equal(
    m.render(),
    [
      "# HELP t_lines_total Lines\\nread \\\\ here",
      "# TYPE t_lines_total counter",
      't_lines_total{container="web"} 4',
      't_lines_total{container="we\\"ird\\\\na\\nme"} 1',
      "# HELP t_lag Lag",
      "# TYPE t_lag gauge",
      't_lag{stream="s",group="score"} 7',
      't_lag{stream="s",group="ingest"} +Inf',
      "# HELP t_plain_total No labels",
      "# TYPE t_plain_total counter",
      "t_plain_total 0",
      "",
    ].join("\n"),
  );
  assert.equal(plain.value(), 0);
  assert.equal(c.value({ container: "web" }), 4);
});

Deno.test("MetricsRegistry.histogram() renders cumulative buckets, +Inf, sum and count", () => {
  const m = new MetricsRegistry();
  const h = m.histogram("t_seconds", "Latency", { labelNames: ["route"], buckets: [0.1, 1] });
  h.observe({ route: "/score" }, 0.05);
  h.observe({ route: "/score" }, 0.5);
  h.observe({ route: "/score" }, 5);
  assert.deepEqual(h.snapshot({ route: "/score" }), { count: 3, sum: 5.55, buckets: [1, 2] });
  assert.equal(
    m.render(),
    [
      "# HELP t_seconds Latency",
      "# TYPE t_seconds histogram",
      't_seconds_bucket{route="/score",le="0.1"} 1',
      't_seconds_bucket{route="/score",le="1"} 2',
      't_seconds_bucket{route="/score",le="+Inf"} 3',
      't_seconds_sum{route="/score"} 5.55',
      't_seconds_count{route="/score"} 3',
      "",
    ].join("\n"),
  );
});

Deno.test("Histogram.observe() takes a bare value when the histogram has no labels", () => {
  const m = new MetricsRegistry();
  const h = m.histogram("t_plain_seconds", "Plain", { buckets: [1] });
  h.observe(0.5);
  h.observe({}, 2);
  assert.deepEqual(h.snapshot(), { count: 2, sum: 2.5, buckets: [1] });
  assert.throws(() => h.observe(NaN), RangeError);
  assert.match(m.render(), /^t_plain_seconds_bucket\{le="1"\} 1$/m);
});

Deno.test("MetricsRegistry rejects bad names, labels, buckets and counter decrements", () => {
  const m = new MetricsRegistry();
  assert.throws(() => m.counter("1bad", "x"), TypeError);
  assert.throws(() => m.counter("ok_total", "x", { labelNames: ["__x"] }), TypeError);
  assert.throws(() => m.histogram("h", "x", { labelNames: ["le"] }), TypeError);
  assert.throws(() => m.histogram("h2", "x", { buckets: [1, 1] }), RangeError);
  const c = m.counter("c_total", "x", { labelNames: ["a"] });
  assert.throws(() => m.counter("c_total", "again"), /already registered/);
  assert.throws(() => c.inc({ a: "1" }, -1), RangeError);
  assert.throws(() => c.inc({ b: "1" }), /expected \{a\}/);
});

Deno.test("createTailwiseMetrics() registers the shared metrics once per registry", () => {
  const t = createTailwiseMetrics();
  t.linesIn.inc({ container: "a" });
  t.modelVersion.set({ container: "a" }, 3);
  const text = t.registry.render();
  for (
    const name of [
      "tailwise_lines_in_total",
      "tailwise_lines_scored_total",
      "tailwise_anomalies_total",
      "tailwise_stream_lag",
      "tailwise_stream_pending",
      "tailwise_model_version",
      "tailwise_score_latency_seconds",
      "tailwise_http_requests_total",
      "tailwise_http_request_duration_seconds",
    ]
  ) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, "m"));
  }
  assert.throws(() => createTailwiseMetrics(t.registry), /already registered/);
  assert.equal(escapeLabelValue('a"b'), 'a\\"b');
});
