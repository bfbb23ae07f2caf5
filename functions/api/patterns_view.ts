/**
 * The dashboard's patterns page of a service: `GET /patterns?service=KEY&range=`
 * groups the service's lines of the last hour, 24 hours or 7 days (the first
 * {@linkcode PATTERNS_MAX_LINES} of them) by template, as the cold-start
 * masking makes them (the same templates as deploy reports), and shows each
 * with its count, a sparkline of its lines over the range, when it was first
 * and last seen in the range and an example line. Rendered on the server;
 * template and example are made display-safe and escaped. A Hono sub-app
 * mounted at `/`; the api's auth (bearer or session) covers it.
 *
 * @module
 */

import { Hono } from "hono";
import { html } from "hono/html";
import { pageShell } from "./page_shell.ts";
import { coldStartLine } from "../../shared/detector/detector.ts";
import { type LogEntry, tsToNanos } from "../../shared/ports/log_entry.ts";
import { displayText } from "./dashboard_view.ts";

/** Most lines read for one page. */
export const PATTERNS_MAX_LINES = 50_000;
/** Most templates listed. */
export const PATTERNS_MAX_TEMPLATES = 100;
const _BUCKETS = 24;
const _RANGES: readonly [string, string, number][] = [
  ["1h", "last hour", 3_600_000],
  ["24h", "last 24 hours", 86_400_000],
  ["7d", "last 7 days", 7 * 86_400_000],
];

/** What the patterns page needs. */
export interface PatternsViewDeps {
  /** A service's history (the log store's `history`); without it the page answers 503. */
  history?: (
    key: string,
    options: { from: Date; to: Date; limit: number },
  ) => AsyncIterable<LogEntry>;
  /**
   * The clock (ms since the epoch).
   * @default Date.now
   */
  now?: () => number;
}

/** One template of a service over a range. */
export interface PatternRow {
  /** The template id. */
  templateId: string;
  /** The template, display-safe. */
  template: string;
  /** Lines of it in the range. */
  count: number;
  /** First and last line of it in the range (ms since the epoch). */
  first: number;
  last: number;
  /** Lines per bucket, oldest first ({@linkcode _BUCKETS} buckets over the range). */
  buckets: number[];
  /** Its newest line, display-safe. */
  example: string;
}

/**
 * Groups lines by template over a range.
 *
 * @param entries the lines, oldest first
 * @param from the range's start (ms)
 * @param to the range's end (ms)
 * @returns the templates, most lines first, and the lines read
 */
export function patternRows(
  entries: Iterable<LogEntry>,
  from: number,
  to: number,
): { rows: PatternRow[]; lines: number } {
  const byId = new Map<string, PatternRow & { raw: string }>();
  const span = Math.max(1, to - from);
  let lines = 0;
  for (const e of entries) {
    lines++;
    const at = Number(tsToNanos(e.ts) / 1_000_000n);
    const { template, templateId } = coldStartLine(e.line);
    let r = byId.get(templateId);
    if (!r) {
      byId.set(
        templateId,
        r = {
          templateId,
          template,
          raw: e.line,
          count: 0,
          first: at,
          last: at,
          buckets: new Array(_BUCKETS).fill(0),
          example: "",
        },
      );
    }
    r.count++;
    if (at < r.first) r.first = at;
    if (at >= r.last) {
      r.last = at;
      r.raw = e.line;
    }
    const b = Math.min(_BUCKETS - 1, Math.max(0, Math.floor(((at - from) / span) * _BUCKETS)));
    r.buckets[b]!++;
  }
  const rows = [...byId.values()]
    .sort((a, b) => b.count - a.count || a.first - b.first)
    .slice(0, PATTERNS_MAX_TEMPLATES)
    .map(({ raw, ...r }) => ({
      ...r,
      template: displayText(r.template, 300).text,
      example: displayText(raw, 300).text,
    }));
  return { rows, lines };
}

/**
 * Builds the patterns sub-app.
 *
 * @param deps the history
 * @returns the Hono app to mount at `/`
 */
export function createPatternsView(deps: PatternsViewDeps): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();
  app.get("/patterns", async (c) => {
    const service = c.req.query("service") ?? "";
    if (service === "" || service.length > 1024) {
      return c.html(_page("Patterns", html`<p class="empty">Which service?</p>`), 400);
    }
    if (!deps.history) {
      return c.html(
        _page("Patterns", html`<p class="empty">This api has no log history.</p>`),
        503,
      );
    }
    const range = _RANGES.find((r) => r[0] === c.req.query("range")) ?? _RANGES[1]!;
    const to = now();
    const from = to - range[2];
    // The history reads oldest first: past the cap, the range's first lines.
    const entries: LogEntry[] = [];
    for await (
      const e of deps.history(service, {
        from: new Date(from),
        to: new Date(to),
        limit: PATTERNS_MAX_LINES,
      })
    ) entries.push(e);
    const { rows, lines } = patternRows(entries, from, to);
    const shown = displayText(service, 200).text;
    const enc = encodeURIComponent(service);
    return c.html(_page(
      `Patterns · ${shown}`,
      html`
        <div class="panel-head"><h2>Patterns · <span class="ctr">${shown}</span></h2>
        <span class="sub" id="patterns-summary">${lines.toLocaleString("en-US")} lines, ${rows
          .length} templates${lines >= PATTERNS_MAX_LINES
          ? ` (the first ${PATTERNS_MAX_LINES.toLocaleString("en-US")} lines of the range)`
          : ""}</span></div>
        <form class="search-form" method="get" action="/patterns">
        <input type="hidden" name="service" value="${service}">
        <label>Range <select name="range" id="patterns-range">${_RANGES.map(([v, label]) =>
          v === range[0]
            ? html`<option value="${v}" selected>${label}</option>`
            : html`<option value="${v}">${label}</option>`
        )}</select></label>
        <button type="submit">Show</button>
        <a class="btn" href="/service?name=${enc}">Service</a> <a class="btn" href="/volume?service=${enc}">Volume</a>
        </form>
        <table class="grid patterns" id="patterns">
          <thead>
            <tr>
              <th class="r">Lines</th>
              <th>Over the range</th>
              <th>Template and newest line</th>
              <th>First seen</th>
              <th>Last seen</th>
            </tr>
          </thead>
          <tbody>${rows.map((r) =>
            html`
              <tr class="pattern" data-template-id="${r.templateId}">
                <td class="r num">${r.count.toLocaleString("en-US")}</td>
                <td>${_sparkline(r.buckets)}</td>
                <td
                  class="c-line"><code class="tpl-text">${r
                    .template}</code><div class="line example">${r.example}</div></td>
                <td><time datetime="${new Date(r.first).toISOString()}">${_dateTime(
                  r.first,
                )}</time></td>
                <td><time datetime="${new Date(r.last).toISOString()}">${_dateTime(
                  r.last,
                )}</time></td>
              </tr>
            `
          )}</tbody>
        </table>
        ${rows.length === 0 ? html`<p class="empty">No lines in this range.</p>` : ""}
      `,
    ));
  });
  return app;
}

/** An inline SVG sparkline of counts (numbers only: nothing from the logs). */
function _sparkline(counts: number[]) {
  const w = 120, h = 24;
  const max = Math.max(1, ...counts);
  const step = w / Math.max(1, counts.length - 1);
  const points = counts.map((n, i) =>
    `${(i * step).toFixed(1)},${(h - 2 - (n / max) * (h - 4)).toFixed(1)}`
  ).join(" ");
  return html`
    <svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"
      role="img"
      aria-label="lines per ${counts.length}th of the range: ${counts.join(", ")}">
      <polyline points="${points}"
        fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  `;
}

function _dateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

function _page(title: string, body: unknown) {
  return pageShell({
    title,
    bodyClass: "patterns-page",
    styles: [],
    scripts: [],
    body: html`<section class="panel">${body}</section>`,
  });
}
