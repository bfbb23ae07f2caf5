/**
 * The ingest handler: a batch of log stream messages becomes rows in the log
 * store, and each message's outcome is reported to the stream consumer.
 *
 * @module
 */

import { type LogEntry, unpackEntries } from "../../shared/ports/log_entry.ts";
import type { StreamMessage } from "../../shared/ports/log_stream.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import type { BatchContext, BatchOutcome } from "../../shared/runtime/stream_consumer.ts";

/** What {@linkcode ingestBatch} needs. */
export interface IngestDeps {
  /** Where the entries are written. */
  store: LogStore;
}

/**
 * Decodes the messages (packed or single-line) into log entries and writes
 * them to the store. Messages whose fields are not log entries, and messages
 * with a line the store refuses for good, are rejected (dead-lettered by the
 * consumer, with the refused lines named); the rest are done once the store
 * has all their lines. When the store cannot be reached the write keeps
 * retrying until the signal fires; then this throws and nothing is acked.
 *
 * @param batch the stream messages
 * @param deps the log store
 * @param context the abort signal
 * @returns the outcome per message
 * @throws {Error} when the store fails as a whole (unreachable and aborted, or refusing the credentials)
 */
export async function ingestBatch(
  batch: readonly StreamMessage[],
  deps: IngestDeps,
  context: BatchContext,
): Promise<BatchOutcome> {
  const rejected = new Map<string, Error>();
  const entries: LogEntry[] = [];
  // Per message, the index of its first line in `entries` (a message carries one or more).
  const ids: string[] = [];
  const starts: number[] = [];
  for (const message of batch) {
    let lines: LogEntry[];
    try {
      lines = unpackEntries(message.fields);
    } catch (e) {
      rejected.set(message.id, e instanceof Error ? e : new Error(String(e)));
      continue;
    }
    ids.push(message.id);
    starts.push(entries.length);
    for (let i = 0; i < lines.length; i++) entries.push(lines[i]!);
  }
  const result = await deps.store.write(entries, { signal: context.signal });
  const done: string[] = [];
  for (let m = 0; m < ids.length; m++) {
    const from = starts[m]!;
    const to = m + 1 < starts.length ? starts[m + 1]! : entries.length;
    const refused: string[] = [];
    let first: Error | undefined;
    if (result.rejected.size > 0) {
      for (let i = from; i < to; i++) {
        const e = result.rejected.get(i);
        if (e === undefined) continue;
        first ??= e;
        refused.push(String(i - from));
      }
    }
    if (first === undefined) {
      done.push(ids[m]!);
    } else {
      // The message's other lines are written; a replay of it writes them again, harmlessly.
      const which = to - from > 1 ? ` (line(s) ${refused.join(", ")} of ${to - from})` : "";
      const error = new Error(`${first.message}${which}`, { cause: first });
      error.name = first.name;
      rejected.set(ids[m]!, error);
    }
  }
  return { done, rejected };
}
