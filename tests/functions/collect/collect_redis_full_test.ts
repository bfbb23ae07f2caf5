import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { unpackEntries } from "../../../shared/ports/log_entry.ts";
import { dockerCli, startDocker, startRedis, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";

const LINES = 30_000;

/**
 * Issue 16 item 12: Redis at maxmemory (noeviction) with every entry acked.
 * `deno task collect` (its permissions) trims what every group acked, says
 * so once per trim, and goes on; before, appends failed until someone
 * intervened.
 *
 * It runs its own Docker engine: collect follows every container of its
 * engine, and the suite's shared engine holds other tests' containers, whose
 * logs would otherwise go through the 4 MB Redis too.
 */
Deno.test("deno task collect: a full Redis is trimmed of what every group acked, and appends go on", async () => {
  await using engine = await startDocker();
  const env = { dockerSocket: engine.socketPath, dockerImage: engine.image };
  await using redis = await startRedis({
    args: ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
  });
  const client = new Redis(redis.url, { maxRetriesPerRequest: null });
  client.on("error", () => {});
  const blocking = new Redis(redis.url, { maxRetriesPerRequest: null });
  blocking.on("error", () => {});
  await client.xgroup("CREATE", "tailwise:logs", "ingest", "0", "MKSTREAM");
  await client.xgroup("CREATE", "tailwise:logs", "score", "0");
  const name = `full-${crypto.randomUUID().slice(0, 8)}`;
  const seen = new Set<string>();
  const stop = new AbortController();
  // ingest and score as a test consumer: read and ack everything at once.
  let consumeError = "";
  const consume = (async () => {
    while (!stop.signal.aborted) {
      try {
        await _readAndAck();
      } catch (e) {
        // A refused read (e.g. while Redis is full) is retried, as ingest and score do.
        consumeError = e instanceof Error ? e.message : String(e);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  async function _readAndAck(): Promise<void> {
    for (const group of ["ingest", "score"]) {
      const reply = await blocking.xreadgroup(
        "GROUP",
        group,
        "c",
        "COUNT",
        2000,
        "BLOCK",
        50,
        "STREAMS",
        "tailwise:logs",
        ">",
      ) as [string, [string, string[]][]][] | null;
      const messages = reply?.[0]?.[1] ?? [];
      if (messages.length === 0) continue;
      if (group === "ingest") {
        for (const [, flat] of messages) {
          const fields: Record<string, string> = {};
          for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
          for (const e of unpackEntries(fields)) if (e.containerName === name) seen.add(e.line);
        }
      }
      await client.xack("tailwise:logs", group, ...messages.map(([id]) => id));
    }
  }
  await using collect = await TaskProcess.start("collect", {
    env: {
      REDIS_URL: redis.url,
      DOCKER_HOST: `unix://${env.dockerSocket}`,
      STREAM_MAXLEN: "0",
      TAILWISE_INSTANCE: "collect-full",
    },
  });
  try {
    await dockerCli(`unix://${env.dockerSocket}`, [
      "run",
      "-d",
      "--name",
      name,
      env.dockerImage,
      "sh",
      "-c",
      `i=0; pad=${"x".repeat(180)}; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "$i $pad"; done`,
    ]);
    await waitFor(() => seen.size === LINES, {
      timeoutMs: 50_000,
      what: `all ${LINES} lines through a 4 MB Redis`,
    }).catch((e) => {
      const detail = consumeError ? `; last read error: ${consumeError}` : "";
      throw new Error(
        `${e.message} (${seen.size} seen${detail})\n${collect.lines.slice(-5).join("\n")}`,
      );
    });
    const trims = collect.records().filter((r) =>
      typeof r.msg === "string" && r.msg.startsWith("Redis is out of memory: trimmed")
    );
    assert.ok(trims.length >= 1, "no trim was logged");
    assert.ok(Number(trims[0]!.removed) > 0);
  } finally {
    stop.abort();
    await consume.catch(() => {});
    await collect.stop();
    await dockerCli(`unix://${env.dockerSocket}`, ["rm", "-f", name]).catch(() => {});
    client.disconnect();
    blocking.disconnect();
  }
});
