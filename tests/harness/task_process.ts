/**
 * Runs a function as its `deno task` would: the `deno run` flags and the
 * entry file are read from the task in deno.json, so the code under test gets
 * the task's permissions, never `-A`. Its JSON log lines are captured.
 *
 * @module
 */

const _root = new URL("../../", import.meta.url);

/**
 * The `deno` arguments of a task of deno.json (`run`, its flags, the file).
 *
 * @param task the task's name, e.g. `ingest`
 * @returns the arguments after `deno`
 * @throws {TypeError} when the task is missing or is not a `deno run`
 */
export function taskArgs(task: string): string[] {
  const json = JSON.parse(Deno.readTextFileSync(new URL("deno.json", _root))) as {
    tasks?: Record<string, string>;
  };
  const line = json.tasks?.[task];
  const words = line?.trim().split(/\s+/) ?? [];
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new TypeError(`Cannot run task ${JSON.stringify(task)}: expected "deno run ..."`);
  }
  return words.slice(1).map((w) => (w.endsWith(".ts") ? new URL(w, _root).pathname : w));
}

/** A function running as a child process under its task's flags. */
export class TaskProcess implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #lines: string[] = [];
  #done: Promise<Deno.CommandStatus>;

  /**
   * Starts the task.
   *
   * @param task the deno.json task, e.g. `score`
   * @param env its whole environment (`clearEnv`)
   */
  constructor(task: string, env: Record<string, string>) {
    const child = new Deno.Command(Deno.execPath(), {
      args: taskArgs(task),
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const read = (async () => {
      let rest = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        this.#lines.push(...parts);
      }
      if (rest) this.#lines.push(rest);
    })();
    this.#done = Promise.all([child.status, read]).then(([s]) => s);
  }

  /** Its stderr lines so far. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /**
   * Its log lines parsed as JSON (other lines skipped).
   *
   * @returns the records
   */
  records(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.#lines) {
      try {
        out.push(JSON.parse(l));
      } catch {
        // not a log record
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
      this.#child.kill(signal);
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
