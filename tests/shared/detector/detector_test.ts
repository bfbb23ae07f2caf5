import assert from "node:assert/strict";
import {
  Detector,
  MODEL_FORMAT_VERSION,
  ModelFormatError,
  trainDetector,
} from "../../../shared/detector/detector.ts";
import { crc32 } from "../../../shared/detector/crc32.ts";
import { DIMENSIONS, FEATURE, FeatureModel } from "../../../shared/detector/feature_model.ts";
import { maskTokens } from "../../../shared/detector/mask.ts";
import { TemplateMiner } from "../../../shared/detector/template_miner.ts";
import { TokenSet } from "../../../shared/detector/token_set.ts";
import { createPrng } from "../../../shared/detector/prng.ts";

const FIXTURE = new URL("../../fixtures/hdfs_sample.log", import.meta.url);

async function fixtureLines(): Promise<string[]> {
  return (await Deno.readTextFile(FIXTURE)).split(/\r?\n/).filter((l) => l.length > 0);
}

function webLines(n: number, seed: number): string[] {
  const prng = createPrng(seed);
  const paths = ["/", "/login", "/api/items", "/api/cart", "/static/app.js"];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const path = paths[prng.nextInt(paths.length)]!;
    const ms = Math.round(5 + prng.next() * 40);
    out.push(
      `2024-05-0${1 + prng.nextInt(9)}T10:00:${10 + prng.nextInt(50)}Z INFO http GET ${path} ` +
        `status=200 duration=${ms}ms ip=10.0.${prng.nextInt(255)}.${prng.nextInt(255)}`,
    );
    if (i % 50 === 0) out.push(`2024-05-01T10:00:00Z INFO cache refreshed entries=${1000 + i}`);
  }
  return out;
}

Deno.test("trainDetector() flags a new error and keeps normal lines quiet", async () => {
  const lines = webLines(3000, 1);
  const detector = await trainDetector(lines);
  const normal = detector.scoreBatch(webLines(500, 2));
  const flagged = normal.filter((s) => s.anomaly).length;
  assert.ok(flagged <= 10, `${flagged} of 500 normal lines flagged`);
  const bad = detector.score("2024-05-01T10:00:00Z FATAL db connection pool exhausted after 30s");
  assert.equal(bad.anomaly, true);
  assert.ok(bad.reasons.includes("new_template"));
  assert.ok(bad.reasons.includes("severity"));
  assert.ok(bad.tokens.includes("FATAL"));
  assert.ok(bad.score > bad.threshold && bad.score <= 1);
});

Deno.test("Detector.score() reports unseen tokens and unusual values", async () => {
  const detector = await trainDetector(webLines(3000, 3));
  const slow = detector.score(
    "2024-05-02T10:00:11Z INFO http GET /api/items status=200 duration=90000ms ip=10.0.1.2",
  );
  assert.equal(slow.anomaly, true);
  assert.ok(slow.reasons.includes("unusual_value"), slow.reasons.join());
  const odd = detector.score(
    "2024-05-02T10:00:11Z INFO http DELETE /api/items status=200 duration=12ms ip=10.0.1.2",
  );
  assert.ok(odd.score > detector.score(webLines(1, 4)[0]!).score);
  assert.ok(odd.anomaly === false || odd.reasons.includes("unseen_tokens"));
});

Deno.test("Detector.score() parses JSON-structured lines", async () => {
  const lines: string[] = [];
  for (let i = 0; i < 2000; i++) {
    lines.push(JSON.stringify({ time: `t${i}`, level: "info", msg: "request done", ms: i % 40 }));
  }
  const detector = await trainDetector(lines);
  const ok = detector.score(
    JSON.stringify({ time: "x", level: "info", msg: "request done", ms: 7 }),
  );
  assert.equal(ok.anomaly, false);
  assert.match(ok.template, /^INFO request done ms=<\*>$/);
  const bad = detector.score(
    JSON.stringify({ time: "x", level: "error", msg: "request done", ms: 7 }),
  );
  assert.equal(bad.anomaly, true);
  assert.ok(bad.reasons.includes("severity") || bad.reasons.includes("unseen_tokens"));
});

Deno.test("trainDetector() calibrates the threshold to the alert rate", async () => {
  const lines = await fixtureLines();
  for (const alertRate of [0.01, 0.05]) {
    const detector = await trainDetector(lines, { alertRate });
    const flagged = detector.scoreBatch(lines).filter((s) => s.anomaly).length;
    assert.ok(flagged <= Math.ceil(alertRate * lines.length), `${flagged} at ${alertRate}`);
    assert.ok(detector.info.threshold > 0 && detector.info.threshold < 1);
  }
});

Deno.test("trainDetector() is deterministic for a seed", async () => {
  const lines = await fixtureLines();
  const a = await trainDetector(lines, { seed: 11 });
  const b = await trainDetector(lines, { seed: 11 });
  assert.deepEqual(a.toBytes(), b.toBytes());
  const c = await trainDetector(lines, { seed: 12 });
  assert.notDeepEqual(a.toBytes(), c.toBytes());
});

Deno.test("trainDetector() accepts async iterables and reports progress", async () => {
  async function* gen(): AsyncGenerator<string> {
    for (const l of webLines(9000, 5)) yield l;
  }
  const seen: number[] = [];
  const detector = await trainDetector(gen(), { onProgress: (done) => seen.push(done) });
  assert.ok(detector.info.trainedLines > 9000);
  assert.equal(seen.at(-1), detector.info.trainedLines);
});

Deno.test("trainDetector() rejects empty input and bad options", async () => {
  await assert.rejects(() => trainDetector([]), RangeError);
  await assert.rejects(() => trainDetector(["a"], { alertRate: 0 }), RangeError);
  await assert.rejects(() => trainDetector(["a"], { trees: 0 }), RangeError);
});

Deno.test("Detector.toBytes() round-trips through fromBytes()", async () => {
  const lines = await fixtureLines();
  const detector = await trainDetector(lines);
  const bytes = detector.toBytes();
  const back = Detector.fromBytes(bytes);
  assert.deepEqual(back.info, detector.info);
  assert.equal(back.info.version, MODEL_FORMAT_VERSION);
  for (const line of [...lines.slice(0, 50), "kernel panic", ""]) {
    assert.deepEqual(back.score(line), detector.score(line));
  }
  assert.deepEqual(back.toBytes(), bytes);
});

Deno.test("Detector.fromBytes() throws ModelFormatError on a corrupt blob", async () => {
  const bytes = (await trainDetector(await fixtureLines())).toBytes();
  const flipped = bytes.slice();
  flipped[Math.floor(bytes.length / 2)]! ^= 0xff;
  assert.throws(() => Detector.fromBytes(flipped), ModelFormatError);
  assert.throws(() => Detector.fromBytes(bytes.subarray(0, 100)), ModelFormatError);
  assert.throws(() => Detector.fromBytes(new Uint8Array(3)), ModelFormatError);
  const future = bytes.slice();
  future[4] = 99;
  assert.throws(() => Detector.fromBytes(future), /format version 99/);
  assert.throws(() => Detector.fromBytes(new TextEncoder().encode("{}".repeat(20))), /magic/);
});

Deno.test("Detector.fromBytes() rejects a version 1 blob: mined by an older miner, retrain", async () => {
  const lines = await fixtureLines();
  // A version 1 blob has the layout of version 2: patch the version byte and
  // the checksum, so that only the version is wrong.
  const v1 = (await trainDetector(lines)).toBytes().slice();
  v1[4] = 1;
  new DataView(v1.buffer).setUint32(v1.length - 4, crc32(v1, 0, v1.length - 4), true);
  assert.equal(MODEL_FORMAT_VERSION, 3);
  assert.throws(() => Detector.fromBytes(v1), (err: unknown) => {
    assert.ok(err instanceof ModelFormatError);
    assert.equal(err.name, "ModelFormatError");
    assert.match(err.message, /format version 1/);
    assert.match(err.message, /older detector/);
    assert.match(err.message, /must be retrained/);
    assert.match(err.message, /deno task cli train/);
    return true;
  });
});

Deno.test("Detector scores a line with a lone surrogate alike trained and loaded", async () => {
  const odd = [
    "\ud800\udfff\ud800 bad",
    "disk \udc00 full",
    '{"level":"error","msg":"x \\ud800 y"}',
  ];
  const lines = [...(await fixtureLines()), ...odd, ...odd];
  const detector = await trainDetector(lines, { seed: 2 });
  const back = Detector.fromBytes(detector.toBytes());
  for (const line of odd) {
    const trained = detector.score(line);
    const loaded = back.score(line);
    assert.equal(loaded.template, trained.template, line);
    assert.equal(loaded.score, trained.score, line);
    assert.deepEqual(loaded, trained);
    assert.ok(!trained.reasons.includes("new_template"), line);
    assert.ok(trained.template.isWellFormed(), trained.template);
  }
  // The paired surrogates stay; the lone one reads as U+FFFD.
  assert.equal(back.score("\ud800\udfff\ud800 bad").template, "\ud800\udfff\ufffd bad");
});

Deno.test("Detector bounds the templates of many flag columns and scores fresh combinations", async () => {
  const prng = createPrng(5);
  const flags = (n: number): string[] =>
    Array.from({ length: n }, () => {
      const words = Array.from({ length: 40 }, (_, c) =>
        "w" + String.fromCharCode(97 + (c % 26), 97 + c % 7));
      for (let k = 0; k < 16; k++) {
        words.push(prng.nextInt(2) ? "on" : "off");
      }
      return words.join(" ");
    });
  const train = flags(20_000);
  const detector = await trainDetector(train, { seed: 3 });
  assert.ok(detector.info.templates <= 8, `${detector.info.templates} templates, expected <= 8`);
  const back = Detector.fromBytes(detector.toBytes());
  const seen = new Set(train);
  const fresh = flags(3_000).filter((l) => !seen.has(l));
  assert.ok(fresh.length > 1_000);
  let anomalies = 0;
  for (const line of fresh) {
    const score = back.score(line);
    assert.ok(!score.reasons.includes("new_template"), line);
    assert.deepEqual(score, detector.score(line));
    if (score.anomaly) anomalies++;
  }
  assert.ok(
    anomalies <= fresh.length * 0.02,
    `${anomalies} of ${fresh.length} fresh lines flagged`,
  );
});

Deno.test("Detector.fromBytes() breaks template ties as training did", async () => {
  const lines = ["svc state A alpha", "svc state D beta"];
  for (let i = 0; i < 2000; i++) {
    lines.push("svc state A alpha", "svc state B alpha", "svc state C beta", `req ${i} done ok`);
  }
  const detector = await trainDetector(lines, { seed: 7 });
  const back = Detector.fromBytes(detector.toBytes());
  // Equally similar to several split templates: both must pick the same one.
  const line = "svc state B beta";
  const trained = detector.score(line);
  const loaded = back.score(line);
  assert.equal(loaded.template, trained.template);
  assert.equal(loaded.templateId, trained.templateId);
  assert.equal(loaded.score, trained.score);
  assert.deepEqual(loaded, trained);
});

Deno.test("trainDetector() keeps enumerated words and joins variable-length parameters", async () => {
  const prng = createPrng(7);
  const lines: string[] = [];
  for (let i = 0; i < 600; i++) {
    const host = `h${prng.nextInt(50)}.example.com:${80 + prng.nextInt(3)}`;
    lines.push(
      `${host} open through proxy p.example.com:5070 ${i % 100 === 0 ? "SOCKS5" : "HTTPS"}`,
    );
    const sent = prng.nextInt(5000);
    const kb = sent > 1024 ? ` (${(sent / 1024).toFixed(2)} KB)` : "";
    const life = i % 3 === 0 ? "<1 sec" : `00:0${prng.nextInt(10)}`;
    lines.push(`${host} close, ${sent} bytes${kb} sent, 10 bytes received, lifetime ${life}`);
    lines.push(`instance ${i} VM ${["Started", "Paused", "Stopped"][i % 3]} (Lifecycle Event)`);
  }
  const detector = await trainDetector(lines);
  const socks = detector.score("h1.example.com:80 open through proxy p.example.com:5070 SOCKS5");
  const https = detector.score("h1.example.com:80 open through proxy p.example.com:5070 HTTPS");
  assert.equal(socks.template, "<*> open through proxy <*> SOCKS5");
  assert.equal(https.template, "<*> open through proxy <*> HTTPS");
  assert.equal(socks.reasons.includes("new_template"), false);
  const paused = detector.score("instance 9 VM Paused (Lifecycle Event)");
  assert.equal(paused.template, "instance <*> VM Paused (Lifecycle Event)");
  const closes = [
    "h2.example.com:80 close, 12 bytes sent, 10 bytes received, lifetime 00:01",
    "h2.example.com:80 close, 3000 bytes (2.93 KB) sent, 10 bytes received, lifetime <1 sec",
  ].map((l) => detector.score(l));
  assert.equal(closes[0]!.template, "<*> close, <*> sent, <*> received, lifetime <*>");
  assert.equal(closes[1]!.templateId, closes[0]!.templateId);
  assert.ok(closes.every((s) => !s.anomaly));
});

Deno.test("Detector.score() never throws on random, binary and huge input", async () => {
  const detector = await trainDetector(await fixtureLines());
  const prng = createPrng(99);
  const inputs: string[] = ["", "\u0000", "\ud800", "\x1b[", "\x1b]0;x", "{", '{"level":', "{}"];
  for (let i = 0; i < 2000; i++) {
    const len = prng.nextInt(300);
    let s = "";
    for (let k = 0; k < len; k++) s += String.fromCharCode(prng.nextInt(i % 2 ? 0x110 : 0x10000));
    inputs.push(s);
  }
  const bytes = new Uint8Array(1 << 16);
  for (let k = 0; k < bytes.length; k++) bytes[k] = prng.nextInt(256);
  inputs.push(new TextDecoder().decode(bytes));
  inputs.push("x".repeat(1 << 20), "a ".repeat(1 << 19), "9".repeat(1 << 20));
  inputs.push(JSON.stringify({ level: "x".repeat(1 << 20) }));
  for (const line of inputs) {
    const s = detector.score(line);
    assert.ok(s.score >= 0 && s.score <= 1, `score ${s.score}`);
    assert.equal(typeof s.anomaly, "boolean");
    assert.equal(typeof s.template, "string");
  }
});

Deno.test("FeatureModel keeps templates marked structured through finish(), so training rows carry the flag", () => {
  const miner = new TemplateMiner();
  const json = maskTokens("INFO request done ms=7");
  const plain = maskTokens("connection reset by peer");
  miner.add(json.tokens, json.count);
  miner.add(plain.tokens, plain.count);
  const templateOf = miner.finish();
  const features = new FeatureModel(miner, new TokenSet());
  features.markStructured(templateOf[0]!);
  features.trainedLines = 2;
  features.finish();
  const index = new Uint16Array(DIMENSIONS);
  const value = new Float32Array(DIMENSIONS);
  const flag = (t: number) => {
    const n = features.trainingRow(t, 0, index, value);
    const at = [...index.subarray(0, n)].indexOf(FEATURE.structured);
    return at < 0 ? 0 : value[at];
  };
  assert.equal(flag(templateOf[0]!), 1);
  assert.equal(flag(templateOf[1]!), 0);
});

Deno.test("Detector.fromBytes() rejects a version 2 blob (no field slots): retrain", async () => {
  const v2 = (await trainDetector(await fixtureLines())).toBytes().slice();
  v2[4] = 2;
  new DataView(v2.buffer).setUint32(v2.length - 4, crc32(v2, 0, v2.length - 4), true);
  assert.throws(() => Detector.fromBytes(v2), (err: unknown) => {
    assert.ok(err instanceof ModelFormatError);
    assert.match(err.message, /format version 2/);
    assert.match(err.message, /no field slots/);
    assert.match(err.message, /must be retrained/);
    assert.match(err.message, /expected version 3/);
    return true;
  });
});

function accessLines(n: number, seed: number): string[] {
  const prng = createPrng(seed);
  const uas = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
    "kube-probe/1.29",
  ];
  return Array.from({ length: n }, (_, i) => {
    const ua = uas[prng.nextInt(uas.length)]!;
    const probe = ua.startsWith("kube");
    const path = probe ? "/healthz" : `/api/v1/products/${1000 + prng.nextInt(900)}`;
    const status = probe ? 200 : prng.next() < 0.05 ? 404 : 200;
    return `10.1.${prng.nextInt(9)}.${prng.nextInt(250)} - - [14/Mar/2026:08:${
      String(i % 60).padStart(2, "0")
    }:00 +0000] "GET ${path} HTTP/1.1" ${status} ${100 + prng.nextInt(900)} "-" "${ua}"`;
  });
}

Deno.test("Detector raises access-log attacks and failures, naming the field and value", async () => {
  const detector = await trainDetector(accessLines(5000, 21));
  const back = Detector.fromBytes(detector.toBytes());
  const normal = accessLines(2000, 22);
  const flagged = normal.filter((l) => back.score(l).anomaly).length;
  assert.ok(flagged <= 10, `${flagged} of 2000 normal lines flagged`);
  const at = '45.155.205.9 - - [14/Mar/2026:09:00:00 +0000] "GET ';
  const failure = back.score(
    `10.1.2.3 - - [14/Mar/2026:09:00:00 +0000] "GET /api/v1/products/1234 HTTP/1.1" 502 157 "-" "${"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"}"`,
  );
  assert.ok(failure.anomaly);
  assert.ok(failure.reasons.includes("unusual_value"), failure.reasons.join());
  assert.ok(
    failure.explanation.includes("status=502: never seen here"),
    failure.explanation.join(),
  );
  const traversal = back.score(
    `${at}/api/v1/products/..%2f..%2fetc%2fpasswd HTTP/1.1" 404 153 "-" "-"`,
  );
  assert.ok(traversal.anomaly);
  assert.ok(
    traversal.explanation.some((e) => /^path: shape never seen \(.*\.\..*\)/.test(e)),
    traversal.explanation.join(" | "),
  );
  const scanner = back.score(
    `${at}/api/v1/products/1200 HTTP/1.1" 200 612 "-" "sqlmap/1.8.2#stable (https://sqlmap.org)"`,
  );
  assert.ok(scanner.anomaly);
  assert.ok(
    scanner.explanation.some((e) => e.startsWith("ua") && e.includes("sqlmap")),
    scanner.explanation.join(),
  );
  assert.ok(detector.info.trainAboveThreshold <= 0.01, String(detector.info.trainAboveThreshold));
  assert.equal(back.info.trainAboveThreshold, detector.info.trainAboveThreshold);
});

Deno.test("Detector never flags counters for having grown ten times past training", async () => {
  const line = (i: number) =>
    i % 2 === 0
      ? `time=2026-03-14T08:00:00Z level=info msg="request served" req=${i} seq=${
        3 * i + 7
      } uptime_s=${(i * 0.73).toFixed(1)} status=200`
      : `worker heartbeat req=${i} seq=${3 * i + 7} uptime_s=${(i * 0.73).toFixed(1)} offset=${
        i * 512
      }`;
  const detector = await trainDetector(Array.from({ length: 3000 }, (_, i) => line(i + 1)));
  let flagged = 0;
  for (let i = 30_000; i < 33_000; i++) if (detector.score(line(i)).anomaly) flagged++;
  assert.ok(flagged <= 30, `${flagged} of 3000 lines with grown counters flagged`);
  // A counter slot still judges the shape of what it holds.
  const odd = detector.score(
    `worker heartbeat req=12' seq=43 uptime_s=3.0 offset=512`,
  );
  assert.ok(odd.score > detector.score(line(31_000)).score);
});
