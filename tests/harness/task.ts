/**
 * Runs a deno.json task's command as a child process with the task's own
 * permission flags (never -A for the code under test).
 *
 * @module
 */

const _ROOT = new URL("../../", import.meta.url);

/**
 * The `deno` arguments of a task of deno.json (`deno run --allow-... file`),
 * with the file made absolute.
 *
 * @param name the task's name
 * @returns the arguments after `deno`
 * @throws {Error} when the task is not a plain `deno run` of one file
 */
export function taskArgs(name: string): string[] {
  const json = JSON.parse(Deno.readTextFileSync(new URL("deno.json", _ROOT))) as {
    tasks: Record<string, string>;
  };
  const command = json.tasks[name];
  const words = command?.split(/\s+/) ?? [];
  if (words[0] !== "deno" || words[1] !== "run" || words.some((w) => w === "-A")) {
    throw new Error(
      `Cannot run task ${name} ${JSON.stringify(command)}: expected deno run <flags> <file>`,
    );
  }
  const file = words.at(-1)!;
  return [...words.slice(1, -1), new URL(file, _ROOT).pathname];
}

/**
 * The variables a child process needs from the test's environment to find
 * its tools and Deno's cache (`PATH`, `HOME`, `DENO_DIR`), and nothing else.
 *
 * @returns the variables that are set
 */
export function passThrough(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** A task running as a child process, with its output captured. */
export class TaskProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  #out: string[] = [];
  #done: Promise<Deno.CommandStatus>;

  /**
   * Starts a task.
   *
   * @param name the deno.json task
   * @param env its whole environment
   * @param args more arguments after the task's file
   */
  constructor(name: string, env: Record<string, string>, args: string[] = []) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: [...taskArgs(name), ...args],
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const read = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) this.#out.push(chunk);
    };
    this.#done = Promise.all([this.child.status, read(this.child.stdout), read(this.child.stderr)])
      .then(([s]) => s);
  }

  /**
   * Everything it wrote so far (stdout and stderr).
   *
   * @returns the text
   */
  text(): string {
    return this.#out.join("");
  }

  /**
   * Its JSON log lines so far (other lines skipped).
   *
   * @returns the records
   */
  records(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.text().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // a line cut between two chunks, or not a record
      }
    }
    return out;
  }

  /**
   * Sends a signal and waits for the exit.
   *
   * @param signal the signal
   * @returns the exit status
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
    return await this.#done;
  }

  /** Kills it if still running. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}
