/**
 * Tokenising and masking of one log line: the line is split on whitespace and
 * control characters, ANSI escape sequences are dropped, and every token that
 * carries a variable value (numbers, hex, IPs, UUIDs, paths, URLs, timestamps,
 * emails, quoted values, `true`/`false`, a unit right after a number) becomes
 * the wildcard `<*>`. `key=value` and `key:value` keep their key. A masked
 * token that names a thing with a short number (`eth0`, `IPV6`, `SOCKS5`)
 * keeps its text beside the mask, so the template miner can keep it when a
 * position only ever holds a few names. Work per line is capped, so any
 * string is safe to pass.
 *
 * @module
 */

/** The wildcard that stands for a masked value. */
export const WILDCARD = "<*>";

/** At most this many UTF-16 code units of a line are tokenised. */
export const MAX_LINE_CHARS = 4096;

/** At most this many tokens are kept per line. */
export const MAX_TOKENS = 192;

/** A masked line: its tokens and, per token, the number it held (NaN if none). */
export interface MaskedLine {
  /** Masked tokens; only the first `count` entries are meaningful. */
  tokens: string[];
  /** Numeric value per token, NaN when the token held no plain number. */
  values: Float64Array;
  /**
   * Per token, the original text of a masked name with a short number
   * (`eth0`, `IPV6`, `SOCKS5`); empty for every other token.
   */
  literals: string[];
  /** Number of tokens. */
  count: number;
  /**
   * The text the tokens were read from; `start`/`end` index it. For a line
   * with fields it is the message followed by the field values.
   */
  source: string;
  /** Per token, where its value starts in `source` (after `key=` or `key:`). */
  start: Int32Array;
  /** Per token, where its value ends in `source`. */
  end: Int32Array;
}

/**
 * Create an empty, reusable {@linkcode MaskedLine} buffer.
 *
 * @returns A buffer for {@linkcode maskTokens}.
 */
export function createMaskedLine(): MaskedLine {
  return {
    tokens: [],
    values: new Float64Array(MAX_TOKENS),
    literals: [],
    count: 0,
    source: "",
    start: new Int32Array(MAX_TOKENS),
    end: new Int32Array(MAX_TOKENS),
  };
}

const _TIME_WORDS = new Set([
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
  "Mon",
  "Tue",
  "Wed",
  "Thu",
  "Fri",
  "Sat",
  "Sun",
]);

const _PUNCT = 0;
const _SEP = 1;
const _DIGIT = 2;
const _HEX = 3;
const _LETTER = 4;

/** Class of each character code below 128 in a word scan (ESC is a separator). */
const _CLASS = (() => {
  const t = new Uint8Array(128);
  for (let c = 0; c < 128; c++) {
    if (_isSeparator(c) || c === 0x1b) t[c] = _SEP;
    else if (c >= 48 && c <= 57) t[c] = _DIGIT;
    else if ((c >= 65 && c <= 70) || (c >= 97 && c <= 102)) t[c] = _HEX;
    else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) t[c] = _LETTER;
    else t[c] = _PUNCT;
  }
  return t;
})();

/** Per character code below 128, 1 when some month or weekday name starts with it. */
const _TIME_FIRST = (() => {
  const t = new Uint8Array(128);
  for (const w of _TIME_WORDS) t[w.charCodeAt(0)] = 1;
  return t;
})();

/**
 * Tokenise and mask a line into a reusable buffer. Never throws.
 *
 * @param line Any string.
 * @param out The buffer to fill; a new one when omitted.
 * @returns The filled buffer.
 */
export function maskTokens(line: string, out: MaskedLine = createMaskedLine()): MaskedLine {
  const text = typeof line === "string" ? line : String(line);
  const n = text.length < MAX_LINE_CHARS ? text.length : MAX_LINE_CHARS;
  const tokens = out.tokens;
  const values = out.values;
  const literals = out.literals;
  const starts = out.start;
  const ends = out.end;
  out.source = text;
  let count = 0;
  let i = 0;
  let afterNumber = false;
  let timeWords = false;
  while (i < n && count < MAX_TOKENS) {
    let c = text.charCodeAt(i);
    if (c === 0x1b) {
      i = _skipEscape(text, i, n);
      continue;
    }
    if (_isSeparator(c)) {
      i++;
      continue;
    }
    // One word: scan to the next separator, noting what it contains.
    const start = i;
    let digits = 0;
    let letters = 0;
    let hexOnly = true;
    let slashes = 0;
    let eq = -1;
    let colon = -1;
    let at = -1;
    let dotAfterAt = false;
    let quoted = false;
    let scheme = false;
    let backslash = false;
    while (i < n) {
      c = text.charCodeAt(i);
      // ASCII through a class table (same classes as the tests below).
      const cls = c < 128 ? _CLASS[c]! : _isSeparator(c) ? _SEP : _PUNCT;
      if (cls === _SEP) break;
      if (cls === _DIGIT) digits++;
      else if (cls === _HEX) letters++;
      else if (cls === _LETTER) {
        letters++;
        hexOnly = false;
      } else {
        if (c === 47) {
          slashes++;
          if (i >= 2 && text.charCodeAt(i - 1) === 47 && text.charCodeAt(i - 2) === 58) {
            scheme = true;
          }
        } else if (c === 92) backslash = true;
        else if (c === 61 && eq < 0) eq = i;
        else if (c === 58 && colon < 0) colon = i;
        else if (c === 64 && at < 0) at = i;
        else if (c === 46 && at >= 0) dotAfterAt = true;
        else if (c === 34 && i > start) {
          const prev = text.charCodeAt(i - 1);
          if (prev === 61 || prev === 58) {
            // key="quoted value, maybe with spaces": jump to the closing quote.
            const close = text.indexOf('"', i + 1);
            if (close > 0 && close < n) {
              i = close;
              quoted = true;
            }
          }
        }
        if (c !== 45 && c !== 95) hexOnly = false;
      }
      i++;
    }
    const end = i;
    const len = end - start;
    values[count] = NaN;
    literals[count] = "";
    starts[count] = start;
    ends[count] = end;
    let token: string;
    let number = false;
    if (quoted) {
      token = eq > start ? text.substring(start, eq + 1) + WILDCARD : WILDCARD;
      if (eq > start) starts[count] = eq + 1;
    } else if (digits === 0 && afterNumber && _isUnit(text, start, end)) {
      token = WILDCARD;
    } else if (digits === 0) {
      // No digit: variable only if it looks like a URL, email, path or long hex.
      if (
        scheme || (at > start && dotAfterAt && letters > 0) ||
        (slashes >= 2 && text.charCodeAt(start) === 47) || (backslash && slashes === 0 && len > 3 &&
          text.charCodeAt(start + 1) === 58) ||
        (hexOnly && letters >= 8 && len >= 8)
      ) {
        token = WILDCARD;
      } else if (_isBoolean(text, start, end)) {
        token = WILDCARD;
      } else if (eq > start && _isKey(text, start, eq) && _isBoolean(text, eq + 1, end)) {
        token = text.substring(start, eq + 1) + WILDCARD;
        starts[count] = eq + 1;
      } else if (
        colon > start && eq < 0 && _isName(text, start, colon) && _isBoolean(text, colon + 1, end)
      ) {
        token = text.substring(start, colon + 1) + WILDCARD;
        starts[count] = colon + 1;
      } else {
        const b = text.charCodeAt(start) === 91 || text.charCodeAt(start) === 40 ? 1 : 0;
        if (
          len === 3 + b && _TIME_FIRST[text.charCodeAt(start + b)] === 1 &&
          _TIME_WORDS.has(text.substring(start + b, end))
        ) {
          token = "\u0000" + text.substring(start, end);
          timeWords = true;
        } else token = text.substring(start, end);
      }
    } else if (eq > start && eq < end - 1 && _isKey(text, start, eq)) {
      token = text.substring(start, eq + 1) + WILDCARD;
      starts[count] = eq + 1;
      values[count] = _parseNumber(text, eq + 1, end);
    } else if (
      colon > start + 1 && colon < end - 1 && eq < 0 && slashes === 0 && !backslash &&
      _isName(text, start, colon)
    ) {
      token = text.substring(start, colon + 1) + WILDCARD;
      starts[count] = colon + 1;
      values[count] = _parseNumber(text, colon + 1, end);
    } else {
      token = WILDCARD;
      values[count] = _parseNumber(text, start, end);
      if (digits <= 2 && _isNameWithNumber(text, start, end)) {
        literals[count] = text.substring(start, end);
      } else number = true;
    }
    afterNumber = number;
    tokens[count++] = token;
  }
  // Month and weekday names next to masked values are part of a timestamp.
  for (let k = 0; timeWords && k < count; k++) {
    const t = tokens[k]!;
    if (t.charCodeAt(0) === 0) {
      const prev = k > 0 ? tokens[k - 1]! : "";
      const next = k + 1 < count ? tokens[k + 1]! : "";
      const near = prev === WILDCARD || next === WILDCARD || next.charCodeAt(0) === 0;
      tokens[k] = near ? WILDCARD : t.substring(1);
    }
  }
  out.count = count;
  return out;
}

/**
 * The text of a template: its tokens joined by single spaces, with each run
 * of consecutive wildcards written as one wildcard, so templates that differ
 * only in how many tokens a variable took (`0 bytes` and `1190 bytes (1.16 KB)`)
 * read the same. A template of wildcards only keeps its runs.
 *
 * @example
 * ```ts
 * templateText(["sent", "<*>", "<*>", "ok"], 4); // "sent <*> ok"
 * ```
 * @param tokens Masked tokens or template tokens.
 * @param count Number of tokens to use.
 * @default {count} all of them
 * @returns The text.
 */
export function templateText(tokens: readonly string[], count: number = tokens.length): string {
  let constant = false;
  for (let k = 0; k < count; k++) {
    if (tokens[k] !== WILDCARD) {
      constant = true;
      break;
    }
  }
  let s = "";
  for (let k = 0; k < count; k++) {
    const t = tokens[k]!;
    if (constant && t === WILDCARD && k > 0 && tokens[k - 1] === WILDCARD) continue;
    s = k === 0 ? t : s + " " + t;
  }
  return s;
}

/**
 * Mask a line and join its tokens with single spaces.
 *
 * @example
 * ```ts
 * maskLine("connect from 10.0.0.1 port 22"); // "connect from <*> port <*>"
 * ```
 * @param line Any string.
 * @returns The masked line.
 */
export function maskLine(line: string): string {
  const m = maskTokens(line);
  return m.tokens.slice(0, m.count).join(" ");
}

const _UNITS = new Set([
  "b",
  "kb",
  "mb",
  "gb",
  "tb",
  "kib",
  "mib",
  "gib",
  "tib",
  "byte",
  "bytes",
  "bit",
  "bits",
  "ns",
  "us",
  "µs",
  "ms",
  "s",
  "sec",
  "secs",
  "second",
  "seconds",
  "min",
  "mins",
  "minute",
  "minutes",
  "h",
  "hr",
  "hrs",
  "hour",
  "hours",
  "day",
  "days",
  "%",
  "hz",
  "khz",
  "mhz",
  "ghz",
  "kbps",
  "mbps",
  "gbps",
]);

function _isUnit(text: string, start: number, end: number): boolean {
  // A unit word right after a number, in brackets or with trailing punctuation.
  let s = start;
  let e = end;
  while (s < e && (text.charCodeAt(s) === 40 || text.charCodeAt(s) === 91)) s++;
  while (e > s) {
    const c = text.charCodeAt(e - 1);
    if (c === 44 || c === 59 || c === 41 || c === 93 || c === 46 || c === 58) e--;
    else break;
  }
  if (e - s <= 0 || e - s > 7) return false;
  // Every unit is ASCII letters or `%` (and `µs`): an ASCII word with any
  // other character, or whose first letter starts no unit, is none, without
  // allocating its lower case.
  let ascii = true;
  for (let k = s; k < e; k++) {
    const c = text.charCodeAt(k);
    if (c >= 128) {
      ascii = false;
      break;
    }
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 37)) return false;
  }
  if (ascii && !_UNIT_FIRST[text.charCodeAt(s) | 32]) return false;
  return _UNITS.has(text.substring(s, e).toLowerCase());
}

/** Per lower-cased ASCII code, whether some unit starts with it. */
const _UNIT_FIRST: boolean[] = (() => {
  const t: boolean[] = new Array(128).fill(false);
  for (const u of _UNITS) {
    const c = u.charCodeAt(0);
    if (c < 128) t[c] = true;
  }
  return t;
})();

function _isNameWithNumber(text: string, start: number, end: number): boolean {
  // Two or more letters, then one or two digits, then trailing punctuation.
  let e = end;
  while (e > start) {
    const c = text.charCodeAt(e - 1);
    if (c === 44 || c === 59 || c === 41 || c === 93 || c === 46 || c === 58) e--;
    else break;
  }
  let k = start;
  while (k < e) {
    const c = text.charCodeAt(k);
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) k++;
    else break;
  }
  if (k - start < 2 || e - k < 1 || e - k > 2) return false;
  for (let j = k; j < e; j++) {
    const c = text.charCodeAt(j);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function _isSeparator(c: number): boolean {
  return c <= 32 || c === 127 || (c >= 0x80 && c <= 0xa0) || c === 0x2028 || c === 0x2029 ||
    c === 0xfeff || c === 0x3000;
}

function _skipEscape(text: string, i: number, n: number): number {
  // ESC [ params final-byte (CSI), ESC ] ... BEL/ST (OSC), or ESC + one char.
  const next = i + 1 < n ? text.charCodeAt(i + 1) : 0;
  if (next === 0x5b) {
    let j = i + 2;
    while (j < n) {
      const c = text.charCodeAt(j);
      j++;
      if (c >= 0x40 && c <= 0x7e) break;
    }
    return j;
  }
  if (next === 0x5d) {
    let j = i + 2;
    while (j < n) {
      const c = text.charCodeAt(j);
      j++;
      if (c === 7 || c === 0x1b) break;
    }
    return j;
  }
  return i + 2;
}

function _isKey(text: string, start: number, eq: number): boolean {
  let letters = 0;
  for (let k = start; k < eq; k++) {
    const c = text.charCodeAt(k);
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) letters++;
    else if (c >= 48 && c <= 57) return false;
  }
  return letters > 0;
}

function _isName(text: string, start: number, end: number): boolean {
  // An identifier made of letters, `_` and `-` (the key of `key:value`).
  for (let k = start; k < end; k++) {
    const c = text.charCodeAt(k);
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45)) return false;
  }
  return end > start;
}

function _isBoolean(text: string, start: number, end: number): boolean {
  // true / false, any case, with trailing punctuation.
  let e = end;
  while (e > start) {
    const c = text.charCodeAt(e - 1);
    if (c === 44 || c === 59 || c === 41 || c === 93 || c === 125 || c === 46 || c === 58) e--;
    else break;
  }
  const len = e - start;
  // ASCII letters only, compared in lower case without allocating.
  if (len === 4) {
    return (text.charCodeAt(start) | 32) === 116 && (text.charCodeAt(start + 1) | 32) === 114 &&
      (text.charCodeAt(start + 2) | 32) === 117 && (text.charCodeAt(start + 3) | 32) === 101;
  }
  if (len === 5) {
    return (text.charCodeAt(start) | 32) === 102 && (text.charCodeAt(start + 1) | 32) === 97 &&
      (text.charCodeAt(start + 2) | 32) === 108 && (text.charCodeAt(start + 3) | 32) === 115 &&
      (text.charCodeAt(start + 4) | 32) === 101;
  }
  return false;
}

function _parseNumber(text: string, start: number, end: number): number {
  // A plain decimal number, optionally signed, with trailing punctuation.
  let s = start;
  let e = end;
  while (e > s) {
    const c = text.charCodeAt(e - 1);
    if (c === 44 || c === 59 || c === 41 || c === 93 || c === 125 || c === 46 || c === 58) e--;
    else break;
  }
  while (s < e) {
    const c = text.charCodeAt(s);
    if (c === 40 || c === 91 || c === 123) s++;
    else break;
  }
  if (e - s === 0 || e - s > 24) return NaN;
  let k = s;
  const first = text.charCodeAt(k);
  if (first === 45 || first === 43) k++;
  let digits = 0;
  let dots = 0;
  // The integer so far (exact up to 15 digits), to skip a substring and
  // Number() for the common case.
  let int = 0;
  for (; k < e; k++) {
    const c = text.charCodeAt(k);
    if (c >= 48 && c <= 57) {
      digits++;
      int = int * 10 + (c - 48);
    } else if (c === 46 && dots === 0) dots++;
    else break;
  }
  if (digits === 0) return NaN;
  // A short unit may follow (12ms, 3.5s, 100KB, 80%), but not a hex prefix.
  const unit = e - k;
  if (unit > 0) {
    if (unit > 3) return NaN;
    const u = text.charCodeAt(k);
    if ((u === 120 || u === 88) && digits === 1) return NaN;
    for (let j = k; j < e; j++) {
      const c = text.charCodeAt(j);
      if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 37)) return NaN;
    }
  }
  if (dots === 0 && digits <= 15) return first === 45 ? -int : int;
  return Number(text.substring(s, k));
}
