/**
 * Live rate detection in the score function. Every scored batch adds its
 * lines to the rate store (per service, window and template; idempotent per
 * batch), and a timer closes each window a few seconds after it ends, even
 * when no line came (that is how a silence shows): one replica claims the
 * close, replays the last windows' counts from the store into a fresh
 * {@linkcode RateMonitor} and, when the window is anomalous, appends a rate
 * anomaly (`silence`, `rate_drop`, `rate_spike`, `template_gone`) to the
 * anomalies stream and hands it to the alert sink.
 *
 * Counts live in the store, not in the replica: a restarted replica, or
 * another one, judges the next window from the same numbers, and two
 * replicas add to the same windows without counting a line twice (the
 * consumer group gives each entry to one of them; a batch delivered again
 * after a crash carries the same batch id).
 *
 * @module
 */

import { keyOfStream } from "../../shared/ports/log_shards.ts";
import type { Anomaly } from "../../shared/ports/anomaly.ts";
import { anomalyToFields } from "../../shared/ports/anomaly.ts";
import type { AlertSink } from "../../shared/ports/alert_sink.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import type { RateIncrement, RateStore } from "../../shared/ports/rate_store.ts";
import { RateMonitor, type RateWindow } from "../../shared/detector/detector.ts";
import type { Logger } from "../../shared/runtime/logger.ts";
import type { ModelCache } from "../../shared/runtime/model_cache.ts";
import { alertOrRecord, type IncidentManager } from "../../shared/runtime/incidents.ts";

/** What the tracker needs. */
export interface RateTrackerDeps {
  /** Where counts live. */
  store: RateStore;
  /** The services' models (their rate models). */
  models: ModelCache;
  /** Where rate anomalies are appended. */
  stream: LogStream;
  /** Where alerts go, if anywhere. */
  alerts?: AlertSink | null;
  /** Where problems are reported. */
  log?: Logger;
  /** Groups anomalies into incidents; the sink is then told about incidents. */
  incidents?: IncidentManager | null;
}

/** Options of {@linkcode RateTracker}. */
export interface RateTrackerOptions {
  /** The anomalies stream. */
  anomalyStream: string;
  /**
   * How long after a window ends it is closed (late lines count until then), ms.
   * @default 5000
   */
  graceMs?: number;
  /**
   * Windows replayed into the monitor to judge one.
   * @default 60
   */
  replayWindows?: number;
  /**
   * A service is watched this long after its last line, ms.
   * @default 3600000
   */
  activeMs?: number;
  /**
   * How often the timer looks for windows to close, ms.
   * @default 1000
   */
  tickMs?: number;
  /**
   * The clock (ms since the epoch).
   * @default Date.now
   */
  now?: () => number;
}

/** One service's scored lines of a batch, as the tracker counts them. */
export interface RateGroup {
  /** The service (model key). */
  service: string;
  /** Each line's time (ms since the epoch, from Docker's timestamp). */
  times: readonly number[];
  /** Each line's template id, in the same order. */
  templateIds: readonly string[];
}

/** Counts lines per window and closes windows on a timer. */
export class RateTracker {
  #deps: RateTrackerDeps;
  #stream: string;
  #grace: number;
  #replay: number;
  #active: number;
  #tick: number;
  #now: () => number;
  #next = new Map<string, number>();
  /** Windows closed by this replica. */
  closed = 0;
  /** Rate anomalies raised by this replica. */
  raised = 0;

  /**
   * @param deps Store, models, stream, alerts, log.
   * @param options Stream, grace, replay, activity, tick, clock.
   */
  constructor(deps: RateTrackerDeps, options: RateTrackerOptions) {
    this.#deps = deps;
    this.#stream = options.anomalyStream;
    this.#grace = options.graceMs ?? 5000;
    this.#replay = options.replayWindows ?? 60;
    this.#active = options.activeMs ?? 3_600_000;
    this.#tick = options.tickMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Count a batch's scored lines, every service at once (one store call;
   * services without a rate model are skipped).
   *
   * @param groups The lines per service.
   * @param batchId The batch's id (e.g. first entry id and size), for idempotence.
   */
  async countBatch(groups: readonly RateGroup[], batchId?: string): Promise<void> {
    const incs: RateIncrement[] = [];
    for (const g of groups) {
      const model = this.#deps.models.cached(g.service)?.rates;
      if (model === undefined || g.times.length === 0) continue;
      const w = model.windowMs;
      const windows = new Map<number, { total: number; templates: Map<string, number> }>();
      for (let i = 0; i < g.times.length; i++) {
        const t = g.times[i]!;
        if (!Number.isFinite(t)) continue;
        const start = t - (((t % w) + w) % w);
        let c = windows.get(start);
        if (c === undefined) windows.set(start, c = { total: 0, templates: new Map() });
        c.total++;
        const id = g.templateIds[i]!;
        c.templates.set(id, (c.templates.get(id) ?? 0) + 1);
      }
      for (const [window, c] of windows) {
        incs.push({ service: g.service, window, total: c.total, templates: c.templates });
      }
    }
    if (incs.length === 0) return;
    await this.#deps.store.add(incs, batchId === undefined ? {} : { batchId });
  }

  /**
   * Close every window that ended at least the grace time ago and is not
   * closed yet, for every active service; raise anomalies for the anomalous
   * ones.
   *
   * @returns The anomalies raised.
   */
  async closeDue(): Promise<Anomaly[]> {
    const now = this.#now();
    const services = await this.#deps.store.services(now - this.#active);
    const raised: Anomaly[] = [];
    for (const service of services.keys()) {
      const loaded = await this.#deps.models.get(service);
      const model = loaded?.rates;
      if (loaded === null || model === undefined) continue;
      const w = model.windowMs;
      const last = Math.floor((now - this.#grace) / w) * w - w;
      const from = Math.max(this.#next.get(service) ?? last, last - 5 * w);
      for (let win = from; win <= last; win += w) {
        if (!(await this.#deps.store.claim(service, win))) continue;
        this.closed++;
        const verdict = await this.judge(service, win);
        if (verdict?.anomaly) raised.push(_toAnomaly(service, verdict, loaded.version, now));
      }
      this.#next.set(service, last + w);
    }
    if (raised.length > 0) {
      const ids = await this.#deps.stream.appendOnce(
        this.#stream,
        raised.map((a) => ({
          // In the anomaly stream's slot (Redis Cluster), as score's own keys.
          key: keyOfStream(this.#stream, `seen:${a.entryId}`),
          fields: anomalyToFields(a),
        })),
      );
      const fresh: Anomaly[] = [];
      ids.forEach((id, i) => {
        if (id === null) return;
        raised[i]!.id = id;
        fresh.push(raised[i]!);
      });
      this.raised += fresh.length;
      await alertOrRecord(fresh, this.#deps.incidents, this.#deps.alerts);
      return fresh;
    }
    return raised;
  }

  /**
   * Judge one window of a service from the stored counts (the last
   * `replayWindows` replayed into a fresh monitor).
   *
   * @param service The model key.
   * @param window The window's start.
   * @returns The verdict, or null when the service has no rate model.
   */
  async judge(service: string, window: number): Promise<RateWindow | null> {
    const model = this.#deps.models.cached(service)?.rates ??
      (await this.#deps.models.get(service))?.rates;
    if (model === undefined) return null;
    const w = model.windowMs;
    const stored = await this.#deps.store.read(
      service,
      window - (this.#replay - 1) * w,
      window,
      w,
    );
    const monitor = new RateMonitor(model);
    let seen = false;
    let verdict: RateWindow | null = null;
    for (const s of stored) {
      // Before the first counted window of the range the service was not
      // watched (or not running): those windows, and the first one (counted
      // from its middle), do not count.
      const coverage = seen ? 1 : 0;
      if (s.total > 0) seen = true;
      verdict = monitor.observe(s.window, s, { coverage });
    }
    return verdict;
  }

  /**
   * Close windows every `tickMs` until the signal aborts.
   *
   * @param signal Stops the timer.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.closeDue();
      } catch (error) {
        this.#deps.log?.warn("closing rate windows failed; retrying", { error });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, this.#tick);
        function done() {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}

function _toAnomaly(service: string, v: RateWindow, version: number, now: number): Anomaly {
  const r = v.reasons[0]!;
  const span = `${new Date(v.start).toISOString().slice(11, 16)}-${
    new Date(v.end).toISOString().slice(11, 16)
  } UTC`;
  const what = v.reasons.map((x) =>
    `${x.code}${
      x.template ? ` of "${x.template}"` : ""
    }: ${x.observed} lines, ${x.expected} expected`
  ).join("; ");
  return {
    id: "",
    container: service,
    containerId: "",
    containerName: service,
    entryId: `rate:${service}:${v.start}`,
    ts: new Date(v.end).toISOString(),
    line: `${span}: ${what}`,
    score: v.score,
    threshold: 0.5,
    reasons: [...new Set(v.reasons.map((x) => x.code))],
    template: r.template ?? "",
    templateId: r.templateId ?? "",
    tokens: [],
    modelVersion: version,
    scoredAt: now,
    kind: "rate",
    rate: {
      start: new Date(v.start).toISOString(),
      end: new Date(v.end).toISOString(),
      lines: v.lines,
      expected: v.expected,
      reasons: v.reasons,
    },
  };
}
