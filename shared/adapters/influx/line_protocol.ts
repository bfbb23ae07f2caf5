/**
 * Log entries as InfluxDB line protocol: the point schema of the log store,
 * its escaping, and the parts of long lines.
 *
 * Schema (measurement `logs` by default), one point per entry, or one per
 * part for a line longer than `maxFieldBytes`:
 *
 * - tags (bounded): `container` (name), `model` (the service key, only when it
 *   differs from the container name: points written before service keys, and
 *   of containers keyed by their name, have none), `node`, `service`, `stream`, and
 *   `slot` for the rare point that is not the first line at its timestamp or
 *   not the first part of its line (`<seq>` or `<seq>.<part>`);
 * - fields: `line` (the text) or `raw` (base64 of the bytes, when they are not
 *   valid UTF-8), `cid` (container id), `image`, `task`, `seq`, and
 *   `truncated` / `parts` / `part` when they apply;
 * - time: the entry's own timestamp in nanoseconds.
 *
 * A point's key (measurement, tags, time) is a function of the entry alone,
 * and distinct entries (container, stream, ts, seq) get distinct keys: a
 * replay writes the same points again (idempotent) and lines that share a
 * timestamp never overwrite each other.
 *
 * Escaping is our own: `Point` of @influxdata/influxdb-client builds an
 * object, a tag map and a sorted key list per point, measured at about a third
 * of the speed of this encoder on log lines (see docs/ingest.md). Its escaping
 * rules are the ones followed here.
 *
 * @module
 */

import type { LogEntry } from "../../ports/log_entry.ts";
import { bytesToBase64 } from "../../runtime/base64.ts";

/** Options of {@linkcode entryToLines}. */
export interface LineProtocolOptions {
  /**
   * Measurement name.
   * @default "logs"
   */
  measurement?: string;
  /**
   * Most bytes of one string field; longer lines are split into parts. InfluxDB
   * limits a string field to 64 KiB.
   * @default 64000
   */
  maxFieldBytes?: number;
  /**
   * Most bytes of one line stored; beyond it the line is cut and marked `truncated`.
   * @default 1048576
   */
  maxLineBytes?: number;
}

/** One entry as line protocol. */
export interface EncodedEntry {
  /** Its points, each a line of line protocol, joined by `\n`. */
  text: string;
  /** How many points (one per part). */
  points: number;
  /** Bytes of `text` as UTF-8. */
  bytes: number;
}

const _encoder = new TextEncoder();
const _NEEDS_TAG_ESCAPE = /[ ,=\\\n\r\t]/;
const _NON_ASCII = /[\u0080-\uffff]/;

/**
 * Escapes a tag value (or tag key, or measurement). Spaces, commas and `=`
 * are escaped with a backslash. Line protocol cannot carry a newline in a tag,
 * and InfluxDB 1.x and 2.x take any separator after a backslash as escaped
 * (so a tag cannot end with one): newlines, carriage returns and tabs become
 * the text `\n`, `\r`, `\t`, and a backslash the text `\u005c`. Query
 * conditions compare with {@linkcode storedTagValue}.
 *
 * @param value the raw value
 * @returns the escaped value
 */
export function escapeTag(value: string): string {
  if (!_NEEDS_TAG_ESCAPE.test(value)) return value;
  let out = "";
  for (const ch of value) {
    switch (ch) {
      case " ":
      case ",":
      case "=":
        out += "\\" + ch;
        break;
      case "\\":
        out += "\\u005c";
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\t":
        out += "\\t";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

/**
 * The value a tag ends up with in InfluxDB after {@linkcode escapeTag}: the
 * server unescapes only `\ `, `\,` and `\=`, so doubled backslashes and the
 * `\n`-style replacements stay as written. Query conditions on a tag compare
 * with this value.
 *
 * @param value the raw value
 * @returns the value as stored
 */
export function storedTagValue(value: string): string {
  return escapeTag(value).replace(/\\([ ,=])/g, "$1");
}

/**
 * Escapes a string field value and quotes it: `"` and `\` get a backslash;
 * everything else (newlines and tabs included) is carried as is.
 *
 * @param value the raw value
 * @returns the quoted value
 */
export function quoteField(value: string): string {
  // indexOf runs natively and most lines have few quotes: about 3x faster on
  // log lines than a regex test and replace (which ran for 3 in 4 lines).
  let q = value.indexOf('"');
  let b = value.indexOf("\\");
  if (q < 0 && b < 0) return '"' + value + '"';
  let out = '"';
  let from = 0;
  for (;;) {
    const at = q < 0 ? b : b < 0 ? q : q < b ? q : b;
    if (at < 0) break;
    out += value.slice(from, at) + "\\";
    from = at;
    if (at === q) q = value.indexOf('"', at + 1);
    else b = value.indexOf("\\", at + 1);
  }
  return out + value.slice(from) + '"';
}

/**
 * Nanoseconds since the epoch of a Docker timestamp, as decimal text.
 *
 * @param ts RFC 3339 with up to nine fractional digits
 * @returns the integer as text
 * @throws {RangeError} when the timestamp cannot be parsed or is outside InfluxDB's range
 */
export function tsToNanoText(ts: string): string {
  const digits = _fastTime(ts);
  if (digits < 0) return _slowNanos(ts);
  return _lastSeconds + ts.slice(20, 20 + digits).padEnd(9, "0");
}

/**
 * The fast path of {@linkcode tsToNanoText}, for the common
 * `YYYY-MM-DDTHH:MM:SS[.fffffffff]Z` after 1970, without building the text:
 * the number of fraction digits (at `ts[20]`), with the seconds in
 * `_lastSeconds`; -1 when the slow path applies.
 */
function _fastTime(ts: string): number {
  const dot = ts.length > 20 && ts.charCodeAt(19) === 46;
  if (ts.charCodeAt(ts.length - 1) !== 90 || !(dot || ts.length === 20)) return -1;
  const digits = dot ? ts.length - 21 : 0;
  if (digits > 9) return -1;
  for (let i = 20; i < 20 + digits; i++) {
    const c = ts.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  // Lines of a batch share their second: parse it once.
  if (_lastPrefix.length !== 19 || !ts.startsWith(_lastPrefix)) {
    const prefix = ts.slice(0, 19);
    const ms = Date.parse(prefix + "Z");
    if (!(ms >= 0 && ms < 9_223_372_036_000)) return -1;
    _lastPrefix = prefix;
    _lastSeconds = String(ms / 1000);
  }
  return digits;
}

let _lastPrefix = "";
let _lastSeconds = "";

const _MIN_NS = -9_223_372_036_854_775_806n;
const _MAX_NS = 9_223_372_036_854_775_806n;

function _slowNanos(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    throw new RangeError(`Cannot parse timestamp ${JSON.stringify(ts)}: expected RFC 3339`);
  }
  const ns = BigInt(ms) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
  if (ns < _MIN_NS || ns > _MAX_NS) {
    throw new RangeError(
      `Cannot store timestamp ${JSON.stringify(ts)}: expected a time from 1677 to 2262`,
    );
  }
  return String(ns);
}

/**
 * A growable byte buffer that {@linkcode LineProtocolEncoder.encodeTo} writes
 * line protocol into: the bytes of a write request, built in one pass and
 * reused between requests.
 */
export class LineProtocolBuffer {
  /** The bytes; `[0, length)` are written. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Bytes written. */
  length = 0;

  /** @param capacity initial size in bytes */
  constructor(capacity = 1 << 20) {
    this.bytes = new Uint8Array(capacity);
  }

  /**
   * Makes room for `n` more bytes.
   *
   * @param n bytes about to be written
   */
  reserve(n: number): void {
    const need = this.length + n;
    if (need <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /**
   * Appends an ASCII string (one byte per UTF-16 unit; the caller knows it is ASCII).
   *
   * @param text ASCII text
   */
  ascii(text: string): void {
    this.reserve(text.length);
    const b = this.bytes;
    let at = this.length;
    for (let i = 0; i < text.length; i++) b[at++] = text.charCodeAt(i);
    this.length = at;
  }

  /**
   * Appends bytes.
   *
   * @param bytes the bytes
   */
  append(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  /**
   * Appends a string as UTF-8.
   *
   * @param text any text (lone surrogates become U+FFFD, as TextEncoder writes them)
   */
  utf8(text: string): void {
    this.reserve(text.length * 3);
    this.length += _encoder.encodeInto(text, this.bytes.subarray(this.length)).written;
  }

  /**
   * Appends a string field value quoted and escaped as {@linkcode quoteField} does.
   *
   * @param value the raw value
   */
  quoted(value: string): void {
    this.reserve(value.length * 6 + 2);
    const b = this.bytes;
    let at = this.length;
    b[at++] = 34;
    if (value.indexOf('"') < 0 && value.indexOf("\\") < 0) {
      at += _encoder.encodeInto(value, b.subarray(at)).written;
    } else {
      // `"` and `\` never occur inside a multi-byte UTF-8 sequence: escape
      // the encoded bytes. A byte loop beat counting the escapes with indexOf
      // and shifting in place (0.25 against 0.39 us per bench line).
      if (_scratch.length < value.length * 3) _scratch = new Uint8Array(value.length * 3);
      const s = _scratch;
      const n = _encoder.encodeInto(value, s).written;
      for (let i = 0; i < n; i++) {
        const c = s[i]!;
        if (c === 34 || c === 92) b[at++] = 92;
        b[at++] = c;
      }
    }
    b[at++] = 34;
    this.length = at;
  }
}

let _scratch = new Uint8Array(64 * 1024);

/** What #parts gives for a short text line, without allocating (encodeTo reads only `raw` and `truncated`). */
const _SHORT = { raw: false, chunks: [] as string[], truncated: false };

/** Encodes log entries as line protocol, reusing state between entries. */
export class LineProtocolEncoder {
  #measurement: string;
  #maxFieldBytes: number;
  #maxLineBytes: number;
  #chunk: Uint8Array;

  /**
   * @param options measurement and size limits
   * @throws {RangeError} when a size limit is out of range
   */
  constructor(options: LineProtocolOptions = {}) {
    this.#measurement = options.measurement ?? "logs";
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(this.#measurement)) {
      throw new RangeError(
        `Cannot use measurement ${
          JSON.stringify(this.#measurement)
        }: expected 1 to 128 letters, digits or _ . : -`,
      );
    }
    this.#maxFieldBytes = options.maxFieldBytes ?? 64_000;
    this.#maxLineBytes = options.maxLineBytes ?? 1_048_576;
    if (!Number.isInteger(this.#maxFieldBytes) || this.#maxFieldBytes < 16) {
      throw new RangeError(
        `Cannot use maxFieldBytes ${this.#maxFieldBytes}: expected an integer of at least 16`,
      );
    }
    if (!Number.isInteger(this.#maxLineBytes) || this.#maxLineBytes < this.#maxFieldBytes) {
      throw new RangeError(
        `Cannot use maxLineBytes ${this.#maxLineBytes}: expected an integer of at least maxFieldBytes`,
      );
    }
    this.#chunk = new Uint8Array(this.#maxFieldBytes);
  }

  /**
   * The points of one entry.
   *
   * @param entry the entry
   * @returns its line protocol
   * @throws {RangeError} when its timestamp cannot be stored
   */
  encode(entry: LogEntry): EncodedEntry {
    const time = tsToNanoText(entry.ts);
    // The lines of a packed message share their metadata: escape it once.
    const m = this.#meta(entry);
    const tags = m.tags;
    const streamTag = entry.stream === "stdout" ? ",stream=stdout" : ",stream=stderr";
    const head = m.head + ",seq=" + entry.seq + "i";
    const slot0 = entry.seq === 0 ? "" : ",slot=" + entry.seq;

    const parts = this.#parts(entry);
    const truncated = entry.truncated || parts.truncated;
    const key = parts.raw ? "raw=" : "line=";
    const chunks = parts.chunks;
    if (chunks.length === 1) {
      let text = tags + slot0 + streamTag + " " + head + "," + key + quoteField(chunks[0]!);
      if (truncated) text += ",truncated=true";
      text += " " + time;
      return { text, points: 1, bytes: _utf8Length(text) };
    }
    let text = tags + slot0 + streamTag + " " + head + "," + key + quoteField(chunks[0]!) +
      ",parts=" + chunks.length + "i" + (truncated ? ",truncated=true" : "") + " " + time;
    for (let p = 1; p < chunks.length; p++) {
      text += "\n" + tags + ",slot=" + entry.seq + "." + p + streamTag + " " + key +
        quoteField(chunks[p]!) + ",part=" + p + "i " + time;
    }
    return { text, points: chunks.length, bytes: _utf8Length(text) };
  }

  /**
   * Appends the points of one entry to a buffer as UTF-8: the same bytes as
   * {@linkcode encode}'s text, without building strings (the lines of a
   * request are copied once, and their size is known exactly as written).
   *
   * @param entry the entry
   * @param out where the bytes go; nothing is written when this throws
   * @returns the number of points
   * @throws {RangeError} when its timestamp cannot be stored
   */
  encodeTo(entry: LogEntry, out: LineProtocolBuffer): number {
    const ts = entry.ts;
    const digits = _fastTime(ts);
    // Throws before anything is written.
    const slowTime = digits < 0 ? _slowNanos(ts) : "";
    const seconds = _lastSeconds;
    const m = this.#meta(entry);
    m.tagsBytes ??= _encoder.encode(m.tags);
    m.headBytes ??= _encoder.encode(m.head);
    const streamTag = entry.stream === "stdout" ? ",stream=stdout " : ",stream=stderr ";
    // A short text line is its own single part: no parts object to allocate.
    const parts = entry.raw || entry.line.length * 3 > this.#maxFieldBytes
      ? this.#parts(entry)
      : _SHORT;
    const truncated = entry.truncated || parts.truncated;
    const chunks = parts === _SHORT ? null : parts.chunks;
    const first = chunks === null ? entry.line : chunks[0]!;
    const count = chunks === null ? 1 : chunks.length;
    const seq = entry.seq === 0 ? "0" : String(entry.seq);
    // Pieces are written one by one: a concatenation would be flattened per line.
    out.append(m.tagsBytes);
    if (entry.seq !== 0) {
      out.ascii(",slot=");
      out.ascii(seq);
    }
    out.ascii(streamTag);
    out.append(m.headBytes);
    out.ascii(",seq=");
    out.ascii(seq);
    out.ascii(parts.raw ? "i,raw=" : "i,line=");
    out.quoted(first);
    if (count > 1) {
      out.ascii(",parts=");
      out.ascii(String(count));
      out.ascii("i");
    }
    if (truncated) out.ascii(",truncated=true");
    this.#time(out, ts, digits, seconds, slowTime);
    for (let p = 1; p < count; p++) {
      out.ascii("\n");
      out.append(m.tagsBytes);
      out.ascii(",slot=");
      out.ascii(seq);
      out.ascii(".");
      out.ascii(String(p));
      out.ascii(streamTag);
      out.ascii(parts.raw ? "raw=" : "line=");
      out.quoted(chunks![p]!);
      out.ascii(",part=");
      out.ascii(String(p));
      out.ascii("i");
      this.#time(out, ts, digits, seconds, slowTime);
    }
    return count;
  }

  /** Writes ` <time>`: the seconds and the fraction padded to 9 digits, or the slow path's text. */
  #time(out: LineProtocolBuffer, ts: string, digits: number, seconds: string, slow: string): void {
    out.ascii(" ");
    if (digits < 0) {
      out.ascii(slow);
      return;
    }
    out.ascii(seconds);
    out.reserve(9);
    const b = out.bytes;
    let at = out.length;
    for (let i = 20; i < 20 + digits; i++) b[at++] = ts.charCodeAt(i);
    for (let i = digits; i < 9; i++) b[at++] = 48;
    out.length = at;
  }

  #last: _Meta | null = null;

  /** The escaped tags and leading fields of an entry's container, from the last entry when equal. */
  #meta(entry: LogEntry): _Meta {
    const l = this.#last;
    if (
      l !== null && l.containerName === entry.containerName &&
      l.containerId === entry.containerId &&
      l.key === entry.key && l.node === entry.node && l.service === entry.service &&
      l.image === entry.image && l.task === entry.task
    ) {
      return l;
    }
    let tags = this.#measurement;
    if (entry.containerName) tags += ",container=" + escapeTag(entry.containerName);
    if (entry.key && entry.key !== entry.containerName) tags += ",model=" + escapeTag(entry.key);
    if (entry.node) tags += ",node=" + escapeTag(entry.node);
    if (entry.service) tags += ",service=" + escapeTag(entry.service);
    let head = "cid=" + quoteField(entry.containerId);
    if (entry.image) head += ",image=" + quoteField(entry.image);
    if (entry.task) head += ",task=" + quoteField(entry.task);
    return this.#last = {
      containerName: entry.containerName,
      containerId: entry.containerId,
      key: entry.key,
      node: entry.node,
      service: entry.service,
      image: entry.image,
      task: entry.task,
      tags,
      head,
      tagsBytes: null,
      headBytes: null,
    };
  }

  /** The line as field values of at most maxFieldBytes each. */
  #parts(entry: LogEntry): { raw: boolean; chunks: string[]; truncated: boolean } {
    const max = this.#maxFieldBytes;
    if (entry.raw) {
      let bytes = entry.raw;
      let truncated = false;
      if (bytes.length > this.#maxLineBytes) {
        bytes = bytes.subarray(0, this.#maxLineBytes);
        truncated = true;
      }
      // Base64 grows 3 bytes into 4 characters.
      const step = Math.floor(max / 4) * 3;
      const chunks: string[] = [];
      for (let i = 0; i < bytes.length || i === 0; i += step) {
        chunks.push(bytesToBase64(bytes.subarray(i, i + step)));
      }
      return { raw: true, chunks, truncated };
    }
    const line = entry.line;
    // Three UTF-8 bytes at most per UTF-16 unit: short lines need no measuring.
    if (line.length * 3 <= max) return { raw: false, chunks: [line], truncated: false };
    const chunks: string[] = [];
    let pos = 0;
    let total = 0;
    let truncated = false;
    while (pos < line.length) {
      const room = Math.min(max, this.#maxLineBytes - total);
      if (room <= 0) {
        truncated = true;
        break;
      }
      const view = room === max ? this.#chunk : this.#chunk.subarray(0, room);
      // encodeInto never splits a character; `read` counts UTF-16 units.
      const { read, written } = _encoder.encodeInto(line.slice(pos, pos + max), view);
      if (read === 0) {
        truncated = true;
        break;
      }
      chunks.push(line.slice(pos, pos + read));
      pos += read;
      total += written;
    }
    if (chunks.length === 0) chunks.push("");
    return { raw: false, chunks, truncated };
  }
}

interface _Meta {
  containerName: string;
  containerId: string;
  key: string | undefined;
  node: string | undefined;
  service: string | undefined;
  image: string;
  task: string | undefined;
  tags: string;
  head: string;
  /** `tags` and `head` as UTF-8, made on first use by encodeTo. */
  tagsBytes: Uint8Array | null;
  headBytes: Uint8Array | null;
}

function _utf8Length(text: string): number {
  if (!_NON_ASCII.test(text)) return text.length;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
