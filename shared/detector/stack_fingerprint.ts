/**
 * Stack fingerprints of multi-line events, in the manner of error trackers
 * (Sentry's grouping by stack trace): the exception types of a trace and the
 * top frames of the application's own code, without line numbers, messages
 * or library and framework frames. A known exception that recurs has the
 * same fingerprint; a new exception type or a new throwing frame gets a new
 * one.
 *
 * {@linkcode eventLine} turns an event (lines joined by `\n`) into the one
 * line the detector masks and mines: a fingerprint token first (template
 * mining routes on the first tokens, so events with different fingerprints
 * never share a template), then the event's first line, then the exception
 * types and frames in readable form for the explanation.
 *
 * Recognised: Python tracebacks (chained too), Java and other JVM traces
 * (`Caused by:`, `Suppressed:`), Node error stacks, Go panics (the panicking
 * goroutine), .NET traces (`--->` inner exceptions) and Ruby traces.
 *
 * @example
 * ```ts
 * import { eventLine, stackFingerprint } from "./stack_fingerprint.ts";
 * const event = [
 *   "Traceback (most recent call last):",
 *   '  File "/app/worker.py", line 42, in run',
 *   "ValueError: bad input",
 * ].join("\n");
 * stackFingerprint(event)?.exceptions; // ["ValueError"]
 * eventLine(event); // "stk… Traceback (most recent call last): ValueError worker.run"
 * ```
 *
 * @module
 */

import { fnv1a32 } from "./hash.ts";

/** What identifies a stack trace. */
export interface StackFingerprint {
  /** The trace's language, as recognised. */
  language: "python" | "jvm" | "node" | "go" | "dotnet" | "ruby";
  /** Exception types, in the order the trace shows them (a Go panic: its masked message). */
  exceptions: string[];
  /** The application's top frames (function and module, no line numbers), deduplicated. */
  frames: string[];
  /** The fingerprint token: `stk` and 10 letters of a hash of the types and frames. */
  token: string;
}

/** Frames of the application's own code kept per exception. */
const _TOP_FRAMES = 2;
/** At most this many characters of an event are read. */
const _MAX_CHARS = 256 * 1024;

// Library and runtime frames, skipped as error trackers mark them not "in app".
const _PY_LIB = /(?:site-packages|dist-packages|\/lib\/python\d|\/usr\/lib\/|<frozen |<string>)/;
const _JVM_LIB =
  /^(?:java\.|javax\.|jdk\.|sun\.|com\.sun\.|jakarta\.|kotlin\.|kotlinx\.|scala\.|groovy\.|org\.springframework\.|org\.apache\.|org\.hibernate\.|org\.eclipse\.|org\.junit\.|io\.netty\.|io\.micrometer\.|io\.reactivex\.|reactor\.|com\.fasterxml\.|com\.google\.|okhttp3\.|io\.grpc\.|io\.undertow\.|org\.glassfish\.|net\.bytebuddy\.|org\.aspectj\.|com\.zaxxer\.)/;
const _NODE_LIB = /(?:node_modules|node:|internal\/|^native$|<anonymous>$)/;
const _GO_LIB =
  /^(?:runtime\.|runtime\/|net\/|net\.|sync\.|syscall\.|reflect\.|internal\/|testing\.|os\.|io\.|bufio\.|fmt\.|encoding\/|crypto\/|context\.|database\/sql|golang\.org\/|google\.golang\.org\/|github\.com\/gin-gonic\/|github\.com\/labstack\/|github\.com\/gorilla\/)/;
const _DOTNET_LIB = /^(?:System\.|Microsoft\.|Newtonsoft\.)/;
const _RUBY_LIB = /(?:\/gems\/|\/ruby\/\d|\/rubygems\/|<internal:)/;

const _PY_FRAME = /^\s+File "([^"]*)", line \d+, in (\S+)/;
const _PY_EXC = /^([A-Za-z_][\w.]*)(?::|\s*$)/;
const _JVM_EXC =
  /^(?:Exception in thread "[^"]*" |Caused by: |Suppressed: |Wrapped by: |\s+Caused by: |\s+Suppressed: )?((?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*)(?::|\s*$)/;
const _JVM_FRAME = /^\s+at ([\w$.<>/]+)\(/;
const _NODE_EXC =
  /^\s*(?:Uncaught )?([A-Z][\w$]*(?:Error|Exception)|Error)(?: (\[[\w.-]+\]))?(?::|\s*$)/;
const _NODE_FRAME = /^\s+at (?:async )?(?:(.+?) \((.+?)(?::\d+)*\)|(.+?)(?::\d+)*)$/;
const _GO_PANIC = /^(?:panic: |fatal error: )(.*)$/;
const _GO_HTTP_PANIC = /\bhttp: panic serving \S+: (.*)$/;
const _GO_GOROUTINE = /^goroutine \d+ \[/;
const _GO_FUNC = /^(\S+)\([^()]*\)\s*$/;
const _DOTNET_EXC =
  /^\s*(?:Unhandled exception\. |---> )?((?:[A-Za-z_][\w`]*\.)+[A-Za-z_][\w`]*(?:Exception|Error))(?::|\s*$)/;
const _DOTNET_FRAME = /^\s+at ([\w.`<>$]+)\(/;
const _RUBY_LINE = /^(?:\s+from )?([^:\s]+):\d+:in [`']([^']+)'(?:: .*\(([\w:]+)\)\s*$)?/;

/**
 * The stack fingerprint of a multi-line event.
 *
 * @param event the event's lines joined by `\n`
 * @returns the fingerprint, or undefined when the event holds no stack trace
 */
export function stackFingerprint(event: string): StackFingerprint | undefined {
  const text = event.length > _MAX_CHARS ? event.slice(0, _MAX_CHARS) : event;
  const lines = text.split("\n");
  if (lines.length < 2) return undefined;
  const found = _python(lines) ?? _go(lines) ?? _ruby(lines) ?? _dotnet(lines) ?? _jvm(lines) ??
    _node(lines);
  if (found === undefined || (found.exceptions.length === 0 && found.frames.length === 0)) {
    return undefined;
  }
  const key = found.language + "|" + found.exceptions.join(",") + "|" + found.frames.join(",");
  return { ...found, token: "stk" + _letters(key) };
}

/**
 * The line the detector sees for an event: for a multi-line event with a
 * stack trace, its fingerprint token, its first line, its exception types
 * and frames; for one without, its first line. A single line is returned as
 * it is.
 *
 * @param event a line, or an event's lines joined by `\n`
 * @returns one line
 */
export function eventLine(event: string): string {
  const nl = event.indexOf("\n");
  if (nl < 0) return event;
  const first = event.charCodeAt(nl - 1) === 13 ? event.slice(0, nl - 1) : event.slice(0, nl);
  const fp = stackFingerprint(event);
  if (fp === undefined) return first;
  return `${fp.token} ${first} ${fp.exceptions.join(" ")} ${fp.frames.join(" ")}`.trimEnd();
}

type _Found = Omit<StackFingerprint, "token">;

function _python(lines: string[]): _Found | undefined {
  let header = -1;
  for (let i = 0; i < lines.length && i < 3; i++) {
    if (lines[i]!.startsWith("Traceback (most recent call last):")) header = i;
  }
  if (header < 0) return undefined;
  const exceptions: string[] = [];
  const frames: string[] = [];
  // Per traceback of a chain: its app frames, innermost (last) first.
  let block: string[] = [];
  const close = () => {
    let n = 0;
    for (let k = block.length - 1; k >= 0 && n < _TOP_FRAMES; k--, n++) _add(frames, block[k]!);
    block = [];
  };
  let inFrames = false;
  for (let i = header; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("Traceback (most recent call last):")) {
      inFrames = true;
      continue;
    }
    const f = _PY_FRAME.exec(line);
    if (f) {
      if (!_PY_LIB.test(f[1]!)) block.push(`${_module(f[1]!)}.${f[2]}`);
      continue;
    }
    if (inFrames && line !== "" && line.charCodeAt(0) !== 32 && line.charCodeAt(0) !== 9) {
      const m = _PY_EXC.exec(line);
      if (m) _add(exceptions, _lastSegment(m[1]!));
      close();
      inFrames = false;
    }
  }
  close();
  return { language: "python", exceptions, frames };
}

function _jvm(lines: string[]): _Found | undefined {
  const exceptions: string[] = [];
  const frames: string[] = [];
  let taken = 0;
  let seenFrame = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const f = _JVM_FRAME.exec(line);
    if (f) {
      seenFrame = true;
      if (taken < _TOP_FRAMES && exceptions.length > 0 && _jvmApp(f[1]!)) {
        _add(frames, _jvmFrame(f[1]!));
        taken++;
      }
      continue;
    }
    // The first line may be a log record's message; exceptions start after.
    const m = _JVM_EXC.exec(line);
    if (m && /(?:Exception|Error|Throwable|Fault)$/.test(m[1]!)) {
      _add(exceptions, m[1]!);
      taken = 0;
    }
  }
  if (!seenFrame || exceptions.length === 0) return undefined;
  return { language: "jvm", exceptions, frames };
}

function _node(lines: string[]): _Found | undefined {
  const exceptions: string[] = [];
  const frames: string[] = [];
  let taken = 0;
  let seenFrame = false;
  for (const line of lines) {
    const f = _NODE_FRAME.exec(line);
    if (f && /^\s+at /.test(line)) {
      seenFrame = true;
      const fn = f[1] ?? "";
      const where = f[2] ?? f[3] ?? "";
      if (taken < _TOP_FRAMES && !_NODE_LIB.test(where) && where !== "") {
        _add(frames, `${_module(where)}.${_nodeFunction(fn)}`);
        taken++;
      }
      continue;
    }
    const m = _NODE_EXC.exec(line);
    if (m) {
      _add(exceptions, m[2] === undefined ? m[1]! : `${m[1]} ${m[2]}`);
      taken = 0;
    }
  }
  if (!seenFrame || exceptions.length === 0) return undefined;
  return { language: "node", exceptions, frames };
}

function _go(lines: string[]): _Found | undefined {
  let start = -1;
  let message = "";
  let inGoroutine = false;
  for (let i = 0; i < lines.length && i < 3; i++) {
    const m = _GO_PANIC.exec(lines[i]!) ?? _GO_HTTP_PANIC.exec(lines[i]!);
    if (m) {
      start = i;
      message = m[1]!;
      break;
    }
    if (_GO_GOROUTINE.test(lines[i]!)) {
      start = i;
      inGoroutine = true;
      break;
    }
  }
  if (start < 0) return undefined;
  const exceptions: string[] = [];
  if (message !== "") exceptions.push(_goMessage(message));
  // The panicking goroutine's functions; after a recover, the frames below
  // `panic(...)` are where it was raised.
  let funcs: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (_GO_GOROUTINE.test(line)) {
      if (inGoroutine) break; // only the panicking goroutine
      inGoroutine = true;
      continue;
    }
    if (!inGoroutine) {
      const again = _GO_PANIC.exec(line);
      if (again) _add(exceptions, _goMessage(again[1]!));
      continue;
    }
    if (line === "") break;
    if (line.charCodeAt(0) === 9 || line.startsWith("created by ")) continue;
    const f = _GO_FUNC.exec(line);
    if (!f) continue;
    if (f[1] === "panic" || f[1]!.startsWith("runtime.gopanic")) {
      funcs = [];
      continue;
    }
    funcs.push(f[1]!);
  }
  const frames: string[] = [];
  for (const fn of funcs) {
    if (frames.length >= _TOP_FRAMES) break;
    if (!_GO_LIB.test(fn)) _add(frames, _goFunction(fn));
  }
  return { language: "go", exceptions, frames };
}

function _dotnet(lines: string[]): _Found | undefined {
  const exceptions: string[] = [];
  const frames: string[] = [];
  let taken = 0;
  let seenFrame = false;
  for (const line of lines) {
    if (/\bin .+:line \d+\s*$/.test(line) || /^\s+at [\w.`<>$]+\(.*\)\s*$/.test(line)) {
      const f = _DOTNET_FRAME.exec(line);
      if (f && !line.includes(".java:")) {
        seenFrame = true;
        if (taken < _TOP_FRAMES && !_DOTNET_LIB.test(f[1]!)) {
          _add(frames, f[1]!);
          taken++;
        }
        continue;
      }
    }
    const m = _DOTNET_EXC.exec(line);
    if (m && (/^\s*(?:Unhandled exception\. |---> )/.test(line) || /^System\./.test(m[1]!))) {
      _add(exceptions, m[1]!);
      taken = 0;
    }
  }
  if (!seenFrame || exceptions.length === 0) return undefined;
  return { language: "dotnet", exceptions, frames };
}

function _ruby(lines: string[]): _Found | undefined {
  const first = _RUBY_LINE.exec(lines[0]!) ?? _RUBY_LINE.exec(lines[1] ?? "");
  if (!first || first[3] === undefined) return undefined;
  const exceptions = [first[3]];
  const frames: string[] = [];
  for (const line of lines) {
    const f = _RUBY_LINE.exec(line);
    if (!f) continue;
    if (frames.length < _TOP_FRAMES && !_RUBY_LIB.test(f[1]!)) {
      _add(frames, `${_module(f[1]!)}.${f[2]!.replace(/^.*[#.]/, "")}`);
    }
  }
  return { language: "ruby", exceptions, frames };
}

function _jvmApp(frame: string): boolean {
  return !_JVM_LIB.test(frame) && !frame.includes("$$") && !frame.startsWith("$Proxy");
}

/** `com.example.Foo$Bar.lambda$handle$0` → `com.example.Foo$Bar.handle`. */
function _jvmFrame(frame: string): string {
  return frame.replace(/\blambda\$([\w]+)\$\d+$/, "$1").replace(/\$\d+(?=\.|$)/g, "");
}

/** `Object.<anonymous>` → `<anonymous>`; `async Foo.bar` → `Foo.bar`; names with `[as x]` trimmed. */
function _nodeFunction(fn: string): string {
  const name = fn.replace(/ \[as [^\]]+\]$/, "").replace(/^(?:async |new )/, "");
  return name === "" ? "<anonymous>" : name;
}

/** `main.(*Server).handle(...)` → `main.Server.handle`; `main.main.func1` → `main.main`. */
function _goFunction(fn: string): string {
  return fn.replace(/\(\*?([\w]+)\)/g, "$1").replace(/(?:\.func\d+)+$/, "").replace(
    /\.gowrap\d+$/,
    "",
  );
}

/** A Go panic message without its values: digits, quoted text and brackets go. */
function _goMessage(message: string): string {
  return message
    .replace(/\[recovered\]/g, "")
    .replace(/"[^"]*"|'[^']*'/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/0x[0-9a-f]+/gi, "")
    .replace(/\d+/g, "")
    .replace(/[^A-Za-z ]+/g, " ")
    .replace(/\s+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 80) || "panic";
}

/** The file's base name without its extension: `/app/src/users.js` → `users`. */
function _module(path: string): string {
  const base = path.replace(/^.*[\\/]/, "").replace(/:\d+(?::\d+)?$/, "");
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

function _lastSegment(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot >= 0 ? name.slice(dot + 1) : name;
}

function _add(list: string[], item: string): void {
  if (!list.includes(item)) list.push(item);
}

/** 10 lowercase letters from two 32-bit hashes of the key. */
function _letters(key: string): string {
  let a = fnv1a32(key);
  let b = fnv1a32(key, 0x9747b28c);
  let out = "";
  for (let i = 0; i < 5; i++) {
    out += String.fromCharCode(97 + a % 26);
    a = Math.floor(a / 26);
  }
  for (let i = 0; i < 5; i++) {
    out += String.fromCharCode(97 + b % 26);
    b = Math.floor(b / 26);
  }
  return out;
}
