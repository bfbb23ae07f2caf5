/**
 * A log source without Docker: follows a file like `tail -F` (new lines as
 * they are written, and the new file after a rotation or truncation) and
 * appends its lines to the log stream as one pseudo-container named
 * `file:<basename>`. Lines join into multi-line events as in collect (a stack
 * trace is one entry; `multiline.ts`). The read offset after the last line of
 * the last event written is checkpointed atomically with each append, so a
 * restart resumes where it stopped (an event still open is read again):
 * nothing lost, nothing twice.
 *
 * @module
 */

import { keyBeside } from "../../ports/log_shards.ts";
import { basename } from "node:path";
import { decodeLine, type LogEntry, packEntries } from "../../ports/log_entry.ts";
import type { LogStream } from "../../ports/log_stream.ts";
import type { Logger } from "../../runtime/logger.ts";
import { sleep } from "../../runtime/sleep.ts";
import {
  type MultilineEvent,
  MultilineGrouper,
  type MultilineMode,
  parseMultilineMode,
} from "../multiline.ts";

/** Options of {@linkcode followFile}. */
export interface FollowFileOptions {
  /** The log stream's name. */
  stream: string;
  /**
   * The pseudo-container's name.
   * @default `file:<basename>`
   */
  containerName?: string;
  /**
   * How often the file is checked for new data, in ms.
   * @default 250
   */
  pollMs?: number;
  /**
   * Longer lines are cut and marked truncated.
   * @default 1 MiB
   */
  maxLineBytes?: number;
  /**
   * Lines per append.
   * @default 1000
   */
  batchLines?: number;
  /**
   * Approximate MAXLEN of the stream; 0 keeps all.
   * @default 0
   */
  maxLen?: number;
  /**
   * How lines join into events: `auto`, `off` or a regular expression
   * matching an event's first line.
   * @default "auto"
   */
  multiline?: string | MultilineMode;
  /**
   * Longest wait of an open event for its next line, in ms.
   * @default 1000
   */
  multilineFlushMs?: number;
  /**
   * Most lines in one event.
   * @default 500
   */
  multilineMaxLines?: number;
  /**
   * Most bytes in one event.
   * @default 131072
   */
  multilineMaxBytes?: number;
  /** Stops following. */
  signal: AbortSignal;
  /** Where problems are reported. */
  log?: Logger;
}

/**
 * Follows a file into the log stream until `signal` aborts.
 *
 * @param path the file
 * @param stream the log stream port
 * @param options stream name, pseudo-container name, polling, limits, signal
 * @returns how many lines were appended
 */
export async function followFile(
  path: string,
  stream: LogStream,
  options: FollowFileOptions,
): Promise<number> {
  const name = options.containerName ?? `file:${basename(path)}`;
  const pollMs = options.pollMs ?? 250;
  const maxLine = options.maxLineBytes ?? 1024 * 1024;
  const batchLines = options.batchLines ?? 1000;
  // Beside the stream: in its Redis Cluster slot when it is a hash-tagged shard.
  const ckptKey = keyBeside(options.stream, "tailwise:file:ckpt:", name);
  const containerId = `file-${_hash(path)}`;
  const saved = await stream.getState(ckptKey);
  // `offset` is the file position of the first byte not yet split into lines;
  // `pending` holds the bytes from there that wait for their line end. Lines
  // wait in the grouper until their event is complete; the
  // checkpoint is the position after the last line of the last event appended.
  let [inode, offset] = saved ? _parseCheckpoint(saved) : [0, 0];
  let pending = new Uint8Array(0);
  let lastTs = "";
  let seq = 0;
  let appended = 0;
  let warned = false;
  let discarding = false; // inside the rest of a line already appended truncated
  let entries: LogEntry[] = [];
  let ckptInode = inode;
  let ckptOffset = offset;
  const mode = typeof options.multiline === "object"
    ? options.multiline
    : parseMultilineMode(options.multiline);
  const grouper = new MultilineGrouper<_FileLine>((e) => {
    entries.push(_eventEntry(e, containerId, name));
    const last = e.positions[e.positions.length - 1]!;
    ckptInode = last.inode;
    ckptOffset = last.end;
  }, {
    mode,
    flushMs: options.multilineFlushMs,
    maxLines: options.multilineMaxLines,
    maxBytes: options.multilineMaxBytes,
  });
  const flush = async () => {
    if (entries.length === 0) return;
    await stream.append(options.stream, packEntries(entries), {
      maxLen: options.maxLen ?? 0,
      state: { [ckptKey]: `${ckptInode} ${ckptOffset}` },
    });
    appended += entries.length;
    entries = [];
  };
  const line = (bytes: Uint8Array, end: number, truncated: boolean): void => {
    const ts = new Date().toISOString();
    seq = ts === lastTs ? seq + 1 : 0;
    lastTs = ts;
    const decoded = decodeLine(bytes);
    grouper.push(decoded.line, { ts, seq, inode, end, truncated, raw: decoded.raw }, {
      bytes: bytes.length,
      now: Date.now(),
    });
  };
  while (!options.signal.aborted) {
    grouper.flushDue(Date.now());
    await flush();
    let info: Deno.FileInfo | null = null;
    try {
      info = await Deno.stat(path);
      warned = false;
    } catch (e) {
      if (!warned) {
        options.log?.warn("cannot read the followed file; waiting for it", { path, error: e });
        warned = true;
      }
    }
    const readPos = offset + pending.length;
    if (info && ((info.ino ?? 0) !== inode || info.size < readPos)) {
      // Rotated or truncated: the old file's last event is complete; read the
      // new file from its beginning.
      if (inode !== 0) options.log?.info("file rotated or truncated; reading it anew", { path });
      grouper.flush();
      await flush();
      inode = info.ino ?? 0;
      offset = 0;
      pending = new Uint8Array(0);
      continue;
    }
    if (!info || info.size === readPos) {
      const due = grouper.deadline;
      await sleep(
        due === undefined ? pollMs : Math.max(1, Math.min(pollMs, due - Date.now())),
        options.signal,
      );
      continue;
    }
    const chunk = await _readFrom(path, readPos, Math.min(info.size - readPos, 8 << 20));
    let data = _concat(pending, chunk);
    if (discarding) {
      const nl = data.indexOf(10);
      const skip = nl === -1 ? data.length : nl + 1;
      offset += skip;
      data = data.subarray(skip);
      discarding = nl === -1;
    }
    let start = 0;
    for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, start)) {
      const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
      line(
        data.subarray(start, Math.min(end, start + maxLine)),
        offset + nl + 1,
        end - start > maxLine,
      );
      start = nl + 1;
      if (entries.length >= batchLines) await flush();
    }
    if (data.length - start > maxLine) {
      // A line over the cap with no end yet: hand on its head, marked, and
      // skip the rest up to its end, so memory stays bounded.
      line(data.subarray(start, start + maxLine), offset + data.length, true);
      start = data.length;
      discarding = true;
    }
    await flush();
    offset += start;
    pending = data.slice(start);
  }
  return appended;
}

/** One line of the file, held in its event until the event is appended. */
interface _FileLine {
  ts: string;
  seq: number;
  inode: number;
  /** File position after the line (and its `\n`). */
  end: number;
  truncated: boolean;
  raw: Uint8Array | undefined;
}

function _eventEntry(e: MultilineEvent<_FileLine>, containerId: string, name: string): LogEntry {
  const first = e.positions[0]!;
  const entry: LogEntry = {
    containerId,
    containerName: name,
    image: "file",
    stream: "stdout",
    ts: first.ts,
    seq: first.seq,
    line: e.text,
  };
  if (e.positions.some((l) => l.raw !== undefined)) {
    const encoder = new TextEncoder();
    const parts = e.positions.map((l, i) => l.raw ?? encoder.encode(e.lines[i]!));
    const raw = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + parts.length - 1);
    let at = 0;
    parts.forEach((p, i) => {
      if (i > 0) raw[at++] = 10;
      raw.set(p, at);
      at += p.length;
    });
    entry.raw = raw;
  }
  if (e.positions.some((l) => l.truncated)) entry.truncated = true;
  return entry;
}

function _parseCheckpoint(text: string): [number, number] {
  const [a, b] = text.split(" ");
  const inode = Number(a);
  const offset = Number(b);
  return Number.isFinite(inode) && Number.isFinite(offset) ? [inode, offset] : [0, 0];
}

async function _readFrom(path: string, offset: number, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

function _concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function _hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
