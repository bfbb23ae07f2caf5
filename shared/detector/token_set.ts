/**
 * A set of 32-bit token hashes with open addressing, for "was this token ever
 * seen in training" in constant time without keeping the strings.
 *
 * @module
 */

/** An insert-only set of uint32 values (0 is stored as 1). */
export class TokenSet {
  #table: Uint32Array;
  #size = 0;

  /**
   * @param capacity Expected number of values.
   * @default {capacity} 1024
   */
  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.#table = new Uint32Array(n);
  }

  /** Number of values held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Add a hash.
   *
   * @param hash A uint32.
   */
  add(hash: number): void {
    const h = hash >>> 0 || 1;
    if ((this.#size + 1) * 2 > this.#table.length) this.#grow();
    const mask = this.#table.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> 0 & mask;
    for (;;) {
      const v = this.#table[i]!;
      if (v === h) return;
      if (v === 0) {
        this.#table[i] = h;
        this.#size++;
        return;
      }
      i = (i + 1) & mask;
    }
  }

  /**
   * @param hash A uint32.
   * @returns Whether the hash is in the set.
   */
  has(hash: number): boolean {
    const h = hash >>> 0 || 1;
    const mask = this.#table.length - 1;
    let i = Math.imul(h, 0x9e3779b1) >>> 0 & mask;
    for (;;) {
      const v = this.#table[i]!;
      if (v === h) return true;
      if (v === 0) return false;
      i = (i + 1) & mask;
    }
  }

  /** @returns The values, sorted ascending. */
  values(): Uint32Array {
    const out = new Uint32Array(this.#size);
    let k = 0;
    for (const v of this.#table) if (v !== 0) out[k++] = v;
    return out.sort();
  }

  #grow(): void {
    const old = this.#table;
    this.#table = new Uint32Array(old.length * 2);
    this.#size = 0;
    for (const v of old) if (v !== 0) this.add(v);
  }
}
