/**
 * The ingest handler: a batch of log stream messages becomes rows in the log
 * store, and each message's outcome is reported to the stream consumer.
 *
 * @module
 */

import { fieldsToEntry, type LogEntry } from "../../shared/ports/log_entry.ts";
import type { StreamMessage } from "../../shared/ports/log_stream.ts";
import type { LogStore } from "../../shared/ports/log_store.ts";
import type { BatchContext, BatchOutcome } from "../../shared/runtime/stream_consumer.ts";

/** What {@linkcode ingestBatch} needs. */
export interface IngestDeps {
  /** Where the entries are written. */
  store: LogStore;
}

/**
 * Decodes the messages into log entries and writes them to the store.
 * Messages whose fields are not a log entry, and entries the store refuses
 * for good, are rejected (dead-lettered by the consumer); the rest are done
 * once the store has them. When the store cannot be reached the write keeps
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
  const ids: string[] = [];
  for (const message of batch) {
    try {
      entries.push(fieldsToEntry(message.fields));
      ids.push(message.id);
    } catch (e) {
      rejected.set(message.id, e instanceof Error ? e : new Error(String(e)));
    }
  }
  const result = await deps.store.write(entries, { signal: context.signal });
  const done: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const refused = result.rejected.get(i);
    if (refused) rejected.set(ids[i]!, refused);
    else done.push(ids[i]!);
  }
  return { done, rejected };
}
