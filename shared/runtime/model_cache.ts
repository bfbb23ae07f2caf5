/**
 * The scorer's model cache: per container, the detector of the registry's
 * current version, kept only while that version is unchanged. Each lookup
 * costs one cheap read (`currentVersion`); the blob is fetched and decoded
 * only when the version changed, so a new model takes effect on the next
 * batch with no restart.
 *
 * A version whose blob is corrupt is reported once and skipped: the version
 * the cache already had keeps serving, or, for a fresh cache, the newest
 * earlier version that loads. A current-version pointer that cannot be read
 * (`abc`, a key of the wrong type) is reported once too: the model the cache
 * has keeps serving, else the newest version that loads, else cold start.
 * Either way only that container is affected.
 *
 * @module
 */

import { Detector, RateModel, splitModel } from "../detector/detector.ts";
import type { Logger } from "./logger.ts";
import {
  CurrentVersionCorruptError,
  ModelCorruptError,
  type ModelMeta,
  ModelNotFoundError,
  type ModelRegistry,
} from "../ports/model_registry.ts";

/** A loaded model. */
export interface LoadedModel {
  /** The registry's version of it. */
  version: number;
  /** Its metadata. */
  meta: ModelMeta;
  /** The detector. */
  detector: Detector;
  /** The rate model, when the model was trained with timestamps. */
  rates?: RateModel;
}

/**
 * The {@linkcode ModelCacheOptions.onBadVersion} of the functions: an error
 * line naming the container, the version and why.
 *
 * @param log where to write it
 * @returns the callback
 */
export function logBadVersions(
  log: Pick<Logger, "error">,
): (container: string, version: number, error: Error) => void {
  return (container, version, error) =>
    log.error(
      "model version unusable; the newest earlier version that loads serves, else cold start",
      { container, version, error },
    );
}

/** Options of {@linkcode ModelCache}. */
export interface ModelCacheOptions {
  /**
   * Told once per bad version, with why it was skipped; `version` is 0 when
   * the current-version pointer itself is unreadable.
   * @default ignore
   */
  onBadVersion?: (container: string, version: number, error: Error) => void;
  /**
   * Containers kept loaded; the least recently used goes first.
   * @default 1000
   */
  maxModels?: number;
}

/** Loads detectors from a {@linkcode ModelRegistry}, re-loading on version change. */
export class ModelCache {
  #registry: ModelRegistry;
  #models = new Map<string, LoadedModel>();
  #bad = new Map<string, Set<number>>();
  #badPointers = new Set<string>();
  #onBad: (container: string, version: number, error: Error) => void;
  #max: number;
  /** Blob fetches and decodes since start: the cost beyond the version check. */
  loads = 0;
  /** Version checks since start. */
  checks = 0;

  /**
   * @param registry where models come from
   * @param options what to tell about bad versions, and the cache size
   */
  constructor(registry: ModelRegistry, options: ModelCacheOptions = {}) {
    this.#registry = registry;
    this.#onBad = options.onBadVersion ?? (() => {});
    this.#max = options.maxModels ?? 1000;
  }

  /**
   * The model to score a container's lines with now.
   *
   * @param container the model key
   * @returns the model, or null while the container has no usable model
   * @throws errors of the registry other than a missing or corrupt model
   */
  async get(container: string): Promise<LoadedModel | null> {
    this.checks++;
    let version: number | null;
    try {
      version = await this.#registry.currentVersion(container);
      this.#badPointers.delete(container);
    } catch (e) {
      if (!(e instanceof CurrentVersionCorruptError)) throw e;
      if (!this.#badPointers.has(container)) {
        this.#badPointers.add(container);
        this.#onBad(container, 0, e);
      }
      return this.#models.get(container) ?? await this.#fallback(container, Infinity);
    }
    const cached = this.#models.get(container);
    if (version === null) {
      if (cached) this.#models.delete(container);
      return null;
    }
    if (cached && cached.version === version) {
      this.#models.delete(container);
      this.#models.set(container, cached);
      return cached;
    }
    if (this.#bad.get(container)?.has(version)) return cached ?? null;
    const loaded = await this.#load(container, version);
    if (loaded) {
      this.#remember(container, loaded);
      return loaded;
    }
    if (cached) return cached;
    return await this.#fallback(container, version);
  }

  /** A fresh cache with a bad current version: the newest earlier one that loads. */
  async #fallback(container: string, version: number): Promise<LoadedModel | null> {
    const older = (await this.#registry.list(container))
      .filter((m) => m.version < version && m.status !== "candidate")
      .sort((a, b) => b.version - a.version);
    for (const meta of older) {
      if (this.#bad.get(container)?.has(meta.version)) continue;
      const fallback = await this.#load(container, meta.version);
      if (fallback) {
        this.#remember(container, fallback);
        return fallback;
      }
    }
    return null;
  }

  /**
   * The model {@linkcode ModelCache.get} last returned for a container,
   * without asking the registry again.
   *
   * @param container the model key
   * @returns the model, or undefined when none is loaded
   */
  cached(container: string): LoadedModel | undefined {
    return this.#models.get(container);
  }

  /** Forgets every loaded model. */
  clear(): void {
    this.#models.clear();
    this.#bad.clear();
  }

  async #load(container: string, version: number): Promise<LoadedModel | null> {
    try {
      const { meta, blob } = await this.#registry.get(container, version);
      this.loads++;
      const parts = splitModel(blob);
      return {
        version,
        meta,
        detector: Detector.fromBytes(parts.detector),
        ...(parts.rates ? { rates: RateModel.fromBytes(parts.rates) } : {}),
      };
    } catch (e) {
      if (e instanceof ModelNotFoundError) return null;
      const error = e instanceof Error ? e : new Error(String(e));
      if (e instanceof ModelCorruptError || error.name === "ModelFormatError") {
        let set = this.#bad.get(container);
        if (!set) this.#bad.set(container, set = new Set());
        set.add(version);
        this.#onBad(container, version, error);
        return null;
      }
      throw e;
    }
  }

  #remember(container: string, model: LoadedModel): void {
    this.#models.delete(container);
    this.#models.set(container, model);
    while (this.#models.size > this.#max) {
      const oldest = this.#models.keys().next().value;
      if (oldest === undefined) break;
      this.#models.delete(oldest);
    }
  }
}
