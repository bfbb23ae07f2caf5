/**
 * The dashboard's incident pages, rendered on the server: `GET /incident-list`
 * (the newest incidents of every service, open ones first, `?service=` to
 * narrow) and `GET /incident?id=` (one incident: what, since when, why with
 * each reason code explained, examples, linked incidents of the same stack,
 * and buttons that label every member anomaly). A Hono sub-app mounted at
 * `/`; the api's auth (bearer or session) covers it.
 *
 * @module
 */

import { Hono } from "hono";
import { html } from "hono/html";
import type { Incident, IncidentStore } from "../../shared/ports/incident_store.ts";
import { REASON_TEXT } from "./dashboard_view.ts";
import { pageShell } from "./page_shell.ts";

export { REASON_TEXT };

const _STYLE = `
.inc-page main { max-width: 1100px; margin: 0 auto; }
.inc-page .panel > * { padding-left: 16px; padding-right: 16px; }
.inc-page .panel > .panel-head { padding-left: 16px; }
.inc-list { list-style: none; margin: 0; padding: 0 16px; }
.inc-list li { padding: 10px 0; border-bottom: 1px solid rgba(128,128,128,0.2); overflow-wrap: anywhere; }
.inc-list a { color: inherit; }
.st { font-weight: 700; text-transform: uppercase; font-size: 11px; letter-spacing: 0.04em; }
.st.open { color: #ff5d5d; } .st.resolved { color: #5dd39e; }
.inc-facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; font-size: 13px; }
.inc-facts dt { opacity: 0.7; }
.inc-facts dd { margin: 0; overflow-wrap: anywhere; }
.reasons li, .samples li { margin: 4px 0; overflow-wrap: anywhere; }
.samples code { white-space: pre-wrap; word-break: break-word; }
.inc-actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0 16px; }
@media (max-width: 480px) { .inc-facts { grid-template-columns: 1fr; } }
`;

/**
 * Build the incident pages.
 *
 * @param deps The incident store.
 * @returns The Hono app to mount at `/`.
 * @example
 * ```ts
 * declare const incidents: IncidentStore;
 * const app = new Hono().route("/", createIncidentsView({ incidents }));
 * ```
 */
export function createIncidentsView(deps: { incidents: IncidentStore }): Hono {
  const app = new Hono();
  app.get("/ui/incidents.css", (c) => c.body(_STYLE, 200, { "Content-Type": "text/css" }));
  app.get(
    "/ui/incidents.js",
    (c) => c.body(INCIDENTS_JS, 200, { "Content-Type": "text/javascript" }),
  );

  app.get("/incident-list", async (c) => {
    const service = c.req.query("service") || undefined;
    const all = await deps.incidents.list({ ...(service ? { service } : {}), limit: 100 });
    const list = [
      ...all.filter((i) => i.status === "open"),
      ...all.filter((i) => i.status !== "open"),
    ];
    return c.html(_page(
      "Incidents",
      html`<section class="panel">
<div class="panel-head"><h2>Incidents${service ? ` · ${service}` : ""}</h2>
<span class="sub">anomalies of one service close in time, open ones first</span></div>
<ul class="inc-list" id="incident-list">${
        list.map((i) =>
          html`<li class="${i.status}"><span class="st ${i.status}">${i.status}</span>
<time>${_time(i.openedAt)}</time> · <a href="/incident?id=${i.id}">${i.title}</a>${
            i.links.length > 0
              ? html`
                <span class="sub">· ${i.links.length} linked</span>
              `
              : ""
          }</li>`
        )
      }</ul>
${list.length === 0 ? html`<p class="empty">No incidents.</p>` : ""}
</section>`,
    ));
  });

  app.get("/incident", async (c) => {
    const id = c.req.query("id") ?? "";
    const inc = /^[0-9a-z]{1,16}-[0-9a-f]{8}$/.test(id) ? await deps.incidents.get(id) : null;
    if (inc === null) {
      return c.html(
        _page(
          "Incident",
          html`
            <section class="panel">
              <p class="empty">No incident ${id}.</p>
            </section>
          `,
        ),
        404,
      );
    }
    return c.html(_page(inc.title, _incident(inc)));
  });
  return app;
}

function _incident(inc: Incident) {
  const reasons = Object.entries(inc.reasons).sort((a, b) => b[1] - a[1]);
  const minutes = Math.max(
    1,
    Math.round(((inc.resolvedAt ?? inc.updatedAt) - inc.openedAt) / 60_000),
  );
  return html`<section class="panel" id="incident" data-id="${inc.id}">
<div class="panel-head"><h2><span class="st ${inc.status}">${inc.status}</span> ${inc.service}</h2>
<span class="sub">${inc.title}</span></div>
<dl class="inc-facts">
<dt>Opened</dt><dd>${_time(inc.openedAt)} UTC</dd>
<dt>${inc.status === "resolved" ? "Resolved" : "Last anomaly"}</dt><dd>${
    _time(inc.resolvedAt ?? inc.lastAnomalyAt)
  } UTC (${minutes} min)</dd>
<dt>Anomalies</dt><dd>${inc.anomalies} (${
    Object.entries(inc.kinds).map(([k, n]) => `${n} ${k}`).join(", ")
  }), max score ${inc.maxScore.toFixed(3)}</dd>
<dt>Stack / project</dt><dd>${inc.group ?? "—"}</dd>
<dt>Volume</dt><dd><a href="/volume?service=${
    encodeURIComponent(inc.service)
  }">log volume of ${inc.service}</a></dd>
</dl>
<h3>Why</h3>
<ul class="reasons">${
    reasons.map(([r, n]) => html`<li><b>${r}</b> ×${n}: ${REASON_TEXT[r] ?? "see the docs"}</li>`)
  }</ul>
<h3>Examples</h3>
<ul class="samples">${
    inc.samples.map((s) =>
      html`<li><time>${s.ts}</time> <b>${s.reasons.join(", ")}</b> <code>${s.line}</code></li>`
    )
  }</ul>
${
    inc.links.length > 0
      ? html`
        <h3>Linked incidents (same stack, same minutes)</h3>
        <ul class="inc-list">${inc.links.map((l) =>
          html`<li><a href="/incident?id=${l}">${l}</a></li>`
        )}</ul>
      `
      : ""
  }
<div class="inc-actions">
<button type="button" data-label="normal" title="Label every anomaly of the incident normal: their templates are silenced">All normal</button>
<button type="button" data-label="anomaly" title="Confirm every anomaly of the incident">Confirm all</button>
<span id="inc-result" role="status" aria-live="polite"></span>
</div>
</section>`;
}

function _page(title: string, body: unknown) {
  return pageShell({
    title,
    bodyClass: "inc-page",
    styles: ["/ui/incidents.css"],
    scripts: ["/ui/incidents.js"],
    links: [{ href: "/incident-list", text: "Incidents" }],
    body,
  });
}

function _time(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

/** The incident page's script: the feedback buttons. */
export const INCIDENTS_JS = `(function () {
  "use strict";
  var box = document.getElementById("incident");
  if (!box) return;
  var id = box.getAttribute("data-id");
  var out = document.getElementById("inc-result");
  box.querySelectorAll("button[data-label]").forEach(function (b) {
    b.addEventListener("click", function () {
      var label = b.getAttribute("data-label");
      out.textContent = "…";
      fetch("/incidents/" + encodeURIComponent(id) + "/feedback", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ label: label })
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
        .then(function (res) {
          out.textContent = res.ok
            ? "Labelled " + res.j.applied + " anomalies " + label + "."
            : (res.j.error || "Failed.");
        })
        .catch(function () { out.textContent = "Failed."; });
    });
  });
})();
`;
