/**
 * The dashboard's page of one service, rendered on the server:
 * `GET /service?name=KEY` shows its state (trained or learning, current
 * model, threshold), the containers behind the key with their lines of the
 * last 24 hours, its image (from the newest deploy), every model version,
 * its recent deploys, and links to its volume and incidents. A Hono sub-app
 * mounted at `/`; the api's auth (bearer or session) covers it. Every value
 * goes through `hono/html` (escaped) after {@linkcode displayText}.
 *
 * @module
 */

import { Hono } from "hono";
import { html } from "hono/html";
import { pageShell } from "./page_shell.ts";
import type { Deploy } from "../../shared/ports/deploy.ts";
import type { ModelMeta, ModelRegistry } from "../../shared/ports/model_registry.ts";
import type { LogEntry } from "../../shared/ports/log_entry.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import { displayText } from "./dashboard_view.ts";

/** What the service page needs. */
export interface ServiceViewDeps {
  /** Model versions. */
  registry: Pick<ModelRegistry, "list">;
  /** Lines per model key since a time, with the containers behind it (the log store's `containers`). */
  lineCounts?: (
    since: Date,
  ) => Promise<{ container: string; count: number; containers?: string[] }[]>;
  /** A service's recent deploys, newest first. */
  deploys: (service: string) => Promise<Deploy[]>;
  /** Search of a service's history (the log store's `search`); without it the page has no search box. */
  search?: LogStore["search"];
  /**
   * The clock (ms since the epoch).
   * @default Date.now
   */
  now?: () => number;
}

const _DAY_MS = 86_400_000;

/** The search's time ranges: value, label, ms back (0: all the history). */
const _RANGES: readonly [string, string, number][] = [
  ["1h", "last hour", 3_600_000],
  ["24h", "last 24 hours", _DAY_MS],
  ["7d", "last 7 days", 7 * _DAY_MS],
  ["all", "all the history", 0],
];

/**
 * Builds the service page sub-app.
 *
 * @param deps registry, line counts, deploys
 * @returns the Hono app to mount at `/`
 */
export function createServiceView(deps: ServiceViewDeps): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();
  app.get("/service", async (c) => {
    const name = c.req.query("name") ?? "";
    if (name === "" || name.length > 1024) {
      return c.html(
        _page(
          "Service",
          html`
            <section class="panel">
              <p class="empty">Which service? Open it from the dashboard's container list.</p>
            </section>
          `,
        ),
        400,
      );
    }
    const [versions, counts, deploys] = await Promise.all([
      deps.registry.list(name),
      deps.lineCounts ? deps.lineCounts(new Date(now() - _DAY_MS)) : Promise.resolve([]),
      deps.deploys(name),
    ]);
    const count = counts.find((x) => x.container === name);
    if (versions.length === 0 && !count && deploys.length === 0) {
      return c.html(
        _page(
          "Service",
          html`
            <section class="panel">
              <p class="empty">No service ${_t(
                name,
              )}: no model, no lines in the last 24 hours, no deploys.</p>
            </section>
          `,
        ),
        404,
      );
    }
    const current = versions.find((v) => v.status === "current") ?? null;
    const q = c.req.query("q") ?? "";
    const rangeKey = _RANGES.some((r) => r[0] === c.req.query("range"))
      ? c.req.query("range")!
      : "24h";
    const back = _RANGES.find((r) => r[0] === rangeKey)![2];
    let hits: LogEntry[] | null = null;
    let searchError = "";
    if (deps.search && q !== "") {
      try {
        hits = await deps.search(name, q, {
          ...(back > 0 ? { from: new Date(now() - back) } : {}),
          to: new Date(now()),
          limit: 200,
          signal: c.req.raw.signal,
        });
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        searchError = e.message;
      }
    }
    const shown = _t(name);
    const enc = encodeURIComponent(name);
    const image = deploys[0] ? _t(deploys[0].image) : "not recorded (no deploy seen yet)";
    return c.html(_page(
      shown,
      html`
                        <section class="panel">
          <div class="panel-head"><h2>Service · <span class="ctr" id="service-name">${shown}</span></h2>
                        <span class="sub">${current
                          ? `trained · v${current.version}`
                          : "learning"}</span></div>
          <table class="grid facts" id="service-facts">
            <tbody>
              <tr>
                <th scope="row">State</th>
                <td>${current
                  ? `trained, model v${current.version} current`
                  : "learning (no current model yet)"}</td>
              </tr>
              <tr>
                <th scope="row">Threshold</th>
                <td class="num">${current ? current.threshold.toFixed(3) : "—"}</td>
              </tr>
              <tr>
                <th scope="row">Trained</th>
                <td>${current ? _dateTime(current.trainedAt) : "—"}</td>
              </tr>
              <tr>
                <th scope="row">Image</th>
                <td>${image}</td>
              </tr>
              <tr>
                <th scope="row">Lines, last 24 h</th>
                <td class="num">${count ? count.count.toLocaleString("en-US") : "0"}</td>
              </tr>
              <tr>
                <th scope="row">Containers</th>
                <td id="service-containers">${(count?.containers ?? []).length > 0
                  ? (count!.containers!).slice(0, 50).map((n) =>
                    html`
                      <span class="chip">${_t(n)}</span>
                    `
                  )
                  : "none in the last 24 hours"}</td>
              </tr>
              <tr>
                <th scope="row">See</th>
                <td class="links"><a class="btn" href="/patterns?service=${enc}">Patterns</a>
        <a class="btn" href="/volume?service=${enc}">Volume</a>
                        <a class="btn" href="/incident-list?service=${enc}">Incidents</a> <a class="btn" href="/">Dashboard</a></td>
              </tr>
            </tbody>
          </table>
        </section>
                        ${deps.search ? _searchPanel(name, q, rangeKey, hits, searchError) : ""}
                <section class="panel">
                        <div class="panel-head"><h2>Model versions</h2><span class="sub">newest first</span></div>
                        <table class="grid" id="service-versions"><thead><tr><th class="r">Version</th><th>Status</th><th>Trained</th>
                        <th class="r">Lines</th><th class="r">Threshold</th><th>Note</th></tr></thead><tbody>${[
                          ...versions,
                        ].sort((a, b) => b.version - a.version).slice(0, 50).map(
                          _versionRow,
                        )}</tbody></table>
                        ${versions.length === 0
                          ? html`<p class="empty">No model yet: the service is learning.</p>`
                          : ""}
                        </section>
                        <section class="panel">
                        <div class="panel-head"><h2>Recent deploys</h2><span class="sub">image changes, newest first</span></div>
                        <table class="grid" id="service-deploys"><thead><tr><th>Time</th><th>Image</th><th>Container</th></tr></thead><tbody>${deploys
                          .slice(0, 10).map((d) =>
                            html`
                              <tr>
                                <td><time datetime="${new Date(d.at).toISOString()}">${_dateTime(
                                  new Date(d.at).toISOString(),
                                )}</time></td>
                                <td>${_t(d.previousImage)} → ${_t(d.image)}</td>
                                <td>${_t(d.containerName)}</td>
                              </tr>
                            `
                          )}</tbody></table>
                        ${deploys.length === 0 ? html`<p class="empty">No deploys seen.</p>` : ""}
                        </section>
      `,
    ));
  });
  return app;
}

function _searchPanel(
  name: string,
  q: string,
  range: string,
  hits: LogEntry[] | null,
  error: string,
) {
  const options = _RANGES.map(([v, label]) =>
    v === range
      ? html`<option value="${v}" selected>${label}</option>`
      : html`<option value="${v}">${label}</option>`
  );
  const found = hits === null
    ? ""
    : html`<p class="sub search-count" id="search-count">${hits.length} line${
      hits.length === 1 ? "" : "s"
    } found</p>
<ol class="ctx search-hits" id="search-hits">${
      hits.map((e) =>
        html`<li><time datetime="${e.ts}" title="${_t(e.containerName)} · ${e.stream}">${
          _dateTime(e.ts)
        }</time>${_t(e.line)}</li>`
      )
    }</ol>`;
  return html`<section class="panel">
<div class="panel-head"><h2>Search the history</h2><span class="sub">lines containing the text, any case, newest first (at most 200)</span></div>
<form class="search-form" method="get" action="/service" role="search">
<input type="hidden" name="name" value="${name}">
<label>Text <input name="q" id="search-q" value="${q}" maxlength="200" required spellcheck="false"></label>
<label>Range <select name="range" id="search-range">${options}</select></label>
<button type="submit">Search</button>
</form>
${error ? html`<p class="empty error" role="alert">${error}</p>` : ""}
${found}
</section>`;
}

function _versionRow(v: ModelMeta) {
  return html`
    <tr class="version ${v.status}">
      <td class="r num">v${v.version}</td>
      <td>${v.status}</td>
      <td>${_dateTime(v.trainedAt)}</td>
      <td class="r num">${v.lines.toLocaleString("en-US")}</td>
      <td class="r num">${v.threshold.toFixed(3)}</td>
      <td>${_t(v.note ?? "")}</td>
    </tr>
  `;
}

function _t(text: string): string {
  return displayText(text, 300).text;
}

function _dateTime(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(ts);
  return m ? `${m[1]} ${m[2]}` : ts.slice(0, 16);
}

function _page(title: string, body: unknown) {
  return pageShell({ title, bodyClass: "service-page", styles: [], scripts: [], body });
}
