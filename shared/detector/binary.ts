/**
 * Little-endian byte writer and reader for the model blob: unsigned varints,
 * floats, strings and typed arrays.
 *
 * @module
 */

import { ModelFormatError } from "./model_format_error.ts";

const _encoder = new TextEncoder();
const _decoder = new TextDecoder("utf-8", { fatal: false });

/** Appends values to a growing buffer. */
export class ByteWriter {
  #buf = new Uint8Array(1024);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Write one byte. @param v 0..255 */
  u8(v: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = v & 0xff;
  }

  /** Write an unsigned 32-bit integer. @param v The value. */
  u32(v: number): void {
    this.#ensure(4);
    this.#view.setUint32(this.#pos, v >>> 0, true);
    this.#pos += 4;
  }

  /** Write an unsigned LEB128 varint. @param v A non-negative safe integer. */
  varint(v: number): void {
    this.#ensure(10);
    let n = v;
    while (n >= 0x80) {
      this.#buf[this.#pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#pos++] = n;
  }

  /** Write a 64-bit float. @param v The value. */
  f64(v: number): void {
    this.#ensure(8);
    this.#view.setFloat64(this.#pos, v, true);
    this.#pos += 8;
  }

  /** Write a 32-bit float. @param v The value. */
  f32(v: number): void {
    this.#ensure(4);
    this.#view.setFloat32(this.#pos, v, true);
    this.#pos += 4;
  }

  /** Write a UTF-8 string with its byte length. @param s The string. */
  str(s: string): void {
    const bytes = _encoder.encode(s);
    this.varint(bytes.length);
    this.bytes(bytes);
  }

  /** Write raw bytes (no length). @param b The bytes. */
  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  /** The bytes written so far (a copy). @returns The buffer. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

/** Reads values written by {@linkcode ByteWriter}; throws ModelFormatError past the end. */
export class ByteReader {
  #buf: Uint8Array;
  #view: DataView;
  #pos: number;
  #end: number;

  /**
   * @param buf The bytes.
   * @param start First offset to read.
   * @param end Offset past the last byte to read.
   */
  constructor(buf: Uint8Array, start: number, end: number) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = start;
    this.#end = end;
  }

  /** Current offset. */
  get pos(): number {
    return this.#pos;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#end) {
      throw new ModelFormatError(
        `Cannot read model: truncated at byte ${this.#pos}, expected ${n} more`,
      );
    }
  }

  /** @returns One byte. */
  u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++]!;
  }

  /** @returns An unsigned 32-bit integer. */
  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return v;
  }

  /** @returns An unsigned varint. */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new ModelFormatError(`Cannot read model: varint too long at byte ${this.#pos}`);
  }

  /** @returns A 64-bit float. */
  f64(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.#pos, true);
    this.#pos += 8;
    return v;
  }

  /** @returns A 32-bit float. */
  f32(): number {
    this.#need(4);
    const v = this.#view.getFloat32(this.#pos, true);
    this.#pos += 4;
    return v;
  }

  /** @returns A UTF-8 string. */
  str(): string {
    const n = this.varint();
    this.#need(n);
    const buf = this.#buf;
    const start = this.#pos;
    this.#pos += n;
    // Short ASCII strings (template text, leaf keys) are built here: the
    // decoder's call costs more than the bytes for them.
    if (n <= 64) {
      let s = "";
      for (let i = start; i < start + n; i++) {
        const c = buf[i]!;
        if (c >= 0x80) return _decoder.decode(buf.subarray(start, start + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return _decoder.decode(buf.subarray(start, start + n));
  }

  /**
   * @param n Number of bytes.
   * @returns A view of the next n bytes (not a copy).
   */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const b = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }

  /**
   * @param n Number of floats.
   * @returns A new Float32Array with the next n floats.
   */
  f32Array(n: number): Float32Array {
    const b = this.bytes(n * 4);
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(b);
    return out;
  }
}
