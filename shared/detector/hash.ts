/**
 * Small non-cryptographic hashes used by the detector: FNV-1a over strings
 * (token buckets, vocabulary) and a 64-bit content hash for template ids.
 *
 * @module
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * Hash a string with 32-bit FNV-1a over its UTF-16 code units.
 *
 * @param text The string to hash.
 * @param seed The starting state.
 * @default {seed} 0x811c9dc5 (the FNV offset basis)
 * @returns An unsigned 32-bit hash.
 */
export function fnv1a32(text: string, seed: number = FNV_OFFSET): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * A stable 64-bit content hash of a string as 16 lowercase hex digits, made of
 * two independent 32-bit FNV-1a passes. Used for template ids, so an id only
 * depends on the template text.
 *
 * @param text The string to hash.
 * @returns 16 hex digits.
 */
export function contentHash64(text: string): string {
  const a = fnv1a32(text);
  const b = fnv1a32(text, 0x9e3779b9 ^ a);
  return _hex8(a) + _hex8(b);
}

function _hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}
