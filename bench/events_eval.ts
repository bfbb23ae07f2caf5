/**
 * Multi-line events in `deno task eval`: a labelled set of four services
 * (a Python worker with tracebacks, a Java service with `Caused by:`, a Node
 * api, a Go server whose handlers panic), generated from a seed, and their
 * event-level figures through the CLI's path (`readEventLines`, then train
 * and score the events).
 *
 * Each service prints ordinary lines and a few known exceptions that recur at
 * a steady rate, in training and in the test; the test adds new exceptions
 * (a new exception type, or a known type thrown from a new frame). Known
 * exceptions vary as real ones do: messages with ids, line numbers after a
 * deploy, library frames, goroutine ids and addresses.
 *
 * Scoring is per event: an alert is an event of the detector's grouping
 * flagged as an anomaly, attributed to the true event holding its first line.
 * An alert on a new exception is a true positive the first time, every
 * further alert on the same exception is a false positive, and so is every
 * alert on a normal line or a known exception.
 *
 * @module
 */

import { trainDetector } from "../shared/detector/detector.ts";
import { MultilineGrouper, type MultilineMode } from "../shared/sources/multiline.ts";

/** One true event of the set. */
export interface TrueEvent {
  /** Its lines. */
  lines: string[];
  /** normal line, known (recurring) exception, or new exception. */
  kind: "normal" | "known" | "new";
}

/** A generated service: training and test events. */
export interface EventService {
  /** The service's name. */
  name: string;
  /** Training events (normal lines and known exceptions). */
  train: TrueEvent[];
  /** Test events (also new exceptions). */
  test: TrueEvent[];
}

/** Event-level figures of one service. */
export interface EventMetrics {
  /** Service name ("all" for the sum). */
  service: string;
  /** Test lines. */
  lines: number;
  /** New exceptions in the test. */
  newEvents: number;
  /** Known exceptions in the test. */
  knownEvents: number;
  /** Alerts (flagged events of the detector's grouping). */
  alerts: number;
  /** True positives / alerts. */
  precision: number;
  /** New exceptions with an alert / new exceptions. */
  recall: number;
  /** Harmonic mean. */
  f1: number;
  /** Alerts on new exceptions / new exceptions caught. */
  alertsPerCaught: number;
  /** Known exceptions with an alert / known exceptions. */
  knownAlerted: number;
  /** Normal lines with an alert. */
  normalAlerts: number;
}

/** Both modes on the set. */
export interface EventsEvalResult {
  /** Grouping on (`auto`), per service and overall. */
  events: EventMetrics[];
  /** Grouping off (every line scored alone, as before), per service and overall. */
  lines: EventMetrics[];
  /** Grouping on, overall, for other seeds of the generator. */
  seeds: EventMetrics[];
  /** Grouping on, overall, with the known exceptions at half their rates (0.15 % to 0.6 %). */
  rareKnown: EventMetrics;
}

/**
 * Runs the set with grouping on and off.
 *
 * @param seed the generator's seed
 * @default {seed} 13
 * @returns the figures
 */
export async function evalEvents(seed = 13): Promise<EventsEvalResult> {
  const services = generateEventServices(seed);
  const events: EventMetrics[] = [];
  const lines: EventMetrics[] = [];
  for (const s of services) {
    events.push(await evalService(s, { kind: "auto" }));
    lines.push(await evalService(s, { kind: "off" }));
  }
  events.push(_sum(events));
  lines.push(_sum(lines));
  const seeds: EventMetrics[] = [];
  for (const [k, other] of [1, 2, 3, 4, 5].entries()) {
    const rows: EventMetrics[] = [];
    for (const s of generateEventServices(other)) rows.push(await evalService(s, { kind: "auto" }));
    seeds.push({ ..._sum(rows), service: `seed ${[1, 2, 3, 4, 5][k]}` });
  }
  const rare: EventMetrics[] = [];
  for (const s of generateEventServices(seed, { knownRateScale: 0.5 })) {
    rare.push(await evalService(s, { kind: "auto" }));
  }
  return { events, lines, seeds, rareKnown: { ..._sum(rare), service: "known rates × 0.5" } };
}

/**
 * Trains on a service's training lines and scores its test lines, grouped
 * with `mode`, and measures per true event.
 *
 * @param service the service
 * @param mode how lines are grouped
 * @returns its figures
 */
export async function evalService(
  service: EventService,
  mode: MultilineMode,
): Promise<EventMetrics> {
  const trainLines = service.train.flatMap((e) => e.lines);
  const detector = await trainDetector(_group(trainLines, mode).map((g) => g.join("\n")));
  const testLines = service.test.flatMap((e) => e.lines);
  const owner: number[] = [];
  service.test.forEach((e, i) => e.lines.forEach(() => owner.push(i)));
  const alertsOn = new Map<number, number>();
  let at = 0;
  for (const g of _group(testLines, mode)) {
    const s = detector.score(g.join("\n"));
    if (s.anomaly) {
      const t = owner[at]!;
      alertsOn.set(t, (alertsOn.get(t) ?? 0) + 1);
    }
    at += g.length;
  }
  let tp = 0;
  let alerts = 0;
  let newAlerts = 0;
  let knownAlerted = 0;
  let normalAlerts = 0;
  let newEvents = 0;
  let knownEvents = 0;
  service.test.forEach((e, i) => {
    const a = alertsOn.get(i) ?? 0;
    alerts += a;
    if (e.kind === "new") {
      newEvents++;
      if (a > 0) tp++;
      newAlerts += a;
    } else if (e.kind === "known") {
      knownEvents++;
      if (a > 0) knownAlerted++;
    } else {
      normalAlerts += a;
    }
  });
  return _metrics(service.name, testLines.length, {
    tp,
    alerts,
    newAlerts,
    newEvents,
    knownEvents,
    knownAlerted,
    normalAlerts,
  });
}

interface _Counts {
  tp: number;
  alerts: number;
  newAlerts: number;
  newEvents: number;
  knownEvents: number;
  knownAlerted: number;
  normalAlerts: number;
}

function _metrics(service: string, lines: number, c: _Counts): EventMetrics {
  const precision = c.alerts === 0 ? 1 : c.tp / c.alerts;
  const recall = c.newEvents === 0 ? 1 : c.tp / c.newEvents;
  return {
    service,
    lines,
    newEvents: c.newEvents,
    knownEvents: c.knownEvents,
    alerts: c.alerts,
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : 2 * precision * recall / (precision + recall),
    alertsPerCaught: c.tp === 0 ? 0 : c.newAlerts / c.tp,
    knownAlerted: c.knownEvents === 0 ? 0 : c.knownAlerted / c.knownEvents,
    normalAlerts: c.normalAlerts,
  };
}

function _sum(rows: EventMetrics[]): EventMetrics {
  const c: _Counts = {
    tp: 0,
    alerts: 0,
    newAlerts: 0,
    newEvents: 0,
    knownEvents: 0,
    knownAlerted: 0,
    normalAlerts: 0,
  };
  let lines = 0;
  for (const r of rows) {
    lines += r.lines;
    c.tp += Math.round(r.recall * r.newEvents);
    c.alerts += r.alerts;
    c.newAlerts += Math.round(r.alertsPerCaught * Math.round(r.recall * r.newEvents));
    c.newEvents += r.newEvents;
    c.knownEvents += r.knownEvents;
    c.knownAlerted += Math.round(r.knownAlerted * r.knownEvents);
    c.normalAlerts += r.normalAlerts;
  }
  return _metrics("all", lines, c);
}

function _group(lines: readonly string[], mode: MultilineMode): string[][] {
  const out: string[][] = [];
  const g = new MultilineGrouper<number>((e) => out.push(e.lines), { mode });
  lines.forEach((l, i) => g.push(l, i));
  g.flush();
  return out;
}

// ---------------------------------------------------------------------------
// The generator.

interface _Rng {
  next(): number;
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
}

function _rng(seed: number): _Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
  };
}

type _Gen = (r: _Rng, ts: string) => string[];

interface _Spec {
  name: string;
  normal: { weight: number; gen: _Gen }[];
  /** Known exceptions and their share of events. */
  known: { rate: number; gen: _Gen }[];
  /** New exceptions (test only). */
  fresh: _Gen[];
}

/**
 * Generates the four services.
 *
 * @param seed the seed
 * @param options events per service in training and in the test, and a
 * factor on the known exceptions' rates
 * @default {options} 4000 training events, 2000 test events, rates × 1
 * @returns the services
 */
export function generateEventServices(
  seed: number,
  options: { trainEvents?: number; testEvents?: number; knownRateScale?: number } = {},
): EventService[] {
  const trainN = options.trainEvents ?? 4000;
  const testN = options.testEvents ?? 2000;
  const scale = options.knownRateScale ?? 1;
  return [_PYTHON, _JAVA, _NODE, _GO].map((spec, k) => {
    const r = _rng(seed * 7919 + k);
    let clock = Date.UTC(2026, 11, 1, 8, 0, 0) + k * 3_600_000;
    const ts = () => {
      clock += r.int(5, 400);
      return new Date(clock).toISOString();
    };
    const one = (): TrueEvent => {
      let x = r.next();
      for (const kn of spec.known) {
        if (x < kn.rate * scale) return { lines: kn.gen(r, ts()), kind: "known" };
        x -= kn.rate * scale;
      }
      const total = spec.normal.reduce((s, n) => s + n.weight, 0);
      let y = r.next() * total;
      for (const n of spec.normal) {
        if (y < n.weight) return { lines: n.gen(r, ts()), kind: "normal" };
        y -= n.weight;
      }
      return { lines: spec.normal[0]!.gen(r, ts()), kind: "normal" };
    };
    const train: TrueEvent[] = [];
    for (let i = 0; i < trainN; i++) train.push(one());
    const test: TrueEvent[] = [];
    for (let i = 0; i < testN; i++) test.push(one());
    // Each new exception appears twice, at random places in the test.
    for (const gen of spec.fresh) {
      for (let c = 0; c < 2; c++) {
        const at = r.int(1, test.length - 1);
        test.splice(at, 0, { lines: gen(r, ts()), kind: "new" });
      }
    }
    return { name: spec.name, train, test };
  });
}

const _id = (r: _Rng) => r.int(1000, 99999);
const _hex = (r: _Rng, n: number) =>
  Array.from({ length: n }, () => "0123456789abcdef"[r.int(0, 15)]).join("");

// Python worker -------------------------------------------------------------

function _pyTs(ts: string): string {
  return ts.replace("T", " ").replace("Z", "").slice(0, 23);
}

function _pyFrames(frames: [string, string, string][], r: _Rng): string[] {
  const out: string[] = [];
  for (const [file, fn, code] of frames) {
    out.push(`  File "${file}", line ${r.int(10, 400)}, in ${fn}`, `    ${code}`);
  }
  return out;
}

const _PY_LIBS: [string, string, string][][] = [
  [
    [
      "/usr/local/lib/python3.12/site-packages/requests/api.py",
      "get",
      "return request('get', url)",
    ],
    [
      "/usr/local/lib/python3.12/site-packages/requests/adapters.py",
      "send",
      "raise ConnectionError(e, request=request)",
    ],
  ],
  [
    [
      "/usr/local/lib/python3.12/site-packages/requests/api.py",
      "get",
      "return request('get', url)",
    ],
    [
      "/usr/local/lib/python3.12/site-packages/requests/sessions.py",
      "request",
      "resp = self.send(prep)",
    ],
    [
      "/usr/local/lib/python3.12/site-packages/requests/adapters.py",
      "send",
      "raise ConnectionError(e, request=request)",
    ],
  ],
];

const _PYTHON: _Spec = {
  name: "python-worker",
  normal: [
    {
      weight: 40,
      gen: (r, ts) => [
        `${_pyTs(ts)} INFO worker: job ${_id(r)} done in ${r.int(3, 900)}ms queue=${
          r.pick(["emails", "thumbs", "reports"])
        }`,
      ],
    },
    {
      weight: 20,
      gen: (r, ts) => [`${_pyTs(ts)} INFO worker: fetched ${r.int(0, 50)} jobs from queue`],
    },
    { weight: 10, gen: (_r, ts) => [`${_pyTs(ts)} DEBUG worker: heartbeat ok`] },
    {
      weight: 4,
      gen: (r, ts) => [`${_pyTs(ts)} WARNING worker: job ${_id(r)} retry ${r.int(1, 3)} of 3`],
    },
  ],
  known: [
    {
      rate: 0.012,
      gen: (r, ts) => [
        `${_pyTs(ts)} ERROR worker: job ${_id(r)} failed`,
        "Traceback (most recent call last):",
        ..._pyFrames([
          ["/app/worker.py", "run", "result = handle(job)"],
          ["/app/client.py", "fetch", "resp = requests.get(url, timeout=5)"],
        ], r),
        ..._pyFrames(r.pick(_PY_LIBS), r),
        `requests.exceptions.ConnectionError: HTTPConnectionPool(host='api', port=80): ` +
        `Max retries exceeded with url: /items/${_id(r)}`,
      ],
    },
    {
      rate: 0.006,
      gen: (r, ts) => [
        `${_pyTs(ts)} ERROR worker: job ${_id(r)} failed`,
        "Traceback (most recent call last):",
        ..._pyFrames([
          ["/app/worker.py", "run", "result = handle(job)"],
          ["/app/handlers.py", "lookup", "return CACHE[job.key]"],
        ], r),
        `KeyError: 'user:${_id(r)}'`,
      ],
    },
    {
      rate: 0.003,
      gen: (r) => [
        "Traceback (most recent call last):",
        ..._pyFrames([
          ["/app/main.py", "<module>", "loop()"],
          ["/app/worker.py", "loop", "wait_for_jobs()"],
          ["/usr/local/lib/python3.12/socket.py", "readinto", "return self._sock.recv_into(b)"],
        ], r),
        "TimeoutError: timed out",
      ],
    },
  ],
  fresh: [
    (r, ts) => [
      `${_pyTs(ts)} ERROR worker: job ${_id(r)} failed`,
      "Traceback (most recent call last):",
      ..._pyFrames([
        ["/app/worker.py", "run", "result = handle(job)"],
        ["/app/billing.py", "compute", "return total / count"],
      ], r),
      "ZeroDivisionError: division by zero",
    ],
    (r, ts) => [
      `${_pyTs(ts)} ERROR worker: job ${_id(r)} failed`,
      "Traceback (most recent call last):",
      ..._pyFrames([
        ["/app/worker.py", "run", "result = handle(job)"],
        ["/app/handlers.py", "render", "return TEMPLATES[job.kind]"],
      ], r),
      `KeyError: 'kind:${r.pick(["pdf", "csv"])}'`,
    ],
    (r) => [
      "Traceback (most recent call last):",
      ..._pyFrames([
        ["/app/main.py", "<module>", "loop()"],
        ["/app/worker.py", "loop", "wait_for_jobs()"],
        ["/app/queue.py", "connect", "self.conn = open_channel()"],
      ], r),
      "PermissionError: [Errno 13] Permission denied: '/var/run/queue.sock'",
    ],
    (r, ts) => [
      `${_pyTs(ts)} ERROR worker: job ${_id(r)} failed`,
      "Traceback (most recent call last):",
      ..._pyFrames([
        ["/app/worker.py", "run", "result = handle(job)"],
        ["/app/client.py", "fetch", "resp = requests.get(url, timeout=5)"],
      ], r),
      "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    ],
  ],
};

// Java service --------------------------------------------------------------

function _javaTs(ts: string): string {
  return ts.replace("T", " ").replace("Z", "").slice(0, 23);
}

function _jLine(r: _Rng, ts: string, level: string, logger: string, msg: string): string {
  return `${_javaTs(ts)} ${level.padStart(5)} 1 --- [nio-8080-exec-${
    r.int(1, 10)
  }] ${logger} : ${msg}`;
}

function _jFrames(frames: string[], r: _Rng): string[] {
  return frames.map((f) => {
    const file = f.replace(/\.[^.]*$/, "").replace(/^.*\./, "").replace(/\$.*$/, "");
    return `\tat ${f}(${file}.java:${r.int(20, 300)})`;
  });
}

const _SPRING = [
  "org.springframework.web.servlet.FrameworkServlet.service",
  "jakarta.servlet.http.HttpServlet.service",
  "org.apache.catalina.core.ApplicationFilterChain.doFilter",
  "org.apache.tomcat.util.threads.ThreadPoolExecutor$Worker.run",
  "java.base/java.lang.Thread.run",
];

const _JAVA: _Spec = {
  name: "java-orders",
  normal: [
    {
      weight: 40,
      gen: (r, ts) => [
        _jLine(
          r,
          ts,
          "INFO",
          "c.e.orders.OrderController",
          `Order ${_id(r)} created for customer ${_id(r)} total=${r.int(1, 900)}.${r.int(10, 99)}`,
        ),
      ],
    },
    {
      weight: 20,
      gen: (r, ts) => [
        _jLine(r, ts, "INFO", "c.e.orders.PaymentService", `Payment ${_id(r)} authorized`),
      ],
    },
    {
      weight: 8,
      gen: (r, ts) => [
        _jLine(r, ts, "DEBUG", "o.s.web.servlet.DispatcherServlet", "Completed 200 OK"),
      ],
    },
    {
      weight: 3,
      gen: (r, ts) => [
        _jLine(r, ts, "WARN", "c.e.orders.StockClient", `Slow stock lookup ${r.int(500, 3000)}ms`),
      ],
    },
  ],
  known: [
    {
      rate: 0.01,
      gen: (r, ts) => [
        _jLine(r, ts, "ERROR", "c.e.orders.PaymentService", `Payment ${_id(r)} failed`),
        `java.lang.IllegalStateException: payment ${_id(r)} declined by gateway`,
        ..._jFrames([
          "com.example.orders.PaymentService.charge",
          "com.example.orders.OrderController.pay",
          ..._SPRING,
        ], r),
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        ..._jFrames([
          "java.base/java.net.SocketInputStream.socketRead0",
          "com.example.orders.GatewayClient.post",
        ], r),
        `\t... ${r.int(20, 40)} more`,
      ],
    },
    {
      rate: 0.005,
      gen: (r, ts) => [
        _jLine(r, ts, "WARN", "c.e.orders.StockClient", `Stock service unavailable, retrying`),
        "org.springframework.web.client.ResourceAccessException: I/O error on GET request",
        ..._jFrames([
          "org.springframework.web.client.RestTemplate.doExecute",
          "com.example.orders.StockClient.reserve",
          "com.example.orders.OrderService.place",
          ..._SPRING,
        ], r),
        "Caused by: java.net.ConnectException: Connection refused",
        ..._jFrames(["java.base/sun.nio.ch.Net.connect0"], r),
        `\t... ${r.int(20, 40)} more`,
      ],
    },
  ],
  fresh: [
    (r, ts) => [
      _jLine(r, ts, "ERROR", "o.a.c.c.C.[.[.[/].[dispatcherServlet]", "Servlet.service() failed"),
      'java.lang.NullPointerException: Cannot invoke "Customer.getId()" because "c" is null',
      ..._jFrames([
        "com.example.orders.InvoiceService.render",
        "com.example.orders.OrderController.invoice",
        ..._SPRING,
      ], r),
    ],
    (r, ts) => [
      _jLine(r, ts, "ERROR", "c.e.orders.PaymentService", `Payment ${_id(r)} failed`),
      `java.lang.IllegalStateException: payment ${_id(r)} declined by gateway`,
      ..._jFrames([
        "com.example.orders.PaymentService.charge",
        "com.example.orders.OrderController.pay",
        ..._SPRING,
      ], r),
      "Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available",
      ..._jFrames([
        "com.zaxxer.hikari.pool.HikariPool.getConnection",
        "com.example.orders.LedgerRepository.save",
      ], r),
      `\t... ${r.int(20, 40)} more`,
    ],
    (r, ts) => [
      _jLine(r, ts, "ERROR", "c.e.orders.OrderController", `Order ${_id(r)} failed`),
      "java.lang.ArithmeticException: / by zero",
      ..._jFrames([
        "com.example.orders.DiscountCalculator.apply",
        "com.example.orders.OrderService.place",
        ..._SPRING,
      ], r),
    ],
  ],
};

// Node api ------------------------------------------------------------------

function _nodeLine(r: _Rng, ts: string, level: string, msg: string): string {
  return `[${ts}] ${level} (api/${r.int(20, 30)}): ${msg}`;
}

function _nFrames(frames: [string, string][], r: _Rng): string[] {
  return frames.map(([fn, file]) =>
    fn === ""
      ? `    at ${file}:${r.int(5, 200)}:${r.int(3, 40)}`
      : `    at ${fn} (${file}:${r.int(5, 200)}:${r.int(3, 40)})`
  );
}

const _EXPRESS: [string, string][] = [
  ["Layer.handle [as handle_request]", "/app/node_modules/express/lib/router/layer.js"],
  ["next", "/app/node_modules/express/lib/router/route.js"],
  ["process.processTicksAndRejections", "node:internal/process/task_queues"],
];

const _NODE: _Spec = {
  name: "node-api",
  normal: [
    {
      weight: 40,
      gen: (r, ts) => [
        _nodeLine(
          r,
          ts,
          "INFO",
          `${r.pick(["GET", "GET", "POST"])} /api/${r.pick(["users", "orders", "items"])}/${
            _id(r)
          } ${r.pick([200, 200, 201, 304])} ${r.int(1, 300)}ms`,
        ),
      ],
    },
    { weight: 10, gen: (r, ts) => [_nodeLine(r, ts, "INFO", `cache hit ratio ${r.int(50, 99)}%`)] },
    {
      weight: 3,
      gen: (r, ts) => [_nodeLine(r, ts, "WARN", `slow query users.find ${r.int(200, 900)}ms`)],
    },
  ],
  known: [
    {
      rate: 0.01,
      gen: (r, ts) => [
        _nodeLine(r, ts, "ERROR", `request ${_hex(r, 8)} failed`),
        "TypeError: Cannot read properties of undefined (reading 'email')",
        ..._nFrames([
          ["formatUser", "/app/src/users.js"],
          ["getUser", "/app/src/users.js"],
          ..._EXPRESS,
        ], r),
      ],
    },
    {
      rate: 0.005,
      gen: (r, ts) => [
        _nodeLine(r, ts, "ERROR", `upstream call failed`),
        `Error: connect ECONNREFUSED 10.0.${r.int(0, 9)}.${r.int(2, 200)}:6379`,
        ..._nFrames([
          ["TCPConnectWrap.afterConnect [as oncomplete]", "node:net"],
          ["RedisCache.get", "/app/src/cache.js"],
          ..._EXPRESS,
        ], r),
      ],
    },
  ],
  fresh: [
    (r, ts) => [
      _nodeLine(r, ts, "ERROR", `request ${_hex(r, 8)} failed`),
      "RangeError: Invalid time value",
      ..._nFrames([
        ["Date.toISOString", "<anonymous>"],
        ["serializeOrder", "/app/src/orders.js"],
        ..._EXPRESS,
      ], r),
    ],
    (r, ts) => [
      _nodeLine(r, ts, "ERROR", `request ${_hex(r, 8)} failed`),
      "TypeError: Cannot read properties of undefined (reading 'email')",
      ..._nFrames([
        ["notifyOwner", "/app/src/notifications.js"],
        ["", "/app/src/orders.js"],
        ..._EXPRESS,
      ], r),
    ],
    (r, ts) => [
      _nodeLine(r, ts, "ERROR", `request ${_hex(r, 8)} failed`),
      "SyntaxError: Unexpected token < in JSON at position 0",
      ..._nFrames([
        ["JSON.parse", "<anonymous>"],
        ["PaymentClient.parse", "/app/src/payments.js"],
        ..._EXPRESS,
      ], r),
    ],
  ],
};

// Go server -----------------------------------------------------------------

function _goTs(ts: string): string {
  return ts.replace("T", " ").replace(/-/g, "/").slice(0, 19);
}

function _goDump(r: _Rng, frames: [string, string][]): string[] {
  const out = [`goroutine ${r.int(20, 4000)} [running]:`];
  for (const [fn, file] of frames) {
    out.push(
      `${fn}(0x${_hex(r, 10)}, 0x${_hex(r, 6)})`,
      `\t${file}:${r.int(10, 400)} +0x${_hex(r, 3)}`,
    );
  }
  return out;
}

const _GO_HTTP: [string, string][] = [
  ["net/http.HandlerFunc.ServeHTTP", "/usr/local/go/src/net/http/server.go"],
  ["net/http.serverHandler.ServeHTTP", "/usr/local/go/src/net/http/server.go"],
  ["net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go"],
];

function _goPanic(r: _Rng, ts: string, msg: string, frames: [string, string][]): string[] {
  return [
    `${_goTs(ts)} http: panic serving 10.0.${r.int(0, 9)}.${r.int(2, 250)}:${
      r.int(30000, 60000)
    }: ${msg}`,
    ..._goDump(r, [
      ["main.recoverer.func1", "/app/middleware.go"],
      ["panic", "/usr/local/go/src/runtime/panic.go"],
      ...frames,
      ..._GO_HTTP,
    ]),
    `created by net/http.(*Server).Serve in goroutine 1`,
    `\t/usr/local/go/src/net/http/server.go:3086 +0x5cb`,
  ];
}

const _GO: _Spec = {
  name: "go-server",
  normal: [
    {
      weight: 40,
      gen: (r, ts) => [
        `${_goTs(ts)} handled ${r.pick(["GET", "PUT"])} /v1/${r.pick(["objects", "buckets"])}/${
          _hex(r, 8)
        } status=${r.pick([200, 200, 204, 404])} dur=${r.int(1, 90)}ms`,
      ],
    },
    { weight: 8, gen: (r, ts) => [`${_goTs(ts)} gc: freed ${r.int(1, 90)} MB`] },
    {
      weight: 3,
      gen: (r, ts) => [`${_goTs(ts)} warning: replica ${r.int(1, 3)} lagging ${r.int(1, 9)}s`],
    },
  ],
  known: [
    {
      rate: 0.01,
      gen: (r, ts) =>
        _goPanic(
          r,
          ts,
          `runtime error: index out of range [${r.int(3, 9)}] with length ${r.int(0, 3)}`,
          [
            ["main.parseRange", "/app/ranges.go"],
            ["main.(*Server).getObject", "/app/objects.go"],
          ],
        ),
    },
    {
      rate: 0.004,
      gen: (r) => [
        `panic: runtime error: invalid memory address or nil pointer dereference`,
        `[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x${_hex(r, 6)}]`,
        "",
        ..._goDump(r, [
          ["main.(*Store).flush", "/app/store.go"],
          ["main.(*Store).loop", "/app/store.go"],
        ]),
        "created by main.NewStore in goroutine 1",
        "\t/app/store.go:40 +0x1a5",
      ],
    },
  ],
  fresh: [
    (r, ts) =>
      _goPanic(r, ts, "assignment to entry in nil map", [
        ["main.(*Server).putTags", "/app/tags.go"],
        ["main.(*Server).putObject", "/app/objects.go"],
      ]),
    (r, ts) =>
      _goPanic(
        r,
        ts,
        `runtime error: index out of range [${r.int(3, 9)}] with length ${r.int(0, 3)}`,
        [
          ["main.splitParts", "/app/multipart.go"],
          ["main.(*Server).putObject", "/app/objects.go"],
        ],
      ),
    (r, ts) =>
      _goPanic(r, ts, `interface conversion: interface {} is nil, not string`, [
        ["main.ownerOf", "/app/acl.go"],
        ["main.(*Server).getObject", "/app/objects.go"],
      ]),
  ],
};

/**
 * Prints the figures as markdown tables.
 *
 * @param r the result
 */
export function printEvents(r: EventsEvalResult): void {
  const f = (x: number) => x.toFixed(3);
  for (
    const [title, rows] of [
      ["events (grouped)", r.events],
      ["lines", r.lines],
      ["events, other seeds and rarer known exceptions (overall)", [...r.seeds, r.rareKnown]],
    ] as const
  ) {
    console.log(`\nMulti-line events, scored as ${title}`);
    console.log(
      "| service | lines | new | known | alerts | precision | recall | F1 | alerts/caught | known alerted | alerts on normal lines |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|---|");
    for (const m of rows) {
      console.log(
        `| ${m.service} | ${m.lines} | ${m.newEvents} | ${m.knownEvents} | ${m.alerts} | ${
          f(m.precision)
        } | ${f(m.recall)} | ${f(m.f1)} | ${f(m.alertsPerCaught)} | ${
          f(m.knownAlerted)
        } | ${m.normalAlerts} |`,
      );
    }
  }
}

if (import.meta.main) {
  printEvents(await evalEvents(Number(Deno.args[0] ?? 13)));
}
