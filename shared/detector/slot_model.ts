/**
 * What one template slot (a masked position, a `key=` value, a field of an
 * access, JSON or logfmt line) held in training, and how unusual a new value
 * is there. Learned from the container's own lines, no signature lists:
 *
 * - a slot with few distinct values (status codes, methods, levels, hosts)
 *   keeps them, with their counts: a value never seen there is unusual, one
 *   seen rarely is somewhat unusual;
 * - a slot with many values (paths, queries, ids, user agents) keeps their
 *   *shape*: which character classes and encodings occurred (percent
 *   encoding, quotes, `..`, angle brackets, control bytes, ...), the longest
 *   value, and, while the slot's words stay a bounded vocabulary, its words;
 * - a numeric slot is a **code** when it holds few distinct values (judged as
 *   a category), a **counter** when it grows (request numbers, offsets,
 *   uptimes, timestamps) and an **identifier** when nearly every value is
 *   distinct; counters and identifiers are never outliers for their size.
 *
 * Strengths are in [0, 1] and follow the data: the surprise of a new value
 * shrinks with the share of values that were new in training (Good–Turing).
 *
 * @module
 */

import type { ByteReader, ByteWriter } from "./binary.ts";
import { ModelFormatError } from "./model_format_error.ts";

/** Slot kind flag: the values grow (request numbers, offsets, uptimes). */
export const COUNTER = 1;
/** Slot kind flag: nearly every value is distinct (ids). */
export const IDENTIFIER = 2;
/** Slot kind flag: a number with few distinct values (status codes). */
export const CODE = 4;

/** Values a slot must have seen before it judges anything. */
const _MIN_VALUES = 20;
/** Distinct values a slot keeps before it counts as high-cardinality. */
const _MAX_CATEGORIES = 64;
/** Distinct numbers a numeric slot may hold and still be a code. */
const _MAX_CODES = 16;
/** Distinct words a slot keeps before its vocabulary counts as open. */
const _MAX_WORDS = 384;
/** Values tracked for the distinct share in training. */
const _DISTINCT_SAMPLE = 4096;

/** Names of the shape classes, by bit. */
export const SHAPE_CLASSES: readonly string[] = [
  "lowercase",
  "uppercase",
  "digits",
  "/",
  ".",
  "-_",
  "%-encoding",
  "quotes",
  "..",
  "<>",
  "control bytes",
  "spaces",
  "=&",
  ";|$`",
  "brackets",
  "backslash",
  "punctuation",
  "non-ASCII",
  "empty",
];
const _BITS = SHAPE_CLASSES.length;

/** What a finding is about ({@linkcode describeFinding} words it). */
export const FINDING = {
  /** A value never seen in the slot. */
  newValue: 1,
  /** A value seen rarely: `a` times among `b`. */
  rareValue: 2,
  /** Shape classes (bit mask `a`) never seen. */
  newShape: 3,
  /** Shape classes (bit mask `a`) rarely seen. */
  rareShape: 4,
  /** A value `a` characters long, the longest seen `b`. */
  long: 5,
  /** A word (at `a`..`b` of the text) never seen. */
  newWord: 6,
  /** A word (at `a`..`b`) seen in `c` of `d` values. */
  rareWord: 7,
  /** A number out of range, usually between `a` and `b`. */
  range: 8,
} as const;

/**
 * One finding about a value: a strength and what it is about, in numbers,
 * so that nothing is formatted for the many lines that never need words.
 */
export interface SlotFinding {
  /** Strength in [0, 1]. */
  strength: number;
  /** One of {@linkcode FINDING}. */
  code: number;
  /** First number of the finding (see {@linkcode FINDING}). */
  a: number;
  /** Second number. */
  b: number;
  /** Third number. */
  c: number;
  /** Fourth number. */
  d: number;
}

/**
 * Words for a finding, for people: `never seen here`, `rare here (5 of
 * 20000)`, `shape never seen (.., %-encoding)`, ...
 *
 * @param f The finding.
 * @param source The text its word offsets index.
 * @returns The words.
 */
export function describeFinding(f: SlotFinding, source: string): string {
  switch (f.code) {
    case FINDING.newValue:
      return "never seen here";
    case FINDING.rareValue:
      return `rare here (${f.a} of ${f.b})`;
    case FINDING.newShape:
    case FINDING.rareShape: {
      const names: string[] = [];
      for (let k = 0; k < _BITS; k++) if ((f.a >>> k) & 1) names.push(SHAPE_CLASSES[k]!);
      return `shape ${f.code === FINDING.newShape ? "never" : "rarely"} seen (${names.join(", ")})`;
    }
    case FINDING.long:
      return `${f.a} characters, longest seen ${f.b}`;
    case FINDING.newWord:
      return `word never seen here (${source.substring(f.a, Math.min(f.b, f.a + 24))})`;
    case FINDING.rareWord:
      return `word rare here (${source.substring(f.a, Math.min(f.b, f.a + 24))}, ${f.c} of ${f.d})`;
    case FINDING.range:
      return `out of range (usually ${_round(f.a)} to ${_round(f.b)})`;
    default:
      return "unusual";
  }
}

function _round(v: number): string {
  return String(Number(v.toPrecision(4)));
}

/** Sorted value hashes and their counts. */
export interface Counts {
  /** Hashes, ascending. */
  keys: Uint32Array;
  /** Count per hash. */
  counts: Uint32Array;
}

/** What one slot held in training. */
export class SlotModel {
  /** Values seen. */
  n = 0;
  /** Of those, plain numbers. */
  numeric = 0;
  /** Kind flags ({@linkcode COUNTER}, {@linkcode IDENTIFIER}, {@linkcode CODE}). */
  kind = 0;
  /** Values and counts, or null when the slot holds too many values. */
  categories: Counts | null = null;
  /** Values seen exactly once. */
  singles = 0;
  /** Per shape class, values that showed it. */
  bits: Uint32Array = new Uint32Array(_BITS);
  /** Shape classes common enough (≥ 1 %) never to be unusual. */
  commonBits = 0;
  /** Longest value seen. */
  maxLength = 0;
  /** Words and counts, or null when the words are an open vocabulary (or never surprising). */
  words: Counts | null = null;
  /** Words seen. */
  wordTotal = 0;
  /** Strength of a word never seen here. */
  wordStrength = 0;
  #catMap: Map<number, number> | null = null;
  #wordMap: Map<number, number> | null = null;
  #ups = 0;
  #downs = 0;
  #last = NaN;
  #distinct: Set<number> | undefined = undefined;
  #tested = 0;
  #integers = 0;

  /**
   * Record a training value.
   *
   * @param s The text holding the value.
   * @param a Where the value starts.
   * @param b Where it ends.
   * @param num The value as a number, NaN if it is none.
   */
  add(s: string, a: number, b: number, num: number): void {
    if (this.n++ === 0) {
      this.#catMap = new Map();
      this.#wordMap = new Map();
      this.#distinct = new Set();
    }
    const h = hashRange(s, a, b);
    if (num === num) {
      this.numeric++;
      if (Number.isInteger(num)) this.#integers++;
      const last = this.#last;
      if (last === last) {
        if (num > last) this.#ups++;
        else if (num < last) this.#downs++;
      }
      this.#last = num;
    }
    if (this.#distinct !== undefined && this.#tested < _DISTINCT_SAMPLE) {
      this.#tested++;
      this.#distinct.add(h);
    }
    const cat = this.#catMap;
    if (cat !== null) {
      cat.set(h, (cat.get(h) ?? 0) + 1);
      if (cat.size > _MAX_CATEGORIES) this.#catMap = null;
    }
    const mask = shapeOf(s, a, b);
    for (let k = 0; k < _BITS; k++) if ((mask >>> k) & 1) this.bits[k]!++;
    const len = b - a;
    if (len > this.maxLength) this.maxLength = len;
    const words = this.#wordMap;
    if (words !== null) {
      _words(s, a, b, (w) => {
        words.set(w, (words.get(w) ?? 0) + 1);
        this.wordTotal++;
      });
      if (words.size > _MAX_WORDS) this.#wordMap = null;
    }
  }

  /**
   * Whether the slot can matter in scoring: it judges values, or its kind
   * keeps a number from counting as out of range.
   */
  get useful(): boolean {
    return this.kind !== 0 || this.numeric < this.n;
  }

  /** End training: settle the kind, freeze the counts and drop what can never matter. */
  finish(): void {
    let kind = 0;
    if (this.numeric >= _MIN_VALUES && this.numeric >= 0.9 * this.n) {
      const moves = this.#ups + this.#downs;
      if (moves >= 10 && this.#ups >= 0.8 * moves) kind |= COUNTER;
      const tested = this.#tested;
      const distinct = this.#distinct?.size ?? 0;
      if (
        tested >= _MIN_VALUES && distinct >= 0.9 * tested && this.#integers >= 0.99 * this.numeric
      ) kind |= IDENTIFIER;
      if (
        this.#catMap !== null && this.#catMap.size <= _MAX_CODES &&
        this.#integers >= 0.99 * this.numeric && !(kind & COUNTER)
      ) kind |= CODE;
    }
    this.kind = kind;
    // A numeric slot that is not a code only judges its non-numbers as categories.
    const keepCats = (kind & CODE) !== 0 || this.numeric < 0.9 * this.n;
    this.categories = keepCats && this.#catMap !== null ? _freeze(this.#catMap) : null;
    this.words = this.#wordMap !== null ? _freeze(this.#wordMap) : null;
    this.#catMap = null;
    this.#wordMap = null;
    this.#distinct = undefined;
    this.settle();
  }

  /** Derive the counts of singles, the common shape classes and the word strength. */
  settle(): void {
    this.singles = 0;
    if (this.categories !== null) {
      for (const c of this.categories.counts) if (c === 1) this.singles++;
    }
    let common = 0;
    for (let k = 0; k < _BITS; k++) if (this.bits[k]! >= 0.01 * this.n + 1) common |= 1 << k;
    this.commonBits = common;
    this.wordStrength = 0;
    if (this.words !== null && this.wordTotal >= _MIN_VALUES) {
      let singles = 0;
      for (const c of this.words.counts) if (c === 1) singles++;
      this.wordStrength = newStrength(singles, this.wordTotal);
    }
    if (this.wordStrength < 0.5) this.words = null;
  }

  /**
   * How unusual a value is here.
   *
   * @param s The text holding the value.
   * @param a Where the value starts.
   * @param b Where it ends.
   * @param num The value as a number, NaN if it is none.
   * @param self 1 when the value is one of the training values (leave it out), else 0.
   * @param out Where to write the finding.
   * @returns The strength (also in `out`), 0 when nothing is unusual.
   */
  check(s: string, a: number, b: number, num: number, self: 0 | 1, out: SlotFinding): number {
    out.strength = 0;
    const n = this.n - self;
    if (n < _MIN_VALUES) return 0;
    const cat = this.categories;
    const isNumber = num === num;
    // Few distinct values are judged as a category: codes, and words (methods,
    // levels, schemes). Text with digits in nearly every value (hosts, IPs,
    // user agents, versions) names instances that come and go: its shape and
    // words are judged instead.
    if (cat !== null && (isNumber ? (this.kind & CODE) !== 0 : this.bits[2]! < 0.9 * this.n)) {
      const c = _count(cat, hashRange(s, a, b)) - self;
      if (c <= 0) {
        out.strength = newStrength(this.singles - self, n);
        // A slot that only ever held one value with digits in it (a pid, a
        // host or pod name, a version) changes with a restart or a deploy,
        // for every line at once: alone, that is not worth an alert.
        if (cat.keys.length === 1 && _hasDigit(s, a, b)) out.strength *= 0.15;
        out.code = FINDING.newValue;
      } else {
        out.strength = rareStrength(c, n);
        out.code = FINDING.rareValue;
        out.a = c;
        out.b = n;
      }
      return out.strength;
    }
    if (isNumber && this.numeric >= 0.9 * this.n) return 0;
    // Many values: their shape, length and words.
    const mask = shapeOf(s, a, b);
    const odd = mask & ~this.commonBits;
    if (odd !== 0) {
      let best = 0;
      let bestBits = 0;
      for (let k = 0; k < _BITS; k++) {
        if (!((odd >>> k) & 1)) continue;
        const c = this.bits[k]! - self;
        const st = c <= 0 ? newStrength(0, n) : rareStrength(c, n);
        if (st > best + 1e-9) {
          best = st;
          bestBits = 1 << k;
        } else if (st > 0 && Math.abs(st - best) <= 1e-9) bestBits |= 1 << k;
      }
      if (best > 0) {
        out.strength = best;
        out.code = this.bits[_firstBit(bestBits)]! - self <= 0
          ? FINDING.newShape
          : FINDING.rareShape;
        out.a = bestBits;
      }
    }
    const len = b - a;
    if (len > 3 * this.maxLength + 16 && this.maxLength > 0) {
      const st = Math.min(1, Math.log(len / (this.maxLength + 16)) / Math.log(8));
      if (st > out.strength) {
        out.strength = st;
        out.code = FINDING.long;
        out.a = len;
        out.b = this.maxLength;
      }
    }
    const words = this.words;
    // Words only when the shape said little: a shape names the odd part better.
    if (words !== null && out.strength < 0.5) {
      // The rarest word of the value: never seen, or seen in few values.
      const rarest = _rarestWord(s, a, b, words, self);
      const ra = _rarestAt;
      const rb = _rarestEnd;
      const st = rarest <= 0
        ? this.wordStrength
        : rarest === Infinity
        ? 0
        : Math.min(this.wordStrength, rareStrength(rarest, n));
      if (st > out.strength) {
        out.strength = st;
        out.code = rarest <= 0 ? FINDING.newWord : FINDING.rareWord;
        out.a = ra;
        out.b = rb;
        out.c = rarest;
        out.d = n;
      }
    }
    return out.strength;
  }

  /**
   * Write the slot.
   *
   * @param w The writer.
   */
  write(w: ByteWriter): void {
    w.varint(this.n);
    w.varint(this.numeric);
    w.u8(this.kind);
    w.varint(this.maxLength);
    let present = 0;
    for (let k = 0; k < _BITS; k++) if (this.bits[k]! > 0) present |= 1 << k;
    w.varint(present);
    for (let k = 0; k < _BITS; k++) if (this.bits[k]! > 0) w.varint(this.bits[k]!);
    _writeCounts(w, this.categories);
    _writeCounts(w, this.words);
    w.varint(this.wordTotal);
  }

  /**
   * Read a slot written by {@linkcode SlotModel.write}.
   *
   * @param r The reader.
   * @returns The slot, ready to check values.
   */
  static read(r: ByteReader): SlotModel {
    const m = new SlotModel();
    m.n = r.varint();
    m.numeric = r.varint();
    m.kind = r.u8();
    m.maxLength = r.varint();
    const present = r.varint();
    for (let k = 0; k < _BITS; k++) if ((present >>> k) & 1) m.bits[k] = r.varint();
    m.categories = _readCounts(r);
    m.words = _readCounts(r);
    m.wordTotal = r.varint();
    m.settle();
    return m;
  }
}

function _freeze(m: Map<number, number>): Counts {
  const keys = Uint32Array.from(m.keys()).sort();
  const counts = new Uint32Array(keys.length);
  for (let i = 0; i < keys.length; i++) counts[i] = m.get(keys[i]!)!;
  return { keys, counts };
}

function _count(c: Counts, h: number): number {
  const keys = c.keys;
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid]!;
    if (k === h) return c.counts[mid]!;
    if (k < h) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

function _hasDigit(s: string, a: number, b: number): boolean {
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) return true;
  }
  return false;
}

function _firstBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

function _writeCounts(w: ByteWriter, c: Counts | null): void {
  if (c === null) {
    w.varint(0);
    return;
  }
  w.varint(c.keys.length + 1);
  let prev = 0;
  for (let i = 0; i < c.keys.length; i++) {
    w.varint(c.keys[i]! - prev);
    prev = c.keys[i]!;
    w.varint(c.counts[i]!);
  }
}

function _readCounts(r: ByteReader): Counts | null {
  const size = r.varint();
  if (size === 0) return null;
  if (size > 100_000) throw new ModelFormatError(`Cannot read model: ${size - 1} slot values`);
  const keys = new Uint32Array(size - 1);
  const counts = new Uint32Array(size - 1);
  let prev = 0;
  for (let i = 0; i < size - 1; i++) {
    prev += r.varint();
    keys[i] = prev;
    counts[i] = r.varint();
  }
  return { keys, counts };
}

/**
 * Strength of a value never seen in a slot: how surprising something new is,
 * given how often training met something new there (singles / values).
 *
 * @param singles Values seen once in training.
 * @param n Values seen.
 * @returns A strength in [0, 1].
 */
export function newStrength(singles: number, n: number): number {
  const p = (Math.max(0, singles) + 1) / (n + 1);
  const s = Math.log(0.02 / p) / Math.log(100);
  return s <= 0 ? 0 : s >= 1 ? 1 : s;
}

/**
 * Strength of a value seen `count` times among `n`: 0 from 2 % up, 0.5 at
 * 0.2 %, at most 0.9 (from 0.02 % down).
 *
 * @param count Times seen.
 * @param n Values seen.
 * @returns A strength in [0, 0.9].
 */
export function rareStrength(count: number, n: number): number {
  if (count * 50 >= n) return 0;
  const s = Math.log(0.02 * n / count) / Math.log(100);
  return s <= 0 ? 0 : s >= 0.9 ? 0.9 : s;
}

/**
 * FNV-1a of a range of a string's UTF-16 code units (its length, and its
 * first and last 24 code units when it is longer than 48).
 *
 * @param s The string.
 * @param a Start.
 * @param b End.
 * @returns An unsigned 32-bit hash.
 */
export function hashRange(s: string, a: number, b: number): number {
  // The first and last 24 code units and the length: values are short, or
  // differ near an end (user agents, paths).
  let h = 0x811c9dc5 ^ (b - a);
  if (b - a <= 48) {
    for (let i = a; i < b; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  } else {
    for (let i = a; i < a + 24; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    for (let i = b - 24; i < b; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

function _hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

// The shape bit of each ASCII character (`.` depends on the one before it).
const _SHAPE_BITS: Int32Array = _shapeBits();

function _shapeBits(): Int32Array {
  const t = new Int32Array(128);
  for (let c = 0; c < 128; c++) {
    if (c >= 97 && c <= 122) t[c] = 1;
    else if (c >= 65 && c <= 90) t[c] = 2;
    else if (c >= 48 && c <= 57) t[c] = 4;
    else if (c === 47) t[c] = 8;
    else if (c === 46) t[c] = 16;
    else if (c === 45 || c === 95) t[c] = 32;
    else if (c === 39 || c === 34) t[c] = 1 << 7;
    else if (c === 60 || c === 62) t[c] = 1 << 9;
    else if (c < 32 || c === 127) t[c] = 1 << 10;
    else if (c === 32 || c === 43) t[c] = 1 << 11;
    else if (c === 61 || c === 38) t[c] = 1 << 12;
    else if (c === 59 || c === 124 || c === 36 || c === 96) t[c] = 1 << 13;
    else if (c === 40 || c === 41 || c === 123 || c === 125 || c === 91 || c === 93) {
      t[c] = 1 << 14;
    } else if (c === 92) t[c] = 1 << 15;
    else t[c] = 1 << 16;
  }
  return t;
}

/**
 * The shape of a value: one bit per {@linkcode SHAPE_CLASSES} entry it shows.
 * Percent-encoded bytes count as `%-encoding` and as the character they
 * encode; `\xHH` (how nginx writes raw bytes) counts as a control byte.
 *
 * @param s The string.
 * @param a Start.
 * @param b End.
 * @returns The bit mask.
 */
export function shapeOf(s: string, a: number, b: number): number {
  if (b <= a) return 1 << 18;
  let mask = 0;
  let prev = 0;
  for (let i = a; i < b; i++) {
    let c = s.charCodeAt(i);
    if (c === 37 && i + 2 < b) {
      const h1 = _hex(s.charCodeAt(i + 1));
      const h2 = _hex(s.charCodeAt(i + 2));
      if (h1 >= 0 && h2 >= 0) {
        mask |= 1 << 6;
        c = h1 * 16 + h2;
        i += 2;
      }
    } else if (c === 92 && i + 3 < b && (s.charCodeAt(i + 1) | 32) === 120) {
      const h1 = _hex(s.charCodeAt(i + 2));
      const h2 = _hex(s.charCodeAt(i + 3));
      if (h1 >= 0 && h2 >= 0) {
        mask |= 1 << 10;
        i += 3;
        prev = 0;
        continue;
      }
    }
    if (c === 46) mask |= prev === 46 ? (1 << 8) | 16 : 16;
    else mask |= c < 128 ? _SHAPE_BITS[c]! : 1 << 17;
    prev = c;
  }
  return mask;
}

/**
 * Whether a run of letters is a word: no digit right before or after it
 * (`bd` in `55bd6f` is a piece of an id, not a word), and not six or more
 * hex letters (`bebbeafd`).
 */
function _edge(s: string, a: number, start: number, end: number, after: number): boolean {
  if (after >= 48 && after <= 57) return false;
  if (start > a) {
    const before = s.charCodeAt(start - 1);
    if (before >= 48 && before <= 57) return false;
  }
  // Six or more of a–f only is a hex id that happens to hold no digit.
  if (end - start < 6) return true;
  for (let i = start; i < end; i++) {
    const l = s.charCodeAt(i) | 32;
    if (l < 97 || l > 102) return true;
  }
  return false;
}

let _rarestAt = 0;
let _rarestEnd = 0;

/** The count of the rarest word of a value (Infinity when it has none); where it is in `_rarestAt`/`_rarestEnd`. */
function _rarestWord(s: string, a: number, b: number, words: Counts, self: number): number {
  let rarest = Infinity;
  let h = 0x811c9dc5;
  let start = -1;
  let seen = 0;
  for (let i = a; i <= b && seen < 24; i++) {
    let c = i < b ? s.charCodeAt(i) : 32;
    let skip = 0;
    if (c === 37 && i + 2 < b && _hex(s.charCodeAt(i + 1)) >= 0 && _hex(s.charCodeAt(i + 2)) >= 0) {
      c = 32;
      skip = 2;
    }
    const l = c | 32;
    if (l >= 97 && l <= 122) {
      if (start < 0) start = i;
      h ^= l;
      h = Math.imul(h, 0x01000193);
    } else {
      if (start >= 0 && i - start >= 2 && _edge(s, a, start, i, c)) {
        seen++;
        const n = _count(words, h >>> 0) - self;
        if (n < rarest) {
          rarest = n;
          _rarestAt = start;
          _rarestEnd = i;
        }
      }
      start = -1;
      h = 0x811c9dc5;
      i += skip;
    }
  }
  return rarest;
}

function _words(s: string, a: number, b: number, f: (h: number, ws: number, we: number) => void) {
  // Runs of two or more ASCII letters, lower-cased, with no digit next to
  // them; %XX is a separator.
  let h = 0x811c9dc5;
  let start = -1;
  let seen = 0;
  for (let i = a; i <= b && seen < 24; i++) {
    let c = i < b ? s.charCodeAt(i) : 32;
    if (c === 37 && i + 2 < b && _hex(s.charCodeAt(i + 1)) >= 0 && _hex(s.charCodeAt(i + 2)) >= 0) {
      c = 32;
      if (start >= 0 && i - start >= 2 && _edge(s, a, start, i, c)) {
        f(h >>> 0, start, i);
        seen++;
      }
      start = -1;
      h = 0x811c9dc5;
      i += 2;
      continue;
    }
    const l = c | 32;
    if (l >= 97 && l <= 122) {
      if (start < 0) start = i;
      h ^= l;
      h = Math.imul(h, 0x01000193);
    } else {
      if (start >= 0 && i - start >= 2 && _edge(s, a, start, i, c)) {
        f(h >>> 0, start, i);
        seen++;
      }
      start = -1;
      h = 0x811c9dc5;
    }
  }
}
