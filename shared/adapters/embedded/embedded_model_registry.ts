/**
 * The embedded adapter of the {@linkcode ModelRegistry} port: files under the
 * data dir, for the one-process mode without Redis.
 *
 * Layout under `<dataDir>/models/`:
 *
 * - `index.json`: every container, its last version number, its current
 *   version and the metadata of its kept versions. Written to a temp file and
 *   renamed over the old one, so a reader (in this or another process) always
 *   sees a whole index.
 * - `<hash>/<version>.bin`: the blobs, `<hash>` the first 32 hex digits of the
 *   SHA-256 of the container's name, so a hostile name never reaches a path.
 *   Written (temp file + rename) before the index names them.
 * - `.lock`: an exclusive `flock` held while a change is made, so processes
 *   sharing the directory take turns; each change re-reads the index first.
 *
 * Reads check the index file's inode, size and mtime and parse it again only
 * when it changed: {@linkcode EmbeddedModelRegistry.currentVersion} costs one
 * `stat`. Change notices come at once from this process and, by polling the
 * index, from others.
 *
 * @module
 */

import {
  checkContainerName,
  checkNewModelMeta,
  type ModelChange,
  modelChecksum,
  ModelCorruptError,
  type ModelMeta,
  ModelNotFoundError,
  type ModelRegistry,
  type NewModelMeta,
  type PutModelOptions,
} from "../../ports/model_registry.ts";

/** Options of {@linkcode EmbeddedModelRegistry.open}. */
export interface EmbeddedModelRegistryOptions {
  /**
   * Most versions kept per container: the newest, the current one always among them.
   * @default 5
   */
  keepVersions?: number;
  /**
   * How often a watch polls the index for changes made by other processes, in ms.
   * @default 1000
   */
  pollMs?: number;
}

interface _Version {
  version: number;
  trainedAt: string;
  lines: number;
  threshold: number;
  checksum: string;
  size: number;
  promotedAt?: string;
  rolledBackAt?: string;
  evaluation?: Record<string, number>;
  note?: string;
}

interface _Container {
  name: string;
  dir: string;
  seq: number;
  current: number | null;
  versions: _Version[];
}

interface _IndexFile {
  format: 1;
  containers: _Container[];
}

type _Index = Map<string, _Container>;

interface _Snapshot {
  index: _Index;
  stamp: string;
}

/** Model versions in files under the data dir. */
export class EmbeddedModelRegistry implements ModelRegistry {
  #dir: string;
  #keep: number;
  #pollMs: number;
  #cache: _Snapshot | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #changes = new EventTarget();
  #closing = new AbortController();

  private constructor(dir: string, keep: number, pollMs: number) {
    this.#dir = dir;
    this.#keep = keep;
    this.#pollMs = pollMs;
  }

  /**
   * Opens (and creates) the registry under `<dataDir>/models`.
   *
   * @param dataDir the data dir
   * @param options versions kept, poll interval
   * @returns the registry
   * @throws {RangeError} when an option is out of range
   */
  static async open(
    dataDir: string,
    options: EmbeddedModelRegistryOptions = {},
  ): Promise<EmbeddedModelRegistry> {
    const keep = options.keepVersions ?? 5;
    if (!Number.isInteger(keep) || keep < 1) {
      throw new RangeError(`Cannot keep ${keep} versions: expected an integer of at least 1`);
    }
    const pollMs = options.pollMs ?? 1000;
    if (!(pollMs > 0)) {
      throw new RangeError(`Cannot poll every ${pollMs} ms: expected a number above 0`);
    }
    const dir = `${dataDir.replace(/\/+$/, "")}/models`;
    await Deno.mkdir(dir, { recursive: true });
    return new EmbeddedModelRegistry(dir, keep, pollMs);
  }

  get #indexPath(): string {
    return `${this.#dir}/index.json`;
  }

  /** {@inheritDoc ModelRegistry.put} */
  async put(
    container: string,
    blob: Uint8Array,
    meta: NewModelMeta,
    options: PutModelOptions = {},
  ): Promise<ModelMeta> {
    const nameBytes = checkContainerName(container);
    checkNewModelMeta(meta);
    const checksum = await modelChecksum(blob);
    const hash = (await modelChecksum(nameBytes)).slice(0, 32);
    const promote = options.promote ?? true;
    const data = blob.slice();
    return await this.#mutate(async (index) => {
      let c = index.get(container);
      if (!c) {
        c = { name: container, dir: hash, seq: 0, current: null, versions: [] };
        index.set(container, c);
      }
      const now = new Date().toISOString();
      const v: _Version = {
        version: c.seq + 1,
        trainedAt: meta.trainedAt ?? now,
        lines: meta.lines,
        threshold: meta.threshold,
        checksum,
        size: data.byteLength,
        ...(promote ? { promotedAt: now } : {}),
        ...(meta.evaluation ? { evaluation: { ...meta.evaluation } } : {}),
        ...(meta.note !== undefined ? { note: meta.note } : {}),
      };
      await Deno.mkdir(`${this.#dir}/${c.dir}`, { recursive: true });
      await _writeAtomic(this.#blobPath(c, v.version), data);
      c.seq = v.version;
      c.versions.push(v);
      if (promote) c.current = v.version;
      const removed = _trim(c, this.#keep);
      return {
        result: _toMeta(c, v),
        changed: promote ? { container, version: v.version } : null,
        remove: removed.map((old) => this.#blobPath(c, old.version)),
      };
    });
  }

  /** {@inheritDoc ModelRegistry.currentVersion} */
  async currentVersion(container: string): Promise<number | null> {
    checkContainerName(container);
    const { index } = await this.#snapshot();
    return index.get(container)?.current ?? null;
  }

  /** {@inheritDoc ModelRegistry.current} */
  async current(container: string): Promise<ModelMeta | null> {
    checkContainerName(container);
    const c = (await this.#snapshot()).index.get(container);
    const v = c?.versions.find((x) => x.version === c.current);
    return c && v ? _toMeta(c, v) : null;
  }

  /** {@inheritDoc ModelRegistry.get} */
  async get(container: string, version?: number): Promise<{ meta: ModelMeta; blob: Uint8Array }> {
    checkContainerName(container);
    if (version !== undefined) _checkVersion(version);
    const c = (await this.#snapshot()).index.get(container);
    const wanted = version ?? c?.current ?? null;
    if (!c || wanted === null) throw new ModelNotFoundError(container, null);
    const v = c.versions.find((x) => x.version === wanted);
    if (!v) throw new ModelNotFoundError(container, wanted);
    let blob: Uint8Array;
    try {
      blob = await Deno.readFile(this.#blobPath(c, v.version));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ModelCorruptError(container, v.version, "the blob is missing", { cause: e });
      }
      throw e;
    }
    const sum = await modelChecksum(blob);
    if (sum !== v.checksum) {
      throw new ModelCorruptError(
        container,
        v.version,
        `expected sha-256 ${v.checksum} (${v.size} bytes), got ${sum} (${blob.byteLength} bytes)`,
      );
    }
    return { meta: _toMeta(c, v), blob };
  }

  /** {@inheritDoc ModelRegistry.list} */
  async list(container?: string): Promise<ModelMeta[]> {
    if (container !== undefined) checkContainerName(container);
    const { index } = await this.#snapshot();
    const names = container === undefined ? [...index.keys()].sort() : [container];
    const out: ModelMeta[] = [];
    for (const name of names) {
      const c = index.get(name);
      if (!c) continue;
      for (const v of [...c.versions].sort((a, b) => b.version - a.version)) {
        out.push(_toMeta(c, v));
      }
    }
    return out;
  }

  /** {@inheritDoc ModelRegistry.containers} */
  async containers(): Promise<string[]> {
    return [...(await this.#snapshot()).index.keys()].sort();
  }

  /** {@inheritDoc ModelRegistry.promote} */
  promote(container: string, version: number): Promise<ModelMeta> {
    checkContainerName(container);
    _checkVersion(version);
    return this.#mutate((index) => {
      const c = index.get(container);
      const v = c?.versions.find((x) => x.version === version);
      if (!c || !v) throw new ModelNotFoundError(container, version);
      c.current = version;
      v.promotedAt ??= new Date().toISOString();
      delete v.rolledBackAt;
      return { result: _toMeta(c, v), changed: { container, version }, remove: [] };
    });
  }

  /** {@inheritDoc ModelRegistry.rollback} */
  rollback(container: string): Promise<ModelMeta> {
    checkContainerName(container);
    return this.#mutate(async (index) => {
      const c = index.get(container);
      const cur = c?.versions.find((x) => x.version === c.current);
      if (!c || !cur) throw new ModelNotFoundError(container, null);
      const older = c.versions
        .filter((x) => x.version < cur.version && x.promotedAt && !x.rolledBackAt)
        .sort((a, b) => b.version - a.version);
      for (const v of older) {
        if (!(await _exists(this.#blobPath(c, v.version)))) continue;
        cur.rolledBackAt = new Date().toISOString();
        c.current = v.version;
        return { result: _toMeta(c, v), changed: { container, version: v.version }, remove: [] };
      }
      throw new ModelNotFoundError(container, null, {
        reason: "no earlier good version to roll back to",
      });
    });
  }

  /** {@inheritDoc ModelRegistry.watch} */
  async *watch(signal: AbortSignal): AsyncIterable<ModelChange> {
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    if (stop.aborted) return;
    const seen = new Map<string, number | null>();
    for (const [name, c] of (await this.#snapshot()).index) seen.set(name, c.current);
    const queue: ModelChange[] = [];
    let wake: (() => void) | null = null;
    const offer = (change: ModelChange) => {
      if (seen.get(change.container) === change.version) return;
      seen.set(change.container, change.version);
      queue.push(change);
    };
    const onLocal = (e: Event) => {
      offer((e as CustomEvent<ModelChange>).detail);
      wake?.();
    };
    const onStop = () => wake?.();
    this.#changes.addEventListener("change", onLocal);
    stop.addEventListener("abort", onStop);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!stop.aborted) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        let polled = false;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(() => {
            polled = true;
            resolve();
          }, this.#pollMs);
        });
        clearTimeout(timer);
        wake = null;
        if (polled && !stop.aborted) {
          try {
            for (const [name, c] of (await this.#snapshot()).index) {
              if (c.current !== null) offer({ container: name, version: c.current });
            }
          } catch {
            // an unreadable index is retried on the next poll
          }
        }
      }
    } finally {
      clearTimeout(timer);
      this.#changes.removeEventListener("change", onLocal);
      stop.removeEventListener("abort", onStop);
    }
  }

  /** {@inheritDoc ModelRegistry.ping} */
  async ping(): Promise<boolean> {
    try {
      await this.#snapshot();
      return true;
    } catch {
      return false;
    }
  }

  /** Ends every watch. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#closing.abort();
    return this.#queue.then(() => {}, () => {});
  }

  #blobPath(c: _Container, version: number): string {
    return `${this.#dir}/${c.dir}/${version}.bin`;
  }

  async #snapshot(): Promise<_Snapshot> {
    let stamp: string;
    try {
      const s = await Deno.stat(this.#indexPath);
      stamp = `${s.ino}:${s.size}:${s.mtime?.getTime()}`;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { index: new Map(), stamp: "" };
      throw e;
    }
    if (this.#cache?.stamp === stamp) return this.#cache;
    const text = await Deno.readTextFile(this.#indexPath);
    const file = JSON.parse(text) as _IndexFile;
    if (file.format !== 1 || !Array.isArray(file.containers)) {
      throw new Error(`Cannot read ${this.#indexPath}: expected a model index of format 1`);
    }
    const index: _Index = new Map(file.containers.map((c) => [c.name, c]));
    // The stamp is taken before the read: a rename in between only costs one more read.
    this.#cache = { index, stamp };
    return this.#cache;
  }

  #mutate<T>(
    change: (index: _Index) =>
      | Promise<{ result: T; changed: ModelChange | null; remove: string[] }>
      | { result: T; changed: ModelChange | null; remove: string[] },
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const lock = await Deno.open(`${this.#dir}/.lock`, { create: true, write: true });
      try {
        await lock.lock(true);
        // Another process may have changed the index: read it fresh, edit a copy.
        this.#cache = null;
        const index = structuredClone((await this.#snapshot()).index);
        const { result, changed, remove } = await change(index);
        const file: _IndexFile = { format: 1, containers: [...index.values()] };
        await _writeAtomic(this.#indexPath, new TextEncoder().encode(JSON.stringify(file)));
        this.#cache = null;
        for (const path of remove) await Deno.remove(path).catch(() => {});
        if (changed) this.#changes.dispatchEvent(new CustomEvent("change", { detail: changed }));
        return result;
      } finally {
        lock.close();
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }
}

function _trim(c: _Container, keep: number): _Version[] {
  const removed: _Version[] = [];
  let excess = c.versions.length - keep;
  c.versions.sort((a, b) => a.version - b.version);
  for (const v of [...c.versions]) {
    if (excess <= 0) break;
    if (v.version === c.current) continue;
    c.versions.splice(c.versions.indexOf(v), 1);
    removed.push(v);
    excess--;
  }
  return removed;
}

function _toMeta(c: _Container, v: _Version): ModelMeta {
  const { version: _, ...rest } = v;
  return {
    container: c.name,
    version: v.version,
    ...rest,
    status: c.current === v.version ? "current" : v.promotedAt ? "retired" : "candidate",
  };
}

function _checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new RangeError(`Cannot use model version ${version}: expected an integer of at least 1`);
  }
}

async function _exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function _writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
