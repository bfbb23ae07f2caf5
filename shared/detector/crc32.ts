/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zip and
 * PNG, for the model blob's checksum.
 *
 * @module
 */

// Slicing-by-4: four tables, four bytes per step (a model loads in
// milliseconds, and the checksum is a good part of it).
const _TABLE: Uint32Array = _makeTable();

function _makeTable(): Uint32Array {
  const table = new Uint32Array(1024);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 4; t++) {
      const prev = table[(t - 1) * 256 + n]!;
      table[t * 256 + n] = (table[prev & 0xff]! ^ (prev >>> 8)) >>> 0;
    }
  }
  return table;
}

/**
 * Compute the CRC-32 of a byte range.
 *
 * @param bytes The bytes to checksum.
 * @param start First byte offset (inclusive).
 * @param end Last byte offset (exclusive).
 * @default {start} 0
 * @default {end} bytes.length
 * @returns The unsigned 32-bit CRC.
 */
export function crc32(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
  const t = _TABLE;
  let c = 0xffffffff;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^
      t[c >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
