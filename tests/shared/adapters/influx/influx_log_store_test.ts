import assert from "node:assert/strict";
import type { LogEntry } from "../../../../shared/ports/log_entry.ts";
import {
  InfluxLogStore,
  type InfluxLogStoreOptions,
} from "../../../../shared/adapters/influx/influx_log_store.ts";
import {
  InfluxAuthError,
  InfluxNotFoundError,
} from "../../../../shared/adapters/influx/influx_errors.ts";
import { startInflux, suiteEnv } from "../../../harness/services.ts";
import {
  at,
  BASE_MS,
  collect,
  countEntries,
  dropDatabase,
  entry,
  influxQuery,
  testDatabase,
} from "./influx_helpers.ts";

async function _withStore(
  fn: (store: InfluxLogStore, db: string, url: string) => Promise<void>,
  options: Partial<InfluxLogStoreOptions> = {},
): Promise<void> {
  const url = suiteEnv().influxUrl;
  const db = testDatabase();
  await using store = new InfluxLogStore({
    url,
    database: db,
    retentionPolicy: "tw",
    retentionMs: 7 * 86_400_000,
    ...options,
  });
  try {
    await store.prepare();
    await fn(store, db, url);
  } finally {
    await dropDatabase(url, db);
  }
}

function _strip(e: LogEntry): LogEntry {
  return JSON.parse(JSON.stringify({ ...e, raw: e.raw ? [...e.raw] : undefined }));
}

Deno.test("InfluxLogStore.prepare() creates the database and retention policy, and updates the duration", async () => {
  await _withStore(async (_store, db, url) => {
    const rps = await influxQuery(url, `SHOW RETENTION POLICIES ON "${db}"`);
    const tw = rps.find((r) => r.name === "tw");
    assert.equal(tw?.duration, "168h0m0s");
    const again = new InfluxLogStore({
      url,
      database: db,
      retentionPolicy: "tw",
      retentionMs: 2 * 86_400_000,
    });
    await again.prepare();
    await again.prepare();
    const after = await influxQuery(url, `SHOW RETENTION POLICIES ON "${db}"`);
    assert.equal(after.find((r) => r.name === "tw")?.duration, "48h0m0s");
    const other = new InfluxLogStore({ url, database: db, retentionPolicy: "other" });
    await other.prepare();
    const all = await influxQuery(url, `SHOW RETENTION POLICIES ON "${db}"`);
    assert.equal(all.find((r) => r.name === "other")?.duration, "0s", "0 keeps forever");
  });
});

Deno.test("InfluxLogStore keeps hard lines byte-exact and returns them in order", async () => {
  const hard: LogEntry[] = [
    entry({ line: "" }),
    entry({ ts: at(0, "123456789"), seq: 1, line: 'quotes " and \\ backslash \\' }),
    entry({ ts: at(0, "123456789"), seq: 2, line: "tabs\tand\nnewlines\r\n" }),
    entry({ ts: at(0, "12345679"), line: "spaces, commas=equals ,= " }),
    entry({ ts: at(1), line: "\\" }),
    entry({ ts: at(1, "5"), line: "unicode é 🙂 \u0000 \u2028", stream: "stderr" }),
    entry({
      ts: at(2),
      line: "bad \ufffd",
      raw: new Uint8Array([0x62, 0x61, 0x64, 0x20, 0xff, 0x00, 0x80]),
    }),
    entry({ ts: at(3), line: "x".repeat(300_000) }),
    entry({ ts: at(4), line: "é".repeat(70_000) }),
    entry({
      ts: at(5),
      line: "",
      raw: new Uint8Array(200_000).map((_, i) => (i * 7) % 256),
    }),
    entry({ ts: at(6), line: "cut at collect", truncated: true }),
    entry({
      ts: at(7),
      line: "swarm",
      service: "web",
      task: "t1",
      node: "n1",
    }),
  ];
  await _withStore(async (store, db, url) => {
    const result = await store.write(hard);
    assert.equal(result.rejected.size, 0, [...result.rejected.values()].join("; "));
    assert.equal(result.written, hard.length);
    assert.equal(await countEntries(url, db), hard.length);
    const back = await collect(store.history("web-1", { from: new Date(BASE_MS - 1000) }));
    const expected = hard.map((e) => e.raw ? { ...e, line: new TextDecoder().decode(e.raw) } : e);
    assert.equal(back.length, expected.length);
    for (let i = 0; i < back.length; i++) {
      assert.deepEqual(_strip(back[i]!), _strip(expected[i]!), `entry ${i}`);
    }
  }, { pageRows: 3 });
});

Deno.test("InfluxLogStore.write() is idempotent and never collapses lines that share a timestamp", async () => {
  const ts = at(0);
  const same = Array.from({ length: 50 }, (_, seq) => entry({ ts, seq, line: `line ${seq}` }));
  // A line 1 ns later with seq 0 must not meet seq 1 of the line before.
  const next = entry({ ts: at(0, "000000001"), line: "next ns" });
  const other = entry({ ts, containerName: "web-2", line: "other container" });
  const err = entry({ ts, stream: "stderr", line: "same ts, stderr" });
  await _withStore(async (store, db, url) => {
    await store.write([...same, next, other, err]);
    await store.write([...same, next, other, err]);
    await store.write(same.slice(10, 20));
    assert.equal(await countEntries(url, db), 53);
    const back = await collect(store.history("web-1"));
    assert.deepEqual(
      back.map((e) => e.line),
      ["same ts, stderr", ...same.map((e) => e.line), "next ns"],
    );
  });
});

Deno.test("InfluxLogStore.history() honours the window and the limit, page by page", async () => {
  const entries = Array.from({ length: 120 }, (_, i) =>
    entry({
      ts: at(Math.floor(i / 3)),
      seq: i % 3,
      line: `n${i}`,
    }));
  await _withStore(async (store) => {
    await store.write(entries);
    const window = await collect(store.history("web-1", {
      from: new Date(BASE_MS + 10_000),
      to: new Date(BASE_MS + 20_000),
    }));
    assert.deepEqual(window.map((e) => e.line), entries.slice(30, 60).map((e) => e.line));
    const capped = await collect(store.history("web-1", { limit: 7 }));
    assert.deepEqual(capped.map((e) => e.line), entries.slice(0, 7).map((e) => e.line));
    assert.deepEqual(await collect(store.history("nobody")), []);
    const counts = await store.containers({ since: new Date(BASE_MS + 30_000) });
    assert.deepEqual(counts, [{ container: "web-1", count: 30, containers: ["web-1"] }]);
  }, { pageRows: 4 });
});

Deno.test("InfluxLogStore escapes odd tag values so that queries still find them", async () => {
  const names = ["a b", "a,b", "a=b", "tail\\", "new\nline", "tab\tx", 'q"uote', "it's"];
  await _withStore(async (store) => {
    const r = await store.write(names.map((n, i) => entry({ containerName: n, seq: i, line: n })));
    assert.equal(r.rejected.size, 0, [...r.rejected.values()].join("; "));
    for (const n of names) {
      const back = await collect(store.history(n));
      assert.deepEqual(back.map((e) => e.line), [n], `container ${JSON.stringify(n)}`);
    }
  });
});

Deno.test("InfluxLogStore.write() rejects only the entries InfluxDB refuses (400, bisected)", async () => {
  await _withStore(async (store, db, url) => {
    // A field of another type in the same shard makes just the entries with a task refused.
    const conflict = `logs,container=web-1,stream=stdout task=1i ${BASE_MS}000000`;
    const res = await fetch(`${url}/write?db=${db}&rp=tw`, { method: "POST", body: conflict });
    assert.equal(res.status, 204, await res.text());
    const entries = Array.from(
      { length: 40 },
      (_, i) => entry({ ts: at(i), line: `l${i}` }),
    );
    entries[13] = { ...entries[13]!, task: "task-13" };
    entries[31] = { ...entries[31]!, task: "task-31" };
    entries.push(entry({ ts: "not a time" }));
    const result = await store.write(entries);
    assert.deepEqual([...result.rejected.keys()].sort((a, b) => a - b), [13, 31, 40]);
    assert.match(result.rejected.get(13)!.message, /refused the write \(400\).*conflict/);
    assert.match(result.rejected.get(40)!.message, /Cannot parse timestamp "not a time"/);
    assert.equal(result.written, 38);
    assert.equal(await countEntries(url, db), 38);
  });
});

Deno.test("InfluxLogStore splits writes by lines and bytes", async () => {
  await _withStore(async (store, db, url) => {
    const entries = Array.from(
      { length: 1000 },
      (_, i) => entry({ ts: new Date(BASE_MS + i).toISOString(), line: "y".repeat(i % 500) }),
    );
    const result = await store.write(entries);
    assert.equal(result.written, 1000);
    assert.equal(await countEntries(url, db), 1000);
  }, { batchLines: 97, batchBytes: 4096 });
});

Deno.test("InfluxLogStore gives InfluxAuthError and InfluxNotFoundError, naming what is expected", async () => {
  await using influx = await startInflux({ auth: true });
  const admin = `CREATE USER "admin" WITH PASSWORD 'secret-pw' WITH ALL PRIVILEGES`;
  await influxQuery(influx.url, admin);
  const bad = new InfluxLogStore({
    url: influx.url,
    database: "tw",
    username: "admin",
    password: "wrong",
  });
  await assert.rejects(() => bad.write([entry()]), (e: unknown) => {
    assert.ok(e instanceof InfluxAuthError);
    assert.equal(e.status, 401);
    assert.match(e.message, /expected INFLUX_USERNAME and INFLUX_PASSWORD/);
    assert.doesNotMatch(e.message, /wrong/);
    return true;
  });
  const none = new InfluxLogStore({ url: influx.url, database: "tw" });
  await assert.rejects(() => none.prepare(), InfluxAuthError);
  const good = new InfluxLogStore({
    url: influx.url,
    database: "missing",
    username: "admin",
    password: "secret-pw",
    createDatabase: false,
  });
  await assert.rejects(() => good.write([entry()]), (e: unknown) => {
    assert.ok(e instanceof InfluxNotFoundError);
    assert.match(e.message, /no database "missing"/);
    return true;
  });
  const creating = new InfluxLogStore({
    url: influx.url,
    database: "made",
    retentionPolicy: "tw",
    username: "admin",
    password: "secret-pw",
  });
  // Never prepared (or the database dropped while running): the write creates it.
  assert.equal((await creating.write([entry()])).written, 1);
  assert.equal((await collect(creating.history("web-1"))).length, 1);
});

Deno.test("InfluxLogStore rejects a URL that is not http(s)", () => {
  assert.throws(
    () => new InfluxLogStore({ url: "ftp://user:pw@x", database: "d" }),
    /Cannot use InfluxDB URL "ftp:\/\/user:\*\*\*@x\/?": expected an http\(s\) URL/,
  );
});

/** Runs `fn` with every POST body to `/write` recorded (as UTF-8 bytes) and still sent. */
async function _recordingWrites(fn: (bodies: Uint8Array[]) => Promise<void>): Promise<void> {
  const real = globalThis.fetch;
  const bodies: Uint8Array[] = [];
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const body = init?.body;
    if (String(input).includes("/write?") && body) {
      bodies.push(
        typeof body === "string"
          ? new TextEncoder().encode(body)
          : new Uint8Array(body as Uint8Array).slice(),
      );
    }
    return real(input, init);
  };
  try {
    await fn(bodies);
  } finally {
    globalThis.fetch = real;
  }
}

Deno.test("InfluxLogStore counts batchBytes in UTF-8: non-ASCII and multi-part lines near the cap stay within it and come back byte-exact", async () => {
  // 2-, 3- and 4-byte characters, quotes and backslashes (escaped, so longer
  // on the wire), lines split into parts of at most 64 bytes, lines whose
  // characters fit the cap but whose bytes do not, and one bad timestamp.
  const pieces = ["é", "中", "🙂", '"', "\\", "a", " ", "\n"];
  const entries: LogEntry[] = [];
  for (let i = 0; i < 240; i++) {
    const len = (i * 37) % 400;
    let line = "";
    for (let k = 0; k < len; k++) line += pieces[(i + k * 5) % pieces.length]!;
    entries.push(entry({ ts: at(i), line, seq: i % 3, stream: i % 2 ? "stderr" : "stdout" }));
  }
  entries[100] = entry({ ts: "not a time", line: "中".repeat(50) });
  await _withStore(async (store, db, url) => {
    await _recordingWrites(async (bodies) => {
      const result = await store.write(entries);
      assert.deepEqual([...result.rejected.keys()], [100]);
      assert.equal(result.written, entries.length - 1);
      assert.ok(bodies.length > 10, `${bodies.length} writes`);
      let points = 0;
      for (const b of bodies) {
        // Each entry here is under 4 KiB, so every request is within the cap.
        assert.ok(b.length <= 4096, `a write of ${b.length} bytes`);
        assert.notEqual(b[b.length - 1], 0x0a, "no trailing newline");
        // Points are whole: every one ends with its timestamp.
        for (const point of new TextDecoder().decode(b).split(/\n(?=logs,)/)) {
          assert.match(point, / \d{19}$/);
          points++;
        }
      }
      const parts = await influxQuery(url, `SELECT count("part") FROM "logs"`, db);
      assert.equal(points, entries.length - 1 + Number(parts[0]?.count ?? 0));
      assert.ok(Number(parts[0]?.count ?? 0) > 100, "lines were split into parts");
    });
    assert.equal(await countEntries(url, db), entries.length - 1);
    const back = await collect(store.history("web-1", { from: new Date(BASE_MS - 1000) }));
    const expected = entries.filter((_, i) => i !== 100);
    assert.equal(back.length, expected.length);
    for (let i = 0; i < back.length; i++) {
      assert.deepEqual(_strip(back[i]!), _strip(expected[i]!), `entry ${i}`);
    }
  }, { batchLines: 1000, batchBytes: 4096, maxFieldBytes: 64 });
});

Deno.test("InfluxLogStore writes an entry larger than batchBytes alone, between full batches", async () => {
  const entries = Array.from(
    { length: 30 },
    (_, i) => entry({ ts: at(i), line: `é${i}`.repeat(60) }),
  );
  // About 9 KB of UTF-8 in 3,000 UTF-16 units, split into parts.
  entries[17] = entry({ ts: at(17), line: "中".repeat(3000) });
  await _withStore(async (store) => {
    await _recordingWrites(async (bodies) => {
      const result = await store.write(entries);
      assert.equal(result.rejected.size, 0, [...result.rejected.values()].join("; "));
      assert.equal(result.written, entries.length);
      const big = bodies.filter((b) => b.length > 4096);
      assert.equal(big.length, 1);
      assert.equal(new TextDecoder().decode(big[0]).split("\n").length, 3, "its 3 parts alone");
    });
    const back = await collect(store.history("web-1", { from: new Date(BASE_MS - 1000) }));
    assert.deepEqual(back.map((e) => e.line), entries.map((e) => e.line));
  }, { batchBytes: 4096, maxFieldBytes: 4000 });
});
