/**
 * The log entry: one line of one container, as collect appends it to the log
 * stream and ingest and score read it. This file owns its encoding into the
 * flat string fields of a stream message, for every adapter of the log
 * stream port.
 *
 * Two message formats:
 *
 * - **packed** (`v` = `2`, what writers append): one message carries up to
 *   {@linkcode MAX_PACKED_LINES} lines of one container. The container's
 *   metadata is written once per message (`c`, `n`, `k`, `i`, `sv`, `tk`, `nd`)
 *   and the lines in `p`, a JSON array of four values per line: `ts`, `seq`,
 *   stream (0 stdout, 1 stderr), line; `m` is the number of lines (so they
 *   are counted without decoding `p`). Rare per-line extras are sparse: `r`
 *   a JSON object from line index to base64 bytes, `x` the indexes of
 *   truncated lines, comma-separated. A line's stable id is
 *   `<message id>#<index>` ({@linkcode lineId}).
 * - **single** (no `v`; today's older writers): one line per message, every
 *   field on every message. Still read, so an upgrade with entries in flight
 *   loses nothing; its line id is the message id.
 *
 * Lines are kept byte-exact: a line that is valid UTF-8 travels as text in
 * `line`; a line that is not travels as base64 of its bytes in `raw`, with
 * `line` holding a lossy decoding (U+FFFD for bad bytes) for display and
 * scoring.
 *
 * @example
 * ```ts
 * const messages = packEntries(entries); // append these
 * for (const { id, entry } of unpackMessage(message.id, message.fields)) use(id, entry);
 * ```
 *
 * @module
 */

import { base64ToBytes, bytesToBase64 } from "../runtime/base64.ts";

/** Which output a line came from. */
export type StreamName = "stdout" | "stderr";

/** One log line of one container. */
export interface LogEntry {
  /** Full container id. */
  containerId: string;
  /** Container name without the leading slash. */
  containerName: string;
  /**
   * The service key its model and history belong to (see `serviceKey`),
   * when it differs from the container name. Entries without it (older ones
   * too) belong to their container name; read it through {@linkcode modelKey}.
   */
  key?: string;
  /** Image the container runs. */
  image: string;
  /** Swarm service name, when the container is a Swarm task. */
  service?: string;
  /** Swarm task id. */
  task?: string;
  /** Swarm node id. */
  node?: string;
  /** stdout or stderr (TTY containers only have stdout). */
  stream: StreamName;
  /** Docker's timestamp, RFC 3339 with nanoseconds. */
  ts: string;
  /** 0-based index of this line among the container's lines with the same `ts`. */
  seq: number;
  /** The line as text, without its line ending. */
  line: string;
  /** The original bytes, when they are not valid UTF-8. */
  raw?: Uint8Array;
  /** True when the line was cut at the configured maximum size. */
  truncated?: boolean;
}

/** A stream message's fields. */
export type Fields = Record<string, string>;

const _decoder = new TextDecoder("utf-8", { fatal: true });
const _lossy = new TextDecoder("utf-8");

/**
 * Builds the `line` and `raw` fields of an entry from the bytes of a line.
 *
 * @param bytes the line without its line ending
 * @returns the text, and the bytes when they are not valid UTF-8
 */
export function decodeLine(bytes: Uint8Array): { line: string; raw?: Uint8Array } {
  try {
    return { line: _decoder.decode(bytes) };
  } catch {
    return { line: _lossy.decode(bytes), raw: bytes.slice() };
  }
}

/**
 * The exact bytes of an entry's line.
 *
 * @param entry a log entry
 * @returns its bytes
 */
export function lineBytes(entry: Pick<LogEntry, "line" | "raw">): Uint8Array {
  return entry.raw ?? new TextEncoder().encode(entry.line);
}

/**
 * Encodes an entry as stream message fields (short names keep Redis lean).
 *
 * @param entry the entry
 * @returns its fields
 */
export function entryToFields(entry: LogEntry): Fields {
  const f: Fields = {
    c: entry.containerId,
    n: entry.containerName,
    i: entry.image,
    s: entry.stream,
    t: entry.ts,
    q: String(entry.seq),
    l: entry.line,
  };
  if (entry.key && entry.key !== entry.containerName) f.k = entry.key;
  if (entry.service) f.sv = entry.service;
  if (entry.task) f.tk = entry.task;
  if (entry.node) f.nd = entry.node;
  if (entry.raw) f.r = bytesToBase64(entry.raw);
  if (entry.truncated) f.x = "1";
  return f;
}

/** The value of field `v` of a packed message. */
export const PACKED_VERSION = "2";

/** Most lines {@linkcode packEntries} puts in one message. */
export const MAX_PACKED_LINES = 128;

/** About the most line bytes {@linkcode packEntries} puts in one message (a longer line goes alone). */
export const MAX_PACKED_BYTES = 256 * 1024;

/**
 * Packs entries into messages, one container (and version of its metadata)
 * per message (a change of metadata starts a new message), at most {@linkcode MAX_PACKED_LINES} lines and about
 * {@linkcode MAX_PACKED_BYTES} of line text each. Each container's lines keep
 * their order; messages of different containers may interleave differently
 * than the entries did (the stream orders lines per container only).
 *
 * @param entries the entries, in order
 * @returns the stream messages' fields
 */
export function packEntries(entries: readonly LogEntry[]): Fields[] {
  const out: Fields[] = [];
  const open = new Map<string, _Pack>();
  for (const e of entries) {
    let pack = open.get(e.containerId);
    const size = e.line.length;
    if (
      pack !== undefined &&
      (pack.count >= MAX_PACKED_LINES || pack.bytes + size > MAX_PACKED_BYTES ||
        !_sameMeta(pack.fields, e))
    ) {
      _seal(pack);
      pack = undefined;
    }
    if (pack === undefined) {
      const fields: Fields = {
        v: PACKED_VERSION,
        c: e.containerId,
        n: e.containerName,
        i: e.image,
      };
      if (e.key && e.key !== e.containerName) fields.k = e.key;
      if (e.service) fields.sv = e.service;
      if (e.task) fields.tk = e.task;
      if (e.node) fields.nd = e.node;
      pack = { fields, p: [], raw: null, truncated: null, count: 0, bytes: 0 };
      open.set(e.containerId, pack);
      // The message's place in the output is where its first line was.
      out.push(fields);
    }
    pack.p.push(e.ts, e.seq, e.stream === "stderr" ? 1 : 0, e.line);
    if (e.raw !== undefined) (pack.raw ??= {})[pack.count] = bytesToBase64(e.raw);
    if (e.truncated) (pack.truncated ??= []).push(pack.count);
    pack.count++;
    pack.bytes += size;
  }
  for (const pack of open.values()) _seal(pack);
  return out;
}

function _sameMeta(f: Fields, e: LogEntry): boolean {
  const key = e.key && e.key !== e.containerName ? e.key : undefined;
  return f.n === e.containerName && f.i === e.image && f.k === key &&
    f.sv === (e.service || undefined) &&
    f.tk === (e.task || undefined) && f.nd === (e.node || undefined);
}

interface _Pack {
  fields: Fields;
  p: (string | number)[];
  raw: Record<number, string> | null;
  truncated: number[] | null;
  count: number;
  bytes: number;
}

function _seal(pack: _Pack): void {
  if (pack.fields.p !== undefined) return;
  pack.fields.p = JSON.stringify(pack.p);
  pack.fields.m = String(pack.count);
  if (pack.raw !== null) pack.fields.r = JSON.stringify(pack.raw);
  if (pack.truncated !== null) pack.fields.x = pack.truncated.join(",");
}

/**
 * How many messages to read for about `lines` lines: a full packed message
 * holds {@linkcode MAX_PACKED_LINES}; at low rates messages hold fewer and a
 * read brings fewer lines, which is what a low rate needs anyway.
 *
 * @param lines lines wanted per read
 * @returns messages per read, at least 1
 */
export function messagesForLines(lines: number): number {
  return Math.max(1, Math.ceil(lines / MAX_PACKED_LINES));
}

/**
 * The stable id of one line of a message: `<messageId>#<index>` for a packed
 * message, the message id itself for a single-line one (as before packing,
 * so keys derived from it survive an upgrade).
 *
 * @param messageId the stream's id of the message
 * @param index the line's index in the message
 * @param packed whether the message is packed
 * @returns the line's id
 */
export function lineId(messageId: string, index: number, packed: boolean): string {
  return packed ? `${messageId}#${index}` : messageId;
}

/**
 * Whether a message's fields are of the packed format.
 *
 * @param fields the message fields
 * @returns true for a packed message
 */
export function isPacked(fields: Fields): boolean {
  return fields.v === PACKED_VERSION;
}

/**
 * How many lines a message carries: its `m` field, written by every packer
 * since the field was added, so counting decodes nothing; a packed message
 * without it is decoded. Unknown formats count as one.
 *
 * @param fields the message fields
 * @returns the number of lines
 */
export function messageLineCount(fields: Fields): number {
  if (!isPacked(fields) || typeof fields.p !== "string") return 1;
  // Written by packers since the line count field was added; older packed
  // messages are counted by decoding them.
  const m = fields.m;
  if (m !== undefined && /^[1-9][0-9]{0,5}$/.test(m)) return Number(m);
  try {
    return Math.floor((JSON.parse(fields.p) as unknown[]).length / 4);
  } catch {
    return 1;
  }
}

/**
 * Decodes a message of either format into its lines.
 *
 * @param fields the message fields
 * @returns the entries, in order
 * @throws {InvalidEntryError} when the fields are not a log message
 */
export function unpackEntries(fields: Fields): LogEntry[] {
  if (fields.v === undefined) return [fieldsToEntry(fields)];
  if (fields.v !== PACKED_VERSION) {
    throw new InvalidEntryError(
      `Cannot decode log message: version ${
        JSON.stringify(fields.v)
      }; expected ${PACKED_VERSION} or none`,
    );
  }
  const c = fields.c, n = fields.n;
  if (typeof c !== "string" || typeof n !== "string" || typeof fields.p !== "string") {
    throw new InvalidEntryError(
      "Cannot decode packed log message: missing field(s) c, n or p; expected all three",
    );
  }
  let p: unknown;
  try {
    p = JSON.parse(fields.p);
  } catch (e) {
    throw new InvalidEntryError(`Cannot decode packed log message: p is not JSON (${e})`);
  }
  if (!Array.isArray(p) || p.length % 4 !== 0) {
    throw new InvalidEntryError(
      "Cannot decode packed log message: p is not an array of 4 values per line",
    );
  }
  const image = fields.i ?? "";
  const key = fields.k, service = fields.sv, task = fields.tk, node = fields.nd;
  let raw: Record<string, unknown> | null = null;
  if (fields.r !== undefined) {
    try {
      raw = JSON.parse(fields.r) as Record<string, unknown>;
    } catch (e) {
      throw new InvalidEntryError(`Cannot decode packed log message: r is not JSON (${e})`);
    }
  }
  const count = p.length / 4;
  const truncated = new Set<number>();
  if (fields.x) { for (const t of fields.x.split(",")) truncated.add(Number(t)); }
  const out: LogEntry[] = new Array(count);
  for (let k = 0, j = 0; k < count; k++, j += 4) {
    const ts = p[j], seq = p[j + 1], s = p[j + 2], line = p[j + 3];
    if (
      typeof ts !== "string" || typeof line !== "string" || typeof seq !== "number" ||
      !Number.isInteger(seq) || seq < 0 || (s !== 0 && s !== 1)
    ) {
      throw new InvalidEntryError(
        `Cannot decode packed log message: line ${k} is ${
          JSON.stringify(p.slice(j, j + 4)).slice(0, 200)
        }; expected [ts, seq >= 0, 0|1, line]`,
      );
    }
    const entry: LogEntry = {
      containerId: c,
      containerName: n,
      image,
      stream: s === 1 ? "stderr" : "stdout",
      ts,
      seq,
      line,
    };
    if (key) entry.key = key;
    if (service) entry.service = service;
    if (task) entry.task = task;
    if (node) entry.node = node;
    if (raw !== null) {
      const r = raw[k];
      if (typeof r === "string") entry.raw = base64ToBytes(r);
    }
    if (truncated.has(k)) entry.truncated = true;
    out[k] = entry;
  }
  return out;
}

/** One line of a message with its stable id. */
export interface MessageLine {
  /** See {@linkcode lineId}. */
  id: string;
  /** The line. */
  entry: LogEntry;
}

/**
 * Decodes a message of either format into its lines with their ids.
 *
 * @param messageId the stream's id of the message
 * @param fields its fields
 * @returns the lines, in order
 * @throws {InvalidEntryError} when the fields are not a log message
 */
export function unpackMessage(messageId: string, fields: Fields): MessageLine[] {
  const entries = unpackEntries(fields);
  const packed = isPacked(fields);
  return entries.map((entry, i) => ({ id: lineId(messageId, i, packed), entry }));
}

/** Thrown when stream fields do not form a log entry. */
export class InvalidEntryError extends Error {
  override name = "InvalidEntryError";
}

/**
 * Decodes stream message fields into an entry.
 *
 * @param fields the message fields
 * @returns the entry
 * @throws {InvalidEntryError} when a required field is missing or malformed
 */
export function fieldsToEntry(fields: Fields): LogEntry {
  const missing = ["c", "n", "s", "t", "q", "l"].filter((k) => typeof fields[k] !== "string");
  if (missing.length > 0) {
    throw new InvalidEntryError(
      `Cannot decode log entry: missing field(s) ${missing.join(", ")}; expected c, n, s, t, q, l`,
    );
  }
  const seq = Number(fields.q);
  if (!Number.isInteger(seq) || seq < 0) {
    throw new InvalidEntryError(
      `Cannot decode log entry: seq ${JSON.stringify(fields.q)} is not a non-negative integer`,
    );
  }
  if (fields.s !== "stdout" && fields.s !== "stderr") {
    throw new InvalidEntryError(
      `Cannot decode log entry: stream ${JSON.stringify(fields.s)}; expected stdout or stderr`,
    );
  }
  const entry: LogEntry = {
    containerId: fields.c!,
    containerName: fields.n!,
    image: fields.i ?? "",
    stream: fields.s,
    ts: fields.t!,
    seq,
    line: fields.l!,
  };
  if (fields.k) entry.key = fields.k;
  if (fields.sv) entry.service = fields.sv;
  if (fields.tk) entry.task = fields.tk;
  if (fields.nd) entry.node = fields.nd;
  if (fields.r) entry.raw = base64ToBytes(fields.r);
  if (fields.x === "1") entry.truncated = true;
  return entry;
}

/**
 * Nanoseconds since the epoch of an RFC 3339 timestamp with up to nine
 * fractional digits, as Docker writes them.
 *
 * @param ts the timestamp, e.g. `2026-11-24T12:00:00.123456789Z`
 * @returns nanoseconds since 1970-01-01
 * @throws {RangeError} when the timestamp cannot be parsed
 */
export function tsToNanos(ts: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) {
    throw new RangeError(`Cannot parse timestamp ${JSON.stringify(ts)}: expected RFC 3339`);
  }
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) {
    throw new RangeError(`Cannot parse timestamp ${JSON.stringify(ts)}: expected RFC 3339`);
  }
  const frac = BigInt((m[2] ?? "").padEnd(9, "0"));
  return BigInt(seconds) * 1_000_000n + frac;
}

/**
 * The key one model is learned for: the entry's service key (Swarm service,
 * Compose project and service, `tailwise.model` label; see `serviceKey`),
 * else its container name. History, registry, feedback and thresholds are
 * keyed by it. An entry written before service keys existed has none and
 * keeps its container name.
 *
 * @example
 * ```ts
 * modelKey({ containerName: "shop_web.1.x0a", key: "shop_web" }); // "shop_web"
 * modelKey({ containerName: "redis" }); // "redis"
 * ```
 *
 * @param entry a log entry
 * @returns the model key
 */
export function modelKey(entry: Pick<LogEntry, "containerName" | "key">): string {
  return entry.key || entry.containerName;
}
