/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zip and
 * PNG, for the model blob's checksum.
 *
 * @module
 */

const _TABLE: Uint32Array = _makeTable();

function _makeTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
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
  let c = 0xffffffff;
  for (let i = start; i < end; i++) {
    c = _TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}
