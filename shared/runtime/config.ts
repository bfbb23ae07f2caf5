/**
 * Every setting of tailwise, read once from the environment into one typed,
 * validated object. Nothing else in the code base reads `Deno.env`.
 *
 * A bad value stops the function at start with a {@linkcode ConfigError} that
 * lists every problem at once, each naming the variable, the value and what
 * was expected. Secrets may come from files (`NAME_FILE` pointing into
 * `/run/secrets`); they are never printed: {@linkcode redactConfig} replaces
 * them before a config is logged.
 *
 * @module
 */

/** Where the Docker Engine API is reached. */
export type DockerEndpoint =
  | { kind: "socket"; socketPath: string }
  | { kind: "tcp"; host: string; port: number; protocol: "http" | "https" };

/** The typed, validated settings of every tailwise function. */
export interface Config {
  /** Directory of the embedded adapters' files (`TAILWISE_DATA_DIR`). */
  dataDir: string;
  /** Name of this process in consumer groups and locks (`TAILWISE_INSTANCE`). */
  instance: string;
  /** Log verbosity (`LOG_LEVEL`). */
  logLevel: "debug" | "info" | "warn" | "error";
  redis: {
    /** `REDIS_URL`; null selects the embedded adapters. */
    url: string | null;
    /** `REDIS_USERNAME`, overrides the URL's user. */
    username: string | null;
    /** `REDIS_PASSWORD` or `REDIS_PASSWORD_FILE`, overrides the URL's password. */
    password: string | null;
    /**
     * `REDIS_CLUSTER`: `REDIS_URL` is a seed node of a Redis Cluster (ioredis
     * `Cluster`); keys get hash tags (see shared/ports/log_shards.ts).
     */
    cluster: boolean;
  };
  influx: {
    /** `INFLUX_URL` (http or https); null selects the embedded log store. */
    url: string | null;
    /** `INFLUX_DATABASE`. */
    database: string;
    /** `INFLUX_RETENTION_POLICY`. */
    retentionPolicy: string;
    /** `INFLUX_RETENTION` in ms; 0 keeps history forever. */
    retentionMs: number;
    /** `INFLUX_USERNAME` (1.x auth). */
    username: string | null;
    /** `INFLUX_PASSWORD` or `INFLUX_PASSWORD_FILE`. */
    password: string | null;
    /** `INFLUX_TOKEN` or `INFLUX_TOKEN_FILE` (2.x and 3.x auth). */
    token: string | null;
    /** `INFLUX_CREATE_DATABASE`: create the database and policy at start. */
    createDatabase: boolean;
  };
  /** `DOCKER_HOST` (unix:///path or tcp://host:port), default the local socket. */
  docker: DockerEndpoint;
  streams: {
    /** `LOG_STREAM`: where collect appends log entries. */
    logs: string;
    /** `ANOMALY_STREAM`: where score appends anomalies. */
    anomalies: string;
    /** `DEAD_LETTER_STREAM`: entries that failed too often. */
    deadLetter: string;
    /** `DEPLOY_STREAM`: where collect records deploys (a service's image changed). */
    deploys: string;
    /** `STREAM_MAXLEN`: approximate MAXLEN trimming of the log stream; 0 disables. */
    maxLen: number;
    /** `LOG_STREAM_SHARDS`: the log stream is sharded over this many streams. */
    shards: number;
  };
  collect: {
    /** `COLLECT_MAX_LINE_BYTES`: longer lines are cut and marked truncated. */
    maxLineBytes: number;
    /** `COLLECT_BATCH_LINES`: lines per pipelined append. */
    batchLines: number;
    /** `COLLECT_BUFFER_LINES`: lines buffered before reading from Docker pauses. */
    bufferLines: number;
    /** `COLLECT_FLUSH_MS`: longest time a line waits for its batch. */
    flushMs: number;
    /** `COLLECT_APPENDS_IN_FLIGHT`: appends under way at once (pipelined, in order). */
    appendsInFlight: number;
    /**
     * `COLLECT_MULTILINE`: how lines join into events for containers without a
     * `tailwise.multiline.start` label: `auto`, `off` or a regular expression
     * matching an event's first line.
     */
    multiline: string;
    /** `COLLECT_MULTILINE_FLUSH_MS`: longest wait of an event for more lines. */
    multilineFlushMs: number;
    /**
     * `COLLECT_MULTILINE_QUIET_MS`: wait of an event that is no stack trace
     * (a plain line, not an error line) for more lines; at most the flush.
     */
    multilineQuietMs: number;
    /** `COLLECT_MULTILINE_MAX_LINES`: most lines in one event. */
    multilineMaxLines: number;
    /** `COLLECT_MULTILINE_MAX_BYTES`: most bytes in one event. */
    multilineMaxBytes: number;
    /** `COLLECT_LAST_LINES`: last lines kept per container for its lifecycle anomalies. */
    lastLines: number;
  };
  deploys: {
    /** `DEPLOY_REPORT_WINDOW`: the time after a deploy its report covers, in ms. */
    reportWindowMs: number;
    /** `DEPLOY_BASELINE`: the time before a deploy its report compares with, in ms. */
    baselineMs: number;
  };
  consumer: {
    /** `CONSUMER_BATCH`: entries handed to a handler at once. */
    batch: number;
    /** `CONSUMER_BLOCK_MS`: how long one read waits for new entries. */
    blockMs: number;
    /** `CONSUMER_CLAIM_IDLE_MS`: pending entries idle this long are claimed. */
    claimIdleMs: number;
    /** `CONSUMER_MAX_DELIVERIES`: deliveries before an entry is dead-lettered. */
    maxDeliveries: number;
  };
  ingest: {
    /** `INGEST_BATCH_LINES`. */
    batchLines: number;
    /** `INGEST_BATCH_BYTES`. */
    batchBytes: number;
    /** `INGEST_CONCURRENCY`: batches written to InfluxDB at once. */
    concurrency: number;
  };
  train: {
    /** `TRAIN_SCHEDULE`: a cron expression for `Deno.cron`. */
    schedule: string;
    /** `TRAIN_WINDOW`: history used for training, in ms. */
    windowMs: number;
    /** `TRAIN_MAX_LINES`: cap on lines per training. */
    maxLines: number;
    /** `TRAIN_MIN_LINES`: a container is `learning` until it has this many. */
    minLines: number;
    /** `TRAIN_SHADOW_FACTOR`: hold back a model whose alert rate grows past this factor. */
    shadowFactor: number;
    /** `MODEL_KEEP`: versions kept per container. */
    keepVersions: number;
    /** `ALERT_RATE`: target share of training lines above the threshold. */
    alertRate: number;
    /** `TRAIN_SEED`: seed of the isolation forest. */
    seed: number;
  };
  score: {
    /** `COLD_START_ALERTS`: what a container without a model alerts on. */
    coldStart: "severity" | "none";
  };
  alerts: {
    /** `WEBHOOK_URL` or `WEBHOOK_URL_FILE` (a secret for Slack). */
    webhookUrl: string | null;
    /** `WEBHOOK_FORMAT`. */
    webhookFormat: "json" | "slack";
    /** `ALERT_GROUP_WINDOW`: repeats of a template within it give one alert. */
    groupWindowMs: number;
    /** `ALERT_RATE_LIMIT`: alerts per container per minute. */
    ratePerMinute: number;
    /** `ALERT_MODE`: `incident` tells sinks about incidents (open, updates, resolve), `anomaly` about every anomaly. */
    mode: "incident" | "anomaly";
    /** `INCIDENT_QUIET`: an incident resolves after this long without an anomaly. */
    incidentQuietMs: number;
  };
  api: {
    /** `API_HOST`. */
    host: string;
    /** `API_PORT`. */
    port: number;
    /** `API_TOKEN` or `API_TOKEN_FILE`; null in embedded mode generates one. */
    token: string | null;
    /** `API_BODY_LIMIT`. */
    bodyLimit: number;
    /** `FEEDBACK_SUPPRESS`: how long `normal` feedback silences a template. */
    suppressMs: number;
  };
  metrics: {
    /** `METRICS_HOST`: where a function process serves its own `/metrics`. */
    host: string;
    /** `METRICS_PORT`: its port; null (unset) serves none (the api has its own `/metrics`). */
    port: number | null;
  };
}

/** Thrown by {@linkcode loadConfig} with every problem found. */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** One message per bad variable. */
  readonly problems: readonly string[];
  /**
   * @param problems one message per bad variable
   */
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.problems = problems;
  }
}

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * Reads a secret file (`NAME_FILE`).
   * @default Deno.readTextFileSync
   */
  readFile?: (path: string) => string;
  /**
   * Host name used in the default instance name.
   * @default Deno.hostname()
   */
  hostname?: string;
}

const _SECRET_PATHS = [
  "redis.password",
  "influx.password",
  "influx.token",
  "alerts.webhookUrl",
  "api.token",
];

/**
 * Turns the environment into a validated {@linkcode Config}.
 *
 * @param env the environment variables
 * @default env Deno.env.toObject()
 * @param options how secret files are read
 * @returns the settings
 * @throws {ConfigError} listing every bad variable at once
 */
export function loadConfig(
  env: Record<string, string | undefined> = Deno.env.toObject(),
  options: LoadConfigOptions = {},
): Config {
  const r = new _Reader(env, options.readFile ?? ((p) => Deno.readTextFileSync(p)));
  const hostname = options.hostname ?? _safeHostname();
  const config: Config = {
    dataDir: r.str("TAILWISE_DATA_DIR", "./.tailwise"),
    instance: r.name("TAILWISE_INSTANCE", `${hostname}-${Deno.pid}`),
    logLevel: r.oneOf("LOG_LEVEL", ["debug", "info", "warn", "error"] as const, "info"),
    redis: {
      url: r.url("REDIS_URL", ["redis:", "rediss:"]),
      username: r.optional("REDIS_USERNAME"),
      password: r.secret("REDIS_PASSWORD"),
      cluster: r.bool("REDIS_CLUSTER", false),
    },
    influx: {
      url: r.url("INFLUX_URL", ["http:", "https:"]),
      database: r.name("INFLUX_DATABASE", "tailwise"),
      retentionPolicy: r.name("INFLUX_RETENTION_POLICY", "tailwise"),
      retentionMs: r.duration("INFLUX_RETENTION", "30d", { allowZero: true }),
      username: r.optional("INFLUX_USERNAME"),
      password: r.secret("INFLUX_PASSWORD"),
      token: r.secret("INFLUX_TOKEN"),
      createDatabase: r.bool("INFLUX_CREATE_DATABASE", true),
    },
    docker: r.docker("DOCKER_HOST"),
    streams: {
      logs: r.name("LOG_STREAM", "tailwise:logs"),
      anomalies: r.name("ANOMALY_STREAM", "tailwise:anomalies"),
      deadLetter: r.name("DEAD_LETTER_STREAM", "tailwise:dead"),
      deploys: r.name("DEPLOY_STREAM", "tailwise:deploys"),
      maxLen: r.int("STREAM_MAXLEN", 1_000_000, { min: 0 }),
      shards: r.int("LOG_STREAM_SHARDS", 1, { min: 1, max: 1024 }),
    },
    collect: {
      maxLineBytes: r.size("COLLECT_MAX_LINE_BYTES", "1MiB", { min: 1024 }),
      batchLines: r.int("COLLECT_BATCH_LINES", 1000, { min: 1, max: 100_000 }),
      bufferLines: r.int("COLLECT_BUFFER_LINES", 20_000, { min: 1 }),
      flushMs: r.duration("COLLECT_FLUSH_MS", "20ms"),
      appendsInFlight: r.int("COLLECT_APPENDS_IN_FLIGHT", 2, { min: 1, max: 16 }),
      multiline: r.pattern("COLLECT_MULTILINE", "auto", ["auto", "off"]),
      multilineFlushMs: r.duration("COLLECT_MULTILINE_FLUSH_MS", "1s", { allowZero: true }),
      multilineQuietMs: r.duration("COLLECT_MULTILINE_QUIET_MS", "50ms", { allowZero: true }),
      multilineMaxLines: r.int("COLLECT_MULTILINE_MAX_LINES", 500, { min: 1, max: 100_000 }),
      multilineMaxBytes: r.size("COLLECT_MULTILINE_MAX_BYTES", "128KiB", { min: 1024 }),
      lastLines: r.int("COLLECT_LAST_LINES", 20, { min: 0, max: 1000 }),
    },
    deploys: {
      reportWindowMs: r.duration("DEPLOY_REPORT_WINDOW", "30m"),
      baselineMs: r.duration("DEPLOY_BASELINE", "6h"),
    },
    consumer: {
      batch: r.int("CONSUMER_BATCH", 1000, { min: 1, max: 100_000 }),
      blockMs: r.duration("CONSUMER_BLOCK_MS", "1s"),
      claimIdleMs: r.duration("CONSUMER_CLAIM_IDLE_MS", "30s"),
      maxDeliveries: r.int("CONSUMER_MAX_DELIVERIES", 5, { min: 1 }),
    },
    ingest: {
      batchLines: r.int("INGEST_BATCH_LINES", 5000, { min: 1 }),
      batchBytes: r.size("INGEST_BATCH_BYTES", "8MiB", { min: 1024 }),
      concurrency: r.int("INGEST_CONCURRENCY", 2, { min: 1, max: 16 }),
    },
    train: {
      schedule: r.cron("TRAIN_SCHEDULE", "*/15 * * * *"),
      windowMs: r.duration("TRAIN_WINDOW", "24h"),
      maxLines: r.int("TRAIN_MAX_LINES", 100_000, { min: 1 }),
      minLines: r.int("TRAIN_MIN_LINES", 500, { min: 1 }),
      shadowFactor: r.number("TRAIN_SHADOW_FACTOR", 3, { min: 1 }),
      keepVersions: r.int("MODEL_KEEP", 5, { min: 1 }),
      alertRate: r.number("ALERT_RATE", 0.005, { min: 0.00001, max: 0.5 }),
      seed: r.int("TRAIN_SEED", 42, { min: 0 }),
    },
    score: {
      coldStart: r.oneOf("COLD_START_ALERTS", ["severity", "none"] as const, "severity"),
    },
    alerts: {
      webhookUrl: r.secretUrl("WEBHOOK_URL"),
      webhookFormat: r.oneOf("WEBHOOK_FORMAT", ["json", "slack"] as const, "json"),
      groupWindowMs: r.duration("ALERT_GROUP_WINDOW", "60s", { allowZero: true }),
      ratePerMinute: r.int("ALERT_RATE_LIMIT", 30, { min: 1 }),
      mode: r.oneOf("ALERT_MODE", ["incident", "anomaly"] as const, "incident"),
      incidentQuietMs: r.duration("INCIDENT_QUIET", "10m"),
    },
    api: {
      host: r.str("API_HOST", "127.0.0.1"),
      port: r.int("API_PORT", 8080, { min: 0, max: 65535 }),
      token: r.secret("API_TOKEN"),
      bodyLimit: r.size("API_BODY_LIMIT", "1MiB", { min: 1024 }),
      suppressMs: r.duration("FEEDBACK_SUPPRESS", "24h"),
    },
    metrics: {
      host: r.str("METRICS_HOST", "127.0.0.1"),
      port: _orNull(r.int("METRICS_PORT", -1, { min: 0, max: 65535 })),
    },
  };
  if (config.api.token !== null && config.api.token.length < 16) {
    r.problems.push("API_TOKEN is too short: expected at least 16 characters");
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return config;
}

/**
 * A copy of the config that is safe to print: every secret is replaced by
 * `"[redacted]"` and the password of a URL is masked.
 *
 * @param config the settings
 * @returns a plain object without secrets
 */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  for (const path of _SECRET_PATHS) {
    const [group, key] = path.split(".") as [string, string];
    const section = copy[group];
    if (section && section[key] !== null) section[key] = "[redacted]";
  }
  const redis = copy.redis;
  if (redis && typeof redis.url === "string") redis.url = redactUrl(redis.url);
  const influx = copy.influx;
  if (influx && typeof influx.url === "string") influx.url = redactUrl(influx.url);
  return copy;
}

/**
 * Masks the password of a URL, for logs and errors.
 *
 * @param url any URL
 * @returns the URL with its password replaced by `***`
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "[unparseable url]";
  }
}

/**
 * Parses a duration such as `250ms`, `30s`, `5m`, `24h`, `7d` or a plain
 * number of milliseconds.
 *
 * @param text the duration
 * @returns milliseconds, or null when the text is not a duration
 */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(text);
  if (!m) return null;
  const unit = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2] ?? "ms"] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/**
 * Parses a size such as `64KB`, `1MiB`, `512` (bytes).
 *
 * @param text the size
 * @returns bytes, or null when the text is not a size
 */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$/i.exec(text);
  if (!m) return null;
  const units: Record<string, number> = {
    b: 1,
    kb: 1e3,
    kib: 1024,
    mb: 1e6,
    mib: 1024 ** 2,
    gb: 1e9,
    gib: 1024 ** 3,
  };
  return Math.round(Number(m[1]) * (units[(m[2] ?? "b").toLowerCase()] ?? 1));
}

function _safeHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "tailwise";
  }
}

class _Reader {
  readonly problems: string[] = [];
  #env: Record<string, string | undefined>;
  #readFile: (path: string) => string;

  constructor(env: Record<string, string | undefined>, readFile: (path: string) => string) {
    this.#env = env;
    this.#readFile = readFile;
  }

  #get(name: string): string | undefined {
    const v = this.#env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  #bad(name: string, value: string, expected: string): void {
    this.problems.push(`Cannot parse ${name} ${JSON.stringify(value)}: expected ${expected}`);
  }

  str(name: string, fallback: string): string {
    return this.#get(name) ?? fallback;
  }

  optional(name: string): string | null {
    return this.#get(name) ?? null;
  }

  name(name: string, fallback: string): string {
    const v = this.#get(name);
    if (v === undefined) return fallback;
    if (!/^[A-Za-z0-9_.:\-]{1,128}$/.test(v)) {
      this.#bad(name, v, "1 to 128 letters, digits or _ . : -");
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.#get(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.#bad(name, v, `one of ${allowed.join(", ")}`);
      return fallback;
    }
    return v as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.#get(name);
    if (v === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    this.#bad(name, v, "true or false");
    return fallback;
  }

  int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const v = this.#get(name);
    if (v === undefined) return fallback;
    const n = Number(v.replaceAll("_", ""));
    if (!Number.isInteger(n) || !_inRange(n, range)) {
      this.#bad(name, v, `an integer${_rangeText(range)}`);
      return fallback;
    }
    return n;
  }

  number(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const v = this.#get(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || !_inRange(n, range)) {
      this.#bad(name, v, `a number${_rangeText(range)}`);
      return fallback;
    }
    return n;
  }

  duration(name: string, fallback: string, opts: { allowZero?: boolean } = {}): number {
    const v = this.#get(name) ?? fallback;
    const ms = parseDuration(v);
    if (ms === null || (!opts.allowZero && ms === 0)) {
      this.#bad(
        name,
        v,
        `a duration such as 250ms, 30s, 5m, 24h or 7d${opts.allowZero ? "" : ", above 0"}`,
      );
      return parseDuration(fallback) ?? 0;
    }
    return ms;
  }

  size(name: string, fallback: string, range: { min?: number; max?: number } = {}): number {
    const v = this.#get(name) ?? fallback;
    const n = parseSize(v);
    if (n === null || !_inRange(n, range)) {
      this.#bad(name, v, `a size such as 65536, 64KiB or 1MiB${_rangeText(range)}`);
      return parseSize(fallback) ?? 0;
    }
    return n;
  }

  /** One of `words`, or a regular expression. */
  pattern(name: string, fallback: string, words: readonly string[]): string {
    const v = this.#get(name) ?? fallback;
    if (words.includes(v.toLowerCase())) return v.toLowerCase();
    try {
      new RegExp(v);
      return v;
    } catch {
      this.#bad(name, v, `${words.join(", ")} or a regular expression`);
      return fallback;
    }
  }

  cron(name: string, fallback: string): string {
    const v = this.#get(name) ?? fallback;
    const fields = v.split(/\s+/);
    if (fields.length !== 5 || !fields.every((f) => /^[\d*/,\-]+$/.test(f))) {
      this.#bad(name, v, "a 5-field cron expression such as */15 * * * *");
      return fallback;
    }
    return v;
  }

  url(name: string, protocols: string[]): string | null {
    const v = this.#get(name);
    if (v === undefined) return null;
    return this.#checkUrl(name, v, protocols, v);
  }

  #checkUrl(name: string, v: string, protocols: string[], shown: string): string | null {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      this.#bad(name, shown, `a ${protocols.map((p) => p.replace(":", "")).join(" or ")} URL`);
      return null;
    }
    if (!protocols.includes(u.protocol) || u.hostname === "") {
      this.#bad(name, shown, `a ${protocols.map((p) => p.replace(":", "")).join(" or ")} URL`);
      return null;
    }
    return v;
  }

  /** A secret from `NAME` or from the file named by `NAME_FILE`. */
  secret(name: string): string | null {
    const direct = this.#get(name);
    const file = this.#get(`${name}_FILE`);
    if (direct !== undefined && file !== undefined) {
      this.problems.push(`Both ${name} and ${name}_FILE are set: expected one of them`);
      return null;
    }
    if (file === undefined) return direct ?? null;
    try {
      const text = this.#readFile(file).trim();
      if (text === "") {
        this.problems.push(`Cannot use ${name}_FILE ${JSON.stringify(file)}: the file is empty`);
        return null;
      }
      return text;
    } catch (e) {
      const why = e instanceof Error ? e.message.split(":")[0] : String(e);
      this.problems.push(
        `Cannot read ${name}_FILE ${JSON.stringify(file)}: ${why}; expected a readable file`,
      );
      return null;
    }
  }

  secretUrl(name: string): string | null {
    const v = this.secret(name);
    if (v === null) return null;
    return this.#checkUrl(name, v, ["http:", "https:"], "[redacted]");
  }

  docker(name: string): DockerEndpoint {
    const v = this.#get(name);
    const fallback: DockerEndpoint = { kind: "socket", socketPath: "/var/run/docker.sock" };
    if (v === undefined) return fallback;
    if (v.startsWith("unix://")) {
      const socketPath = v.slice("unix://".length);
      if (socketPath.startsWith("/")) return { kind: "socket", socketPath };
    } else if (v.startsWith("/")) {
      return { kind: "socket", socketPath: v };
    } else if (/^(tcp|http|https):\/\//.test(v)) {
      try {
        const u = new URL(v.replace(/^tcp:/, "http:"));
        const protocol = u.protocol === "https:" ? "https" : "http";
        const port = Number(u.port || (protocol === "https" ? 2376 : 2375));
        if (u.hostname) return { kind: "tcp", host: u.hostname, port, protocol };
      } catch {
        // reported below
      }
    }
    this.#bad(name, v, "unix:///path/to/docker.sock or tcp://host:port");
    return fallback;
  }
}

function _inRange(n: number, range: { min?: number; max?: number }): boolean {
  return (range.min === undefined || n >= range.min) && (range.max === undefined || n <= range.max);
}

function _rangeText(range: { min?: number; max?: number }): string {
  if (range.min !== undefined && range.max !== undefined) {
    return ` from ${range.min} to ${range.max}`;
  }
  if (range.min !== undefined) return ` of at least ${range.min}`;
  if (range.max !== undefined) return ` of at most ${range.max}`;
  return "";
}

/**
 * {@linkcode loadConfig} for a function's `main.ts`: a bad environment prints
 * every problem on stderr and exits with code 2, before anything starts.
 *
 * @returns the settings
 */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      Deno.exit(2);
    }
    throw e;
  }
}

function _orNull(port: number): number | null {
  return port < 0 ? null : port;
}
