/**
 * A seeded pseudo-random number generator (sfc32 seeded through splitmix32),
 * so that training is deterministic for a given seed.
 *
 * @module
 */

/** A seeded source of uniform numbers. */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  nextInt(n: number): number;
}

/**
 * Create a deterministic PRNG from a 32-bit seed.
 *
 * @param seed Any finite number; only its low 32 bits matter.
 * @returns A PRNG whose sequence depends only on the seed.
 */
export function createPrng(seed: number): Prng {
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return { next, nextInt: (n: number): number => Math.floor(next() * n) };
}
