import assert from "node:assert/strict";
import { eventLine, stackFingerprint } from "../../../shared/detector/stack_fingerprint.ts";
import { trainDetector } from "../../../shared/detector/detector.ts";
import { isRecurring } from "../../../shared/detector/feature_model.ts";

function python(exc: string, line = 17, frame = "handle", lib = "requests/api.py"): string {
  return [
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 42, in run',
    "    result = handle(job)",
    `  File "/app/handlers.py", line ${line}, in ${frame}`,
    "    return fetch(job.payload)",
    `  File "/usr/lib/python3.12/site-packages/${lib}", line 59, in get`,
    "    raise err",
    exc,
  ].join("\n");
}

function java(exc: string, cause: string, line = 88): string {
  return [
    "2026-12-02 10:00:00.123 ERROR 1 --- [main] c.e.OrderService : Order 42 failed",
    `${exc}: order 42 not payable`,
    `\tat com.example.OrderService.pay(OrderService.java:${line})`,
    "\tat com.example.OrderController.lambda$post$0(OrderController.java:31)",
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    `Caused by: ${cause}: connection reset`,
    "\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:186)",
    "\tat com.example.PaymentClient.send(PaymentClient.java:55)",
    "\t... 12 more",
  ].join("\n");
}

Deno.test("stackFingerprint() of a Python traceback: exception type and app frames", async (t) => {
  const a = stackFingerprint(python("ValueError: invalid literal for int(): 'x'"))!;
  await t.step("what it reads", () => {
    assert.equal(a.language, "python");
    assert.deepEqual(a.exceptions, ["ValueError"]);
    assert.deepEqual(a.frames, ["handlers.handle", "worker.run"]);
    assert.match(a.token, /^stk[a-z]{10}$/);
  });
  await t.step("line numbers, messages and library frames do not change it", () => {
    const b = stackFingerprint(python("ValueError: something else", 99, "handle", "urllib3/x.py"))!;
    assert.equal(b.token, a.token);
  });
  await t.step("a new exception type or throwing frame does", () => {
    assert.notEqual(stackFingerprint(python("KeyError: 'x'"))!.token, a.token);
    assert.notEqual(stackFingerprint(python("ValueError: x", 17, "parse"))!.token, a.token);
  });
  await t.step("a chained traceback lists both exceptions", () => {
    const chained = [
      python("KeyError: 'user'"),
      "",
      "During handling of the above exception, another exception occurred:",
      "",
      python("RuntimeError: lookup failed"),
    ].join("\n");
    assert.deepEqual(stackFingerprint(chained)!.exceptions, ["KeyError", "RuntimeError"]);
  });
});

Deno.test("stackFingerprint() of a Java trace: exception, causes and app frames", () => {
  const a = stackFingerprint(java("java.lang.IllegalStateException", "java.io.IOException"))!;
  assert.equal(a.language, "jvm");
  assert.deepEqual(a.exceptions, ["java.lang.IllegalStateException", "java.io.IOException"]);
  assert.deepEqual(a.frames, [
    "com.example.OrderService.pay",
    "com.example.OrderController.post",
    "com.example.PaymentClient.send",
  ]);
  const b = stackFingerprint(java("java.lang.IllegalStateException", "java.io.IOException", 91))!;
  assert.equal(b.token, a.token);
  const c = stackFingerprint(java("java.lang.IllegalStateException", "java.net.ConnectException"))!;
  assert.notEqual(c.token, a.token);
});

Deno.test("stackFingerprint() of Node, Go, .NET and Ruby traces", async (t) => {
  await t.step("Node", () => {
    const fp = stackFingerprint([
      "TypeError: Cannot read properties of undefined (reading 'id')",
      "    at getUser (/app/src/users.js:14:22)",
      "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/layer.js:95:5)",
      "    at async Router.route (/app/src/router.js:40:5)",
      "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    ].join("\n"))!;
    assert.equal(fp.language, "node");
    assert.deepEqual(fp.exceptions, ["TypeError"]);
    assert.deepEqual(fp.frames, ["users.getUser", "router.Router.route"]);
    const coded = stackFingerprint([
      "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers after they are sent to the client",
      "    at ServerResponse.setHeader (node:_http_outgoing:652:11)",
      "    at sendJson (/app/src/reply.js:9:7)",
    ].join("\n"))!;
    assert.deepEqual(coded.exceptions, ["Error [ERR_HTTP_HEADERS_SENT]"]);
    assert.deepEqual(coded.frames, ["reply.sendJson"]);
  });
  await t.step("Go panic: the panicking goroutine only", () => {
    const go = (n: number, fn: string) =>
      [
        `panic: runtime error: index out of range [${n}] with length 3`,
        "",
        "goroutine 1 [running]:",
        `main.${fn}(...)`,
        "\t/app/main.go:15",
        "main.(*Server).serve(0xc000132000)",
        "\t/app/server.go:8 +0x1d",
        "runtime.goexit()",
        "",
        "goroutine 18 [chan receive]:",
        "main.worker()",
        "\t/app/worker.go:20 +0x3a5",
        "exit status 2",
      ].join("\n");
    const fp = stackFingerprint(go(5, "process"))!;
    assert.equal(fp.language, "go");
    assert.deepEqual(fp.exceptions, ["runtime_error_index_out_of_range_with_length"]);
    assert.deepEqual(fp.frames, ["main.process", "main.Server.serve"]);
    assert.equal(stackFingerprint(go(9, "process"))!.token, fp.token);
    assert.notEqual(stackFingerprint(go(5, "parse"))!.token, fp.token);
  });
  await t.step(".NET with an inner exception", () => {
    const fp = stackFingerprint([
      "Unhandled exception. System.InvalidOperationException: Sequence contains no elements",
      "   at System.Linq.ThrowHelper.ThrowNoElementsException()",
      "   at Shop.Orders.Handle(Order o) in /src/Orders.cs:line 23",
      " ---> System.IO.IOException: disk full",
      "   --- End of inner exception stack trace ---",
    ].join("\n"))!;
    assert.equal(fp.language, "dotnet");
    assert.deepEqual(fp.exceptions, ["System.InvalidOperationException", "System.IO.IOException"]);
    assert.deepEqual(fp.frames, ["Shop.Orders.Handle"]);
  });
  await t.step("Ruby", () => {
    const fp = stackFingerprint([
      "app.rb:3:in `charge': card declined (RuntimeError)",
      "\tfrom /usr/lib/ruby/gems/3.2.0/gems/rack-3.0/lib/rack.rb:7:in `call'",
      "\tfrom app.rb:10:in `<main>'",
    ].join("\n"))!;
    assert.equal(fp.language, "ruby");
    assert.deepEqual(fp.exceptions, ["RuntimeError"]);
    assert.deepEqual(fp.frames, ["app.charge", "app.<main>"]);
  });
});

Deno.test("stackFingerprint() is undefined without a stack trace", () => {
  assert.equal(stackFingerprint("one line"), undefined);
  assert.equal(stackFingerprint("config:\n  port: 80\n  host: x"), undefined);
});

Deno.test("eventLine() puts the fingerprint token first, then the first line", () => {
  assert.equal(eventLine("GET /a 200"), "GET /a 200");
  assert.equal(eventLine("config:\n  port: 80"), "config:");
  const line = eventLine(python("ValueError: x"));
  assert.match(
    line,
    /^stk[a-z]{10} Traceback \(most recent call last\): ValueError handlers\.handle worker\.run$/,
  );
  assert.ok(!line.includes("\n"));
});

Deno.test("trainDetector() on events: a known exception at its usual rate is not alerted, a new one is", async () => {
  // 2,000 events: ordinary lines, and one known traceback at 0.5 % of them.
  const train: string[] = [];
  for (let i = 0; i < 2000; i++) {
    train.push(
      i % 200 === 7
        ? python(`ValueError: invalid literal for int(): '${i}'`, 10 + (i % 9))
        : `INFO worker: job ${i} done in ${i % 300}ms queue=${["a", "b", "c"][i % 3]}`,
    );
  }
  const detector = await trainDetector(train);
  const known = detector.score(python("ValueError: invalid literal for int(): 'zz'", 33));
  assert.equal(known.anomaly, false, JSON.stringify(known));
  const fresh = detector.score(python("KeyError: 'user:42'"));
  assert.equal(fresh.anomaly, true);
  assert.ok(fresh.reasons.includes("new_template"));
  const frame = detector.score(python("ValueError: x", 17, "parse"));
  assert.equal(frame.anomaly, true);
});

Deno.test("isRecurring() tells a template that recurs routinely from a rare one", () => {
  assert.equal(isRecurring(20, 4000), true);
  assert.equal(isRecurring(8, 4000), true);
  assert.equal(isRecurring(7, 4000), false);
  assert.equal(isRecurring(7, 20000), false);
  assert.equal(isRecurring(4, 1000), false);
});
