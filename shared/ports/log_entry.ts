/**
 * The log entry: one line of one container, as collect appends it to the log
 * stream and ingest and score read it. This file owns its encoding into the
 * flat string fields of a stream message.
 *
 * Lines are kept byte-exact: a line that is valid UTF-8 travels as text in
 * `line`; a line that is not travels as base64 of its bytes in `raw`, with
 * `line` holding a lossy decoding (U+FFFD for bad bytes) for display and
 * scoring.
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
