/**
 * Incidents from anomalies: anomalies of one service close in time (line,
 * event, rate and lifecycle anomalies alike) become one incident that opens,
 * updates and resolves, kept in an {@linkcode IncidentStore}. Every change
 * worth telling comes back as an {@linkcode IncidentNotice} for the alert
 * sinks: once when an incident opens, on a meaningful update (a new reason
 * code, a new kind, or twice as many anomalies as last told) and when it
 * resolves (no anomaly for `quietMs`). Recording is idempotent per anomaly
 * id, so a replayed batch changes nothing, and safe across replicas (the
 * store's revision check).
 *
 * Incidents of several services of the same group (Swarm stack or Compose
 * project: the part of the service key before its first `_`) opened within
 * `linkWindowMs` of each other are linked, so one outage reads as one.
 *
 * @example
 * ```ts
 * import { IncidentManager } from "./incidents.ts";
 * import type { IncidentStore } from "../ports/incident_store.ts";
 * declare const store: IncidentStore;
 * const incidents = new IncidentManager(store);
 * const notices = await incidents.record([]); // anomalies as appended
 * ```
 *
 * @module
 */

import type { Anomaly } from "../ports/anomaly.ts";
import type { AlertSink } from "../ports/alert_sink.ts";
import type {
  Incident,
  IncidentEvent,
  IncidentNotice,
  IncidentSample,
  IncidentStore,
} from "../ports/incident_store.ts";

export type { IncidentEvent, IncidentNotice };

/** Options of {@linkcode IncidentManager}. */
export interface IncidentManagerOptions {
  /**
   * An incident resolves after this long without an anomaly (ms).
   * @default 600000
   */
  quietMs?: number;
  /**
   * Incidents of one group opened this close together are linked (ms).
   * @default 300000
   */
  linkWindowMs?: number;
  /**
   * The clock (ms since the epoch).
   * @default Date.now
   */
  now?: () => number;
}

const _MAX_MEMBERS = 500;
const _MAX_SAMPLES = 6;

/** Groups anomalies into incidents in a store. */
export class IncidentManager {
  #store: IncidentStore;
  #quiet: number;
  #link: number;
  #now: () => number;

  /**
   * @param store Where incidents live.
   * @param options Quiet time, link window, clock.
   */
  constructor(store: IncidentStore, options: IncidentManagerOptions = {}) {
    this.#store = store;
    this.#quiet = options.quietMs ?? 600_000;
    this.#link = options.linkWindowMs ?? 300_000;
    this.#now = options.now ?? Date.now;
  }

  /** The store. */
  get store(): IncidentStore {
    return this.#store;
  }

  /**
   * Record anomalies (as appended to the anomalies stream, with their ids).
   *
   * @param anomalies The anomalies, of any services.
   * @returns What to tell the alert sinks, in order.
   */
  async record(anomalies: readonly Anomaly[]): Promise<IncidentNotice[]> {
    const byService = new Map<string, Anomaly[]>();
    for (const a of anomalies) {
      let list = byService.get(a.container);
      if (list === undefined) byService.set(a.container, list = []);
      list.push(a);
    }
    const notices: IncidentNotice[] = [];
    for (const [service, list] of byService) {
      notices.push(...await this.#recordService(service, list));
    }
    return notices;
  }

  async #recordService(service: string, list: Anomaly[]): Promise<IncidentNotice[]> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const now = this.#now();
      const notices: IncidentNotice[] = [];
      let cur = await this.#store.current(service);
      if (cur !== null && now - cur.lastAnomalyAt > this.#quiet) {
        const resolved = _resolve(cur, now);
        if (!(await this.#store.save(resolved, cur.revision))) continue;
        notices.push({ event: "resolved", incident: { ...resolved, revision: cur.revision + 1 } });
        cur = null;
      }
      const fresh = cur === null ? list : list.filter((a) => !cur!.members.includes(a.id));
      if (fresh.length === 0) return notices;
      const isNew = cur === null;
      const base = cur ?? _newIncident(service, fresh[0]!, now);
      const next = _apply(base, fresh, now);
      let event: IncidentEvent | null = isNew ? "opened" : null;
      if (!isNew && _meaningful(next)) event = "updated";
      if (event !== null) {
        next.notified = { anomalies: next.anomalies, reasons: Object.keys(next.reasons).sort() };
      }
      if (isNew) next.links = await this.#linked(next);
      if (!(await this.#store.save(next, isNew ? 0 : base.revision))) continue;
      const saved = { ...next, revision: (isNew ? 0 : base.revision) + 1 };
      if (isNew) await this.#linkBack(saved);
      if (event !== null) notices.push({ event, incident: saved });
      return notices;
    }
    throw new Error(`Cannot record anomalies of "${service}": the incident kept changing`);
  }

  /**
   * Sweep every `everyMs` until the signal aborts, handing the resolved
   * incidents' notices to `notify`.
   *
   * @param signal Stops the timer.
   * @param notify Where notices go (the alert sinks).
   * @param everyMs How often to sweep (ms).
   * @default {everyMs} 15000
   */
  async run(
    signal: AbortSignal,
    notify: (notices: IncidentNotice[]) => Promise<void>,
    everyMs = 15_000,
  ): Promise<void> {
    while (!signal.aborted) {
      try {
        const notices = await this.sweep();
        if (notices.length > 0) await notify(notices);
      } catch {
        // the next sweep tries again
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const t = setTimeout(done, everyMs);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /**
   * Resolve every open incident quiet for `quietMs`.
   *
   * @returns The notices of the resolved ones.
   */
  async sweep(): Promise<IncidentNotice[]> {
    const now = this.#now();
    const notices: IncidentNotice[] = [];
    for (const inc of await this.#store.list({ status: "open", limit: 1000 })) {
      if (now - inc.lastAnomalyAt <= this.#quiet) continue;
      const resolved = _resolve(inc, now);
      if (await this.#store.save(resolved, inc.revision)) {
        notices.push({ event: "resolved", incident: { ...resolved, revision: inc.revision + 1 } });
      }
    }
    return notices;
  }

  async #linked(inc: Incident): Promise<string[]> {
    if (inc.group === null) return [];
    const near = await this.#store.list({ since: inc.openedAt - this.#link, limit: 200 });
    return near.filter((o) =>
      o.group === inc.group && o.service !== inc.service &&
      Math.abs(o.openedAt - inc.openedAt) <= this.#link
    ).map((o) => o.id);
  }

  async #linkBack(inc: Incident): Promise<void> {
    for (const id of inc.links) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const other = await this.#store.get(id);
        if (other === null || other.links.includes(inc.id)) break;
        const next = { ...other, links: [...other.links, inc.id] };
        if (await this.#store.save(next, other.revision)) break;
      }
    }
  }
}

/**
 * The group of a service key: the Swarm stack or Compose project, i.e. the
 * part before the first `_`; null for a key without one.
 *
 * @param service The service key.
 * @returns The group, or null.
 */
export function serviceGroup(service: string): string | null {
  const i = service.indexOf("_");
  return i > 0 ? service.slice(0, i) : null;
}

function _newIncident(service: string, first: Anomaly, now: number): Incident {
  const at = _time(first, now);
  return {
    id: `${at.toString(36).padStart(9, "0")}-${crypto.randomUUID().slice(0, 8)}`,
    service,
    group: serviceGroup(service),
    status: "open",
    openedAt: at,
    updatedAt: now,
    lastAnomalyAt: at,
    resolvedAt: null,
    anomalies: 0,
    members: [],
    reasons: {},
    kinds: {},
    maxScore: 0,
    title: "",
    samples: [],
    links: [],
    notified: { anomalies: 0, reasons: [] },
    revision: 0,
  };
}

function _apply(base: Incident, fresh: readonly Anomaly[], now: number): Incident {
  const inc: Incident = {
    ...base,
    members: [...base.members],
    reasons: { ...base.reasons },
    kinds: { ...base.kinds },
    samples: [...base.samples],
    updatedAt: now,
  };
  for (const a of fresh) {
    inc.anomalies++;
    if (inc.members.length < _MAX_MEMBERS) inc.members.push(a.id);
    for (const r of a.reasons) inc.reasons[r] = (inc.reasons[r] ?? 0) + 1;
    const kind = a.kind ?? "line";
    inc.kinds[kind] = (inc.kinds[kind] ?? 0) + 1;
    inc.maxScore = Math.max(inc.maxScore, a.score);
    inc.lastAnomalyAt = Math.max(inc.lastAnomalyAt, now);
    _sample(inc, a);
  }
  inc.title = _title(inc);
  return inc;
}

function _sample(inc: Incident, a: Anomaly): void {
  const s: IncidentSample = {
    id: a.id,
    ts: a.ts,
    kind: a.kind ?? "line",
    line: a.line.length > 500 ? a.line.slice(0, 500) + "…" : a.line,
    reasons: [...a.reasons],
    score: a.score,
    templateId: a.templateId,
  };
  // Keep one sample per reason set, the first ones, up to the cap.
  const key = `${s.kind}:${s.reasons.join(",")}:${s.templateId}`;
  if (inc.samples.some((x) => `${x.kind}:${x.reasons.join(",")}:${x.templateId}` === key)) return;
  if (inc.samples.length < _MAX_SAMPLES) inc.samples.push(s);
}

function _meaningful(inc: Incident): boolean {
  const told = new Set(inc.notified.reasons);
  if (Object.keys(inc.reasons).some((r) => !told.has(r))) return true;
  return inc.anomalies >= 2 * Math.max(1, inc.notified.anomalies) && inc.anomalies >= 5;
}

function _resolve(inc: Incident, now: number): Incident {
  return { ...inc, status: "resolved", resolvedAt: now, updatedAt: now };
}

function _title(inc: Incident): string {
  const reasons = Object.entries(inc.reasons).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 3).map(([r, n]) => n > 1 ? `${r} ×${n}` : r);
  return `${inc.service}: ${reasons.join(", ")} (${inc.anomalies} ${
    inc.anomalies === 1 ? "anomaly" : "anomalies"
  })`;
}

function _time(a: Anomaly, fallback: number): number {
  const t = Date.parse(a.ts);
  return Number.isFinite(t) ? t : fallback;
}

/**
 * Hand anomalies to the alert sink the way the config asks: with incidents,
 * record them and tell the sink about incidents (a sink without `notify`
 * gets the anomalies); without, send every anomaly.
 *
 * @param fresh The anomalies just appended (with ids).
 * @param incidents The incident manager, or null for per-anomaly alerts.
 * @param alerts The sink, if any.
 * @returns The notices (empty without incidents).
 */
export async function alertOrRecord(
  fresh: readonly Anomaly[],
  incidents: IncidentManager | null | undefined,
  alerts: AlertSink | null | undefined,
): Promise<IncidentNotice[]> {
  if (fresh.length === 0) return [];
  if (!incidents) {
    if (alerts) await alerts.send(fresh);
    return [];
  }
  const notices = await incidents.record(fresh);
  if (alerts) {
    if (alerts.notify) {
      if (notices.length > 0) await alerts.notify(notices);
    } else await alerts.send(fresh);
  }
  return notices;
}
