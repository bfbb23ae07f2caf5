import assert from "node:assert/strict";
import { splitTimestamp } from "../../../shared/detector/timestamp.ts";
import { RateModel, RateModelBuilder, RateMonitor } from "../../../shared/detector/rate_model.ts";
import { bundleModel, splitModel } from "../../../shared/detector/model_bundle.ts";
import { ModelFormatError } from "../../../shared/detector/model_format_error.ts";

const MIN = 60_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);

/** Two days of a steady service: 30 lines a minute of "a", 2 of "hb", deterministic. */
function steady(days = 2): RateModel {
  const b = new RateModelBuilder();
  for (let m = 0; m < days * 1440; m++) {
    const t = T0 + m * MIN;
    for (let i = 0; i < 28 + (m % 5); i++) b.add(t + i * 1000, "a", "GET <*>");
    b.add(t + 100, "hb", "heartbeat");
    b.add(t + 30_100, "hb", "heartbeat");
  }
  return b.finish();
}

function counts(total: number, hb = 2) {
  return { total, templates: new Map([["a", total - hb], ["hb", hb]]) };
}

Deno.test("splitTimestamp() reads docker's RFC 3339 prefix and strips it", () => {
  const s = splitTimestamp("2026-11-30T10:00:00.123456789Z GET / 200");
  assert.deepEqual(s, { time: Date.UTC(2026, 10, 30, 10, 0, 0, 123), line: "GET / 200" });
  assert.equal(splitTimestamp("2026-11-30T12:00:00+02:00 x")?.time, Date.UTC(2026, 10, 30, 10));
  assert.equal(splitTimestamp("GET / 200"), null);
  assert.equal(splitTimestamp("2026-13-30T10:00:00Z x"), null);
});

Deno.test("RateModel round-trips through bytes and a model bundle", () => {
  const m = steady();
  const again = RateModel.fromBytes(m.toBytes());
  const t = T0 + 3 * DAY + 600 * MIN;
  assert.equal(again.expected(t), m.expected(t));
  assert.equal(again.expected(t, "hb"), m.expected(t, "hb"));
  const line = new Uint8Array([0x54, 0x57, 0x44, 0x4d, 2, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0]);
  const parts = splitModel(bundleModel(line, m.toBytes()));
  assert.deepEqual(parts.detector, line);
  assert.deepEqual(RateModel.fromBytes(parts.rates!).expected(t), m.expected(t));
  assert.deepEqual(splitModel(line), { detector: line });
  const bad = m.toBytes();
  bad[20]! ^= 0xff;
  assert.throws(() => RateModel.fromBytes(bad), ModelFormatError);
});

Deno.test("RateMonitor flags silence in its first window and not normal minutes", () => {
  const m = steady();
  const e = m.expected(T0 + 2 * DAY)!;
  assert.ok(e > 28 && e < 35, `expected ${e}`);
  const mon = new RateMonitor(m);
  let t = T0 + 2 * DAY;
  for (let i = 0; i < 120; i++, t += MIN) {
    assert.equal(mon.observe(t, counts(28 + (i % 5) + 2)).anomaly, false);
  }
  const w = mon.observe(t, { total: 0, templates: new Map() });
  assert.equal(w.anomaly, true);
  assert.equal(w.reasons[0]!.code, "silence");
  assert.equal(w.reasons[0]!.observed, 0);
  assert.ok(w.reasons[0]!.expected > 28);
  assert.equal(w.reasons.filter((r) => r.code === "template_gone").length, 0);
});

Deno.test("RateMonitor flags a template spike and a regular template that stops", () => {
  const m = steady();
  const mon = new RateMonitor(m);
  let t = T0 + 2 * DAY;
  for (let i = 0; i < 30; i++, t += MIN) mon.observe(t, counts(32));
  const spike = mon.observe(t, { total: 60, templates: new Map([["a", 30], ["hb", 30]]) });
  assert.deepEqual(
    spike.reasons.map((r) => [r.code, r.templateId, r.observed]),
    [["rate_spike", "hb", 30]],
  );
  t += MIN;
  let gone;
  for (let i = 0; i < 15 && !gone; i++, t += MIN) {
    const w = mon.observe(t, { total: 30, templates: new Map([["a", 30]]) });
    gone = w.reasons.find((r) => r.code === "template_gone");
  }
  assert.ok(gone, "template_gone within 15 windows");
  assert.equal(gone.templateId, "hb");
  assert.equal(gone.observed, 0);
});

Deno.test("RateMonitor never alerts where the history is too thin", () => {
  const b = new RateModelBuilder();
  for (let m = 0; m < 120; m++) for (let i = 0; i < 30; i++) b.add(T0 + m * MIN + i, "a", "a");
  const model = b.finish();
  const mon = new RateMonitor(model);
  const w = mon.observe(T0 + DAY / 2, { total: 0, templates: new Map() });
  assert.equal(w.expected, null);
  assert.equal(w.anomaly, false);
  assert.ok(new RateMonitor(model).observe(T0 + DAY + 30 * MIN, counts(0, 0)).anomaly);
});
