/**
 * The dashboard in Debian's headless chromium (playwright-core), on the
 * embedded adapters in a temp data dir as `deno task start` runs them: a real
 * score handler on a stream consumer scores the lines the test appends, the
 * api serves on a real port, and the browser signs in, sees anomalies arrive
 * live, gives feedback and the suppression takes effect. Saves a screenshot
 * to `tests/results/dashboard.png` (ignored by git), or to the path in
 * `TAILWISE_SCREENSHOT` (`TAILWISE_SCREENSHOT=docs/dashboard.png` refreshes
 * the README's picture).
 *
 * @module
 */

import { deployToFields } from "../../../shared/ports/deploy.ts";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { createApi } from "../../../functions/api/api.ts";
import { dashboardLoginUrl, SESSION_COOKIE } from "../../../functions/api/dashboard.ts";
import { REASON_TEXT } from "../../../functions/api/dashboard_view.ts";
import { createScoreHandler } from "../../../functions/score/score.ts";
import { trainContainer, trainSettings } from "../../../shared/training/train_model.ts";
import { openAdapters } from "../../../shared/adapters/open_adapters.ts";
import { fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";
import { loadConfig } from "../../../shared/runtime/config.ts";
import { trainDetector } from "../../../shared/detector/detector.ts";
import { entryToFields, type LogEntry } from "../../../shared/ports/log_entry.ts";
import { createTailwiseMetrics } from "../../../shared/runtime/metrics.ts";
import { ModelCache } from "../../../shared/runtime/model_cache.ts";
import { StreamConsumer } from "../../../shared/runtime/stream_consumer.ts";
import { waitFor } from "../../harness/services.ts";

const TOKEN = "dashboard-test-token-0123456789abcdef";
const SCREENSHOT = Deno.env.get("TAILWISE_SCREENSHOT") ??
  fileURLToPath(new URL("../../results/dashboard.png", import.meta.url));
const PHONE_SCREENSHOT = SCREENSHOT.replace(/(\.png)?$/, "_phone.png");
const CONTEXT_SCREENSHOT = SCREENSHOT.replace(/(\.png)?$/, "_context.png");
const SERVICE_SCREENSHOT = SCREENSHOT.replace(/(\.png)?$/, "_service.png");
const PATTERNS_SCREENSHOT = SCREENSHOT.replace(/(\.png)?$/, "_patterns.png");
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

let _seq = 0;
function _entry(container: string, line: string): LogEntry {
  return {
    containerId: `${container}-0123456789abcdef`,
    containerName: container,
    image: `${container}:1`,
    stream: "stderr",
    ts: new Date().toISOString(),
    seq: _seq++,
    line,
  };
}

function _web(i: number): string {
  const paths = ["/api/users", "/api/orders", "/health", "/static/app.js", "/api/cart"];
  const codes = [200, 200, 200, 304, 201];
  return `GET ${paths[i % 5]}/${i % 97} ${codes[i % 5]} ${(i * 7) % 300}ms ` +
    `user=${i % 31} region=eu-west-1`;
}

function _worker(i: number): string {
  const jobs = ["send_email", "resize_image", "sync_inventory", "charge_card"];
  return `job ${jobs[i % 4]} id=${10_000 + i} finished in ${(i * 13) % 900}ms attempts=1`;
}

function _postgres(i: number): string {
  return i % 3 === 0
    ? `LOG:  checkpoint complete: wrote ${i % 400} buffers (${i % 9}.${i % 10}%)`
    : `LOG:  duration: ${(i * 3) % 90}.${
      i % 1000
    } ms  statement: SELECT * FROM orders WHERE id = ${i}`;
}

Deno.test("dashboard: sign in, live anomalies over SSE, feedback suppresses, hostile lines stay text", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-dashboard-" });
  const userDataDir = await Deno.makeTempDir({ prefix: "tailwise-chromium-" });
  const config = loadConfig({ TAILWISE_DATA_DIR: dataDir, API_TOKEN: TOKEN }, { hostname: "test" });
  const logs = config.streams.logs;
  const anomalies = config.streams.anomalies;
  const adapters = await openAdapters(config, { logStore: true });
  const logStore = adapters.logStore!;
  await logStore.prepare();
  const stop = new AbortController();
  const models = new ModelCache(adapters.registry);
  const metrics = createTailwiseMetrics();
  const consumer = new StreamConsumer(
    adapters.stream,
    createScoreHandler({ models, stream: adapters.stream, feedback: adapters.feedback, metrics }, {
      anomalyStream: anomalies,
    }),
    {
      stream: logs,
      group: "score",
      consumer: "score-test",
      deadLetterStream: config.streams.deadLetter,
      blockMs: 100,
    },
  );
  await adapters.stream.createGroup(logs, "score");
  const scoring = consumer.run(stop.signal);
  const app = createApi({
    registry: adapters.registry,
    logStream: adapters.stream,
    feedback: adapters.feedback,
    metrics,
    health: { stream: () => adapters.stream.ping() },
    scoreLines: () => Promise.reject(new Error("not used by the dashboard")),
    requestTraining: async (container) => ({
      ...await trainContainer(container, {
        logStore,
        registry: adapters.registry,
        feedback: adapters.feedback,
        lock: adapters.lock,
        models,
      }, trainSettings(config)),
    }),
    consumerGroups: [{ stream: logs, group: "score" }],
    lineCounts: (since) => logStore.containers({ since }),
    history: (key, o) => logStore.history(key, o),
    context: (key, ts, o) => logStore.context(key, ts, o),
    search: (key, q, o) => logStore.search(key, q, o),
  }, {
    token: TOKEN,
    deploysStream: config.streams.deploys,
    anomaliesStream: anomalies,
    dashboard: {
      logsStream: logs,
      minLines: config.train.minLines,
      trainWindowMs: config.train.windowMs,
      suppressMs: config.api.suppressMs,
      signal: stop.signal,
      pollMs: 200,
      stateEveryMs: 1000,
    },
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: stop.signal, onListen: () => {} },
    app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    colorScheme: "dark",
  });

  const append = (container: string, lines: string[]) =>
    adapters.stream.append(logs, lines.map((l) => entryToFields(_entry(container, l))));
  const scored = () =>
    waitFor(async () => {
      const info = await adapters.stream.groupInfo(logs, "score");
      return info.pending === 0 && info.lag === 0;
    }, { timeoutMs: 20_000, what: "the score consumer to finish the log stream" });
  const anomalyLines = async () =>
    (await adapters.stream.range(anomalies)).map((m) => fieldsToAnomaly(m.id, m.fields));

  try {
    await t.step(
      "seed: two trained containers, one learning, anomalies before the page loads",
      async () => {
        const web = Array.from({ length: 2000 }, (_, i) => _web(i));
        const v1 = await trainDetector(web.slice(0, 1500), { seed: 1 });
        await adapters.registry.put("web", v1.toBytes(), {
          lines: 1500,
          threshold: v1.info.threshold,
        });
        const v2 = await trainDetector(web, { seed: 2 });
        await adapters.registry.put("web", v2.toBytes(), {
          lines: 2000,
          threshold: v2.info.threshold,
        });
        const worker = Array.from({ length: 1200 }, (_, i) => _worker(i));
        const w1 = await trainDetector(worker, { seed: 3 });
        await adapters.registry.put("worker", w1.toBytes(), {
          lines: 1200,
          threshold: w1.info.threshold,
        });
        // postgres is learning: 180 lines of history, cold-start alerts on severity words.
        const history = Array.from({ length: 180 }, (_, i) => _entry("postgres", _postgres(i)));
        await logStore.write(history);

        await append("web", Array.from({ length: 240 }, (_, i) => _web(i + 5000)));
        await append("worker", Array.from({ length: 90 }, (_, i) => _worker(i + 5000)));
        await append("postgres", Array.from({ length: 40 }, (_, i) => _postgres(i + 5000)));
        await append("web", [
          "panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV]",
          "GET /api/orders/17 503 30012ms user=4 region=eu-west-1 upstream=payments timeout",
        ]);
        await append("worker", [
          "job charge_card id=99812 failed: stripe: card_declined (do_not_honor) attempts=5",
        ]);
        await append("postgres", [
          `ERROR <img src=x onerror="window.__pwned=1"> \u001b[31mred\u001b[0m \u202egnp.exe`,
          `ERROR: ${"A".repeat(1 << 20)}`,
        ]);
        await scored();
        const found = await anomalyLines();
        assert.ok(found.some((a) => a.line.includes("onerror")), "the hostile line is an anomaly");
        assert.ok(found.some((a) => a.line.length > 1_000_000), "the 1 MiB line is an anomaly");
      },
    );

    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));

    await t.step("without a session: the login form, and the api answers 401", async () => {
      const res = await page.goto(`${base}/`);
      assert.equal(res?.status(), 200);
      await page.locator("#login-form").waitFor();
      const status = await page.evaluate(async () => (await fetch("/anomalies")).status);
      assert.equal(status, 401);
    });

    await t.step("a wrong token is refused", async () => {
      await page.fill("#token", "not-the-token-0123456789");
      await Promise.all([page.waitForURL(`${base}/login`), page.click("button[type=submit]")]);
      assert.match(await page.locator(".error").innerText(), /not right/);
    });

    await t.step("cross-origin sign-in and cookie-authenticated changes are refused", async () => {
      const login = await fetch(`${base}/login`, {
        method: "POST",
        headers: {
          origin: "http://evil.example",
          "content-type": "application/x-www-form-urlencoded",
        },
        body: `token=${TOKEN}`,
        redirect: "manual",
      });
      await login.body?.cancel();
      assert.equal(login.status, 403);
      const ok = await fetch(`${base}/login?token=${TOKEN}`, { redirect: "manual" });
      await ok.body?.cancel();
      assert.equal(ok.status, 303);
      const cookie = (ok.headers.get("set-cookie") ?? "").split(";")[0]!;
      assert.ok(cookie.startsWith(`${SESSION_COOKIE}=`) && !cookie.includes(TOKEN));
      const forged = await fetch(`${base}/train/web`, {
        method: "POST",
        headers: { cookie, origin: "http://evil.example" },
      });
      assert.equal(forged.status, 403);
      assert.match((await forged.json()).error, /Cross-origin/);
      const read = await fetch(`${base}/models`, { headers: { cookie } });
      assert.equal(read.status, 200);
      await read.body?.cancel();
    });

    await t.step(
      "the sign-in link sets an HttpOnly SameSite=Strict cookie, no token in the URL",
      async () => {
        await page.goto(dashboardLoginUrl(base, TOKEN));
        await page.waitForURL(`${base}/`);
        await page.locator("#anomalies").waitFor();
        assert.ok(!page.url().includes(TOKEN));
        const [cookie] = (await context.cookies(base)).filter((c) => c.name === SESSION_COOKIE);
        assert.ok(cookie, "the session cookie is set");
        assert.equal(cookie.httpOnly, true);
        assert.equal(cookie.sameSite, "Strict");
        assert.ok(!cookie.value.includes(TOKEN));
        assert.equal(await page.evaluate("document.cookie"), "", "scripts cannot read it");
        assert.equal(await page.evaluate("location.hash"), "");
      },
    );

    await t.step("containers show their log rate and model state", async () => {
      await page.locator('#live[data-state="live"]').waitFor();
      const web = page.locator('#containers tr[data-key="web"]');
      await web.locator('[data-f="version"]:text("v2")').waitFor();
      assert.equal(await web.locator('[data-f="state"]').innerText(), "trained");
      assert.ok(Number(await web.locator('[data-f="rate"]').innerText()) > 0);
      assert.equal(await web.locator('[data-action="rollback"]').isDisabled(), false);
      const pg = page.locator('#containers tr[data-key="postgres"]');
      assert.equal(
        await pg.locator('[data-f="state"]').innerText(),
        "learning — 320 lines until the first model",
      );
      assert.equal(await pg.locator('[data-action="rollback"]').isDisabled(), true);
    });

    await t.step("hostile lines render as text, cut at 2 KB", async () => {
      const row = page.locator('#anomalies tr.anomaly:has-text("onerror")');
      const text = await row.locator('[data-f="line"]').innerText();
      assert.ok(text.includes('<img src=x onerror="window.__pwned=1">'), text);
      assert.ok(!text.includes("\u001b") && !text.includes("\u202e"), "escapes made harmless");
      assert.ok(text.includes("[U+202E]"), "the RTL override is shown, not applied");
      assert.equal(await page.locator("#anomalies img").count(), 0);
      assert.equal(await page.evaluate(() => (window as { __pwned?: number }).__pwned), undefined);
      const long = await page.locator('#anomalies tr.anomaly:has-text("AAAA") [data-f="line"]')
        .evaluate((el) => el.textContent ?? "");
      assert.ok(long.length <= 2049 && long.endsWith("…"), `${long.length} chars`);
    });

    let templateId = "";
    await t.step("an anomaly appended after the page loaded arrives live", async () => {
      const before = await page.locator("#anomalies tr.anomaly").count();
      await append("postgres", [
        "FATAL:  remaining connection slots are reserved for role replication, pid 4242",
        `ERROR live <script>window.__pwned=2</script><img src=x onerror="window.__pwned=3">`,
      ]);
      const row = page.locator('#anomalies tr.anomaly:has-text("remaining connection slots")');
      await row.waitFor({ timeout: 15_000 });
      await page.locator('#anomalies tr.anomaly:has-text("ERROR live")').waitFor();
      assert.equal(await page.locator("#anomalies tr.anomaly").count(), before + 2);
      assert.equal(
        await page.locator("#anomalies tr.anomaly").first().innerText().then((s) =>
          s.includes("ERROR live")
        ),
        true,
        "newest first",
      );
      assert.equal(await page.evaluate(() => (window as { __pwned?: number }).__pwned), undefined);
      assert.equal(await page.locator("#anomalies img, #anomalies script").count(), 0);
      assert.deepEqual(
        await row.locator(".chip").allInnerTexts(),
        ["severity"],
      );
      templateId = (await row.getAttribute("data-template-id")) ?? "";
      assert.ok(templateId.length > 0);
    });

    await t.step("clicking normal records feedback and suppresses the template", async () => {
      const row = page.locator('#anomalies tr.anomaly:has-text("remaining connection slots")');
      await row.locator('button[data-label="normal"]').click();
      await page.locator(
        '#anomalies tr.anomaly[data-feedback="normal"]:has-text("remaining connection slots")',
      ).waitFor();
      assert.equal(await adapters.feedback.isSuppressed("postgres", templateId), true);
      await page.locator("#toast:not([hidden])").waitFor();
      assert.match(await page.locator("#toast").innerText(), /silenced/);
    });

    await t.step(
      "a new line of that template adds no anomaly, on the page or in the stream",
      async () => {
        const before = (await anomalyLines()).length;
        await append("postgres", [
          "FATAL:  remaining connection slots are reserved for role replication, pid 5151",
          'PANIC:  could not write to file "pg_wal/xlogtemp.77": No space left on device',
        ]);
        await page.locator('#anomalies tr.anomaly:has-text("No space left")').waitFor({
          timeout: 15_000,
        });
        await scored();
        const after = await anomalyLines();
        assert.equal(after.length, before + 1, "only the PANIC line is new");
        assert.ok(after.at(-1)!.line.startsWith("PANIC"));
        assert.equal(
          await page.locator('#anomalies tr.anomaly:has-text("remaining connection slots")')
            .count(),
          1,
        );
      },
    );

    await t.step("retrain answers in a toast (postgres is still learning)", async () => {
      await page.locator("#toast").waitFor({ state: "hidden", timeout: 10_000 });
      await page.locator('#containers tr[data-key="postgres"] [data-action="retrain"]').click();
      await page.locator('#toast:has-text("Not enough lines for postgres")').waitFor();
    });

    await t.step("more live anomalies, then a screenshot", async () => {
      await append("web", [
        "upstream connect error or disconnect/reset before headers. reset reason: connection timeout",
      ]);
      await append("worker", [
        "WARN queue depth 18234 above high watermark 10000, consumers=2 lag=412s",
      ]);
      await append("postgres", [
        "ERROR:  deadlock detected: process 8812 waits for ShareLock on transaction 99121",
      ]);
      await page.locator('#anomalies tr.anomaly:has-text("deadlock detected")').waitFor();
      await scored();
      await page.locator("#toast").waitFor({ state: "hidden", timeout: 10_000 });
      await page.mouse.move(0, 0);
      await page.evaluate("document.activeElement?.blur(); scrollTo(0, 0)");
      await page.screenshot({ path: SCREENSHOT });
      const size = (await Deno.stat(SCREENSHOT)).size;
      assert.ok(size > 10_000, `${size} bytes`);
    });

    await t.step("seven repeats of one template fold into one row, expandable", async () => {
      await append(
        "web",
        Array.from(
          { length: 7 },
          (_, i) =>
            `upstream timed out (110: Connection timed out) while reading response header, client: 10.0.3.${
              i + 10
            }`,
        ),
      );
      const rows = page.locator('#anomalies tr.anomaly:has-text("upstream timed out")');
      await page.locator(
        '#anomalies tr.fold-head:has-text("upstream timed out") .fold-n:has-text("×7")',
      )
        .waitFor({ timeout: 15_000 });
      await scored();
      assert.equal(await rows.count(), 7, "all seven rows are on the page");
      assert.equal(await rows.locator("visible=true").count(), 1, "six are folded away");
      const head = page.locator('#anomalies tr.fold-head:has-text("upstream timed out")');
      assert.match(
        await head.locator(".fold-n").innerText(),
        /^×7 first \d\d:\d\d:\d\d · last \d\d:\d\d:\d\d$/,
      );
      await head.locator('button[data-action="fold"]:has-text("show 6 more")').click();
      assert.equal(await rows.locator("visible=true").count(), 7);
      assert.equal(
        await head.locator('button[data-action="fold"]').getAttribute("aria-expanded"),
        "true",
      );
      await head.locator('button[data-action="fold"]:has-text("hide repeats")').click();
      assert.equal(await rows.locator("visible=true").count(), 1);
      // Other templates stay unfolded.
      assert.equal(
        await page.locator('#anomalies tr.anomaly:has-text("deadlock detected")').isVisible(),
        true,
      );
    });

    await t.step("the lines around an anomaly, from the history, as text", async () => {
      const head = page.locator('#anomalies tr.fold-head:has-text("upstream timed out")');
      const ts = (await head.locator('time[data-f="time"]').getAttribute("datetime"))!;
      const line = await head.locator('[data-f="line"]').innerText();
      const shift = (s: number) => new Date(Date.parse(ts) + s * 1000).toISOString();
      // What ingest would have written to the history around it.
      await logStore.write([
        { ..._entry("web", "GET /api/cart/1 200 12ms user=3 region=eu-west-1"), ts: shift(-2) },
        {
          ..._entry(
            "web",
            `before <script>window.__pwned=4</script> \u001b[1mbold\u001b[0m \u202eevil`,
          ),
          ts: shift(-1),
        },
        { ..._entry("web", line), ts },
        { ..._entry("web", "GET /health 200 1ms user=0 region=eu-west-1"), ts: shift(1) },
        { ..._entry("other", "not this service"), ts: shift(1) },
      ]);
      await head.locator('button[data-action="context"]').click();
      const box = head.locator(".ctx");
      await box.locator("li.hit").waitFor();
      const items = await box.locator("li").allInnerTexts();
      assert.equal(items.length, 4, items.join("\n"));
      assert.match(items[0]!, /^\d\d:\d\d:\d\d ?GET \/api\/cart\/1 200/);
      assert.ok(
        items[1]!.includes("<script>window.__pwned=4</script> bold [U+202E]evil"),
        items[1],
      );
      assert.ok(items[2]!.includes("upstream timed out"));
      assert.match(items[3]!, /GET \/health 200/);
      assert.equal(await box.locator("script, img").count(), 0);
      assert.equal(await page.evaluate(() => (window as { __pwned?: number }).__pwned), undefined);
      await head.screenshot({ path: CONTEXT_SCREENSHOT });
      await head.locator('button[data-action="context"]').click();
      assert.equal(await box.isHidden(), true);
    });

    await t.step("each reason code is explained: chip tooltips and a legend", async () => {
      const chip = page.locator('#anomalies tr.anomaly:has-text("deadlock detected") .chip')
        .first();
      const code = await chip.innerText();
      assert.equal(await chip.getAttribute("title"), REASON_TEXT[code]);
      await page.locator(".legend summary").click();
      for (const [c, text] of Object.entries(REASON_TEXT)) {
        assert.equal(await page.locator(`.legend dt:has-text("${c}") + dd`).innerText(), text);
      }
      await page.locator(".legend summary").click();
    });

    await t.step(
      "420 px wide: no horizontal overflow, Sign out visible, lines readable",
      async () => {
        const phone = await context.newPage();
        phone.on("pageerror", (e) => errors.push(String(e)));
        try {
          for (const width of [420, 1920]) {
            await phone.setViewportSize({ width, height: 900 });
            await phone.goto(`${base}/`);
            await phone.locator("#anomalies tr.anomaly").first().waitFor();
            const overflow = await phone.evaluate(
              "document.documentElement.scrollWidth - document.documentElement.clientWidth",
            );
            assert.equal(overflow, 0, `no horizontal scrolling at ${width} px`);
            const out = phone.locator('button:has-text("Sign out")');
            assert.equal(await out.isVisible(), true);
            const box = (await out.boundingBox())!;
            assert.ok(
              box.x >= 0 && box.x + box.width <= width,
              `Sign out at ${box.x}+${box.width}`,
            );
            const line = await phone.locator(
              '#anomalies tr.anomaly:has-text("deadlock detected") .line',
            )
              .boundingBox();
            assert.ok(
              line !== null && line.width >= Math.min(300, width - 60),
              `line ${line?.width} px wide`,
            );
            assert.equal(
              await phone.locator('#anomalies tr.anomaly:has-text("upstream timed out")')
                .locator("visible=true").count(),
              1,
              `repeats folded at ${width} px`,
            );
            if (width === 420) {
              await phone.evaluate("document.activeElement?.blur(); scrollTo(0, 0)");
              await phone.screenshot({ path: PHONE_SCREENSHOT });
            }
          }
        } finally {
          await phone.close();
        }
      },
    );

    await t.step("a deploy: marked on the timeline, its report opens under its row", async () => {
      const [id] = await adapters.stream.append(config.streams.deploys, [deployToFields({
        id: "",
        container: "web",
        version: "sha256:2",
        image: "shop/web:2",
        previousVersion: "sha256:1",
        previousImage: "shop/web:1",
        at: Date.now() - 60_000,
        containerName: "web",
        containerId: "c".repeat(64),
      })]);
      await page.reload();
      await page.locator(`#anomalies tr.deploy-marker[data-deploy="${id}"]`).waitFor();
      await page.locator(`#deploys tr.deploy[data-deploy="${id}"] [data-action="report"]`).click();
      const report = page.locator(`#deploys tr.deploy-report .report`);
      await report.locator('h4:has-text("New templates")').waitFor();
      const text = await report.textContent() ?? "";
      assert.match(text, /lines after the deploy/);
      assert.match(text, /Anomalies after the deploy \(\d+\)/);
    });

    await t.step(
      "a service's page: state, containers, image, versions, deploys, links",
      async () => {
        // The containers table is re-rendered live from clones: their links must carry the key.
        await page.locator('#live[data-state="live"]').waitFor();
        await page.evaluate(
          `document.querySelector('#containers tr[data-key="web"]').dataset.old = "1"`,
        );
        await page.locator('#containers tr[data-key="web"]:not([data-old])').waitFor();
        const link = page.locator('#containers tr[data-key="web"] a.service-link');
        assert.equal(await link.getAttribute("href"), "/service?name=web");
        await Promise.all([page.waitForURL(`${base}/service?name=web`), link.click()]);
        assert.equal(await page.locator("#service-name").innerText(), "web");
        const facts = await page.locator("#service-facts").innerText();
        assert.match(facts, /trained, model v2 current/);
        assert.match(facts, /shop\/web:2/, "image from the newest deploy");
        assert.deepEqual(await page.locator("#service-containers .chip").allInnerTexts(), ["web"]);
        assert.deepEqual(
          await page.locator("#service-versions tbody td:first-child").allInnerTexts(),
          ["v2", "v1"],
        );
        assert.match(
          await page.locator("#service-deploys tbody").innerText(),
          /shop\/web:1 → shop\/web:2/,
        );
        assert.equal(
          await page.locator('#service-facts a:has-text("Volume")').getAttribute("href"),
          "/volume?service=web",
        );
        // Search the service's history: literal, any case, hostile lines as text.
        await page.fill("#search-q", "UPSTREAM timed");
        await Promise.all([
          page.waitForURL(/q=UPSTREAM/),
          page.click('.search-form button[type="submit"]'),
        ]);
        assert.equal(await page.locator("#search-count").innerText(), "1 line found");
        assert.match(await page.locator("#search-hits li").innerText(), /upstream timed out/);
        await page.fill("#search-q", "<script>");
        await page.selectOption("#search-range", "all");
        await Promise.all([
          page.waitForURL(/range=all/),
          page.click('.search-form button[type="submit"]'),
        ]);
        assert.match(
          await page.locator("#search-hits li").innerText(),
          /before <script>window.__pwned=4<\/script> bold \[U\+202E\]evil/,
        );
        assert.equal(await page.locator("#search-hits script").count(), 0);
        assert.equal(
          await page.evaluate(() => (window as { __pwned?: number }).__pwned),
          undefined,
        );
        assert.equal(await page.locator("#search-range").inputValue(), "all");
        await page.screenshot({ path: SERVICE_SCREENSHOT, fullPage: true });
        await page.setViewportSize({ width: 420, height: 900 });
        assert.equal(
          await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth",
          ),
          0,
        );
        assert.equal(await page.locator('button:has-text("Sign out")').isVisible(), true);
        await page.setViewportSize({ width: 1440, height: 900 });
        // Patterns of the service over the last hour, linked from its page.
        const t0 = Date.now() - 50 * 60_000;
        await logStore.write([
          ...Array.from({ length: 60 }, (_, i) => ({
            ..._entry("web", _web(i)),
            ts: new Date(t0 + i * 45_000).toISOString(),
          })),
          ...Array.from({ length: 7 }, (_, i) => ({
            ..._entry(
              "web",
              `upstream timed out (110: Connection timed out) while reading response header, client: 10.0.4.${i}`,
            ),
            ts: new Date(t0 + 40 * 60_000 + i * 1000).toISOString(),
          })),
        ]);
        await page.goto(`${base}/service?name=web`);
        await Promise.all([
          page.waitForURL(/\/patterns\?service=web/),
          page.locator('#service-facts a:has-text("Patterns")').click(),
        ]);
        await page.selectOption("#patterns-range", "1h");
        await Promise.all([
          page.waitForURL(/range=1h/),
          page.click('.search-form button[type="submit"]'),
        ]);
        const upstream = page.locator('#patterns tr.pattern:has-text("upstream timed out")');
        assert.equal(await upstream.locator("td.num").innerText(), "8");
        assert.equal(await upstream.locator("svg.spark polyline").count(), 1);
        const rows = await page.locator("#patterns tr.pattern").count();
        assert.ok(rows >= 4, `${rows} templates`);
        assert.equal(await page.locator("#patterns svg.spark").count(), rows);
        const hostile = page.locator('#patterns tr.pattern:has-text("pwned")');
        assert.match(
          await hostile.locator(".example").innerText(),
          /<script>window.__pwned=4<\/script>/,
        );
        assert.equal(await page.locator("#patterns script").count(), 0);
        await page.screenshot({ path: PATTERNS_SCREENSHOT, fullPage: true });
        await page.setViewportSize({ width: 420, height: 900 });
        assert.equal(
          await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth",
          ),
          0,
          "patterns at 420 px",
        );
        await page.setViewportSize({ width: 1440, height: 900 });
        const missing = await page.goto(`${base}/service?name=nobody`);
        assert.equal(missing?.status(), 404);
      },
    );
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    stop.abort();
    await server.finished;
    await scoring;
    await adapters[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(userDataDir, { recursive: true });
  }
});
