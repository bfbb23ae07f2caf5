import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { messageLineCount, unpackEntries } from "../../shared/ports/log_entry.ts";
import { GROUP_LOST_MESSAGE } from "../../shared/runtime/stream_consumer.ts";
import { dockerCli, freePort, suiteEnv, waitFor } from "../harness/services.ts";
import { TaskProcess } from "../harness/task.ts";
import { dropDatabase, influxQuery } from "../shared/adapters/influx/influx_helpers.ts";

const LINES = 4000;

/** A redis-server of this test only, killed with SIGKILL as a crash would. */
class _CrashableRedis {
  readonly port = freePort();
  readonly dir: string;
  #child: Deno.ChildProcess | null = null;
  constructor(dir: string) {
    this.dir = dir;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    // RDB only, written when the test says SAVE: a restart loads that older snapshot.
    this.#child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor(async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      c.on("error", () => {});
      try {
        await c.connect();
        return (await c.ping()) === "PONG" && (await c.info("persistence")).includes("loading:0");
      } finally {
        c.disconnect();
      }
    }, { timeoutMs: 20_000, what: "redis-server" });
  }
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    this.#child = null;
  }
}

/**
 * Issue 16 item 2: Redis loses state under a running distributed pipeline
 * (collect, ingest, score as processes with their tasks' permissions), once
 * restarted from an older snapshot and once empty, while containers print.
 * Nothing is lost and the pipeline moves again without restarting anything.
 */
Deno.test("collect, ingest, score recover by themselves when Redis restarts from an old snapshot and empty", async (t) => {
  const env = suiteEnv();
  const id = crypto.randomUUID().slice(0, 8);
  const dir = await Deno.makeTempDir({ prefix: "tailwise-redis-loss-" });
  const redis = new _CrashableRedis(dir);
  await redis.start();
  const database = `tw_loss_${id}`;
  const base = {
    REDIS_URL: redis.url,
    INFLUX_URL: env.influxUrl,
    INFLUX_DATABASE: database,
    DOCKER_HOST: `unix://${env.dockerSocket}`,
    CONSUMER_BLOCK_MS: "200",
    COLLECT_BATCH_LINES: "200",
  };
  const procs: TaskProcess[] = [];
  for (const fn of ["collect", "ingest", "score"]) {
    procs.push(
      await TaskProcess.start(fn, { env: { ...base, TAILWISE_INSTANCE: `${fn}-${id}` } }),
    );
  }
  const [collect, ingest, score] = procs as [TaskProcess, TaskProcess, TaskProcess];
  const names = [`loss-a-${id}`, `loss-b-${id}`];
  const docker = (args: string[]) => dockerCli(`unix://${env.dockerSocket}`, args);
  const client = new Redis(redis.url, { maxRetriesPerRequest: null });
  client.on("error", () => {});
  // Lines in the stream (a packed message carries many).
  const length = async () => {
    try {
      const all = await client.xrange("tailwise:logs", "-", "+");
      let n = 0;
      for (const [, flat] of all) {
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
        n += messageLineCount(fields);
      }
      return n;
    } catch {
      return 0;
    }
  };
  const logged = (p: TaskProcess, msg: RegExp) =>
    p.records().filter((r) => typeof r.msg === "string" && msg.test(r.msg)).length;
  try {
    for (const name of names) {
      await docker([
        "run",
        "-d",
        "--name",
        name,
        env.dockerImage,
        "sh",
        "-c",
        `i=0; while [ $i -lt ${LINES} ]; do i=$((i+1)); echo "${name} line $i"; usleep 2500; done`,
      ]);
    }

    await t.step("restarted from an older snapshot: collect re-sends what it lost", async () => {
      await waitFor(async () => await length() >= 1000, {
        timeoutMs: 30_000,
        what: "1,000 lines in the stream",
      });
      await client.save();
      const saved = await length();
      await waitFor(async () => await length() >= saved + 800, {
        timeoutMs: 30_000,
        what: "800 more lines after the snapshot",
      });
      await redis.kill();
      await redis.start();
      await waitFor(() => logged(collect, /lost appends/) >= 1, {
        timeoutMs: 15_000,
        what: "collect to notice the older snapshot",
      });
    });

    await t.step("restarted empty: groups re-created, collect re-reads from Docker", async () => {
      const before = await length();
      await waitFor(async () => await length() >= before + 500, {
        timeoutMs: 30_000,
        what: "500 more lines",
      });
      await redis.kill();
      await Deno.remove(`${dir}/dump.rdb`).catch(() => {});
      await redis.start();
      await waitFor(() => logged(collect, /lost appends/) >= 2, {
        timeoutMs: 15_000,
        what: "collect to notice the empty Redis",
      });
      await waitFor(
        () =>
          logged(ingest, new RegExp(`^${_escape(GROUP_LOST_MESSAGE)}$`)) +
              logged(score, new RegExp(`^${_escape(GROUP_LOST_MESSAGE)}$`)) >= 2,
        { timeoutMs: 15_000, what: "ingest and score to re-create their groups" },
      );
    });

    await t.step("every line is in the stream, in InfluxDB, and scored", async () => {
      for (const name of names) await docker(["wait", name]);
      const want = (name: string) =>
        Array.from({ length: LINES }, (_, i) => `${name} line ${i + 1}`);
      const inStream = async () => {
        const seen = new Map<string, Set<string>>(names.map((n) => [n, new Set()]));
        let start = "-";
        for (;;) {
          const page = await client.xrange("tailwise:logs", start, "+", "COUNT", 5000);
          for (const [, flat] of page) {
            const fields: Record<string, string> = {};
            for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
            for (const e of unpackEntries(fields)) seen.get(e.containerName)?.add(e.line);
          }
          if (page.length < 5000) break;
          start = `(${page[page.length - 1]![0]}`;
        }
        return seen;
      };
      await waitFor(async () => {
        const seen = await inStream();
        return names.every((n) => want(n).every((l) => seen.get(n)!.has(l)));
      }, { timeoutMs: 30_000, what: `all ${LINES} lines of each container in the stream` });
      const influxCount = async (name: string) => {
        const rows = await influxQuery(
          env.influxUrl,
          `SELECT count("cid") FROM "logs" WHERE "container" = '${name}'`,
          database,
        );
        return Number(rows[0]?.count ?? 0);
      };
      await waitFor(async () => {
        for (const n of names) if (await influxCount(n) !== LINES) return false;
        return true;
      }, { timeoutMs: 30_000, what: `${LINES} points per container in InfluxDB` });
      await waitFor(async () => {
        const groups = await client.xinfo("GROUPS", "tailwise:logs") as unknown[][];
        const state = new Map(groups.map((g) => {
          const o: Record<string, unknown> = {};
          for (let i = 0; i + 1 < g.length; i += 2) o[String(g[i])] = g[i + 1];
          return [String(o.name), o];
        }));
        return ["ingest", "score"].every((g) =>
          state.get(g)?.pending === 0 && state.get(g)?.lag === 0
        );
      }, { timeoutMs: 30_000, what: "ingest and score to catch up (lag and pending 0)" });
      // Each loss is reported once.
      assert.equal(logged(collect, /lost appends/), 2);
      assert.equal(logged(ingest, new RegExp(`^${_escape(GROUP_LOST_MESSAGE)}$`)), 1);
      assert.equal(logged(score, new RegExp(`^${_escape(GROUP_LOST_MESSAGE)}$`)), 1);
    });

    await t.step("SIGTERM stops collect within 10 s, even with Redis down", async () => {
      await redis.kill();
      const started = Date.now();
      const status = await collect.stop("SIGTERM");
      const ms = Date.now() - started;
      assert.ok(ms < 10_000, `collect took ${ms} ms to stop`);
      assert.equal(status.code, 0);
    });
  } finally {
    client.disconnect();
    for (const p of procs) await p.stop("SIGKILL");
    await docker(["rm", "-f", ...names]).catch(() => {});
    await redis.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await dropDatabase(env.influxUrl, database).catch(() => {});
  }
});

function _escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
