/**
 * The webhook adapter of the {@linkcode AlertSink} port: one HTTP POST per
 * alert, as JSON ({@linkcode AlertPayload}) or as a Slack-compatible message
 * (`{ text, blocks }`).
 *
 * - `send` only queues (bounded) and returns; a background flusher delivers.
 * - Repeats (same container and template) within `groupWindowMs` give one
 *   alert with a count: repeats in one flush are counted into it, later ones
 *   are reported in one `repeats` alert when the window closes.
 * - At most `ratePerMinute` alerts per container (token bucket); the anomalies
 *   held back are counted and reported in the container's next alert, or in a
 *   `rate_limited` alert as soon as the bucket allows one.
 * - A failed POST (network error, timeout, 408, 429, 5xx) is retried with
 *   jittered exponential backoff until it succeeds or the sink is disposed.
 * - With the anomalies stream given, the sink stores the id of the first
 *   anomaly it has not handled (state key `cursorKey`); a queue overflow or a
 *   restart re-reads the anomalies from there with `range()`, so none is lost
 *   from alerting. Without a stream, an overflow is counted in the next alert.
 * - The webhook URL is a secret (Slack's carry a token): errors and logs name
 *   its host only.
 *
 * @module
 */

import type { AlertSink, AlertSinkStats, Anomaly } from "../../ports/alert_sink.ts";
import type { IncidentNotice } from "../../ports/incident_store.ts";
import { fieldsToAnomaly } from "../../ports/anomaly.ts";
import type { LogStream } from "../../ports/log_stream.ts";
import type { Logger } from "../../runtime/logger.ts";

/** Why an alert was sent. */
export type AlertKind = "anomaly" | "repeats" | "rate_limited";

/** The JSON body of an incident notice. */
export interface IncidentPayload {
  /** Always `tailwise`. */
  source: "tailwise";
  /** Always `incident`. */
  kind: "incident";
  /** `opened`, `updated` or `resolved`. */
  event: IncidentNotice["event"];
  /** The service (model key). */
  container: string;
  /** The incident: id, status, times, counts per reason and kind, samples, links. */
  incident: IncidentNotice["incident"];
}

/** The JSON body of one alert. */
export interface AlertPayload {
  /** Always `tailwise`. */
  source: "tailwise";
  /** `anomaly`: new ones; `repeats`: more of an alerted template; `rate_limited`: held back ones. */
  kind: AlertKind;
  /** The model key (Swarm service, else container name). */
  container: string;
  /** The container's name. */
  containerName: string;
  /** Anomalies this alert stands for. */
  count: number;
  /** Earlier anomalies of the container held back by the rate limit, reported here. */
  rateLimited: number;
  /** Anomalies that did not fit the queue and could not be re-read (no stream). */
  overflowed: number;
  /** Docker timestamp of the first anomaly covered. */
  firstTs: string;
  /** Docker timestamp of the last anomaly covered. */
  lastTs: string;
  /** Ids in the anomalies stream of the anomalies covered (at most 20). */
  anomalyIds: string[];
  /** The latest anomaly covered, in full. */
  anomaly: Anomaly;
}

/** Options of {@linkcode WebhookAlertSink}. */
export interface WebhookAlertSinkOptions {
  /** The webhook URL (a secret: never logged). */
  url: string;
  /**
   * Body format.
   * @default "json"
   */
  format?: "json" | "slack";
  /**
   * Repeats of a container's template within this window give one alert, in ms; 0 disables grouping.
   * @default 60000
   */
  groupWindowMs?: number;
  /**
   * Alerts per container per minute.
   * @default 30
   */
  ratePerMinute?: number;
  /**
   * Most anomalies queued in memory.
   * @default 10000
   */
  maxQueue?: number;
  /**
   * First retry delay in ms (doubled per attempt, with jitter).
   * @default 500
   */
  retryBaseMs?: number;
  /**
   * Longest retry delay in ms.
   * @default 30000
   */
  retryMaxMs?: number;
  /**
   * Time limit of one POST in ms.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * The anomalies stream and where the sink keeps its position in it; without
   * it, nothing is re-read after an overflow or a restart.
   */
  stream?: { log: LogStream; name: string; cursorKey: string };
  /** Where delivery problems are logged (host only, never the URL). */
  log?: Logger;
}

interface _Group {
  closesAt: number;
  first: Anomaly | null;
  last: Anomaly | null;
  count: number;
}

interface _Bucket {
  tokens: number;
  at: number;
  held: number;
  firstHeld: Anomaly | null;
  lastHeld: Anomaly | null;
}

interface _Alert {
  kind: AlertKind;
  container: string;
  containerName: string;
  covered: Anomaly[];
  count: number;
  rateLimited: number;
  overflowed: number;
  firstTs: string;
  lastTs: string;
}

const _PAGE = 500;

/** Alerts to an HTTP endpoint, grouped, rate-limited and retried. */
export class WebhookAlertSink implements AlertSink {
  #url: string;
  #host: string;
  #auth: string | null = null;
  #secrets: string[];
  #format: "json" | "slack";
  #groupWindowMs: number;
  #rate: number;
  #maxQueue: number;
  #retryBaseMs: number;
  #retryMaxMs: number;
  #timeoutMs: number;
  #stream: { log: LogStream; name: string; cursorKey: string } | null;
  #log: Logger | null;

  #queue: Anomaly[] = [];
  #notices: IncidentNotice[] = [];
  #groups = new Map<string, _Group>();
  #buckets = new Map<string, _Bucket>();
  #overflowNoStream = 0;
  /** First id not handled yet, when the stream is the source (restart, overflow). */
  #resumeFrom: string | null = null;
  /** Every id below this one is handled. */
  #handledBelow: string | null = null;
  #cursorSaved = false;
  #stats: AlertSinkStats = {
    queued: 0,
    delivered: 0,
    anomaliesDelivered: 0,
    retries: 0,
    rejected: 0,
    rateLimited: 0,
    overflowed: 0,
    lastError: null,
  };
  #wake: (() => void) | null = null;
  #closing = new AbortController();
  #loop: Promise<void>;

  /**
   * Starts the background flusher.
   *
   * @param options the URL, format, grouping, rate limit, retries and stream
   * @throws {TypeError} when the URL is not http(s) (the message shows no part of it)
   * @throws {RangeError} when a number option is out of range
   */
  constructor(options: WebhookAlertSinkOptions) {
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new TypeError("Cannot use the webhook URL [redacted]: expected an http(s) URL");
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError("Cannot use the webhook URL [redacted]: expected an http(s) URL");
    }
    // Credentials in the URL travel as a Basic auth header (fetch refuses them in URLs).
    if (u.username || u.password) {
      this.#auth = `Basic ${
        btoa(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`)
      }`;
    }
    this.#secrets = [options.url, u.href, `${u.pathname}${u.search}`, u.search, u.password]
      .filter((f) => f.length > 1).sort((a, b) => b.length - a.length);
    u.username = "";
    u.password = "";
    this.#url = u.href;
    this.#host = u.host;
    this.#format = options.format ?? "json";
    this.#groupWindowMs = _num("groupWindowMs", options.groupWindowMs ?? 60_000, 0);
    this.#rate = _num("ratePerMinute", options.ratePerMinute ?? 30, 1);
    this.#maxQueue = _num("maxQueue", options.maxQueue ?? 10_000, 1);
    this.#retryBaseMs = _num("retryBaseMs", options.retryBaseMs ?? 500, 1);
    this.#retryMaxMs = _num("retryMaxMs", options.retryMaxMs ?? 30_000, 1);
    this.#timeoutMs = _num("timeoutMs", options.timeoutMs ?? 10_000, 1);
    this.#stream = options.stream ?? null;
    this.#log = options.log?.child({ sink: "webhook", host: this.#host }) ?? null;
    this.#loop = this.#run().catch((e) => {
      this.#log?.error("alert flusher stopped", { error: this.#scrub(e) });
    });
  }

  /** {@inheritDoc AlertSink.send} */
  send(anomalies: readonly Anomaly[]): Promise<void> {
    if (anomalies.length === 0 || this.#closing.signal.aborted) return Promise.resolve();
    if (this.#queue.length + anomalies.length > this.#maxQueue) {
      this.#stats.overflowed += anomalies.length;
      const first = this.#queue[0] ?? anomalies[0]!;
      if (this.#stream && first.id) {
        // The stream holds them all: switch to reading it from the oldest unhandled one.
        if (this.#resumeFrom === null || _cmpId(first.id, this.#resumeFrom) < 0) {
          this.#resumeFrom = first.id;
        }
        this.#queue = [];
      } else {
        this.#overflowNoStream += anomalies.length;
      }
    } else {
      this.#queue.push(...anomalies);
    }
    this.#stats.queued = this.#queue.length;
    this.#wake?.();
    return Promise.resolve();
  }

  /** {@inheritDoc AlertSink.notify} */
  notify(notices: readonly IncidentNotice[]): Promise<void> {
    if (notices.length === 0 || this.#closing.signal.aborted) return Promise.resolve();
    this.#notices.push(...notices);
    if (this.#notices.length > this.#maxQueue) {
      this.#stats.overflowed += this.#notices.length - this.#maxQueue;
      this.#notices.splice(0, this.#notices.length - this.#maxQueue);
    }
    this.#wake?.();
    return Promise.resolve();
  }

  /** {@inheritDoc AlertSink.stats} */
  stats(): AlertSinkStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  /**
   * Stops the flusher: an alert being retried is given up (its anomalies stay
   * in the stream, after the stored position).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closing.abort();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#closing.signal;
    if (this.#stream) {
      const saved = await this.#retrying(() => this.#stream!.log.getState(this.#stream!.cursorKey));
      if (saved === undefined) return;
      if (saved !== null) {
        this.#resumeFrom = saved;
        this.#cursorSaved = true;
      }
    }
    while (!signal.aborted) {
      if (this.#resumeFrom !== null && this.#stream) {
        const from = this.#resumeFrom;
        const page = await this.#retrying(() =>
          this.#stream!.log.range(this.#stream!.name, { start: from, count: _PAGE })
        );
        if (page === undefined) return;
        if (page.length === 0) {
          this.#resumeFrom = null;
          continue;
        }
        const batch = page.map((m) => fieldsToAnomaly(m.id, m.fields));
        if (!(await this.#process(batch))) return;
        this.#resumeFrom = page.length < _PAGE ? null : _nextId(page[page.length - 1]!.id);
        continue;
      }
      const notice = this.#notices.shift();
      if (notice !== undefined) {
        const p = _incidentPayload(notice);
        const body = JSON.stringify(this.#format === "slack" ? _slackIncident(p) : p);
        if (!(await this.#post(body, p.container, p.incident.anomalies))) return;
        continue;
      }
      const batch = this.#takeQueued();
      if (batch.length > 0) {
        if (!(await this.#process(batch))) return;
        continue;
      }
      const due = this.#dueAlerts(Date.now());
      if (due.length > 0) {
        for (const alert of due) if (!(await this.#deliver(alert))) return;
        continue;
      }
      await this.#sleepUntilWork();
    }
  }

  #takeQueued(): Anomaly[] {
    const out: Anomaly[] = [];
    while (out.length < _PAGE && this.#queue.length > 0) {
      const a = this.#queue.shift()!;
      // Already handled when the stream was read (restart or overflow).
      if (a.id && this.#handledBelow !== null && _cmpId(a.id, this.#handledBelow) < 0) continue;
      out.push(a);
    }
    return out;
  }

  /** Turns a batch into alerts, delivers them, then stores the position. */
  async #process(batch: Anomaly[]): Promise<boolean> {
    const firstId = batch.find((a) => a.id)?.id;
    if (this.#stream && !this.#cursorSaved && firstId) {
      // Before the first delivery attempt, so a restart finds these anomalies.
      if (!(await this.#saveCursor(firstId))) return false;
    }
    const now = Date.now();
    const alerts: _Alert[] = [];
    const fresh = new Map<string, _Alert>();
    for (const a of batch) {
      const key = `${a.container}\u0000${a.templateId}`;
      const inBatch = fresh.get(key);
      if (inBatch) {
        inBatch.covered.push(a);
        inBatch.count++;
        inBatch.lastTs = a.ts;
        continue;
      }
      const group = this.#groups.get(key);
      if (group && group.closesAt > now) {
        group.first ??= a;
        group.last = a;
        group.count++;
        continue;
      }
      const alert = _newAlert("anomaly", [a]);
      if (this.#groupWindowMs > 0) {
        this.#groups.set(key, {
          closesAt: now + this.#groupWindowMs,
          first: null,
          last: null,
          count: 0,
        });
        fresh.set(key, alert);
      }
      alerts.push(alert);
    }
    for (const alert of alerts) {
      if (!this.#admit(alert, now)) continue;
      if (!(await this.#deliver(alert))) return false;
    }
    const lastId = batch.findLast((a) => a.id)?.id;
    if (lastId) {
      const next = _nextId(lastId);
      if (this.#handledBelow === null || _cmpId(next, this.#handledBelow) > 0) {
        this.#handledBelow = next;
      }
      if (this.#stream && !(await this.#saveCursor(this.#handledBelow))) return false;
    }
    return true;
  }

  /** Applies the rate limit; an admitted alert carries the held-back count. */
  #admit(alert: _Alert, now: number): boolean {
    const b = this.#bucket(alert.container, now);
    if (b.tokens < 1) {
      b.held += alert.count;
      b.firstHeld ??= alert.covered[0] ?? null;
      b.lastHeld = alert.covered[alert.covered.length - 1] ?? b.lastHeld;
      this.#stats.rateLimited += alert.count;
      return false;
    }
    b.tokens -= 1;
    if (b.held > 0) {
      alert.rateLimited = b.held;
      this.#stats.rateLimited -= b.held;
      b.held = 0;
      b.firstHeld = null;
      b.lastHeld = null;
    }
    if (this.#overflowNoStream > 0) {
      alert.overflowed = this.#overflowNoStream;
      this.#overflowNoStream = 0;
    }
    return true;
  }

  #bucket(container: string, now: number): _Bucket {
    let b = this.#buckets.get(container);
    if (!b) {
      b = { tokens: this.#rate, at: now, held: 0, firstHeld: null, lastHeld: null };
      this.#buckets.set(container, b);
    }
    b.tokens = Math.min(this.#rate, b.tokens + ((now - b.at) * this.#rate) / 60_000);
    b.at = now;
    return b;
  }

  /** Repeats whose window closed, and held-back counts the bucket now allows. */
  #dueAlerts(now: number): _Alert[] {
    const out: _Alert[] = [];
    for (const [key, g] of this.#groups) {
      if (g.closesAt > now) continue;
      this.#groups.delete(key);
      if (g.count === 0 || !g.first || !g.last) continue;
      const alert = _newAlert("repeats", g.first === g.last ? [g.first] : [g.first, g.last]);
      alert.count = g.count;
      if (this.#admit(alert, now)) out.push(alert);
    }
    for (const [container, b] of this.#buckets) {
      if (b.held === 0 || !b.lastHeld) {
        if (b.held === 0 && b.tokens >= this.#rate) this.#buckets.delete(container);
        continue;
      }
      const probe = this.#bucket(container, now);
      if (probe.tokens < 1) continue;
      const covered = [b.firstHeld ?? b.lastHeld, b.lastHeld].filter((x, i, all) =>
        all.indexOf(x) === i
      );
      const alert = _newAlert("rate_limited", covered);
      alert.count = 0;
      if (this.#admit(alert, now)) out.push(alert);
    }
    return out;
  }

  async #sleepUntilWork(): Promise<void> {
    const now = Date.now();
    let until = Infinity;
    for (const g of this.#groups.values()) until = Math.min(until, g.closesAt);
    for (const b of this.#buckets.values()) {
      if (b.held > 0) until = Math.min(until, now + ((1 - b.tokens) * 60_000) / this.#rate);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      if (until !== Infinity) timer = setTimeout(resolve, Math.max(1, until - now + 1));
    });
    clearTimeout(timer);
    this.#wake = null;
  }

  /** POSTs one alert until it is accepted, refused for good, or the sink closes. */
  async #deliver(alert: _Alert): Promise<boolean> {
    const body = JSON.stringify(
      this.#format === "slack" ? _slackPayload(_alertPayload(alert)) : _alertPayload(alert),
    );
    return await this.#post(body, alert.container, alert.count + alert.rateLimited);
  }

  /** POSTs one body until it is accepted, refused for good, or the sink closes. */
  async #post(body: string, container: string, covers: number): Promise<boolean> {
    for (let attempt = 0;; attempt++) {
      if (this.#closing.signal.aborted) return false;
      let retryAfterMs = 0;
      try {
        const res = await fetch(this.#url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": "tailwise",
            ...(this.#auth ? { authorization: this.#auth } : {}),
          },
          body,
          signal: AbortSignal.any([
            this.#closing.signal,
            AbortSignal.timeout(this.#timeoutMs),
          ]),
        });
        await res.body?.cancel();
        if (res.ok) {
          this.#stats.delivered++;
          this.#stats.anomaliesDelivered += covers;
          this.#stats.lastError = null;
          return true;
        }
        const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
        const error = `webhook at ${this.#host} answered HTTP ${res.status}`;
        if (!retryable) {
          this.#stats.rejected++;
          this.#stats.lastError = error;
          this.#log?.error("alert refused by the receiver; it stays in the anomalies stream", {
            status: res.status,
            container,
          });
          return true;
        }
        this.#stats.lastError = error;
        retryAfterMs = _retryAfterMs(res.headers.get("retry-after"));
      } catch (e) {
        if (this.#closing.signal.aborted) return false;
        this.#stats.lastError = `webhook at ${this.#host} unreachable: ${this.#scrub(e)}`;
      }
      this.#stats.retries++;
      const backoff = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** Math.min(attempt, 20));
      const delay = Math.max(retryAfterMs, backoff / 2 + Math.random() * (backoff / 2));
      if (attempt === 0 || attempt % 10 === 9) {
        this.#log?.warn("alert delivery failed; retrying", {
          error: this.#stats.lastError,
          attempt: attempt + 1,
          retryInMs: Math.round(delay),
        });
      }
      if (!(await this.#sleep(delay))) return false;
    }
  }

  async #saveCursor(id: string): Promise<boolean> {
    const s = this.#stream!;
    const ok = await this.#retrying(() =>
      s.log.append(s.name, [], { state: { [s.cursorKey]: id } })
    );
    if (ok === undefined) return false;
    this.#cursorSaved = true;
    return true;
  }

  /** Runs a stream call until it succeeds; undefined when the sink closed. */
  async #retrying<T>(call: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0;; attempt++) {
      if (this.#closing.signal.aborted) return undefined;
      try {
        return await call();
      } catch (e) {
        this.#log?.warn("anomalies stream call failed; retrying", { error: this.#scrub(e) });
        const backoff = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** Math.min(attempt, 20));
        if (!(await this.#sleep(backoff / 2 + Math.random() * (backoff / 2)))) return undefined;
      }
    }
  }

  #sleep(ms: number): Promise<boolean> {
    const signal = this.#closing.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve(!signal.aborted);
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  /** An error's message with every form of the URL removed. */
  #scrub(e: unknown): string {
    let text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    for (const f of [this.#url, ...this.#secrets]) {
      text = text.replaceAll(f, "[redacted]");
    }
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  }
}

/** The JSON body of an alert. */
function _alertPayload(alert: _Alert): AlertPayload {
  const latest = alert.covered[alert.covered.length - 1]!;
  return {
    source: "tailwise",
    kind: alert.kind,
    container: alert.container,
    containerName: alert.containerName,
    count: alert.count,
    rateLimited: alert.rateLimited,
    overflowed: alert.overflowed,
    firstTs: alert.firstTs,
    lastTs: alert.lastTs,
    anomalyIds: alert.covered.map((a) => a.id).filter(Boolean).slice(0, 20),
    anomaly: latest,
  };
}

/**
 * A Slack-compatible message (`text` and Block Kit `blocks`). Log lines are
 * hostile: `&`, `<` and `>` are escaped (so no `<!channel>` or link syntax
 * survives), `@` mentions are broken with a zero-width space, backticks
 * cannot close the code block, ANSI escapes are removed and control and
 * bidirectional-override characters are shown as `[U+202E]` (as the
 * dashboard does). Long text is cut after escaping, so a section stays
 * within Slack's 3,000 characters.
 */
function _slackPayload(p: AlertPayload): { text: string; blocks: unknown[] } {
  const a = p.anomaly;
  const name = _slackEscape(p.containerName || p.container);
  const extra: string[] = [];
  if (p.rateLimited > 0) extra.push(`${p.rateLimited} earlier held back by the rate limit`);
  if (p.overflowed > 0) extra.push(`${p.overflowed} not alerted (queue full)`);
  const what = p.kind === "anomaly"
    ? `anomaly in *${name}*${p.count > 1 ? ` ×${p.count}` : ""}`
    : p.kind === "repeats"
    ? `${p.count} more of an alerted anomaly in *${name}*`
    : `anomalies held back by the rate limit in *${name}*`;
  const text = `:rotating_light: tailwise: ${what} (score ${a.score.toFixed(3)}, threshold ${
    a.threshold.toFixed(3)
  })${extra.length > 0 ? `; ${extra.join("; ")}` : ""}`;
  const line = _slackText(a.line, 1500);
  const template = _slackText(a.template, 300);
  const reasons = a.reasons.map(_slackEscape).join(", ") || "-";
  const why = (a.explanation ?? []).slice(0, 4).map((e) => _slackText(e, 200));
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text } },
      { type: "section", text: { type: "mrkdwn", text: `\`\`\`${line}\`\`\`` } },
      ...(why.length === 0 ? [] : [{
        type: "section",
        text: { type: "mrkdwn", text: why.map((e) => `• ${e}`).join("\n") },
      }]),
      {
        type: "context",
        elements: [{
          type: "mrkdwn",
          text: `reasons: ${reasons} · template \`${template}\` (${
            _slackEscape(a.templateId)
          }) · model v${a.modelVersion} · ${_slackEscape(a.ts)} · ${_slackEscape(a.id)}`,
        }],
      },
    ],
  };
}

function _incidentPayload(n: IncidentNotice): IncidentPayload {
  return {
    source: "tailwise",
    kind: "incident",
    event: n.event,
    container: n.incident.service,
    incident: n.incident,
  };
}

/** A Slack-compatible incident notice: what, since when, how many, why, examples. */
function _slackIncident(p: IncidentPayload): { text: string; blocks: unknown[] } {
  const inc = p.incident;
  const name = _slackEscape(inc.service);
  const icon = p.event === "resolved"
    ? ":white_check_mark:"
    : p.event === "opened"
    ? ":rotating_light:"
    : ":warning:";
  const since = new Date(inc.openedAt).toISOString().slice(0, 16).replace("T", " ");
  const minutes = Math.max(
    1,
    Math.round(((inc.resolvedAt ?? inc.updatedAt) - inc.openedAt) / 60_000),
  );
  const reasons = Object.entries(inc.reasons).sort((a, b) => b[1] - a[1])
    .map(([r, n]) => `${_slackEscape(r)} ×${n}`).join(", ") || "-";
  const text = `${icon} tailwise: incident ${p.event} in *${name}* · ${inc.anomalies} ${
    inc.anomalies === 1 ? "anomaly" : "anomalies"
  } since ${since} UTC${p.event === "resolved" ? ` (lasted ${minutes} min)` : ""}`;
  const samples = inc.samples.slice(0, 3).map((s) =>
    `• ${_slackEscape(s.reasons.join(", "))}: \`${_slackText(s.line, 300)}\``
  ).join("\n");
  const blocks: unknown[] = [
    { type: "section", text: { type: "mrkdwn", text } },
    { type: "section", text: { type: "mrkdwn", text: `*Why:* ${reasons}` } },
  ];
  if (samples) blocks.push({ type: "section", text: { type: "mrkdwn", text: samples } });
  blocks.push({
    type: "context",
    elements: [{
      type: "mrkdwn",
      text: `incident ${_slackEscape(inc.id)} · max score ${inc.maxScore.toFixed(3)}${
        inc.links.length > 0 ? ` · linked: ${inc.links.map(_slackEscape).join(", ")}` : ""
      }`,
    }],
  });
  return { text, blocks };
}

/** Text for Slack mrkdwn that links and mentions nothing. */
function _slackEscape(text: string): string {
  return _slackText(text, Infinity, false);
}

// deno-lint-ignore no-control-regex
const _ANSI = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;
// Bidirectional controls, and C0/C1 controls but tab and line feed.
const _UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/**
 * Log text made safe for Slack mrkdwn: ANSI escapes removed, controls and
 * bidirectional overrides shown as `[U+XXXX]`, `&<>` escaped, `@` broken,
 * backticks (when `code`) replaced, then cut at `max` characters of the
 * escaped text (never inside an escape) with "…".
 */
function _slackText(text: string, max: number, code = true): string {
  let out = "";
  for (const ch of text.replace(_ANSI, "")) {
    const e = ch === "&"
      ? "&amp;"
      : ch === "<"
      ? "&lt;"
      : ch === ">"
      ? "&gt;"
      : ch === "@"
      ? "@\u200b"
      : ch === "`" && code
      ? "ˋ"
      : _UNSAFE.test(ch)
      ? `[U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}]`
      : ch;
    if (out.length + e.length > max) return `${out}…`;
    out += e;
  }
  return out;
}

function _newAlert(kind: AlertKind, covered: Anomaly[]): _Alert {
  const first = covered[0]!;
  const last = covered[covered.length - 1]!;
  return {
    kind,
    container: first.container,
    containerName: first.containerName,
    covered,
    count: covered.length,
    rateLimited: 0,
    overflowed: 0,
    firstTs: first.ts,
    lastTs: last.ts,
  };
}

function _num(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`Cannot use ${name} ${value}: expected a number of at least ${min}`);
  }
  return value;
}

function _retryAfterMs(header: string | null): number {
  if (!header) return 0;
  const s = Number(header);
  if (Number.isFinite(s)) return Math.min(s * 1000, 300_000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? 0 : Math.min(Math.max(0, at - Date.now()), 300_000);
}

function _parseId(id: string): [bigint, bigint] {
  const [ms, seq] = id.split("-");
  return [BigInt(ms || "0"), BigInt(seq || "0")];
}

function _cmpId(a: string, b: string): number {
  const [am, as] = _parseId(a);
  const [bm, bs] = _parseId(b);
  return am !== bm ? (am < bm ? -1 : 1) : as !== bs ? (as < bs ? -1 : 1) : 0;
}

function _nextId(id: string): string {
  const [ms, seq] = _parseId(id);
  return `${ms}-${seq + 1n}`;
}
