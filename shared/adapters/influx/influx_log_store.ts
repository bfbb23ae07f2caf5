/**
 * The InfluxDB adapter of the {@linkcode LogStore} port, over the v1 HTTP API
 * (`/write` with line protocol, `/query` with InfluxQL): InfluxDB 1.x serves
 * it natively, 2.x and 3.x through their v1 compatibility API, so one adapter
 * reaches all three. Username and password go as HTTP basic auth (1.x), a
 * token as `Authorization: Token` (2.x, 3.x).
 *
 * Writes are batched by lines and bytes, retried with jittered exponential
 * backoff on network errors, 429 and 5xx (honouring `Retry-After`), and a
 * batch refused with 400 is bisected so that only the entries the server
 * cannot take are reported as rejected (writes are idempotent, so writing a
 * half again is harmless). 401 and 403 throw {@linkcode InfluxAuthError}, 404
 * {@linkcode InfluxNotFoundError}: the caller stops acking.
 *
 * @module
 */

import {
  LineProtocolBuffer,
  LineProtocolEncoder,
  storedTagValue,
  tsToNanoText,
} from "./line_protocol.ts";
import { type LogEntry, tsToNanos } from "../../ports/log_entry.ts";
import {
  type ContainerCount,
  CONTEXT_AT_MAX,
  contextCounts,
  type ContextOptions,
  type HistoryOptions,
  type LogContext,
  type LogStore,
  searchLimit,
  searchMatches,
  type SearchOptions,
  type WriteOptions,
  type WriteResult,
} from "../../ports/log_store.ts";
import { InfluxAuthError, InfluxError, InfluxNotFoundError } from "./influx_errors.ts";
import { redactUrl } from "../../runtime/config.ts";
import { base64ToBytes } from "../../runtime/base64.ts";

/** Options of {@linkcode InfluxLogStore}. */
export interface InfluxLogStoreOptions {
  /** Base URL, e.g. `http://influxdb:8086`. */
  url: string;
  /** Database (1.x), or the database name mapped to a bucket by DBRP (2.x), or the database (3.x). */
  database: string;
  /**
   * Retention policy written to and read from; empty uses the database's default.
   * @default ""
   */
  retentionPolicy?: string;
  /**
   * Duration of the retention policy created by {@linkcode InfluxLogStore.prepare}, in ms; 0 keeps forever.
   * @default 0
   */
  retentionMs?: number;
  /** 1.x user. */
  username?: string | null;
  /** 1.x password. */
  password?: string | null;
  /** 2.x or 3.x token. */
  token?: string | null;
  /**
   * Create the database and retention policy in {@linkcode InfluxLogStore.prepare} when missing (1.x).
   * @default true
   */
  createDatabase?: boolean;
  /**
   * Most points per write request.
   * @default 5000
   */
  batchLines?: number;
  /**
   * Most bytes per write request.
   * @default 8388608
   */
  batchBytes?: number;
  /**
   * Measurement of the log points.
   * @default "logs"
   */
  measurement?: string;
  /**
   * Longest string field; longer lines are split into parts.
   * @default 64000
   */
  maxFieldBytes?: number;
  /**
   * Longest line kept; beyond it lines are cut and marked truncated.
   * @default 1048576
   */
  maxLineBytes?: number;
  /**
   * First retry delay, in ms (doubles per attempt, jittered).
   * @default 100
   */
  retryBaseMs?: number;
  /**
   * Longest retry delay, in ms (a longer `Retry-After` is capped to it too).
   * @default 10000
   */
  retryMaxMs?: number;
  /**
   * Time limit of one request, in ms.
   * @default 30000
   */
  requestTimeoutMs?: number;
  /**
   * Rows per query page of {@linkcode InfluxLogStore.history}.
   * @default 5000
   */
  pageRows?: number;
  /**
   * Called before each retry, for logs and metrics.
   * @default ignore
   */
  onRetry?: (error: unknown, context: { attempt: number; delayMs: number }) => void;
}

/** An entry's line protocol in the request buffer: bytes [start, end), then a newline. */
interface _Encoded {
  index: number;
  start: number;
  end: number;
  points: number;
}

interface _Series {
  name?: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** A refusal of a write that retrying will not change (400, 413). */
class _Refused extends Error {
  override name = "InfluxWriteRefused";
}

/** InfluxDB behind the {@linkcode LogStore} port. */
export class InfluxLogStore implements LogStore {
  #url: string;
  #db: string;
  #rp: string;
  #o: InfluxLogStoreOptions;
  #encoder: LineProtocolEncoder;
  #auth: string | null;
  #writeUrl: string;
  #measurement: string;
  #batchLines: number;
  #batchBytes: number;
  #buffers: LineProtocolBuffer[] = [];

  /**
   * @param options where and how to reach InfluxDB
   * @throws {TypeError} when the URL is not http(s)
   * @throws {RangeError} when a size is out of range
   */
  constructor(options: InfluxLogStoreOptions) {
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new TypeError(
        `Cannot parse InfluxDB URL ${
          JSON.stringify(redactUrl(options.url))
        }: expected an http(s) URL`,
      );
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError(
        `Cannot use InfluxDB URL ${
          JSON.stringify(redactUrl(options.url))
        }: expected an http(s) URL`,
      );
    }
    this.#o = options;
    this.#url = u.origin + u.pathname.replace(/\/+$/, "");
    this.#db = options.database;
    this.#rp = options.retentionPolicy ?? "";
    this.#measurement = options.measurement ?? "logs";
    this.#encoder = new LineProtocolEncoder({
      measurement: this.#measurement,
      maxFieldBytes: options.maxFieldBytes,
      maxLineBytes: options.maxLineBytes,
    });
    this.#batchLines = options.batchLines ?? 5000;
    this.#batchBytes = options.batchBytes ?? 8 * 1024 * 1024;
    if (!Number.isInteger(this.#batchLines) || this.#batchLines < 1) {
      throw new RangeError(
        `Cannot use batchLines ${this.#batchLines}: expected an integer of at least 1`,
      );
    }
    if (!Number.isInteger(this.#batchBytes) || this.#batchBytes < 1024) {
      throw new RangeError(`Cannot use batchBytes ${this.#batchBytes}: expected at least 1024`);
    }
    const user = options.username ?? (u.username ? decodeURIComponent(u.username) : null);
    const pass = options.password ?? (u.password ? decodeURIComponent(u.password) : null);
    if (options.token) this.#auth = `Token ${options.token}`;
    else if (user) this.#auth = `Basic ${btoa(_latin1(`${user}:${pass ?? ""}`))}`;
    else this.#auth = null;
    const params = new URLSearchParams({ db: this.#db, precision: "ns" });
    if (this.#rp) params.set("rp", this.#rp);
    this.#writeUrl = `${this.#url}/write?${params}`;
  }

  /** The InfluxQL source of the log points: `"db"."rp"."measurement"`. */
  get #from(): string {
    return `${_ident(this.#db)}.${this.#rp ? _ident(this.#rp) : ""}.${_ident(this.#measurement)}`;
  }

  /**
   * Creates the database and the retention policy when missing and
   * `createDatabase` is on, and sets the policy's duration to `retentionMs`;
   * otherwise checks that InfluxDB answers. Retries while InfluxDB is
   * unreachable.
   *
   * @param options abort signal
   * @throws {InfluxAuthError} when the credentials are refused
   * @throws {InfluxError} when InfluxDB refuses a statement
   */
  async prepare(options: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = options.signal;
    if (this.#o.createDatabase === false) {
      await this.#retrying(signal, async () => {
        const res = await this.#fetch(`${this.#url}/ping`, { method: "GET" }, signal);
        await res.body?.cancel();
        if (res.status >= 500) throw new _Transient(`ping answered ${res.status}`, res);
      });
      return;
    }
    const duration = _influxDuration(this.#o.retentionMs ?? 0);
    const dbs = await this.#query("SHOW DATABASES", { signal, server: true });
    const exists = dbs.some((s) => s.values.some((v) => v[0] === this.#db));
    const rp = this.#rp;
    if (!exists) {
      const withRp = rp ? ` WITH DURATION ${duration} REPLICATION 1 NAME ${_ident(rp)}` : "";
      await this.#query(`CREATE DATABASE ${_ident(this.#db)}${withRp}`, {
        signal,
        post: true,
        server: true,
      });
      return;
    }
    if (!rp) return;
    const rps = await this.#query(`SHOW RETENTION POLICIES ON ${_ident(this.#db)}`, { signal });
    const row = rps[0]?.values.find((v) => v[0] === rp);
    if (!row) {
      await this.#query(
        `CREATE RETENTION POLICY ${_ident(rp)} ON ${
          _ident(this.#db)
        } DURATION ${duration} REPLICATION 1`,
        { signal, post: true, server: true },
      );
    } else if (_goDurationMs(String(row[1])) !== (this.#o.retentionMs ?? 0)) {
      await this.#query(
        `ALTER RETENTION POLICY ${_ident(rp)} ON ${_ident(this.#db)} DURATION ${duration}`,
        { signal, post: true, server: true },
      );
    }
  }

  /** {@inheritDoc LogStore.write} */
  async write(entries: readonly LogEntry[], options: WriteOptions = {}): Promise<WriteResult> {
    const rejected = new Map<number, Error>();
    // The entries are encoded straight into the bytes of the request, each
    // followed by a newline: a batch is one stretch of the buffer, and so is
    // either half of it when bisected. Writes in flight each take a buffer.
    const out = this.#buffers.pop() ?? new LineProtocolBuffer(1 << 20);
    out.length = 0;
    let batch: _Encoded[] = [];
    let points = 0;
    let written = 0;
    for (let i = 0; i < entries.length; i++) {
      let start = out.length;
      let n;
      try {
        n = this.#encoder.encodeTo(entries[i]!, out);
      } catch (e) {
        rejected.set(i, e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      let end = out.length;
      out.ascii("\n");
      if (
        batch.length > 0 &&
        (points + n > this.#batchLines || out.length - batch[0]!.start > this.#batchBytes)
      ) {
        written += await this.#writeBatch(out.bytes, batch, rejected, options.signal);
        // This entry starts the next batch, at the start of the buffer.
        out.bytes.copyWithin(0, start, out.length);
        out.length -= start;
        end -= start;
        start = 0;
        batch = [];
        points = 0;
      }
      batch.push({ index: i, start, end, points: n });
      points += n;
    }
    if (batch.length > 0) {
      written += await this.#writeBatch(out.bytes, batch, rejected, options.signal);
    }
    // Only a write that ended well returns its buffer: after a throw (an
    // abort), nothing may still be reading it.
    this.#buffers.push(out);
    return { written, rejected };
  }

  /** Writes a batch; on a refusal, bisects to find the entries refused. Returns entries written. */
  async #writeBatch(
    bytes: Uint8Array<ArrayBuffer>,
    batch: _Encoded[],
    rejected: Map<number, Error>,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    const body = bytes.subarray(batch[0]!.start, batch[batch.length - 1]!.end);
    const refusal = await this.#post(body, signal);
    if (refusal === null) return batch.length;
    if (batch.length === 1) {
      rejected.set(batch[0]!.index, refusal);
      return 0;
    }
    const mid = batch.length >> 1;
    return await this.#writeBatch(bytes, batch.slice(0, mid), rejected, signal) +
      await this.#writeBatch(bytes, batch.slice(mid), rejected, signal);
  }

  /** Posts line protocol; null when written, the refusal when 400 or 413. */
  async #post(
    body: Uint8Array<ArrayBuffer>,
    signal: AbortSignal | undefined,
  ): Promise<_Refused | null> {
    let recreated = false;
    for (;;) {
      try {
        return await this.#retrying(signal, async () => {
          const res = await this.#fetch(this.#writeUrl, { method: "POST", body }, signal);
          if (res.status === 204 || res.status === 200) {
            await res.body?.cancel();
            return null;
          }
          const text = await res.text().catch(() => "");
          if (res.status === 400 || res.status === 413) {
            return new _Refused(`InfluxDB refused the write (${res.status}): ${_errorText(text)}`);
          }
          throw this.#httpError(res, text, "write to");
        });
      } catch (e) {
        // A database dropped while we run: create it again once, if allowed.
        if (e instanceof InfluxNotFoundError && !recreated && this.#o.createDatabase !== false) {
          recreated = true;
          await this.prepare({ signal });
          continue;
        }
        throw e;
      }
    }
  }

  /** {@inheritDoc LogStore.history} */
  async *history(container: string, options: HistoryOptions = {}): AsyncIterable<LogEntry> {
    const limit = options.limit ?? 100_000;
    const pageRows = this.#o.pageRows ?? 5000;
    if (limit <= 0) return;
    // A key's points: those tagged with it, and the untagged ones of the
    // container of that name (older points, and containers keyed by name).
    const k = _quote(storedTagValue(container));
    const base =
      `SELECT * FROM ${this.#from} WHERE ("model" = ${k} OR ("model" = '' AND "container" = ${k}))`;
    const upper = options.to ? ` AND time < ${_nanos(options.to)}` : "";
    // Pages by time. Rows that share the page's last timestamp may run over
    // into the next page, and InfluxDB does not order rows of one timestamp
    // stably, so those are fetched whole with a query of their own.
    let lower = options.from ? ` AND time >= ${_nanos(options.from)}` : "";
    let emitted = 0;
    const rowsOf = async (q: string) => {
      const series = await this.#query(q, { signal: options.signal });
      const s = series[0];
      return s ? s.values.map((v) => _row(s.columns, v)) : [];
    };
    for (;;) {
      const rows = await rowsOf(`${base}${lower}${upper} ORDER BY time ASC LIMIT ${pageRows}`);
      const full = rows.length === pageRows;
      let ready = rows;
      let lastNs = "";
      if (full) {
        const lastTime = String(rows[rows.length - 1]!.time);
        lastNs = tsToNanoText(lastTime);
        ready = rows.filter((r) => r.time !== lastTime);
        ready.push(...await rowsOf(`${base} AND time = ${lastNs}`));
      }
      for (const entry of _assemble(ready)) {
        yield entry;
        if (++emitted >= limit) return;
      }
      if (!full) return;
      lower = ` AND time > ${lastNs}`;
    }
  }

  /** {@inheritDoc LogStore.context} */
  async context(key: string, ts: string, options: ContextOptions = {}): Promise<LogContext> {
    const { before, after } = contextCounts(options);
    const ns = tsToNanos(ts);
    const k = _quote(storedTagValue(key));
    const base =
      `SELECT * FROM ${this.#from} WHERE ("model" = ${k} OR ("model" = '' AND "container" = ${k}))`;
    const rowsOf = async (q: string) => {
      const series = await this.#query(q, { signal: options.signal });
      const s = series[0];
      return s ? s.values.map((v) => _row(s.columns, v)) : [];
    };
    // A line may be stored as several points (parts) and replicas may share a
    // timestamp: find the span with a LIMIT on points, then read the span's
    // timestamps whole so no entry comes back cut.
    const side = async (dir: "before" | "after", n: number): Promise<LogEntry[]> => {
      if (n <= 0) return [];
      const op = dir === "before" ? "<" : ">";
      const order = dir === "before" ? "DESC" : "ASC";
      const edge = await rowsOf(`${base} AND time ${op} ${ns} ORDER BY time ${order} LIMIT ${n}`);
      if (edge.length === 0) return [];
      const far = tsToNanoText(String(edge[edge.length - 1]!.time));
      const span = dir === "before"
        ? `time >= ${far} AND time < ${ns}`
        : `time > ${ns} AND time <= ${far}`;
      const entries = _assemble(await rowsOf(`${base} AND ${span} ORDER BY time ASC`));
      return dir === "before" ? entries.slice(-n) : entries.slice(0, n);
    };
    const [b, at, a] = await Promise.all([
      side("before", before),
      rowsOf(`${base} AND time = ${ns}`).then((rows) => _assemble(rows).slice(0, CONTEXT_AT_MAX)),
      side("after", after),
    ]);
    return { before: b, at, after: a };
  }

  /** {@inheritDoc LogStore.search} */
  async search(key: string, query: string, options: SearchOptions = {}): Promise<LogEntry[]> {
    const limit = searchLimit(query, options);
    const k = _quote(storedTagValue(key));
    const base =
      `SELECT * FROM ${this.#from} WHERE ("model" = ${k} OR ("model" = '' AND "container" = ${k}))`;
    const lower = options.from ? ` AND time >= ${_nanos(options.from)}` : "";
    const upper = ` AND time < ${_nanos(options.to ?? new Date())}`;
    const rowsOf = async (q: string) => {
      const series = await this.#query(q, { signal: options.signal });
      const s = series[0];
      return s ? s.values.map((v) => _row(s.columns, v)) : [];
    };
    // The regex matches the text literally: every regex metacharacter and
    // the literal's delimiter escaped; ASCII letters in any case.
    const hits = await rowsOf(
      `${base}${lower}${upper} AND "line" =~ /${
        _regexLiteral(query)
      }/ ORDER BY time DESC LIMIT ${limit}`,
    );
    if (hits.length === 0) return [];
    // A hit may be one part of a long line: read those timestamps whole
    // (InfluxQL has no OR of times: one query per timestamp).
    const multi = new Set(
      hits.filter((r) => r.part !== null && r.part !== undefined).map((r) => String(r.time)),
    );
    const rows = hits.filter((r) => !multi.has(String(r.time)));
    for (const t of multi) rows.push(...await rowsOf(`${base} AND time = ${tsToNanoText(t)}`));
    const ns = (r: Record<string, unknown>) => BigInt(tsToNanoText(String(r.time)));
    rows.sort((a, b) => (ns(a) < ns(b) ? -1 : ns(a) > ns(b) ? 1 : 0));
    return _assemble(rows).filter((e) => e.raw === undefined && searchMatches(e.line, query))
      .reverse().slice(0, limit);
  }

  /** {@inheritDoc LogStore.containers} */
  async containers(options: { since: Date; signal?: AbortSignal }): Promise<ContainerCount[]> {
    const q = `SELECT count("cid") FROM ${this.#from} WHERE time >= ${
      _nanos(options.since)
    } GROUP BY "model", "container"`;
    const series = await this.#query(q, { signal: options.signal });
    const byKey = new Map<string, ContainerCount>();
    for (const s of series) {
      const name = s.tags?.container;
      const count = Number(s.values[0]?.[1] ?? 0);
      if (!name || count <= 0) continue;
      const key = s.tags?.model || name;
      let c = byKey.get(key);
      if (!c) byKey.set(key, c = { container: key, count: 0, containers: [] });
      c.count += count;
      if (!c.containers!.includes(name)) c.containers!.push(name);
    }
    const out = [...byKey.values()];
    for (const c of out) c.containers!.sort();
    return out.sort((a, b) => a.container < b.container ? -1 : a.container > b.container ? 1 : 0);
  }

  /** {@inheritDoc LogStore.ping} */
  async ping(): Promise<boolean> {
    try {
      const res = await this.#fetch(`${this.#url}/ping`, { method: "GET" }, undefined, 2000);
      await res.body?.cancel();
      return res.status < 300;
    } catch {
      return false;
    }
  }

  /** Nothing to close: requests use the runtime's connection pool. */
  async [Symbol.asyncDispose](): Promise<void> {}

  async #query(
    q: string,
    options: { signal?: AbortSignal; post?: boolean; server?: boolean },
  ): Promise<_Series[]> {
    // Statements about the server (SHOW DATABASES, CREATE DATABASE) name no database.
    const params = new URLSearchParams(options.server ? { q } : { db: this.#db, q });
    if (this.#rp && !options.server) params.set("rp", this.#rp);
    const init: RequestInit = options.post
      ? {
        method: "POST",
        body: params,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }
      : { method: "GET" };
    const url = options.post ? `${this.#url}/query` : `${this.#url}/query?${params}`;
    return await this.#retrying(options.signal, async () => {
      const res = await this.#fetch(url, init, options.signal);
      const text = await res.text();
      if (res.status !== 200) throw this.#httpError(res, text, "query");
      const body = JSON.parse(text) as {
        results?: { error?: string; series?: _Series[] }[];
        error?: string;
      };
      const result = body.results?.[0];
      const error = body.error ?? result?.error;
      if (error) {
        if (/database not found/i.test(error)) {
          throw new InfluxNotFoundError(
            `InfluxDB at ${redactUrl(this.#url)} has no database ${
              JSON.stringify(this.#db)
            }: ${error}`,
            404,
          );
        }
        throw new InfluxError(`InfluxDB refused the query ${_short(q)}: ${error}`, res.status);
      }
      return (result?.series ?? []).map((x) => ({ ...x, values: x.values ?? [] }));
    });
  }

  #httpError(res: Response, text: string, what: string): Error {
    const where = `InfluxDB at ${redactUrl(this.#url)}`;
    const why = _errorText(text);
    if (res.status === 401 || res.status === 403) {
      return new InfluxAuthError(
        `${where} refused to ${what} database ${
          JSON.stringify(this.#db)
        } (${res.status}: ${why}): ` +
          "expected INFLUX_USERNAME and INFLUX_PASSWORD (1.x) or INFLUX_TOKEN (2.x, 3.x) " +
          "with write and read permission",
        res.status,
      );
    }
    if (res.status === 404) {
      return new InfluxNotFoundError(
        `${where} has no database ${JSON.stringify(this.#db)} or no v1 API (404: ${why}): ` +
          "expected the database to exist (1.x, or a DBRP mapping on 2.x) " +
          "or INFLUX_CREATE_DATABASE=true",
        res.status,
      );
    }
    if (res.status === 429 || res.status >= 500) {
      return new _Transient(`${where} answered ${res.status} to ${what}: ${why}`, res);
    }
    return new InfluxError(`${where} refused to ${what} (${res.status}): ${why}`, res.status);
  }

  async #fetch(
    url: string,
    init: RequestInit,
    signal: AbortSignal | undefined,
    timeoutMs = this.#o.requestTimeoutMs ?? 30_000,
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const headers = new Headers(init.headers);
    if (this.#auth) headers.set("authorization", this.#auth);
    return await fetch(url, {
      ...init,
      headers,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  }

  /** Runs `op`, retrying network errors, timeouts, 429 and 5xx until `signal` aborts. */
  async #retrying<T>(signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
    const base = this.#o.retryBaseMs ?? 100;
    const max = this.#o.retryMaxMs ?? 10_000;
    for (let attempt = 1;; attempt++) {
      signal?.throwIfAborted();
      try {
        return await op();
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (e instanceof InfluxError || e instanceof SyntaxError) throw e;
        const cap = Math.min(max, base * 2 ** Math.min(attempt - 1, 16));
        let delayMs = Math.round(cap / 2 + Math.random() * cap / 2);
        if (e instanceof _Transient && e.retryAfterMs !== null) {
          delayMs = Math.min(max, Math.max(e.retryAfterMs, 0));
        }
        this.#o.onRetry?.(e, { attempt, delayMs });
        await _sleep(delayMs, signal);
      }
    }
  }
}

/** A failure worth retrying: 429, 5xx. */
class _Transient extends Error {
  override name = "InfluxUnavailable";
  readonly retryAfterMs: number | null;
  constructor(message: string, res: Response) {
    super(message);
    this.retryAfterMs = _retryAfter(res.headers.get("retry-after"));
  }
}

function _retryAfter(value: string | null): number | null {
  if (value === null) return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : at - Date.now();
}

/** Groups rows (in time order) into entries, in time, stream, seq order. */
function _assemble(rows: Record<string, unknown>[]): LogEntry[] {
  const byTime = new Map<unknown, Map<string, Record<string, unknown>[]>>();
  for (const r of rows) {
    const slot = typeof r.slot === "string" ? r.slot : "";
    const seq = slot ? slot.split(".")[0]! : "0";
    // Replicas behind one key may write at the same nanosecond: their
    // points differ by the container tag.
    const key = `${r.stream}\u0000${seq.padStart(10, "0")}\u0000${r.container ?? ""}`;
    let groups = byTime.get(r.time);
    if (!groups) byTime.set(r.time, groups = new Map());
    let g = groups.get(key);
    if (!g) groups.set(key, g = []);
    g.push(r);
  }
  const ordered: Record<string, unknown>[][] = [];
  for (const groups of byTime.values()) {
    for (const key of [...groups.keys()].sort()) ordered.push(groups.get(key)!);
  }
  const out: LogEntry[] = [];
  for (const group of ordered) {
    const parts = group.sort((a, b) => Number(a.part ?? 0) - Number(b.part ?? 0));
    const first = parts[0]!;
    if (first.part !== null && first.part !== undefined && Number(first.part) !== 0) continue;
    const entry: LogEntry = {
      containerId: String(first.cid ?? ""),
      containerName: String(first.container ?? ""),
      image: String(first.image ?? ""),
      stream: first.stream === "stderr" ? "stderr" : "stdout",
      ts: String(first.time),
      seq: Number(first.seq ?? 0),
      line: "",
    };
    if (typeof first.model === "string" && first.model && first.model !== entry.containerName) {
      entry.key = first.model;
    }
    if (typeof first.service === "string" && first.service) entry.service = first.service;
    if (typeof first.task === "string" && first.task) entry.task = first.task;
    if (typeof first.node === "string" && first.node) entry.node = first.node;
    const expected = Number(first.parts ?? 1);
    let truncated = first.truncated === true || parts.length < expected;
    if (typeof first.raw === "string") {
      const chunks = parts.map((p) => base64ToBytes(String(p.raw ?? "")));
      const bytes = _concat(chunks);
      entry.raw = bytes;
      entry.line = new TextDecoder().decode(bytes);
    } else {
      entry.line = parts.map((p) => String(p.line ?? "")).join("");
    }
    if (parts.some((p, i) => Number(p.part ?? 0) !== i)) truncated = true;
    if (truncated) entry.truncated = true;
    out.push(entry);
  }
  return out;
}

function _row(columns: string[], values: unknown[]): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) r[columns[i]!] = values[i];
  return r;
}

function _nanos(d: Date): bigint {
  return BigInt(d.getTime()) * 1_000_000n;
}

/** A search text as the body of an InfluxQL regex literal: literal, ASCII case folded. */
function _regexLiteral(text: string): string {
  const escaped = text.replace(/[\\^$.|?*+()[\]{}\/-]/g, "\\$&");
  return `(?i)${escaped}`;
}

function _ident(name: string): string {
  return `"${name.replace(/["\\]/g, "\\$&")}"`;
}

function _quote(value: string): string {
  return `'${value.replace(/['\\]/g, "\\$&")}'`;
}

function _influxDuration(ms: number): string {
  if (ms <= 0) return "INF";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Milliseconds of a Go duration as InfluxDB prints it (`720h0m0s`, `0s`). */
function _goDurationMs(text: string): number {
  let ms = 0;
  const units: Record<string, number> = {
    h: 3.6e6,
    m: 6e4,
    s: 1e3,
    ms: 1,
    us: 1e-3,
    "µs": 1e-3,
    ns: 1e-6,
  };
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    ms += Number(m[1]) * (units[m[2]!] ?? 0);
  }
  return Math.round(ms);
}

function _errorText(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: string; message?: string };
    return _short(body.error ?? body.message ?? text);
  } catch {
    return _short(text);
  }
}

function _short(text: string): string {
  const t = text.trim();
  return t.length > 300 ? `${t.slice(0, 300)}...` : t;
}

function _latin1(text: string): string {
  return String.fromCharCode(...new TextEncoder().encode(text));
}

function _concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function _sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
