import assert from "node:assert/strict";
import { createSocketProxy, isAllowed } from "../../../functions/socket_proxy/socket_proxy.ts";
import { dockerCli, suiteEnv } from "../../harness/services.ts";

Deno.test("isAllowed() lets through only the read endpoints collect needs", () => {
  const allowed: [string, string][] = [
    ["GET", "/_ping"],
    ["HEAD", "/_ping"],
    ["GET", "/v1.41/_ping"],
    ["GET", "/version"],
    ["GET", "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D&since=1"],
    ["GET", "/containers/json"],
    ["GET", "/v1.43/containers/json?all=1&limit=10"],
    ["GET", "/containers/3f2a9c/json"],
    ["GET", "/v1.41/containers/my_app.web-1/json?size=false"],
    ["GET", "/containers/abc/logs?follow=1&stdout=1&stderr=1&timestamps=1&since=0&tail=all"],
  ];
  for (const [method, target] of allowed) {
    assert.deepEqual(isAllowed(method, target), { allowed: true, reason: "" }, target);
  }
});

Deno.test("isAllowed() refuses writes, other endpoints and path tricks with a reason", () => {
  const refused: [string, string][] = [
    ["POST", "/containers/abc/exec"],
    ["POST", "/exec/123/start"],
    ["POST", "/containers/create"],
    ["POST", "/v1.41/containers/create?name=x"],
    ["POST", "/containers/abc/start"],
    ["POST", "/containers/abc/kill"],
    ["POST", "/containers/abc/stop"],
    ["DELETE", "/containers/abc"],
    ["GET", "/containers/abc/archive?path=/etc"],
    ["PUT", "/containers/abc/archive?path=/"],
    ["GET", "/containers/abc/export"],
    ["POST", "/containers/abc/attach?stream=1"],
    ["GET", "/containers/abc/attach/ws"],
    ["GET", "/secrets"],
    ["GET", "/v1.41/secrets"],
    ["GET", "/configs"],
    ["GET", "/images/json"],
    ["POST", "/images/create?fromImage=busybox"],
    ["GET", "/info"],
    ["POST", "/_ping"],
    ["POST", "/containers/json"],
    ["GET", "/containers/x/../../secrets"],
    ["GET", "/containers/../secrets/json"],
    ["GET", "/containers/./json"],
    ["GET", "/containers/x%2F..%2F..%2Fsecrets/json"],
    ["GET", "/containers/x%2fjson"],
    ["GET", "/%63ontainers/json"],
    ["GET", "/containers//json"],
    ["GET", "/containers\\abc\\json"],
    ["GET", "/containers/json#/../secrets"],
    ["GET", "/containers/json?all=1&x=/../../secrets"],
    ["GET", "/containers/json?all=1&all=0"],
    ["GET", "/containers/abc/logs?follow=1&stream=1"],
    ["GET", "/containers/abc/json?bad=%zz"],
    ["GET", "/v1.41/../secrets"],
    ["GET", "/vX/containers/json"],
    ["GET", "containers/json"],
    ["GET", "/containers/abc/json/"],
    ["GET", "/containers/-abc/json"],
  ];
  for (const [method, target] of refused) {
    const v = isAllowed(method, target);
    assert.equal(v.allowed, false, `${method} ${target} must be refused`);
    assert.ok(v.reason.length > 0, target);
  }
});

/** A raw HTTP/1.1 exchange, so the target reaches the proxy byte for byte. */
async function rawRequest(
  port: number,
  method: string,
  target: string,
  extraHeaders = "",
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head =
      `${method} ${target} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n${extraHeaders}\r\n`;
    await conn.write(new TextEncoder().encode(head));
    const text = await new Response(conn.readable).text();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    return { status, body };
  } catch (e) {
    try {
      conn.close();
    } catch {
      // already closed by the response stream
    }
    throw e;
  }
}

async function readUntil(
  body: ReadableStream<Uint8Array>,
  needle: string,
  timeoutMs: number,
): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  try {
    while (!seen.includes(needle)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
  return seen;
}

Deno.test("createSocketProxy() passes reads through to a real engine and refuses the rest", async (t) => {
  const env = suiteEnv();
  const host = `unix://${env.dockerSocket}`;
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: env.dockerSocket } });
  const refusals: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createSocketProxy((request) => fetch(request, { client }), {
      onRefused: (_m, target) => refusals.push(target),
    }),
  );
  const port = server.addr.port;
  const base = `http://127.0.0.1:${port}`;
  const proxied = `tcp://127.0.0.1:${port}`;
  const name = `tw-proxy-${crypto.randomUUID().slice(0, 8)}`;
  await dockerCli(host, [
    "run",
    "-d",
    "--name",
    name,
    env.dockerImage,
    "sh",
    "-c",
    "echo proxied-line-1; echo proxied-line-2; sleep 300",
  ]);
  const id = await dockerCli(host, ["inspect", "--format", "{{.Id}}", name]);
  try {
    await t.step("ping, version, list and inspect pass", async () => {
      const ping = await fetch(`${base}/_ping`);
      assert.equal(ping.status, 200);
      assert.equal(await ping.text(), "OK");
      const version = await fetch(`${base}/v1.41/version`);
      assert.equal(version.status, 200);
      assert.match((await version.json()).ApiVersion, /^1\.\d+$/);
      const list = await fetch(`${base}/v1.41/containers/json?all=1`);
      assert.equal(list.status, 200);
      const ids = (await list.json() as { Id: string }[]).map((c) => c.Id);
      assert.ok(ids.includes(id));
      const inspect = await fetch(`${base}/containers/${name}/json`);
      assert.equal(inspect.status, 200);
      assert.equal((await inspect.json()).Id, id);
    });

    await t.step("a followed log stream flows through", async () => {
      const res = await fetch(
        `${base}/v1.41/containers/${id}/logs?follow=1&stdout=1&stderr=1`,
      );
      assert.equal(res.status, 200);
      const seen = await readUntil(res.body!, "proxied-line-2", 10_000);
      assert.ok(seen.includes("proxied-line-1"), seen);
      assert.ok(seen.includes("proxied-line-2"), seen);
    });

    await t.step("the event stream flows through while it stays open", async () => {
      const since = Math.floor(Date.now() / 1000) - 1;
      const res = await fetch(`${base}/events?since=${since}`);
      assert.equal(res.status, 200);
      const other = `${name}-ev`;
      const reading = readUntil(res.body!, `"name":"${other}"`, 15_000);
      await dockerCli(host, ["run", "--rm", "--name", other, env.dockerImage, "echo", "ev"]);
      const seen = await reading;
      assert.ok(seen.includes(`"name":"${other}"`), seen.slice(0, 500));
    });

    await t.step("the docker CLI can list through the proxy", async () => {
      const out = await dockerCli(proxied, ["ps", "--format", "{{.Names}}"]);
      assert.ok(out.split("\n").includes(name), out);
    });

    await t.step(
      "writes, exec, archive, export, secrets and images get 403 with JSON",
      async () => {
        const cases: [string, string][] = [
          ["POST", `/v1.41/containers/${id}/exec`],
          ["POST", "/v1.41/containers/create"],
          ["GET", `/v1.41/containers/${id}/archive?path=/etc`],
          ["GET", `/containers/${id}/export`],
          ["GET", "/v1.41/secrets"],
          ["GET", "/images/json"],
          ["POST", "/images/create?fromImage=busybox&tag=latest"],
          ["POST", `/containers/${id}/start`],
          ["POST", `/containers/${id}/kill`],
          ["POST", `/containers/${id}/attach?stream=1&stdout=1`],
        ];
        for (const [method, target] of cases) {
          const res = await fetch(`${base}${target}`, {
            method,
            body: method === "POST" ? "{}" : undefined,
            headers: { "content-type": "application/json" },
          });
          assert.equal(res.status, 403, `${method} ${target}`);
          const body = await res.json();
          assert.match(body.error, /tailwise socket proxy/);
          assert.equal(body.message, body.error);
        }
        const running = await dockerCli(host, ["inspect", "--format", "{{.State.Running}}", name]);
        assert.equal(running, "true", "the refused kill must not reach the engine");
      },
    );

    await t.step("path traversal, encoded slashes and query tricks get 403", async () => {
      const targets = [
        `/containers/${id}/../../secrets`,
        "/v1.41/containers/x/../../images/json",
        `/containers/x%2F..%2F..%2Fsecrets/json`,
        "/containers/x%2fjson",
        "/%73ecrets",
        "/containers//json",
        "/containers/json?all=1&x=/../../secrets",
        "/containers/json?all=1&all=0",
        `/containers/${id}/logs?follow=1&stream=1`,
      ];
      for (const target of targets) {
        const res = await rawRequest(port, "GET", target);
        assert.equal(res.status, 403, target);
        assert.match(JSON.parse(res.body).error, /tailwise socket proxy/, target);
      }
      const upgrade = await rawRequest(
        port,
        "GET",
        `/containers/${id}/logs?follow=1`,
        "Connection: Upgrade\r\nUpgrade: tcp\r\n",
      );
      assert.equal(upgrade.status, 403);
      assert.match(JSON.parse(upgrade.body).error, /upgrade/);
    });

    await t.step("the docker CLI's exec, run and pull are refused", async () => {
      for (
        const args of [
          ["exec", name, "echo", "x"],
          ["run", "--rm", env.dockerImage, "echo", "x"],
          ["pull", "busybox"],
          ["kill", name],
        ]
      ) {
        await assert.rejects(dockerCli(proxied, args), /tailwise socket proxy/, args.join(" "));
      }
      assert.ok(refusals.length > 0);
    });
  } finally {
    await dockerCli(host, ["rm", "-f", name]).catch(() => "");
    await server.shutdown();
    client.close();
  }
});
