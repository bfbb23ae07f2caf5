/**
 * Real services for the tests: `redis-server`, `influxd` (1.x) and `dockerd`
 * started on loopback with everything under a private temp dir, and stopped
 * and removed afterwards. Each `start*` returns a handle that can stop and
 * restart its service (for outage tests) and is `AsyncDisposable`.
 *
 * @module
 */

import { createConnection } from "node:net";

/** A running service started by the harness. */
export interface Service extends AsyncDisposable {
  /** Where clients reach it (redis://..., http://..., unix://...). */
  readonly url: string;
  /** Its private directory. */
  readonly dir: string;
  /** Stops it (SIGTERM, then SIGKILL); state on disk is kept. */
  stop(): Promise<void>;
  /** Starts it again on the same address with the same state. */
  start(): Promise<void>;
  /** True while its process runs. */
  readonly running: boolean;
}

/** A Docker engine started by the harness. */
export interface DockerService extends Service {
  /** Path of the engine's API socket. */
  readonly socketPath: string;
  /** Runs the docker CLI against this engine; throws with stderr on failure. */
  docker(args: string[], options?: { stdin?: Uint8Array }): Promise<string>;
  /** The local test image (busybox-static), made with `docker import`. */
  readonly image: string;
}

/**
 * A free TCP port on 127.0.0.1.
 *
 * @returns the port
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Arguments for `docker swarm init` on loopback with ports of its own, so
 * that swarms of several engines on one machine do not collide on 2377 (the
 * data path port stays in the range Docker accepts, 1024–49151).
 *
 * @returns `--advertise-addr`, `--listen-addr` and `--data-path-port` arguments
 */
export function swarmInitPorts(): string[] {
  let dataPath = 14789;
  for (let i = 0; i < 1000; i++) {
    const port = freePort();
    if (port <= 49151) {
      dataPath = port;
      break;
    }
  }
  return [
    "--advertise-addr",
    "127.0.0.1",
    "--listen-addr",
    `127.0.0.1:${freePort()}`,
    "--data-path-port",
    String(dataPath),
  ];
}

/**
 * Waits until an HTTP server answers at `url` (any status: it listens).
 *
 * @param url an address it serves, e.g. `http://127.0.0.1:8080/health`
 * @param options deadline and what to name when it passes
 * @default options.timeoutMs 30000
 * @throws {Error} naming `what` when the deadline passes
 */
export async function waitForHttp(
  url: string,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<void> {
  await waitFor(async () => {
    const r = await fetch(url).catch(() => null);
    await r?.body?.cancel();
    return r !== null;
  }, { timeoutMs: options.timeoutMs ?? 30_000, what: options.what ?? `${url} to answer` });
}

/**
 * Polls `check` until it returns true or the deadline passes.
 *
 * @param check the condition
 * @param options deadline and poll interval
 * @throws {Error} naming `what` when the deadline passes
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
  throw new Error(
    `Timed out after ${options.timeoutMs ?? 10_000} ms waiting for ${options.what ?? "condition"}${
      last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : ""
    }`,
  );
}

function _tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

class _Process {
  #cmd: string;
  #args: string[];
  #logFile: string;
  #child: Deno.ChildProcess | null = null;
  #done: Promise<unknown> | null = null;

  constructor(cmd: string, args: string[], logFile: string) {
    this.#cmd = cmd;
    this.#args = args;
    this.#logFile = logFile;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  async spawn(): Promise<void> {
    const log = await Deno.open(this.#logFile, { append: true, create: true, write: true });
    const child = new Deno.Command(this.#cmd, {
      args: this.#args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    const pipe = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s) await log.write(chunk);
    };
    this.#done = Promise.allSettled([child.status, pipe(child.stdout), pipe(child.stderr)])
      .finally(() => log.close());
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 15_000);
    await this.#done;
    clearTimeout(timer);
    this.#child = null;
  }

  async tail(): Promise<string> {
    try {
      const text = await Deno.readTextFile(this.#logFile);
      return text.slice(-2000);
    } catch {
      return "";
    }
  }
}

abstract class _BaseService implements Service {
  readonly dir: string;
  protected proc: _Process;

  constructor(dir: string, cmd: string, args: string[]) {
    this.dir = dir;
    this.proc = new _Process(cmd, args, `${dir}/service.log`);
  }

  abstract get url(): string;
  protected abstract ready(): Promise<boolean>;

  get running(): boolean {
    return this.proc.running;
  }

  async start(): Promise<void> {
    await this.proc.spawn();
    try {
      await waitFor(() => this.ready(), { timeoutMs: 60_000, what: `${this.constructor.name}` });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await this.proc.tail()}`);
    }
  }

  async stop(): Promise<void> {
    await this.proc.kill();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

class _Redis extends _BaseService {
  readonly port: number;
  constructor(dir: string, port: number, extraConfig: string[]) {
    super(dir, "redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "no",
      ...extraConfig,
    ]);
    this.port = port;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  protected ready(): Promise<boolean> {
    return _tcpOpen(this.port);
  }
}

/**
 * Starts a private `redis-server` on a free loopback port (AOF on, so a
 * restart keeps the data).
 *
 * @param options extra `--flag value` arguments for redis-server
 * @returns the running service
 */
export async function startRedis(options: { args?: string[] } = {}): Promise<Service> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-redis-" });
  const service = new _Redis(dir, freePort(), options.args ?? []);
  await service.start();
  return service;
}

/** A Redis Cluster started by the harness. */
export interface RedisClusterService extends AsyncDisposable {
  /** A seed node's URL (`redis://127.0.0.1:P1`); clients find the others. */
  readonly url: string;
  /** The master nodes, each a {@linkcode Service}. */
  readonly nodes: readonly Service[];
}

/** A port P on loopback such that P and its cluster bus port P + 10000 are free. */
function _clusterPort(): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const p = freePort();
    if (p + 10_000 > 65_535) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port: p + 10_000 }).close();
      return p;
    } catch {
      // the bus port is taken: try another
    }
  }
  throw new Error("Cannot find a free port P with P + 10000 free for a Redis Cluster node");
}

/**
 * Starts a Redis Cluster of `masters` nodes (default 3, no replicas) on
 * loopback: each `redis-server --cluster-enabled yes` in a private dir with
 * its own `--cluster-config-file`, joined by `redis-cli --cluster create
 * ... --cluster-replicas 0 --cluster-yes`; returns once every node reports
 * `cluster_state:ok`. Start it in the test that needs it.
 *
 * @param options how many masters
 * @returns the running cluster
 */
export async function startRedisCluster(
  options: { masters?: number } = {},
): Promise<RedisClusterService> {
  const masters = options.masters ?? 3;
  const nodes: _Redis[] = [];
  const stopAll = async () => {
    await Promise.allSettled(nodes.map((n) => n[Symbol.asyncDispose]()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = await Deno.makeTempDir({ prefix: `tailwise-redis-cluster-${i}-` });
      const node = new _Redis(dir, _clusterPort(), [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `${dir}/nodes.conf`,
        "--cluster-node-timeout",
        "5000",
      ]);
      nodes.push(node);
      await node.start();
    }
    const create = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!create.success) {
      throw new Error(
        `redis-cli --cluster create failed: ${new TextDecoder().decode(create.stderr)}${
          new TextDecoder().decode(create.stdout)
        }`,
      );
    }
    for (const n of nodes) {
      await waitFor(async () => {
        const out = await new Deno.Command("redis-cli", {
          args: ["-p", String(n.port), "cluster", "info"],
          stdout: "piped",
          stderr: "null",
        }).output();
        return new TextDecoder().decode(out.stdout).includes("cluster_state:ok");
      }, { timeoutMs: 30_000, intervalMs: 100, what: `cluster_state:ok on port ${n.port}` });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    url: nodes[0]!.url,
    nodes,
    [Symbol.asyncDispose]: stopAll,
  };
}

class _Influx extends _BaseService {
  readonly port: number;
  constructor(dir: string, port: number, configPath: string) {
    super(dir, "influxd", ["run", "-config", configPath]);
    this.port = port;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  protected async ready(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/ping`);
      await res.body?.cancel();
      return res.status === 204;
    } catch {
      return false;
    }
  }
}

/**
 * Starts a private `influxd` (Debian's 1.6.7) on free loopback ports, data,
 * WAL and meta under a temp dir, no reporting, no other listeners.
 *
 * @param options `auth: true` turns on HTTP authentication (no users yet)
 * @returns the running service
 */
export async function startInflux(options: { auth?: boolean } = {}): Promise<Service> {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-influx-" });
  const port = freePort();
  const bindPort = freePort();
  const config = `reporting-disabled = true
bind-address = "127.0.0.1:${bindPort}"
[meta]
  dir = "${dir}/meta"
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[coordinator]
  write-timeout = "30s"
[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  auth-enabled = ${options.auth ? "true" : "false"}
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
`;
  await Deno.writeTextFile(`${dir}/influxdb.conf`, config);
  const service = new _Influx(dir, port, `${dir}/influxdb.conf`);
  await service.start();
  return service;
}

class _Docker extends _BaseService implements DockerService {
  readonly socketPath: string;
  image = "";
  constructor(dir: string, network = false) {
    const socketPath = `${dir}/docker.sock`;
    // Even with networking, no default bridge: an engine started with
    // --bridge=none deletes docker0, so engines sharing a machine would pull
    // it from under each other. A swarm needs only its own docker_gwbridge.
    const isolation = network ? ["--bridge=none"] : [
      "--bridge=none",
      "--iptables=false",
      "--ip6tables=false",
      "--ip-masq=false",
      "--userland-proxy=false",
    ];
    super(dir, "dockerd", [
      "--storage-driver=vfs",
      `--data-root=${dir}/data`,
      `--exec-root=${dir}/exec`,
      `--pidfile=${dir}/docker.pid`,
      `--host=unix://${socketPath}`,
      `--containerd-namespace=tw${dir.slice(-6).replace(/[^a-z0-9]/gi, "")}`,
      `--containerd-plugins-namespace=twp${dir.slice(-6).replace(/[^a-z0-9]/gi, "")}`,
      ...isolation,
      "--log-level=warn",
    ]);
    this.socketPath = socketPath;
  }
  get url(): string {
    return `unix://${this.socketPath}`;
  }
  protected async ready(): Promise<boolean> {
    try {
      await this.docker(["version", "--format", "{{.Server.Version}}"]);
      return true;
    } catch {
      return false;
    }
  }
  docker(args: string[], options: { stdin?: Uint8Array } = {}): Promise<string> {
    return dockerCli(this.url, args, options);
  }
}

/** Options of {@linkcode startDocker}. */
export interface StartDockerOptions {
  /**
   * Give the engine iptables rules and IP masquerading, which a swarm
   * (overlay networks, docker_gwbridge) needs. There is still no default
   * bridge: run containers with `--network none` or on the swarm's networks.
   * @default false
   */
  network?: boolean;
}

/**
 * Starts a private `dockerd` (vfs storage; data-root, exec-root, pidfile and
 * socket under a temp dir; no bridge, no iptables unless `network`) and
 * imports the test image `tailwise-test/busybox:latest` from Debian's static
 * busybox.
 *
 * @param options networking for a swarm
 * @returns the running engine
 */
export async function startDocker(options: StartDockerOptions = {}): Promise<DockerService> {
  // Unix socket paths are limited to 108 bytes: keep the dir short.
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "twd-" });
  const service = new _Docker(dir, options.network ?? false);
  await service.start();
  service.image = await importBusyboxImage(service);
  return service;
}

/**
 * Makes a minimal image from `/bin/busybox` (Debian's busybox-static) with
 * `docker import`: nothing is pulled.
 *
 * @param engine the engine to import into
 * @param tag the image name
 * @default tag "tailwise-test/busybox:latest"
 * @returns the image name
 */
export async function importBusyboxImage(
  engine: DockerService,
  tag = "tailwise-test/busybox:latest",
): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tailwise-rootfs-" });
  try {
    await Deno.mkdir(`${root}/bin`, { recursive: true });
    await Deno.mkdir(`${root}/tmp`);
    await Deno.mkdir(`${root}/etc`);
    await Deno.copyFile("/bin/busybox", `${root}/bin/busybox`);
    await Deno.chmod(`${root}/bin/busybox`, 0o755);
    const applets = ["sh", "echo", "seq", "printf", "sleep", "cat", "head", "yes", "tr", "dd"];
    for (const a of applets) await Deno.symlink("busybox", `${root}/bin/${a}`);
    await Deno.writeTextFile(`${root}/etc/passwd`, "root:x:0:0:root:/:/bin/sh\n");
    const tar = await new Deno.Command("tar", { args: ["-C", root, "-c", "."], stdout: "piped" })
      .output();
    if (!tar.success) throw new Error("tar of the busybox rootfs failed");
    await engine.docker(["import", "-c", "ENV PATH=/bin", "-", tag], { stdin: tar.stdout });
    return tag;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/**
 * Runs the docker CLI against an engine.
 *
 * @param host the engine, `unix:///path`
 * @param args CLI arguments
 * @param options bytes for its stdin
 * @returns its stdout, trimmed
 * @throws {Error} with its stderr when it fails
 */
export async function dockerCli(
  host: string,
  args: string[],
  options: { stdin?: Uint8Array } = {},
): Promise<string> {
  const child = new Deno.Command("docker", {
    args: ["--host", host, ...args],
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin) {
    const w = child.stdin.getWriter();
    await w.write(options.stdin);
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `docker ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** The services of the whole suite, as `tests/harness/run.ts` exports them. */
export interface SuiteEnv {
  /** Suite-wide Redis. */
  redisUrl: string;
  /** Suite-wide InfluxDB. */
  influxUrl: string;
  /** Suite-wide Docker engine socket. */
  dockerSocket: string;
  /** The test image in that engine. */
  dockerImage: string;
}

/**
 * The suite-wide services started by `deno task test`.
 *
 * @returns their addresses
 * @throws {Error} when the tests were not started through the harness
 */
export function suiteEnv(): SuiteEnv {
  const redisUrl = Deno.env.get("TAILWISE_TEST_REDIS_URL");
  const influxUrl = Deno.env.get("TAILWISE_TEST_INFLUX_URL");
  const dockerSocket = Deno.env.get("TAILWISE_TEST_DOCKER_SOCKET");
  const dockerImage = Deno.env.get("TAILWISE_TEST_DOCKER_IMAGE");
  if (!redisUrl || !influxUrl || !dockerSocket || !dockerImage) {
    throw new Error(
      "The suite's services are not running: run the tests with `deno task test` " +
        "(tests/harness/run.ts starts Redis, InfluxDB and Docker)",
    );
  }
  return { redisUrl, influxUrl, dockerSocket, dockerImage };
}
