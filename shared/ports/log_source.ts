/**
 * The log source port: what a source (the Docker engine, a file followed
 * like `tail -F`, the demo) hands to the one source pipeline
 * (`shared/sources/pipeline.ts`), and what it gets back.
 *
 * A source reads bytes and knows where it is: a Docker timestamp and count,
 * a file's inode and offset. It hands on raw lines ({@linkcode SourceLine}:
 * bytes, stream, timestamp, and the position just after the line) to a
 * {@linkcode LineSink}, one per followed thing (a container, a file). The
 * pipeline does the rest, the same for every source: line assembly
 * (16 KiB reassembly of Docker records, truncation at the line cap),
 * multi-line events, the entry, the checkpoint (the position after an
 * event's last line, written atomically with the event) and the batched,
 * pipelined append. A source resumes from the checkpoint it reads back with
 * the log stream's `getState`.
 *
 * @module
 */

import type { LogEntry } from "./log_entry.ts";

/** The fields every entry of one followed thing carries. */
export type SourceMeta = Pick<
  LogEntry,
  "containerId" | "containerName" | "image" | "key" | "service" | "task" | "node"
>;

/** One line a source read, with where reading resumes after it. */
export interface SourceLine<P> {
  /** The stream the line came from. */
  stream: "stdout" | "stderr";
  /** Its timestamp (RFC 3339; the source's, or the time it was read). */
  ts: string;
  /** Its order among lines of the same timestamp, from 0. */
  seq: number;
  /** The line's bytes without its `\n` (a view, valid during the call only). */
  bytes: Uint8Array;
  /** True when the line was cut at the line cap. */
  truncated: boolean;
  /** The source's position just after this line (its checkpoint once its event is written). */
  position: P;
}

/** Where a source hands the lines of one followed thing. */
export interface LineSink<P> {
  /**
   * Hands on a line; its event goes to the log stream once complete.
   *
   * @param line the line and its position: a new object per line, which the
   *   sink may keep (all but `bytes`) until the line's event is written
   */
  line(line: SourceLine<P>): void;
  /** The source ended (nothing more can follow): the open event is complete. */
  end(): void;
  /** Drops the open event; its lines are read again from the last checkpoint. */
  discard(): void;
}
