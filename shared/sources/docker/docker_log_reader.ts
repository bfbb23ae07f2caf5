/**
 * Reads a container's log body from the Docker Engine API over a plain
 * HTTP/1.1 connection to the endpoint a dockerode client uses.
 *
 * dockerode (through Node's http client) hands on one chunk per log frame,
 * since the engine flushes after every record: about 3 µs per line before
 * any work is done. This reader takes up to 256 KiB per socket read and
 * removes the chunked transfer encoding in place, handing on views of its
 * buffer; the caller decides when to read next (backpressure).
 *
 * @module
 */

import type Docker from "dockerode";

/** Where a Docker engine is reached (from a dockerode client's modem). */
export type DockerDial =
  | { transport: "unix"; path: string }
  | { transport: "tcp"; hostname: string; port: number; tls: boolean };

/** An error status of the Docker Engine API. */
export class DockerApiError extends Error {
  override name = "DockerApiError";
  /** The HTTP status. */
  readonly statusCode: number;
  /**
   * @param statusCode the HTTP status
   * @param message the engine's message
   */
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

/** Options of {@linkcode DockerLogReader.open}. */
export interface DockerLogReaderOptions {
  /**
   * Keep the response open for new lines.
   * @default true
   */
  follow?: boolean;
  /**
   * Docker's `since` (`<seconds>.<nanoseconds>`); all lines when absent.
   */
  since?: string;
  /**
   * Size of the read buffer.
   * @default 262144
   */
  bufferBytes?: number;
}

/**
 * Where a dockerode client connects.
 *
 * @param docker the client
 * @returns its endpoint
 * @throws {TypeError} when the client has neither a socket path nor a host
 */
export function dockerDial(docker: Docker): DockerDial {
  const modem = docker.modem as unknown as {
    socketPath?: string;
    host?: string;
    port?: number | string;
    protocol?: string;
  };
  if (modem.socketPath) return { transport: "unix", path: modem.socketPath };
  if (modem.host) {
    const tls = modem.protocol === "https";
    return {
      transport: "tcp",
      hostname: modem.host,
      port: Number(modem.port ?? (tls ? 2376 : 2375)),
      tls,
    };
  }
  throw new TypeError("Cannot reach the Docker engine: expected a socket path or a host");
}

const _CRLF2 = new Uint8Array([13, 10, 13, 10]);

/** One open log response. */
export class DockerLogReader {
  #conn: Deno.Conn;
  #buf: Uint8Array;
  #pending: Uint8Array | null;
  #chunked: boolean;
  #left: number;
  /** 0 size line, 1 data, 2 CRLF after data, 3 done. */
  #state: number = 0;
  /** The chunk size read so far, its hex digits, and whether they ended. */
  #size = 0;
  #sizeDigits = 0;
  #sizeEnded = false;
  #crlf = 0;
  #closed = false;

  private constructor(
    conn: Deno.Conn,
    buf: Uint8Array,
    rest: Uint8Array,
    chunked: boolean,
    length: number,
  ) {
    this.#conn = conn;
    this.#buf = buf;
    this.#pending = rest.length > 0 ? rest : null;
    this.#chunked = chunked;
    this.#left = length;
  }

  /**
   * Requests a container's logs (stdout, stderr, timestamps).
   *
   * @param dial the engine's endpoint
   * @param id the container id
   * @param options follow, since and buffer size
   * @returns the open response
   * @throws {DockerApiError} when the engine answers with an error status
   */
  static async open(
    dial: DockerDial,
    id: string,
    options: DockerLogReaderOptions = {},
  ): Promise<DockerLogReader> {
    const conn = dial.transport === "unix"
      ? await Deno.connect({ transport: "unix", path: dial.path })
      : dial.tls
      ? await Deno.connectTls({ hostname: dial.hostname, port: dial.port })
      : await Deno.connect({ hostname: dial.hostname, port: dial.port });
    try {
      const query = new URLSearchParams({
        stdout: "1",
        stderr: "1",
        timestamps: "1",
        follow: options.follow === false ? "0" : "1",
      });
      if (options.since !== undefined) query.set("since", options.since);
      const request = `GET /containers/${encodeURIComponent(id)}/logs?${query} HTTP/1.1\r\n` +
        `Host: docker\r\nUser-Agent: tailwise\r\nConnection: close\r\n\r\n`;
      await _writeAll(conn, new TextEncoder().encode(request));
      const buf = new Uint8Array(options.bufferBytes ?? 256 * 1024);
      let filled = 0;
      let headEnd = -1;
      while (headEnd < 0) {
        if (filled === buf.length) throw new Error("Docker's response headers are too large");
        const n = await conn.read(buf.subarray(filled));
        if (n === null) throw new Error("Docker closed the connection before answering");
        filled += n;
        headEnd = _indexOf(buf.subarray(0, filled), _CRLF2);
      }
      const head = new TextDecoder().decode(buf.subarray(0, headEnd));
      const [statusLine, ...headerLines] = head.split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? 0);
      const headers = new Map<string, string>();
      for (const h of headerLines) {
        const colon = h.indexOf(":");
        if (colon > 0) {
          headers.set(h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim());
        }
      }
      const chunked = /chunked/i.test(headers.get("transfer-encoding") ?? "");
      const length = headers.has("content-length") ? Number(headers.get("content-length")) : -1;
      const rest = buf.slice(headEnd + 4, filled);
      const reader = new DockerLogReader(conn, buf, rest, chunked, length);
      if (status !== 200) {
        const body = await reader.#readAll();
        let message = new TextDecoder().decode(body).trim();
        try {
          message = String(JSON.parse(message).message ?? message);
        } catch {
          // not JSON
        }
        throw new DockerApiError(status, `(HTTP code ${status}) ${message}`);
      }
      return reader;
    } catch (e) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      throw e;
    }
  }

  /**
   * Reads once from the connection and hands on the body bytes received.
   *
   * @param onBody receives pieces of the body (views, valid during the call)
   * @returns false when the body has ended (or the reader was closed)
   */
  async read(onBody: (bytes: Uint8Array) => void): Promise<boolean> {
    if (this.#pending) {
      const p = this.#pending;
      this.#pending = null;
      this.#feed(p, onBody);
      return this.#state !== 3;
    }
    if (this.#closed || this.#state === 3) return false;
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buf);
    } catch (e) {
      if (this.#closed) return false;
      throw e;
    }
    if (n === null) {
      this.close();
      if (this.#chunked || this.#left > 0) throw new Error("Docker's log response broke off");
      return false;
    }
    this.#feed(this.#buf.subarray(0, n), onBody);
    return this.#state !== 3;
  }

  /** Closes the connection; a pending {@linkcode DockerLogReader.read} returns false. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #readAll(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    try {
      while (await this.read((b) => parts.push(b.slice()))) {
        // collecting
      }
    } catch {
      // an error body cut short still says something
    }
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  #feed(bytes: Uint8Array, onBody: (bytes: Uint8Array) => void): void {
    if (!this.#chunked) {
      if (this.#left >= 0) {
        const take = Math.min(this.#left, bytes.length);
        this.#left -= take;
        if (take > 0) onBody(bytes.subarray(0, take));
        if (this.#left === 0) this.#state = 3;
      } else if (bytes.length > 0) {
        onBody(bytes);
      }
      return;
    }
    const n = bytes.length;
    let i = 0;
    while (i < n && this.#state !== 3) {
      if (this.#state === 1) {
        const take = Math.min(this.#left, n - i);
        onBody(bytes.subarray(i, i + take));
        i += take;
        this.#left -= take;
        if (this.#left === 0) {
          this.#state = 2;
          this.#crlf = 0;
        }
      } else if (this.#state === 2) {
        i++;
        if (++this.#crlf === 2) this.#state = 0;
      } else {
        // The size line: hex digits, then optional spaces, `;extensions` and
        // CR, up to LF. Docker sends each frame as its own chunk, so this runs
        // once per log line: parsed over bytes, without making a string.
        const lf = bytes.indexOf(10, i);
        const end = lf < 0 ? n : lf;
        for (let k = i; k < end && !this.#sizeEnded; k++) {
          const b = bytes[k]!;
          const d = b >= 48 && b <= 57
            ? b - 48
            : b >= 97 && b <= 102
            ? b - 87
            : b >= 65 && b <= 70
            ? b - 55
            : -1;
          if (d < 0) {
            this.#sizeEnded = true;
          } else {
            this.#size = this.#size * 16 + d;
            this.#sizeDigits++;
            // More than 12 significant digits (leading zeros are fine).
            if (this.#size >= 2 ** 48) {
              throw new Error("Cannot parse Docker's chunked log response: chunk size too long");
            }
          }
        }
        if (lf < 0) return;
        i = lf + 1;
        const size = this.#size;
        const digits = this.#sizeDigits;
        this.#size = 0;
        this.#sizeDigits = 0;
        this.#sizeEnded = false;
        if (digits === 0) throw new Error("Cannot parse Docker's chunked log response");
        if (size === 0) {
          this.#state = 3;
        } else {
          this.#left = size;
          this.#state = 1;
        }
      }
    }
  }
}

async function _writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

function _indexOf(hay: Uint8Array, needle: Uint8Array): number {
  let from = 0;
  for (;;) {
    const i = hay.indexOf(needle[0]!, from);
    if (i < 0 || i + needle.length > hay.length) return -1;
    let ok = true;
    for (let k = 1; k < needle.length; k++) {
      if (hay[i + k] !== needle[k]) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
    from = i + 1;
  }
}
