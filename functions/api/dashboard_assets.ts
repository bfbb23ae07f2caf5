/**
 * The dashboard's stylesheet and script, served as `/ui/dashboard.css` and
 * `/ui/dashboard.js` (the api's Content-Security-Policy allows scripts and
 * styles from its own origin only, no inline ones). The script never puts
 * data into `innerHTML`: rows that arrive live are clones of a server-rendered
 * `<template>` filled with `textContent`.
 *
 * @module
 */

import { REASON_TEXT } from "./dashboard_view.ts";

/** The stylesheet: a dark neutral palette (light when the system asks), severity colours. */
export const DASHBOARD_CSS = `
:root {
  --bg: #0e1116; --panel: #151a21; --panel-2: #1b212a; --border: #262d38; --text: #e5e9f0;
  --muted: #8a94a6; --faint: #5d6677; --accent: #6ea8fe; --accent-ink: #0b1220;
  --crit: #ff5d5d; --high: #ff9a3d; --elev: #f2c94c; --ok: #3fcf8e; --learn: #8fa3bf;
  --chip: #232a35; --row-hover: #19202a; --shadow: 0 1px 0 rgba(255,255,255,.03), 0 8px 24px rgba(0,0,0,.25);
  --mono: ui-monospace, "SF Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Inter, Roboto, "Helvetica Neue", "DejaVu Sans", sans-serif;
  color-scheme: dark;
}
@media (prefers-color-scheme: light) {
  :root {
    --bg: #f5f6f8; --panel: #ffffff; --panel-2: #f8f9fb; --border: #e2e5ea; --text: #1a1f29;
    --muted: #5f6b7e; --faint: #98a1b1; --accent: #2f6fe4; --accent-ink: #ffffff;
    --crit: #d93636; --high: #d9731a; --elev: #b88a00; --ok: #1c9a63; --learn: #5d7291;
    --chip: #eef1f5; --row-hover: #f6f8fb; --shadow: 0 1px 2px rgba(16,24,40,.06);
    color-scheme: light;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); }
body { font: 14px/1.45 var(--sans); -webkit-font-smoothing: antialiased; }
code, .num, .line, time { font-variant-numeric: tabular-nums; }
code { font-family: var(--mono); font-size: 12.5px; }
button {
  font: inherit; font-size: 12.5px; color: var(--text); background: var(--panel-2);
  border: 1px solid var(--border); border-radius: 6px; padding: 3px 10px; cursor: pointer;
  transition: background .12s, border-color .12s, color .12s;
}
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: .4; cursor: default; }
button.primary { background: var(--accent); color: var(--accent-ink); border-color: var(--accent); font-weight: 600; }
button.ghost { background: transparent; color: var(--muted); }
[hidden] { display: none !important; }

.brand { display: flex; align-items: center; gap: 9px; font-weight: 700; font-size: 16px; letter-spacing: -.01em; }
.brand .logo { border-radius: 6px; }

header.top {
  position: sticky; top: 0; z-index: 10; display: flex; align-items: center; gap: 28px;
  height: 56px; padding: 0 24px; background: color-mix(in srgb, var(--bg) 88%, transparent);
  backdrop-filter: blur(8px); border-bottom: 1px solid var(--border);
}
.stats { display: flex; gap: 24px; }
.stat { display: flex; align-items: baseline; gap: 6px; }
.stat b { font-size: 16px; font-variant-numeric: tabular-nums; }
.stat span { color: var(--muted); font-size: 12.5px; }
.spacer { flex: 1; }
.live { display: flex; align-items: center; gap: 7px; color: var(--muted); font-size: 12.5px; }
.live i { width: 8px; height: 8px; border-radius: 50%; background: var(--faint); }
.live[data-state="live"] i { background: var(--ok); box-shadow: 0 0 0 3px color-mix(in srgb, var(--ok) 25%, transparent); }
.live[data-state="reconnecting"] i, .live[data-state="connecting"] i { background: var(--elev); }
.live[data-state="offline"] i { background: var(--crit); }
header form { margin: 0; }

main.board { max-width: 1560px; margin: 0 auto; padding: 20px 24px 48px; display: grid; gap: 20px; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow); overflow: clip; }
.panel-head { display: flex; align-items: baseline; gap: 10px; padding: 12px 16px 10px; border-bottom: 1px solid var(--border); }
.panel-head h2 { margin: 0; font-size: 14px; font-weight: 650; }
.panel-head .sub { color: var(--muted); font-size: 12.5px; }

table.grid { width: 100%; border-collapse: separate; border-spacing: 0; }
table.grid th {
  position: sticky; top: 56px; z-index: 5; background: var(--panel-2); text-align: left;
  font-size: 11.5px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); padding: 7px 12px; border-bottom: 1px solid var(--border); white-space: nowrap;
}
table.grid td { padding: 8px 12px; border-bottom: 1px solid var(--border); vertical-align: top; }
table.grid tbody tr:last-child td { border-bottom: 0; }
table.grid tbody tr:hover td { background: var(--row-hover); }
table.grid .r, .r { text-align: right; }
.num { font-family: var(--mono); font-size: 12.5px; }
.ctr { font-weight: 600; unicode-bidi: isolate; overflow-wrap: anywhere; }
.behind { display: block; color: var(--muted, #888); font-size: 0.8em; overflow-wrap: anywhere; }
.behind:empty { display: none; }
.deploy-marker td { border-top: 2px dashed var(--accent, #ff7a59); font-size: 0.85em; }
.deploy-tag { font-weight: 600; text-transform: uppercase; letter-spacing: 0.05em; }
.deploy-report .report h4 { margin: 0.6em 0 0.2em; }
.deploy-report .report ul { margin: 0; padding-left: 1.2em; overflow-wrap: anywhere; }
.empty { margin: 0; padding: 22px 16px; color: var(--muted); text-align: center; }

.containers td { vertical-align: middle; }
.containers th:first-child { width: 22%; }
.state { display: inline-flex; align-items: center; gap: 7px; font-size: 12.5px; color: var(--muted); }
.state::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: var(--learn); }
.state-trained .state { color: var(--text); }
.state-trained .state::before { background: var(--ok); }
.acts { display: inline-flex; gap: 6px; }
.facts th { position: static; width: 170px; text-transform: none; letter-spacing: 0; font-size: 12.5px; }
.facts .links { display: flex; flex-wrap: wrap; gap: 6px 12px; }
.search-form { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; padding: 12px 16px; }
.search-form label { display: flex; flex-direction: column; gap: 4px; font-size: 12px; color: var(--muted); }
.search-form input, .search-form select { font: 13px var(--mono); padding: 4px 8px; min-width: 0; max-width: 100%; }
.search-count { margin: 0; padding: 0 16px; }
.search-hits { margin: 6px 16px 14px; max-height: 480px; }
.error { color: var(--crit); }
.patterns .spark { color: var(--accent); display: block; }
.patterns .tpl-text { display: block; overflow-wrap: anywhere; white-space: pre-wrap; }
.patterns .example { color: var(--muted); margin-top: 3px; cursor: auto; }
.patterns td { vertical-align: middle; }
.search-form .btn { align-self: center; }
@media (max-width: 900px) { .facts th { display: block; padding: 6px 12px 0; border: 0; background: none; } }

.anomalies { table-layout: fixed; }
.anomalies .c-time { width: 86px; }
.anomalies .c-ctr { width: 140px; }
.anomalies .c-score { width: 180px; }
.anomalies .c-reasons { width: 240px; }
.anomalies .why { color: var(--muted); font-size: 11.5px; margin-top: 3px; overflow-wrap: anywhere; }
.anomalies .c-fb { width: 176px; }
tr.anomaly td:first-child { box-shadow: inset 3px 0 0 var(--sev); }
tr.anomaly { --sev: var(--elev); }
tr.sev-high { --sev: var(--high); }
tr.sev-critical { --sev: var(--crit); }
tr.anomaly time { font-family: var(--mono); font-size: 12.5px; color: var(--muted); }
.line {
  font-family: var(--mono); font-size: 12.5px; white-space: pre-wrap; overflow-wrap: anywhere;
  unicode-bidi: plaintext; display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3;
  overflow: hidden; cursor: pointer;
}
.line.open { -webkit-line-clamp: unset; display: block; }
.tpl { margin-top: 4px; display: flex; gap: 8px; align-items: baseline; min-width: 0; }
.tpl .k { font-size: 10.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--faint); flex: none; }
.tpl code { color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; unicode-bidi: plaintext; }
.c-score .num { display: flex; align-items: baseline; gap: 4px; white-space: nowrap; }
.c-score .num b { color: var(--sev); font-size: 13px; }
.c-score .num span { color: var(--muted); }
.c-score .ver { margin-left: auto; font-size: 11px; color: var(--faint); font-family: var(--sans); white-space: nowrap; }
.bar { position: relative; height: 5px; margin-top: 6px; border-radius: 3px; background: var(--chip); }
.bar i { position: absolute; left: 0; top: 0; bottom: 0; width: 0; border-radius: 3px; background: var(--sev); }
.bar s { position: absolute; top: -3px; bottom: -3px; width: 2px; left: 0; background: var(--text); opacity: .7; border-radius: 1px; }
.chip {
  display: inline-block; margin: 0 4px 4px 0; padding: 1px 8px; border-radius: 999px; background: var(--chip);
  border: 1px solid var(--border); font-size: 11.5px; font-family: var(--mono); color: var(--text); white-space: nowrap;
}
.fb { display: inline-flex; gap: 6px; }
.fb-state { display: block; margin-top: 5px; font-size: 11.5px; color: var(--muted); }
tr[data-feedback="normal"] .fb-normal { background: var(--ok); border-color: var(--ok); color: var(--accent-ink); }
tr[data-feedback="anomaly"] .fb-anomaly { background: var(--crit); border-color: var(--crit); color: #fff; }
tr[data-feedback="normal"] td, tr[data-feedback="suppressed"] td { opacity: .55; }
tr[data-feedback="normal"] td.c-fb, tr[data-feedback="suppressed"] td.c-fb { opacity: 1; }
tr.busy button { pointer-events: none; opacity: .5; }
@keyframes arrive { from { background: color-mix(in srgb, var(--accent) 22%, transparent); } to { background: transparent; } }
tr.new td { animation: arrive 2.4s ease-out; }

.toast {
  position: fixed; right: 20px; bottom: 20px; max-width: 420px; padding: 10px 14px; border-radius: 8px;
  background: var(--panel-2); border: 1px solid var(--border); box-shadow: var(--shadow); font-size: 13px;
}
.toast.error { border-color: var(--crit); }

body.login-page { min-height: 100vh; display: grid; place-items: center; }
.login .card {
  width: 360px; padding: 28px; background: var(--panel); border: 1px solid var(--border); border-radius: 12px;
  box-shadow: var(--shadow); display: grid; gap: 10px;
}
.login h1 { margin: 8px 0 4px; font-size: 18px; }
.login label { font-size: 12.5px; color: var(--muted); }
.login input {
  font: 14px var(--mono); padding: 8px 10px; border-radius: 7px; border: 1px solid var(--border);
  background: var(--bg); color: var(--text);
}
.login input:focus { outline: 2px solid color-mix(in srgb, var(--accent) 50%, transparent); border-color: var(--accent); }
.login button { padding: 8px; font-size: 14px; }
.login .error { margin: 0; color: var(--crit); font-size: 13px; }
.login .hint { margin: 6px 0 0; font-size: 12px; color: var(--muted); }
@media (max-width: 1100px) {
  .anomalies .c-reasons { width: 150px; }
  .anomalies .c-ctr { width: 110px; }
  .anomalies .c-score { width: 150px; }
  .stats .stat:nth-child(3) { display: none; }
}

.panel-head { flex-wrap: wrap; }
.legend { margin-left: auto; font-size: 12.5px; color: var(--muted); }
.legend summary { cursor: pointer; }
.legend[open] { flex-basis: 100%; }
.legend dl { margin: 8px 0 2px; display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 10px; align-items: baseline; }
.legend dt .chip { margin: 0; }
.legend dd { margin: 0; color: var(--text); }
.chip[title] { cursor: help; }
.fold { margin-top: 6px; display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; font-size: 11.5px; color: var(--muted); }
.fold-n { font-family: var(--mono); }
.fold-n b { color: var(--sev); }
.fold-btn { padding: 0 8px; font-size: 11.5px; }
tr.fold-member td { background: color-mix(in srgb, var(--panel-2) 70%, transparent); }
tr.fold-member td.c-line { padding-left: 26px; }
tr.anomaly.folded { display: none !important; }
.tools { margin-top: 6px; }
.ctx-btn { padding: 0 8px; font-size: 11.5px; }
.ctx {
  margin: 6px 0 0; padding: 6px 8px; list-style: none; background: var(--bg); border: 1px solid var(--border);
  border-radius: 6px; font-family: var(--mono); font-size: 12px; max-height: 320px; overflow: auto;
}
.ctx li { white-space: pre-wrap; overflow-wrap: anywhere; unicode-bidi: plaintext; color: var(--muted); }
.ctx li time { color: var(--faint); margin-right: 8px; unicode-bidi: isolate; }
.ctx li.hit { color: var(--text); background: color-mix(in srgb, var(--sev) 18%, transparent); }
.ctx li.note { font-family: var(--sans); font-style: italic; }

/* Narrow screens (phones, split windows): rows become cards, nothing wider than the screen. */
@media (max-width: 900px) {
  header.top { position: static; flex-wrap: wrap; height: auto; min-height: 48px; gap: 6px 12px; padding: 8px 12px; }
  .stats { order: 10; flex-basis: 100%; gap: 14px; }
  .stats .stat:nth-child(3) { display: flex; }
  .spacer { display: none; }
  header.top > a.btn { margin-left: auto; }
  .live span { display: none; }
  main.board { padding: 12px 8px 32px; gap: 12px; }
  .panel-head { padding: 10px 12px 8px; }
  table.grid thead { display: none; }
  table.grid, table.grid tbody, table.grid tr, table.grid td { display: block; width: auto !important; }
  table.grid td { border-bottom: 0; padding: 3px 12px; }
  table.grid tbody tr { border-bottom: 1px solid var(--border); padding: 6px 0; }
  table.grid tbody tr:last-child { border-bottom: 0; }
  table.grid .r { text-align: left; }
  .anomalies tr.anomaly { display: grid; grid-template-columns: max-content minmax(0, 1fr); column-gap: 4px; box-shadow: inset 3px 0 0 var(--sev); }
  .anomalies tr.anomaly td:first-child { box-shadow: none; }
  .anomalies td.c-line, .anomalies td.c-score, .anomalies td.c-reasons, .anomalies td.c-fb { grid-column: 1 / -1; min-width: 0; }
  .anomalies td.c-score .num { max-width: 260px; }
  .anomalies td.c-score .bar { max-width: 260px; }
  .anomalies td.c-fb { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
  .fb-state { margin-top: 0; }
  .containers tr.container { display: flex; flex-wrap: wrap; align-items: center; column-gap: 2px; }
  .containers tr.container td:first-child { flex-basis: 100%; }
  .containers td.num::after { color: var(--muted); font-family: var(--sans); font-size: 11.5px; }
  .containers td[data-f="rate"]::after { content: " lines/min"; }
  .containers td[data-f="version"]::before { content: "model "; }
  .containers td[data-f="threshold"]::before { content: "threshold "; }
  .containers td:nth-child(6)::before { content: "trained "; }
  .containers td[data-f]::before, .containers td:nth-child(6)::before { color: var(--muted); font-family: var(--sans); font-size: 11.5px; }
  .acts { flex-wrap: wrap; }
  tr.deploy-marker td:first-child { border-top: 2px dashed var(--accent, #ff7a59); }
  tr.deploy-marker td + td { border-top: 0; }
  .toast { left: 12px; right: 12px; bottom: 12px; max-width: none; }
  .login .card { width: min(360px, calc(100vw - 24px)); }
}
`;

/** The page's script: live updates over `/events`, feedback, retrain and rollback. */
export const DASHBOARD_JS = `(function () {
  "use strict";

  // Login page: a token in the URL fragment (the printed sign-in link) is
  // posted, and removed from the address bar and the history first.
  var loginForm = document.getElementById("login-form");
  if (loginForm) {
    var fromFragment = function () {
      var m = /^#token=([^&]+)$/.exec(location.hash);
      if (!m) return;
      history.replaceState(null, "", "/login");
      loginForm.elements.namedItem("token").value = decodeURIComponent(m[1]);
      loginForm.submit();
    };
    window.addEventListener("hashchange", fromFragment);
    fromFragment();
    return;
  }
  var anomalies = document.getElementById("anomalies");
  if (!anomalies) return;
  var containers = document.getElementById("containers");
  var silence = document.body.dataset.silence || "a while";
  var MAX_ROWS = 200;
  var REASONS = ${JSON.stringify(REASON_TEXT)};
  // Anomalies of one container and template less than FOLD_MS apart fold into
  // the newest one: a count, the first and last time, and a button to expand.
  var FOLD_MS = 10 * 60 * 1000;
  var openFolds = {};

  function field(root, name) { return root.querySelector('[data-f="' + name + '"]'); }
  function setText(root, name, text) { var el = field(root, name); if (el) el.textContent = text; }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function clock(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function rate(n) {
    if (n >= 10000) return (n / 1000).toFixed(0) + "k";
    if (n >= 100) return Math.round(n).toLocaleString("en-US");
    return n >= 10 ? n.toFixed(0) : n.toFixed(1);
  }
  function feedbackText(fb) {
    if (fb === "normal") return "marked normal \\u00b7 template silenced";
    if (fb === "anomaly") return "confirmed";
    if (fb === "suppressed") return "template silenced";
    return "";
  }

  function localize(root) {
    root.querySelectorAll('time[data-f="time"]').forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      t.textContent = clock(d);
      t.title = d.toLocaleString();
    });
    root.querySelectorAll('time[data-f="trained"]').forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      t.textContent = ago(Date.now() - d.getTime());
      t.title = d.toLocaleString();
    });
  }
  function sizeBars(root) {
    root.querySelectorAll(".bar").forEach(function (b) {
      var score = Math.min(1, Math.max(0, Number(b.dataset.score) || 0));
      var threshold = Math.min(1, Math.max(0, Number(b.dataset.threshold) || 0));
      b.querySelector("i").style.width = (score * 100).toFixed(1) + "%";
      b.querySelector("s").style.left = "calc(" + (threshold * 100).toFixed(1) + "% - 1px)";
    });
  }

  function fillAnomaly(tr, v) {
    tr.className = "anomaly sev-" + v.severity;
    tr.dataset.id = v.id;
    tr.dataset.container = v.container;
    tr.dataset.templateId = v.templateId;
    tr.dataset.feedback = v.feedback || (v.suppressed ? "suppressed" : "");
    tr.dataset.scored = String(v.scoredAt);
    var t = field(tr, "time");
    t.setAttribute("datetime", v.ts);
    t.textContent = v.ts;
    setText(tr, "container", v.container);
    var line = field(tr, "line");
    line.textContent = v.line;
    line.title = v.lineCut === null ? "" : "cut at 2 KB of " + v.lineCut + " characters";
    setText(tr, "template", v.template);
    setText(tr, "score", v.score.toFixed(2));
    setText(tr, "threshold", v.threshold.toFixed(2));
    setText(tr, "version", v.modelVersion > 0 ? "v" + v.modelVersion : "cold start");
    var bar = tr.querySelector(".bar");
    bar.dataset.score = String(v.score);
    bar.dataset.threshold = String(v.threshold);
    var reasons = field(tr, "reasons");
    reasons.replaceChildren();
    v.reasons.forEach(function (r) {
      var chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = r;
      chip.title = Object.prototype.hasOwnProperty.call(REASONS, r) ? REASONS[r] : "see docs/dashboard.md";
      reasons.appendChild(chip);
    });
    (v.explanation || []).forEach(function (e) {
      var why = document.createElement("div");
      why.className = "why";
      why.textContent = e;
      reasons.appendChild(why);
    });
    setText(tr, "feedback", feedbackText(tr.dataset.feedback));
    localize(tr);
    sizeBars(tr);
  }

  function fillContainer(tr, c) {
    tr.className = "container state-" + c.state;
    tr.dataset.key = c.key;
    setText(tr, "name", c.name);
    setText(tr, "behind", c.behind || "");
    setText(tr, "rate", rate(c.linesPerMin));
    var state = c.state === "trained" ? "trained" : c.linesToModel === null ? "learning"
      : c.linesToModel <= 0 ? "learning \\u2014 ready for its first model"
      : "learning \\u2014 " + c.linesToModel.toLocaleString("en-US") + " lines until the first model";
    setText(tr, "state", state);
    setText(tr, "version", c.version === null ? "\\u2014" : "v" + c.version);
    setText(tr, "threshold", c.threshold === null ? "\\u2014" : c.threshold.toFixed(3));
    var t = field(tr, "trained");
    t.setAttribute("datetime", c.trainedAt || "");
    t.textContent = "\\u2014";
    tr.querySelector('[data-action="rollback"]').disabled = !c.canRollback;
    // Clones of the template carry no key in their links.
    tr.querySelector(".service-link").href = "/service?name=" + encodeURIComponent(c.key);
    tr.querySelector(".volume-link").href = "/volume?service=" + encodeURIComponent(c.key);
    localize(tr);
  }

  function updateStats() {
    var rows = anomalies.querySelectorAll("tr.anomaly");
    document.getElementById("stat-anomalies").textContent = String(rows.length);
    document.getElementById("anomalies-empty").hidden = rows.length > 0;
  }

  function foldKey(tr) { return tr.dataset.container + "\\u0000" + tr.dataset.templateId; }
  function timeOf(tr) {
    var d = new Date(field(tr, "time").getAttribute("datetime"));
    return isNaN(d.getTime()) ? "?" : clock(d);
  }
  function fold() {
    var groups = {};
    var list = [];
    anomalies.querySelectorAll("tr.anomaly").forEach(function (tr) {
      var key = foldKey(tr);
      var at = Number(tr.dataset.scored) || 0;
      var g = Object.prototype.hasOwnProperty.call(groups, key) ? groups[key] : null;
      tr.classList.remove("fold-head", "fold-member", "folded");
      if (g && g.first - at <= FOLD_MS) {
        g.members.push(tr);
        g.first = at;
      } else {
        g = groups[key] = { key: key, head: tr, members: [], first: at };
        list.push(g);
      }
    });
    list.forEach(function (g) {
      var box = g.head.querySelector(".fold");
      var n = g.members.length;
      box.hidden = n === 0;
      if (n === 0) return;
      var open = openFolds[g.key] === true;
      g.head.classList.add("fold-head");
      g.members.forEach(function (m) {
        m.classList.add("fold-member");
        if (!open) m.classList.add("folded");
      });
      var count = box.querySelector(".fold-n");
      var b = document.createElement("b");
      b.textContent = "\\u00d7" + (n + 1);
      count.replaceChildren(b, document.createTextNode(
        " first " + timeOf(g.members[n - 1]) + " \\u00b7 last " + timeOf(g.head)));
      var btn = box.querySelector(".fold-btn");
      btn.textContent = open ? "hide repeats" : "show " + n + " more";
      btn.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function addAnomaly(v) {
    if (anomalies.querySelector('tr[data-id="' + CSS.escape(v.id) + '"]')) return;
    var tr = document.getElementById("tpl-anomaly").content.firstElementChild.cloneNode(true);
    fillAnomaly(tr, v);
    tr.classList.add("new");
    anomalies.insertBefore(tr, anomalies.firstChild);
    while (anomalies.children.length > MAX_ROWS) anomalies.lastElementChild.remove();
    document.body.dataset.newest = v.id;
    fold();
    updateStats();
  }

  function renderContainers(list) {
    var tpl = document.getElementById("tpl-container").content.firstElementChild;
    var rows = list.map(function (c) {
      var tr = tpl.cloneNode(true);
      fillContainer(tr, c);
      return tr;
    });
    containers.replaceChildren.apply(containers, rows);
    document.getElementById("containers-empty").hidden = list.length > 0;
    document.getElementById("stat-containers").textContent = String(list.length);
    var total = list.reduce(function (s, c) { return s + c.linesPerMin; }, 0);
    document.getElementById("stat-rate").textContent = rate(total);
  }

  var toastEl = document.getElementById("toast");
  var toastTimer = 0;
  function toast(text, error) {
    toastEl.textContent = text;
    toastEl.className = error ? "toast error" : "toast";
    toastEl.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toastEl.hidden = true; }, 5000);
  }

  function post(path, body) {
    var init = { method: "POST", credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          var msg = res.status === 401 ? "Your session ended: reload the page to sign in again"
            : (data && data.error) || "Request failed (" + res.status + ")";
          throw new Error(msg);
        }
        return data;
      });
    });
  }

  function feedback(tr, label) {
    tr.classList.add("busy");
    post("/anomalies/" + encodeURIComponent(tr.dataset.id) + "/feedback", { label: label })
      .then(function (r) {
        tr.dataset.feedback = label;
        setText(tr, "feedback", feedbackText(label));
        anomalies.querySelectorAll("tr.anomaly").forEach(function (o) {
          if (o === tr || o.dataset.container !== tr.dataset.container ||
            o.dataset.templateId !== tr.dataset.templateId) return;
          if (label === "normal" && r.suppressed && !o.dataset.feedback) o.dataset.feedback = "suppressed";
          if (label === "anomaly" && o.dataset.feedback === "suppressed") o.dataset.feedback = "";
          setText(o, "feedback", feedbackText(o.dataset.feedback));
        });
        toast(label === "normal"
          ? "Marked normal: this template is silenced for " + silence + " and learned as normal"
          : "Confirmed: the line stays out of training");
      })
      .catch(function (e) { toast(e.message, true); })
      .finally(function () { tr.classList.remove("busy"); });
  }

  function retrain(tr) {
    var key = tr.dataset.key;
    tr.classList.add("busy");
    toast("Training " + key + "\\u2026");
    post("/train/" + encodeURIComponent(key))
      .then(function (r) {
        var text = r.status === "promoted" ? "Trained " + key + ": v" + r.version + " is live"
          : r.status === "candidate" ? "Trained " + key + " v" + r.version + ", held back" + (r.note ? ": " + r.note : "")
          : r.status === "learning" ? "Not enough lines for " + key + " yet" + (r.note ? ": " + r.note : "")
          : r.status === "busy" ? "A training of " + key + " is already running"
          : key + ": " + r.status;
        toast(text);
      })
      .catch(function (e) { toast(e.message, true); })
      .finally(function () { tr.classList.remove("busy"); });
  }

  function rollback(tr) {
    var key = tr.dataset.key;
    if (!confirm("Roll " + key + " back to its previous model?")) return;
    tr.classList.add("busy");
    post("/models/" + encodeURIComponent(key) + "/rollback")
      .then(function (r) { toast("Rolled " + key + " back to v" + r.current.version); })
      .catch(function (e) { toast(e.message, true); })
      .finally(function () { tr.classList.remove("busy"); });
  }

  document.addEventListener("click", function (e) {
    var target = e.target;
    if (!(target instanceof Element)) return;
    var btn = target.closest("button");
    if (btn && btn.dataset.label) return feedback(btn.closest("tr"), btn.dataset.label);
    if (btn && btn.dataset.action === "retrain") return retrain(btn.closest("tr"));
    if (btn && btn.dataset.action === "rollback") return rollback(btn.closest("tr"));
    if (btn && btn.dataset.action === "report") return report(btn.closest("tr"));
    if (btn && btn.dataset.action === "context") return context(btn.closest("tr"), btn);
    if (btn && btn.dataset.action === "fold") {
      var key = foldKey(btn.closest("tr"));
      openFolds[key] = openFolds[key] !== true;
      return fold();
    }
    var line = target.closest(".line");
    if (line && !window.getSelection().toString()) line.classList.toggle("open");
  });

  function context(tr, btn) {
    var box = tr.querySelector(".ctx");
    if (!box.hidden) {
      box.hidden = true;
      btn.setAttribute("aria-expanded", "false");
      return;
    }
    function note(text) {
      var li = document.createElement("li");
      li.className = "note";
      li.textContent = text;
      return li;
    }
    box.replaceChildren(note("loading\u2026"));
    box.hidden = false;
    btn.setAttribute("aria-expanded", "true");
    var ts = field(tr, "time").getAttribute("datetime");
    fetch("/context/" + encodeURIComponent(tr.dataset.container) + "?before=10&after=10&ts=" +
      encodeURIComponent(ts), { credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) throw new Error((data && data.error) || "HTTP " + r.status);
          return data;
        });
      })
      .then(function (ctx) {
        var items = [];
        function add(list, cls) {
          list.forEach(function (l) {
            var li = document.createElement("li");
            if (cls) li.className = cls;
            var t = document.createElement("time");
            var d = new Date(l.ts);
            t.textContent = isNaN(d.getTime()) ? "" : clock(d);
            t.title = l.container + " \u00b7 " + l.stream;
            li.appendChild(t);
            li.appendChild(document.createTextNode(l.display));
            items.push(li);
          });
        }
        add(ctx.before, "");
        add(ctx.at, "hit");
        add(ctx.after, "");
        if (ctx.at.length === 0) items.push(note("this line is not in the history (yet)"));
        if (items.length === 0) items.push(note("no lines around it in the history"));
        box.replaceChildren.apply(box, items);
        var hit = box.querySelector("li.hit");
        if (hit) box.scrollTop = Math.max(0, hit.offsetTop - box.clientHeight / 2);
      })
      .catch(function (e) { box.replaceChildren(note("Cannot load the lines around it: " + e.message)); });
  }

  function report(tr) {
    var row = tr.nextElementSibling;
    if (!row || !row.classList.contains("deploy-report")) return;
    if (!row.hidden) { row.hidden = true; return; }
    var box = row.querySelector(".report");
    box.textContent = "loading\u2026";
    row.hidden = false;
    fetch("/deploys/" + encodeURIComponent(tr.dataset.deploy), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (rep) {
        box.replaceChildren();
        var head = document.createElement("p");
        head.textContent = (rep.complete ? "" : "(window still running) ") +
          rep.lines.window + " lines after the deploy, " + rep.lines.baseline + " in the baseline; " +
          rep.anomalies.count + " anomalies after it";
        box.appendChild(head);
        function list(title, items, text) {
          var h = document.createElement("h4");
          h.textContent = title + " (" + items.length + ")";
          box.appendChild(h);
          var ul = document.createElement("ul");
          items.forEach(function (x) {
            var li = document.createElement("li");
            li.textContent = text(x);
            ul.appendChild(li);
          });
          box.appendChild(ul);
        }
        list("New templates", rep.newTemplates, function (x) {
          return x.template + " \u00d7" + x.count + " (in " + x.version + ")";
        });
        list("Templates gone", rep.goneTemplates, function (x) {
          return x.template + " (" + x.expected + " expected)";
        });
        list("Rates moved most", rep.rateChanges, function (x) {
          return x.template + ": " + x.beforePerMin + " \u2192 " + x.afterPerMin + " / min";
        });
        list("Anomalies after the deploy", rep.anomalies.first, function (x) {
          return (x.reasons[0] || "") + ": " + x.line;
        });
      })
      .catch(function (e) { box.textContent = "Cannot load the report: " + e.message; });
  }

  var live = document.getElementById("live");
  function setLive(state, text) {
    live.dataset.state = state;
    live.lastElementChild.textContent = text;
  }
  var source = null;
  function connect() {
    var after = document.body.dataset.newest || "";
    source = new EventSource("/events" + (after ? "?after=" + encodeURIComponent(after) : ""));
    source.addEventListener("hello", function () { setLive("live", "live"); });
    source.addEventListener("anomaly", function (e) { addAnomaly(JSON.parse(e.data)); });
    source.addEventListener("containers", function (e) {
      renderContainers(JSON.parse(e.data).containers);
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        setLive("offline", "offline");
        source.close();
        setTimeout(connect, 10000);
      } else {
        setLive("reconnecting", "reconnecting");
      }
    });
  }
  window.addEventListener("pagehide", function () { if (source) source.close(); });

  localize(document);
  sizeBars(document);
  fold();
  updateStats();
  setInterval(function () { localize(containers); }, 30000);
  connect();
})();
`;
