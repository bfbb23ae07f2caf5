/**
 * Runs a deno.json task's entry point as a child process with exactly the
 * Deno permission flags of that task (never `-A`), for tests that run a
 * function as a user would. The flags are read from deno.json, so a test
 * follows the task when its flags change.
 *
 * @module
 */

const _ROOT = new URL("../../", import.meta.url);

/**
 * The `deno` arguments of a task, e.g. `["run", "--allow-env", ..., "functions/api/main.ts"]`,
 * with its entry point made absolute.
 *
 * @param task the task name in deno.json (e.g. `api`)
 * @returns the arguments after `deno`
 * @throws {TypeError} when the task is missing or is not a `deno run` of one file
 */
export async function taskArgs(task: string): Promise<string[]> {
  const json = JSON.parse(await Deno.readTextFile(new URL("deno.json", _ROOT))) as {
    tasks?: Record<string, string | { command?: string }>;
  };
  const raw = json.tasks?.[task];
  const command = typeof raw === "string" ? raw : raw?.command;
  const parts = command?.trim().split(/\s+/) ?? [];
  if (parts[0] !== "deno" || parts[1] !== "run" || parts.length < 3) {
    throw new TypeError(
      `Cannot run task ${JSON.stringify(task)}: expected "deno run <flags> <file>", got ${
        JSON.stringify(command)
      }`,
    );
  }
  if (parts.includes("-A") || parts.includes("--allow-all")) {
    throw new TypeError(`Cannot run task ${JSON.stringify(task)} in a test: it grants -A`);
  }
  const args = parts.slice(1);
  const entry = args.pop()!;
  return [...args, new URL(entry, _ROOT).pathname];
}

/** How a task runs: its environment and where. */
export interface TaskOptions {
  /** Its environment, replacing the parent's (PATH kept, NO_COLOR=1). */
  env?: Record<string, string>;
  /** Arguments after the entry point. */
  args?: string[];
  /** Its working directory (default: the repository root). */
  cwd?: string;
}

async function _command(task: string, options: TaskOptions): Promise<Deno.Command> {
  return new Deno.Command(Deno.execPath(), {
    args: [...await taskArgs(task), ...(options.args ?? [])],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", ...options.env },
    clearEnv: true,
    cwd: options.cwd ?? _ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** What a task that ran to its end wrote, and how it exited. */
export interface TaskOutput {
  /** Its exit code. */
  code: number;
  /** All it wrote to stdout. */
  stdout: string;
  /** All it wrote to stderr. */
  stderr: string;
}

/**
 * Runs a task to its end with its own flags (e.g. a CLI command or a refusal).
 *
 * @param task the task name in deno.json (e.g. `cli`)
 * @param options its environment, extra arguments and working directory
 * @returns its exit code and output
 */
export async function runTask(task: string, options: TaskOptions = {}): Promise<TaskOutput> {
  const out = await (await _command(task, options)).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A task running as a child process, with its stderr and stdout lines captured. */
export class TaskProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #stdout: string[] = [];
  readonly #done: Promise<Deno.CommandStatus>;

  /**
   * Spawns a task.
   *
   * @param task the task name in deno.json
   * @param options its environment, extra arguments and working directory
   * @returns the running process
   */
  static async start(task: string, options: TaskOptions = {}): Promise<TaskProcess> {
    return new TaskProcess((await _command(task, options)).spawn());
  }

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
    this.#done = Promise.all([
      child.status,
      pump(child.stderr, this.#lines),
      pump(child.stdout, this.#stdout),
    ]).then(([s]) => s);
  }

  /** Its stderr lines so far. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** Its stdout lines so far. */
  get stdout(): readonly string[] {
    return this.#stdout;
  }

  /**
   * Everything it wrote so far, stdout then stderr, one line a line (for matching a message
   * whichever stream it went to).
   *
   * @returns the text
   */
  text(): string {
    return [...this.#stdout, ...this.#lines].join("\n");
  }

  /** Its process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /**
   * Its stderr lines parsed as JSON log records (other lines skipped).
   *
   * @returns the records
   */
  records(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.#lines) {
      try {
        const v = JSON.parse(l);
        if (typeof v === "object" && v !== null) out.push(v);
      } catch {
        // not a log record
      }
    }
    return out;
  }

  /**
   * Whether it still runs.
   *
   * @returns false once it has exited
   */
  async running(): Promise<boolean> {
    return await Promise.race([this.#done.then(() => false), Promise.resolve(true)]);
  }

  /** Resolves with the exit status. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  /**
   * Sends a signal and waits for the exit.
   *
   * @param signal the signal
   * @returns the exit status
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // already gone
    }
    return await this.#done;
  }

  /** Stops it with SIGKILL if it still runs. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}
