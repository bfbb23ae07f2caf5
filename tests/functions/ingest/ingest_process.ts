/**
 * Runs `functions/ingest/main.ts` as a child process for the tests, with its
 * JSON log lines captured.
 *
 * @module
 */

/** A running ingest process. */
export class IngestProcess implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #lines: string[] = [];
  #done: Promise<Deno.CommandStatus>;

  /**
   * Starts ingest.
   *
   * @param env its environment (REDIS_URL, INFLUX_URL, ...)
   */
  constructor(env: Record<string, string>) {
    const main = new URL("../../../functions/ingest/main.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main],
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

  /** Its log lines so far. */
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

  /** Whether it still runs. */
  async running(): Promise<boolean> {
    const r = await Promise.race([this.#done.then(() => false), Promise.resolve(true)]);
    return r;
  }

  /** Kills it if still running. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}
