/**
 * The dashboard's volume view: per service, lines per window against the
 * expected band of its rate model, with markers where a window was
 * anomalous, and the service's incidents beside it.
 *
 * - `GET /rates/:service?minutes=N` (JSON): the service's windows of the
 *   last N minutes (default 180, at most the 6 hours the rate store keeps):
 *   `start`, `lines`, `expected`, `low`, `high`, `anomaly`, `reasons`.
 * - `GET /volume?service=NAME`: the page (uPlot chart, incident list).
 * - `GET /ui/uplot.js`, `/ui/uplot.css`: uPlot 1.6.32 from npm, served by
 *   the api itself (no CDN); `GET /ui/volume.js`: the page's script.
 *
 * A Hono sub-app mounted at `/`; the api's auth (bearer or session) covers it.
 *
 * @module
 */

import { createRequire } from "node:module";
import { Hono } from "hono";
import { html } from "hono/html";
import { HTTPException } from "hono/http-exception";
import { pageShell } from "./page_shell.ts";
import { type RateModel, RateMonitor } from "../../shared/detector/detector.ts";
import type { IncidentStore } from "../../shared/ports/incident_store.ts";
import { RATE_COUNT_TTL_MS, type RateStore } from "../../shared/ports/rate_store.ts";
import type { Deploy } from "../../shared/ports/deploy.ts";
import { displayText } from "./dashboard_view.ts";

/** What the volume view needs. */
export interface VolumeDeps {
  /** Stored counts per window. */
  rates: RateStore;
  /** A service's rate model (null when it has none). */
  rateModel: (service: string) => Promise<RateModel | null>;
  /** Incidents, listed beside the chart and marked on it. */
  incidents?: IncidentStore;
  /** A service's recent deploys, newest first, marked on the chart. */
  deploys?: (service: string) => Promise<Deploy[]>;
  /**
   * The clock (ms since the epoch).
   * @default Date.now
   */
  now?: () => number;
}

/** A deploy or an incident placed on the volume chart. */
export interface VolumeMarker {
  /** What happened. */
  kind: "deploy" | "incident";
  /** When (ms since the epoch): the deploy, or the incident's opening. */
  at: number;
  /** The deploy's or incident's id. */
  id: string;
  /** What to show, made safe for display. */
  text: string;
}

/**
 * The deploys and incidents of a service from `from` on, oldest first.
 *
 * @param deps where deploys and incidents come from
 * @param service the service
 * @param from the earliest time (ms since the epoch)
 * @returns the markers
 */
export async function volumeMarkers(
  deps: Pick<VolumeDeps, "deploys" | "incidents">,
  service: string,
  from: number,
): Promise<VolumeMarker[]> {
  const [deploys, incidents] = await Promise.all([
    deps.deploys ? deps.deploys(service) : [],
    deps.incidents ? deps.incidents.list({ service, limit: 50 }) : [],
  ]);
  const out: VolumeMarker[] = [];
  for (const d of deploys) {
    if (d.at < from) continue;
    out.push({
      kind: "deploy",
      at: d.at,
      id: d.id,
      text: displayText(`deploy ${d.previousImage || "?"} → ${d.image}`, 300).text,
    });
  }
  for (const i of incidents) {
    if (i.openedAt < from) continue;
    out.push({
      kind: "incident",
      at: i.openedAt,
      id: i.id,
      text: displayText(`incident (${i.status}): ${i.title}`, 300).text,
    });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** One window of `GET /rates/:service`. */
export interface VolumeWindow {
  /** Window start (ms since the epoch). */
  start: number;
  /** Lines counted. */
  lines: number;
  /** Lines expected; null where the history is too thin. */
  expected: number | null;
  /** Lower edge of the normal band. */
  low: number | null;
  /** Upper edge of the normal band. */
  high: number | null;
  /** Whether the window was anomalous. */
  anomaly: boolean;
  /** Its reason codes. */
  reasons: string[];
}

let _assets: { js: string; css: string } | null = null;

async function _uplot(): Promise<{ js: string; css: string }> {
  if (_assets) return _assets;
  const require = createRequire(import.meta.url);
  const [js, css] = await Promise.all([
    Deno.readTextFile(require.resolve("uplot/dist/uPlot.iife.min.js")),
    Deno.readTextFile(require.resolve("uplot/dist/uPlot.min.css")),
  ]);
  _assets = { js, css };
  return _assets;
}

/**
 * Judge a service's stored windows of the last `minutes`.
 *
 * @param deps The store and the model lookup.
 * @param service The service.
 * @param minutes How far back.
 * @param now The current time.
 * @returns The windows, oldest first, or null when the service has no rate model.
 */
export async function volumeWindows(
  deps: Pick<VolumeDeps, "rates" | "rateModel">,
  service: string,
  minutes: number,
  now: number,
): Promise<{ windowMs: number; windows: VolumeWindow[] } | null> {
  const model = await deps.rateModel(service);
  if (model === null) return null;
  const w = model.windowMs;
  // The newest window that ended at least 5 s ago (late lines count until then, as in score).
  const last = Math.floor((now - 5000) / w) * w - w;
  const first = last - Math.max(0, Math.floor((minutes * 60_000) / w) - 1) * w;
  const stored = await deps.rates.read(service, first, last, w);
  const monitor = new RateMonitor(model);
  let seen = false;
  const windows = stored.map((s): VolumeWindow => {
    const coverage = seen ? 1 : 0;
    if (s.total > 0) seen = true;
    const v = monitor.observe(s.window, s, { coverage });
    const band = model.band(s.window);
    const r2 = (x: number) => Math.round(x * 100) / 100;
    return {
      start: s.window,
      lines: s.total,
      expected: band ? r2(band.expected) : null,
      low: band ? r2(band.low) : null,
      high: band ? r2(band.high) : null,
      anomaly: v.anomaly,
      reasons: [...new Set(v.reasons.map((r) => r.code))],
    };
  });
  return { windowMs: w, windows };
}

/**
 * Build the volume sub-app.
 *
 * @param deps Rate store, model lookup, incidents.
 * @returns The Hono app to mount at `/`.
 * @example
 * ```ts
 * declare const deps: VolumeDeps;
 * const app = new Hono().route("/", createVolumeView(deps));
 * ```
 */
export function createVolumeView(deps: VolumeDeps): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();

  app.get("/ui/uplot.js", async (c) => {
    const { js } = await _uplot();
    return c.body(js, 200, { "Content-Type": "text/javascript" });
  });
  app.get("/ui/uplot.css", async (c) => {
    const { css } = await _uplot();
    return c.body(css, 200, { "Content-Type": "text/css" });
  });
  app.get("/ui/volume.js", (c) => c.body(VOLUME_JS, 200, { "Content-Type": "text/javascript" }));
  app.get("/ui/volume.css", (c) => c.body(VOLUME_CSS, 200, { "Content-Type": "text/css" }));

  app.get("/rates/:service", async (c) => {
    const service = c.req.param("service");
    const q = c.req.query("minutes");
    const maxMinutes = Math.floor(RATE_COUNT_TTL_MS / 60_000);
    const minutes = q === undefined ? 180 : Number(q);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > maxMinutes) {
      throw new HTTPException(400, {
        message: `minutes: expected an integer in 1..${maxMinutes}, got ${JSON.stringify(q)}`,
      });
    }
    const got = await volumeWindows(deps, service, minutes, now());
    if (got === null) {
      throw new HTTPException(404, {
        message: `Service ${JSON.stringify(service)} has no rate model: train it on timestamped ` +
          `history (the train function does; the CLI with --timestamps)`,
      });
    }
    const from = got.windows[0]?.start ?? now() - minutes * 60_000;
    const markers = await volumeMarkers(deps, service, from);
    return c.json({ service, ...got, markers });
  });

  app.get("/volume", async (c) => {
    const service = c.req.query("service") ?? "";
    const incidents = deps.incidents && service
      ? await deps.incidents.list({ service, limit: 20 })
      : [];
    return c.html(pageShell({
      title: service || "volume",
      bodyClass: "volume-page",
      styles: ["/ui/uplot.css", "/ui/volume.css"],
      scripts: ["/ui/uplot.js", "/ui/volume.js"],
      service,
      body: html`
        <section class="panel">
          <div class="panel-head"><h2>Log volume · <span id="svc">${service}</span></h2>
        <span class="sub">lines per window, expected band, anomalous windows marked</span></div>
          <form class="volume-form" method="get" action="/volume">
            <label>Service <input name="service" value="${service}" required></label>
            <label>Range <select name="minutes" id="minutes">
        <option value="60">1 h</option><option value="180" selected>3 h</option><option value="360">6 h</option>
        </select></label>
            <button type="submit">Show</button>
          </form>
          <div id="chart" class="chart" role="img" aria-label="Log volume of ${service}"></div>
          <p
            class="legend"><span class="k obs"></span> lines <span class="k band"></span> expected band
        <span class="k mark"></span> anomalous window · <b>silence</b>: lines expected, none came ·
        <b>rate_drop</b>: far fewer than expected · <b>rate_spike</b>: far more (the service or one template) ·
        <b>template_gone</b>: a regular template stopped ·
        <span class="k dep"></span> deploy <span class="k inc"></span> incident opened</p>
          <p class="empty" id="chart-empty" hidden></p>
          <ol class="markers" id="markers"></ol>
        </section>
        <section class="panel">
        <div class="panel-head"><h2>Incidents</h2><span class="sub">anomalies of the service close in time</span></div>
        <ul class="incidents" id="incidents">${incidents.map((i) =>
          html`
            <li
              class="incident ${i.status}"><b>${i.status}</b> <time>${new Date(i.openedAt)
                .toISOString().slice(0, 16).replace("T", " ")}</time> ${i.title}${i.links.length > 0
                ? html`
                  <span class="sub">· linked: ${i.links.join(", ")}</span>
                `
                : ""}</li>
          `
        )}</ul>
        ${incidents.length === 0 ? html`<p class="empty">No incidents for this service.</p>` : ""}
              </section>
      `,
    }));
  });

  return app;
}

/** The volume page's styles (on top of the dashboard's). */
export const VOLUME_CSS = `
.volume-page .brand { text-decoration: none; color: inherit; }
.volume-page .panel > .volume-form, .volume-page .panel > .chart, .volume-page .panel > .legend,
.volume-page .panel > .incidents, .volume-page .panel > .empty { padding-left: 16px; padding-right: 16px; }
.volume-page .panel > .chart { padding-left: 0; padding-right: 0; }
.volume-form { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; margin: 8px 0 12px; }
.volume-form label { display: flex; flex-direction: column; gap: 4px; font-size: 12px; }
.volume-form input, .volume-form select { min-width: 0; max-width: 100%; }
.chart { width: 100%; min-height: 260px; overflow: hidden; }
.legend { font-size: 12px; line-height: 1.6; opacity: 0.85; }
.legend .k { display: inline-block; width: 14px; height: 4px; vertical-align: middle; margin: 0 4px 0 8px; }
.legend .k.obs { background: #e8eef7; }
.legend .k.band { background: rgba(120,160,255,0.5); height: 10px; }
.legend .k.mark { background: #ff5d5d; width: 8px; height: 8px; border-radius: 50%; }
.legend .k.dep { width: 2px; height: 12px; background: #6ea8fe; }
.legend .k.inc { width: 2px; height: 12px; background: #ff9a3d; }
.markers { list-style: none; margin: 0 0 10px; padding: 0 16px; font-size: 12.5px; }
.markers li { padding: 2px 0; overflow-wrap: anywhere; unicode-bidi: plaintext; }
.markers li time { font-family: var(--mono, monospace); opacity: 0.75; margin-right: 8px; unicode-bidi: isolate; }
.markers li.deploy::before { content: ""; display: inline-block; width: 2px; height: 11px; background: #6ea8fe; margin-right: 8px; }
.markers li.incident::before { content: ""; display: inline-block; width: 2px; height: 11px; background: #ff9a3d; margin-right: 8px; }
.markers a { color: inherit; }
.incidents { list-style: none; padding: 0; margin: 0; }
.incident { padding: 8px 0; border-bottom: 1px solid rgba(128,128,128,0.2); overflow-wrap: anywhere; }
.incident.open b { color: #ff5d5d; }
.incident.resolved b { color: #5dd39e; }
@media (max-width: 480px) { .volume-form { flex-direction: column; align-items: stretch; } }
`;

/** The volume page's script: fetch the windows, draw them with uPlot. */
export const VOLUME_JS = `(function () {
  "use strict";
  var body = document.body;
  var service = body.getAttribute("data-service") || "";
  var el = document.getElementById("chart");
  var empty = document.getElementById("chart-empty");
  var sel = document.getElementById("minutes");
  var params = new URLSearchParams(location.search);
  if (params.get("minutes")) sel.value = params.get("minutes");
  var plot = null;
  function show(msg) { empty.textContent = msg; empty.hidden = false; }
  function width() { return Math.max(260, el.clientWidth || 320); }
  function draw(data) {
    var xs = [], obs = [], low = [], high = [], exp = [], marks = [];
    data.windows.forEach(function (w) {
      xs.push(w.start / 1000);
      obs.push(w.lines);
      exp.push(w.expected);
      low.push(w.low);
      high.push(w.high);
      marks.push(w.anomaly ? w.lines : null);
    });
    var opts = {
      width: width(),
      height: 260,
      scales: { x: { time: true } },
      series: [
        {},
        { label: "expected low", stroke: "rgba(120,160,255,0.35)", width: 1 },
        { label: "expected high", stroke: "rgba(120,160,255,0.35)", width: 1 },
        { label: "expected", stroke: "rgba(120,160,255,0.9)", width: 1, dash: [4, 4] },
        { label: "lines", stroke: "#e8eef7", width: 1.5 },
        { label: "anomalous", stroke: "transparent", points: { show: true, size: 8, fill: "#ff5d5d", stroke: "#ff5d5d" } }
      ],
      bands: [{ series: [2, 1], fill: "rgba(120,160,255,0.15)" }],
      axes: [{ stroke: "#9aa7b8" }, { stroke: "#9aa7b8" }]
    };
    var markers = data.markers || [];
    opts.hooks = { draw: [function (u) {
      var ctx = u.ctx;
      ctx.save();
      markers.forEach(function (m) {
        var x = u.valToPos(m.at / 1000, "x", true);
        if (!(x >= u.bbox.left && x <= u.bbox.left + u.bbox.width)) return;
        ctx.strokeStyle = m.kind === "deploy" ? "#6ea8fe" : "#ff9a3d";
        ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
        ctx.setLineDash(m.kind === "deploy" ? [6, 4] : []);
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      });
      ctx.restore();
    }] };
    if (plot) plot.destroy();
    plot = new uPlot(opts, [xs, low, high, exp, obs, marks], el);
    listMarkers(markers);
    body.setAttribute("data-markers", String(markers.length));
    body.setAttribute("data-ready", String(data.windows.length));
  }
  function listMarkers(markers) {
    var list = document.getElementById("markers");
    list.replaceChildren.apply(list, markers.map(function (m) {
      var li = document.createElement("li");
      li.className = m.kind;
      var t = document.createElement("time");
      var d = new Date(m.at);
      t.textContent = d.toLocaleString();
      li.appendChild(t);
      if (m.kind === "incident") {
        var a = document.createElement("a");
        a.href = "/incident?id=" + encodeURIComponent(m.id);
        a.textContent = m.text;
        li.appendChild(a);
      } else {
        li.appendChild(document.createTextNode(m.text));
      }
      return li;
    }));
  }
  function load() {
    if (!service) { show("Pick a service."); return; }
    fetch("/rates/" + encodeURIComponent(service) + "?minutes=" + encodeURIComponent(sel.value), {
      credentials: "same-origin"
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, body: j }; });
    }).then(function (res) {
      if (!res.ok) { show(res.body.error || "No data."); body.setAttribute("data-ready", "0"); return; }
      draw(res.body);
    }).catch(function () { show("Cannot load the volume."); });
  }
  window.addEventListener("resize", function () { if (plot) plot.setSize({ width: width(), height: 260 }); });
  load();
})();
`;
