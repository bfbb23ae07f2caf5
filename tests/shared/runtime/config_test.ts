import assert from "node:assert/strict";
import {
  ConfigError,
  loadConfig,
  parseDuration,
  parseSize,
  redactConfig,
} from "../../../shared/runtime/config.ts";

const noFiles = (path: string): string => {
  throw new Error(`No such file or directory: ${path}`);
};

Deno.test("loadConfig() gives the embedded defaults with nothing set", () => {
  const c = loadConfig({}, { readFile: noFiles, hostname: "h" });
  assert.equal(c.redis.url, null);
  assert.equal(c.influx.url, null);
  assert.equal(c.dataDir, "./.tailwise");
  assert.deepEqual(c.docker, { kind: "socket", socketPath: "/var/run/docker.sock" });
  assert.equal(c.collect.maxLineBytes, 1024 * 1024);
  assert.equal(c.ingest.batchLines, 5000);
  assert.equal(c.streams.logs, "tailwise:logs");
  assert.ok(c.instance.startsWith("h-"));
});

Deno.test("loadConfig() reads typed values", () => {
  const c = loadConfig({
    REDIS_URL: "redis://:pw@127.0.0.1:6380/2",
    INFLUX_URL: "https://influx.example:8086",
    DOCKER_HOST: "tcp://10.0.0.5:2375",
    COLLECT_MAX_LINE_BYTES: "64KiB",
    CONSUMER_CLAIM_IDLE_MS: "2m",
    TRAIN_SCHEDULE: "0 * * * *",
    ALERT_RATE: "0.001",
  }, { readFile: noFiles });
  assert.equal(c.redis.url, "redis://:pw@127.0.0.1:6380/2");
  assert.equal(c.influx.url, "https://influx.example:8086");
  assert.deepEqual(c.docker, { kind: "tcp", host: "10.0.0.5", port: 2375, protocol: "http" });
  assert.equal(c.collect.maxLineBytes, 65536);
  assert.equal(c.consumer.claimIdleMs, 120_000);
  assert.equal(c.train.schedule, "0 * * * *");
  assert.equal(c.train.alertRate, 0.001);
});

Deno.test("loadConfig() lists every problem at once, naming variable, value and expectation", () => {
  const env = {
    REDIS_URL: "htp:/x",
    API_PORT: "99999",
    COLLECT_BATCH_LINES: "many",
    CONSUMER_BLOCK_MS: "soon",
    DOCKER_HOST: "ftp://docker",
    LOG_LEVEL: "loud",
  };
  try {
    loadConfig(env, { readFile: noFiles });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.problems.length, 6);
    assert.ok(
      e.problems.includes('Cannot parse REDIS_URL "htp:/x": expected a redis or rediss URL'),
    );
    assert.ok(
      e.problems.includes('Cannot parse API_PORT "99999": expected an integer from 0 to 65535'),
    );
    assert.ok(e.problems.some((p) => p.startsWith('Cannot parse COLLECT_BATCH_LINES "many"')));
    assert.ok(e.problems.some((p) => p.startsWith('Cannot parse CONSUMER_BLOCK_MS "soon"')));
    assert.ok(e.problems.some((p) => p.startsWith('Cannot parse DOCKER_HOST "ftp://docker"')));
    assert.ok(e.problems.some((p) => p.includes("one of debug, info, warn, error")));
  }
});

Deno.test("loadConfig() reads secrets from *_FILE and never prints them", () => {
  const files: Record<string, string> = { "/run/secrets/api": "s3cret-token-0123456789\n" };
  const c = loadConfig({
    API_TOKEN_FILE: "/run/secrets/api",
    REDIS_URL: "redis://user:hunter2@redis:6379",
    WEBHOOK_URL: "https://hooks.slack.com/services/T000/B000/XXXX",
  }, { readFile: (p) => files[p] ?? noFiles(p) });
  assert.equal(c.api.token, "s3cret-token-0123456789");
  const printed = JSON.stringify(redactConfig(c));
  assert.ok(!printed.includes("s3cret"));
  assert.ok(!printed.includes("hunter2"));
  assert.ok(!printed.includes("XXXX"));
  assert.match(printed, /\[redacted\]/);
});

Deno.test("loadConfig() reports an unreadable or doubled secret without its content", () => {
  try {
    loadConfig({ API_TOKEN_FILE: "/nope", REDIS_PASSWORD: "a", REDIS_PASSWORD_FILE: "/b" }, {
      readFile: noFiles,
    });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.problems.length, 2);
    assert.match(e.problems.join("\n"), /Cannot read API_TOKEN_FILE "\/nope"/);
    assert.match(e.problems.join("\n"), /Both REDIS_PASSWORD and REDIS_PASSWORD_FILE are set/);
  }
});

Deno.test("WEBHOOK_URL errors never echo the URL", () => {
  try {
    loadConfig({ WEBHOOK_URL: "not a url with secret-XYZ" }, { readFile: noFiles });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(!e.message.includes("secret-XYZ"));
    assert.match(e.message, /WEBHOOK_URL "\[redacted\]"/);
  }
});

Deno.test("parseDuration() and parseSize() read units", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("1200"), 1200);
  assert.equal(parseDuration("-1s"), null);
  assert.equal(parseSize("64KiB"), 65536);
  assert.equal(parseSize("1MiB"), 1048576);
  assert.equal(parseSize("2mb"), 2_000_000);
  assert.equal(parseSize("1 TB"), null);
});

Deno.test("loadConfig() reads the multi-line event settings", () => {
  const d = loadConfig({}, { readFile: noFiles, hostname: "h" });
  assert.equal(d.collect.multiline, "auto");
  assert.equal(d.collect.multilineFlushMs, 1000);
  assert.equal(d.collect.multilineQuietMs, 50);
  assert.equal(d.collect.multilineMaxLines, 500);
  assert.equal(d.collect.multilineMaxBytes, 128 * 1024);
  const c = loadConfig({
    COLLECT_MULTILINE: "^\\d{4}-",
    COLLECT_MULTILINE_FLUSH_MS: "250ms",
    COLLECT_MULTILINE_QUIET_MS: "20ms",
    COLLECT_MULTILINE_MAX_LINES: "50",
    COLLECT_MULTILINE_MAX_BYTES: "16KiB",
  }, { readFile: noFiles });
  assert.equal(c.collect.multiline, "^\\d{4}-");
  assert.equal(c.collect.multilineFlushMs, 250);
  assert.equal(c.collect.multilineQuietMs, 20);
  assert.equal(c.collect.multilineMaxLines, 50);
  assert.equal(c.collect.multilineMaxBytes, 16384);
  assert.equal(
    loadConfig({ COLLECT_MULTILINE: "OFF" }, { readFile: noFiles }).collect.multiline,
    "off",
  );
  assert.throws(
    () => loadConfig({ COLLECT_MULTILINE: "([" }, { readFile: noFiles }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.some((p) =>
        p === 'Cannot parse COLLECT_MULTILINE "([": expected auto, off or a regular expression'
      ),
  );
});
