/**
 * Single-process ownership of the embedded data dir: a lock file
 * `<dataDir>/tailwise.lock` holding the owner's pid, created with `createNew`
 * so that two processes cannot both create it. A lock left by a process that
 * is gone (its pid no longer runs, or is this very process but from an
 * earlier life, as with pid 1 in a restarted container) is taken over.
 *
 * Within one process, the embedded adapters share the lock: each takes it for
 * its own part of the dir (`"streams"`, `"history"`, ...) and the file is
 * removed when the last part lets go. Opening the same part twice in one
 * process is refused, since two writers would corrupt its files.
 *
 * @module
 */

import process from "node:process";
import { join, resolve } from "node:path";

/** A held lock on a part of the data dir; release it when done. */
export interface DataDirLock extends AsyncDisposable {
  /** Path of the lock file. */
  readonly path: string;
  /** The part of the data dir this lock covers. */
  readonly part: string;
  /** Lets the part go; the file is removed when no part of this process holds it. */
  release(): Promise<void>;
}

/** Thrown when another live process, or this one for the same part, owns the data dir. */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  /** The owner's pid, as the lock file says. */
  readonly pid: number;

  /**
   * @param message what is locked, by whom, and what to do
   * @param pid the owner's pid
   */
  constructor(message: string, pid: number) {
    super(message);
    this.pid = pid;
  }
}

interface _Owner {
  pid: number;
  hostname: string;
  startedAt: string;
}

// The parts of each lock file this process holds, by the file's absolute path.
const _held = new Map<string, Set<string>>();

/**
 * Takes the data dir's lock for one part of it, creating the dir if needed.
 *
 * @param dataDir the data dir (`TAILWISE_DATA_DIR`)
 * @param part the part of it the caller owns, e.g. `"streams"`
 * @returns the lock
 * @throws {DataDirLockedError} when another live process owns the dir, or this
 *   process already holds `part`
 */
export async function lockDataDir(dataDir: string, part: string): Promise<DataDirLock> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = resolve(join(dataDir, "tailwise.lock"));
  const parts = _held.get(path);
  if (parts) {
    if (parts.has(part)) {
      throw new DataDirLockedError(
        `Cannot open the ${part} of data dir ${JSON.stringify(dataDir)}: this process ` +
          `(pid ${Deno.pid}) has it open already; expected one adapter per part`,
        Deno.pid,
      );
    }
    parts.add(part);
    return _lease(path, part);
  }
  for (let attempt = 0;; attempt++) {
    try {
      const file = await Deno.open(path, { write: true, createNew: true });
      try {
        const owner: _Owner = { pid: Deno.pid, hostname: _hostname(), startedAt: _now() };
        await file.write(new TextEncoder().encode(JSON.stringify(owner) + "\n"));
      } finally {
        file.close();
      }
      _held.set(path, new Set([part]));
      return _lease(path, part);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) || attempt >= 2) throw e;
    }
    const owner = await _readOwner(path);
    if (owner && _alive(owner)) {
      throw new DataDirLockedError(
        `Cannot open data dir ${JSON.stringify(dataDir)}: tailwise process ${owner.pid} on ` +
          `${owner.hostname || "this host"} (since ${owner.startedAt}) owns it; expected no ` +
          `other process using it: stop that one, or set TAILWISE_DATA_DIR to another dir ` +
          `(remove ${path} only if that process is surely gone)`,
        owner.pid,
      );
    }
    // Stale: its owner is gone. Remove it and try to create it again.
    await Deno.remove(path).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
}

function _lease(path: string, part: string): DataDirLock {
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    const parts = _held.get(path);
    if (!parts) return;
    parts.delete(part);
    if (parts.size > 0) return;
    _held.delete(path);
    const owner = await _readOwner(path);
    if (owner?.pid === Deno.pid) {
      await Deno.remove(path).catch(() => {});
    }
  };
  return { path, part, release, [Symbol.asyncDispose]: release };
}

async function _readOwner(path: string): Promise<_Owner | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    const parsed = JSON.parse(text) as Partial<_Owner>;
    if (typeof parsed.pid !== "number") return null;
    return {
      pid: parsed.pid,
      hostname: String(parsed.hostname ?? ""),
      startedAt: String(parsed.startedAt ?? "?"),
    };
  } catch {
    // A lock file torn by a crash while it was written: its owner is gone.
    return null;
  }
}

function _alive(owner: _Owner): boolean {
  const here = _hostname();
  // Another host sharing the dir (a network volume): its pids mean nothing here.
  if (owner.hostname && here && owner.hostname !== here) return true;
  // Our own pid, but not in _held: a previous life of this pid (a restarted container).
  if (owner.pid === Deno.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

function _hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

function _now(): string {
  return new Date().toISOString();
}
