import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { followFile } from "../../../../shared/sources/file/file_log_source.ts";
import { lineBytes, unpackEntries } from "../../../../shared/ports/log_entry.ts";
import { RedisLogStream } from "../../../../shared/adapters/redis/redis_log_stream.ts";
import { suiteEnv, waitFor } from "../../../harness/services.ts";

async function _lines(stream: RedisLogStream, name: string): Promise<string[]> {
  return (await stream.range(name)).flatMap((m) => unpackEntries(m.fields).map((e) => e.line));
}

Deno.test("followFile() follows a file like tail -F into the log stream", async (t) => {
  await using stream = RedisLogStream.connect(suiteEnv().redisUrl);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/app.log`;
  const name = `test:file:${crypto.randomUUID()}`;
  const containerName = `file:${crypto.randomUUID().slice(0, 8)}`;
  const follow = (signal: AbortSignal) =>
    followFile(path, stream, {
      stream: name,
      containerName,
      pollMs: 10,
      signal,
      maxLineBytes: 1024,
    });
  await Deno.writeTextFile(path, "one\ntwo\r\nthree");
  let stop = new AbortController();
  let run = follow(stop.signal);
  try {
    await t.step("complete lines only, CRLF stripped", async () => {
      await waitFor(async () => (await _lines(stream, name)).length === 2, { what: "two lines" });
      assert.deepEqual(await _lines(stream, name), ["one", "two"]);
    });
    await t.step("the rest of a line when it ends; new lines as they come", async () => {
      await Deno.writeTextFile(path, "-end\nfour\n", { append: true });
      await waitFor(async () => (await _lines(stream, name)).length === 4, { what: "four lines" });
      assert.deepEqual((await _lines(stream, name)).slice(2), ["three-end", "four"]);
    });
    await t.step("a restart resumes at its checkpoint: nothing lost, nothing twice", async () => {
      stop.abort();
      await run;
      await Deno.writeTextFile(path, "five\n", { append: true });
      stop = new AbortController();
      run = follow(stop.signal);
      await waitFor(async () => (await _lines(stream, name)).length === 5, { what: "five lines" });
      assert.deepEqual((await _lines(stream, name)).slice(4), ["five"]);
    });
    await t.step("rotation (a new file under the name) is read from its start", async () => {
      await Deno.rename(path, `${path}.1`);
      await Deno.writeTextFile(path, "rotated-1\nrotated-2\n");
      await waitFor(async () => (await _lines(stream, name)).length === 7, {
        what: "rotated lines",
      });
      assert.deepEqual((await _lines(stream, name)).slice(5), ["rotated-1", "rotated-2"]);
    });
    await t.step("truncation in place is read from the start", async () => {
      await Deno.writeTextFile(path, "t\n");
      await waitFor(async () => (await _lines(stream, name)).length === 8, {
        what: "truncated file",
      });
      assert.deepEqual((await _lines(stream, name)).slice(7), ["t"]);
    });
    await t.step("huge lines are cut and marked; invalid UTF-8 kept byte-exact", async () => {
      const bad = new Uint8Array([0x66, 0xff, 0xfe, 0x00, 0x67, 0x0a]);
      const f = await Deno.open(path, { append: true });
      await f.write(new TextEncoder().encode("x".repeat(5000) + "\n"));
      await f.write(bad);
      await f.write(new TextEncoder().encode("y".repeat(3000)));
      f.close();
      await waitFor(async () => (await _lines(stream, name)).length === 11, {
        what: "huge and bad lines",
      });
      const entries = (await stream.range(name)).flatMap((m) => unpackEntries(m.fields)).slice(8);
      assert.equal(entries[0]!.line.length, 1024);
      assert.equal(entries[0]!.truncated, true);
      assert.deepEqual(lineBytes(entries[1]!), bad.subarray(0, 5));
      assert.equal(entries[2]!.line, "y".repeat(1024));
      assert.equal(entries[2]!.truncated, true);
      await Deno.writeTextFile(path, "y".repeat(100) + "\nafter\n", { append: true });
      await waitFor(async () => (await _lines(stream, name)).length === 12, { what: "line after" });
      assert.equal(unpackEntries((await stream.range(name)).at(-1)!.fields).at(-1)!.line, "after");
    });
  } finally {
    stop.abort();
    await run;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("followFile() appends a stack trace as one entry; an open trace is read again after a restart", async (t) => {
  await using stream = RedisLogStream.connect(suiteEnv().redisUrl);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/worker.log`;
  const name = `test:file:${crypto.randomUUID()}`;
  const containerName = `file:${crypto.randomUUID().slice(0, 8)}`;
  const follow = (signal: AbortSignal, multilineFlushMs: number) =>
    followFile(path, stream, {
      stream: name,
      containerName,
      pollMs: 10,
      signal,
      multilineFlushMs,
    });
  const trace = [
    "ERROR job 7 failed",
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 42, in run',
    '  File "/app/handlers.py", line 17, in handle',
    "ValueError: bad input",
  ];
  await Deno.writeTextFile(path, ["INFO job 6 done", ...trace.slice(0, 3)].join("\n") + "\n");
  let stop = new AbortController();
  let run = follow(stop.signal, 60_000);
  try {
    await t.step("the lines before the open trace are written, the trace waits", async () => {
      await waitFor(async () => (await _lines(stream, name)).length === 1, {
        what: "the first line",
      });
      assert.deepEqual(await _lines(stream, name), ["INFO job 6 done"]);
      stop.abort();
      await run;
      assert.equal((await _lines(stream, name)).length, 1);
    });
    await t.step("after a restart the whole trace is one entry, every line once", async () => {
      await Deno.writeTextFile(path, [...trace.slice(3), "INFO job 8 done"].join("\n") + "\n", {
        append: true,
      });
      stop = new AbortController();
      run = follow(stop.signal, 200);
      await waitFor(async () => (await _lines(stream, name)).length === 3, {
        what: "three events",
      });
      assert.deepEqual(await _lines(stream, name), [
        "INFO job 6 done",
        trace.join("\n"),
        "INFO job 8 done",
      ]);
    });
  } finally {
    stop.abort();
    await run;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("followFile() reads the file again when the stream lost what it had confirmed", async () => {
  const { redisUrl } = suiteEnv();
  await using stream = RedisLogStream.connect(redisUrl);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/app.log`;
  const ns = `test:file:${crypto.randomUUID()}`;
  const name = `${ns}:logs`;
  const containerName = `file:${crypto.randomUUID().slice(0, 8)}`;
  const stop = new AbortController();
  await Deno.writeTextFile(path, "a\nb\n");
  const run = followFile(path, stream, {
    stream: name,
    containerName,
    pollMs: 10,
    signal: stop.signal,
    sequencePrefix: `${ns}:seq:`,
  });
  const redis = new Redis(redisUrl);
  try {
    // Lines, not messages: a packed message may hold both.
    await waitFor(async () => (await _lines(stream, name)).join(",") === "a,b", {
      what: "two lines",
    });
    // Redis loses the stream, the checkpoint and the append sequence (restarted empty).
    const keys = [...await redis.keys(`${ns}:*`), `tailwise:file:ckpt:${containerName}`];
    await redis.del(...keys);
    await Deno.writeTextFile(path, "c\n", { append: true });
    await waitFor(async () => (await _lines(stream, name)).join(",") === "a,b,c", {
      timeoutMs: 20_000,
      what: "every line of the file again, once",
    });
  } finally {
    stop.abort();
    await run;
    const keys = [...await redis.keys(`${ns}:*`), `tailwise:file:ckpt:${containerName}`];
    await redis.del(...keys);
    await redis.quit();
    await Deno.remove(dir, { recursive: true });
  }
});
