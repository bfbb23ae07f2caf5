import assert from "node:assert/strict";
import { extractFields } from "../../../shared/detector/fields.ts";

function record(line: string): Record<string, string> | undefined {
  const f = extractFields(line);
  if (f === undefined) return undefined;
  return Object.fromEntries(f.names.map((n, i) => [n, f.values[i]!]));
}

Deno.test("extractFields() reads nginx combined lines into named fields", () => {
  const line =
    '203.0.113.7 - - [14/Mar/2026:08:00:00 +0000] "GET /api/v1/products?page=2&sort=price' +
    ' HTTP/1.1" 502 157 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64)"';
  const f = extractFields(line)!;
  assert.equal(f.format, "access");
  assert.deepEqual(record(line), {
    client: "203.0.113.7",
    user: "-",
    method: "GET",
    path: "/api/v1/products",
    query: "page=2&sort=price",
    proto: "HTTP/1.1",
    status: "502",
    bytes: "157",
    referer: "https://shop.example.com/",
    ua: "Mozilla/5.0 (X11; Linux x86_64)",
  });
  assert.equal(f.numbers[f.names.indexOf("status")], 502);
  assert.ok(Number.isNaN(f.numbers[f.names.indexOf("path")]!));
});

Deno.test("extractFields() reads common log, Apache vhost_combined and appended fields", () => {
  const common = record(
    '10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326',
  );
  assert.equal(common?.user, "frank");
  assert.equal(common?.status, "200");
  assert.equal(common?.ua, undefined);
  const vhost = record(
    'shop.example.com:443 10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "POST /cart HTTP/1.1" 201 12 "-" "curl/8.5.0"',
  );
  assert.equal(vhost?.vhost, "shop.example.com:443");
  assert.equal(vhost?.method, "POST");
  // nginx with $request_time and named upstream fields; Traefik's CLF tail.
  const extra = record(
    '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0" 0.012 ' +
      'upstream="10.0.0.9:80" 7 "web@docker" 3ms',
  );
  assert.equal(extra?.x1, "0.012");
  assert.equal(extra?.upstream, "10.0.0.9:80");
  assert.equal(extra?.x4, "web@docker");
  assert.equal(extra?.x5, "3ms");
});

Deno.test("extractFields() keeps a request line that is no request whole, as the method", () => {
  const f = record(
    '45.155.205.9 - - [14/Mar/2026:08:00:00 +0000] "\\x16\\x03\\x01\\x02\\x00" 400 157 "-" "-"',
  );
  assert.equal(f?.method, "\\x16\\x03\\x01\\x02\\x00");
  assert.equal(f?.path, "");
  assert.equal(f?.status, "400");
});

Deno.test("extractFields() reads Envoy's default access log", () => {
  const f = record(
    '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" ' +
      '"nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"',
  );
  assert.equal(f?.method, "POST");
  assert.equal(f?.status, "204");
  assert.equal(f?.flags, "-");
  assert.equal(f?.ua, "nsq2http");
  assert.equal(f?.upstream, "tcp://10.0.2.1:80");
});

Deno.test("extractFields() flattens JSON: level and message apart, nested keys dotted, time dropped", () => {
  const f = extractFields(
    '{"level":50,"time":1700000000000,"msg":"request errored","req":{"method":"GET",' +
      '"headers":{"user-agent":"curl/8"}},"res":{"statusCode":500},"tags":["a","b"]}',
  )!;
  assert.equal(f.format, "json");
  assert.equal(f.level, "ERROR");
  assert.equal(f.message, "request errored");
  assert.deepEqual(f.names, ["req.method", "req.headers.user-agent", "res.statusCode", "tags"]);
  assert.deepEqual(f.values, ["GET", "curl/8", "500", "a,b"]);
  assert.equal(f.numbers[2], 500);
  // Caddy: level as a word, the access fields nested under request.
  const caddy = extractFields(
    '{"level":"info","ts":1.7e9,"logger":"http.log.access","msg":"handled request",' +
      '"request":{"uri":"/a?b=1","method":"GET"},"status":200}',
  )!;
  assert.equal(caddy.level, "INFO");
  assert.deepEqual(caddy.names, ["logger", "request.uri", "request.method", "status"]);
});

Deno.test("extractFields() reads logfmt with quoted values; plain lines have no fields", () => {
  const f = extractFields(
    'time=2026-03-14T08:00:00Z level=warn msg="slow \\"db\\" call" req=4296 dur_ms=812',
  )!;
  assert.equal(f.format, "logfmt");
  assert.equal(f.level, "WARN");
  assert.equal(f.message, 'slow "db" call');
  assert.deepEqual(f.names, ["req", "dur_ms"]);
  assert.deepEqual(f.numbers, [4296, 812]);
  for (
    const plain of [
      "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38",
      "worker heartbeat req=4296 seq=12 uptime_s=3.5",
      "a=1 b=2",
      "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
      "{not json}",
      "",
    ]
  ) {
    assert.equal(extractFields(plain), undefined, plain);
  }
});
