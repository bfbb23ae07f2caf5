/**
 * Moving a store's per-container keys from the layout before hash tags to
 * the tagged one, shared by the model registry and the feedback store.
 *
 * The first touch of a container in a process moves its old keys (one
 * script, when none of the new ones exists); a failed move is tried again on
 * the next touch and its error reaches the caller. A process that may not
 * move them (a reader whose Redis user runs no scripts on those keys) reads
 * the old layout while it is the only one ({@linkcode KeyLayoutUpgrade.isOld}),
 * checks at every touch whether a writer has moved it meanwhile, and looks
 * at both layouts again every 30 s.
 *
 * @module
 */

import type { Redis } from "ioredis";

/** How one container's keys are told apart and moved. */
export interface KeyLayoutOptions {
  /**
   * Keys whose existence says a layout holds the container: the old names
   * and the new ones.
   */
  probe: (container: string) => { old: string[]; now: string[] };
  /** Moves the container's old keys (the store's script). */
  move: (container: string) => Promise<unknown>;
  /** Whether this process may move keys (else it only reads). */
  mayMove: boolean;
}

/** How long a reader keeps a layout decision before looking at both again, in ms. */
const _RECHECK_MS = 30_000;

/** The per-container state of the move, for one store in one process. */
export class KeyLayoutUpgrade {
  #client: Redis;
  #options: KeyLayoutOptions;
  #settled = new Map<string, Promise<void>>();
  /** Containers read under the old layout: it holds them, the new one does not. */
  #old = new Set<string>();
  #recheckAt = new Map<string, number>();

  /**
   * @param client the store's client
   * @param options the probe keys, the move, whether this process may move
   */
  constructor(client: Redis, options: KeyLayoutOptions) {
    this.#client = client;
    this.#options = options;
  }

  /**
   * Whether the container is read under the old layout (decided by
   * {@linkcode KeyLayoutUpgrade.ready}).
   *
   * @param container the container
   * @returns true for the old layout
   */
  isOld(container: string): boolean {
    return this.#old.has(container);
  }

  /**
   * Resolves once the container's layout is settled: its old keys moved, or
   * (for a reader) the layout that holds it picked.
   *
   * @param container the container
   * @throws the move's error (the next call tries again)
   */
  async ready(container: string): Promise<void> {
    if (this.#old.has(container)) {
      // One EXISTS per touch, only while a container is read the old way.
      if ((await this.#client.exists(...this.#options.probe(container).now)) > 0) {
        this.#old.delete(container);
      }
    }
    await this.#settle(container);
  }

  #settle(container: string): Promise<void> {
    const recheck = this.#recheckAt.get(container);
    if (recheck !== undefined && Date.now() >= recheck) {
      this.#recheckAt.delete(container);
      this.#settled.delete(container);
    }
    let done = this.#settled.get(container);
    if (done === undefined) {
      done = this.#options.mayMove
        ? this.#options.move(container).then(() => void this.#old.delete(container))
        : this.#pick(container);
      this.#settled.set(container, done);
      done.catch(() => this.#settled.delete(container));
    }
    return done;
  }

  /** Not this process's to move: read whichever layout holds the container. */
  async #pick(container: string): Promise<void> {
    this.#recheckAt.set(container, Date.now() + _RECHECK_MS);
    const { old, now } = this.#options.probe(container);
    const [oldN, newN] = await Promise.all([
      this.#client.exists(...old),
      this.#client.exists(...now),
    ]);
    if (oldN > 0 && newN === 0) this.#old.add(container);
    else this.#old.delete(container);
  }
}
