import assert from "node:assert/strict";
import { dockerCli, suiteEnv, waitFor } from "../../harness/services.ts";
import {
  numbered,
  ofContainer,
  redisReader,
  removeContainers,
  runContainer,
  startCollector,
  StreamReader,
  texts,
} from "./helpers.ts";

const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

Deno.test("collect() appends every container's lines exactly once and in order", async (t) => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const ids: string[] = [];
  await using redis = redisReader(env.redisUrl);
  // Running before the collector starts, and still running.
  const before = await runContainer(host, [
    "-i",
    "--name",
    `before-${crypto.randomUUID().slice(0, 8)}`,
    "--label",
    "com.docker.swarm.service.name=shop_web",
    "--label",
    "com.docker.swarm.task.id=task1",
    "--label",
    "com.docker.swarm.node.id=node1",
    env.dockerImage,
    "sh",
    "-c",
    "seq 1 500; exec cat",
  ]);
  ids.push(before);
  await using collector = startCollector(env.dockerSocket, env.redisUrl, { batchLines: 500 });
  const reader = new StreamReader(redis, collector.stream);
  try {
    await t.step("a container running at start, with Swarm labels", async () => {
      await waitFor(async () => (await reader.all()).length >= 500, {
        timeoutMs: 20_000,
        what: "500 lines of the running container",
      });
      const entries = await reader.of(before);
      assert.deepEqual(texts(entries), numbered(500));
      const first = entries[0]!;
      assert.equal(first.containerId, before);
      assert.match(first.containerName, /^before-/);
      assert.equal(first.image, env.dockerImage);
      assert.equal(first.stream, "stdout");
      assert.equal(first.service, "shop_web");
      assert.equal(first.task, "task1");
      assert.equal(first.node, "node1");
      assert.match(first.ts, TS_RE);
      for (const e of entries) {
        assert.equal(e.truncated, undefined);
        assert.equal(e.raw, undefined);
      }
    });

    await t.step(
      "containers started while it runs: numbered lines, each once, in order",
      async () => {
        const started = await Promise.all(
          [1, 2].map(() => runContainer(host, [env.dockerImage, "seq", "1", "30000"])),
        );
        ids.push(...started);
        await waitFor(async () => (await reader.all()).length >= 60_500, {
          timeoutMs: 30_000,
          what: "60,000 lines of two new containers",
        });
        const all = await reader.all();
        for (const id of started) {
          const entries = ofContainer(all, id);
          assert.deepEqual(texts(entries), numbered(30_000));
          // seq numbers lines sharing a timestamp.
          const seen = new Set<string>();
          for (const e of entries) {
            const key = `${e.ts}#${e.seq}`;
            assert.ok(!seen.has(key), `duplicate ${key}`);
            seen.add(key);
          }
        }
      },
    );

    await t.step("interleaved stdout and stderr keep their order per stream", async () => {
      const id = await runContainer(host, [
        env.dockerImage,
        "sh",
        "-c",
        'i=1; while [ $i -le 2000 ]; do echo "out$i"; echo "err$i" >&2; i=$((i+1)); done',
      ]);
      ids.push(id);
      await waitFor(
        async () => (await reader.of(id)).length >= 4000,
        {
          timeoutMs: 20_000,
          what: "4,000 interleaved lines",
        },
      );
      const entries = await reader.of(id);
      assert.equal(entries.length, 4000);
      assert.deepEqual(texts(entries.filter((e) => e.stream === "stdout")), numbered(2000, "out"));
      assert.deepEqual(texts(entries.filter((e) => e.stream === "stderr")), numbered(2000, "err"));
    });

    await t.step("a TTY container: one raw stream, \\r kept, long lines joined", async () => {
      const id = await runContainer(host, [
        "-t",
        env.dockerImage,
        "sh",
        "-c",
        'seq 1 300; head -c 20000 /dev/zero | tr "\\0" t; echo; echo end',
      ]);
      ids.push(id);
      await waitFor(
        async () => (await reader.of(id)).length >= 302,
        {
          timeoutMs: 20_000,
          what: "302 TTY lines",
        },
      );
      const entries = await reader.of(id);
      assert.deepEqual(texts(entries), [
        ...numbered(300).map((n) => `${n}\r`),
        `${"t".repeat(20_000)}\r`,
        "end\r",
      ]);
      assert.ok(entries.every((e) => e.stream === "stdout"));
    });

    await t.step("lines of 16,383, 16,384, 16,385 bytes and 100 KB arrive whole", async () => {
      const sizes = [16_383, 16_384, 16_385, 100 * 1024, 1];
      const script = sizes.map((n) => `head -c ${n} /dev/zero | tr "\\0" x; echo`).join("; ");
      const id = await runContainer(host, [env.dockerImage, "sh", "-c", script]);
      ids.push(id);
      await waitFor(
        async () => (await reader.of(id)).length >= sizes.length,
        { timeoutMs: 20_000, what: "the long lines" },
      );
      const entries = await reader.of(id);
      assert.deepEqual(entries.map((e) => e.line.length), sizes);
      assert.ok(entries.every((e) => e.line === "x".repeat(e.line.length) && !e.truncated));
    });

    await t.step("a line over maxLineBytes is cut and marked truncated", async () => {
      const id = await runContainer(host, [
        env.dockerImage,
        "sh",
        "-c",
        'head -c 1500000 /dev/zero | tr "\\0" y; echo; echo after',
      ]);
      ids.push(id);
      await waitFor(
        async () => (await reader.of(id)).length >= 2,
        {
          timeoutMs: 20_000,
          what: "the cut line",
        },
      );
      const entries = await reader.of(id);
      assert.equal(entries.length, 2);
      assert.equal(entries[0]!.line, "y".repeat(1024 * 1024));
      assert.equal(entries[0]!.truncated, true);
      assert.equal(entries[1]!.line, "after");
    });

    await t.step("invalid UTF-8 and NUL bytes travel byte-exact in raw", async () => {
      const script =
        "printf 'a\\377b\\000c\\n'; printf 'ok \\303\\251\\n'; printf 'nul\\000only\\n'";
      // The local driver stores bytes; json-file stores JSON strings, where
      // Docker itself replaces invalid UTF-8 with U+FFFD.
      const local = await runContainer(host, [
        "--log-driver",
        "local",
        env.dockerImage,
        "sh",
        "-c",
        script,
      ]);
      const json = await runContainer(host, [env.dockerImage, "sh", "-c", script]);
      ids.push(local, json);
      for (const id of [local, json]) {
        await waitFor(
          async () => (await reader.of(id)).length >= 3,
          {
            timeoutMs: 20_000,
            what: "the binary lines",
          },
        );
      }
      const all = await reader.all();
      const [bad, ok, nul] = ofContainer(all, local);
      assert.deepEqual([...(bad!.raw ?? [])], [0x61, 0xff, 0x62, 0x00, 0x63]);
      assert.equal(bad!.line, "a\uFFFDb\u0000c");
      assert.equal(ok!.line, "ok \u00e9");
      assert.equal(ok!.raw, undefined);
      assert.equal(nul!.line, "nul\u0000only");
      assert.deepEqual(
        texts(ofContainer(all, json)),
        ["a\uFFFDb\u0000c", "ok \u00e9", "nul\u0000only"],
      );
    });

    await t.step("a restarted container is followed again, nothing twice", async () => {
      const script = "n=$(cat /tmp/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/n; " +
        'for i in $(seq 1 200); do echo "run$n-$i"; done';
      const id = await runContainer(host, [env.dockerImage, "sh", "-c", script]);
      ids.push(id);
      const count = async () => (await reader.of(id)).length;
      await waitFor(async () => (await count()) >= 200, { timeoutMs: 20_000, what: "run 1" });
      await dockerCli(host, ["start", "-a", id]);
      await waitFor(async () => (await count()) >= 400, { timeoutMs: 20_000, what: "run 2" });
      const entries = await reader.of(id);
      assert.deepEqual(texts(entries), [...numbered(200, "run1-"), ...numbered(200, "run2-")]);
    });

    await t.step("a container with log driver none is reported once", async () => {
      const id = await runContainer(host, ["--log-driver", "none", env.dockerImage, "echo", "hi"]);
      ids.push(id);
      const reports = () =>
        collector.logs.filter((l) => l.containerId === id && /cannot read/.test(String(l.msg)));
      await waitFor(() => reports().length >= 1, { timeoutMs: 20_000, what: "the report" });
      await dockerCli(host, ["start", "-a", id]);
      await dockerCli(host, ["start", "-a", id]);
      // A marker container started after the restarts: once its line is in,
      // the restart events have been handled.
      const marker = await runContainer(host, [env.dockerImage, "echo", "marker"]);
      ids.push(marker);
      await waitFor(
        async () => (await reader.of(marker)).length >= 1,
        {
          timeoutMs: 20_000,
          what: "the marker line",
        },
      );
      assert.equal(reports().length, 1);
      assert.equal(reports()[0]!.logDriver, "none");
    });
  } finally {
    await collector.stop();
    await removeContainers(host, ids);
    await redis.del(collector.stream);
    const keys = await redis.keys(`${collector.prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
});
