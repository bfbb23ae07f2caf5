/**
 * Base64 for raw log bytes (lines that are not valid UTF-8 travel and rest as
 * base64 in the stream, InfluxDB and the embedded history).
 *
 * @module
 */

/**
 * Encodes bytes as base64.
 *
 * @param bytes any bytes (large ones are converted in chunks)
 * @returns the base64 text
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/**
 * Decodes base64 into bytes.
 *
 * @param text base64 text
 * @returns the bytes
 * @throws {DOMException} when the text is not base64
 */
export function base64ToBytes(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
