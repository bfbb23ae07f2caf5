/**
 * Multi-line events: the continuation lines of an event (a stack trace, an
 * indented continuation) join its first line, so that a Python traceback, a
 * Java trace with `Caused by:` and `... N more`, a Node error stack, a Go
 * panic with its goroutine dump, a .NET or a Ruby trace is one event.
 *
 * The grouper is pure: it is fed lines with their positions (whatever a
 * source uses to resume: a Docker checkpoint, a file offset, a line number)
 * and hands on whole events, in order; it reads no clock and sets no timer.
 * The caller asks {@linkcode MultilineGrouper.deadline} when the pending
 * event is due and calls {@linkcode MultilineGrouper.flushDue} then. An event
 * covers a contiguous run of the lines fed, so a source may checkpoint the
 * position of an event's last line once the event is written: the lines of
 * an event still pending are read again after a restart.
 *
 * Grouping rules without a configured start pattern (`auto`):
 * - an indented line (space or tab) continues the open event;
 * - `Traceback (most recent call last):` starts a Python trace: its indented
 *   frames, the exception line after them, and chained tracebacks
 *   (`During handling of the above exception…`, `The above exception was the
 *   direct cause…`, blank lines between them) continue it;
 * - an exception line (`java.lang.IllegalStateException: …`, `TypeError: …`,
 *   `System.InvalidOperationException: …`, `Unhandled exception. …`) starts a
 *   trace that `Caused by:`, `Suppressed:`, indented frames, `... N more` and
 *   a closing `}` continue;
 * - `panic: ` or `fatal error: ` starts a Go panic that blank lines,
 *   `goroutine N [...]:`, function lines (`main.main()`), `created by …`,
 *   indented file lines, `[signal …` and `exit status N` continue;
 * - `file.js:12` (or `node:internal/...:12`) alone starts a Node crash report (source line, caret, blank
 *   lines, the error and its stack, `Node.js v20.1.0`);
 * - an exception line, a `Traceback` or a `goroutine N [` line right after a
 *   single line that reads like an error (`ERROR`, `failed`, `Exception`,
 *   `panic`…) joins it: that is one log record (`logger.exception(...)`,
 *   logback's message and its throwable);
 * - blank lines inside a trace (between chained tracebacks, goroutines, a
 *   Node crash report's parts) belong to it when the trace goes on after
 *   them; blank lines at its end are events of their own;
 * - a line from the other stream (stdout against stderr) ends the open event;
 * - everything else starts a new event.
 *
 * With a start pattern (the container label `tailwise.multiline.start`), a
 * line that matches starts an event and every other line continues the open
 * one. With grouping off, every line is an event.
 *
 * An event is cut at `maxLines` lines or `maxBytes` bytes: the next line
 * starts a new event. An event is emitted when the next event starts, when
 * it is cut, when {@linkcode MultilineGrouper.flush} is called, or when
 * `flushMs` have passed without a new line (as Vector's `timeout_ms`: the
 * longest wait for the next line).
 *
 * @example
 * ```ts
 * import { MultilineGrouper } from "./multiline.ts";
 * const events: string[] = [];
 * const g = new MultilineGrouper<number>((e) => events.push(e.text));
 * ["Traceback (most recent call last):", '  File "app.py", line 3, in <module>',
 *   "ValueError: bad", "next line"].forEach((line, i) => g.push(line, i));
 * g.flush();
 * events.length; // 2
 * ```
 *
 * @module
 */

/** How lines are grouped into events. */
export type MultilineMode =
  /** Built-in rules for stack traces and indented continuation lines. */
  | { kind: "auto" }
  /** A line matching `start` starts an event; every other line continues. */
  | { kind: "pattern"; start: RegExp }
  /** Every line is an event. */
  | { kind: "off" };

/** Options of {@linkcode MultilineGrouper}. */
export interface MultilineOptions {
  /**
   * How events start.
   * @default { kind: "auto" }
   */
  mode?: MultilineMode;
  /**
   * Most lines in one event; the next line starts a new event.
   * @default 500
   */
  maxLines?: number;
  /**
   * Most bytes in one event (its lines and the `\n` between them); the next
   * line starts a new event.
   * @default 131072
   */
  maxBytes?: number;
  /**
   * Longest wait of an open event for its next line, in ms.
   * @default 1000
   */
  flushMs?: number;
  /**
   * In `auto` mode, the wait of an event that is not (or not yet) a stack
   * trace: a plain line, with indented continuations or not, and not an
   * error line that an exception may follow. Such an event's continuations
   * come in the same write as its first line, so a short silence ends it
   * (a trace, or an error line, still waits up to `flushMs`). Capped at
   * `flushMs`.
   * @default 50
   */
  quietMs?: number;
}

/** Per line, what {@linkcode MultilineGrouper.push} may be told. */
export interface MultilinePushOptions {
  /**
   * Which stream the line came from; a change of stream ends the open event.
   * @default ""
   */
  stream?: string;
  /**
   * The line's size in bytes.
   * @default its UTF-8 length
   */
  bytes?: number;
  /**
   * The time the line arrived, in ms (any clock, used against `flushMs`).
   * @default 0
   */
  now?: number;
}

/** One event: one or more lines, in order. */
export interface MultilineEvent<P> {
  /** The lines, without line endings. */
  lines: string[];
  /** The position of each line, as pushed. */
  positions: P[];
  /** The stream of the lines. */
  stream: string;
  /** Total bytes of the lines and the `\n` between them. */
  bytes: number;
  /** The lines joined by `\n`. */
  readonly text: string;
}

/** Default most lines per event. */
export const MULTILINE_MAX_LINES = 500;
/** Default most bytes per event. */
export const MULTILINE_MAX_BYTES = 128 * 1024;
/** Default longest wait of an event for more lines, in ms. */
export const MULTILINE_FLUSH_MS = 1000;
/** Default wait of a plain event (no stack trace) for more lines, in ms. */
export const MULTILINE_QUIET_MS = 50;

/** The container label that sets a container's grouping. */
export const MULTILINE_LABEL = "tailwise.multiline.start";

type _State =
  | "plain" // a line, maybe with indented continuations
  | "python" // Traceback header seen: frames until the exception line
  | "python_end" // the exception line seen: a chained traceback may follow
  | "python_chain" // "During handling of the above exception…": its Traceback follows
  | "trace" // an exception line seen: frames, Caused by, ... N more
  | "go" // panic: goroutine dumps
  | "node"; // file.js:N crash report

const _PY_HEADER = /^Traceback \(most recent call last\):\s*$/;
const _PY_CHAIN =
  /^(During handling of the above exception, another exception occurred:|The above exception was the direct cause of the following exception:)\s*$/;
// java.lang.IllegalStateException: x / TypeError: x / System.Foo.BarException / Error
const _EXCEPTION =
  /^(?:Unhandled exception\. |Exception in thread "[^"]*" )?(?:[A-Za-z_$][\w$]*\.)*(?:[A-Z][\w$]*(?:Exception|Error|Throwable|Fault)|Error|Exception|Throwable)(?: \[[\w.-]+\])?(?::(?:\s.*)?|\s*)$/;
const _CAUSED = /^(?:Caused by|Suppressed|Wrapped by): /;
const _MORE = /^\s*\.\.\. \d+ (?:more|common frames omitted)\s*$/;
const _GO_PANIC = /^(?:panic: |fatal error: )/;
const _GO_GOROUTINE = /^goroutine \d+ \[[^\]]*\]:\s*$/;
const _GO_CONT =
  /^(?:goroutine \d+ \[|created by |\[signal |exit status \d+\s*$|panic: |[\w./*()\-[\]{}]+\(.*\)\s*$|\.\.\.additional frames elided\.\.\.)/;
const _NODE_SOURCE =
  /^(?:node:[\w/]+|\/?(?:[\w.@-]+\/)*[\w.@-]+\.(?:[cm]?js|[cm]?ts|jsx|tsx)):\d+\s*$/;
const _NODE_VERSION = /^Node\.js v\d+/;
const _ERRORISH =
  /\b(?:ERROR|ERR|FATAL|CRITICAL|CRIT|SEVERE|WARN|WARNING|error|Error|fatal|Fatal|critical|exception|Exception|failed|Failed|FAILED|panic|unhandled|Unhandled)\b/;

/** Groups lines into multi-line events. */
export class MultilineGrouper<P> {
  #onEvent: (event: MultilineEvent<P>) => void;
  #mode: MultilineMode;
  #maxLines: number;
  #maxBytes: number;
  #flushMs: number;
  #quietMs: number;

  #lines: string[] = [];
  #positions: P[] = [];
  #stream = "";
  #bytes = 0;
  #since = 0;
  // Blank lines at the end of the open event, joined only tentatively: they
  // belong to it if a continuation follows, else each is an event of its own.
  #tailBytes: number[] = [];
  #state: _State = "plain";

  /**
   * @param onEvent receives each event, in order
   * @param options the mode, caps and flush timeout
   * @throws {RangeError} when a cap or the timeout is not a positive integer
   */
  constructor(onEvent: (event: MultilineEvent<P>) => void, options: MultilineOptions = {}) {
    this.#onEvent = onEvent;
    this.#mode = options.mode ?? { kind: "auto" };
    this.#maxLines = options.maxLines ?? MULTILINE_MAX_LINES;
    this.#maxBytes = options.maxBytes ?? MULTILINE_MAX_BYTES;
    this.#flushMs = options.flushMs ?? MULTILINE_FLUSH_MS;
    this.#quietMs = Math.min(options.quietMs ?? MULTILINE_QUIET_MS, this.#flushMs);
    for (
      const [name, v] of [
        ["maxLines", this.#maxLines],
        ["maxBytes", this.#maxBytes],
        ["flushMs", this.#flushMs],
        ["quietMs", this.#quietMs],
      ] as const
    ) {
      const timing = name === "flushMs" || name === "quietMs";
      if (!Number.isInteger(v) || v < (timing ? 0 : 1)) {
        throw new RangeError(
          `Cannot group multi-line events with ${name} ${v}: expected ${
            timing ? "an integer >= 0" : "a positive integer"
          }`,
        );
      }
    }
  }

  /**
   * True while an event is open (lines pushed and not yet emitted).
   *
   * @returns whether lines are held
   */
  get pending(): boolean {
    return this.#lines.length > 0;
  }

  /**
   * The positions of the lines held, oldest first (empty when none).
   *
   * @returns the positions
   */
  get pendingPositions(): readonly P[] {
    return this.#positions;
  }

  /**
   * When the open event is due (its last line's `now` plus `flushMs`), or
   * undefined when none is open.
   *
   * @returns the time, on the clock of the `now` values pushed
   */
  get deadline(): number | undefined {
    return this.#lines.length > 0 ? this.#since + this.#hold() : undefined;
  }

  /**
   * How long the open event waits for its next line, in ms: `quietMs`
   * unless a trace may follow, then `flushMs`.
   *
   * @returns the wait (`flushMs` when no event is open)
   */
  get holdMs(): number {
    return this.#lines.length > 0 ? this.#hold() : this.#flushMs;
  }

  /**
   * The shortest wait any event gets (`quietMs`).
   *
   * @returns the wait in ms
   */
  get minHoldMs(): number {
    return this.#quietMs;
  }

  #hold(): number {
    if (this.#mode.kind !== "auto" || this.#state !== "plain") return this.#flushMs;
    // A one-line event that reads like an error may be followed by its exception.
    if (this.#lines.length === 1 && _ERRORISH.test(this.#lines[0]!)) return this.#flushMs;
    return this.#quietMs;
  }

  /**
   * Feeds the next line. The open event is emitted first when this line
   * starts a new one.
   *
   * @param line the line without its line ending
   * @param position where the line is (handed back with its event)
   * @param options its stream, size and arrival time
   */
  push(line: string, position: P, options: MultilinePushOptions = {}): void {
    this.pushLine(
      line,
      position,
      options.stream ?? "",
      options.bytes ?? _utf8Length(line),
      options.now ?? 0,
    );
  }

  /**
   * {@linkcode MultilineGrouper.push} with every option given, as arguments
   * (no options object per line on the hot path).
   *
   * @param line the line without its line ending
   * @param position where the line is
   * @param stream the stream it came from
   * @param bytes its size in bytes
   * @param now the time it arrived, in ms
   */
  pushLine(line: string, position: P, stream: string, bytes: number, now: number): void {
    if (this.#lines.length > 0) {
      const fits = this.#lines.length < this.#maxLines &&
        this.#bytes + 1 + bytes <= this.#maxBytes && stream === this.#stream;
      if (fits && this.#continues(line)) {
        this.#lines.push(line);
        this.#positions.push(position);
        this.#bytes += 1 + bytes;
        this.#since = now;
        if (this.#mode.kind !== "auto") return;
        if (_isBlank(line)) this.#tailBytes.push(bytes);
        else if (this.#tailBytes.length > 0) this.#tailBytes = [];
        return;
      }
      this.flush();
    }
    this.#lines.push(line);
    this.#positions.push(position);
    this.#stream = stream;
    this.#bytes = bytes;
    this.#since = now;
    this.#state = this.#mode.kind === "auto" ? _startState(line) : "plain";
    if (this.#mode.kind === "off") this.flush();
  }

  /**
   * Emits the open event when it is due.
   *
   * @param now the current time, on the clock of the `now` values pushed
   * @returns true when an event was emitted
   */
  flushDue(now: number): boolean {
    if (this.#lines.length === 0 || now < this.#since + this.#hold()) return false;
    this.flush();
    return true;
  }

  /** Emits the open event, if any (the input ended). */
  flush(): void {
    if (this.#lines.length === 0) return;
    const lines = this.#lines;
    const positions = this.#positions;
    const tail = this.#tailBytes;
    let bytes = this.#bytes;
    this.#lines = [];
    this.#positions = [];
    this.#bytes = 0;
    this.#tailBytes = [];
    this.#state = "plain";
    if (tail.length === 0) {
      this.#onEvent(new _Event(lines, positions, this.#stream, bytes));
      return;
    }
    // Trailing blank lines no continuation followed: events of their own.
    const keep = lines.length - tail.length;
    for (const b of tail) bytes -= 1 + b;
    this.#onEvent(
      new _Event(lines.slice(0, keep), positions.slice(0, keep), this.#stream, bytes),
    );
    for (let k = 0; k < tail.length; k++) {
      this.#onEvent(new _Event([lines[keep + k]!], [positions[keep + k]!], this.#stream, tail[k]!));
    }
  }

  /** Drops the open event (its lines will be read again). */
  discard(): void {
    this.#lines = [];
    this.#positions = [];
    this.#bytes = 0;
    this.#tailBytes = [];
    this.#state = "plain";
  }

  #continues(line: string): boolean {
    const mode = this.#mode;
    if (mode.kind === "off") return false;
    if (mode.kind === "pattern") {
      mode.start.lastIndex = 0;
      return !mode.start.test(line);
    }
    const c = line.charCodeAt(0);
    const indented = c === 32 || c === 9;
    const blank = _isBlank(line);
    switch (this.#state) {
      case "plain": {
        if (indented && !blank) return true;
        if (blank) return false;
        if (_MORE.test(line)) return true;
        // A log record's message line followed by its exception.
        if (this.#lines.length === 1) {
          let next = _startState(line);
          if (next === "node") next = "plain";
          else if (next === "plain" && c === 103 /* g */ && _GO_GOROUTINE.test(line)) next = "go";
          if (next !== "plain" && _ERRORISH.test(this.#lines[0]!)) {
            this.#state = next;
            return true;
          }
        }
        return false;
      }
      case "python":
        if (indented || blank) return true;
        // The first line at the margin after the frames: the exception.
        this.#state = "python_end";
        return true;
      case "python_end":
        if (blank || indented) return true;
        if (_PY_CHAIN.test(line)) {
          this.#state = "python_chain";
          return true;
        }
        return false;
      case "python_chain":
        if (blank) return true;
        if (_PY_HEADER.test(line)) {
          this.#state = "python";
          return true;
        }
        return false;
      case "trace":
        if (indented && !blank) return true;
        if (_CAUSED.test(line) || _MORE.test(line)) return true;
        if (c === 125 /* } */ || c === 93 /* ] */) return true;
        return false;
      case "go":
        if (blank || indented) return true;
        return _GO_CONT.test(line);
      case "node":
        if (blank || indented) return true;
        if (c === 94 /* ^ */ || _NODE_VERSION.test(line)) return true;
        if (_EXCEPTION.test(line) || _CAUSED.test(line)) return true;
        if (c === 125 || c === 93) return true;
        return false;
    }
  }
}

/**
 * Reads the `tailwise.multiline.start` label: absent or empty means the
 * built-in rules, `off` (or `false`, `none`) turns grouping off, anything
 * else is a regular expression that matches the first line of an event.
 *
 * @param value the label's value
 * @returns the mode
 * @throws {SyntaxError} when the value is not a valid regular expression
 */
export function parseMultilineMode(value: string | undefined): MultilineMode {
  const v = (value ?? "").trim();
  if (v === "" || v === "auto") return { kind: "auto" };
  if (/^(off|false|none|no)$/i.test(v)) return { kind: "off" };
  try {
    return { kind: "pattern", start: new RegExp(v) };
  } catch (e) {
    throw new SyntaxError(
      `Cannot use ${MULTILINE_LABEL} ${
        JSON.stringify(v)
      }: expected "off" or a regular expression ` +
        `(${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/**
 * Groups a whole list of lines at once (no timeout): for files read to the
 * end, such as the CLI's input.
 *
 * @param lines the lines, in order
 * @param options the mode and caps
 * @returns per event, the index of its first line and its number of lines
 */
export function groupLines(
  lines: readonly string[],
  options: MultilineOptions = {},
): { first: number; count: number }[] {
  const out: { first: number; count: number }[] = [];
  const g = new MultilineGrouper<number>(
    (e) => out.push({ first: e.positions[0]!, count: e.lines.length }),
    options,
  );
  for (let i = 0; i < lines.length; i++) g.push(lines[i]!, i);
  g.flush();
  return out;
}

function _isBlank(line: string): boolean {
  return line.length === 0 || line.trim() === "";
}

function _startState(line: string): _State {
  const c = line.charCodeAt(0);
  if (c === 84 /* T */ && _PY_HEADER.test(line)) return "python";
  if ((c === 112 /* p */ || c === 102 /* f */) && _GO_PANIC.test(line)) return "go";
  // Exception lines start with a letter, `_` or `$`; a Node source line is a
  // path without spaces.
  const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36;
  if (letter && _EXCEPTION.test(line)) return "trace";
  if ((letter || c === 47 /* / */ || c === 46 /* . */) && line.indexOf(" ") < 0) {
    if (_NODE_SOURCE.test(line)) return "node";
  }
  return "plain";
}

class _Event<P> implements MultilineEvent<P> {
  lines: string[];
  positions: P[];
  stream: string;
  bytes: number;
  #text: string | undefined;

  constructor(lines: string[], positions: P[], stream: string, bytes: number) {
    this.lines = lines;
    this.positions = positions;
    this.stream = stream;
    this.bytes = bytes;
  }

  get text(): string {
    return this.#text ??= this.lines.length === 1 ? this.lines[0]! : this.lines.join("\n");
  }
}

function _utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      // A surrogate pair: 2 UTF-16 units, 4 bytes.
      n += 2;
      i++;
    } else {
      n += 2;
    }
  }
  return n;
}
