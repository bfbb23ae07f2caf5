/**
 * The tailwise command line: `train` a container's model from a file and
 * `score` a file's lines against it. The logic takes its dependencies (the
 * registry, the output streams, whether stderr is a terminal) as a parameter;
 * `main.ts` builds them.
 *
 * Exit codes: 0 success, 1 runtime error (missing file, unknown container,
 * unreadable model), 2 usage error (unknown command or flag, missing value).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Detector, ModelFormatError, trainDetector } from "../../shared/detector/detector.ts";
import { ModelNotFoundError, type ModelRegistry } from "../../shared/model_registry.ts";

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
  help    show this help

Run "deno task cli <command> --help" for a command's options.`;

const TRAIN_USAGE = `Usage: deno task cli train --container NAME --file PATH [options]

Trains a model from PATH (one log line per line; "-" reads stdin) and stores it
as the container's new current version in the model registry (embedded under
TAILWISE_DATA_DIR, default ./.tailwise, or Redis when REDIS_URL is set).

Options:
  --container NAME    the container the model is for (required)
  --file PATH         the training lines (required)
  --seed N            PRNG seed (default 1)
  --trees N           isolation trees (default 100)
  --sample-size N     lines per tree (default 256)
  --alert-rate R      share of training lines above the threshold (default 0.005)
  -h, --help          show this help`;

const SCORE_USAGE = `Usage: deno task cli score --container NAME --file PATH [--jsonl]

Scores every line of PATH ("-" reads stdin) against the container's current
model and prints one JSON object per input line, in input order:
{"line":1,"score":0.03,"anomaly":false,"threshold":0.52,"template":"...",
 "templateId":"...","reasons":[],"tokens":[],"explanation":[]}
("explanation" names the slots and values that drove an anomaly's score,
e.g. "status=502: never seen here".)

Options:
  --container NAME    the container whose model to use (required)
  --file PATH         the lines to score (required)
  --jsonl             one compact JSON object per line (the default format)
  --anomalies-only    print only the lines flagged as anomalies
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
      case undefined:
      case "help":
      case "--help":
      case "-h":
        await deps.stdout(USAGE + "\n");
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}": expected train or score`);
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
  const stream = await _open(deps, file);
  const started = performance.now();
  let lastDraw = 0;
  const progress = deps.stderrIsTerminal
    ? (done: number) => {
      const now = performance.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      deps.stderr(`\rtraining ${container}: ${done.toLocaleString("en-US")} lines read`).catch(
        () => {},
      );
    }
    : undefined;
  let detector: Detector;
  try {
    detector = await trainDetector(readLines(stream), {
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
  const blob = detector.toBytes();
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
        lines: detector.info.trainedLines,
        templates: detector.info.templates,
        threshold: detector.info.threshold,
        trainAboveThreshold: detector.info.trainAboveThreshold,
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
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    await deps.stdout(SCORE_USAGE + "\n");
    return 0;
  }
  const container = _required(values, "container");
  const file = _required(values, "file");
  const anomaliesOnly = values["anomalies-only"] === true;
  const registry = await deps.openRegistry();
  let detector: Detector;
  try {
    const { blob } = await registry.get(container);
    detector = Detector.fromBytes(blob);
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
  const stream = await _open(deps, file);
  let out = "";
  let n = 0;
  for await (const line of readLines(stream)) {
    n++;
    const s = detector.score(line);
    if (anomaliesOnly && !s.anomaly) continue;
    out += JSON.stringify({
      line: n,
      score: s.score,
      anomaly: s.anomaly,
      threshold: s.threshold,
      template: s.template,
      templateId: s.templateId,
      reasons: s.reasons,
      tokens: s.tokens,
      explanation: s.explanation,
    }) + "\n";
    if (out.length >= 1 << 16) {
      await deps.stdout(out);
      out = "";
    }
  }
  if (out.length > 0) await deps.stdout(out);
  return 0;
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
