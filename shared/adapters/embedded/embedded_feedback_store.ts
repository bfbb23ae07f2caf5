/**
 * The embedded adapter of the {@linkcode FeedbackStore} port: everything in
 * memory, persisted to one JSON file under the data dir, rewritten atomically
 * (temp file and rename) before each `record` resolves. Feedback comes from
 * people, so writes are rare; reads never touch the disk.
 *
 * @module
 */

import {
  DEFAULT_MAX_FEEDBACK_PER_CONTAINER,
  DEFAULT_SUPPRESS_MS,
  type Feedback,
  type FeedbackListOptions,
  type FeedbackStore,
  type FeedbackStoreOptions,
  validateFeedback,
} from "../../ports/feedback_store.ts";

/** Thrown by {@linkcode EmbeddedFeedbackStore.open} when its file cannot be read back. */
export class FeedbackFileError extends Error {
  /** The error's name. */
  override name = "FeedbackFileError";
}

interface _Container {
  items: Map<string, Feedback>;
  suppress: Map<string, number>;
}

interface _FileShape {
  version: 1;
  containers: Record<string, { items: Feedback[]; suppress: Record<string, number> }>;
}

/** Feedback kept in memory and in `<dataDir>/feedback.json`. */
export class EmbeddedFeedbackStore implements FeedbackStore {
  #path: string;
  #suppressMs: number;
  #max: number;
  #containers = new Map<string, _Container>();
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(path: string, options: FeedbackStoreOptions) {
    this.#path = path;
    this.#suppressMs = options.suppressMs ?? DEFAULT_SUPPRESS_MS;
    this.#max = options.maxPerContainer ?? DEFAULT_MAX_FEEDBACK_PER_CONTAINER;
    if (!Number.isFinite(this.#suppressMs) || this.#suppressMs < 0) {
      throw new RangeError(`Cannot use suppressMs ${this.#suppressMs}: expected a number >= 0`);
    }
    if (!Number.isInteger(this.#max) || this.#max < 1) {
      throw new RangeError(`Cannot use maxPerContainer ${this.#max}: expected an integer >= 1`);
    }
  }

  /**
   * Opens the store in `dataDir` (created if missing), reading back what an
   * earlier process recorded.
   *
   * @param dataDir the data dir (`config.dataDir`)
   * @param options suppression time and cap
   * @returns the store
   * @throws {FeedbackFileError} when `feedback.json` exists but is not a feedback file
   */
  static async open(
    dataDir: string,
    options: FeedbackStoreOptions = {},
  ): Promise<EmbeddedFeedbackStore> {
    await Deno.mkdir(dataDir, { recursive: true });
    const store = new EmbeddedFeedbackStore(`${dataDir}/feedback.json`, options);
    let text: string | null = null;
    try {
      text = await Deno.readTextFile(store.#path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (text !== null) store.#load(text);
    return store;
  }

  #load(text: string): void {
    let data: _FileShape;
    try {
      data = JSON.parse(text) as _FileShape;
      if (data.version !== 1 || typeof data.containers !== "object") throw new Error("shape");
    } catch (e) {
      throw new FeedbackFileError(
        `Cannot read feedback file ${this.#path}: expected JSON written by tailwise (version 1)`,
        { cause: e },
      );
    }
    for (const [name, c] of Object.entries(data.containers)) {
      this.#containers.set(name, {
        items: new Map(c.items.map((f) => [f.anomalyId, f])),
        suppress: new Map(Object.entries(c.suppress)),
      });
    }
  }

  #container(name: string): _Container {
    let c = this.#containers.get(name);
    if (!c) {
      c = { items: new Map(), suppress: new Map() };
      this.#containers.set(name, c);
    }
    return c;
  }

  /** {@inheritDoc FeedbackStore.record} */
  async record(feedback: Feedback): Promise<void> {
    if (this.#closed) {
      throw new Error(`Cannot record feedback: the store at ${this.#path} is closed`);
    }
    const f = { ...validateFeedback(feedback) };
    const c = this.#container(f.container);
    c.items.delete(f.anomalyId);
    c.items.set(f.anomalyId, f);
    if (f.label === "normal") {
      const until = f.at + this.#suppressMs;
      if (until > (c.suppress.get(f.templateId) ?? 0)) c.suppress.set(f.templateId, until);
    } else {
      c.suppress.delete(f.templateId);
    }
    const now = Date.now();
    for (const [id, until] of c.suppress) if (until <= now) c.suppress.delete(id);
    if (c.items.size > this.#max) {
      const oldest = [...c.items.values()].sort((a, b) => a.at - b.at)
        .slice(0, c.items.size - this.#max);
      for (const o of oldest) c.items.delete(o.anomalyId);
    }
    await this.#persist();
  }

  #persist(): Promise<void> {
    const next = this.#writing.catch(() => {}).then(async () => {
      const data: _FileShape = { version: 1, containers: {} };
      for (const [name, c] of this.#containers) {
        data.containers[name] = {
          items: [...c.items.values()],
          suppress: Object.fromEntries(c.suppress),
        };
      }
      const tmp = `${this.#path}.${crypto.randomUUID()}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(data));
      await Deno.rename(tmp, this.#path);
    });
    this.#writing = next;
    return next;
  }

  /** {@inheritDoc FeedbackStore.get} */
  get(container: string, anomalyId: string): Promise<Feedback | null> {
    const f = this.#containers.get(container)?.items.get(anomalyId);
    return Promise.resolve(f ? { ...f } : null);
  }

  /** {@inheritDoc FeedbackStore.isSuppressed} */
  isSuppressed(container: string, templateId: string, now = Date.now()): Promise<boolean> {
    const until = this.#containers.get(container)?.suppress.get(templateId);
    return Promise.resolve(until !== undefined && until > now);
  }

  /** {@inheritDoc FeedbackStore.suppressedTemplates} */
  suppressedTemplates(container: string, now = Date.now()): Promise<Set<string>> {
    const out = new Set<string>();
    const c = this.#containers.get(container);
    if (c) { for (const [id, until] of c.suppress) if (until > now) out.add(id); }
    return Promise.resolve(out);
  }

  /** {@inheritDoc FeedbackStore.normalLines} */
  normalLines(container: string, options: FeedbackListOptions = {}): Promise<string[]> {
    return Promise.resolve(this.#list(container, "normal", options).map((f) => f.line));
  }

  /** {@inheritDoc FeedbackStore.confirmedAnomalies} */
  confirmedAnomalies(container: string, options: FeedbackListOptions = {}): Promise<Feedback[]> {
    return Promise.resolve(this.#list(container, "anomaly", options));
  }

  #list(container: string, label: Feedback["label"], options: FeedbackListOptions): Feedback[] {
    const c = this.#containers.get(container);
    if (!c) return [];
    return [...c.items.values()]
      .filter((f) => f.label === label)
      .sort((a, b) => b.at - a.at || (a.anomalyId < b.anomalyId ? 1 : -1))
      .slice(0, options.limit ?? Infinity)
      .map((f) => ({ ...f }));
  }

  /** {@inheritDoc FeedbackStore.ping} */
  ping(): Promise<boolean> {
    return Promise.resolve(!this.#closed);
  }

  /** Waits for the last write; later records fail. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    await this.#writing.catch(() => {});
  }
}
