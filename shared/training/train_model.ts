/**
 * Training a model (used by the train function, and by the api's
 * `POST /train/:container`): learn a new model for a container from its
 * history, check it in the shadow of the current one, and promote it or keep
 * it as a candidate.
 *
 * For one container ({@linkcode trainContainer}): take the lease (two
 * trainers never train one container at once); read its history from the log
 * store (window and cap configurable), without the lines confirmed anomalous
 * by feedback and with the lines marked normal; hold back the newest part as
 * a shadow set; train; score the shadow set with the new model and with the
 * current one; promote the new model unless its alert rate jumped past
 * `shadowFactor` times the current one's (then it is stored as a candidate,
 * with the figures, for a person to promote or not).
 *
 * {@linkcode trainDue} does that for every container with new data since its
 * current model, as the `Deno.cron` schedule runs it.
 *
 * {@linkcode trainAfterDeploys} retrains a service as soon as the version a
 * deploy brought has `minLines` lines (checked every minute).
 *
 * @module
 */

import { trainModelInWorker } from "../runtime/train_worker.ts";
import type { FeedbackStore } from "../ports/feedback_store.ts";
import type { Lock } from "../ports/lock.ts";
import type { LogStore } from "../ports/log_store.ts";
import type { Config } from "../runtime/config.ts";
import type { Logger } from "../runtime/logger.ts";
import type { ModelMeta, ModelRegistry } from "../ports/model_registry.ts";
import type { ModelCache } from "../runtime/model_cache.ts";
import { fieldsToDeploy } from "../ports/deploy.ts";
import type { LogStream } from "../ports/log_stream.ts";

/** What training needs. */
export interface TrainDeps {
  /** The containers' history. */
  logStore: LogStore;
  /** Where models go. */
  registry: ModelRegistry;
  /** Lines marked normal, anomalies confirmed. */
  feedback: FeedbackStore;
  /** One trainer per container. */
  lock: Lock;
  /** Loads current models for the shadow check. */
  models: ModelCache;
  /** Where progress is reported. */
  log?: Logger;
  /** The deploys stream, for {@linkcode trainAfterDeploys}. */
  deploys?: { stream: LogStream; name: string };
}

/** Settings of a training run (`config.train`). */
export interface TrainSettings {
  /** History used, in ms back from now. */
  windowMs: number;
  /** Most lines used. */
  maxLines: number;
  /** Fewer lines than this: the container stays `learning`. */
  minLines: number;
  /** A new model whose shadow alert rate exceeds this factor times the current one's is held back. */
  shadowFactor: number;
  /** Target share of training lines above the threshold. */
  alertRate: number;
  /** Seed of the isolation forest. */
  seed: number;
  /**
   * Share of the newest lines held back for the shadow check.
   * @default 0.1
   */
  shadowShare?: number;
  /**
   * How long the lease is held at most, in ms.
   * @default 10 minutes
   */
  leaseMs?: number;
  /**
   * The clock, in ms since the epoch.
   * @default Date.now
   */
  now?: () => number;
}

/**
 * The training settings of a config.
 *
 * @param config the settings
 * @returns the part training uses (`config.train`)
 */
export function trainSettings(config: Config): TrainSettings {
  const { windowMs, maxLines, minLines, shadowFactor, alertRate, seed } = config.train;
  return { windowMs, maxLines, minLines, shadowFactor, alertRate, seed };
}

/** What became of one container's training. */
export interface TrainResult {
  /** The model key. */
  container: string;
  /**
   * `promoted`: the new model is current; `candidate`: held back by the
   * shadow check; `learning`: too few lines yet; `busy`: another trainer
   * holds the lease.
   */
  status: "promoted" | "candidate" | "learning" | "busy";
  /** Lines the model learned from. */
  lines: number;
  /** The new version, when one was stored. */
  version?: number;
  /** Its threshold. */
  threshold?: number;
  /** Alert rate of the new model on the shadow set. */
  shadowAlertRate?: number;
  /** Alert rate of the current model on the shadow set (null: there was none). */
  currentAlertRate?: number | null;
  /** Why, in words. */
  note: string;
}

/** Options of {@linkcode trainContainer}. */
export interface TrainContainerOptions {
  /**
   * Container names behind the key whose older history (written before
   * service keys, stored under the container's own name) belongs to the
   * key too: it is read and merged by time.
   * @default []
   */
  formerKeys?: readonly string[];
}

/**
 * Trains one container.
 *
 * @param container the model key (a service key, or the container's name)
 * @param deps log store, registry, feedback, lock, model cache
 * @param settings window, caps, shadow factor, alert rate, seed
 * @param options the key's former keys
 * @returns what became of it
 */
export async function trainContainer(
  container: string,
  deps: TrainDeps,
  settings: TrainSettings,
  options: TrainContainerOptions = {},
): Promise<TrainResult> {
  const lease = await deps.lock.tryAcquire(`train:${container}`, settings.leaseMs ?? 600_000);
  if (!lease) {
    return { container, status: "busy", lines: 0, note: "another trainer holds the lease" };
  }
  await using _lease = lease;
  const now = (settings.now ?? Date.now)();
  const [confirmed, normal] = await Promise.all([
    deps.feedback.confirmedAnomalies(container),
    deps.feedback.normalLines(container, { limit: 1000 }),
  ]);
  const excluded = new Set(confirmed.map((f) => f.line));
  let history: string[] = [];
  let times: number[] = [];
  let skipped = 0;
  const former = (options.formerKeys ?? []).filter((k) => k !== container);
  for (const key of [container, ...former]) {
    for await (
      const entry of deps.logStore.history(key, {
        from: new Date(now - settings.windowMs),
        to: new Date(now + 1),
      })
    ) {
      // A former key's own newer lines belong to it, not to this key.
      if (key !== container && entry.key && entry.key !== key) continue;
      if (excluded.has(entry.line)) {
        skipped++;
        continue;
      }
      history.push(entry.line);
      times.push(Date.parse(entry.ts));
    }
  }
  if (former.length > 0) {
    // Merged by time (stable: each history is in order already).
    const order = times.map((_, i) => i).sort((a, b) => times[a]! - times[b]! || a - b);
    history = order.map((i) => history[i]!);
    times = order.map((i) => times[i]!);
  }
  // The newest lines count most: keep the cap's worth of the most recent.
  const recent = history.length > settings.maxLines
    ? history.slice(history.length - settings.maxLines)
    : history;
  if (recent.length < settings.minLines) {
    return {
      container,
      status: "learning",
      lines: recent.length,
      note: `${recent.length} of the ${settings.minLines} lines needed`,
    };
  }
  const shadowCount = Math.max(1, Math.floor(recent.length * (settings.shadowShare ?? 0.1)));
  const training = recent.slice(0, recent.length - shadowCount);
  const shadow = recent.slice(recent.length - shadowCount);
  // Lines a person marked normal are learned as normal, whatever the window holds.
  for (const line of normal) training.push(line);
  const current = await deps.models.get(container);
  const currentBlob = current === null ? undefined : await _blob(deps, container, current.version);
  // In a worker: the api and the one-process mode keep serving and scoring
  // meanwhile. The rate model learns from the whole window (not only the
  // capped lines): its baseline needs every window's count.
  const trained = await trainModelInWorker({
    training,
    shadow,
    history,
    times,
    options: { seed: settings.seed, alertRate: settings.alertRate },
    ...(currentBlob === undefined ? {} : { current: currentBlob }),
  });
  const { shadowAlertRate, currentAlertRate } = trained;
  const floor = Math.max(currentAlertRate ?? 0, settings.alertRate);
  const heldBack = current !== null && shadowAlertRate > settings.shadowFactor * floor;
  const evaluation: Record<string, number> = {
    shadowLines: shadow.length,
    shadowAlertRate,
    excludedLines: skipped,
    normalFeedbackLines: normal.length,
  };
  if (currentAlertRate !== null) evaluation.currentAlertRate = currentAlertRate;
  const note = heldBack
    ? `held back: shadow alert rate ${
      _pct(shadowAlertRate)
    } is more than ${settings.shadowFactor}x ` +
      `the current model's ${_pct(currentAlertRate ?? 0)}`
    : current
    ? `promoted: shadow alert rate ${_pct(shadowAlertRate)} (current model ${
      _pct(currentAlertRate ?? 0)
    })`
    : `promoted: first model, shadow alert rate ${_pct(shadowAlertRate)}`;
  evaluation.rateTemplates = trained.rateTemplates;
  evaluation.templates = trained.templates;
  evaluation.mergedLines = trained.merged;
  const meta: ModelMeta = await deps.registry.put(container, trained.blob, {
    trainedAt: new Date(now).toISOString(),
    lines: training.length,
    threshold: trained.threshold,
    evaluation,
    note,
  }, { promote: !heldBack });
  deps.log?.info(heldBack ? "model held back as candidate" : "model promoted", {
    container,
    version: meta.version,
    lines: training.length,
    templates: trained.templates,
    merged: trained.merged,
    shadowAlertRate,
    currentAlertRate,
  });
  return {
    container,
    status: heldBack ? "candidate" : "promoted",
    lines: training.length,
    version: meta.version,
    threshold: trained.threshold,
    shadowAlertRate,
    currentAlertRate,
    note,
  };
}

/**
 * Trains every container with new data: no model yet and at least
 * `minLines` lines in the window, or lines written since its current model
 * was trained. Services due after a deploy ({@linkcode trainAfterDeploys})
 * come first.
 *
 * @param deps log store, registry, feedback, lock, model cache
 * @param settings as for {@linkcode trainContainer}
 * @returns one result per container trained or tried
 */
export async function trainDue(deps: TrainDeps, settings: TrainSettings): Promise<TrainResult[]> {
  const now = (settings.now ?? Date.now)();
  const results: TrainResult[] = [];
  try {
    results.push(...await trainAfterDeploys(deps, settings));
  } catch (e) {
    deps.log?.warn("cannot read the deploys; training what is due without them", { error: e });
  }
  const done = new Set(results.map((r) => r.container));
  const seen = await deps.logStore.containers({ since: new Date(now - settings.windowMs) });
  const counts = new Map(seen.map((s) => [s.container, s.count]));
  for (const { container, count, containers } of seen) {
    if (done.has(container)) continue;
    // Containers behind a service key with history of their own (from
    // before service keys): the key's training reads it too.
    const formerKeys = (containers ?? []).filter((n) => n !== container && counts.has(n));
    const current = await deps.registry.current(container);
    if (!current) {
      const formerCount = formerKeys.reduce((n, k) => n + (counts.get(k) ?? 0), 0);
      if (count + formerCount < settings.minLines) continue;
    } else {
      const since = new Date(current.trainedAt);
      let fresh = 0;
      for await (const _ of deps.logStore.history(container, { from: since, limit: 1 })) fresh++;
      if (fresh === 0) continue;
    }
    try {
      results.push(await trainContainer(container, deps, settings, { formerKeys }));
    } catch (e) {
      deps.log?.error("training failed", { container, error: e });
    }
  }
  return results;
}

/**
 * Retrains every service whose latest deploy (within the training window)
 * has no model trained after it yet, once the new version has `minLines`
 * lines in the history.
 *
 * @param deps as for {@linkcode trainContainer}, with `deploys`
 * @param settings as for {@linkcode trainContainer}
 * @returns one result per service trained or tried
 */
export async function trainAfterDeploys(
  deps: TrainDeps,
  settings: TrainSettings,
): Promise<TrainResult[]> {
  if (!deps.deploys) return [];
  const now = (settings.now ?? Date.now)();
  const { stream, name } = deps.deploys;
  const latest = new Map<string, number>();
  let end = "+";
  for (;;) {
    const page = await stream.range(name, {
      start: String(Math.max(0, now - settings.windowMs)),
      end,
      count: 1000,
      reverse: true,
    });
    for (const m of page) {
      const d = fieldsToDeploy(m.id, m.fields);
      if (d.container && !latest.has(d.container)) latest.set(d.container, d.at);
    }
    if (page.length < 1000) break;
    end = `(${page[page.length - 1]!.id}`;
  }
  const results: TrainResult[] = [];
  for (const [container, at] of latest) {
    const versions = await deps.registry.list(container);
    if (versions.some((v) => Date.parse(v.trainedAt) >= at)) continue;
    let lines = 0;
    for await (
      const _ of deps.logStore.history(container, {
        from: new Date(at),
        to: new Date(now + 1),
        limit: settings.minLines,
      })
    ) lines++;
    if (lines < settings.minLines) continue;
    try {
      const r = await trainContainer(container, deps, settings);
      r.note = `after the deploy of ${new Date(at).toISOString()}: ${r.note}`;
      results.push(r);
    } catch (e) {
      deps.log?.error("training after a deploy failed", { container, error: e });
    }
  }
  return results;
}

function _pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

/** The registry blob of a version (for the worker's shadow check); undefined when unreadable. */
async function _blob(
  deps: TrainDeps,
  container: string,
  version: number,
): Promise<Uint8Array | undefined> {
  try {
    return (await deps.registry.get(container, version)).blob;
  } catch {
    return undefined;
  }
}
