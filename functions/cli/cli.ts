/**
 * The tailwise command line: `train` a container's model from a file,
 * `score` a file's lines against it and judge a timestamped file's volume
 * per window with `rates`. The logic takes its dependencies (the
 * registry, the output streams, whether stderr is a terminal) as a parameter;
 * `main.ts` builds them.
 *
 * Exit codes: 0 success, 1 runtime error (missing file, unknown container,
 * unreadable model), 2 usage error (unknown command or flag, missing value).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  bundleModel,
  Detector,
  formatTimestamp,
  learnRates,
  ModelFormatError,
  type RateModel,
  type TimedLine,
  trainDetector,
} from "../../shared/detector/detector.ts";
import { ModelNotFoundError, type ModelRegistry } from "../../shared/ports/model_registry.ts";
import { loadModels, readTimedLines, renderRates, stripTimestamps } from "./rates_command.ts";
import {
  MultilineGrouper,
  type MultilineMode,
  parseMultilineMode,
} from "../../shared/sources/multiline.ts";

/** What the CLI needs from the outside world. */
export interface CliDeps {
  /** Opens the model registry (only commands that need it call this). */
  openRegistry: () => Promise<ModelRegistry>;
  /** Writes to standard output. */
  stdout: (text: string) => Promise<void>;
  /** Writes to standard error. */
  stderr: (text: string) => Promise<void>;
  /** Whether standard error is a terminal (progress is shown only then). */
  stderrIsTerminal: boolean;
  /** Opens a file (or `-` for standard input) as a byte stream. */
  openFile: (path: string) => Promise<ReadableStream<Uint8Array>>;
}

/** A usage error: exit code 2. */
export class UsageError extends Error {
  /** @param message What is wrong with the command line. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const USAGE = `Usage: deno task cli <command> [options]

Commands:
  train   train a container's model from a file of log lines
  score   score a file of log lines against a container's model
  rates   judge a timestamped file's volume per window against the learned rates
  help    show this help

Run "deno task cli <command> --help" for a command's options.`;

const TRAIN_USAGE = `Usage: deno task cli train --container NAME --file PATH [options]

Trains a model from PATH (log lines; "-" reads stdin) and stores it as the
container's new current version in the model registry (embedded under
TAILWISE_DATA_DIR, default ./.tailwise, or Redis when REDIS_URL is set). Lines
are grouped into events first (a stack trace is one event), as collect does.

Options:
  --container NAME    the container the model is for (required)
  --file PATH         the training lines (required)
  --seed N            PRNG seed (default 1)
  --trees N           isolation trees (default 100)
  --sample-size N     lines per tree (default 256)
  --alert-rate R      share of training events above the threshold (default 0.005)
  --multiline MODE    "auto" (default: stack traces and indented lines join their
                      first line), "off" (every line is an event), or a regular
                      expression matching the first line of an event
  --timestamps        each line starts with an RFC 3339 timestamp, as "docker logs -t"
                      prints it; it is stripped before training and the rates per
                      window (events in total and per template, by time of day) are
                      learned too
  --window-seconds N  rate window length (default 60)
  -h, --help          show this help`;

const RATES_USAGE = `Usage: deno task cli rates --container NAME --file PATH --timestamps [--jsonl]

Counts the events of PATH ("-" reads stdin; each line starts with an RFC 3339
timestamp, as "docker logs -t" prints it; a stack trace is one event, as in
train) per window and judges every window from the first line's to the last
line's, windows without lines included, against the rates learned by
"train --timestamps". One JSON object per window, in time order:
{"start":"2026-11-30T10:00:00.000Z","end":"2026-11-30T10:01:00.000Z","lines":0,
 "expected":42.5,"anomaly":true,"score":0.83,
 "reasons":[{"code":"silence","expected":42.5,"observed":0,"windows":1}],
 "templates":[{"templateId":"...","template":"...","observed":0,"expected":30.1}]}
Reason codes: silence, rate_drop, rate_spike (of the total, or of one template
when templateId is set), template_gone. "expected" is null where the history
is too thin to say (such windows never alert).

Options:
  --container NAME    the container whose model to use (required)
  --file PATH         the timestamped lines (required)
  --timestamps        the lines start with timestamps (implied; accepted for symmetry)
  --jsonl             one compact JSON object per window (the default format)
  --anomalies-only    print only anomalous windows
  --multiline MODE    "auto" (default), "off" or a regular expression (as for train)
  -h, --help          show this help`;

const SCORE_USAGE = `Usage: deno task cli score --container NAME --file PATH [--jsonl]

Groups the lines of PATH ("-" reads stdin) into events (a stack trace is one
event), scores every event against the container's current model and prints
one JSON object per input line, in input order. "event" is the line number of
the first line of the line's event; all lines of an event share its score and
verdict:
{"line":1,"event":1,"score":0.03,"anomaly":false,"threshold":0.52,
 "template":"...","templateId":"...","reasons":[],"tokens":[],"explanation":[]}
("explanation" names the slots and values that drove an anomaly's score,
e.g. "status=502: never seen here".)

Options:
  --container NAME    the container whose model to use (required)
  --file PATH         the lines to score (required)
  --jsonl             one compact JSON object per line (the default format)
  --anomalies-only    print only the lines flagged as anomalies
  --multiline MODE    "auto" (default), "off" or a regular expression matching
                      the first line of an event (as for train)
  --timestamps        each line starts with an RFC 3339 timestamp: it is stripped
                      before scoring and printed as "time"
  -h, --help          show this help`;

/**
 * Run the CLI.
 *
 * @param args Command-line arguments (without the program name).
 * @param deps Registry, output and file access.
 * @returns The exit code.
 */
export async function runCli(args: readonly string[], deps: CliDeps): Promise<number> {
  try {
    const [command, ...rest] = args;
    switch (command) {
      case "train":
        return await _train(rest, deps);
      case "score":
        return await _score(rest, deps);
      case "rates":
        return await _rates(rest, deps);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        await deps.stdout(USAGE + "\n");
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}": expected train, score or rates`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      await deps.stderr(`tailwise: ${err.message}\nRun "deno task cli --help" for usage.\n`);
      return 2;
    }
    await deps.stderr(`tailwise: ${_describe(err)}\n`);
    return 1;
  }
}

function _parse<T extends Record<string, { type: "string" | "boolean"; short?: string }>>(
  args: readonly string[],
  options: T,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function _required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v.length === 0) {
    throw new UsageError(`Missing --${name}: expected --${name} <value>`);
  }
  return v;
}

function _number(
  values: Record<string, unknown>,
  name: string,
  check: (n: number) => boolean,
  expected: string,
): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !check(n)) {
    throw new UsageError(`Cannot use --${name} ${JSON.stringify(v)}: expected ${expected}`);
  }
  return n;
}

async function _train(args: readonly string[], deps: CliDeps): Promise<number> {
  const values = _parse(args, {
    container: { type: "string" },
    file: { type: "string" },
    seed: { type: "string" },
    trees: { type: "string" },
    "sample-size": { type: "string" },
    "alert-rate": { type: "string" },
    multiline: { type: "string" },
    timestamps: { type: "boolean" },
    "window-seconds": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    await deps.stdout(TRAIN_USAGE + "\n");
    return 0;
  }
  const container = _required(values, "container");
  const file = _required(values, "file");
  const isInt = (lo: number, hi: number) => (n: number) =>
    Number.isInteger(n) && n >= lo && n <= hi;
  const seed = _number(values, "seed", isInt(0, 2 ** 32 - 1), "an integer in 0..4294967295");
  const trees = _number(values, "trees", isInt(1, 10000), "an integer in 1..10000");
  const sampleSize = _number(values, "sample-size", isInt(2, 65535), "an integer in 2..65535");
  const alertRate = _number(
    values,
    "alert-rate",
    (n) => n > 0 && n <= 0.5,
    "a number in (0, 0.5]",
  );
  const mode = _multiline(values);
  const windowSeconds = _number(
    values,
    "window-seconds",
    isInt(1, 3600),
    "an integer in 1..3600",
  );
  const timestamps = values.timestamps === true;
  const stream = await _open(deps, file);
  const started = performance.now();
  let lastDraw = 0;
  const progress = deps.stderrIsTerminal
    ? (done: number) => {
      const now = performance.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      deps.stderr(`\rtraining ${container}: ${done.toLocaleString("en-US")} events read`).catch(
        () => {},
      );
    }
    : undefined;
  let detector: Detector;
  let inputLines = 0;
  async function* counted(): AsyncGenerator<string> {
    for await (const line of readLines(stream)) {
      inputLines++;
      yield line;
    }
  }
  let timed: TimedLine[] | undefined;
  try {
    if (timestamps) {
      const lines = await readTimedLines(readLines(stream));
      inputLines = lines.length;
      timed = await timedEvents(lines, mode);
    }
    detector = await trainDetector(timed?.map((e) => e.line) ?? readEvents(counted(), mode), {
      seed,
      trees,
      sampleSize,
      alertRate,
      onProgress: progress,
    });
  } catch (err) {
    if (err instanceof RangeError && /0 lines/.test(err.message)) {
      throw new Error(`Cannot train on "${file}": the file has no lines`);
    }
    throw err;
  }
  if (progress) await deps.stderr("\r\x1b[K");
  let rates: RateModel | undefined;
  if (timed !== undefined) {
    rates = learnRates(detector, timed, {
      windowMs: windowSeconds === undefined ? undefined : windowSeconds * 1000,
    });
  }
  const blob = bundleModel(detector.toBytes(), rates?.toBytes());
  const registry = await deps.openRegistry();
  try {
    const meta = await registry.put(container, blob, {
      lines: detector.info.trainedLines,
      threshold: detector.info.threshold,
    });
    await deps.stdout(
      JSON.stringify({
        container,
        version: meta.version,
        lines: inputLines,
        events: detector.info.trainedLines,
        templates: detector.info.templates,
        merged: detector.info.merged,
        threshold: detector.info.threshold,
        trainAboveThreshold: detector.info.trainAboveThreshold,
        ...(rates === undefined ? {} : {
          rates: {
            windowSeconds: rates.windowMs / 1000,
            profile: rates.periodMs > 86_400_000 ? "hour-of-week" : "time-of-day",
            slotMinutes: rates.slotMs / 60_000,
            templates: rates.templates.size,
            from: formatTimestamp(rates.trainedFrom),
            to: formatTimestamp(rates.trainedTo),
          },
        }),
        bytes: blob.length,
        seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      }) + "\n",
    );
  } finally {
    await registry[Symbol.asyncDispose]();
  }
  return 0;
}

async function _score(args: readonly string[], deps: CliDeps): Promise<number> {
  const values = _parse(args, {
    container: { type: "string" },
    file: { type: "string" },
    jsonl: { type: "boolean" },
    "anomalies-only": { type: "boolean" },
    multiline: { type: "string" },
    timestamps: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    await deps.stdout(SCORE_USAGE + "\n");
    return 0;
  }
  const container = _required(values, "container");
  const file = _required(values, "file");
  const anomaliesOnly = values["anomalies-only"] === true;
  const mode = _multiline(values);
  const { detector } = await _loadModels(deps, container);
  const stream = await _open(deps, file);
  let out = "";
  let n = 0;
  const times: number[] = [];
  const raw = readLines(stream);
  const input = values.timestamps === true ? stripTimestamps(raw, times) : raw;
  for await (const lines of readEventLines(input, mode)) {
    const first = n + 1;
    n += lines.length;
    const s = detector.score(lines.length === 1 ? lines[0]! : lines.join("\n"));
    if (anomaliesOnly && !s.anomaly) continue;
    const rest = JSON.stringify({
      score: s.score,
      anomaly: s.anomaly,
      threshold: s.threshold,
      template: s.template,
      templateId: s.templateId,
      reasons: s.reasons,
      tokens: s.tokens,
      explanation: s.explanation,
    }).slice(1);
    for (let k = 0; k < lines.length; k++) {
      const t = times[first + k - 1];
      const time = values.timestamps !== true
        ? ""
        : `"time":${t === undefined || !Number.isFinite(t) ? "null" : `"${formatTimestamp(t)}"`},`;
      out += `{"line":${first + k},"event":${first},${time}${rest}\n`;
    }
    if (out.length >= 1 << 16) {
      await deps.stdout(out);
      out = "";
    }
  }
  if (out.length > 0) await deps.stdout(out);
  return 0;
}

async function _rates(args: readonly string[], deps: CliDeps): Promise<number> {
  const values = _parse(args, {
    container: { type: "string" },
    file: { type: "string" },
    jsonl: { type: "boolean" },
    timestamps: { type: "boolean" },
    "anomalies-only": { type: "boolean" },
    multiline: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    await deps.stdout(RATES_USAGE + "\n");
    return 0;
  }
  const container = _required(values, "container");
  const file = _required(values, "file");
  const mode = _multiline(values);
  const { detector, rates } = await _loadModels(deps, container);
  if (rates === undefined) {
    throw new Error(
      `Container "${container}" has no rate model: train it with timestamped lines, ` +
        `"deno task cli train --container ${container} --file PATH --timestamps"`,
    );
  }
  const lines = await readTimedLines(readLines(await _open(deps, file)));
  const events = await timedEvents(lines, mode);
  let out = "";
  for (const row of renderRates(detector, rates, events, values["anomalies-only"] === true)) {
    out += row;
    if (out.length >= 1 << 16) {
      await deps.stdout(out);
      out = "";
    }
  }
  if (out.length > 0) await deps.stdout(out);
  return 0;
}

async function _loadModels(
  deps: CliDeps,
  container: string,
): Promise<ReturnType<typeof loadModels>> {
  const registry = await deps.openRegistry();
  try {
    const { blob } = await registry.get(container);
    return loadModels(blob);
  } catch (err) {
    if (err instanceof ModelNotFoundError) {
      throw new Error(
        `Unknown container "${container}": it has no model; train one with ` +
          `"deno task cli train --container ${container} --file PATH"`,
      );
    }
    throw err;
  } finally {
    await registry[Symbol.asyncDispose]();
  }
}

/**
 * Group timestamped lines into events ({@linkcode readEventLines}); an
 * event's time is its first line's.
 *
 * @param lines The timestamped lines, in order.
 * @param mode How events start.
 * @returns The events with their times.
 */
export async function timedEvents(
  lines: readonly TimedLine[],
  mode: MultilineMode,
): Promise<TimedLine[]> {
  async function* texts(): AsyncGenerator<string> {
    for (const l of lines) yield l.line;
  }
  const out: TimedLine[] = [];
  let n = 0;
  for await (const e of readEventLines(texts(), mode)) {
    out.push({ time: lines[n]!.time, line: e.length === 1 ? e[0]! : e.join("\n") });
    n += e.length;
  }
  return out;
}

async function _open(deps: CliDeps, file: string): Promise<ReadableStream<Uint8Array>> {
  try {
    return await deps.openFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot read file "${file}": no such file`);
    }
    if (err instanceof Deno.errors.IsADirectory) {
      throw new Error(`Cannot read file "${file}": it is a directory`);
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new Error(`Cannot read file "${file}": permission denied`);
    }
    throw err;
  }
}

function _multiline(values: Record<string, unknown>): MultilineMode {
  const v = values.multiline;
  if (v === undefined) return { kind: "auto" };
  try {
    return parseMultilineMode(String(v));
  } catch (err) {
    throw new UsageError(
      `Cannot use --multiline ${JSON.stringify(v)}: expected auto, off or a regular expression ` +
        `(${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

/**
 * Group lines into events as collect does (a stack trace is one event), with
 * no flush timeout: a file is read to its end.
 *
 * @param lines The lines, in order.
 * @param mode How events start.
 * @default {mode} auto
 * @returns Each event's lines, in order.
 */
export async function* readEventLines(
  lines: AsyncIterable<string>,
  mode: MultilineMode = { kind: "auto" },
): AsyncGenerator<string[]> {
  const ready: string[][] = [];
  const grouper = new MultilineGrouper<number>((e) => ready.push(e.lines), { mode });
  let n = 0;
  for await (const line of lines) {
    grouper.push(line, n++);
    while (ready.length > 0) yield ready.shift()!;
  }
  grouper.flush();
  while (ready.length > 0) yield ready.shift()!;
}

/**
 * Group lines into events ({@linkcode readEventLines}) and join each event's
 * lines with `\n`, as an event travels in the log stream.
 *
 * @param lines The lines, in order.
 * @param mode How events start.
 * @default {mode} auto
 * @returns The events' texts.
 */
export async function* readEvents(
  lines: AsyncIterable<string>,
  mode: MultilineMode = { kind: "auto" },
): AsyncGenerator<string> {
  for await (const e of readEventLines(lines, mode)) yield e.length === 1 ? e[0]! : e.join("\n");
}

/**
 * Split a byte stream into lines: `\n` or `\r\n` ends a line, a final line
 * without a newline counts, invalid UTF-8 becomes U+FFFD.
 *
 * @param stream The bytes.
 * @returns The lines, without their line endings.
 */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  let rest = "";
  for await (const chunk of stream) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield text.substring(start, end);
      start = nl + 1;
    }
    rest = text.substring(start);
  }
  rest += decoder.decode();
  if (rest.length > 0) yield rest.endsWith("\r") ? rest.slice(0, -1) : rest;
}

function _describe(err: unknown): string {
  if (err instanceof ModelFormatError) return `Cannot load the model: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
