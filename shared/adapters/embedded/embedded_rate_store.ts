/**
 * The embedded adapter of the {@linkcode RateStore} port: counts in memory,
 * saved to `<dataDir>/rates.json` (temp file and rename) at most once per
 * `saveEveryMs` and on close, so a restart of the one-process mode keeps the
 * recent windows. One process owns the data dir, so claims are in memory.
 *
 * @module
 */

import {
  RATE_COUNT_TTL_MS,
  type RateIncrement,
  type RateStore,
  type StoredWindow,
} from "../../ports/rate_store.ts";

/** Options of {@linkcode EmbeddedRateStore.open}. */
export interface EmbeddedRateStoreOptions {
  /**
   * How long counts and claims are kept (ms).
   * @default RATE_COUNT_TTL_MS (6 hours)
   */
  ttlMs?: number;
  /**
   * Least time between two saves (ms); 0 saves on every add.
   * @default 5000
   */
  saveEveryMs?: number;
  /**
   * The clock (ms since the epoch), for expiry.
   * @default Date.now
   */
  now?: () => number;
}

interface _FileShape {
  version: 1;
  windows: [string, number, number, [string, number][]][];
  services: [string, number][];
  claims: string[];
  batches: string[];
}

/** Rate counts in memory and in `<dataDir>/rates.json`. */
export class EmbeddedRateStore implements RateStore {
  #path: string | null;
  #ttlMs: number;
  #saveEveryMs: number;
  #now: () => number;
  #windows = new Map<string, Map<number, { total: number; templates: Map<string, number> }>>();
  #services = new Map<string, number>();
  #claims = new Map<string, number>();
  #batches = new Map<string, number>();
  #lastSave = 0;
  #saving: Promise<void> = Promise.resolve();
  #dirty = false;

  private constructor(path: string | null, options: EmbeddedRateStoreOptions) {
    this.#path = path;
    this.#ttlMs = options.ttlMs ?? RATE_COUNT_TTL_MS;
    this.#saveEveryMs = options.saveEveryMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Open the store, reading back what an earlier process saved.
   *
   * @param dataDir The data dir, or `null` for memory only.
   * @param options TTL, save interval, clock.
   * @returns The store.
   */
  static async open(
    dataDir: string | null,
    options: EmbeddedRateStoreOptions = {},
  ): Promise<EmbeddedRateStore> {
    if (dataDir === null) return new EmbeddedRateStore(null, options);
    await Deno.mkdir(dataDir, { recursive: true });
    const store = new EmbeddedRateStore(`${dataDir}/rates.json`, options);
    try {
      store.#load(JSON.parse(await Deno.readTextFile(`${dataDir}/rates.json`)));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) && !(err instanceof SyntaxError)) throw err;
    }
    return store;
  }

  #load(f: _FileShape): void {
    if (f?.version !== 1) return;
    for (const [service, window, total, templates] of f.windows) {
      this.#series(service).set(window, { total, templates: new Map(templates) });
    }
    for (const [s, t] of f.services) this.#services.set(s, t);
    const until = this.#now() + this.#ttlMs;
    for (const c of f.claims) this.#claims.set(c, until);
    for (const b of f.batches) this.#batches.set(b, until);
  }

  #series(service: string) {
    let s = this.#windows.get(service);
    if (s === undefined) this.#windows.set(service, s = new Map());
    return s;
  }

  #expire(now: number): void {
    const oldest = now - this.#ttlMs;
    for (const [service, s] of this.#windows) {
      for (const w of s.keys()) if (w < oldest) s.delete(w);
      if (s.size === 0) this.#windows.delete(service);
    }
    for (const m of [this.#claims, this.#batches]) {
      for (const [k, until] of m) if (until < now) m.delete(k);
    }
    for (const [k, t] of this.#services) if (t < oldest) this.#services.delete(k);
  }

  /** {@inheritDoc RateStore.add} */
  add(increments: readonly RateIncrement[], options: { batchId?: string } = {}): Promise<boolean> {
    const now = this.#now();
    if (options.batchId !== undefined) {
      if (this.#batches.has(options.batchId)) return Promise.resolve(false);
      this.#batches.set(options.batchId, now + this.#ttlMs);
    }
    for (const inc of increments) {
      const s = this.#series(inc.service);
      let w = s.get(inc.window);
      if (w === undefined) s.set(inc.window, w = { total: 0, templates: new Map() });
      w.total += inc.total;
      for (const [id, n] of inc.templates) w.templates.set(id, (w.templates.get(id) ?? 0) + n);
      this.#services.set(inc.service, Math.max(this.#services.get(inc.service) ?? 0, inc.window));
    }
    this.#dirty = true;
    this.#maybeSave(now);
    return Promise.resolve(true);
  }

  /** {@inheritDoc RateStore.read} */
  read(service: string, from: number, to: number, windowMs: number): Promise<StoredWindow[]> {
    const s = this.#windows.get(service);
    const out: StoredWindow[] = [];
    for (let w = from; w <= to; w += windowMs) {
      const c = s?.get(w);
      out.push({ window: w, total: c?.total ?? 0, templates: new Map(c?.templates ?? []) });
    }
    return Promise.resolve(out);
  }

  /** {@inheritDoc RateStore.claim} */
  claim(service: string, window: number): Promise<boolean> {
    const key = `${service}\u0000${window}`;
    if (this.#claims.has(key)) return Promise.resolve(false);
    this.#claims.set(key, this.#now() + this.#ttlMs);
    this.#dirty = true;
    return Promise.resolve(true);
  }

  /** {@inheritDoc RateStore.services} */
  services(since: number): Promise<Map<string, number>> {
    this.#expire(this.#now());
    const out = new Map<string, number>();
    for (const [s, t] of this.#services) if (t >= since) out.set(s, t);
    return Promise.resolve(out);
  }

  #maybeSave(now: number): void {
    if (this.#path === null || now - this.#lastSave < this.#saveEveryMs) return;
    this.#lastSave = now;
    this.#saving = this.#saving.then(() => this.#save()).catch(() => {});
  }

  async #save(): Promise<void> {
    if (this.#path === null || !this.#dirty) return;
    this.#dirty = false;
    this.#expire(this.#now());
    const f: _FileShape = {
      version: 1,
      windows: [],
      services: [...this.#services],
      claims: [...this.#claims.keys()],
      batches: [...this.#batches.keys()],
    };
    for (const [service, s] of this.#windows) {
      for (const [w, c] of s) f.windows.push([service, w, c.total, [...c.templates]]);
    }
    const tmp = `${this.#path}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(f));
    await Deno.rename(tmp, this.#path);
  }

  /** Save what is not saved yet. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#saving;
    await this.#save();
  }
}
