/**
 * A small structured logger: one JSON object per line on stderr, so the
 * functions' own logs are machine-readable in `docker service logs`. Values
 * are passed as fields, never formatted into the message; secrets must not be
 * passed at all (use `redactConfig` / `redactUrl`).
 *
 * @module
 */

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Writes structured log lines. */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

const _RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Creates a logger.
 *
 * @param name the function's name, added as `fn`
 * @param options the least level written and where lines go
 * @param options.level @default "info"
 * @param options.write @default a line on stderr
 * @returns the logger
 */
export function createLogger(
  name: string,
  options: { level?: LogLevel; write?: (line: string) => void } = {},
): Logger {
  const min = _RANK[options.level ?? "info"];
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const make = (base: Record<string, unknown>): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      // An error the user was already told about once (a full disk) is retried
      // quietly: its retries are debug records, not a warning every few seconds.
      if (level !== "debug" && _reported(fields?.error)) level = "debug";
      if (_RANK[level] < min) return;
      write(
        JSON.stringify({ t: new Date().toISOString(), level, ...base, msg, ...fields }, _errors),
      );
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (f) => make({ ...base, ...f }),
    };
  };
  return make({ fn: name });
}

/**
 * A logger that writes nothing, for tests and library use.
 *
 * @returns the logger
 */
export function silentLogger(): Logger {
  return createLogger("silent", { write: () => {} });
}

function _reported(e: unknown): boolean {
  for (let i = 0; i < 8 && e instanceof Error; i++) {
    if ((e as { reported?: unknown }).reported === true) return true;
    e = e.cause;
  }
  return false;
}

function _errors(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}
