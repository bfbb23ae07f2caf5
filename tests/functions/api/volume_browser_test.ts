/**
 * The volume view in Debian's headless chromium (playwright-core): embedded
 * adapters in a temp data dir, a service with a rate model and three hours of
 * counts in the rate store (a 15-minute silence and a flood among them) and
 * an incident; the page draws the uPlot chart (served by the api, no CDN)
 * with the anomalous windows marked, lists the incident, and fits a
 * 420-pixel-wide phone. Screenshots go to `tests/results/` (ignored by git),
 * or to the folder in `TAILWISE_SCREENSHOT_DIR` (`docs` refreshes the docs'
 * pictures).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { createApi } from "../../../functions/api/api.ts";
import { deployToFields } from "../../../shared/ports/deploy.ts";
import { SESSION_COOKIE } from "../../../functions/api/dashboard.ts";
import { openAdapters } from "../../../shared/adapters/open_adapters.ts";
import { RateModelBuilder } from "../../../shared/detector/detector.ts";
import { loadConfig } from "../../../shared/runtime/config.ts";
import { createTailwiseMetrics } from "../../../shared/runtime/metrics.ts";
import { IncidentManager } from "../../../shared/runtime/incidents.ts";
import type { Anomaly } from "../../../shared/ports/anomaly.ts";

const TOKEN = "volume-test-token-0123456789abcdef";
const DIR = Deno.env.get("TAILWISE_SCREENSHOT_DIR") ??
  fileURLToPath(new URL("../../results", import.meta.url));
const W = 60_000;

Deno.test("volume view: chart with expected band and marks, incidents, phone width", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-volume-" });
  const userDataDir = await Deno.makeTempDir({ prefix: "tailwise-chromium-" });
  const config = loadConfig({ TAILWISE_DATA_DIR: dataDir, API_TOKEN: TOKEN }, { hostname: "test" });
  const adapters = await openAdapters(config, {});
  const stop = new AbortController();
  const now = Date.now();
  const last = Math.floor((now - 5000) / W) * W - W;
  // A daily rhythm, deterministic noise.
  const rate = (t: number) => 40 + 25 * Math.sin((2 * Math.PI * t) / 86_400_000);
  const noise = (i: number) => ((i * 7919) % 11) - 5;
  const b = new RateModelBuilder();
  for (let w = last - 2 * 86_400_000; w < last - 3 * 3_600_000; w += W) {
    const n = Math.max(0, Math.round(rate(w) + noise(w / W)));
    for (let k = 0; k < n; k++) b.add(w + k * 100, "tpl-a", "GET /api/<*> 200 <*>ms");
  }
  const model = b.finish();
  const silenceFrom = last - 90 * W, floodFrom = last - 30 * W;
  const increments = [];
  for (let w = last - 179 * W; w <= last; w += W) {
    let n = Math.max(0, Math.round(rate(w) + noise(w / W)));
    if (w >= silenceFrom && w < silenceFrom + 15 * W) n = 0;
    if (w >= floodFrom && w < floodFrom + 10 * W) n *= 6;
    increments.push({
      service: "shop_web",
      window: w,
      total: n,
      templates: new Map([["tpl-a", n]]),
    });
  }
  await adapters.rates.add(increments);
  const incidents = new IncidentManager(adapters.incidents, { now: () => now });
  const rateAnomaly = (w: number, code: string): Anomaly => ({
    id: `${w}-0`,
    container: "shop_web",
    containerId: "",
    containerName: "shop_web",
    entryId: `rate:shop_web:${w}`,
    ts: new Date(w + W).toISOString(),
    line: `${code}: 0 lines, 40 expected`,
    score: 0.8,
    threshold: 0.5,
    reasons: [code],
    template: "",
    templateId: "",
    tokens: [],
    modelVersion: 1,
    scoredAt: now,
    kind: "rate",
  });
  await incidents.record([
    rateAnomaly(silenceFrom, "silence"),
    rateAnomaly(floodFrom, "rate_spike"),
  ]);
  // A deploy just before the flood (hostile image text), and one too old for the chart.
  for (
    const [at, image] of [[floodFrom - 2 * W, "shop/web:<b>2</b>"], [last - 400 * W, "shop/web:0"]]
  ) {
    await adapters.stream.append(config.streams.deploys, [deployToFields({
      id: "",
      container: "shop_web",
      version: `sha256:${image}`,
      image: image as string,
      previousVersion: "sha256:1",
      previousImage: "shop/web:1",
      at: at as number,
      containerName: "shop_web.1.x",
      containerId: "d".repeat(64),
    })]);
  }
  const app = createApi({
    registry: adapters.registry,
    logStream: adapters.stream,
    feedback: adapters.feedback,
    metrics: createTailwiseMetrics(),
    health: {},
    scoreLines: () => Promise.reject(new Error("not used")),
    requestTraining: () => Promise.reject(new Error("not used")),
    consumerGroups: [],
    incidents: adapters.incidents,
    rateStore: adapters.rates,
    rateModel: (s) => Promise.resolve(s === "shop_web" ? model : null),
  }, {
    token: TOKEN,
    anomaliesStream: config.streams.anomalies,
    deploysStream: config.streams.deploys,
    now: () => now,
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: stop.signal, onListen: () => {} },
    app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-sync"],
    viewport: { width: 1440, height: 900 },
    colorScheme: "dark",
  });
  try {
    await t.step("GET /rates/:service marks the silence and the flood", async () => {
      const res = await app.request("/rates/shop_web?minutes=180", {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.windows.length, 180);
      const marked = body.windows.filter((w: { anomaly: boolean }) => w.anomaly);
      const inSilence = marked.filter((w: { start: number }) =>
        w.start >= silenceFrom && w.start < silenceFrom + 15 * W
      );
      const inFlood = marked.filter((w: { start: number }) =>
        w.start >= floodFrom && w.start < floodFrom + 10 * W
      );
      assert.ok(inSilence.length >= 10, `silence windows marked: ${inSilence.length}`);
      assert.ok(inFlood.length >= 5, `flood windows marked: ${inFlood.length}`);
      assert.equal(marked.length, inSilence.length + inFlood.length, "nothing else is marked");
      const w0 = body.windows[100];
      assert.ok(w0.low < w0.expected && w0.expected < w0.high);
      // Oldest first: the incident opened at the silence, the deploy came before the flood;
      // the deploy from 400 windows ago is off the chart.
      assert.deepEqual(
        body.markers.map((m: { kind: string; text: string }) => [m.kind, m.text]),
        [
          ["incident", "incident (open): shop_web: rate_spike, silence (2 anomalies)"],
          ["deploy", "deploy shop/web:1 → shop/web:<b>2</b>"],
        ],
      );
      assert.equal(body.markers[1].at, floodFrom - 2 * W);
      const none = await app.request("/rates/nobody", {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(none.status, 404);
      await none.body?.cancel();
    });

    const page = await context.newPage();
    await context.addCookies([{
      name: SESSION_COOKIE,
      value: await (async () => {
        const res = await fetch(`${base}/login?token=${TOKEN}`, { redirect: "manual" });
        await res.body?.cancel();
        const set = res.headers.get("set-cookie") ?? "";
        return /=([^;]+)/.exec(set)![1]!;
      })(),
      url: base,
    }]);

    await t.step(
      "the page draws the chart from the api's own uPlot and lists the incident",
      async () => {
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(String(e)));
        await page.goto(`${base}/volume?service=shop_web`);
        await page.waitForSelector("body[data-ready='180']", { timeout: 15_000 });
        assert.equal(await page.locator("#chart canvas").count(), 1);
        await page.locator("body[data-markers='2']").waitFor();
        assert.equal(
          await page.locator("#markers li.deploy").innerText().then((s) =>
            s.replace(/^.*?deploy/s, "deploy")
          ),
          "deploy shop/web:1 → shop/web:<b>2</b>",
        );
        assert.equal(await page.locator("#markers b").count(), 0, "image text stays text");
        assert.match(
          (await page.locator("#markers li.incident a").getAttribute("href"))!,
          /^\/incident\?id=/,
        );
        assert.equal(await page.locator("#incidents li").count(), 1);
        assert.match(
          await page.locator("#incidents li").innerText(),
          /open.*shop_web: (silence|rate_spike)/s,
        );
        assert.deepEqual(errors, []);
        await Deno.mkdir(DIR, { recursive: true });
        await page.screenshot({ path: `${DIR}/volume.png`, fullPage: true });
      },
    );

    await t.step("at 420 px nothing overflows and Sign out stays on screen", async () => {
      await page.setViewportSize({ width: 420, height: 860 });
      await page.reload();
      await page.waitForSelector("body[data-ready='180']", { timeout: 15_000 });
      const overflow = await page.evaluate("document.documentElement.scrollWidth") as number;
      assert.ok(overflow <= 420, `page width ${overflow}`);
      const box = await page.locator("button", { hasText: "Sign out" }).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 420, JSON.stringify(box));
      const chart = await page.locator("#chart canvas").boundingBox();
      assert.ok(chart && chart.width >= 250 && chart.x + chart.width <= 420, JSON.stringify(chart));
      await page.screenshot({ path: `${DIR}/volume_phone.png`, fullPage: true });
    });

    await t.step("the incident list and an incident page, explained, at 420 px", async () => {
      await page.goto(`${base}/incident-list`);
      const link = page.locator("#incident-list a").first();
      assert.match(await link.innerText(), /shop_web/);
      await link.click();
      await page.waitForSelector("#incident");
      const text = await page.locator("#incident").innerText();
      assert.match(text, /silence/);
      assert.match(text, /lines were expected in the window and none came/);
      assert.match(text, /far more lines than usual/);
      const overflow = await page.evaluate("document.documentElement.scrollWidth") as number;
      assert.ok(overflow <= 420, `page width ${overflow}`);
      await page.locator("button[data-label='anomaly']").click();
      // (No waitForFunction: the page's CSP refuses eval, as it should.)
      await page.locator("#inc-result", { hasText: "Labelled" }).waitFor({ timeout: 15_000 });
      await page.screenshot({ path: `${DIR}/incident_phone.png`, fullPage: true });
    });
  } finally {
    await context.close();
    stop.abort();
    await server.finished;
    await adapters[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(userDataDir, { recursive: true });
  }
});
