/**
 * The stream entry format, side by side in one run on a private redis-server:
 * today's one-line messages (every field on every line), interned metadata
 * (a line carries a short id of its container's metadata, written once), and
 * packed messages (many lines of one container per message, metadata once;
 * what tailwise writes) at a few pack sizes. For each: the collect side
 * (encode and append, 5,000 lines per append) and the consumer side (read a
 * batch, decode every line, ack), in lines per second, plus the stream's
 * memory per line.
 *
 * The interned variant is a faithful sketch for the measurement only (the
 * reader resolves the id from a cache, so its figures are its best case).
 *
 * @module
 */

import {
  entryToFields,
  type Fields,
  fieldsToEntry,
  type LogEntry,
  packEntries,
  unpackEntries,
} from "../shared/ports/log_entry.ts";
import { RedisLogStream } from "../shared/adapters/redis/redis_log_stream.ts";
import { startRedis } from "../tests/harness/services.ts";
import { realisticEntries } from "./ingest_bench.ts";

/** A stream message format under test. */
interface _Format {
  name: string;
  encode(entries: LogEntry[]): Fields[];
  decode(fields: Fields): LogEntry[];
}

/**
 * Runs the format comparison.
 *
 * @param options progress log; `lines` per format (default 100,000)
 * @returns the figures
 */
export async function benchFormat(
  options: { log: (msg: string) => void; lines?: number },
): Promise<Record<string, number>> {
  const lines = options.lines ?? 100_000;
  const entries = realisticEntries(lines);
  await using redis = await startRedis();
  await using stream = RedisLogStream.connect(redis.url);
  const metaIds = new Map<string, string>();
  const metas = new Map<string, Omit<LogEntry, "stream" | "ts" | "seq" | "line">>();
  const formats: _Format[] = [
    { name: "single", encode: (e) => e.map(entryToFields), decode: (f) => [fieldsToEntry(f)] },
    {
      name: "interned",
      encode: (es) =>
        es.map((e) => {
          const key = `${e.containerId}\u0000${e.containerName}\u0000${e.image}`;
          let id = metaIds.get(key);
          if (id === undefined) {
            metaIds.set(key, id = String(metaIds.size));
            metas.set(id, {
              containerId: e.containerId,
              containerName: e.containerName,
              image: e.image,
            });
          }
          return { m: id, s: e.stream, t: e.ts, q: String(e.seq), l: e.line };
        }),
      decode: (f) => [{
        ...metas.get(f.m!)!,
        stream: f.s as "stdout" | "stderr",
        ts: f.t!,
        seq: Number(f.q),
        line: f.l!,
      }],
    },
    { name: "packed", encode: packEntries, decode: unpackEntries },
  ];
  const out: Record<string, number> = { lines };
  const batch = 5000;
  // Two passes, keeping each format's better one: the machine is shared.
  for (let pass = 0; pass < 2; pass++) {
    for (const f of formats) {
      const name = `bench:format:${f.name}:${pass}`;
      const t0 = performance.now();
      let messages = 0;
      for (let i = 0; i < entries.length; i += batch) {
        const fields = f.encode(entries.slice(i, i + batch));
        messages += fields.length;
        await stream.append(name, fields);
      }
      const appendRate = lines / ((performance.now() - t0) / 1000);
      await stream.createGroup(name, "g");
      const perRead = Math.max(1, Math.round(batch * messages / lines));
      let read = 0;
      let decodeMs = 0;
      const t1 = performance.now();
      while (read < lines) {
        const got = await stream.readNew(name, "g", "c", { count: perRead });
        const d0 = performance.now();
        for (const m of got) read += f.decode(m.fields).length;
        decodeMs += performance.now() - d0;
        await stream.ack(name, "g", got.map((m) => m.id));
      }
      const readRate = lines / ((performance.now() - t1) / 1000);
      const bytes = Number(
        await stream.client.call("MEMORY", "USAGE", name, "SAMPLES", "0") as number,
      );
      await stream.client.del(name);
      const k = f.name;
      out[`${k}_append_lines_per_s`] = Math.max(
        out[`${k}_append_lines_per_s`] ?? 0,
        Math.round(appendRate),
      );
      out[`${k}_read_decode_ack_lines_per_s`] = Math.max(
        out[`${k}_read_decode_ack_lines_per_s`] ?? 0,
        Math.round(readRate),
      );
      out[`${k}_decode_ms_per_5000`] = Math.min(
        out[`${k}_decode_ms_per_5000`] ?? Infinity,
        Math.round(decodeMs / lines * 5000 * 100) / 100,
      );
      out[`${k}_stream_bytes_per_line`] = Math.round(bytes / lines);
      out[`${k}_messages`] = messages;
      options.log(
        `${k} pass ${pass}: append ${Math.round(appendRate)}/s, read ${Math.round(readRate)}/s`,
      );
    }
  }
  for (const k of ["interned", "packed"]) {
    out[`${k}_vs_single_append`] = _ratio(
      out[`${k}_append_lines_per_s`]!,
      out.single_append_lines_per_s!,
    );
    out[`${k}_vs_single_read`] = _ratio(
      out[`${k}_read_decode_ack_lines_per_s`]!,
      out.single_read_decode_ack_lines_per_s!,
    );
  }
  return out;
}

function _ratio(a: number, b: number): number {
  return Math.round(a / b * 100) / 100;
}
