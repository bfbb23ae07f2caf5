/**
 * The whole stack on a real single-node swarm: a private engine with
 * networking, base images made from local files (nothing is pulled), the
 * tailwise image built by deploy/build.sh, secrets by deploy/secrets.sh,
 * `docker stack deploy -c deploy/stack.yml`, then an anomaly from a noisy
 * container through collect, the log stream and score into the anomalies
 * stream, and a score replica killed while it holds entries without any line
 * going unscored. `docker stack rm`, leaving the swarm and stopping the
 * engine clean up.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type DockerService,
  freePort,
  startDocker,
  swarmInitPorts,
  waitFor,
} from "../harness/services.ts";
import { gwbridgePresent, tearDownSwarm } from "../harness/swarm.ts";
import { importDenoImage, importInfluxImage, importRedisImage } from "./local_images.ts";

const STACK = "tws";
const IMAGE = "tailwise-smoke:latest";
const REPO = new URL("../../", import.meta.url).pathname;

async function _script(engine: DockerService, args: string[]): Promise<string> {
  const out = await new Deno.Command("bash", {
    args,
    cwd: REPO,
    env: { DOCKER_HOST: engine.url, DOCKER_BUILDKIT: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${args.join(" ")} failed:\n${text.slice(-3000)}`);
  return text;
}

/** The containers of a service's running tasks. */
async function _containers(engine: DockerService, service: string): Promise<string[]> {
  const out = await engine.docker([
    "ps",
    "-q",
    "--no-trunc",
    "--filter",
    `label=com.docker.swarm.service.name=${STACK}_${service}`,
  ]);
  return out.split("\n").filter(Boolean);
}

/** redis-cli as the operator's admin user, inside the Redis task. */
async function _redis(engine: DockerService, args: string[]): Promise<string> {
  const [id] = await _containers(engine, "redis");
  if (!id) throw new Error("no running Redis task");
  return engine.docker([
    "exec",
    id,
    "sh",
    "-c",
    'REDISCLI_AUTH="$(cat /run/secrets/redis_admin_password)" exec redis-cli --no-auth-warning --user admin "$@"',
    "redis-cli",
    ...args,
  ]);
}

/** XINFO GROUPS as records (redis-cli prints one value a line). */
async function _groups(engine: DockerService): Promise<Record<string, string>[]> {
  const lines = (await _redis(engine, ["XINFO", "GROUPS", "tailwise:logs"])).split("\n");
  const groups: Record<string, string>[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (lines[i] === "name") groups.push({});
    const g = groups.at(-1);
    if (g) g[lines[i]!] = lines[i + 1]!;
  }
  return groups;
}

/** Replicas as `docker service ls` reports them, e.g. `{ tws_score: "2/2" }`. */
async function _replicas(engine: DockerService): Promise<Record<string, string>> {
  const out = await engine.docker(["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]);
  return Object.fromEntries(out.split("\n").filter(Boolean).map((l) => l.split(" ", 2)));
}

async function _engineFetch(socket: string, method: string, path: string) {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const res = await fetch(`http://127.0.0.1${path}`, {
      method,
      client,
      body: method === "POST" ? "{}" : undefined,
      headers: { "content-type": "application/json" },
    });
    return { status: res.status, text: await res.text() };
  } finally {
    client.close();
  }
}

Deno.test("deploy/stack.yml runs tailwise on a single-node swarm, least privilege, no line unscored", async (t) => {
  const started = Date.now();
  const gwbridgeBefore = await gwbridgePresent();
  const engine = await startDocker({ network: true });
  const log = (msg: string) =>
    console.error(`[smoke ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`);
  let swarm = false;
  let deployed = false;
  try {
    await t.step("a single-node swarm with local base images and the tailwise image", async () => {
      // Own ports: another engine on this machine may run a swarm on 2377.
      await engine.docker(["swarm", "init", ...swarmInitPorts()]);
      swarm = true;
      const [deno] = await Promise.all([
        importDenoImage(engine),
        importRedisImage(engine),
        importInfluxImage(engine),
      ]);
      log("base images imported; building");
      await _script(engine, ["deploy/build.sh", "-t", IMAGE, "--base", deno]);
      const user = await engine.docker(["image", "inspect", "--format", "{{.Config.User}}", IMAGE]);
      assert.equal(user, "1993:1993");
      await _script(engine, ["deploy/secrets.sh", "create"]);
      log("built; secrets created");
    });

    const apiPort = freePort();
    await t.step("docker stack deploy brings every service up healthy", async () => {
      const help = await engine.docker(["stack", "deploy", "--help"]);
      const detach = help.includes("--detach") ? ["--detach=true"] : [];
      const env = {
        DOCKER_HOST: engine.url,
        TAILWISE_IMAGE: IMAGE,
        REDIS_IMAGE: "tailwise-test/redis:7.0",
        INFLUX_IMAGE: "tailwise-test/influxdb:1.8",
        DOCKER_SOCKET: engine.socketPath,
        HEALTH_INTERVAL: "2s",
        CONSUMER_CLAIM_IDLE_MS: "3s",
        // Long blocking reads: a frozen replica keeps its read open long
        // enough to be handed entries (see the kill step).
        CONSUMER_BLOCK_MS: "10s",
        API_PORT: String(apiPort),
      };
      const out = await new Deno.Command("docker", {
        args: ["stack", "deploy", ...detach, "-c", "deploy/stack.yml", STACK],
        cwd: REPO,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      deployed = true;
      const want: Record<string, string> = {
        [`${STACK}_socket-proxy`]: "1/1",
        [`${STACK}_collect`]: "1/1",
        [`${STACK}_ingest`]: "2/2",
        [`${STACK}_score`]: "2/2",
        [`${STACK}_train`]: "1/1",
        [`${STACK}_api`]: "1/1",
        [`${STACK}_redis`]: "1/1",
        [`${STACK}_influxdb`]: "1/1",
      };
      let last: Record<string, string> = {};
      await waitFor(async () => {
        last = await _replicas(engine);
        return Object.entries(want).every(([name, n]) => last[name] === n);
      }, { timeoutMs: 150_000, intervalMs: 1000, what: "every service at its replicas" })
        .catch((e) => {
          throw new Error(`${e.message}: ${JSON.stringify(last)}`);
        });
      log(`services up: ${JSON.stringify(last)}`);
      const init = await engine.docker([
        "service",
        "ps",
        "--format",
        "{{.CurrentState}}",
        `${STACK}_influx-init`,
      ]);
      assert.match(init, /Complete|Running/);
      const health = await fetch(`http://127.0.0.1:${apiPort}/health`);
      assert.equal(health.status, 200, await health.clone().text());
      const checks = (await health.json()).checks as Record<string, { ok: boolean }>;
      assert.ok(Object.values(checks).every((c) => c.ok), JSON.stringify(checks));
    });

    await t.step("tasks run read-only, not as root, with secrets only in files", async () => {
      const [score] = await _containers(engine, "score");
      const spec = await engine.docker([
        "inspect",
        "--format",
        "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
        score!,
      ]);
      assert.equal(spec, "1993:1993 true");
      const [proxy] = await _containers(engine, "socket-proxy");
      const proxySpec = await engine.docker([
        "inspect",
        "--format",
        "{{json .HostConfig.CapDrop}} {{.HostConfig.ReadonlyRootfs}}",
        proxy!,
      ]);
      assert.equal(proxySpec, '["ALL"] true');
      const services = await engine.docker(["service", "ls", "-q"]);
      const inspect = await engine.docker(["service", "inspect", ...services.split("\n")]);
      const env = JSON.parse(inspect).flatMap((s: { Spec: { TaskTemplate: unknown } }) =>
        (s.Spec.TaskTemplate as { ContainerSpec: { Env?: string[] } }).ContainerSpec.Env ?? []
      ) as string[];
      for (const v of env) {
        assert.doesNotMatch(v, /^[A-Z_]*(PASSWORD|TOKEN)=/, `a secret in the environment: ${v}`);
      }
      const admin = await engine.docker([
        "exec",
        (await _containers(engine, "redis"))[0]!,
        "cat",
        "/run/secrets/redis_admin_password",
      ]);
      assert.ok(admin.length >= 32);
      assert.ok(!inspect.includes(admin), "the admin password leaked into a service spec");
    });

    await t.step("the deployed proxy serves collect's reads and refuses the rest", async () => {
      const socket = `${engine.dir}/data/volumes/${STACK}_proxy-socket/_data/docker.sock`;
      assert.equal((await _engineFetch(socket, "GET", "/v1.41/containers/json")).status, 200);
      assert.equal((await _engineFetch(socket, "GET", "/_ping")).text, "OK");
      const [redis] = await _containers(engine, "redis");
      for (
        const [method, path] of [
          ["POST", `/v1.41/containers/${redis}/exec`],
          ["POST", "/containers/create"],
          ["GET", `/containers/${redis}/archive?path=/run/secrets`],
          ["GET", `/containers/${redis}/export`],
          ["GET", "/secrets"],
          ["GET", "/v1.41/configs"],
          ["GET", "/images/json"],
          ["POST", `/containers/${redis}/kill`],
          ["GET", "/containers/x/../../secrets"],
        ] as const
      ) {
        const res = await _engineFetch(socket, method, path);
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.match(JSON.parse(res.text).error, /tailwise socket proxy/);
      }
    });

    await t.step(
      "Redis users: default off, each role confined to its commands and keys",
      async () => {
        const [redis] = await _containers(engine, "redis");
        const as = (user: string, args: string[]) =>
          engine.docker([
            "exec",
            redis!,
            "sh",
            "-c",
            'u=$1; shift; REDISCLI_AUTH="$(cat /run/secrets/redis_admin_password)" ' +
            'exec redis-cli --no-auth-warning --user admin ACL DRYRUN "$u" "$@"',
            "sh",
            user,
            ...args,
          ]);
        assert.equal(await as("collect", ["XADD", "tailwise:logs", "*", "a", "b"]), "OK");
        assert.match(
          await as("collect", [
            "XREADGROUP",
            "GROUP",
            "score",
            "c",
            "STREAMS",
            "tailwise:logs",
            ">",
          ]),
          /no permissions/,
        );
        assert.match(await as("score", ["XADD", "tailwise:logs", "*", "a", "b"]), /no permissions/);
        assert.match(
          await as("score", ["SET", "tailwise:models:current:x", "1"]),
          /no permissions/,
        );
        assert.match(await as("ingest", ["FLUSHALL"]), /no permissions/);
        assert.match(await as("api", ["CONFIG", "GET", "*"]), /no permissions/);
        const anon = await engine.docker(["exec", redis!, "redis-cli", "GET", "x"]);
        assert.match(anon, /NOAUTH/);
      },
    );

    await t.step("a noisy container's anomaly reaches the anomalies stream", async () => {
      await engine.docker([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "tw-noisy",
        engine.image,
        "sh",
        "-c",
        'for i in $(seq 1 200); do echo "GET /api/items/$i 200 12ms"; done; ' +
        'echo "FATAL panic: database connection lost at 0xdeadbeef"; sleep 600',
      ]);
      let anomalies = "";
      await waitFor(async () => {
        anomalies = await _redis(engine, ["XRANGE", "tailwise:anomalies", "-", "+"]);
        return anomalies.includes("FATAL panic: database connection lost at 0xdeadbeef");
      }, { timeoutMs: 60_000, intervalMs: 500, what: "the anomaly in tailwise:anomalies" });
      assert.ok(anomalies.includes("tw-noisy"));
      log("anomaly seen in the anomalies stream");
    });

    await t.step(
      "a score replica killed while holding entries: no line goes unscored",
      async () => {
        const [victim] = await _containers(engine, "score");
        const consumer = `${victim!.slice(0, 12)}-1`;
        const ip = await engine.docker([
          "inspect",
          "--format",
          `{{(index .NetworkSettings.Networks "${STACK}_redis").IPAddress}}`,
          victim!,
        ]);
        // Freeze it while Redis holds its fresh blocking read: Redis then hands
        // it a batch it will never ack, and it dies holding those entries.
        await waitFor(async () => {
          const clients = (await _redis(engine, ["CLIENT", "LIST"])).split("\n");
          return clients.some((c) =>
            c.includes(` addr=${ip}:`) && / flags=b /.test(c) && / cmd=xreadgroup /.test(c) &&
            Number(/ idle=(\d+) /.exec(c)?.[1] ?? 99) <= 1
          );
        }, { timeoutMs: 30_000, intervalMs: 100, what: `${consumer} in a fresh blocking read` });
        await engine.docker(["pause", victim!]);
        await engine.docker([
          "run",
          "-d",
          "--network",
          "none",
          "--name",
          "tw-burst",
          engine.image,
          "sh",
          "-c",
          "for c in $(seq 1 8); do for i in $(seq 1 250); do " +
          'echo "GET /api/orders/$c/$i 200 9ms"; done; echo "FATAL panic: burst $c"; ' +
          "sleep 0.3; done; sleep 600",
        ]);
        await waitFor(async () => {
          const pending = await _redis(engine, ["XPENDING", "tailwise:logs", "score"]);
          const lines = pending.split("\n");
          const at = lines.indexOf(consumer);
          return at !== -1 && Number(lines[at + 1]) > 0;
        }, { timeoutMs: 30_000, intervalMs: 200, what: `entries pending at ${consumer}` });
        await engine.docker(["kill", victim!]);
        log(`killed score replica ${consumer} while it held entries`);
        let score: Record<string, string> | undefined;
        let length = "";
        await waitFor(async () => {
          length = await _redis(engine, ["XLEN", "tailwise:logs"]);
          score = (await _groups(engine)).find((g) => g.name === "score");
          const anomalies = await _redis(engine, ["XRANGE", "tailwise:anomalies", "-", "+"]);
          const bursts = [...anomalies.matchAll(/^FATAL panic: burst (\d)$/gm)].map((m) => m[1]);
          return score?.pending === "0" && score?.lag === "0" && bursts.length === 8;
        }, { timeoutMs: 90_000, intervalMs: 500, what: "every entry scored and acked" })
          .catch((e) => {
            throw new Error(`${e.message}: score group ${JSON.stringify(score)}, XLEN ${length}`);
          });
        const anomalies = await _redis(engine, ["XRANGE", "tailwise:anomalies", "-", "+"]);
        const bursts = [...anomalies.matchAll(/^FATAL panic: burst (\d)$/gm)].map((m) => m[1]);
        assert.deepEqual(
          bursts.sort(),
          ["1", "2", "3", "4", "5", "6", "7", "8"],
          "each exactly once",
        );
        assert.equal(await _redis(engine, ["XLEN", "tailwise:dead"]), "0");
        log(`no line unscored: score group ${JSON.stringify(score)}`);
      },
    );

    await t.step("no task hit a Deno permission or a Redis ACL it lacks", async () => {
      for (const service of ["socket-proxy", "collect", "ingest", "score", "train", "api"]) {
        // Tasks log to stdout and stderr; the CLI passes each to its own.
        const out = await new Deno.Command("docker", {
          args: ["--host", engine.url, "service", "logs", "--raw", `${STACK}_${service}`],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const logs = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.ok(logs.includes('"level":"info"') || service === "socket-proxy", service);
        assert.doesNotMatch(
          logs,
          /NotCapable|NOPERM|no permissions/,
          `${service}: ${logs.slice(-800)}`,
        );
      }
    });
  } finally {
    if (deployed) {
      await engine.docker(["stack", "rm", STACK]).catch(() => "");
      await waitFor(async () =>
        (await engine.docker([
          "ps",
          "-aq",
          "--filter",
          `label=com.docker.stack.namespace=${STACK}`,
        ])) === "", { timeoutMs: 60_000, intervalMs: 500, what: "the stack's containers gone" })
        .catch(() => {});
    }
    await tearDownSwarm(engine, { swarm, gwbridgeBefore });
    log("cleaned up");
  }
});
