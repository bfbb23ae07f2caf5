/**
 * The collect benchmark: containers that printed as fast as they can
 * (busybox `seq`), read by `docker logs` (the engine's own read speed) and by
 * the collector into a Redis stream, side by side in one run on a private
 * dockerd and redis-server.
 *
 * Figures: lines/s of each, their ratio, the collector's peak RSS.
 *
 * @module
 */

import { loadavg } from "node:os";
import { Redis } from "ioredis";
import { messageLineCount } from "../shared/ports/log_entry.ts";
import {
  dockerCli,
  freePort,
  startDocker,
  startRedis,
  waitFor,
} from "../tests/harness/services.ts";

/** Options of {@linkcode benchCollect}. */
export interface BenchCollectOptions {
  /** Progress messages. */
  log: (msg: string) => void;
  /**
   * Containers printing at once.
   * @default 2
   */
  containers?: number;
  /**
   * Lines each prints.
   * @default 500000
   */
  lines?: number;
}

const MAIN = new URL("../functions/collect/main.ts", import.meta.url).pathname;

/**
 * Runs the benchmark.
 *
 * @param options progress log, container count and lines per container
 * @returns the figures
 * @throws {Error} when the collector does not deliver every line in time
 */
export async function benchCollect(
  options: BenchCollectOptions,
): Promise<Record<string, number | string>> {
  const { log } = options;
  const containers = options.containers ?? 2;
  const lines = options.lines ?? 500_000;
  const total = containers * lines;
  log("starting a private dockerd and redis-server");
  await using engine = await startDocker();
  await using redisService = await startRedis();
  const redis = new Redis(redisService.url);
  try {
    const ids: string[] = [];
    for (let i = 0; i < containers; i++) {
      ids.push(
        await dockerCli(engine.url, [
          "run",
          "-d",
          "--stop-signal",
          "SIGKILL",
          engine.image,
          "sh",
          "-c",
          `seq 1 ${lines}; exec sleep 3600`,
        ]),
      );
    }
    for (const id of ids) {
      await waitFor(
        async () => (await dockerCli(engine.url, ["logs", "--tail", "1", id])) === String(lines),
        {
          timeoutMs: 120_000,
          intervalMs: 200,
          what: "the containers to finish printing",
        },
      );
    }

    log(`docker logs -t of ${containers} × ${lines.toLocaleString("en-US")} lines`);
    const t0 = performance.now();
    const outs = await Promise.all(ids.map((id) =>
      new Deno.Command("docker", {
        args: ["--host", engine.url, "logs", "-t", id],
        stdout: "piped",
        stderr: "null",
      }).output()
    ));
    const dockerMs = performance.now() - t0;
    let dockerLines = 0;
    for (const o of outs) for (const b of o.stdout) if (b === 10) dockerLines++;
    if (dockerLines !== total) {
      throw new Error(`docker logs printed ${dockerLines} lines, expected ${total}`);
    }

    log("collector (deno task collect) into a Redis stream");
    const stream = "bench:logs";
    const metricsPort = freePort();
    // BENCH_INSPECT_PORT=<port>: the collector listens for an inspector
    // there (a CPU profile: `deno run -A bench/cpu_profile.ts <port> <ms> <out>`).
    const inspectPort = Deno.env.get("BENCH_INSPECT_PORT");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []), MAIN],
      env: {
        REDIS_URL: redisService.url,
        DOCKER_HOST: engine.url,
        LOG_STREAM: stream,
        STREAM_MAXLEN: "0",
        LOG_LEVEL: "warn",
        METRICS_HOST: "127.0.0.1",
        METRICS_PORT: String(metricsPort),
      },
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    let first = 0;
    let firstLen = 0;
    let peakKb = 0;
    let cpuSeconds = 0;
    const sampleRss = async () => {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
        const stat = (await Deno.readTextFile(`/proc/${child.pid}/stat`)).split(") ")[1]!.split(
          " ",
        );
        cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100;
      } catch {
        // exited
      }
    };
    // Progress comes from the collector's own counter of appended lines
    // (`tailwise_lines_in_total` on its /metrics): reading the stream back
    // while it runs would take the cores it is measured on. The stream is
    // counted once at the end.
    const appended = async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
        let n = 0;
        for (const m of (await res.text()).matchAll(/^tailwise_lines_in_total\{[^}]*\} (\d+)$/gm)) {
          n += Number(m[1]);
        }
        return n;
      } catch {
        return 0; // not listening yet
      }
    };
    const countLines = async () => {
      let seen = 0;
      let after = "-";
      for (;;) {
        const page = await redis.xrange(stream, after, "+", "COUNT", 1000);
        for (const [, flat] of page) {
          const fields: Record<string, string> = {};
          for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
          seen += messageLineCount(fields);
        }
        if (page.length > 0) after = "(" + page[page.length - 1]![0];
        if (page.length < 1000) return seen;
      }
    };
    try {
      await waitFor(async () => {
        const n = await appended();
        await sampleRss();
        if (n > 0 && first === 0) {
          first = performance.now();
          firstLen = n;
        }
        return n >= total;
      }, { timeoutMs: 300_000, intervalMs: 20, what: "every line in the stream" });
      const collectMs = performance.now() - first;
      await sampleRss();
      const streamLines = await countLines();
      if (streamLines !== total) {
        throw new Error(`the stream holds ${streamLines} lines, expected ${total}`);
      }
      const collectRate = (total - firstLen) / (collectMs / 1000);
      const dockerRate = total / (dockerMs / 1000);
      return {
        containers,
        linesPerContainer: lines,
        dockerLogsLinesPerSec: Math.round(dockerRate),
        collectLinesPerSec: Math.round(collectRate),
        ratio: Number((collectRate / dockerRate).toFixed(3)),
        collectPeakRssMiB: Number((peakKb / 1024).toFixed(1)),
        collectCpuMicrosPerLine: Number((cpuSeconds * 1e6 / total).toFixed(2)),
        loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
        streamMessages: await redis.xlen(stream),
        streamLines,
      };
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await dockerCli(engine.url, ["rm", "-f", ...ids]).catch(() => "");
    }
  } finally {
    redis.disconnect();
  }
}
