import assert from "node:assert/strict";
import { createMaskedLine, maskTokens } from "../../../shared/detector/mask.ts";
import { createPrng } from "../../../shared/detector/prng.ts";
import {
  TemplateMiner,
  type TemplateMinerOptions,
} from "../../../shared/detector/template_miner.ts";

/** Mine lines and return the template index of each after finish(). */
function mine(
  lines: string[],
  options: TemplateMinerOptions = { similarity: 0.5 },
): { miner: TemplateMiner; ids: number[] } {
  const miner = new TemplateMiner(options);
  const buf = createMaskedLine();
  const groups = lines.map((l) => {
    maskTokens(l, buf);
    return miner.add(buf.tokens, buf.count, buf.literals);
  });
  const index = miner.finish();
  return { miner, ids: groups.map((g) => index[g]!) };
}

function texts(lines: string[], options?: TemplateMinerOptions): string[] {
  const { miner, ids } = mine(lines, options);
  return ids.map((i) => miner.text(i));
}

Deno.test("TemplateMiner.add() groups lines that differ in variable tokens", () => {
  const { miner, ids } = mine([
    "session opened for user root by uid 0",
    "session opened for user alice by uid 1000",
    "session opened for user bob by uid 1001",
    "session opened for user carol by uid 1002",
    "disk full on /dev/sda1",
  ]);
  assert.equal(new Set(ids.slice(0, 4)).size, 1);
  assert.notEqual(ids[0], ids[4]);
  assert.equal(miner.text(ids[0]!), "session opened for user <*> by uid <*>");
  assert.equal(miner.templates[ids[0]!]!.count, 4);
});

Deno.test("TemplateMiner.finish() keeps a position with a few words as a constant", () => {
  const lines = [
    "instance 1 VM Started (Lifecycle Event)",
    "instance 2 VM Paused (Lifecycle Event)",
    "instance 3 VM Started (Lifecycle Event)",
    "instance 4 VM Stopped (Lifecycle Event)",
    "instance 5 VM Paused (Lifecycle Event)",
  ];
  const { miner, ids } = mine(lines, { similarity: 0.7 });
  assert.deepEqual(ids.map((i) => miner.text(i)), [
    "instance <*> VM Started (Lifecycle Event)",
    "instance <*> VM Paused (Lifecycle Event)",
    "instance <*> VM Started (Lifecycle Event)",
    "instance <*> VM Stopped (Lifecycle Event)",
    "instance <*> VM Paused (Lifecycle Event)",
  ]);
  assert.equal(miner.templates.length, 3);
  assert.deepEqual(miner.templates.map((t) => t.count), [2, 2, 1]);
  // Turned off, Drain's merge stands.
  assert.deepEqual(
    new Set(texts(lines, { similarity: 0.7, maxEnumValues: 0 })),
    new Set(["instance <*> VM <*> (Lifecycle Event)"]),
  );
});

Deno.test("TemplateMiner.finish() merges the groups of a position that proves variable", () => {
  const users = ["root", "admin", "root", "guest", "oracle", "admin", "test"];
  const { miner, ids } = mine(users.map((u) => `Invalid user ${u} from 10.0.0.1 port 22`), {
    similarity: 0.7,
  });
  assert.equal(new Set(ids).size, 1);
  assert.equal(miner.templates.length, 1);
  assert.equal(miner.text(ids[0]!), "Invalid user <*> from <*> port <*>");
  assert.equal(miner.templates[0]!.count, users.length);
});

Deno.test("TemplateMiner.finish() treats masked, dotted and slashed values as parameters", () => {
  const numbers = texts(["the job alpha done", "the job beta done", "the job 7 done"]);
  assert.deepEqual(new Set(numbers), new Set(["the job <*> done"]));
  const classes = texts([
    "loaded the class com.example.Alpha now",
    "loaded the class com.example.Beta now",
  ]);
  assert.deepEqual(new Set(classes), new Set(["loaded the class <*> now"]));
  const files = texts(["opened the file a/b now", "opened the file c/d now"]);
  assert.deepEqual(new Set(files), new Set(["opened the file <*> now"]));
});

Deno.test("TemplateMiner keeps a masked name at an enumerated position and matches it", () => {
  const lines = [
    "h1.example.com:80 open through proxy p.example.com:5070 HTTPS",
    "h2.example.com:443 open through proxy p.example.com:5070 HTTPS",
    "h3.example.com:80 open through proxy p.example.com:5070 SOCKS5",
  ];
  const { miner, ids } = mine(lines, { similarity: 0.7 });
  assert.equal(miner.text(ids[0]!), "<*> open through proxy <*> HTTPS");
  assert.equal(miner.text(ids[2]!), "<*> open through proxy <*> SOCKS5");
  const socks = maskTokens("h9.example.com:80 open through proxy p.example.com:5070 SOCKS5");
  assert.equal(miner.match(socks.tokens, socks.count, 0.7, socks.literals), ids[2]);
  const https = maskTokens("h9.example.com:80 open through proxy p.example.com:5070 HTTPS");
  assert.equal(miner.match(https.tokens, https.count, 0.7, https.literals), ids[0]);
});

Deno.test("TemplateMiner.text() writes a run of wildcards as one", () => {
  const { miner, ids } = mine([
    "conn close, 0 bytes sent, 12 bytes received, lifetime 00:01",
    "conn close, 3 bytes sent, 5 bytes received, lifetime 00:02",
    "conn close, 1190 bytes (1.16 KB) sent, 3442 bytes (3.36 KB) received, lifetime <1 sec",
    "conn close, 1200 bytes (1.17 KB) sent, 3500 bytes (3.41 KB) received, lifetime <1 sec",
  ], { similarity: 0.7 });
  // Different token counts, so different templates, with one text and id.
  assert.notEqual(ids[0], ids[2]);
  assert.equal(miner.text(ids[0]!), "conn close, <*> sent, <*> received, lifetime <*>");
  assert.equal(miner.text(ids[2]!), miner.text(ids[0]!));
  assert.equal(miner.id(ids[2]!), miner.id(ids[0]!));
});

Deno.test("TemplateMiner.id() is a stable content hash of the template", () => {
  const a = mine(["job 1 done", "job 2 done"]);
  const b = mine(["job 7 done"]);
  assert.equal(a.miner.id(a.ids[0]!), b.miner.id(b.ids[0]!));
  assert.match(a.miner.id(a.ids[0]!), /^[0-9a-f]{16}$/);
});

Deno.test("TemplateMiner.match() finds templates without changing them", () => {
  const { miner, ids } = mine(["worker 3 started", "worker 4 started"]);
  const buf = maskTokens("worker 9 started");
  assert.equal(miner.match(buf.tokens, buf.count), ids[0]);
  const other = maskTokens("completely different line here");
  assert.equal(miner.match(other.tokens, other.count), -1);
  assert.equal(miner.templates.length, 1);
});

Deno.test("TemplateMiner.add() goes on after finish() with stable indexes", () => {
  const { miner, ids } = mine(["the VM Started 1", "the VM Paused 2"], { similarity: 0.5 });
  const before = miner.templates.map((t) => t.tokens.join(" "));
  assert.deepEqual(before, ["the VM Started <*>", "the VM Paused <*>"]);
  const m = maskTokens("the VM Started 3");
  const group = miner.add(m.tokens, m.count, m.literals);
  assert.equal(miner.finish()[group], ids[0]);
  assert.deepEqual(miner.templates.map((t) => t.tokens.join(" ")), before);
  assert.equal(miner.templates[ids[0]!]!.count, 2);
});

Deno.test("TemplateMiner.restore() rebuilds the same routing", () => {
  const { miner } = mine(["a b c 1", "a b d 2", "x y 3", "the VM Started 1", "the VM Paused 2"]);
  const copy = new TemplateMiner();
  for (const t of miner.templates) copy.restore({ ...t, tokens: [...t.tokens] });
  for (const line of ["a b c 5", "the VM Paused 7", "the VM Started 8"]) {
    const buf = maskTokens(line);
    assert.equal(copy.match(buf.tokens, buf.count), miner.match(buf.tokens, buf.count), line);
  }
});

Deno.test("TemplateMiner rejects bad options", () => {
  assert.throws(() => new TemplateMiner({ similarity: 0 }), RangeError);
  assert.throws(() => new TemplateMiner({ maxChildren: 0 }), RangeError);
  assert.throws(() => new TemplateMiner({ maxEnumValues: -1 }), /maxEnumValues -1/);
  assert.throws(() => new TemplateMiner({ maxEnumValues: 1.5 }), RangeError);
  assert.throws(() => new TemplateMiner({ maxGroups: 0 }), /maxGroups 0/);
});

/** `n` lines of 40 constant words and `flags` independent on/off words. */
function flagLines(n: number, flags: number, seed: number): string[] {
  const prng = createPrng(seed);
  const out: string[] = [];
  const head = Array.from(
    { length: 40 },
    (_, c) => "w" + String.fromCharCode(97 + (c % 26), 97 + c % 7),
  );
  for (let i = 0; i < n; i++) {
    const words = head.slice();
    for (let k = 0; k < flags; k++) {
      words.push(prng.nextInt(2) ? "on" : "off");
    }
    out.push(words.join(" "));
  }
  return out;
}

Deno.test("TemplateMiner.finish() splits a template into at most maxGroups templates", () => {
  // 16 on/off flags: one template per combination would be tens of thousands.
  const lines = flagLines(20_000, 16, 1);
  const { miner, ids } = mine(lines, { similarity: 0.7 });
  assert.ok(miner.templates.length <= 8, `${miner.templates.length} templates, expected <= 8`);
  for (const [k, line] of lines.entries()) {
    const buf = maskTokens(line);
    assert.ok(miner.match(buf.tokens, buf.count, 0.7) >= 0, line);
    assert.ok(ids[k]! >= 0 && ids[k]! < miner.templates.length);
  }
  const small = mine(flagLines(2_000, 16, 2), { similarity: 0.7, maxGroups: 3 }).miner;
  assert.ok(small.templates.length <= 3, `${small.templates.length} templates, expected <= 3`);
  // Two flags, four combinations: under the cap, each stays its own template.
  const two = mine(flagLines(400, 2, 3), { similarity: 0.7 }).miner;
  assert.equal(two.templates.length, 4);
});

Deno.test("TemplateMiner.finish() splits a template into more groups than a spread can pass", () => {
  // Two enumerated columns of 400 and 500 words: 200,000 groups of one template.
  const word = (n: number): string => {
    let s = "";
    do {
      s += String.fromCharCode(97 + (n % 26));
      n = Math.floor(n / 26);
    } while (n > 0);
    return s;
  };
  const lines = Array.from(
    { length: 200_000 },
    (_, i) => `ev run ${word(i % 400)} ${word(Math.floor(i / 400))} end`,
  );
  const { miner, ids } = mine(lines, {
    similarity: 0.5,
    maxEnumValues: 1000,
    maxGroups: 1_000_000,
  });
  assert.equal(miner.templates.length, 200_000);
  assert.equal(miner.text(ids[12_345]!), lines[12_345]);
});
