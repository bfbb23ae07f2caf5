/**
 * The Docker socket proxy as a process: listens on TCP and forwards the
 * requests `isAllowed` lets through to the engine's unix socket.
 * It listens on TCP (`--listen 0.0.0.0:2375`, collect sets
 * `DOCKER_HOST=tcp://socket-proxy:2375`) or on a unix socket
 * (`--listen unix:/run/tailwise-proxy/docker.sock`, in a node-local volume
 * that only collect shares, as deploy/stack.yml does, so a collector always
 * reaches its own node's engine); only this process mounts the engine's
 * socket.
 *
 * Settings are arguments, not environment, so it runs without `--allow-env`:
 *
 * ```sh
 * deno run --allow-net=0.0.0.0:2375,127.0.0.1:80,unix:/var/run/docker.sock \
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

const client = Deno.createHttpClient({ proxy: { transport: "unix", path: values.socket } });
const handler = createSocketProxy((request) => fetch(request, { client }), {
  onRefused: (method, target, reason) =>
    console.warn(JSON.stringify({ msg: "refused", method, target, reason })),
});
const onListen = (addr: Deno.Addr) =>
  console.info(JSON.stringify({ msg: "socket proxy listening", addr, socket: values.socket }));

let server: Deno.HttpServer;
if (values.listen.startsWith("unix:")) {
  // A node-local socket in a volume shared with collect only: remove a stale
  // file from the last run, and let collect's non-root user connect.
  const path = values.listen.slice("unix:".length);
  await Deno.remove(path).catch(() => {});
  server = Deno.serve({ transport: "unix", path, onListen }, handler);
  await Deno.chmod(path, 0o666);
} else {
  const tcp = /^(.+):([0-9]{1,5})$/.exec(values.listen);
  if (!tcp || Number(tcp[2]) > 65535) {
    throw new TypeError(
      `Cannot parse --listen ${JSON.stringify(values.listen)}: expected host:port or unix:/path`,
    );
  }
  server = Deno.serve({ hostname: tcp[1], port: Number(tcp[2]), onListen }, handler);
}

const stop = () => {
  // Followed log and event streams never end by themselves: give in-flight
  // requests a moment, then leave.
  setTimeout(() => Deno.exit(0), 2000);
  server.shutdown().then(() => Deno.exit(0));
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
