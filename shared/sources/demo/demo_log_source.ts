/**
 * The demo log source (`deno task start --demo`): three pseudo-containers
 * writing realistic logs (an nginx-style web front, a JSON-logging api, a
 * job worker) with an occasional anomaly, so a new user sees a detection in
 * the first minute without Docker. On first start it also writes a backdated
 * hour of normal history, so each container has enough lines for its first
 * model within seconds.
 *
 * @module
 */

import type { LogStream } from "../../ports/log_stream.ts";
import { createPrng, type Prng } from "../../detector/detector.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { sleep } from "../../runtime/sleep.ts";
import {
  LineClock,
  type SourceChannel,
  SourcePipeline,
  type SourcePipelineOptions,
} from "../pipeline.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** The log stream's name. */
  stream: string;
  /** Stops the demo. */
  signal: AbortSignal;
  /**
   * Lines per second per container.
   * @default 5
   */
  rate?: number;
  /**
   * Mean seconds between anomalies (over all containers).
   * @default 20
   */
  anomalyEverySeconds?: number;
  /**
   * Backdated normal lines per container written on first start.
   * @default 1500
   */
  historyLines?: number;
  /**
   * Seed of the generator.
   * @default 7
   */
  seed?: number;
  /**
   * The append settings of the source pipeline (batch and buffer sizes,
   * MAXLEN), as for the other sources.
   * @default the pipeline's defaults
   */
  pipeline?: Omit<SourcePipelineOptions, "stream" | "multiline">;
}

/** The demo's pseudo-containers. */
export const DEMO_CONTAINERS = ["demo-web", "demo-api", "demo-worker"] as const;

type _Gen = (r: Prng) => string;

const _PATHS = [
  "/",
  "/products",
  "/products/42",
  "/cart",
  "/checkout",
  "/static/app.js",
  "/api/v1/me",
];
const _USERS = ["ana", "ben", "chen", "dara", "eli", "fatou", "gus"];

const _NORMAL: Record<(typeof DEMO_CONTAINERS)[number], _Gen> = {
  "demo-web": (r) =>
    `10.0.${_int(r, 0, 9)}.${_int(r, 2, 250)} - - "GET ${_pick(r, _PATHS)} HTTP/1.1" ${
      r.next() < 0.97 ? 200 : 304
    } ${_int(r, 200, 9000)} "-" "Mozilla/5.0" rt=0.0${_int(r, 10, 99)}`,
  "demo-api": (r) =>
    JSON.stringify({
      level: r.next() < 0.9 ? "info" : "debug",
      msg: _pick(r, ["request served", "cache hit", "session refreshed", "order listed"]),
      route: _pick(r, ["/v1/orders", "/v1/users/me", "/v1/cart", "/v1/products"]),
      user: _pick(r, _USERS),
      duration_ms: _int(r, 3, 120),
      status: 200,
    }),
  "demo-worker": (r) =>
    _pick(r, [
      () => `job ${_int(r, 1000, 99999)} done in ${_int(r, 20, 900)}ms queue=emails`,
      () => `job ${_int(r, 1000, 99999)} started queue=${_pick(r, ["emails", "thumbnails"])}`,
      () => `heartbeat ok workers=${_int(r, 3, 4)} backlog=${_int(r, 0, 30)}`,
    ])(),
};

const _ANOMALIES: [(typeof DEMO_CONTAINERS)[number], _Gen][] = [
  [
    "demo-web",
    (r) => `10.0.3.${_int(r, 2, 250)} - - "GET /../../etc/passwd HTTP/1.1" 400 0 "-" "sqlmap/1.7"`,
  ],
  [
    "demo-web",
    () =>
      `upstream timed out (110: Connection timed out) while reading response header from upstream`,
  ],
  ["demo-api", (r) =>
    JSON.stringify({
      level: "error",
      msg: "database connection pool exhausted",
      route: "/v1/checkout",
      waiting: _int(r, 40, 90),
      status: 503,
    })],
  ["demo-api", (r) =>
    JSON.stringify({
      level: "info",
      msg: "request served",
      route: "/v1/orders",
      user: "ana",
      duration_ms: _int(r, 28000, 45000),
      status: 200,
    })],
  ["demo-worker", () => `panic: runtime error: index out of range [5] with length 3`],
  [
    "demo-worker",
    (r) => `java.lang.OutOfMemoryError: Java heap space (heap=${_int(r, 510, 512)}MB)`,
  ],
];

/**
 * Runs the demo until `signal` aborts, appending to the log stream.
 *
 * @param stream the log stream port
 * @param options stream name, rate, anomaly frequency, history, seed
 * @returns how many lines were written
 */
export async function runDemo(stream: LogStream, options: DemoOptions): Promise<number> {
  const r = createPrng(options.seed ?? 7);
  const rate = options.rate ?? 5;
  const every = options.anomalyEverySeconds ?? 20;
  const historyLines = options.historyLines ?? 1500;
  // The demo's lines are single lines: no multi-line grouping, no checkpoint.
  const pipeline = new SourcePipeline(stream, silentLogger(), {
    ...options.pipeline,
    stream: options.stream,
    multiline: "off",
  });
  const encoder = new TextEncoder();
  const containers = new Map<string, { sink: SourceChannel<null>; clock: LineClock }>();
  for (const c of DEMO_CONTAINERS) {
    containers.set(c, {
      sink: pipeline.channel<null>({
        checkpointKey: null,
        meta: { containerId: `demo-${c}`, containerName: c, image: `tailwise/${c}:demo` },
        checkpoint: () => "",
      }),
      clock: new LineClock(),
    });
  }
  const emit = (container: string, line: string, ms: number) => {
    const { sink, clock } = containers.get(container)!;
    sink.line({
      stream: line.includes("error") || line.startsWith("panic") ? "stderr" : "stdout",
      ...clock.stamp(ms),
      bytes: encoder.encode(line),
      truncated: false,
      position: null,
    });
  };
  try {
    // Beside the stream: in its Redis Cluster slot when it is a hash-tagged shard.
    const seededKey = pipeline.keyBeside(0, "tailwise:demo:", "seeded");
    const seeded = await stream.getState(seededKey);
    if (!seeded) {
      const start = Date.now() - 3_600_000;
      for (const c of DEMO_CONTAINERS) {
        for (let i = 0; i < historyLines; i++) {
          emit(c, _NORMAL[c](r), start + Math.floor((i * 3_500_000) / historyLines));
          if (pipeline.full) await pipeline.whenRoom();
        }
      }
      await pipeline.whenFlushed();
      await stream.append(options.stream, [], { state: { [seededKey]: "1" } });
    }
    const tickMs = 200;
    const perTick = (rate * DEMO_CONTAINERS.length * tickMs) / 1000;
    let carry = 0;
    while (!options.signal.aborted) {
      const now = Date.now();
      carry += perTick;
      for (; carry >= 1; carry--) {
        const c = DEMO_CONTAINERS[_int(r, 0, DEMO_CONTAINERS.length - 1)]!;
        emit(c, _NORMAL[c](r), now);
      }
      if (r.next() < tickMs / 1000 / every) {
        const [c, gen] = _ANOMALIES[_int(r, 0, _ANOMALIES.length - 1)]!;
        emit(c, gen(r), now);
      }
      await sleep(tickMs, options.signal);
    }
  } finally {
    await pipeline.close(10_000);
  }
  return pipeline.written;
}

function _int(r: Prng, lo: number, hi: number): number {
  return lo + Math.floor(r.next() * (hi - lo + 1));
}

function _pick<T>(r: Prng, items: readonly T[]): T {
  return items[Math.floor(r.next() * items.length)]!;
}
