import assert from "node:assert/strict";
import {
  DockerApiError,
  DockerLogReader,
} from "../../../../shared/sources/docker/docker_log_reader.ts";

/**
 * Serves one HTTP response on loopback, written in pieces of `step` bytes
 * (so chunk-size lines and data are cut anywhere), and reads it back.
 */
async function _roundTrip(response: Uint8Array, step: number): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const served = (async () => {
    const conn = await listener.accept();
    const head = new Uint8Array(4096);
    await conn.read(head);
    for (let i = 0; i < response.length; i += step) {
      await conn.write(response.subarray(i, i + step));
    }
    conn.close();
  })();
  try {
    const reader = await DockerLogReader.open(
      {
        transport: "tcp",
        hostname: "127.0.0.1",
        port,
        tls: false,
      },
      "abc",
      { bufferBytes: 256 },
    );
    const parts: number[] = [];
    while (await reader.read((b) => parts.push(...b))) {
      // reading
    }
    reader.close();
    return new Uint8Array(parts);
  } finally {
    await served;
    listener.close();
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("DockerLogReader de-chunks a body cut anywhere, with upper/lower hex and extensions", async () => {
  const body = "hello\nworld of logs, a longer chunk than sixteen bytes\n";
  const response = enc.encode(
    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n" +
      "Transfer-Encoding: chunked\r\n\r\n" +
      "6\r\nhello\n\r\n" +
      `00000000000000${(body.length - 6).toString(16).toUpperCase()};ext=1\r\n${
        body.slice(6)
      }\r\n` +
      "0\r\n\r\n",
  );
  for (const step of [1, 2, 3, 7, 4096]) {
    assert.equal(dec.decode(await _roundTrip(response, step)), body, `pieces of ${step} bytes`);
  }
});

Deno.test("DockerLogReader names a broken chunk size", async () => {
  const response = enc.encode(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
  );
  await assert.rejects(_roundTrip(response, 5), /Cannot parse Docker's chunked log response/);
});

Deno.test("DockerLogReader reports the engine's error message", async () => {
  const msg = JSON.stringify({ message: "No such container: abc" });
  const response = enc.encode(
    `HTTP/1.1 404 Not Found\r\nContent-Length: ${msg.length}\r\n\r\n${msg}`,
  );
  await assert.rejects(
    _roundTrip(response, 3),
    (e) =>
      e instanceof DockerApiError && e.statusCode === 404 && /No such container/.test(e.message),
  );
});
