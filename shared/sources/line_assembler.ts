/**
 * Turns the log records of one container stream (stdout or stderr) into
 * lines.
 *
 * Docker's log copier stores a line as one record, `<timestamp> <bytes>\n`
 * when read with `timestamps: true`. A line longer than its 16 KiB buffer is
 * stored as several records, each with its own timestamp prefix; all but the
 * last lack the `\n`. Without a TTY every record arrives in its own frame, so
 * a frame that ends without `\n` continues in the next one. A TTY stream has
 * no frames: there a record whose text reaches the copier's 16 KiB without a
 * `\n` continues after the next record's timestamp. A record shorter than
 * that without `\n` is a container's last output before it stopped: a whole
 * line (framed streams; a TTY stream joins it with what follows).
 *
 * Lines keep their bytes exactly (a TTY's `\r` included) except the `\n`
 * terminator; a line longer than `maxLineBytes` is cut at a UTF-8 character
 * boundary and marked truncated. A line takes the timestamp of its first
 * record (Docker gives all records of a split line the same one).
 *
 * @module
 */

/**
 * Receives each complete line.
 *
 * @param ts Docker's timestamp of the line ("" without timestamps)
 * @param bytes the line without its `\n` (a view, valid during the call only)
 * @param truncated true when the line was cut at `maxLineBytes`
 */
export type LineHandler = (ts: string, bytes: Uint8Array, truncated: boolean) => void;

/** Options of {@linkcode LineAssembler}. */
export interface LineAssemblerOptions {
  /**
   * Longest line kept; longer ones are cut and marked truncated.
   * @default 1048576
   */
  maxLineBytes?: number;
  /**
   * Whether each record starts with Docker's timestamp and a space.
   * @default true
   */
  timestamps?: boolean;
  /**
   * Whether records arrive one per frame (no TTY): the end of a frame ends a
   * record. False for the raw stream of a TTY container.
   * @default true
   */
  framed?: boolean;
  /**
   * Size at which Docker's copier cuts a line into partial records: a record
   * without `\n` continues in the next one only when its text is this long.
   * @default 16384
   */
  partialBytes?: number;
  /**
   * Whether a `\r` right before a line's `\n` is dropped (text files written
   * with CRLF). Docker's records keep it (a TTY's output ends lines in `\r\n`).
   * @default false
   */
  stripCr?: boolean;
  /**
   * Whether a line that reaches `maxLineBytes` before its end is handed on
   * at once (truncated) and the rest of it, up to its `\n`, skipped: a file
   * line without an end in sight still arrives. Only without timestamps.
   * @default false
   */
  emitLongLines?: boolean;
}

const _NL = 10;
const _CR = 13;
const _SP = 32;
const _MAX_TS = 64;
const _TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/** Reassembles lines from the records of one stream. */
export class LineAssembler {
  #onLine: LineHandler;
  #max: number;
  #timestamps: boolean;
  #framed: boolean;
  #partialBytes: number;
  #stripCr: boolean;
  #emitLong: boolean;
  /** Skipping the rest of a line already handed on truncated. */
  #skipRest = false;
  /** Bytes fed by the earlier calls of push. */
  #fed = 0;
  #lineEnd = 0;

  /** 0 reading a timestamp, 1 reading text, 2 checking for a timestamp after a TTY partial. */
  #phase: 0 | 1 | 2;
  #tsBuf = new Uint8Array(_MAX_TS);
  #tsLen = 0;
  #ts = "";
  #open = false;
  #buf = new Uint8Array(0);
  #len = 0;
  #truncated = false;
  #recordText = 0;

  /**
   * @param onLine receives each complete line, in order
   * @param options line cap, timestamps and framing
   * @throws {RangeError} when `maxLineBytes` or `partialBytes` is not a positive integer
   */
  constructor(onLine: LineHandler, options: LineAssemblerOptions = {}) {
    this.#onLine = onLine;
    this.#max = options.maxLineBytes ?? 1024 * 1024;
    this.#timestamps = options.timestamps ?? true;
    this.#framed = options.framed ?? true;
    this.#partialBytes = options.partialBytes ?? 16 * 1024;
    this.#stripCr = options.stripCr ?? false;
    this.#emitLong = (options.emitLongLines ?? false) && !this.#timestamps;
    if (!Number.isInteger(this.#max) || this.#max < 1) {
      throw new RangeError(
        `Cannot assemble lines with maxLineBytes ${this.#max}: expected a positive integer`,
      );
    }
    if (!Number.isInteger(this.#partialBytes) || this.#partialBytes < 1) {
      throw new RangeError(
        `Cannot assemble lines with partialBytes ${this.#partialBytes}: expected a positive integer`,
      );
    }
    this.#phase = this.#timestamps ? 0 : 1;
  }

  /**
   * True while a line has started and not ended (a partial record, or a
   * record cut by a chunk boundary).
   *
   * @returns whether bytes are held back
   */
  get pending(): boolean {
    return this.#open || this.#tsLen > 0;
  }

  /**
   * Bytes fed so far by every push, over the assembler's whole life.
   *
   * @returns the count
   */
  get fed(): number {
    return this.#fed;
  }

  /**
   * During a line handler's call: how many bytes of the stream (all pushes
   * together) lie before the end of this line, its `\n` included; where a
   * reader resumes after it. Exact for streams without timestamps (a file).
   *
   * @returns the offset after the current line
   */
  get lineEnd(): number {
    return this.#lineEnd;
  }

  /**
   * Feeds the next bytes of the stream.
   *
   * @param bytes the bytes (a frame's payload or a piece of it, or raw TTY output)
   * @param recordEnd true when these bytes end a record (a frame's end); always false for TTY streams
   * @throws {RangeError} when a record does not start with a timestamp although `timestamps` is on
   */
  push(bytes: Uint8Array, recordEnd = false): void {
    const n = bytes.length;
    let i = 0;
    while (i < n) {
      if (this.#phase === 0) {
        i = this.#readTs(bytes, i, n);
      } else if (this.#phase === 2) {
        i = this.#probe(bytes, i, n);
      } else {
        i = this.#readText(bytes, i, n);
      }
    }
    this.#fed += n;
    if (recordEnd && this.#framed) {
      this.#lineEnd = this.#fed;
      if (this.#tsLen > 0) this.#badTs(this.#tsBuf.subarray(0, this.#tsLen));
      // Docker cuts a line only when its buffer is full: a shorter record
      // without "\n" is the last output of a container run, a whole line.
      if (this.#open && this.#recordText < this.#partialBytes) this.#emit();
      if (this.#timestamps) this.#phase = 0;
      this.#recordText = 0;
    }
  }

  /**
   * Ends the stream: a line without `\n` at the end (a container's last
   * output) is handed on.
   */
  end(): void {
    this.#lineEnd = this.#fed;
    if (this.#phase === 2 && this.#tsLen > 0) {
      this.#append(this.#tsBuf, 0, this.#tsLen);
      this.#tsLen = 0;
    }
    if (this.#open) this.#emit();
    this.#reset();
  }

  /** Drops a started line (the stream was cut; it will be read again). */
  discard(): void {
    this.#skipRest = false;
    this.#open = false;
    this.#len = 0;
    this.#truncated = false;
    this.#reset();
  }

  #reset(): void {
    this.#tsLen = 0;
    this.#recordText = 0;
    this.#phase = this.#timestamps ? 0 : 1;
  }

  #readTs(bytes: Uint8Array, i: number, n: number): number {
    const sp = bytes.indexOf(_SP, i);
    if (sp < 0 || sp - i + this.#tsLen > _MAX_TS) {
      const take = Math.min(n, i + _MAX_TS - this.#tsLen) - i;
      this.#tsBuf.set(bytes.subarray(i, i + take), this.#tsLen);
      this.#tsLen += take;
      if (this.#tsLen >= _MAX_TS) this.#badTs(this.#tsBuf);
      return i + take;
    }
    let ts: string;
    if (this.#tsLen === 0) {
      ts = this.#tsText(bytes, i, sp);
    } else {
      this.#tsBuf.set(bytes.subarray(i, sp), this.#tsLen);
      ts = _ascii(this.#tsBuf, 0, this.#tsLen + sp - i);
      this.#tsLen = 0;
    }
    if (!this.#open) {
      this.#ts = ts;
      this.#open = true;
    }
    this.#phase = 1;
    this.#recordText = 0;
    return sp + 1;
  }

  /**
   * A timestamp's text. Docker writes RFC 3339 with a fixed nine-digit
   * fraction (`2026-12-02T09:26:00.123456789Z`, 30 bytes): those are made by
   * one direct `String.fromCharCode` call, a flat string at half the cost of
   * the generic path (and later comparisons need not flatten it).
   */
  #tsText(bytes: Uint8Array, i: number, sp: number): string {
    if (sp - i !== 30) return _ascii(bytes, i, sp);
    const b = bytes;
    return String.fromCharCode(
      b[i]!,
      b[i + 1]!,
      b[i + 2]!,
      b[i + 3]!,
      b[i + 4]!,
      b[i + 5]!,
      b[i + 6]!,
      b[i + 7]!,
      b[i + 8]!,
      b[i + 9]!,
      b[i + 10]!,
      b[i + 11]!,
      b[i + 12]!,
      b[i + 13]!,
      b[i + 14]!,
      b[i + 15]!,
      b[i + 16]!,
      b[i + 17]!,
      b[i + 18]!,
      b[i + 19]!,
      b[i + 20]!,
      b[i + 21]!,
      b[i + 22]!,
      b[i + 23]!,
      b[i + 24]!,
      b[i + 25]!,
      b[i + 26]!,
      b[i + 27]!,
      b[i + 28]!,
      b[i + 29]!,
    );
  }

  #badTs(bytes: Uint8Array): never {
    const text = new TextDecoder().decode(bytes.subarray(0, 40));
    throw new RangeError(
      `Cannot parse Docker log record ${JSON.stringify(text)}: expected a timestamp and a space`,
    );
  }

  #probe(bytes: Uint8Array, i: number, n: number): number {
    // After a TTY record of exactly partialBytes without "\n": a timestamp
    // and a space here mean the line continues in the next record.
    let j = i;
    while (j < n && this.#tsLen < _MAX_TS) {
      const b = bytes[j]!;
      if (b === _SP || b === _NL) break;
      this.#tsBuf[this.#tsLen++] = b;
      j++;
    }
    if (j === n && this.#tsLen < _MAX_TS) return n;
    const candidate = _ascii(this.#tsBuf, 0, this.#tsLen);
    this.#phase = 1;
    this.#recordText = 0;
    if (j < n && bytes[j] === _SP && _TS_RE.test(candidate)) {
      this.#tsLen = 0;
      return j + 1;
    }
    // Not a record boundary: the held bytes are text.
    const held = this.#tsBuf.slice(0, this.#tsLen);
    this.#tsLen = 0;
    let k = 0;
    while (k < held.length) k = this.#readText(held, k, held.length);
    return j;
  }

  #readText(bytes: Uint8Array, i: number, n: number): number {
    if (this.#skipRest) {
      const nl = bytes.indexOf(_NL, i);
      if (nl < 0) return n;
      this.#skipRest = false;
      return nl + 1;
    }
    if (!this.#open) {
      this.#open = true;
      if (!this.#timestamps) this.#ts = "";
    }
    let nl = bytes.indexOf(_NL, i);
    let stop = nl < 0 ? n : nl;
    let partialEnd = false;
    if (!this.#framed && this.#timestamps) {
      const room = this.#partialBytes - this.#recordText;
      if (stop - i >= room && !(nl >= 0 && nl - i < room)) {
        stop = i + room;
        nl = -1;
        partialEnd = true;
      }
    }
    if (nl >= 0) {
      this.#lineEnd = this.#fed + nl + 1;
      if (this.#len === 0 && !this.#truncated) {
        // The whole line is in this piece: hand on a view, no copy.
        let end = this.#stripCr && nl > i && bytes[nl - 1] === _CR ? nl - 1 : nl;
        let truncated = false;
        if (end - i > this.#max) {
          end = _cutAt(bytes, i, i + this.#max);
          truncated = true;
        }
        this.#onLine(this.#ts, bytes.subarray(i, end), truncated);
        this.#open = false;
      } else {
        this.#append(bytes, i, nl);
        if (
          this.#stripCr && !this.#truncated && this.#len > 0 && this.#buf[this.#len - 1] === _CR
        ) {
          this.#len--;
        }
        this.#emit();
      }
      if (!this.#framed && this.#timestamps) this.#phase = 0;
      this.#recordText = 0;
      return nl + 1;
    }
    this.#append(bytes, i, stop);
    this.#recordText += stop - i;
    if (partialEnd) this.#phase = 2;
    if (this.#emitLong && this.#truncated) {
      this.#lineEnd = this.#fed + stop;
      this.#emit();
      this.#skipRest = true;
    }
    return stop;
  }

  #append(src: Uint8Array, s: number, e: number): void {
    if (this.#truncated || e <= s) return;
    const room = this.#max - this.#len;
    let end = e;
    if (e - s > room) {
      end = _cutAt(src, s, s + room);
      this.#truncated = true;
    }
    const need = this.#len + end - s;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.min(Math.max(need, this.#buf.length * 2, 4096), this.#max));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(src.subarray(s, end), this.#len);
    this.#len += end - s;
  }

  #emit(): void {
    this.#onLine(this.#ts, this.#buf.subarray(0, this.#len), this.#truncated);
    this.#open = false;
    this.#len = 0;
    this.#truncated = false;
    if (this.#buf.length > 65536) this.#buf = new Uint8Array(0);
  }
}

/**
 * Where to cut `bytes` so that `[start, end)` ends on a UTF-8 character
 * boundary: moves `end` back over a character the cut would split.
 */
function _cutAt(bytes: Uint8Array, start: number, end: number): number {
  if (end >= bytes.length || (bytes[end]! & 0xc0) !== 0x80) return end;
  let k = end;
  while (k > start && end - k < 3 && (bytes[k - 1]! & 0xc0) === 0x80) k--;
  if (k > start && (bytes[k - 1]! & 0xc0) === 0xc0) return k - 1;
  return end;
}

function _ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}
