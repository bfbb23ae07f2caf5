import assert from "node:assert/strict";
import {
  DockerFrameDemuxer,
  type FrameStream,
} from "../../../../shared/sources/docker/docker_frames.ts";

function frame(stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Demuxes `bytes` pushed in the given pieces; returns whole frames per stream. */
function demux(bytes: Uint8Array, cuts: number[]): [FrameStream, string][] {
  const frames: [FrameStream, string][] = [];
  let open: Uint8Array[] = [];
  const d = new DockerFrameDemuxer((stream, piece, end) => {
    open.push(piece.slice());
    if (end) {
      frames.push([stream, new TextDecoder().decode(concat(open))]);
      open = [];
    }
  });
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    d.push(bytes.subarray(at, cut));
    at = cut;
  }
  assert.ok(d.atBoundary);
  return frames;
}

const enc = new TextEncoder();
const sample = concat([
  frame(1, enc.encode("hello\n")),
  frame(2, enc.encode("h\u00e9llo \u{1F600} stderr\n")),
  frame(1, new Uint8Array(0)),
  frame(1, enc.encode("x".repeat(300))),
  frame(3, enc.encode("engine error")),
]);
const expected: [FrameStream, string][] = [
  [1, "hello\n"],
  [2, "h\u00e9llo \u{1F600} stderr\n"],
  [1, ""],
  [1, "x".repeat(300)],
  [3, "engine error"],
];

Deno.test("DockerFrameDemuxer splits frames pushed in one chunk", () => {
  assert.deepEqual(demux(sample, []), expected);
});

Deno.test("DockerFrameDemuxer handles a cut at every position, headers included", () => {
  for (let cut = 1; cut < sample.length; cut++) {
    assert.deepEqual(demux(sample, [cut]), expected, `cut at ${cut}`);
  }
});

Deno.test("DockerFrameDemuxer handles one byte at a time", () => {
  const cuts = Array.from({ length: sample.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(demux(sample, cuts), expected);
});

Deno.test("DockerFrameDemuxer reads payload sizes above 16 MiB", () => {
  const header = new Uint8Array([1, 0, 0, 0, 0x81, 0x02, 0x03, 0x04]);
  let seen = 0;
  const d = new DockerFrameDemuxer((_s, piece) => {
    seen += piece.length;
  });
  d.push(header);
  d.push(new Uint8Array(1000));
  assert.equal(seen, 1000);
  assert.equal(d.atBoundary, false);
});

Deno.test("DockerFrameDemuxer throws on an unknown stream type", () => {
  const d = new DockerFrameDemuxer(() => {});
  assert.throws(
    () => d.push(new Uint8Array([7, 0, 0, 0, 0, 0, 0, 1, 65])),
    (e: unknown) =>
      e instanceof RangeError && /frame type 7; expected 0, 1, 2 or 3/.test(e.message),
  );
});
