/**
 * `GET /context/:container`: a service's lines around a moment from the log
 * history (here the embedded SQLite store in a temp data dir), with the bearer
 * token, display-safe text beside the stored line, and 400s naming the bad value.
 *
 * @module
 */

import assert from "node:assert/strict";
import { SqliteLogStore } from "../../../shared/adapters/sqlite/sqlite_log_store.ts";
import type { LogEntry } from "../../../shared/ports/log_entry.ts";
import { apiFixture } from "./api_fixture.ts";

const BASE = Date.parse("2026-11-30T10:00:00Z");
const at = (s: number) => new Date(BASE + s * 1000).toISOString().replace(".000Z", ".000000000Z");

function _entry(i: number, line: string): LogEntry {
  return {
    containerId: "c".repeat(64),
    containerName: "web",
    image: "web:1",
    stream: "stdout",
    ts: at(i),
    seq: 0,
    line,
  };
}

Deno.test("GET /context/:container gives the lines around a moment, display-safe", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-context-" });
  const store = await SqliteLogStore.open(dataDir);
  try {
    await store.write([
      ...Array.from({ length: 10 }, (_, i) => _entry(i, `line ${i}`)),
      _entry(
        10,
        `upstream timed out <img src=x onerror=alert(1)> \u001b[31mred\u001b[0m \u202eevil`,
      ),
      ...Array.from({ length: 10 }, (_, i) => _entry(11 + i, `line ${11 + i}`)),
    ]);
    await using f = apiFixture({ context: (k, ts, o) => store.context(k, ts, o) });

    await t.step("before, at and after, each oldest first", async () => {
      const res = await f.call(`/context/web?ts=${encodeURIComponent(at(10))}&before=3&after=2`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.container, "web");
      assert.deepEqual(body.before.map((l: { line: string }) => l.line), [
        "line 7",
        "line 8",
        "line 9",
      ]);
      assert.deepEqual(body.after.map((l: { line: string }) => l.line), ["line 11", "line 12"]);
      assert.equal(body.at.length, 1);
      const [hit] = body.at;
      assert.equal(hit.ts, at(10));
      assert.equal(hit.stream, "stdout");
      assert.ok(hit.line.includes("\u001b[31m"), "line is the stored text");
      assert.equal(
        hit.display,
        "upstream timed out <img src=x onerror=alert(1)> red [U+202E]evil",
        "display has no escapes and shows the override",
      );
    });

    await t.step("defaults: 20 each side, as many as there are", async () => {
      const body = await (await f.call(`/context/web?ts=${encodeURIComponent(at(10))}`)).json();
      assert.equal(body.before.length, 10);
      assert.equal(body.after.length, 10);
    });

    await t.step("bad values are 400s naming them; no token is 401", async () => {
      for (
        const [q, re] of [
          ["", /ts: expected an RFC 3339 timestamp/],
          ["?ts=yesterday", /Cannot parse timestamp "yesterday"/],
          [
            `?ts=${encodeURIComponent(at(1))}&before=abc`,
            /before: expected an integer 0\.\.1000, got "abc"/,
          ],
          [
            `?ts=${encodeURIComponent(at(1))}&after=99999`,
            /after: expected an integer 0\.\.1000, got "99999"/,
          ],
          [
            `?ts=${encodeURIComponent(at(1))}&after=1001`,
            /after 1001; expected an integer 0\.\.1000/,
          ],
        ] as const
      ) {
        const res = await f.call(`/context/web${q}`);
        assert.equal(res.status, 400, q);
        assert.match((await res.json()).error, re);
      }
      const anon = await f.app.request(`/context/web?ts=${encodeURIComponent(at(1))}`);
      assert.equal(anon.status, 401);
      await anon.body?.cancel();
    });
  } finally {
    await store[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("GET /search/:container finds lines literally, newest first, and names bad values", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tailwise-search-" });
  const store = await SqliteLogStore.open(dataDir);
  try {
    await store.write([
      _entry(1, "upstream timed out (a)"),
      _entry(2, "GET / 200"),
      _entry(3, "Upstream Timed Out (b) \u001b[1m<b>x</b>"),
    ]);
    await using f = apiFixture({ search: (k, q, o) => store.search(k, q, o) });
    const res = await f.call(`/search/web?q=${encodeURIComponent("timed OUT")}&from=${at(0)}`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body.lines.map((l: { display: string }) => l.display), [
      "Upstream Timed Out (b) <b>x</b>",
      "upstream timed out (a)",
    ]);
    const limited = await (await f.call("/search/web?q=timed&limit=1")).json();
    assert.equal(limited.lines.length, 1);
    for (
      const [q, re] of [
        ["", /query of 0 characters/],
        ["?q=x&limit=0", /limit 0; expected an integer 1\.\.1000/],
        ["?q=x&limit=abc", /limit: expected an integer 1\.\.1000, got "abc"/],
        ["?q=x&from=yesterday", /from: expected ISO 8601 or ms since the epoch, got "yesterday"/],
      ] as const
    ) {
      const bad = await f.call(`/search/web${q}`);
      assert.equal(bad.status, 400, q);
      assert.match((await bad.json()).error, re);
    }
  } finally {
    await store[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("GET /context/:container without a log history is 503", async () => {
  await using f = apiFixture();
  const res = await f.call(`/context/web?ts=${encodeURIComponent(at(0))}`);
  assert.equal(res.status, 503);
  assert.match((await res.json()).error, /no log history/);
});
