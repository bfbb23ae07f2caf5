/**
 * The stdout/stderr frame demultiplexer of the Docker Engine API: a container
 * without a TTY sends its logs as frames of an 8-byte header (stream type,
 * three zero bytes, big-endian payload size) and the payload. Chunks of the
 * HTTP body cut frames anywhere, headers included; this demuxer works over
 * bytes and hands on payload pieces as they arrive, without copying them.
 *
 * @module
 */

/** Stream type of a frame: 0 stdin, 1 stdout, 2 stderr, 3 an error of the engine. */
export type FrameStream = 0 | 1 | 2 | 3;

/**
 * Receives the payload of frames, piece by piece.
 *
 * @param stream the frame's stream type
 * @param bytes the next piece of its payload (a view into the pushed chunk, valid during the call)
 * @param frameEnd true when this piece ends the frame
 */
export type FrameHandler = (stream: FrameStream, bytes: Uint8Array, frameEnd: boolean) => void;

/** Splits Docker's multiplexed log stream into frame payloads. */
export class DockerFrameDemuxer {
  #onData: FrameHandler;
  #header = new Uint8Array(8);
  #headerFill = 0;
  #stream: FrameStream = 1;
  #left = 0;

  /**
   * @param onData receives every payload piece, in order
   */
  constructor(onData: FrameHandler) {
    this.#onData = onData;
  }

  /**
   * True when the bytes pushed so far end at a frame boundary (no header or
   * payload is half received).
   *
   * @returns whether no frame is open
   */
  get atBoundary(): boolean {
    return this.#headerFill === 0 && this.#left === 0;
  }

  /**
   * Feeds the next chunk of the stream.
   *
   * @param chunk bytes as received
   * @throws {RangeError} when a header names an unknown stream type
   */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#left > 0) {
        const take = Math.min(this.#left, n - i);
        this.#left -= take;
        this.#onData(this.#stream, chunk.subarray(i, i + take), this.#left === 0);
        i += take;
        continue;
      }
      let h: Uint8Array;
      let at: number;
      if (this.#headerFill === 0 && n - i >= 8) {
        h = chunk;
        at = i;
        i += 8;
      } else {
        const take = Math.min(8 - this.#headerFill, n - i);
        this.#header.set(chunk.subarray(i, i + take), this.#headerFill);
        this.#headerFill += take;
        i += take;
        if (this.#headerFill < 8) return;
        this.#headerFill = 0;
        h = this.#header;
        at = 0;
      }
      const type = h[at]!;
      if (type > 3) {
        throw new RangeError(
          `Cannot demultiplex Docker log stream: frame type ${type}; expected 0, 1, 2 or 3`,
        );
      }
      this.#stream = type as FrameStream;
      this.#left = ((h[at + 4]! << 24) >>> 0) + (h[at + 5]! << 16) + (h[at + 6]! << 8) +
        h[at + 7]!;
      if (this.#left === 0) this.#onData(this.#stream, chunk.subarray(i, i), true);
    }
  }
}
