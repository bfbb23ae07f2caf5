/**
 * A log source without Docker: follows a file like `tail -F` (new lines as
 * they are written, and the new file after a rotation or truncation) and
 * appends its lines to the log stream as one pseudo-container named
 * `file:<basename>`. The read offset is checkpointed atomically with each
 * append, so a restart resumes where it stopped: nothing lost, nothing twice.
 *
 * @module
 */

import { basename } from "node:path";
import { decodeLine, type LogEntry, packEntries } from "../../ports/log_entry.ts";
import type { LogStream } from "../../ports/log_stream.ts";
import type { Logger } from "../../runtime/logger.ts";
import { sleep } from "../../runtime/sleep.ts";

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
  const ckptKey = `tailwise:file:ckpt:${name}`;
  const containerId = `file-${_hash(path)}`;
  const saved = await stream.getState(ckptKey);
  // `offset` is the file position of the first byte not yet appended; `pending`
  // holds the bytes from there that wait for their line end.
  let [inode, offset] = saved ? _parseCheckpoint(saved) : [0, 0];
  let pending = new Uint8Array(0);
  let lastTs = "";
  let seq = 0;
  let appended = 0;
  let warned = false;
  let discarding = false; // inside the rest of a line already appended truncated
  while (!options.signal.aborted) {
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
      // Rotated or truncated: read the new file from its beginning.
      if (inode !== 0) options.log?.info("file rotated or truncated; reading it anew", { path });
      inode = info.ino ?? 0;
      offset = 0;
      pending = new Uint8Array(0);
      continue;
    }
    if (!info || info.size === readPos) {
      await sleep(pollMs, options.signal);
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
    let entries: LogEntry[] = [];
    let start = 0;
    const flush = async (upTo: number) => {
      await stream.append(options.stream, packEntries(entries), {
        maxLen: options.maxLen ?? 0,
        state: { [ckptKey]: `${inode} ${offset + upTo}` },
      });
      appended += entries.length;
      entries = [];
    };
    const entry = (bytes: Uint8Array, truncated: boolean): LogEntry => {
      const ts = new Date().toISOString();
      seq = ts === lastTs ? seq + 1 : 0;
      lastTs = ts;
      const e: LogEntry = {
        containerId,
        containerName: name,
        image: "file",
        stream: "stdout",
        ts,
        seq,
        ...decodeLine(bytes),
      };
      if (truncated) e.truncated = true;
      return e;
    };
    for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, start)) {
      const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
      entries.push(
        entry(data.subarray(start, Math.min(end, start + maxLine)), end - start > maxLine),
      );
      start = nl + 1;
      if (entries.length >= batchLines) await flush(start);
    }
    if (data.length - start > maxLine) {
      // A line over the cap with no end yet: append its head, marked, and skip
      // the rest up to its end, so memory stays bounded.
      entries.push(entry(data.subarray(start, start + maxLine), true));
      start = data.length;
      discarding = true;
    }
    if (entries.length > 0) await flush(start);
    offset += start;
    pending = data.slice(start);
  }
  return appended;
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
