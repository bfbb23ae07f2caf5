import assert from "node:assert/strict";
import { modelKey } from "../../../shared/ports/log_entry.ts";
import { dockerCli, suiteEnv, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";
import {
  readAnomalies,
  redisReader,
  removeContainers,
  runContainer,
  startCollector,
  StreamReader,
} from "./helpers.ts";

Deno.test("collect() puts the service key on every entry: Compose project and service, tailwise.model, else the name", async () => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const tag = crypto.randomUUID().slice(0, 8);
  await using redis = redisReader(env.redisUrl);
  await using collector = startCollector(env.dockerSocket, env.redisUrl);
  const reader = new StreamReader(redis, collector.stream);
  const ids: string[] = [];
  try {
    const compose = await runContainer(host, [
      "--name",
      `shop-web-1-${tag}`,
      "--label",
      `com.docker.compose.project=shop${tag}`,
      "--label",
      "com.docker.compose.service=web",
      env.dockerImage,
      "echo",
      "compose line",
    ]);
    ids.push(compose);
    const chosen = await runContainer(host, [
      "--name",
      `worker-${tag}`,
      "--label",
      `tailwise.model=payments-${tag}`,
      env.dockerImage,
      "echo",
      "chosen line",
    ]);
    ids.push(chosen);
    const plain = await runContainer(host, [
      "--name",
      `plain-${tag}`,
      env.dockerImage,
      "echo",
      "plain line",
    ]);
    ids.push(plain);
    await waitFor(async () => {
      const all = await reader.all();
      return ids.every((id) => all.some((e) => e.containerId === id));
    }, { timeoutMs: 20_000, what: "a line of each container" });
    const all = await reader.all();
    const keyOf = (id: string) => modelKey(all.find((e) => e.containerId === id)!);
    assert.equal(keyOf(compose), `shop${tag}_web`);
    assert.equal(keyOf(chosen), `payments-${tag}`);
    assert.equal(keyOf(plain), `plain-${tag}`);
    assert.equal(all.find((e) => e.containerId === plain)!.key, undefined);
  } finally {
    await removeContainers(host, ids);
  }
});

Deno.test("collect (its task) raises exited, unhealthy, restart_loop and oom_killed with the last lines; a docker stop raises nothing", async (t) => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const tag = crypto.randomUUID().slice(0, 8);
  const anomalies = `test:anomalies:${tag}`;
  await using redis = redisReader(env.redisUrl);
  // The alert sink's receiver: a real local HTTP server.
  const alerts: { anomaly?: { reasons?: string[]; lastLines?: string[] } }[] = [];
  await using receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      alerts.push(await req.json());
      return new Response(null, { status: 204 });
    },
  );
  await using task = await TaskProcess.start("collect", {
    env: {
      WEBHOOK_URL: `http://127.0.0.1:${receiver.addr.port}/hook`,
      REDIS_URL: env.redisUrl,
      DOCKER_HOST: host,
      LOG_STREAM: `test:logs:${tag}`,
      ANOMALY_STREAM: anomalies,
      DEPLOY_STREAM: `test:deploys:${tag}`,
      TAILWISE_INSTANCE: `collect-${tag}`,
    },
  });
  await waitFor(() => task.lines.some((l) => l.includes("starting")), {
    timeoutMs: 30_000,
    what: "collect to start",
  });
  const ids: string[] = [];
  const run = async (args: string[]) => {
    const id = await runContainer(host, args);
    ids.push(id);
    return id;
  };
  const of = async (id: string) =>
    (await readAnomalies(redis, anomalies)).filter((a) => a.containerId === id);
  try {
    // Started together, checked one by one.
    const one = await run([
      "--name",
      `crash-${tag}`,
      env.dockerImage,
      "sh",
      "-c",
      "sleep 1; echo first; echo 'last words'; exit 1",
    ]);
    const killed = await run([
      "--name",
      `killed-${tag}`,
      env.dockerImage,
      "sh",
      "-c",
      "sleep 1; echo dying; exit 137",
    ]);
    const stopped = await run(["--name", `stopped-${tag}`, env.dockerImage, "sleep", "60"]);
    const sick = await run([
      "--name",
      `sick-${tag}`,
      "--health-cmd",
      "test ! -f /tmp/bad",
      "--health-interval",
      "1s",
      "--health-retries",
      "1",
      "--health-timeout",
      "1s",
      env.dockerImage,
      "sh",
      "-c",
      "echo healthy for now; sleep 2; echo 'db pool exhausted'; touch /tmp/bad; exec sleep 60",
    ]);
    const looping = await run([
      "--name",
      `loop-${tag}`,
      "--restart",
      "always",
      env.dockerImage,
      "sh",
      "-c",
      "echo booting; exit 3",
    ]);
    await t.step("exit code 1: exited, with the last lines", async () => {
      await waitFor(async () => (await of(one)).length > 0, { timeoutMs: 30_000, what: "exited" });
      const [a] = await of(one);
      assert.deepEqual(a!.reasons, ["exited"]);
      assert.equal(a!.container, `crash-${tag}`);
      assert.match(a!.line, /exited with code 1$/);
      assert.deepEqual(a!.lastLines, ["first", "last words"]);
      assert.equal(a!.version, env.dockerImage);
      await waitFor(() => alerts.some((p) => p.anomaly?.reasons?.includes("exited")), {
        timeoutMs: 20_000,
        what: "the webhook alert",
      });
      const alert = alerts.find((p) => p.anomaly?.reasons?.includes("exited"))!;
      assert.ok(alert.anomaly!.lastLines!.length > 0);
    });
    await t.step("exit code 137 without an OOM kill: exited, not oom_killed", async () => {
      await waitFor(async () => (await of(killed)).length > 0, {
        timeoutMs: 30_000,
        what: "exited 137",
      });
      const [a] = await of(killed);
      assert.deepEqual(a!.reasons, ["exited"]);
      assert.match(a!.line, /code 137/);
      assert.deepEqual(a!.lastLines, ["dying"]);
    });
    await t.step("health check turning unhealthy: unhealthy, with the check's output", async () => {
      await waitFor(async () => (await of(sick)).length > 0, {
        timeoutMs: 30_000,
        what: "unhealthy",
      });
      const list = await of(sick);
      assert.deepEqual(list.map((a) => a.reasons), [["unhealthy"]]);
      assert.ok(list[0]!.lastLines!.includes("db pool exhausted"), String(list[0]!.lastLines));
    });
    await t.step("3 restarts after crashes within 5 minutes: one restart_loop", async () => {
      await waitFor(
        async () => (await of(looping)).some((a) => a.reasons[0] === "restart_loop"),
        { timeoutMs: 60_000, what: "restart_loop" },
      );
      const loops = (await of(looping)).filter((a) => a.reasons[0] === "restart_loop");
      assert.equal(loops.length, 1);
      assert.match(loops[0]!.line, /restarted 3 times in 5 minutes/);
      assert.ok(loops[0]!.lastLines!.includes("booting"));
      assert.ok((await of(looping)).some((a) => a.reasons[0] === "exited"));
    });
    await t.step("docker stop: no anomaly", async () => {
      await dockerCli(host, ["stop", "-t", "1", stopped]);
      // The stop's die event is handled before the next container's.
      const marker = await run([env.dockerImage, "sh", "-c", "exit 2"]);
      await waitFor(async () => (await of(marker)).length > 0, {
        timeoutMs: 30_000,
        what: "the marker's exit",
      });
      assert.deepEqual(await of(stopped), []);
    });
    await t.step("OOM kill under a memory limit: oom_killed", async () => {
      // Needs the engine's memory cgroup (cgroup v1 here, vfs storage is no obstacle).
      const oom = await run([
        "--name",
        `oom-${tag}`,
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        env.dockerImage,
        "sh",
        "-c",
        "echo allocating; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo done",
      ]);
      await waitFor(async () => (await of(oom)).length > 0, { timeoutMs: 60_000, what: "oom" });
      const [a] = await of(oom);
      assert.deepEqual(a!.reasons, ["oom_killed"]);
      assert.deepEqual(a!.lastLines, ["allocating"]);
    });
  } finally {
    await removeContainers(host, ids);
  }
  const status = await task.stop();
  assert.equal(status.code, 0, task.lines.slice(-20).join("\n"));
});
