import assert from "node:assert/strict";
import {
  groupLines,
  type MultilineEvent,
  MultilineGrouper,
  type MultilineOptions,
  parseMultilineMode,
} from "../../../shared/sources/multiline.ts";

const PYTHON = [
  "Traceback (most recent call last):",
  '  File "/app/worker.py", line 42, in run',
  "    result = handle(job)",
  '  File "/app/handlers.py", line 17, in handle',
  "    return int(job.payload)",
  "ValueError: invalid literal for int() with base 10: 'x'",
];

const PYTHON_CHAINED = [
  "Traceback (most recent call last):",
  '  File "/app/db.py", line 8, in fetch',
  "    raise KeyError(key)",
  "KeyError: 'user:42'",
  "",
  "During handling of the above exception, another exception occurred:",
  "",
  "Traceback (most recent call last):",
  '  File "/app/worker.py", line 12, in run',
  "    fetch(key)",
  "RuntimeError: lookup failed",
];

const JAVA = [
  "2026-12-02 10:00:00.123 ERROR 1 --- [main] c.e.OrderService : Order failed",
  "java.lang.IllegalStateException: order 42 not payable",
  "\tat com.example.OrderService.pay(OrderService.java:88)",
  "\tat com.example.OrderController.post(OrderController.java:31)",
  "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
  "Caused by: java.io.IOException: connection reset",
  "\tat com.example.PaymentClient.send(PaymentClient.java:55)",
  "\t... 12 more",
];

const NODE = [
  "TypeError: Cannot read properties of undefined (reading 'id')",
  "    at getUser (/app/src/users.js:14:22)",
  "    at /app/src/server.js:40:5",
  "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
];

const NODE_INTERNAL = [
  "node:internal/process/promises:289",
  "            triggerUncaughtException(err, true /* fromPromise */);",
  "            ^",
  "",
  "Error: request failed",
  "    at fetchUser (/app/src/users.js:20:11)",
  "",
  "Node.js v20.11.0",
];

const NODE_CRASH = [
  "/app/src/server.js:12",
  "    throw new Error('boom');",
  "    ^",
  "",
  "Error: boom",
  "    at Object.<anonymous> (/app/src/server.js:12:11)",
  "    at Module._compile (node:internal/modules/cjs/loader:1256:14)",
  "",
  "Node.js v20.11.0",
];

const GO = [
  "panic: runtime error: index out of range [5] with length 3",
  "",
  "goroutine 1 [running]:",
  "main.process(...)",
  "\t/app/main.go:15",
  "main.main()",
  "\t/app/main.go:8 +0x1d",
  "",
  "goroutine 18 [chan receive]:",
  "net/http.(*conn).serve(0xc000132000, {0x7a1b20, 0xc000114000})",
  "\t/usr/local/go/src/net/http/server.go:2009 +0x3a5",
  "created by net/http.(*Server).Serve in goroutine 1",
  "\t/usr/local/go/src/net/http/server.go:3086 +0x5cb",
  "exit status 2",
];

const DOTNET = [
  "Unhandled exception. System.InvalidOperationException: Sequence contains no elements",
  "   at System.Linq.ThrowHelper.ThrowNoElementsException()",
  "   at Shop.Orders.Handle(Order o) in /src/Orders.cs:line 23",
  " ---> System.IO.IOException: disk full",
  "   --- End of inner exception stack trace ---",
];

const RUBY = [
  "app.rb:3:in `charge': card declined (RuntimeError)",
  "\tfrom app.rb:7:in `checkout'",
  "\tfrom app.rb:10:in `<main>'",
];

function events(lines: readonly string[], options?: MultilineOptions): string[][] {
  return groupLines(lines, options).map((e) => lines.slice(e.first, e.first + e.count));
}

Deno.test("MultilineGrouper joins the traces of each language into one event", async (t) => {
  const cases: [string, string[]][] = [
    ["Python", PYTHON],
    ["Python, chained", PYTHON_CHAINED],
    ["Java with Caused by and ... N more", JAVA],
    ["Node error stack", NODE],
    ["Node crash report", NODE_CRASH],
    ["Node crash report from an unhandled rejection", NODE_INTERNAL],
    ["Node system error with a code", [
      "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers after they are sent to the client",
      "    at ServerResponse.setHeader (node:_http_outgoing:652:11)",
      "    at sendJson (/app/src/reply.js:9:7)",
    ]],
    ["Go panic with goroutines", GO],
    [".NET", DOTNET],
    ["Ruby", RUBY],
  ];
  for (const [name, trace] of cases) {
    await t.step(name, () => {
      const lines = ["12:00:00 INFO started", ...trace, "12:00:01 INFO next request"];
      assert.deepEqual(events(lines), [
        ["12:00:00 INFO started"],
        trace,
        ["12:00:01 INFO next request"],
      ]);
    });
  }
});

Deno.test("MultilineGrouper joins a logged error line with the traceback that follows it", () => {
  const lines = [
    "2026-12-02 10:00:00 ERROR worker: job 7 failed",
    ...PYTHON,
    "2026-12-02 10:00:01 INFO worker: job 8 done",
  ];
  assert.deepEqual(events(lines).map((e) => e.length), [1 + PYTHON.length, 1]);
});

Deno.test("MultilineGrouper keeps a traceback after an ordinary line apart", () => {
  const lines = ["INFO job 7 started", ...PYTHON];
  assert.deepEqual(events(lines).map((e) => e.length), [1, PYTHON.length]);
});

Deno.test("MultilineGrouper starts a new event at the next trace and at a plain line", () => {
  const lines = [...JAVA, ...NODE, ...GO, ...PYTHON, ...PYTHON, "done"];
  assert.deepEqual(events(lines).map((e) => e.length), [
    JAVA.length,
    NODE.length,
    GO.length,
    PYTHON.length,
    PYTHON.length,
    1,
  ]);
});

Deno.test("MultilineGrouper joins indented continuation lines to a plain line", () => {
  const lines = ["config loaded:", "  port: 80", "\thost: x", "", "next"];
  assert.deepEqual(events(lines), [["config loaded:", "  port: 80", "\thost: x"], [""], ["next"]]);
});

Deno.test("MultilineGrouper ends an event when the stream changes", () => {
  const got: MultilineEvent<number>[] = [];
  const g = new MultilineGrouper<number>((e) => got.push(e));
  g.push("Error: boom", 0, { stream: "stderr" });
  g.push("    at f (/app/a.js:1:1)", 1, { stream: "stdout" });
  g.push("    at g (/app/a.js:2:1)", 2, { stream: "stderr" });
  g.flush();
  assert.deepEqual(got.map((e) => [e.stream, e.positions]), [
    ["stderr", [0]],
    ["stdout", [1]],
    ["stderr", [2]],
  ]);
});

Deno.test("MultilineGrouper cuts an event at maxLines and maxBytes", async (t) => {
  const frames = Array.from({ length: 10 }, (_, i) => `\tat a.B.c(B.java:${i})`);
  const lines = ["java.lang.RuntimeException: x", ...frames];
  await t.step("maxLines", () => {
    assert.deepEqual(events(lines, { maxLines: 4 }).map((e) => e.length), [4, 4, 3]);
  });
  await t.step("maxBytes", () => {
    const sizes = events(lines, { maxBytes: 60 }).map((e) => e.join("\n").length);
    assert.ok(sizes.every((s) => s <= 60 || s === lines[0]!.length), String(sizes));
    assert.equal(events(lines, { maxBytes: 60 }).flat().length, lines.length);
  });
});

Deno.test("MultilineGrouper: a plain event waits quietMs, a trace or an error line flushMs", () => {
  const got: string[] = [];
  const g = new MultilineGrouper<number>((e) => got.push(e.text), { flushMs: 1000, quietMs: 50 });
  g.push("GET /a 200 12ms", 0, { now: 5000 });
  assert.equal(g.deadline, 5050, "a plain line: continuations come in the same write");
  g.push("  detail indented", 1, { now: 5010 });
  assert.equal(g.deadline, 5060, "still plain with its continuation");
  assert.equal(g.flushDue(5059), false);
  assert.equal(g.flushDue(5060), true);
  assert.deepEqual(got, ["GET /a 200 12ms\n  detail indented"]);
  g.push("ERROR request failed", 2, { now: 6000 });
  assert.equal(g.deadline, 7000, "an error line may be followed by its exception");
  g.push("java.lang.IllegalStateException: boom", 3, { now: 6005 });
  assert.equal(g.deadline, 7005, "inside a trace");
  g.push("\tat a.B.c(B.java:1)", 4, { now: 6006 });
  assert.equal(g.flushDue(6100), false);
  assert.equal(g.flushDue(7006), true);
  assert.equal(got.length, 2);
  // A start pattern waits the full flush: any line may continue the event.
  const p = new MultilineGrouper<number>(() => {}, {
    mode: { kind: "pattern", start: /^\d/ },
    flushMs: 1000,
    quietMs: 50,
  });
  p.push("1 plain", 0, { now: 0 });
  assert.equal(p.deadline, 1000);
  // quietMs is capped at flushMs.
  const c = new MultilineGrouper<number>(() => {}, { flushMs: 20, quietMs: 50 });
  c.push("x", 0, { now: 0 });
  assert.equal(c.deadline, 20);
  assert.throws(() => new MultilineGrouper(() => {}, { quietMs: -1 }), /quietMs -1/);
});

Deno.test("MultilineGrouper emits a pending event when no line came for flushMs", () => {
  const got: string[] = [];
  const g = new MultilineGrouper<number>((e) => got.push(e.text), { flushMs: 1000 });
  assert.equal(g.deadline, undefined);
  g.push("Traceback (most recent call last):", 0, { now: 5000 });
  assert.equal(g.deadline, 6000);
  g.push('  File "a.py", line 1, in f', 1, { now: 5100 });
  assert.equal(g.deadline, 6100, "the wait runs from the last line");
  assert.equal(g.flushDue(6099), false);
  assert.equal(g.pending, true);
  assert.deepEqual(g.pendingPositions, [0, 1]);
  assert.equal(g.flushDue(6100), true);
  assert.deepEqual(got, ['Traceback (most recent call last):\n  File "a.py", line 1, in f']);
  assert.equal(g.pending, false);
  g.push("x", 2, { now: 7000 });
  g.discard();
  g.flush();
  assert.equal(got.length, 1);
});

Deno.test("MultilineGrouper follows a start pattern, or no grouping when off", async (t) => {
  const lines = ["[a] one", "two", "Traceback (most recent call last):", "[b] three", "  four"];
  await t.step("pattern", () => {
    const mode = parseMultilineMode("^\\[");
    assert.deepEqual(events(lines, { mode }), [
      ["[a] one", "two", "Traceback (most recent call last):"],
      ["[b] three", "  four"],
    ]);
  });
  await t.step("off", () => {
    assert.deepEqual(events(lines, { mode: parseMultilineMode("off") }), lines.map((l) => [l]));
  });
  await t.step("a bad pattern names the label and the value", () => {
    assert.throws(() => parseMultilineMode("(["), /tailwise\.multiline\.start "\(\["/);
  });
  await t.step("absent is auto", () => {
    assert.deepEqual(parseMultilineMode(undefined), { kind: "auto" });
  });
});

Deno.test("MultilineGrouper rejects bad caps with the name and value", () => {
  assert.throws(() => new MultilineGrouper(() => {}, { maxLines: 0 }), /maxLines 0/);
  assert.throws(() => new MultilineGrouper(() => {}, { maxBytes: 1.5 }), /maxBytes 1.5/);
});

Deno.test("groupLines covers every line exactly once, in order", () => {
  const lines = [...JAVA, "x", ...PYTHON_CHAINED, "", "", ...GO, ...RUBY, ...NODE_CRASH, "y"];
  const groups = groupLines(lines);
  let next = 0;
  for (const g of groups) {
    assert.equal(g.first, next);
    assert.ok(g.count >= 1);
    next += g.count;
  }
  assert.equal(next, lines.length);
});

Deno.test("MultilineGrouper leaves blank lines after a trace as events of their own", () => {
  const lines = [...PYTHON, "", "", "INFO next", ...GO, "", "INFO after"];
  assert.deepEqual(events(lines), [
    PYTHON,
    [""],
    [""],
    ["INFO next"],
    GO,
    [""],
    ["INFO after"],
  ]);
  const got: MultilineEvent<number>[] = [];
  const g = new MultilineGrouper<number>((e) => got.push(e));
  [...PYTHON, ""].forEach((l, i) => g.push(l, i));
  g.flush();
  assert.deepEqual(got.map((e) => e.positions), [[0, 1, 2, 3, 4, 5], [6]]);
  assert.equal(got[0]!.bytes, PYTHON.join("\n").length);
  assert.equal(got[1]!.bytes, 0);
});
