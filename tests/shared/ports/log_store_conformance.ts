/**
 * The conformance suite of the {@linkcode LogStore} port: one set of tests
 * that every adapter (InfluxDB, embedded) must pass. Call
 * {@linkcode logStoreConformance} from an adapter's test file with a factory
 * of fresh, prepared stores; each test uses its own random container names.
 *
 * Entries are compared by their meaning, not their spelling: the time as
 * nanoseconds (InfluxDB writes RFC 3339 its own way) and the line as bytes.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  decodeLine,
  lineBytes,
  type LogEntry,
  modelKey,
  tsToNanos,
} from "../../../shared/ports/log_entry.ts";
import type { LogStore } from "../../../shared/ports/log_store.ts";

/** Options of {@linkcode logStoreConformance}. */
export interface LogStoreConformanceOptions {
  /**
   * Extra `Deno.test` options.
   * @default {}
   */
  testOptions?: Omit<Deno.TestDefinition, "name" | "fn">;
}

/**
 * Registers the conformance tests of the log store port for one adapter.
 *
 * @param adapter the adapter's name, shown in test names
 * @param create makes a fresh store (prepared); the suite disposes it
 * @param options extra test options
 */
export function logStoreConformance(
  adapter: string,
  create: () => Promise<LogStore> | LogStore,
  options: LogStoreConformanceOptions = {},
): void {
  const test = (name: string, fn: (store: LogStore) => Promise<void>) => {
    Deno.test({
      ...options.testOptions,
      name: `${adapter}: LogStore ${name}`,
      fn: async () => {
        await using store = await create();
        await fn(store);
      },
    });
  };
  const name = (what: string) => `${what}-${crypto.randomUUID().slice(0, 8)}.1.x`;
  // Two hours ago, on a whole second, so that windows below stay in the past.
  const base = Math.floor((Date.now() - 2 * 3_600_000) / 1000) * 1000;
  const at = (ms: number, nanos = 0) =>
    `${new Date(base + ms).toISOString().slice(0, 19)}.${
      String(((base + ms) % 1000) * 1_000_000 + nanos).padStart(9, "0")
    }Z`;
  const entry = (container: string, ms: number, line: string, more: Partial<LogEntry> = {}) =>
    ({
      containerId: `${container}-id`.padEnd(64, "0"),
      containerName: container,
      image: "nginx:1.27",
      stream: "stdout",
      ts: at(ms),
      seq: 0,
      line,
      ...more,
    }) satisfies LogEntry as LogEntry;

  test("write() then history() gives every entry back, byte-exact, oldest first", async (store) => {
    const c = name("web");
    const bad = decodeLine(new Uint8Array([0x61, 0xff, 0x00, 0xc3, 0x28, 0x62]));
    const entries: LogEntry[] = [
      entry(c, 3000, "third"),
      entry(c, 1000, 'GET /a?b=1 "x"\t\\ é 🙂 \u0000 <script>', {
        service: "shop_web",
        task: "t1",
        node: "n1",
      }),
      entry(c, 2000, bad.line, { raw: bad.raw, stream: "stderr" }),
      entry(c, 2500, "cut here", { truncated: true }),
      entry(c, 4000, ""),
    ];
    const result = await store.write(entries);
    assert.equal(result.written, entries.length);
    assert.equal(result.rejected.size, 0);
    const got = await _collect(store.history(c));
    assert.deepEqual(got.map(_norm), [1, 2, 3, 0, 4].map((i) => _norm(entries[i]!)));
    assert.deepEqual(lineBytes(got[1]!), new Uint8Array([0x61, 0xff, 0x00, 0xc3, 0x28, 0x62]));
  });

  test("write() keeps a long line whole", async (store) => {
    const c = name("long");
    const line = "x".repeat(70_000) + "é".repeat(20_000) + "end";
    await store.write([entry(c, 1000, line)]);
    const [got] = await _collect(store.history(c));
    assert.equal(got?.line.length, line.length);
    assert.equal(got?.line, line);
    assert.equal(got?.truncated, undefined);
  });

  test("write() is idempotent, and distinct entries at one time never replace each other", async (store) => {
    const c = name("api");
    const batch = [
      entry(c, 1000, "a0"),
      entry(c, 1000, "a1", { seq: 1 }),
      entry(c, 1000, "a-err", { stream: "stderr" }),
      entry(c, 2000, "b"),
    ];
    await store.write(batch);
    const replay = await store.write([...batch.slice(1), entry(c, 3000, "c")]);
    assert.equal(replay.rejected.size, 0);
    const got = await _collect(store.history(c));
    assert.deepEqual(
      got.map((e) => e.line).sort(),
      ["a-err", "a0", "a1", "b", "c"],
      "one copy of each",
    );
    const times = got.map((e) => tsToNanos(e.ts));
    assert.deepEqual([...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), times);
    const counts = await store.containers({ since: new Date(base) });
    assert.deepEqual(counts.find((x) => x.container === c), {
      container: c,
      count: 5,
      containers: [c],
    });
  });

  test("history() honours from (inclusive), to (exclusive) and limit", async (store) => {
    const c = name("db");
    await store.write(
      Array.from({ length: 20 }, (_, i) => entry(c, i * 60_000, `m${i}`)),
    );
    const window = await _collect(store.history(c, {
      from: new Date(base + 5 * 60_000),
      to: new Date(base + 10 * 60_000),
    }));
    assert.deepEqual(window.map((e) => e.line), ["m5", "m6", "m7", "m8", "m9"]);
    const firstThree = await _collect(store.history(c, { limit: 3 }));
    assert.deepEqual(firstThree.map((e) => e.line), ["m0", "m1", "m2"]);
    const late = await _collect(store.history(c, { from: new Date(base + 18 * 60_000) }));
    assert.deepEqual(late.map((e) => e.line), ["m18", "m19"]);
    assert.deepEqual(await _collect(store.history(c, { limit: 0 })), []);
  });

  test("history() streams many entries across hours in order, and can stop early", async (store) => {
    const c = name("busy");
    const n = 12_000;
    const entries = Array.from(
      { length: n },
      (_, i) => entry(c, i * 500, `line ${i}`, { stream: i % 7 === 0 ? "stderr" : "stdout" }),
    );
    for (let i = 0; i < n; i += 4000) await store.write(entries.slice(i, i + 4000));
    let count = 0;
    let last = -1n;
    for await (const e of store.history(c)) {
      const ns = tsToNanos(e.ts);
      assert.ok(ns >= last, "time never goes back");
      last = ns;
      count++;
    }
    assert.equal(count, n);
    let seen = 0;
    for await (const _ of store.history(c)) if (++seen === 10) break;
    assert.equal(seen, 10);
  });

  test("history() keeps containers apart and yields nothing for an unknown one", async (store) => {
    const a = name("a");
    const b = name("b");
    await store.write([entry(a, 1000, "from a"), entry(b, 1000, "from b")]);
    assert.deepEqual((await _collect(store.history(a))).map((e) => e.line), ["from a"]);
    assert.deepEqual((await _collect(store.history(b))).map((e) => e.containerName), [b]);
    assert.deepEqual(await _collect(store.history(name("nobody"))), []);
  });

  test("containers() counts each container's entries since a time", async (store) => {
    const a = name("a");
    const b = name("b");
    await store.write([
      entry(a, 1000, "old"),
      entry(a, 30 * 60_000, "new 1"),
      entry(a, 31 * 60_000, "new 2"),
      entry(b, 90 * 60_000, "b"),
    ]);
    const since = await store.containers({ since: new Date(base + 10 * 60_000) });
    const mine = since.filter((x) => x.container === a || x.container === b);
    assert.deepEqual(
      mine,
      [{ container: a, count: 2, containers: [a] }, { container: b, count: 1, containers: [b] }]
        .sort((x, y) => x.container < y.container ? -1 : 1),
    );
    const later = await store.containers({ since: new Date(base + 60 * 60_000) });
    assert.equal(later.find((x) => x.container === a), undefined);
    const names = since.map((x) => x.container);
    assert.deepEqual([...names].sort(), names, "sorted by name");
  });

  test("history() of a service key gives the entries of every container behind it, and of older entries under that name", async (store) => {
    const key = name("shop_web").replace(/\.1\.x$/, "");
    const r1 = `${key}.1.aaa`;
    const r2 = `${key}.2.bbb`;
    const written = [
      // Written before service keys: no key, under the container's own name.
      entry(key, 500, "legacy line"),
      entry(r1, 1000, "replica one", { key, service: key, task: "aaa" }),
      // The same nanosecond in two replicas: both kept.
      entry(r2, 1000, "replica two", { key, service: key, task: "bbb" }),
      entry(r2, 2000, "replica two again", { key }),
    ];
    await store.write(written);
    await store.write(written.slice(1, 3)); // a replay adds nothing
    const got = await _collect(store.history(key));
    assert.deepEqual(
      got.map((e) => [e.containerName, e.line]).sort(),
      [
        [key, "legacy line"],
        [r1, "replica one"],
        [r2, "replica two"],
        [r2, "replica two again"],
      ].sort(),
    );
    assert.deepEqual(got.map((e) => modelKey(e)), [key, key, key, key]);
    assert.equal(got.find((e) => e.containerName === r1)?.task, "aaa");
    assert.deepEqual(await _collect(store.history(r1)), [], "a replica has no history of its own");
    const counts = await store.containers({ since: new Date(base) });
    assert.deepEqual(counts.find((x) => x.container === key), {
      container: key,
      count: 4,
      containers: [key, r1, r2].sort(),
    });
    assert.equal(counts.find((x) => x.container === r1), undefined);
  });

  test("context() gives a key's closest lines before, at and after a moment, oldest first", async (store) => {
    const key = name("shop_api").replace(/\.1\.x$/, "");
    const r1 = `${key}.1.aaa`;
    const other = name("other");
    const written: LogEntry[] = [];
    for (let i = 0; i < 30; i++) {
      // The first ten from before service keys (under the key's name), then a replica's.
      written.push(
        i < 10 ? entry(key, i * 100, `line ${i}`) : entry(r1, i * 100, `line ${i}`, { key }),
      );
      written.push(entry(other, i * 100 + 50, `other ${i}`));
    }
    // A second line at the moment itself, from another replica.
    written.push(entry(`${key}.2.bbb`, 1500, "twin <b>\u202e", { key, seq: 1 }));
    await store.write(written);
    const lines = (es: LogEntry[]) => es.map((e) => e.line);

    const ctx = await store.context(key, at(1500), { before: 5, after: 3 });
    assert.deepEqual(lines(ctx.before), ["line 10", "line 11", "line 12", "line 13", "line 14"]);
    assert.deepEqual(lines(ctx.at).sort(), ["line 15", "twin <b>\u202e"]);
    assert.deepEqual(lines(ctx.after), ["line 16", "line 17", "line 18"]);
    assert.deepEqual(ctx.before.map((e) => modelKey(e)), [key, key, key, key, key]);
    assert.equal(ctx.before[0]!.containerName, r1);
    assert.equal(tsToNanos(ctx.after[0]!.ts), tsToNanos(at(1600)));

    // Across the service-key boundary, and the defaults (20 each side).
    const wide = await store.context(key, at(1000));
    assert.deepEqual(lines(wide.before), Array.from({ length: 10 }, (_, i) => `line ${i}`));
    assert.deepEqual(lines(wide.at), ["line 10"]);
    assert.equal(wide.after.length, 20);
    assert.equal(wide.after.at(-1)!.line, "line 29", "the twin line counts too");

    // A moment between lines: nothing at it.
    const between = await store.context(key, at(1550), { before: 2, after: 1 });
    assert.deepEqual(lines(between.before).sort(), ["line 15", "twin <b>\u202e"]);
    assert.deepEqual(between.at, []);
    assert.deepEqual(lines(between.after), ["line 16"]);

    // The edges, zero counts, an unknown key.
    const first = await store.context(key, at(0), { before: 5, after: 0 });
    assert.deepEqual([first.before, lines(first.at), first.after], [[], ["line 0"], []]);
    assert.deepEqual(await store.context(name("nobody"), at(0)), { before: [], at: [], after: [] });
  });

  test("context() refuses a bad timestamp or count, naming it", async (store) => {
    await assert.rejects(
      () => store.context("x", "yesterday"),
      /Cannot parse timestamp "yesterday"/,
    );
    await assert.rejects(
      () => store.context("x", at(0), { before: -1 }),
      /before -1; expected an integer 0\.\.1000/,
    );
    await assert.rejects(
      () => store.context("x", at(0), { after: 1001 }),
      /after 1001; expected an integer 0\.\.1000/,
    );
  });

  test("search() finds a key's lines containing a text, literally, any ASCII case, newest first", async (store) => {
    const key = name("shop_pay").replace(/\.1\.x$/, "");
    const r1 = `${key}.1.aaa`;
    const other = name("other");
    await store.write([
      entry(key, 100, "upstream timed out while reading"),
      entry(r1, 200, "GET /pay 200 upstream ok", { key }),
      entry(r1, 300, "UPSTREAM TIMED OUT (110)", { key }),
      entry(r1, 400, "literal a.b/c(d)*[e]+%_\\ ^$| end", { key }),
      entry(r1, 500, "axb/c(d)*[e]+X_\\ ^$| end", { key }),
      entry(r1, 600, "upstream timed out <script>\u202e", { key }),
      entry(other, 350, "upstream timed out elsewhere"),
    ]);
    const lines = (es: LogEntry[]) => es.map((e) => e.line);
    assert.deepEqual(lines(await store.search(key, "Upstream timed OUT")), [
      "upstream timed out <script>\u202e",
      "UPSTREAM TIMED OUT (110)",
      "upstream timed out while reading",
    ]);
    assert.deepEqual(lines(await store.search(key, "timed out", { limit: 1 })), [
      "upstream timed out <script>\u202e",
    ]);
    assert.deepEqual(
      lines(
        await store.search(key, "timed out", {
          from: new Date(base + 150),
          to: new Date(base + 600),
        }),
      ),
      ["UPSTREAM TIMED OUT (110)"],
    );
    // Regex and LIKE metacharacters are plain text.
    assert.deepEqual(lines(await store.search(key, "a.b/c(d)*[e]+%_\\ ^$|")), [
      "literal a.b/c(d)*[e]+%_\\ ^$| end",
    ]);
    assert.deepEqual(await store.search(key, ".*"), []);
    assert.deepEqual(await store.search(key, "timed%out"), [], "% is not a wildcard");
    assert.deepEqual(await store.search(key, "timed_out"), [], "_ is not a wildcard");
    // A long line (several stored parts on InfluxDB), matched near its end, comes back whole.
    const long = `head ${"x".repeat(150_000)} tail-needle`;
    await store.write([entry(r1, 700, long, { key })]);
    const found = await store.search(key, "TAIL-needle");
    assert.equal(found.length, 1);
    assert.equal(found[0]!.line, long);
    const [hit] = await store.search(key, "GET /pay");
    assert.equal(hit!.containerName, r1);
    assert.equal(modelKey(hit!), key);
    assert.deepEqual(await store.search(name("nobody"), "x"), []);
  });

  test("search() refuses an empty, long or control-character query and a bad limit", async (store) => {
    await assert.rejects(() => store.search("x", ""), /query of 0 characters; expected 1\.\.200/);
    await assert.rejects(() => store.search("x", "a".repeat(201)), /query of 201 characters/);
    await assert.rejects(() => store.search("x", "a\nb"), /control characters/);
    await assert.rejects(
      () => store.search("x", "a", { limit: 0 }),
      /limit 0; expected an integer 1\.\.1000/,
    );
  });

  test("write() with an aborted signal rejects with its reason", async (store) => {
    const ctl = new AbortController();
    const reason = new Error("stop");
    ctl.abort(reason);
    await assert.rejects(
      () => store.write([entry(name("x"), 1000, "x")], { signal: ctl.signal }),
      (e: unknown) => e === reason,
    );
  });

  test("ping() answers true", async (store) => {
    assert.equal(await store.ping(), true);
  });
}

async function _collect(it: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

/** An entry by meaning: the time as nanoseconds, the line as bytes, absent = empty. */
function _norm(e: LogEntry): Record<string, unknown> {
  return {
    containerId: e.containerId,
    containerName: e.containerName,
    image: e.image,
    service: e.service ?? "",
    task: e.task ?? "",
    node: e.node ?? "",
    stream: e.stream,
    ns: tsToNanos(e.ts).toString(),
    seq: e.seq,
    line: e.line,
    bytes: Array.from(lineBytes(e)).join(","),
    raw: e.raw !== undefined,
    truncated: e.truncated === true,
  };
}
