import assert from "node:assert/strict";
import {
  decodeLine,
  entryToFields,
  lineBytes,
  type LogEntry,
  packEntries,
} from "../../../shared/ports/log_entry.ts";
import { tsToNanoText } from "../../../shared/adapters/influx/line_protocol.ts";
import { InfluxLogStore } from "../../../shared/adapters/influx/influx_log_store.ts";
import { RedisLogStream } from "../../../shared/adapters/redis/redis_log_stream.ts";
import { DEAD_LETTER_FIELDS, StreamConsumer } from "../../../shared/runtime/stream_consumer.ts";
import { ingestBatch } from "../../../functions/ingest/ingest.ts";
import { startInflux, suiteEnv, waitFor } from "../../harness/services.ts";
import { TaskProcess } from "../../harness/task.ts";
import {
  at,
  collect,
  countEntries,
  dropDatabase,
  entry,
  testDatabase,
} from "../../shared/adapters/influx/influx_helpers.ts";

/** ingest as its deno.json task, with its own flags. */
function _ingest(env: Record<string, string>): Promise<TaskProcess> {
  return TaskProcess.start("ingest", { env });
}

interface _Setup extends AsyncDisposable {
  db: string;
  logs: string;
  dead: string;
  stream: RedisLogStream;
  env: (over?: Record<string, string>) => Record<string, string>;
}

function _setup(influxUrl = suiteEnv().influxUrl): _Setup {
  const db = testDatabase();
  const logs = `ingest-test:${db}:logs`;
  const dead = `ingest-test:${db}:dead`;
  const stream = RedisLogStream.connect(suiteEnv().redisUrl);
  return {
    db,
    logs,
    dead,
    stream,
    env: (over = {}) => ({
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
      REDIS_URL: suiteEnv().redisUrl,
      INFLUX_URL: influxUrl,
      INFLUX_DATABASE: db,
      INFLUX_RETENTION: "0",
      LOG_STREAM: logs,
      DEAD_LETTER_STREAM: dead,
      TAILWISE_INSTANCE: "ingest-a",
      CONSUMER_BLOCK_MS: "200ms",
      ...over,
    }),
    async [Symbol.asyncDispose]() {
      await stream[Symbol.asyncDispose]();
      await dropDatabase(influxUrl, db).catch(() => {});
    },
  };
}

function _entries(n: number, from = 0): LogEntry[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return entry({
      containerName: `svc-${i % 7}`,
      // Three lines share each timestamp of a container.
      ts: at(Math.floor(i / 21), String(i % 1000).padStart(3, "0")),
      seq: Math.floor(i / 7) % 3,
      line: `${i} GET /api/items/${i} 200 ${i % 13}ms "ua\\x" ,= \t`,
    });
  });
}

/** Appends packed messages (or today's single-line ones); returns how many messages. */
async function _append(
  stream: RedisLogStream,
  logs: string,
  entries: LogEntry[],
  format: "packed" | "single" = "packed",
): Promise<number> {
  let messages = 0;
  for (let i = 0; i < entries.length; i += 2000) {
    const slice = entries.slice(i, i + 2000);
    const fields = format === "packed" ? packEntries(slice) : slice.map(entryToFields);
    messages += fields.length;
    await stream.append(logs, fields);
  }
  return messages;
}

async function _allRows(url: string, db: string, containers: string[]): Promise<LogEntry[]> {
  const store = new InfluxLogStore({ url, database: db });
  const out: LogEntry[] = [];
  for (const c of containers) out.push(...await collect(store.history(c, { limit: 1e9 })));
  return out;
}

Deno.test("ingest fills InfluxDB from the stream exactly once, byte-exact, from single-line and packed messages, dead-lettering a poison entry", async () => {
  await using s = _setup();
  const url = suiteEnv().influxUrl;
  const entries = [
    ..._entries(3000),
    entry({ containerName: "odd", line: "", ts: at(1) }),
    entry({ containerName: "odd", line: 'é\n"\\', seq: 1, ts: at(1) }),
    { ...entry({ containerName: "odd", ts: at(2) }), ...decodeLine(new Uint8Array([0, 255, 10])) },
  ];
  // Messages of the format before packing, as an upgrade finds them in flight, then packed ones.
  await _append(s.stream, s.logs, entries.slice(0, 1500), "single");
  await s.stream.append(s.logs, [{ c: "x", n: "broken" }]); // a poison entry
  await _append(s.stream, s.logs, entries.slice(1500));
  await using ingest = await _ingest(s.env());
  await waitFor(async () => await countEntries(url, s.db).catch(() => 0) >= entries.length, {
    timeoutMs: 60_000,
    what: `${entries.length} rows`,
  });
  await waitFor(async () => (await s.stream.groupInfo(s.logs, "ingest")).pending === 0, {
    what: "nothing pending",
  });
  const status = await ingest.stop("SIGTERM");
  assert.equal(status.code, 0, ingest.lines.join("\n"));
  assert.ok(ingest.records().some((r) => r.msg === "stopped"));
  assert.equal(await countEntries(url, s.db), entries.length);
  const names = [...new Set(entries.map((e) => e.containerName))];
  const back = await _allRows(url, s.db, names);
  const key = (e: LogEntry) => `${e.containerName} ${tsToNanoText(e.ts)} ${e.seq}`;
  const byKey = new Map(back.map((e) => [key(e), e]));
  assert.equal(byKey.size, entries.length);
  for (const e of entries) {
    const got = byKey.get(key(e));
    assert.ok(got, `row for ${key(e)}`);
    assert.deepEqual(lineBytes(got), lineBytes(e), key(e));
  }
  const dead = await s.stream.range(s.dead);
  assert.equal(dead.length, 1);
  assert.equal(dead[0]?.fields.n, "broken");
  assert.match(dead[0]?.fields[DEAD_LETTER_FIELDS.error] ?? "", /InvalidEntryError/);
  const log = ingest.lines.join("\n");
  assert.doesNotMatch(log, /secret/);
});

/**
 * A pass-through proxy in front of InfluxDB that lets the first `passWrites`
 * writes through and holds every later one: it waits, never reaching
 * InfluxDB (so its batch cannot be acked), until the proxy closes. `held`
 * counts the writes waiting.
 */
interface _WriteGate extends AsyncDisposable {
  url: string;
  readonly held: number;
}

function _writeGate(target: string, passWrites: number): _WriteGate {
  const release = Promise.withResolvers<void>();
  let writes = 0;
  let held = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.body ? await req.arrayBuffer() : undefined;
    if (url.pathname === "/write" && ++writes > passWrites) {
      held++;
      await release.promise;
      return new Response("held by the test", { status: 503 });
    }
    const res = await fetch(`${target}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body,
    });
    // fetch has already decoded the body: its encoding and length no longer apply.
    const headers = new Headers(res.headers);
    headers.delete("content-encoding");
    headers.delete("content-length");
    return new Response(res.body, { status: res.status, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get held() {
      return held;
    },
    async [Symbol.asyncDispose]() {
      release.resolve();
      await server.shutdown();
    },
  };
}

Deno.test("ingest SIGKILLed mid-batch and restarted loses nothing and duplicates nothing", async () => {
  await using s = _setup();
  const url = suiteEnv().influxUrl;
  const entries = _entries(40_000);
  await _append(s.stream, s.logs, entries);
  // The first ingest writes through a gate that, after 500 writes (of 4
  // messages, one line each: INGEST_BATCH_LINES 500 is 4 packed messages),
  // holds the rest: the batches then in flight were read and can never be
  // acked, so the kill lands mid-batch every time, not only when it happens
  // to fall between a read and an ack.
  await using gate = _writeGate(url, 500);
  const env = s.env({ INGEST_BATCH_LINES: "500" });
  await using first = await _ingest({ ...env, INFLUX_URL: gate.url });
  await waitFor(() => gate.held > 0, { timeoutMs: 60_000, what: "a write in flight, held" });
  await waitFor(async () => (await s.stream.groupInfo(s.logs, "ingest")).pending > 0, {
    what: "the batch in flight pending",
  });
  await first.stop("SIGKILL");
  const before = await countEntries(url, s.db);
  assert.ok(before > 0 && before < entries.length, `killed mid-stream (${before} rows)`);
  const pending = (await s.stream.groupInfo(s.logs, "ingest")).pending;
  assert.ok(pending > 0, "the batch in flight was left pending");
  // The restarted ingest (same consumer name) writes to InfluxDB directly.
  await using second = await _ingest(env);
  await waitFor(async () => (await s.stream.groupInfo(s.logs, "ingest")).lag === 0, {
    timeoutMs: 90_000,
    what: "the stream drained",
  });
  await waitFor(async () => (await s.stream.groupInfo(s.logs, "ingest")).pending === 0, {
    timeoutMs: 30_000,
    what: "nothing pending",
  });
  assert.equal(await countEntries(url, s.db), entries.length);
  const back = await _allRows(url, s.db, [...new Set(entries.map((e) => e.containerName))]);
  assert.equal(back.length, entries.length, "no duplicate rows");
  assert.deepEqual(new Set(back.map((e) => e.line)), new Set(entries.map((e) => e.line)));
  assert.equal((await second.stop()).code, 0);
});

Deno.test("ingest rides out InfluxDB stopped for 20 s and resumes by itself", async () => {
  await using influx = await startInflux();
  await using s = _setup(influx.url);
  await using ingest = await _ingest(s.env());
  const a = _entries(1000);
  const b = _entries(2000, 1000);
  await _append(s.stream, s.logs, a);
  await waitFor(async () => await countEntries(influx.url, s.db).catch(() => 0) === a.length, {
    timeoutMs: 30_000,
    what: "the first rows",
  });
  await influx.stop();
  await _append(s.stream, s.logs, b);
  // The outage itself lasts 20 s; this is the scenario, not a wait for a condition.
  await new Promise((r) => setTimeout(r, 20_000));
  assert.equal(await ingest.running(), true, "ingest survives the outage");
  const info = await s.stream.groupInfo(s.logs, "ingest");
  assert.ok(info.pending > 0, "nothing acked while InfluxDB is down");
  await influx.start();
  await waitFor(
    async () => await countEntries(influx.url, s.db).catch(() => 0) === a.length + b.length,
    { timeoutMs: 60_000, what: "every row after the outage" },
  );
  await waitFor(async () => (await s.stream.groupInfo(s.logs, "ingest")).pending === 0, {
    what: "nothing pending",
  });
  assert.ok(ingest.records().some((r) => r.msg === "InfluxDB write failed, retrying"));
  assert.equal((await ingest.stop()).code, 0);
});

Deno.test("two ingest replicas in one group write every entry once", async () => {
  await using s = _setup();
  const url = suiteEnv().influxUrl;
  const entries = _entries(30_000);
  await using a = await _ingest(
    s.env({ TAILWISE_INSTANCE: "ingest-a", INGEST_BATCH_LINES: "500" }),
  );
  await using b = await _ingest(
    s.env({ TAILWISE_INSTANCE: "ingest-b", INGEST_BATCH_LINES: "500" }),
  );
  await waitFor(
    () =>
      a.lines.some((l) => l.includes("consuming")) && b.lines.some((l) => l.includes("consuming")),
    {
      timeoutMs: 30_000,
      what: "both replicas consuming",
    },
  );
  const messages = await _append(s.stream, s.logs, entries);
  await waitFor(async () => {
    const info = await s.stream.groupInfo(s.logs, "ingest");
    return info.lag === 0 && info.pending === 0;
  }, { timeoutMs: 90_000, what: "the stream drained" });
  await a.stop();
  await b.stop();
  const acked = [a, b].map((p) =>
    Number(p.records().find((r) => r.msg === "stopped")?.acked ?? -1)
  );
  assert.ok(acked.every((n) => n > 0), `both replicas worked: ${acked}`);
  assert.equal(acked[0]! + acked[1]!, messages, "each message acked by exactly one replica");
  assert.equal(await countEntries(url, s.db), entries.length);
});

Deno.test("10,000 random lines (every byte value, up to 1 MiB) round-trip exactly or come back marked truncated", async () => {
  await using s = _setup();
  const url = suiteEnv().influxUrl;
  const maxLineBytes = 1_048_576;
  await using store = new InfluxLogStore({ url, database: s.db, maxLineBytes });
  await store.prepare();
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const lengths = Array.from({ length: 10_000 }, (_, i) => {
    if (i < 256) return 1 + (i % 7); // short lines starting with each byte value
    if (i % 100 === 0) return Math.floor(Math.exp(rand() * Math.log(maxLineBytes)));
    return Math.floor(rand() * 300);
  });
  lengths[1] = maxLineBytes;
  lengths[2] = maxLineBytes + 5000; // longer than the store keeps
  lengths[3] = 70_000;
  const entries: LogEntry[] = lengths.map((len, i) => {
    const bytes = new Uint8Array(len);
    if (i % 2 === 0) {
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(rand() * 256);
      if (i < 256 && len > 0) bytes[0] = i;
    } else {
      // Valid UTF-8 from random code points, control characters and quotes included.
      const text: string[] = [];
      let n = 0;
      while (n < len) {
        const r = rand();
        const cp = r < 0.6
          ? Math.floor(rand() * 128)
          : r < 0.9
          ? 0x80 + Math.floor(rand() * 0x780)
          : 0x1f600 + Math.floor(rand() * 80);
        const ch = String.fromCodePoint(cp);
        n += new TextEncoder().encode(ch).length;
        text.push(ch);
      }
      bytes.set(new TextEncoder().encode(text.join("")).subarray(0, len));
    }
    return {
      ...entry({
        containerName: `rand-${i % 4}`,
        ts: at(Math.floor(i / 10), String(i % 10)),
        seq: 0,
      }),
      ...decodeLine(bytes),
    };
  });
  for (let i = 0; i < entries.length; i += 500) {
    await s.stream.append(s.logs, packEntries(entries.slice(i, i + 500)));
  }
  const consumer = new StreamConsumer(
    s.stream,
    (batch, ctx) => ingestBatch(batch, { store }, ctx),
    {
      stream: s.logs,
      group: "ingest",
      consumer: "t",
      deadLetterStream: s.dead,
      batch: 500,
      blockMs: 100,
    },
  );
  const ac = new AbortController();
  const running = consumer.run(ac.signal);
  try {
    await waitFor(
      () => consumer.counters.acked + consumer.counters.deadLettered >= entries.length,
      {
        timeoutMs: 120_000,
        what: "all entries settled",
      },
    );
  } finally {
    ac.abort();
    await running;
  }
  assert.equal(consumer.counters.deadLettered, 0);
  assert.equal(await countEntries(url, s.db), entries.length);
  const back = await _allRows(url, s.db, ["rand-0", "rand-1", "rand-2", "rand-3"]);
  const byTs = new Map(back.map((e) => [`${e.containerName} ${tsToNanoText(e.ts)}`, e]));
  let exact = 0;
  let truncated = 0;
  for (const e of entries) {
    const got = byTs.get(`${e.containerName} ${tsToNanoText(e.ts)}`);
    assert.ok(got, `row of ${e.ts}`);
    const want = lineBytes(e);
    const have = lineBytes(got);
    if (got.truncated) {
      truncated++;
      assert.ok(want.length > maxLineBytes, `only over-long lines are truncated (${want.length})`);
      assert.deepEqual(have, want.subarray(0, have.length), "a truncated line is a prefix");
    } else {
      exact++;
      assert.deepEqual(have, want, `line of ${e.ts} (${want.length} bytes)`);
    }
  }
  assert.equal(truncated, 1);
  assert.equal(exact, entries.length - 1);
});
