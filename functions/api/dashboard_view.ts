/**
 * The dashboard's views: what one anomaly and one container look like on the
 * page (plain data, also sent as JSON over server-sent events) and the HTML
 * of the page and the login form, rendered with `hono/html`, which escapes
 * every interpolated value.
 *
 * Log content is hostile: {@linkcode displayText} removes ANSI escapes, makes
 * control and bidirectional-override characters visible and cuts the text at
 * {@linkcode DISPLAY_MAX_CHARS} with a "…" marker, before any escaping.
 *
 * @module
 */

import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { Anomaly } from "../../shared/ports/anomaly.ts";
import type { Deploy } from "../../shared/ports/deploy.ts";
import type { FeedbackLabel } from "../../shared/ports/feedback_store.ts";

/** What each reason code means, shown beside it. */
export const REASON_TEXT: Readonly<Record<string, string>> = {
  silence: "lines were expected in the window and none came",
  rate_drop: "far fewer lines than this time of day usually brings",
  rate_spike: "far more lines than usual, from the service or from one template",
  template_gone: "a template that shows up regularly stopped",
  new_template: "a line unlike any the model learned",
  unseen_tokens: "words the model never saw in this place",
  rare_template: "a template that is rare in the history",
  severity: "error-like words (error, fatal, panic, exception…)",
  unusual_value: "a number or value far outside what the template carries",
  isolation: "the line stands apart from the rest (isolation forest)",
  oom_killed: "the kernel killed the container for running out of memory",
  exited: "the container stopped with a non-zero exit code",
  unhealthy: "the container's health check failed",
  restart_loop: "the container restarted again and again in a short time",
};

/** Longest line or template shown, in UTF-16 code units, before the "…" marker. */
export const DISPLAY_MAX_CHARS = 2048;

/** How an anomaly's score compares with its threshold. */
export type Severity = "critical" | "high" | "elevated";

/** One anomaly as the dashboard shows it. */
export interface AnomalyView {
  /** Its id in the anomalies stream. */
  id: string;
  /** The container (model key). */
  container: string;
  /** Docker's timestamp of the line. */
  ts: string;
  /** When it was scored, in ms since the epoch. */
  scoredAt: number;
  /** The line made safe for display, at most {@linkcode DISPLAY_MAX_CHARS} plus "…". */
  line: string;
  /** Length of the original line in UTF-16 code units, when it was cut. */
  lineCut: number | null;
  /** The template made safe for display. */
  template: string;
  /** The template's id. */
  templateId: string;
  /** The score in [0, 1]. */
  score: number;
  /** The threshold it exceeded. */
  threshold: number;
  /** Reason codes, strongest first. */
  reasons: string[];
  /** The slots and values that drove the score (`status=502: never seen here`), at most four. */
  explanation: string[];
  /** The model version that scored it; 0 while learning. */
  modelVersion: number;
  /** Severity from score and threshold. */
  severity: Severity;
  /** Feedback given on it, if any. */
  feedback: FeedbackLabel | null;
  /** True while its template is suppressed by `normal` feedback. */
  suppressed: boolean;
}

/** One container as the dashboard shows it. */
export interface ContainerView {
  /** The container (model key), made safe for display. */
  name: string;
  /** The name as the api expects it in paths. */
  key: string;
  /** Lines per minute over the last minute. */
  linesPerMin: number;
  /** `learning` until it has a current model. */
  state: "learning" | "trained";
  /** The current model's version. */
  version: number | null;
  /** The current model's threshold. */
  threshold: number | null;
  /** When the current model was trained (ISO 8601). */
  trainedAt: string | null;
  /** Lines still needed before the first training, when known. */
  linesToModel: number | null;
  /** True when a rollback has an earlier good version to go back to. */
  canRollback: boolean;
  /**
   * The containers behind the key when they are not just the key itself
   * (replicas and tasks of a service), made safe for display; "" otherwise.
   */
  behind: string;
}

// deno-lint-ignore no-control-regex
const _ANSI = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;
const _BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// deno-lint-ignore no-control-regex
const _CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Makes log text safe to show as text: ANSI escape sequences removed, C0/C1
 * control characters shown as their Unicode control pictures (or `[U+0085]`)
 * except tab and `\n` (a multi-line event keeps its lines; the page shows
 * its first three and the rest on a click),
 * bidirectional controls shown as `[U+202E]` so they cannot reorder what
 * follows, and the result cut at `max` code units (never inside a surrogate
 * pair) with a "…" marker. HTML escaping is left to the template.
 *
 * @param text the raw text
 * @param max most code units kept
 * @default max DISPLAY_MAX_CHARS
 * @returns the display text and, when it was cut, the original length
 */
export function displayText(
  text: string,
  max: number = DISPLAY_MAX_CHARS,
): { text: string; cut: number | null } {
  // Bound the work on huge lines first; what is dropped here is cut anyway.
  const long = text.length > max * 4;
  let t = long ? text.slice(0, max * 4) : text;
  t = t.replace(_ANSI, "")
    .replace(_BIDI, (ch) => `[U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}]`)
    .replace(_CONTROL, (ch) => {
      const code = ch.charCodeAt(0);
      if (code < 0x20) return String.fromCharCode(0x2400 + code);
      if (code === 0x7f) return "\u2421";
      return `[U+${code.toString(16).toUpperCase().padStart(4, "0")}]`;
    });
  if (!t.isWellFormed()) t = t.toWellFormed();
  if (!long && t.length <= max) return { text: t, cut: null };
  let end = Math.min(max, t.length);
  const last = t.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return { text: `${t.slice(0, end)}…`, cut: text.length };
}

/**
 * The severity of a score against its threshold: `critical` at 1.5 times the
 * threshold (or 0.95), `high` at 1.2 times, `elevated` below.
 *
 * @param score the score
 * @param threshold the threshold
 * @returns the severity
 */
export function severityOf(score: number, threshold: number): Severity {
  const t = threshold > 0 ? threshold : 0.5;
  if (score >= 0.95 || score >= t * 1.5) return "critical";
  if (score >= t * 1.2) return "high";
  return "elevated";
}

/**
 * The view of an anomaly.
 *
 * @param a the anomaly
 * @param state feedback on it and whether its template is suppressed
 * @returns what the page shows
 */
export function anomalyView(
  a: Anomaly,
  state: { feedback?: FeedbackLabel | null; suppressed?: boolean } = {},
): AnomalyView {
  const line = displayText(a.line);
  return {
    id: a.id,
    container: displayText(a.container, 200).text,
    ts: a.ts,
    scoredAt: Number.isFinite(a.scoredAt) ? a.scoredAt : 0,
    line: line.text,
    lineCut: line.cut,
    template: displayText(a.template).text,
    templateId: a.templateId,
    score: Number.isFinite(a.score) ? a.score : 0,
    threshold: Number.isFinite(a.threshold) ? a.threshold : 0,
    reasons: a.reasons.slice(0, 8).map((r) => displayText(r, 40).text),
    explanation: (a.explanation ?? []).slice(0, 4).map((e) => displayText(e, 160).text),
    modelVersion: Number.isFinite(a.modelVersion) ? a.modelVersion : 0,
    severity: severityOf(a.score, a.threshold),
    feedback: state.feedback ?? null,
    suppressed: state.suppressed ?? false,
  };
}

/** One deploy as the dashboard shows it. */
export interface DeployView {
  /** Its id (for `GET /deploys/:id`). */
  id: string;
  /** The service, made safe for display. */
  container: string;
  /** When, ISO 8601. */
  at: string;
  /** When, ms since the epoch. */
  atMs: number;
  /** The image before, made safe for display. */
  previousImage: string;
  /** The new image, made safe for display. */
  image: string;
}

/**
 * A deploy made safe for display.
 *
 * @param d the deploy
 * @returns its view
 */
export function deployView(d: Deploy): DeployView {
  return {
    id: d.id,
    container: displayText(d.container, 200).text,
    at: new Date(d.at).toISOString(),
    atMs: d.at,
    previousImage: displayText(d.previousImage, 200).text,
    image: displayText(d.image, 200).text,
  };
}

/** What {@linkcode renderDashboard} shows. */
export interface DashboardPage {
  /** The containers, by name. */
  containers: readonly ContainerView[];
  /** The newest anomalies, newest first. */
  anomalies: readonly AnomalyView[];
  /** How long `normal` feedback silences a template, for the button's hint, in ms. */
  suppressMs: number;
  /** Lines a container needs before its first model. */
  minLines: number;
  /** The newest deploys, newest first. */
  deploys?: readonly DeployView[];
}

const _ICON = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">' +
    '<rect width="32" height="32" rx="7" fill="#151a22"/>' +
    '<path d="M5 20h5l3-9 4 14 3-8h7" fill="none" stroke="#ff7a59" stroke-width="2.6" ' +
    'stroke-linecap="round" stroke-linejoin="round"/></svg>',
);

function _head(title: string): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="dark light">
<title>${title}</title>
<link rel="icon" href="${_ICON}">
<link rel="stylesheet" href="/ui/dashboard.css">
<script src="/ui/dashboard.js" defer></script>`;
}

function _brand(): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`<div class="brand"><img class="logo" src="${_ICON}" alt="" width="22" height="22">
<span>tailwise</span></div>`;
}

/**
 * The login form.
 *
 * @param error what went wrong with the last attempt, if anything
 * @returns the page
 */
export function renderLogin(error: string | null): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`
    <!doctype html>
    <html lang="en">
      <head>${_head("Sign in · tailwise")}</head>
      <body class="login-page">
        <main class="login">
          <form class="card" method="post" action="/login" id="login-form">
        ${_brand()}
        <h1>Sign in</h1>
        <input type="text" name="user" value="tailwise" autocomplete="username" hidden>
    <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required
        minlength="16" spellcheck="false" autofocus>
        ${error === null ? "" : html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" class="primary">Sign in</button>
        <p class="hint">The token is <code>API_TOKEN</code>; on the embedded default it is in
        <code>$TAILWISE_DATA_DIR/api_token</code>, and <code>deno task start</code> prints a sign-in link.</p>
              </form>
        </main>
      </body>
    </html>
  `;
}

/**
 * The dashboard page.
 *
 * @param page the containers and anomalies to show
 * @returns the page
 */
export function renderDashboard(
  page: DashboardPage,
): HtmlEscapedString | Promise<HtmlEscapedString> {
  const hours = Math.round(page.suppressMs / 3_600_000);
  const silence = hours >= 1 ? `${hours} h` : `${Math.round(page.suppressMs / 60_000)} min`;
  const newest = page.anomalies[0]?.id ?? "";
  return html`
    <!doctype html>
    <html lang="en">
      <head>${_head("tailwise")}</head>
      <body data-newest="${newest}" data-silence="${silence}" data-min-lines="${page.minLines}">
        <header class="top">
    ${_brand()}
    <div class="stats">
    <div class="stat"><b id="stat-containers">${page.containers
      .length}</b><span>containers</span></div>
    <div class="stat"><b id="stat-rate">${_rate(
      page.containers.reduce((s, c) => s + c.linesPerMin, 0),
    )}</b><span>lines / min</span></div>
    <div class="stat"><b id="stat-anomalies">${page.anomalies
      .length}</b><span>anomalies shown</span></div>
    </div>
    <div class="spacer"></div>
    <a class="btn ghost" href="/incident-list" title="Anomalies of one service close in time, grouped">Incidents</a>
    <div class="live" id="live" data-state="connecting" title="Live updates"><i></i><span>connecting</span></div>
    <form method="post" action="/logout"><button type="submit" class="ghost">Sign out</button></form>
        </header>
        <main class="board">
          <section class="panel">
            <div
              class="panel-head"><h2>Containers</h2><span class="sub">log rate and model state</span></div>
            <table class="grid containers">
              <thead>
                <tr>
                  <th>Container</th>
                  <th class="r">Lines / min</th>
                  <th>State</th>
                  <th class="r">Model</th>
                  <th class="r">Threshold</th>
                  <th>Trained</th>
                  <th class="r">Actions</th>
                </tr>
              </thead>
              <tbody id="containers">${page.containers.map(containerRow)}</tbody>
            </table>
            <p class="empty" id="containers-empty" ${page.containers.length > 0
              ? html`
                hidden
              `
              : ""}>
    No containers yet. tailwise is waiting for logs: Docker containers, <code>--file PATH</code> or <code>--demo</code>.</p>
          </section>
          <section class="panel">
            <div class="panel-head"><h2>Anomalies</h2><span
                class="sub">newest first · live · repeats of a template folded</span>
              ${_legend()}</div>
            <table class="grid anomalies">
              <thead>
                <tr>
                  <th class="c-time">Time</th>
                  <th class="c-ctr">Container</th>
                  <th>Line and template</th>
                  <th class="c-score">Score / threshold</th>
                  <th class="c-reasons">Reasons</th>
                  <th class="c-fb r">Feedback</th>
                </tr>
              </thead>
              <tbody id="anomalies">${_timeline(page, silence)}</tbody>
            </table>
            <p class="empty" id="anomalies-empty" ${page.anomalies.length > 0
              ? html`
                hidden
              `
              : ""}>
    No anomalies yet. New ones appear here as they are found.</p>
          </section>
          ${_deploysPanel(page.deploys ?? [])}
        </main>
        <div id="toast" class="toast" role="status" aria-live="polite" hidden></div>
        <template id="tpl-anomaly">${anomalyRow(_EMPTY_ANOMALY, silence)}</template>
        <template id="tpl-container">${containerRow(_EMPTY_CONTAINER)}</template>
      </body>
    </html>
  `;
}

/**
 * What a reason code means, for its tooltip and the legend.
 *
 * @param code a reason code (already made safe for display)
 * @returns the explanation, or a pointer to the docs for an unknown code
 */
export function reasonText(code: string): string {
  return Object.hasOwn(REASON_TEXT, code) ? REASON_TEXT[code]! : "see docs/dashboard.md";
}

function _legend(): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`
    <details class="legend">
      <summary>Reason codes</summary>
      <dl>${Object.entries(
        REASON_TEXT,
      ).map(([code, text]) =>
        html`
          <dt><span class="chip">${code}</span></dt>
          <dd>${text}</dd>
        `
      )}</dl>
    </details>
  `;
}

/** The anomaly rows, newest first, with a marker row where a deploy happened. */
function _timeline(
  page: DashboardPage,
  silence: string,
): (HtmlEscapedString | Promise<HtmlEscapedString>)[] {
  const deploys = [...(page.deploys ?? [])];
  const rows: (HtmlEscapedString | Promise<HtmlEscapedString>)[] = [];
  for (const a of page.anomalies) {
    while (deploys.length > 0 && deploys[0]!.atMs > a.scoredAt) {
      rows.push(_marker(deploys.shift()!));
    }
    rows.push(anomalyRow(a, silence));
  }
  for (const d of deploys) rows.push(_marker(d));
  return rows;
}

function _marker(d: DeployView): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`
    <tr class="deploy-marker" data-deploy="${d.id}">
      <td class="c-time"><time data-f="time" datetime="${d.at}">${_clock(d.at)}</time></td>
      <td colspan="5"><span class="deploy-tag">deploy</span> <span class="ctr">${d.container}</span>
        ${d.previousImage} → ${d.image}</td>
    </tr>
  `;
}

function _deploysPanel(
  deploys: readonly DeployView[],
): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`
    <section class="panel">
      <div
        class="panel-head"><h2>Deploys</h2><span class="sub">image changes per service · first 30 minutes against the baseline</span></div>
      <table class="grid deploys">
        <thead>
          <tr>
            <th>Time</th>
            <th>Service</th>
            <th>Image</th>
            <th class="r">Report</th>
          </tr>
        </thead>
        <tbody id="deploys">${deploys.map((d) =>
          html`
            <tr class="deploy" data-deploy="${d.id}">
              <td><time datetime="${d.at}">${_dateTime(d.at)}</time></td>
              <td><span class="ctr">${d.container}</span></td>
              <td>${d.previousImage} → ${d.image}</td>
              <td class="r"><button type="button" data-action="report">Report</button></td>
            </tr>
            <tr class="deploy-report" hidden>
              <td colspan="4">
                <div class="report"></div>
              </td>
            </tr>
          `
        )}</tbody>
      </table>
      <p class="empty" ${deploys.length > 0
        ? html`
          hidden
        `
        : ""}>No deploys seen yet: a service's image changing is recorded here.</p>
    </section>
  `;
}

const _EMPTY_ANOMALY: AnomalyView = {
  id: "",
  container: "",
  ts: "",
  scoredAt: 0,
  line: "",
  lineCut: null,
  template: "",
  templateId: "",
  score: 0,
  threshold: 0,
  reasons: [],
  explanation: [],
  modelVersion: 0,
  severity: "elevated",
  feedback: null,
  suppressed: false,
};

const _EMPTY_CONTAINER: ContainerView = {
  name: "",
  key: "",
  linesPerMin: 0,
  state: "learning",
  version: null,
  threshold: null,
  trainedAt: null,
  linesToModel: null,
  canRollback: false,
  behind: "",
};

/**
 * One row of the anomaly timeline. The client fills a clone of the same row
 * (its `data-f` cells) with `textContent` for anomalies that arrive live.
 *
 * @param a the anomaly
 * @param silence how long `normal` silences the template, for the hint
 * @returns the row
 */
export function anomalyRow(
  a: AnomalyView,
  silence: string,
): HtmlEscapedString | Promise<HtmlEscapedString> {
  const fb = a.feedback ?? (a.suppressed ? "suppressed" : "");
  return html`
    <tr class="anomaly sev-${a.severity}" data-id="${a.id}" data-container="${a.container}"
      data-template-id="${a.templateId}" data-feedback="${fb}" data-scored="${a.scoredAt}">
      <td class="c-time"><time data-f="time" datetime="${a.ts}">${_clock(a.ts)}</time></td>
      <td class="c-ctr"><span class="ctr" data-f="container">${a.container}</span></td>
      <td class="c-line">
        <div class="line" data-f="line" title="${a.lineCut === null
          ? ""
          : `cut at 2 KB of ${a.lineCut} characters`}">${a.line}</div>
        <div class="tpl"><span class="k">template</span><code data-f="template">${a
          .template}</code></div>
        <div class="fold" hidden><span class="fold-n"></span>
    <button type="button" class="fold-btn" data-action="fold" aria-expanded="false"></button></div>
        <div
          class="tools"><button type="button" class="ctx-btn" data-action="context" aria-expanded="false"
    title="The service's lines just before and after this one, from the history">Lines around</button></div>
        <ol class="ctx" hidden></ol>
      </td>
      <td class="c-score">
        <div class="num"><b data-f="score">${a.score.toFixed(2)}</b>
    <span>/ <span data-f="threshold">${a.threshold.toFixed(2)}</span></span>
    <span class="ver" data-f="version">${a.modelVersion > 0
      ? `v${a.modelVersion}`
      : "cold start"}</span></div>
        <div class="bar" data-score="${a.score}" data-threshold="${a
          .threshold}"><i></i><s></s></div>
      </td>
      <td class="c-reasons" data-f="reasons">${a.reasons.map((r) =>
        html`<span class="chip" title="${reasonText(r)}">${r}</span>`
      )}${a.explanation.map((e) => html`<div class="why">${e}</div>`)}</td>
      <td class="c-fb r"><div class="fb">
    <button type="button" class="fb-normal" data-label="normal"
    title="Not a problem: silence this template for ${silence} and learn the line as normal">Normal</button>
    <button type="button" class="fb-anomaly" data-label="anomaly"
    title="A real problem: keep alerting and leave the line out of training">Anomaly</button>
    </div><span class="fb-state" data-f="feedback">${_feedbackText(fb)}</span></td>
    </tr>
  `;
}

/**
 * One row of the containers table; the client fills clones of it the same way.
 *
 * @param c the container
 * @returns the row
 */
export function containerRow(c: ContainerView): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`
    <tr class="container state-${c.state}" data-key="${c.key}">
      <td><span class="ctr" data-f="name">${c.name}</span><small class="behind" data-f="behind">${c
        .behind}</small></td>
      <td class="r num" data-f="rate">${_rate(c.linesPerMin)}</td>
      <td><span class="state" data-f="state">${_stateText(c)}</span></td>
      <td class="r num" data-f="version">${c.version === null ? "—" : `v${c.version}`}</td>
      <td class="r num" data-f="threshold">${c.threshold === null
        ? "—"
        : c.threshold.toFixed(3)}</td>
      <td><time data-f="trained" datetime="${c.trainedAt ?? ""}">${c.trainedAt === null
        ? "—"
        : _dateTime(c.trainedAt)}</time></td>
      <td class="r">
        <div class="acts">
    <a class="btn service-link" href="/service?name=${encodeURIComponent(
      c.key,
    )}" title="The service: containers, image, model versions, deploys">Service</a>
    <a class="btn volume-link" href="/volume?service=${encodeURIComponent(
      c.key,
    )}" title="Log volume against the expected band, and incidents">Volume</a>
    <button type="button" data-action="retrain" title="Train a new model from this container's history now">Retrain</button>
    <button type="button" data-action="rollback" title="Go back to the previous good model"${c
        .canRollback
      ? ""
      : html`
        disabled
      `}>Rollback</button></div>
      </td>
    </tr>
  `;
}

function _stateText(c: ContainerView): string {
  if (c.state === "trained") return "trained";
  if (c.linesToModel === null) return "learning";
  if (c.linesToModel <= 0) return "learning — ready for its first model";
  return `learning — ${c.linesToModel.toLocaleString("en-US")} lines until the first model`;
}

function _feedbackText(fb: string): string {
  if (fb === "normal") return "marked normal · template silenced";
  if (fb === "anomaly") return "confirmed";
  if (fb === "suppressed") return "template silenced";
  return "";
}

function _rate(n: number): string {
  if (n >= 10_000) return `${(n / 1000).toFixed(0)}k`;
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  return n >= 10 ? n.toFixed(0) : n.toFixed(1);
}

function _clock(ts: string): string {
  const m = /T(\d\d:\d\d:\d\d)/.exec(ts);
  return m ? m[1]! : ts.slice(0, 19);
}

function _dateTime(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(ts);
  return m ? `${m[1]} ${m[2]}` : ts.slice(0, 16);
}
