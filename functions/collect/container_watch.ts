/**
 * What collect learns from Docker itself, beside the log lines: lifecycle
 * anomalies and deploys.
 *
 * - **Lifecycle anomalies.** From the engine's container events: an OOM kill
 *   (`oom_killed`), an exit with a non-zero code that nobody asked for
 *   (`exited`; a `docker stop`, a `docker kill` or an update sends a `kill`
 *   event first and is not one), a health check turning `unhealthy`
 *   (`unhealthy`), and a service whose containers restart 3 or more times in 5
 *   minutes after crashing (`restart_loop`). Each anomaly carries the
 *   container's last lines (a small ring per container, fed by collect) and
 *   goes to the anomalies stream keyed by its event, so a replayed event adds
 *   no duplicate, then to the alert sink, as score's anomalies do.
 * - **Deploys.** When a running container of a service shows another image
 *   (id or tag) than the service's current one, and started after it, the
 *   change is appended once to the deploys stream (see `Deploy`) and becomes
 *   the service's current version (state key `<deploys>:current:<key>`). The
 *   first version seen of a service is its baseline, not a deploy.
 *
 * @module
 */

import type Docker from "dockerode";
import { type Anomaly, anomalyToFields, type LifecycleReason } from "../../shared/ports/anomaly.ts";
import type { AlertSink } from "../../shared/ports/alert_sink.ts";
import { type Deploy, deployToFields } from "../../shared/ports/deploy.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { serviceKey } from "../../shared/ports/service_key.ts";
import { coldStartLine } from "../../shared/detector/detector.ts";
import type { Logger } from "../../shared/runtime/logger.ts";
import { alertOrRecord, type IncidentManager } from "../../shared/runtime/incidents.ts";

/** What a {@linkcode ContainerWatch} works with. */
export interface ContainerWatchDeps {
  /** Inspects containers (OOM flag, health log) when an event needs it. */
  docker: Docker;
  /** Where anomalies, deploys and the services' current versions go. */
  log: LogStream;
  /** Where problems are reported. */
  logger: Logger;
  /** Where lifecycle anomalies are alerted, if anywhere. */
  alerts?: AlertSink | null;
  /** With incidents, anomalies are recorded there and the sink hears about incidents. */
  incidents?: IncidentManager | null;
  /**
   * Resolves once collect has read a container's last lines (its follower
   * ended), so an anomaly can attach them; waited for at most `settleMs`.
   */
  settled?: (containerId: string) => Promise<void>;
}

/** Settings of a {@linkcode ContainerWatch}. */
export interface ContainerWatchOptions {
  /**
   * The anomalies stream.
   * @default "tailwise:anomalies"
   */
  anomalyStream?: string;
  /**
   * The deploys stream.
   * @default "tailwise:deploys"
   */
  deployStream?: string;
  /**
   * Raise lifecycle anomalies.
   * @default true
   */
  lifecycle?: boolean;
  /**
   * Record deploys.
   * @default true
   */
  deploys?: boolean;
  /**
   * Last lines kept per container and attached to its lifecycle anomalies.
   * @default 20
   */
  lastLines?: number;
  /**
   * Restarts after a crash within `restartWindowMs` that make a restart loop.
   * @default 3
   */
  restartLoopCount?: number;
  /**
   * The restart loop's window, in ms.
   * @default 300000
   */
  restartWindowMs?: number;
  /**
   * How long after a `kill` event a container's exit counts as asked for, in ms.
   * @default 30000
   */
  stopGraceMs?: number;
  /**
   * Longest wait for a container's last lines before its anomaly is written, in ms.
   * @default 2000
   */
  settleMs?: number;
  /**
   * Containers not to watch (full or short ids), e.g. the collector's own.
   * @default []
   */
  excludeContainers?: readonly string[];
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
}

/** A Docker event as the engine sends it (the fields used here). */
export interface DockerEvent {
  /** `start`, `die`, `oom`, `kill`, `destroy`, `health_status: unhealthy`... */
  Action?: string;
  /** The older name of `Action`. */
  status?: string;
  /** The container id (older engines). */
  id?: string;
  /** The container and its attributes (name, image, labels, exitCode, signal). */
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  /** When, in ns since the epoch. */
  timeNano?: number;
  /** When, in s since the epoch. */
  time?: number;
}

/** Longest line kept in the ring of last lines, in UTF-16 units. */
const _MAX_KEPT_LINE = 2000;

/** The last lines of one container, oldest overwritten first. */
export class LineRing {
  readonly #lines: string[];
  #next = 0;
  #full = false;
  /** Docker timestamp of the last line pushed, for the pusher to skip lines read again. */
  lastTs = "";
  /** Its seq among the lines with that timestamp. */
  lastSeq = -1;

  /**
   * @param size lines kept
   */
  constructor(size: number) {
    this.#lines = new Array(size);
  }

  /**
   * Keeps a line (cut at 2,000 characters).
   *
   * @param line the line
   */
  push(line: string): void {
    const n = this.#lines.length;
    if (n === 0) return;
    this.#lines[this.#next] = line.length > _MAX_KEPT_LINE ? line.slice(0, _MAX_KEPT_LINE) : line;
    this.#next = (this.#next + 1) % n;
    if (this.#next === 0) this.#full = true;
  }

  /**
   * The lines kept, oldest first.
   *
   * @returns a copy
   */
  lines(): string[] {
    if (!this.#full) return this.#lines.slice(0, this.#next);
    return [...this.#lines.slice(this.#next), ...this.#lines.slice(0, this.#next)];
  }
}

interface _Who {
  key: string;
  name: string;
  image: string;
}

interface _Current {
  /** Image id. */
  v: string;
  /** Image as named. */
  i: string;
  /** When its first container started, ms. */
  t: number;
}

/**
 * Watches containers for lifecycle anomalies and deploys. collect feeds it
 * the lines it reads ({@linkcode ContainerWatch.ring}), the containers it
 * inspects ({@linkcode ContainerWatch.inspected}) and the engine's events
 * ({@linkcode ContainerWatch.event}).
 *
 * @example
 * ```ts
 * const watch = new ContainerWatch({ docker, log, logger, alerts });
 * watch.event({ Action: "die", Actor: { ID: id, Attributes: { name: "web", exitCode: "1" } } });
 * await watch.close();
 * ```
 */
export class ContainerWatch {
  readonly #deps: ContainerWatchDeps;
  readonly #anomalies: string;
  readonly #deploys: string;
  readonly #lifecycle: boolean;
  readonly #deploysOn: boolean;
  readonly #ringSize: number;
  readonly #loopCount: number;
  readonly #loopWindowMs: number;
  readonly #graceMs: number;
  readonly #settleMs: number;
  readonly #exclude: readonly string[];
  readonly #now: () => number;
  readonly #rings = new Map<string, LineRing>();
  readonly #who = new Map<string, _Who>();
  readonly #kills = new Map<string, number>();
  readonly #ooms = new Map<string, number>();
  readonly #health = new Map<string, string>();
  /** Per key: when its containers crashed, and restarted after a crash. */
  readonly #crashes = new Map<string, number[]>();
  readonly #restarts = new Map<string, number[]>();
  readonly #loopAlertedAt = new Map<string, number>();
  readonly #current = new Map<string, _Current>();
  readonly #checked = new Map<string, string>();
  readonly #pending = new Set<Promise<unknown>>();
  #deployChain: Promise<unknown> = Promise.resolve();

  /**
   * @param deps Docker, the log stream, logger, alert sink
   * @param options streams, limits, what to watch
   */
  constructor(deps: ContainerWatchDeps, options: ContainerWatchOptions = {}) {
    this.#deps = deps;
    this.#anomalies = options.anomalyStream ?? "tailwise:anomalies";
    this.#deploys = options.deployStream ?? "tailwise:deploys";
    this.#lifecycle = options.lifecycle ?? true;
    this.#deploysOn = options.deploys ?? true;
    this.#ringSize = options.lastLines ?? 20;
    this.#loopCount = options.restartLoopCount ?? 3;
    this.#loopWindowMs = options.restartWindowMs ?? 300_000;
    this.#graceMs = options.stopGraceMs ?? 30_000;
    this.#settleMs = options.settleMs ?? 2000;
    this.#exclude = options.excludeContainers ?? [];
    this.#now = options.now ?? Date.now;
  }

  /** The event actions collect must subscribe to for this watch. */
  static readonly EVENTS = ["start", "die", "destroy", "oom", "kill", "health_status"] as const;

  /**
   * The ring of last lines of a container, for collect to push its lines to.
   *
   * @param containerId the full id
   * @returns its ring (created on first use)
   */
  ring(containerId: string): LineRing {
    let r = this.#rings.get(containerId);
    if (!r) this.#rings.set(containerId, r = new LineRing(this.#ringSize));
    return r;
  }

  /**
   * Tells the watch what a container is (from an inspect by collect); a
   * running container's image is checked against its service's current
   * version.
   *
   * @param info the inspect result
   */
  inspected(info: Docker.ContainerInspectInfo): void {
    const name = info.Name.replace(/^\//, "");
    const key = serviceKey(info.Config.Labels, name);
    this.#who.set(info.Id, { key, name, image: info.Config.Image });
    if (!this.#deploysOn || !info.State.Running) return;
    const mark = `${info.State.StartedAt}`;
    if (this.#checked.get(info.Id) === mark) return;
    this.#checked.set(info.Id, mark);
    // A container's first lines may carry a time before its StartedAt:
    // the version's time is when its container was created.
    const created = Date.parse(info.Created);
    const startedAt = Date.parse(info.State.StartedAt);
    const since = !Number.isNaN(created)
      ? created
      : !Number.isNaN(startedAt)
      ? startedAt
      : this.#now();
    this.#track(
      this.#deployChain = this.#deployChain.then(() => this.#checkVersion(key, info, since)).catch(
        (e) => {
          this.#deps.logger.warn("cannot check the service's version", {
            container: key,
            error: e,
          });
        },
      ),
    );
  }

  /**
   * Handles one engine event.
   *
   * @param e the event
   */
  event(e: DockerEvent): void {
    const id = e.Actor?.ID ?? e.id;
    const action = e.Action ?? e.status ?? "";
    if (!id || this.#exclude.some((x) => id.startsWith(x))) return;
    const attrs = e.Actor?.Attributes ?? {};
    const at = e.timeNano ? Math.floor(e.timeNano / 1e6) : e.time ? e.time * 1000 : this.#now();
    const timeNano = e.timeNano ? BigInt(e.timeNano) : BigInt(at) * 1_000_000n;
    const who = this.#whoOf(id, attrs);
    switch (action) {
      case "kill":
        this.#kills.set(id, at);
        return;
      case "oom":
        this.#ooms.set(id, at);
        return;
      case "die": {
        if (!this.#lifecycle) return;
        const killedAt = this.#kills.get(id);
        const asked = killedAt !== undefined && at - killedAt <= this.#graceMs;
        if (!asked) {
          // Recorded at once: a restart's start event follows right away.
          const crashes = this.#crashes.get(who.key) ?? [];
          crashes.push(at);
          this.#crashes.set(who.key, crashes.filter((t) => t > at - this.#loopWindowMs));
        }
        this.#track(this.#onDie(id, who, attrs, at, timeNano, asked));
        return;
      }
      case "start":
        if (this.#lifecycle) this.#onStart(id, who, at, timeNano);
        return;
      case "destroy": {
        // The anomalies of its last events may still need its lines.
        const timer = setTimeout(() => this.#forget(id), this.#settleMs + 5000);
        Deno.unrefTimer(timer);
        return;
      }
    }
    if (action.startsWith("health_status")) {
      const status = action.slice(action.indexOf(":") + 1).trim();
      const before = this.#health.get(id);
      this.#health.set(id, status);
      if (this.#lifecycle && status === "unhealthy" && before !== "unhealthy") {
        this.#track(this.#onUnhealthy(id, who, timeNano));
      }
    }
  }

  /** Waits for the anomalies and deploys under way. */
  async close(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((e) => {
      this.#deps.logger.warn("cannot record a lifecycle event", { error: e });
    }).finally(() => this.#pending.delete(q));
    this.#pending.add(q);
  }

  #whoOf(id: string, attrs: Record<string, string>): _Who {
    const known = this.#who.get(id);
    if (known) return known;
    const name = attrs.name ?? id.slice(0, 12);
    return { key: serviceKey(attrs, name), name, image: attrs.image ?? "" };
  }

  #forget(id: string): void {
    this.#rings.delete(id);
    this.#who.delete(id);
    this.#kills.delete(id);
    this.#ooms.delete(id);
    this.#health.delete(id);
    this.#checked.delete(id);
  }

  async #onDie(
    id: string,
    who: _Who,
    attrs: Record<string, string>,
    at: number,
    timeNano: bigint,
    asked: boolean,
  ): Promise<void> {
    const code = Number(attrs.exitCode ?? "0");
    let oom = (this.#ooms.get(id) ?? -Infinity) >= at - this.#graceMs;
    if (!oom && code !== 0) {
      try {
        const info = await this.#deps.docker.getContainer(id).inspect();
        oom = info.State.OOMKilled === true;
      } catch {
        // removed already (--rm): the oom event is all there is
      }
    }
    if (oom) {
      await this.#raise("oom_killed", id, who, timeNano, {
        line: `container ${who.name} was killed: out of memory (exit code ${code})`,
        template: "container killed: out of memory",
      });
    } else if (code !== 0 && !asked) {
      await this.#raise("exited", id, who, timeNano, {
        line: `container ${who.name} exited with code ${code}`,
        template: "container exited with code <*>",
      });
    }
  }

  #onStart(id: string, who: _Who, at: number, timeNano: bigint): void {
    const since = at - this.#loopWindowMs;
    const crashes = (this.#crashes.get(who.key) ?? []).filter((t) => t > since && t <= at);
    if (crashes.length === 0) return;
    const restarts = (this.#restarts.get(who.key) ?? []).filter((t) => t > since);
    restarts.push(at);
    this.#restarts.set(who.key, restarts);
    if (restarts.length < this.#loopCount) return;
    const alerted = this.#loopAlertedAt.get(who.key) ?? -Infinity;
    if (at - alerted < this.#loopWindowMs) return;
    this.#loopAlertedAt.set(who.key, at);
    this.#restarts.set(who.key, []);
    const minutes = Math.round(this.#loopWindowMs / 60_000);
    this.#track(this.#raise("restart_loop", id, who, timeNano, {
      line: `container ${who.name} restarted ${restarts.length} times in ${minutes} minutes`,
      template: "container restarted <*> times in <*> minutes",
    }));
  }

  async #onUnhealthy(id: string, who: _Who, timeNano: bigint): Promise<void> {
    let output = "";
    try {
      const info = await this.#deps.docker.getContainer(id).inspect();
      const log = info.State.Health?.Log ?? [];
      output = String(log[log.length - 1]?.Output ?? "").trim().slice(0, 500);
    } catch {
      // gone already
    }
    await this.#raise("unhealthy", id, who, timeNano, {
      line: `container ${who.name} is unhealthy${output ? `: ${output}` : ""}`,
      template: "container health status unhealthy",
      settle: false,
    });
  }

  async #raise(
    reason: LifecycleReason,
    id: string,
    who: _Who,
    timeNano: bigint,
    what: { line: string; template: string; settle?: boolean },
  ): Promise<void> {
    if (what.settle !== false && this.#deps.settled) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#deps.settled(id).catch(() => {}),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#settleMs))),
      ]);
      clearTimeout(timer);
    }
    const a: Anomaly = {
      id: "",
      container: who.key,
      containerId: id,
      containerName: who.name,
      entryId: `lifecycle:${reason}:${id}:${timeNano}`,
      ts: _nanoTs(timeNano),
      line: what.line,
      score: 1,
      threshold: 0,
      reasons: [reason],
      template: what.template,
      templateId: coldStartLine(what.template).templateId,
      tokens: [],
      modelVersion: 0,
      scoredAt: this.#now(),
      lastLines: this.#rings.get(id)?.lines() ?? [],
    };
    if (who.image) a.version = who.image;
    const [newId] = await this.#deps.log.appendOnce(
      this.#anomalies,
      [{ key: `${this.#anomalies}:seen:${a.entryId}`, fields: anomalyToFields(a) }],
      { maxLen: 100_000, ttlMs: 7 * 86_400_000 },
    );
    if (!newId) return;
    a.id = newId;
    this.#deps.logger.info("lifecycle anomaly", {
      container: who.key,
      containerName: who.name,
      reason,
    });
    await alertOrRecord([a], this.#deps.incidents, this.#deps.alerts);
  }

  async #checkVersion(
    key: string,
    info: Docker.ContainerInspectInfo,
    startedAt: number,
  ): Promise<void> {
    const stateKey = `${this.#deploys}:current:${key}`;
    let current = this.#current.get(key);
    if (!current) {
      const saved = await this.#deps.log.getState(stateKey);
      current = saved ? _parseCurrent(saved) ?? undefined : undefined;
    }
    const next: _Current = { v: info.Image, i: info.Config.Image, t: startedAt };
    if (!current) {
      await this.#deps.log.append(this.#deploys, [], {
        state: { [stateKey]: JSON.stringify(next) },
      });
      this.#current.set(key, next);
      return;
    }
    this.#current.set(key, current);
    if (current.v === next.v && current.i === next.i) return;
    // An older container of the version before (a rolling update runs both).
    if (startedAt < current.t) return;
    const name = info.Name.replace(/^\//, "");
    const d: Deploy = {
      id: "",
      container: key,
      version: next.v,
      image: next.i,
      previousVersion: current.v,
      previousImage: current.i,
      at: startedAt,
      containerName: name,
      containerId: info.Id,
    };
    const [id] = await this.#deps.log.appendOnce(this.#deploys, [{
      key: `${this.#deploys}:seen:${key}:${current.v}:${current.i}:${current.t}`,
      fields: deployToFields(d),
    }], { maxLen: 10_000, ttlMs: 30 * 86_400_000 });
    await this.#deps.log.append(this.#deploys, [], {
      state: { [stateKey]: JSON.stringify(next) },
    });
    this.#current.set(key, next);
    if (id) {
      this.#deps.logger.info("deploy", {
        container: key,
        image: next.i,
        previousImage: current.i,
        deploy: id,
      });
    }
  }
}

function _parseCurrent(text: string): _Current | null {
  try {
    const o = JSON.parse(text);
    if (typeof o?.v === "string" && typeof o?.i === "string" && typeof o?.t === "number") return o;
  } catch {
    // not ours
  }
  return null;
}

/** RFC 3339 with nanoseconds of a time in ns since the epoch. */
function _nanoTs(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = String(ns % 1_000_000_000n).padStart(9, "0");
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}
