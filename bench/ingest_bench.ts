/**
 * Ingest throughput: lines per second from the log stream into InfluxDB with
 * one replica, side by side with the server's own rate (the same line
 * protocol posted straight to `/write` in the same batch size), on a private
 * redis-server and influxd. Also the encoder's rate against the `Point` of
 * @influxdata/influxdb-client, the measurement behind writing our own.
 *
 * @module
 */

import process from "node:process";
import { Point } from "@influxdata/influxdb-client";
import { type LogEntry, messagesForLines, packEntries } from "../shared/ports/log_entry.ts";
import { InfluxLogStore } from "../shared/adapters/influx/influx_log_store.ts";
import { LineProtocolEncoder, tsToNanoText } from "../shared/adapters/influx/line_protocol.ts";
import { RedisLogStream } from "../shared/adapters/redis/redis_log_stream.ts";
import { StreamConsumer } from "../shared/runtime/stream_consumer.ts";
import { ingestBatch } from "../functions/ingest/ingest.ts";
import { startInflux, startRedis, waitFor } from "../tests/harness/services.ts";

/** Options of {@linkcode benchIngest}. */
export interface BenchIngestOptions {
  /** Progress messages. */
  log: (msg: string) => void;
  /**
   * Lines preloaded into the stream.
   * @default 200000
   */
  lines?: number;
  /**
   * Lines per read and per write.
   * @default 5000
   */
  batch?: number;
  /**
   * Batches in flight in the consumer (ingest's `INGEST_CONCURRENCY`).
   * @default 2
   */
  concurrency?: number;
  /**
   * Paired rounds (ingest and direct writes alternate).
   * @default 4
   */
  rounds?: number;
}

/**
 * Runs the ingest benchmark.
 *
 * @param options progress log, sizes
 * @returns the figures
 */
export async function benchIngest(
  options: BenchIngestOptions,
): Promise<Record<string, number | string>> {
  const { log } = options;
  const lines = options.lines ?? 200_000;
  const batch = options.batch ?? 5000;
  const entries = realisticEntries(lines);
  const avgBytes = Math.round(entries.reduce((n, e) => n + e.line.length, 0) / entries.length);

  const encodeRates = _encoderRates(entries.slice(0, 50_000));
  log(`encoder: own ${encodeRates.own} lines/s, Point ${encodeRates.point} lines/s`);

  await using redis = await startRedis();
  await using influx = await startInflux();
  await using stream = RedisLogStream.connect(redis.url);

  // Paired rounds: each round posts its share of the lines straight to /write
  // (the server's own rate) and ingests the same share from the stream, back
  // to back and in alternating order, so that both see the same load on the
  // machine. The figures are medians over the rounds.
  const rounds = options.rounds ?? 4;
  const per = Math.ceil(entries.length / rounds);
  const encoder = new LineProtocolEncoder();
  await _query(influx.url, `CREATE DATABASE "direct"`);
  await using store = new InfluxLogStore({
    url: influx.url,
    database: "ingest",
    retentionPolicy: "tw",
    batchLines: batch,
  });
  await store.prepare();

  log(`preloading ${lines} lines into ${rounds} streams`);
  const stream0 = performance.now();
  const messages: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const share = entries.slice(r * per, (r + 1) * per);
    messages.push(0);
    for (let i = 0; i < share.length; i += 5000) {
      // Packed, as collect writes them.
      const fields = packEntries(share.slice(i, i + 5000));
      messages[r]! += fields.length;
      await stream.append(`bench:logs:${r}`, fields);
    }
  }
  const appendRate = entries.length / ((performance.now() - stream0) / 1000);

  // The bare write: the same bodies posted straight to /write, `inFlight`
  // at a time: 1 (the reference), and ingest's own concurrency (a
  // bare write gains from overlap too: the stricter reference).
  const direct = async (share: LogEntry[], inFlight: number) => {
    const bodies: string[] = [];
    for (let i = 0; i < share.length; i += batch) {
      bodies.push(share.slice(i, i + batch).map((e) => encoder.encode(e).text).join("\n"));
    }
    const t0 = performance.now();
    let next = 0;
    const post = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const res = await fetch(`${influx.url}/write?db=direct&precision=ns`, {
          method: "POST",
          body,
        });
        if (res.status !== 204) throw new Error(`direct write answered ${res.status}`);
        await res.body?.cancel();
      }
    };
    await Promise.all(Array.from({ length: inFlight }, post));
    return share.length / ((performance.now() - t0) / 1000);
  };
  const ingest = async (r: number, n: number) => {
    const consumer = new StreamConsumer(
      stream,
      (b, ctx) => ingestBatch(b, { store }, ctx),
      {
        stream: `bench:logs:${r}`,
        group: "ingest",
        consumer: "bench",
        deadLetterStream: "bench:dead",
        // INGEST_BATCH_LINES as ingest's main reads it.
        batch: messagesForLines(batch),
        blockMs: 100,
        concurrency,
      },
    );
    const ac = new AbortController();
    const t0 = performance.now();
    const running = consumer.run(ac.signal);
    await waitFor(() => consumer.counters.acked >= messages[r]!, {
      timeoutMs: 600_000,
      intervalMs: 2,
      what: "every line ingested",
    });
    const rate = n / ((performance.now() - t0) / 1000);
    ac.abort();
    await running;
    return rate;
  };
  const concurrency = options.concurrency ?? 2;
  const ingestRates: number[] = [];
  const directRates: number[] = [];
  const directConcurrentRates: number[] = [];
  const ratios: number[] = [];
  const concurrentRatios: number[] = [];
  const cpu0 = process.cpuUsage();
  let ingestCpuMicros = 0;
  for (let r = 0; r < rounds; r++) {
    const share = entries.slice(r * per, (r + 1) * per);
    // Who goes first rotates: the three share the machine's state in turn.
    const runs = [
      async () => directRates.push(await direct(share, 1)),
      async () => directConcurrentRates.push(await direct(share, concurrency)),
      async () => {
        const c0 = process.cpuUsage(cpu0);
        ingestRates.push(await ingest(r, share.length));
        const c1 = process.cpuUsage(cpu0);
        ingestCpuMicros += c1.user + c1.system - c0.user - c0.system;
      },
    ];
    for (let k = 0; k < runs.length; k++) await runs[(r + k) % runs.length]!();
    const g = ingestRates[r]!, d1 = directRates[r]!, dn = directConcurrentRates[r]!;
    log(
      `round ${r + 1}: ingest ${Math.round(g)} lines/s, /write ${Math.round(d1)} lines/s ` +
        `(${Math.round(dn)} with ${concurrency} in flight)`,
    );
    ratios.push(g / d1);
    concurrentRatios.push(g / dn);
  }
  let stored = 0;
  await waitFor(async () => {
    stored = await _query(influx.url, `SELECT count("cid") FROM "ingest"."tw"."logs"`);
    return stored === entries.length;
  }, { timeoutMs: 15_000, what: `ingest storing ${entries.length} lines (last count ${stored})` });

  return {
    lines,
    batch,
    concurrency,
    avg_line_bytes: avgBytes,
    rounds,
    ingest_lines_per_s: Math.round(_median(ingestRates)),
    direct_write_lines_per_s: Math.round(_median(directRates)),
    direct_write_concurrent_lines_per_s: Math.round(_median(directConcurrentRates)),
    ratio_ingest_to_direct: Number(_median(ratios).toFixed(3)),
    ratio_ingest_to_direct_concurrent: Number(_median(concurrentRatios).toFixed(3)),
    ingest_cpu_us_per_line: Number((ingestCpuMicros / entries.length).toFixed(2)),
    ingest_lines_per_s_min: Math.round(Math.min(...ingestRates)),
    ingest_lines_per_s_max: Math.round(Math.max(...ingestRates)),
    ratio_min: Number(Math.min(...ratios).toFixed(3)),
    stream_append_lines_per_s: Math.round(appendRate),
    encoder_own_lines_per_s: encodeRates.own,
    encoder_point_lines_per_s: encodeRates.point,
  };
}

/**
 * Log entries that look like real container output: access logs, JSON logs,
 * stack traces and key=value lines from a handful of containers.
 *
 * @param n how many
 * @returns the entries
 */
export function realisticEntries(n: number): LogEntry[] {
  const base = Date.UTC(2026, 0, 1) + (Math.floor(Date.now() / 86_400_000) - 20454) * 86_400_000;
  const containers = ["web-1", "web-2", "api-1", "worker-1", "db-1", "cache-1", "proxy-1"];
  const paths = ["/api/items", "/api/users/42", "/health", "/static/app.js", "/login"];
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const out: LogEntry[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % containers.length;
    const ms = base + Math.floor(i / 10);
    const ns = String((i % 10) * 100_000 + Math.floor(rand() * 1000)).padStart(6, "0");
    const ts = new Date(ms).toISOString().slice(0, 23) + ns + "Z";
    const kind = Math.floor(rand() * 4);
    let line: string;
    if (kind === 0) {
      line = `10.0.${c}.${i % 255} - - [01/Jan/2026:00:00:00 +0000] "GET ${
        paths[i % paths.length]
      }?id=${i} HTTP/1.1" 200 ${Math.floor(rand() * 5000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"`;
    } else if (kind === 1) {
      line = JSON.stringify({
        level: rand() < 0.9 ? "info" : "error",
        msg: "request handled",
        method: "GET",
        path: paths[i % paths.length],
        status: 200,
        duration_ms: Math.round(rand() * 500),
        trace_id: (i * 2654435761 >>> 0).toString(16),
      });
    } else if (kind === 2) {
      line =
        `time="2026-01-01T00:00:00Z" level=info msg="job ${i} done" queue=default attempts=1 took=${
          Math.round(rand() * 900)
        }ms`;
    } else {
      line = `\tat com.example.service.Handler.process(Handler.java:${i % 500})`;
    }
    out.push({
      containerId: (c * 0x9e3779b1 >>> 0).toString(16).padEnd(64, "a"),
      containerName: containers[c]!,
      image: `example/${containers[c]!.split("-")[0]}:1.4.2`,
      stream: kind === 3 ? "stderr" : "stdout",
      ts,
      seq: 0,
      line,
    });
  }
  return out;
}

function _median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function _encoderRates(entries: LogEntry[]): { own: number; point: number } {
  const encoder = new LineProtocolEncoder();
  let sink = 0;
  const own = () => {
    for (const e of entries) sink += encoder.encode(e).text.length;
  };
  const point = () => {
    for (const e of entries) {
      const p = new Point("logs").tag("container", e.containerName).tag("stream", e.stream)
        .stringField("cid", e.containerId).stringField("image", e.image).intField("seq", e.seq)
        .stringField("line", e.line).timestamp(tsToNanoText(e.ts));
      sink += p.toLineProtocol()?.length ?? 0;
    }
  };
  // Warm both up, then time them alternately and keep the best of three.
  own();
  point();
  const best = { own: 0, point: 0 };
  for (let i = 0; i < 3; i++) {
    for (const [name, fn] of [["own", own], ["point", point]] as const) {
      const t0 = performance.now();
      fn();
      best[name] = Math.max(best[name], entries.length / ((performance.now() - t0) / 1000));
    }
  }
  if (sink < 0) throw new Error("unreachable");
  return { own: Math.round(best.own), point: Math.round(best.point) };
}

async function _query(url: string, q: string): Promise<number> {
  const res = await fetch(`${url}/query`, { method: "POST", body: new URLSearchParams({ q }) });
  const body = await res.json() as { results?: { series?: { values: unknown[][] }[] }[] };
  return Number(body.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0);
}
