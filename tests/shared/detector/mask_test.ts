import assert from "node:assert/strict";
import {
  maskLine,
  maskTokens,
  MAX_TOKENS,
  templateText,
  WILDCARD,
} from "../../../shared/detector/mask.ts";

Deno.test("maskLine() replaces IPv4 addresses and ports", () => {
  assert.equal(maskLine("connect from 10.0.0.1 port 22"), "connect from <*> port <*>");
  assert.equal(maskLine("src: /10.250.19.102:54106"), "src: <*>");
});

Deno.test("maskLine() replaces numbers, hex and UUIDs", () => {
  assert.equal(maskLine("took 12ms code 0x1f"), "took <*> code <*>");
  assert.equal(maskLine("req 38101a0b-2096-447d-96ea-a692162415ae done"), "req <*> done");
  assert.equal(maskLine("commit deadbeefcafe"), "commit <*>");
});

Deno.test("maskLine() replaces paths, URLs and emails", () => {
  assert.equal(maskLine("open /etc/ssl/certs failed"), "open <*> failed");
  assert.equal(maskLine("GET https://example.com/a"), "GET <*>");
  assert.equal(maskLine("mail to bob@example.com"), "mail to <*>");
  assert.equal(maskLine("load C:\\Windows\\x.dll"), "load <*>");
});

Deno.test("maskLine() keeps keys of key=value and masks quoted values", () => {
  assert.equal(maskLine('uid=0 tag="View Lock" ok'), "uid=<*> tag=<*> ok");
});

Deno.test("maskLine() masks timestamps with month and weekday names", () => {
  assert.equal(
    maskLine("[Sun Dec 04 04:47:44 2005] [error] mod_jk child"),
    "<*> <*> <*> <*> <*> [error] mod_jk child",
  );
  assert.equal(maskLine("Jun 14 15:16:01 combo sshd"), "<*> <*> <*> combo sshd");
  assert.equal(maskLine("May I help"), "May I help");
});

Deno.test("maskLine() drops ANSI escapes and control characters", () => {
  assert.equal(maskLine("\x1b[31mERROR\x1b[0m\tdisk\x00full\r"), "ERROR disk full");
});

Deno.test("maskTokens() records plain numbers per token", () => {
  const m = maskTokens("size 67108864, latency=12.5 id blk_1");
  assert.equal(m.count, 5);
  assert.equal(m.values[1], 67108864);
  assert.equal(m.values[2], 12.5);
  assert.ok(Number.isNaN(m.values[4]!));
});

Deno.test("maskTokens() caps the work on huge lines", () => {
  const m = maskTokens("a ".repeat(1 << 20));
  assert.equal(m.count, MAX_TOKENS);
});

Deno.test("maskLine() masks a unit after a number and relative values", () => {
  assert.equal(
    maskLine("close, 1190 bytes (1.16 KB) sent, 0 bytes received, lifetime <1 sec"),
    "close, <*> <*> <*> <*> sent, <*> <*> received, lifetime <*> <*>",
  );
  assert.equal(maskLine("took 3.5 seconds, 20 MB."), "took <*> <*> <*> <*>");
  assert.equal(maskLine("bytes sent to host"), "bytes sent to host");
  assert.equal(maskLine("eth0 s"), "<*> s");
});

Deno.test("maskLine() masks true and false, alone or as a value", () => {
  assert.equal(
    maskLine("isOverlap:false, force=true, ret TRUE."),
    "isOverlap:<*> force=<*> ret <*>",
  );
  assert.equal(maskLine("the truest value"), "the truest value");
});

Deno.test("maskLine() keeps the key of key:value with a number", () => {
  assert.equal(
    maskLine("cancelNotification index:8 onExtend:1514038530000"),
    "cancelNotification index:<*> onExtend:<*>",
  );
  assert.equal(maskLine("to proxy.example.com:5070 at 12:30:45"), "to <*> at <*>");
  assert.equal(maskLine("GET http://h:8080/a C:\\x1\\y"), "GET <*> <*>");
  assert.equal(maskLine("ARPT: 620651.021206: wl0: up"), "ARPT: <*> <*> up");
});

Deno.test("maskTokens() keeps the text of masked names with a short number", () => {
  const m = maskTokens("via eth0 over SOCKS5, IPV6 node-12 sda123 x1 7 up");
  assert.deepEqual(m.tokens.slice(0, m.count), [
    "via",
    WILDCARD,
    "over",
    WILDCARD,
    WILDCARD,
    WILDCARD,
    WILDCARD,
    WILDCARD,
    WILDCARD,
    "up",
  ]);
  assert.deepEqual(m.literals.slice(0, m.count), [
    "",
    "eth0",
    "",
    "SOCKS5,",
    "IPV6",
    "",
    "",
    "",
    "",
    "",
  ]);
  assert.ok(Number.isNaN(m.values[1]!));
  assert.equal(m.values[8], 7);
});

Deno.test("templateText() writes a run of wildcards as one", () => {
  assert.equal(templateText(["sent", WILDCARD, WILDCARD, "ok", WILDCARD]), "sent <*> ok <*>");
  assert.equal(templateText(["a", WILDCARD, WILDCARD, WILDCARD, "b"], 3), "a <*>");
  assert.equal(templateText(["key=<*>", WILDCARD]), "key=<*> <*>");
  // Only wildcards: the runs stay, so such lines keep their length apart.
  assert.equal(templateText([WILDCARD, WILDCARD]), "<*> <*>");
  assert.equal(templateText([]), "");
});
