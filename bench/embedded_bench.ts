/**
 * Benchmark of the embedded adapters, with their defaults (fsync on): the
 * embedded log stream's append and read+ack rates, the embedded log store's
 * write rate, and the bytes each line takes on disk. Lines are realistic
 * access-log lines of a few containers, appended in batches as collect does.
 *
 * @module
 */

import { join } from "node:path";
import { EmbeddedLogStore } from "../shared/adapters/embedded/embedded_log_store.ts";
import { EmbeddedLogStream } from "../shared/adapters/embedded/embedded_log_stream.ts";
import { entryToFields, type LogEntry } from "../shared/ports/log_entry.ts";

/** Options of {@linkcode benchEmbedded}. */
export interface EmbeddedBenchOptions {
  /** Progress messages. */
  log: (msg: string) => void;
  /**
   * Lines per measurement.
   * @default 200000
   */
  lines?: number;
  /**
   * Lines per append, read and write call.
   * @default 500
   */
  batch?: number;
}

/**
 * Measures the embedded stream and store in a temp dir, removed afterwards.
 *
 * @param options progress log, lines and batch size
 * @returns lines per second of each operation and on-disk bytes per line
 */
export async function benchEmbedded(
  options: EmbeddedBenchOptions,
): Promise<Record<string, number>> {
  const n = options.lines ?? 200_000;
  const batch = options.batch ?? 500;
  const entries = _entries(n);
  const dir = await Deno.makeTempDir({ prefix: "tailwise-bench-" });
  try {
    const figures: Record<string, number> = { lines: n, batch };
    {
      await using stream = await EmbeddedLogStream.open(dir);
      await stream.createGroup("logs", "ingest");
      options.log(`stream: appending ${n} lines`);
      let t = performance.now();
      for (let i = 0; i < n; i += batch) {
        await stream.append("logs", entries.slice(i, i + batch).map(entryToFields), {
          state: { "collect:checkpoint": String(i) },
        });
      }
      figures.stream_append_lines_per_s = _rate(n, t);
      options.log("stream: reading and acking");
      t = performance.now();
      let read = 0;
      for (;;) {
        const got = await stream.readNew("logs", "ingest", "bench", { count: batch });
        if (got.length === 0) break;
        await stream.ack("logs", "ingest", got.map((m) => m.id));
        read += got.length;
      }
      figures.stream_read_ack_lines_per_s = _rate(read, t);
    }
    figures.stream_bytes_per_line = await _size(join(dir, "streams")) / n;
    let t = performance.now();
    {
      await using reopened = await EmbeddedLogStream.open(dir);
      figures.stream_reopen_ms = Math.round(performance.now() - t);
      t = performance.now();
      await reopened.compact();
      figures.stream_compact_ms = Math.round(performance.now() - t);
    }
    {
      await using store = await EmbeddedLogStore.open(dir, { retentionMs: 0 });
      options.log(`history: writing ${n} lines`);
      t = performance.now();
      for (let i = 0; i < n; i += batch) await store.write(entries.slice(i, i + batch));
      figures.history_write_lines_per_s = _rate(n, t);
      t = performance.now();
      let count = 0;
      for await (const _ of store.history("web-0", { limit: n })) count++;
      figures.history_read_lines_per_s = _rate(count, t);
    }
    figures.history_bytes_per_line = await _size(join(dir, "history")) / n;
    figures.raw_line_bytes = entries.reduce((s, e) => s + e.line.length + 1, 0) / n;
    for (const k in figures) {
      const v = figures[k]!;
      figures[k] = k.includes("bytes") ? Math.round(v * 10) / 10 : Math.round(v);
    }
    return figures;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function _entries(n: number): LogEntry[] {
  const start = Date.now() - 3_600_000;
  const paths = ["/api/items", "/api/users/42", "/health", "/static/app.js", "/login"];
  return Array.from({ length: n }, (_, i) => {
    const ms = start + Math.floor(i / 4);
    const c = i % 4;
    return {
      containerId: `c0ffee${c}`.padEnd(64, "0"),
      containerName: `web-${c}`,
      image: "nginx:1.27",
      stream: i % 50 === 0 ? "stderr" : "stdout",
      ts: `${new Date(ms).toISOString().slice(0, 23)}${String(i % 1_000_000).padStart(6, "0")}Z`,
      seq: 0,
      line: `10.0.${i % 256}.${(i * 7) % 256} - - "GET ${paths[i % 5]}?id=${i} HTTP/1.1" ${
        i % 97 === 0 ? 500 : 200
      } ${512 + (i % 4096)} "-" "curl/8.5.0" rt=0.0${i % 90 + 10}`,
    } satisfies LogEntry;
  });
}

function _rate(lines: number, since: number): number {
  return lines / ((performance.now() - since) / 1000);
}

async function _size(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    total += e.isDirectory ? await _size(path) : (await Deno.stat(path)).size;
  }
  return total;
}
