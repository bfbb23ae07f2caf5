/**
 * `--help` for the function tasks: each prints its usage and the settings
 * (environment variables) it reads, and exits without starting anything.
 *
 * @module
 */

const _COMMON = [
  "TAILWISE_INSTANCE",
  "LOG_LEVEL",
  "REDIS_URL",
  "REDIS_USERNAME",
  "REDIS_PASSWORD[_FILE]",
  "REDIS_CLUSTER",
  "LOG_STREAM",
  "LOG_STREAM_SHARDS",
];
const _INFLUX = [
  "INFLUX_URL",
  "INFLUX_DATABASE",
  "INFLUX_RETENTION_POLICY",
  "INFLUX_RETENTION",
  "INFLUX_USERNAME",
  "INFLUX_PASSWORD[_FILE]",
  "INFLUX_TOKEN[_FILE]",
  "INFLUX_CREATE_DATABASE",
];
const _CONSUMER = [
  "CONSUMER_BATCH",
  "CONSUMER_BLOCK_MS",
  "CONSUMER_CLAIM_IDLE_MS",
  "CONSUMER_MAX_DELIVERIES",
  "DEAD_LETTER_STREAM",
];
const _ALERTS = [
  "ANOMALY_STREAM",
  "WEBHOOK_URL[_FILE]",
  "WEBHOOK_FORMAT",
  "ALERT_GROUP_WINDOW",
  "ALERT_RATE_LIMIT",
  "ALERT_MODE",
  "INCIDENT_QUIET",
];
const _TRAIN = [
  "TRAIN_SCHEDULE",
  "TRAIN_WINDOW",
  "TRAIN_MAX_LINES",
  "TRAIN_MIN_LINES",
  "TRAIN_SHADOW_FACTOR",
  "MODEL_KEEP",
  "ALERT_RATE",
  "TRAIN_SEED",
];
const _METRICS = ["METRICS_HOST", "METRICS_PORT"];

/** Usage and settings of each function task. */
export const TASK_HELP: Readonly<Record<string, { usage: string; about: string; env: string[] }>> =
  {
    collect: {
      usage: "deno task collect",
      about: "Follows the logs of every container of the Docker engine and appends them, with\n" +
        "checkpoints, to the log stream (Redis with REDIS_URL, else the embedded one).",
      env: [
        ..._COMMON,
        "TAILWISE_DATA_DIR",
        "DOCKER_HOST",
        "STREAM_MAXLEN",
        "COLLECT_MAX_LINE_BYTES",
        "COLLECT_BATCH_LINES",
        "COLLECT_BUFFER_LINES",
        "COLLECT_FLUSH_MS",
        "COLLECT_APPENDS_IN_FLIGHT",
        "COLLECT_MULTILINE",
        "COLLECT_MULTILINE_FLUSH_MS",
        "COLLECT_MULTILINE_QUIET_MS",
        "COLLECT_MULTILINE_MAX_LINES",
        "COLLECT_MULTILINE_MAX_BYTES",
        "COLLECT_LAST_LINES",
        "DEPLOY_STREAM",
        "DEPLOY_REPORT_WINDOW",
        "DEPLOY_BASELINE",
        ..._ALERTS,
        ..._METRICS,
      ],
    },
    ingest: {
      usage: "deno task ingest",
      about:
        "Reads the log stream in consumer group `ingest` and writes the history to InfluxDB\n" +
        "(needs REDIS_URL and INFLUX_URL).",
      env: [
        ..._COMMON,
        ..._INFLUX,
        ..._CONSUMER,
        "INGEST_BATCH_LINES",
        "INGEST_BATCH_BYTES",
        "INGEST_CONCURRENCY",
        ..._METRICS,
      ],
    },
    score: {
      usage: "deno task score",
      about:
        "Reads the log stream in consumer group `score`, scores each line with its service's\n" +
        "current model and raises anomalies (needs REDIS_URL).",
      env: [..._COMMON, ..._CONSUMER, ..._ALERTS, "COLD_START_ALERTS", ..._METRICS],
    },
    train: {
      usage: "deno task train [--once | --container NAME]",
      about: "Trains models on TRAIN_SCHEDULE, and a service's first one as soon as it has\n" +
        "TRAIN_MIN_LINES lines (needs REDIS_URL and INFLUX_URL). --once trains every service with\n" +
        "new data and exits; --container NAME trains one and exits.",
      env: [..._COMMON, ..._INFLUX, ..._TRAIN, ..._METRICS],
    },
    api: {
      usage: "deno task api",
      about: "Serves the HTTP api and the dashboard on API_HOST:API_PORT (Redis with REDIS_URL,\n" +
        "else the embedded adapters; INFLUX_URL for on-demand training from the history).",
      env: [
        ..._COMMON,
        "TAILWISE_DATA_DIR",
        "API_HOST",
        "API_PORT",
        "API_TOKEN[_FILE]",
        "API_BODY_LIMIT",
        "FEEDBACK_SUPPRESS",
        "ANOMALY_STREAM",
        ..._INFLUX,
        ..._TRAIN,
      ],
    },
  };

/**
 * The `--help` text of a function task.
 *
 * @param task `collect`, `ingest`, `score`, `train` or `api`
 * @returns the usage, what it does and the settings it reads
 * @throws {RangeError} for another name
 */
export function taskHelp(task: string): string {
  const h = TASK_HELP[task];
  if (!h) {
    throw new RangeError(
      `Cannot describe task ${JSON.stringify(task)}: expected one of ${
        Object.keys(TASK_HELP).join(", ")
      }`,
    );
  }
  const rows: string[] = [];
  for (let i = 0; i < h.env.length; i += 3) rows.push(`  ${h.env.slice(i, i + 3).join("  ")}`);
  return `Usage: ${h.usage} [--help]\n\n${h.about}\n\n` +
    "Settings (environment variables; see the README's configuration table):\n" +
    `${rows.join("\n")}`;
}

/**
 * Prints the task's help and exits with 0 when `--help` or `-h` is among the
 * arguments; otherwise returns. Call it first, before reading the config.
 *
 * @param task the task name
 * @param args the process's arguments
 * @default args Deno.args
 */
export function exitOnHelp(task: string, args: readonly string[] = Deno.args): void {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(taskHelp(task));
    Deno.exit(0);
  }
}
