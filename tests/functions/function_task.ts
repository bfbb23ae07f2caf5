/**
 * Runs a function's deno.json task (collect, ingest, score, train...) as a
 * child process for the tests, with exactly the permission flags of that task
 * (never `-A`), and reads what it wrote to Redis.
 *
 * @module
 */

import { type Anomaly, fieldsToAnomaly } from "../../shared/ports/anomaly.ts";
import { type Deploy, fieldsToDeploy } from "../../shared/ports/deploy.ts";
import type { Redis } from "ioredis";

const _ROOT = new URL("../../", import.meta.url);

/**
 * The `deno` arguments of a deno.json task, its entry point made absolute.
 *
 * @param task the task's name
 * @returns the arguments after `deno`
 * @throws {TypeError} when the task is not `deno run <flags> <file>` or grants -A
 */
export async function taskArgs(task: string): Promise<string[]> {
  const json = JSON.parse(await Deno.readTextFile(new URL("deno.json", _ROOT))) as {
    tasks?: Record<string, string>;
  };
  const parts = json.tasks?.[task]?.trim().split(/\s+/) ?? [];
  if (parts[0] !== "deno" || parts[1] !== "run" || parts.includes("-A")) {
    throw new TypeError(
      `Cannot run task ${JSON.stringify(task)}: expected "deno run <flags> <file>"`,
    );
  }
  const args = parts.slice(1);
  const entry = args.pop()!;
  return [...args, new URL(entry, _ROOT).pathname];
}

/** A function's task as a child process, with its stderr and stdout captured. */
export class FunctionTask implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;
  /** Its stderr lines so far. */
  readonly lines: string[] = [];
  /** Its stdout lines so far. */
  readonly stdout: string[] = [];

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    const pump = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        into.push(...parts);
      }
      if (rest) into.push(rest);
    };
    const read = Promise.all([pump(child.stderr, this.lines), pump(child.stdout, this.stdout)]);
    this.#done = Promise.all([child.status, read]).then(([s]) => s);
  }

  /**
   * Starts a function's task with its own flags.
   *
   * @param task the task's name in deno.json (`collect`, `ingest`, `score`, `train`...)
   * @param env its environment (PATH is kept)
   * @param args arguments after the entry point
   * @default args []
   * @returns the running process
   */
  static async start(
    task: string,
    env: Record<string, string>,
    args: string[] = [],
  ): Promise<FunctionTask> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...await taskArgs(task), ...args],
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", ...env },
      clearEnv: true,
      cwd: _ROOT.pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new FunctionTask(child);
  }

  /**
   * Waits for its exit.
   *
   * @returns its exit status
   */
  finished(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  /**
   * Stops it with SIGTERM and waits for its exit.
   *
   * @returns its exit status
   */
  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // gone already
    }
    return await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Every anomaly of a stream.
 *
 * @param redis a client
 * @param stream the anomalies stream
 * @returns the anomalies, oldest first
 */
export async function readAnomalies(redis: Redis, stream: string): Promise<Anomaly[]> {
  const page = await redis.xrange(stream, "-", "+") as [string, string[]][];
  return page.map(([id, flat]) => fieldsToAnomaly(id, _fields(flat)));
}

/**
 * Every deploy of a stream.
 *
 * @param redis a client
 * @param stream the deploys stream
 * @returns the deploys, oldest first
 */
export async function readDeploys(redis: Redis, stream: string): Promise<Deploy[]> {
  const page = await redis.xrange(stream, "-", "+") as [string, string[]][];
  return page.map(([id, flat]) => fieldsToDeploy(id, _fields(flat)));
}

function _fields(flat: string[]): Record<string, string> {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return f;
}
