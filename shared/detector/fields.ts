/**
 * Fields of the common container log formats, found per line with no
 * configuration: web access logs (common and combined, the nginx and Apache
 * defaults, Apache's `vhost_combined`, Traefik's CLF, Envoy's default), JSON
 * objects (Traefik and Caddy access logs, pino, bunyan, zap, structlog: nested
 * keys flattened with dots) and logfmt (`key=value ...`). A line's fields
 * become named slots of its template; its level and message, when it has
 * them, stay the template's words.
 *
 * @example
 * ```ts
 * const f = extractFields('1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET /a?b=1 HTTP/1.1" 200 12 "-" "curl/8.5"');
 * f?.names; // ["client", "user", "method", "path", "query", "proto", "status", "bytes", "referer", "ua"]
 * ```
 *
 * @module
 */

/** The fields of one line. */
export interface LineFields {
  /** Which format the line was read as. */
  format: "access" | "json" | "logfmt";
  /** The level word (upper case), or "" when the line has none. */
  level: string;
  /** The free-text message, or "" when the line has none. */
  message: string;
  /** Field names, in line order (time fields dropped). */
  names: string[];
  /** Field values as text, aligned with `names`. */
  values: string[];
  /** Field values as numbers, NaN when a value is not a plain number. */
  numbers: number[];
}

/** At most this many fields are kept per line. */
export const MAX_FIELDS = 48;
/** Longest field value kept, in UTF-16 code units (the rest is cut). */
export const MAX_VALUE_CHARS = 2048;

const _LEVEL_KEYS = new Set([
  "level",
  "lvl",
  "severity",
  "loglevel",
  "log.level",
  "levelname",
  "@l",
  "level_name",
]);
const _MESSAGE_KEYS = new Set(["msg", "message", "text", "@m", "@mt", "event"]);
const _TIME_KEYS = new Set([
  "time",
  "ts",
  "timestamp",
  "@timestamp",
  "t",
  "date",
  "datetime",
  "@t",
  "start_time",
  "starttime",
  "time_local",
  "time_iso8601",
  "asctime",
]);
/** pino / bunyan numeric levels. */
const _NUMERIC_LEVELS: Record<string, string> = {
  "10": "TRACE",
  "20": "DEBUG",
  "30": "INFO",
  "40": "WARN",
  "50": "ERROR",
  "60": "FATAL",
};

// host ident user [time] "request" status bytes ["referer" "ua"] extras
const _ACCESS =
  /^(?:(\S+:\d+) )?(\S+) (\S+) (\S+) \[([^\]]{1,64})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(.*)$/s;
// Envoy: [time] "request" status flags rx tx duration upstream "xff" "ua" "id" "authority" "upstream"
const _ENVOY =
  /^\[([^\]]{1,64})\] "((?:[^"\\]|\\.)*)" (\d{3}) (\S+) (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)"(.*)$/s;
const _REQUEST = /^([A-Za-z]{1,16}) (\S+)(?: (\S+))?$/s;

/**
 * Read the fields of a line in a known container format.
 *
 * @param line A log line (at most the first {@linkcode MAX_LINE} characters are read).
 * @returns Its fields, or undefined when the line is in none of the formats.
 */
export function extractFields(line: string): LineFields | undefined {
  let s = 0;
  let e = line.length;
  while (s < e && line.charCodeAt(s) <= 32) s++;
  while (e > s && line.charCodeAt(e - 1) <= 32) e--;
  if (e - s < 3) return undefined;
  const c = line.charCodeAt(s);
  if (c === 123) {
    return line.charCodeAt(e - 1) === 125 && e - s <= 65536
      ? _json(line.substring(s, e))
      : undefined;
  }
  const text = s === 0 && e === line.length ? line : line.substring(s, e);
  if (text.length > MAX_LINE) return undefined;
  if (c === 91 || _bracketAfterSpaces(text)) {
    const a = c === 91 ? _envoy(text) : _access(text);
    if (a !== undefined) return a;
  }
  return _logfmt(text);
}

function _bracketAfterSpaces(text: string): boolean {
  // `host ident user [` (or `vhost:port host ident user [`): a `[` right
  // after the third or fourth space, within the first 320 characters.
  let i = -1;
  for (let spaces = 1; spaces <= 4; spaces++) {
    i = text.indexOf(" ", i + 1);
    if (i < 0 || i > 320) return false;
    if (spaces >= 3 && text.charCodeAt(i + 1) === 91) return true;
  }
  return false;
}

/** Lines longer than this are not read for fields (in UTF-16 code units). */
export const MAX_LINE = 16384;

function _new(format: LineFields["format"]): LineFields {
  return { format, level: "", message: "", names: [], values: [], numbers: [] };
}

function _push(f: LineFields, name: string, value: string, number = NaN): void {
  if (f.names.length >= MAX_FIELDS) return;
  f.names.push(name);
  f.values.push(value.length > MAX_VALUE_CHARS ? value.substring(0, MAX_VALUE_CHARS) : value);
  f.numbers.push(number);
}

function _num(v: string): number {
  if (v.length === 0 || v.length > 24) return NaN;
  const c = v.charCodeAt(0);
  if (!((c >= 48 && c <= 57) || c === 45)) return NaN;
  const n = Number(v);
  return Number.isFinite(n) ? n : NaN;
}

function _request(f: LineFields, request: string): void {
  const m = _REQUEST.exec(request);
  if (m === null) {
    // Not a request line (TLS bytes on the HTTP port, "-", garbage): the
    // whole request is the method slot, and the rest stay empty.
    _push(f, "method", request);
    _push(f, "path", "");
    _push(f, "query", "");
    _push(f, "proto", "");
    return;
  }
  const target = m[2]!;
  const q = target.indexOf("?");
  _push(f, "method", m[1]!);
  _push(f, "path", q < 0 ? target : target.substring(0, q));
  _push(f, "query", q < 0 ? "" : target.substring(q + 1));
  _push(f, "proto", m[3] ?? "");
}

function _extras(f: LineFields, rest: string): void {
  // Whatever the format appends (request time, upstream fields, Traefik's
  // router and duration): `key=value` keeps its key, the others are numbered.
  let i = 0;
  let k = 0;
  const n = rest.length;
  while (i < n && f.names.length < MAX_FIELDS) {
    while (i < n && rest.charCodeAt(i) <= 32) i++;
    if (i >= n) break;
    let j = i;
    if (rest.charCodeAt(i) === 34) {
      j = rest.indexOf('"', i + 1);
      j = j < 0 ? n : j + 1;
    } else {
      while (j < n && rest.charCodeAt(j) > 32) {
        if (rest.charCodeAt(j) === 34) {
          const close = rest.indexOf('"', j + 1);
          j = close < 0 ? n : close;
        }
        j++;
      }
    }
    const tok = rest.substring(i, Math.min(j, n));
    const eq = tok.indexOf("=");
    k++;
    if (eq > 0 && /^[A-Za-z_][\w.\-]*$/.test(tok.substring(0, eq))) {
      const v = _unquote(tok.substring(eq + 1));
      _push(f, tok.substring(0, eq), v, _num(v));
    } else {
      const v = _unquote(tok);
      _push(f, `x${k}`, v, _num(v));
    }
    i = j;
  }
}

function _unquote(v: string): string {
  return v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34
    ? v.substring(1, v.length - 1)
    : v;
}

function _access(text: string): LineFields | undefined {
  const m = _ACCESS.exec(text);
  if (m === null) return undefined;
  const f = _new("access");
  if (m[1] !== undefined) _push(f, "vhost", m[1]);
  _push(f, "client", m[2]!);
  _push(f, "user", m[4]!);
  _request(f, m[6]!);
  _push(f, "status", m[7]!, Number(m[7]));
  _push(f, "bytes", m[8]!, _num(m[8]!));
  if (m[9] !== undefined) {
    _push(f, "referer", m[9]);
    _push(f, "ua", m[10]!);
  }
  if (m[11]) _extras(f, m[11]);
  return f;
}

function _envoy(text: string): LineFields | undefined {
  const m = _ENVOY.exec(text);
  if (m === null) return undefined;
  const f = _new("access");
  _request(f, m[2]!);
  _push(f, "status", m[3]!, Number(m[3]));
  _push(f, "flags", m[4]!);
  _push(f, "bytes_received", m[5]!, Number(m[5]));
  _push(f, "bytes_sent", m[6]!, Number(m[6]));
  _push(f, "duration", m[7]!, Number(m[7]));
  _push(f, "upstream_time", m[8]!, _num(m[8]!));
  _push(f, "xff", m[9]!);
  _push(f, "ua", m[10]!);
  _push(f, "request_id", m[11]!);
  _push(f, "authority", m[12]!);
  _push(f, "upstream", m[13]!);
  if (m[14]) _extras(f, m[14]);
  return f;
}

function _levelWord(v: unknown): string {
  if (typeof v === "number") return _NUMERIC_LEVELS[String(v)] ?? String(v);
  if (typeof v !== "string" || v.length === 0 || v.length > 16) return "";
  return _NUMERIC_LEVELS[v] ?? v.toUpperCase();
}

function _json(text: string): LineFields | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return undefined;
  const f = _new("json");
  _flatten(f, obj as Record<string, unknown>, "", 0);
  return f;
}

function _flatten(f: LineFields, o: Record<string, unknown>, prefix: string, depth: number): void {
  for (const k in o) {
    if (f.names.length >= MAX_FIELDS) return;
    const v = o[k];
    const key = prefix === "" ? k : prefix + "." + k;
    const lower = key.toLowerCase();
    if (_TIME_KEYS.has(lower)) continue;
    if (depth === 0 && f.level === "" && _LEVEL_KEYS.has(lower)) {
      const w = _levelWord(v);
      if (w !== "") {
        f.level = w;
        continue;
      }
    }
    if (depth === 0 && f.message === "" && _MESSAGE_KEYS.has(lower) && typeof v === "string") {
      f.message = v.length > 4096 ? v.substring(0, 4096) : v;
      continue;
    }
    if (v !== null && typeof v === "object") {
      if (Array.isArray(v)) {
        let flat = true;
        for (const x of v) if (x !== null && typeof x === "object") flat = false;
        _push(f, _name(key), flat ? v.join(",") : _short(JSON.stringify(v)));
      } else if (depth < 4) _flatten(f, v as Record<string, unknown>, key, depth + 1);
      else _push(f, _name(key), _short(JSON.stringify(v)));
      continue;
    }
    if (typeof v === "number") _push(f, _name(key), String(v), v);
    else _push(f, _name(key), v === null ? "null" : String(v));
  }
}

function _short(s: string): string {
  return s.length > MAX_VALUE_CHARS ? s.substring(0, MAX_VALUE_CHARS) : s;
}

function _name(key: string): string {
  return /[\s=]/.test(key) ? key.replace(/[\s=]/g, "_") : key;
}

function _logfmt(text: string): LineFields | undefined {
  // Every token must be key=value (values may be quoted), at least three.
  const c = text.charCodeAt(0);
  if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95)) return undefined;
  let first = 1;
  while (first < 48 && first < text.length) {
    const d = text.charCodeAt(first);
    if (d === 61) break;
    if (d <= 32 || d === 34) return undefined;
    first++;
  }
  if (text.charCodeAt(first) !== 61) return undefined;
  const f = _new("logfmt");
  const n = text.length;
  let i = 0;
  let pairs = 0;
  while (i < n) {
    while (i < n && text.charCodeAt(i) <= 32) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && text.charCodeAt(j) !== 61 && text.charCodeAt(j) > 32) j++;
    if (j >= n || text.charCodeAt(j) !== 61 || j === i) return undefined;
    const key = text.substring(i, j);
    let v: string;
    j++;
    if (j < n && text.charCodeAt(j) === 34) {
      let close = j + 1;
      while (close < n && text.charCodeAt(close) !== 34) {
        if (text.charCodeAt(close) === 92) close++;
        close++;
      }
      if (close >= n) return undefined;
      v = text.substring(j + 1, close).replace(/\\(["\\])/g, "$1");
      i = close + 1;
    } else {
      let end = j;
      while (end < n && text.charCodeAt(end) > 32) end++;
      v = text.substring(j, end);
      i = end;
    }
    pairs++;
    const lower = key.toLowerCase();
    if (_TIME_KEYS.has(lower)) continue;
    if (f.level === "" && _LEVEL_KEYS.has(lower)) {
      const w = _levelWord(v);
      if (w !== "") {
        f.level = w;
        continue;
      }
    }
    if (f.message === "" && _MESSAGE_KEYS.has(lower)) {
      f.message = v;
      continue;
    }
    _push(f, key, v, _num(v));
  }
  return pairs >= 3 ? f : undefined;
}
