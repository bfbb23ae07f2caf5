/**
 * A log source without Docker: follows a file like `tail -F` (new lines as
 * they are written, and the new file after a rotation or truncation) and
 * appends its lines to the log stream as one pseudo-container named
 * `file:<basename>`. The source only reads: its bytes go through the one
 * source pipeline (`../pipeline.ts`) as Docker's do: line assembly (CRLF
 * stripped, lines cut at the cap), multi-line events (a stack trace is one
 * entry), entries, and the read offset after the last line of the last
 * event written, checkpointed atomically with each batched append; so a
 * restart resumes where it stopped (an event still open is read again):
 * nothing lost, nothing twice.
 *
 * @module
 */

import { basename } from "node:path";
import { fnv1a32 } from "../../detector/detector.ts";
import type { LogStream } from "../../ports/log_stream.ts";
import { type Logger, silentLogger } from "../../runtime/logger.ts";
import { sleep } from "../../runtime/sleep.ts";
import { LineClock, SourcePipeline, type SourcePipelineOptions } from "../pipeline.ts";

/**
 * Options of {@linkcode followFile}: the source pipeline's (stream, MAXLEN,
 * line cap, batch sizes, multi-line grouping) and the file source's own.
 */
export interface FollowFileOptions
  extends Omit<SourcePipelineOptions, "onStoreLost" | "maxBackoffMs"> {
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
 * @returns how many entries were appended
 */
export async function followFile(
  path: string,
  stream: LogStream,
  options: FollowFileOptions,
): Promise<number> {
  const name = options.containerName ?? `file:${basename(path)}`;
  const pollMs = options.pollMs ?? 250;
  const log = options.log ?? silentLogger();
  let restart = false;
  const { containerName: _, pollMs: _p, signal: _s, log: _l, ...pipelineOptions } = options;
  const pipeline = new SourcePipeline(stream, log, {
    ...pipelineOptions,
    // What the stream lost is read again from the checkpoint it still has.
    onStoreLost: () => restart = true,
  });
  // Beside the stream: in its Redis Cluster slot when it is a hash-tagged shard.
  const ckptKey = pipeline.keyBeside(0, "tailwise:file:ckpt:", name);
  const sink = pipeline.channel<_FilePosition>({
    checkpointKey: ckptKey,
    meta: { containerId: `file-${_hex(fnv1a32(path))}`, containerName: name, image: "file" },
    checkpoint: (p) => `${p.inode} ${p.end}`,
    // The file is polled: an event's next line is seen only at a next poll.
    minQuietMs: 2 * pollMs + 50,
  });
  const clock = new LineClock();
  // `inode`: the file read; `base`: the file offset of the assembler's first
  // byte fed (so a line ends at `base + lineEnd` in the file).
  let inode = 0;
  let base = 0;
  const assembler = pipeline.assembler((_ts, bytes, truncated) => {
    sink.line({
      stream: "stdout",
      ...clock.stamp(),
      bytes,
      truncated,
      position: { inode, end: base + assembler.lineEnd },
    });
  }, { timestamps: false, stripCr: true, emitLongLines: true });
  // `readPos`: the file position of the next byte to read.
  let readPos = 0;
  const resume = async () => {
    [inode, readPos] = _parseCheckpoint(await stream.getState(ckptKey));
    base = readPos - assembler.fed;
  };
  let warned = false;
  try {
    await resume();
    while (!options.signal.aborted) {
      if (restart) {
        restart = false;
        sink.discard();
        assembler.discard();
        await resume();
      }
      if (pipeline.full) {
        sink.pause();
        await pipeline.whenRoom();
        sink.resume();
      }
      let info: Deno.FileInfo | null = null;
      try {
        info = await Deno.stat(path);
        warned = false;
      } catch (e) {
        if (!warned) {
          log.warn("cannot read the followed file; waiting for it", { path, error: e });
          warned = true;
        }
      }
      if (info && ((info.ino ?? 0) !== inode || info.size < readPos)) {
        // Rotated or truncated: the old file's last event is complete; read
        // the new file from its beginning.
        if (inode !== 0) log.info("file rotated or truncated; reading it anew", { path });
        sink.end();
        assembler.discard();
        inode = info.ino ?? 0;
        readPos = 0;
        base = -assembler.fed;
        continue;
      }
      if (!info || info.size === readPos) {
        const due = sink.deadline;
        await sleep(
          due === undefined ? pollMs : Math.max(1, Math.min(pollMs, due - Date.now())),
          options.signal,
        );
        continue;
      }
      const chunk = await _readFrom(path, readPos, Math.min(info.size - readPos, 8 << 20));
      sink.touch();
      // One UTF-8 decode for all the lines of this read.
      sink.batch(() => assembler.push(chunk));
      readPos += chunk.length;
    }
  } finally {
    // An event still open is read again from the checkpoint at the next start.
    sink.discard();
    await pipeline.close(10_000);
  }
  return pipeline.written;
}

/** Where a line of the file ends: the file and the offset after its `\n`. */
interface _FilePosition {
  inode: number;
  end: number;
}

function _parseCheckpoint(text: string | null): [number, number] {
  if (!text) return [0, 0];
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

function _hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
