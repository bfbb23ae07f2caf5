/**
 * Single-process ownership of the embedded data dir: an exclusive OS file lock
 * (`flock`, through {@linkcode Deno.FsFile.tryLock}) on `<dataDir>/tailwise.lock`,
 * held for as long as the owner runs. The kernel lets it go when the process
 * ends, however it ends (SIGKILL included), so there is no stale lock to clean
 * up and the file is never removed: a process that is refused, or a stray
 * `--help`, cannot delete another's lock. It needs only read and write access
 * to the data dir (no `--allow-run`: no pid is probed).
 *
 * The file also holds the owner's pid, host and start time, for the message
 * that refuses a second owner. A lock is per open file, so a second owner in
 * the same process is refused too.
 *
 * @module
 */

import { join } from "node:path";

/** A held data-dir lock; release it when done. */
export interface DataDirLock extends AsyncDisposable {
  /** Path of the lock file. */
  readonly path: string;
  /** Lets the lock go (the file stays). */
  release(): void;
}

/** Thrown when another process (or another owner in this one) holds the data dir. */
export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

const _FILE = "tailwise.lock";

/**
 * Takes the data dir's lock, creating the dir if needed; never waits.
 *
 * @param dataDir the data dir (`TAILWISE_DATA_DIR`)
 * @returns the lock
 * @throws {DataDirLockedError} when another owner holds it, naming it and what to do
 * @example
 * ```ts
 * using lock = await lockDataDir("./.tailwise");
 * ```
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await Deno.mkdir(dataDir, { recursive: true });
  const path = join(dataDir, _FILE);
  const file = await Deno.open(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) {
      throw new DataDirLockedError(
        `Cannot use data dir ${JSON.stringify(dataDir)}: ${await _owner(path)} is using it; ` +
          `expected one tailwise process per data dir: stop that one, or set TAILWISE_DATA_DIR ` +
          `to another dir`,
      );
    }
    const owner = { pid: Deno.pid, hostname: _hostname(), startedAt: new Date().toISOString() };
    await file.truncate(0);
    await file.write(new TextEncoder().encode(JSON.stringify(owner) + "\n"));
  } catch (e) {
    file.close();
    throw e;
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    // Closing the file lets the lock go; the file stays for the next owner.
    file.close();
  };
  return {
    path,
    release,
    [Symbol.asyncDispose]: () => Promise.resolve(release()),
  };
}

async function _owner(path: string): Promise<string> {
  try {
    const o = JSON.parse(await Deno.readTextFile(path)) as Record<string, unknown>;
    const where = o.hostname ? ` on ${o.hostname}` : "";
    return `tailwise process ${o.pid}${where} (since ${o.startedAt})`;
  } catch {
    return "another tailwise process";
  }
}

function _hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}
