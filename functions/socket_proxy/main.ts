/**
 * The Docker socket proxy as a process: listens on TCP and forwards the
 * requests `isAllowed` lets through to the engine's unix socket.
 * Collect points `DOCKER_HOST` at it (`tcp://socket-proxy:2375`); only this
 * process mounts the socket.
 *
 * Settings are arguments, not environment, so it runs without `--allow-env`:
 *
 * ```sh
 * deno run --allow-net=0.0.0.0:2375,docker:80,unix:/var/run/docker.sock \
 *   --allow-read=/var/run/docker.sock --allow-write=/var/run/docker.sock \
 *   functions/socket_proxy/main.ts --listen 0.0.0.0:2375 --socket /var/run/docker.sock
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createSocketProxy } from "./socket_proxy.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    listen: { type: "string", default: "0.0.0.0:2375" },
    socket: { type: "string", default: "/var/run/docker.sock" },
  },
  strict: true,
});

const listen = /^(.+):([0-9]{1,5})$/.exec(values.listen);
if (!listen || Number(listen[2]) > 65535) {
  throw new TypeError(`Cannot parse --listen ${JSON.stringify(values.listen)}: expected host:port`);
}

const client = Deno.createHttpClient({ proxy: { transport: "unix", path: values.socket } });
const handler = createSocketProxy((request) => fetch(request, { client }), {
  onRefused: (method, target, reason) =>
    console.warn(JSON.stringify({ msg: "refused", method, target, reason })),
});

const server = Deno.serve({
  hostname: listen[1],
  port: Number(listen[2]),
  onListen: (addr) =>
    console.info(JSON.stringify({ msg: "socket proxy listening", addr, socket: values.socket })),
}, handler);

const stop = () => {
  // Followed log and event streams never end by themselves: give in-flight
  // requests a moment, then leave.
  setTimeout(() => Deno.exit(0), 2000);
  server.shutdown().then(() => Deno.exit(0));
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
