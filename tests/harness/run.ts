/**
 * The test runner behind `deno task test`: starts the suite's real services
 * (redis-server, influxd, dockerd with a local busybox image) on loopback,
 * runs `deno test` with their addresses in the environment, then stops them
 * and removes their files, whatever the outcome. Before that, the preflight
 * checks (and as root with apt, installs) every program the suite needs.
 *
 * Arguments are passed to `deno test` (e.g. a path or `--filter`).
 *
 * @module
 */

import { preflight } from "./preflight.ts";
import { startDocker, startInflux, startRedis } from "./services.ts";

const started = Date.now();
const log = (msg: string) => console.error(`[harness] ${msg}`);

// Every program the suite needs is there (installed now if we can), or we
// stop before any test starts: no test is skipped for a missing service.
if (!(await preflight({ log }))) Deno.exit(1);

log("starting redis-server, influxd and dockerd on loopback");
const [redis, influx, docker] = await Promise.all([startRedis(), startInflux(), startDocker()]);
log(`redis ${redis.url}, influx ${influx.url}, docker ${docker.url} (${Date.now() - started} ms)`);

let code = 1;
const stop = async () => {
  await Promise.allSettled([
    redis[Symbol.asyncDispose](),
    influx[Symbol.asyncDispose](),
    _stopDocker(),
  ]);
};
const onSignal = () => {
  stop().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

try {
  const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--unstable-cron", "--unstable-kv", ...args],
    env: {
      TAILWISE_TEST_REDIS_URL: redis.url,
      TAILWISE_TEST_INFLUX_URL: influx.url,
      TAILWISE_TEST_DOCKER_SOCKET: docker.socketPath,
      TAILWISE_TEST_DOCKER_IMAGE: docker.image,
    },
    stdin: "null",
  }).spawn();
  code = (await child.status).code;
} finally {
  log("stopping services");
  await stop();
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
Deno.exit(code);

async function _stopDocker(): Promise<void> {
  // Containers left by a failed test must not keep the engine's mounts busy.
  try {
    const ids = (await docker.docker(["ps", "-aq"])).split("\n").filter(Boolean);
    if (ids.length > 0) await docker.docker(["rm", "-f", ...ids]);
  } catch {
    // the engine may already be gone
  }
  await docker[Symbol.asyncDispose]();
}
