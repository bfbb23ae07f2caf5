/**
 * A CPU profile of a running Deno process started with
 * `--inspect=127.0.0.1:<port>` (e.g. the collector of `BENCH_INSPECT_PORT=<port>
 * deno task bench collect`): samples it over the inspector protocol for a
 * while, writes the profile (`.cpuprofile`, for Chrome's DevTools) and prints
 * the functions with the most self time among the samples that were not idle.
 *
 * `deno run -A bench/cpu_profile.ts <port> <ms> <out.cpuprofile>`
 *
 * @module
 */

interface _CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface _Profile {
  nodes: { id: number; callFrame: _CallFrame }[];
  samples: number[];
}

const [port, ms, out] = Deno.args;
if (!port || !ms || !out) {
  console.error("Usage: deno run -A bench/cpu_profile.ts <inspector port> <ms> <out.cpuprofile>");
  Deno.exit(2);
}
let targets: { webSocketDebuggerUrl: string }[] = [];
for (let i = 0; i < 100 && targets.length === 0; i++) {
  try {
    targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  } catch {
    await new Promise((r) => setTimeout(r, 100)); // not listening yet
  }
}
if (targets.length === 0) {
  console.error(`No inspector answered on 127.0.0.1:${port} within 10 s`);
  Deno.exit(1);
}
const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
await new Promise((r) => ws.onopen = r);
let lastId = 0;
const waiting = new Map<number, (result: Record<string, unknown>) => void>();
ws.onmessage = (e) => {
  const m = JSON.parse(e.data) as { id?: number; result?: Record<string, unknown> };
  if (m.id !== undefined) waiting.get(m.id)?.(m.result ?? {});
};
const call = (method: string, params: object = {}) =>
  new Promise<Record<string, unknown>>((resolve) => {
    const id = ++lastId;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

const intervalUs = 200;
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: intervalUs });
await call("Profiler.start");
await new Promise((r) => setTimeout(r, Number(ms)));
const profile = (await call("Profiler.stop")).profile as _Profile;
ws.close();
Deno.writeTextFileSync(out, JSON.stringify(profile));

const counts = new Map<number, number>();
for (const s of profile.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
const self = new Map<string, number>();
let active = 0;
for (const node of profile.nodes) {
  const n = counts.get(node.id) ?? 0;
  const f = node.callFrame;
  // Idle, and the process waiting to exit after its work, are not work.
  if (n === 0 || f.functionName === "(idle)" || f.functionName === "op_exit") continue;
  const where = f.url ? ` ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}` : "";
  const key = `${f.functionName || "(anonymous)"}${where}`;
  self.set(key, (self.get(key) ?? 0) + n);
  active += n;
}
console.log(`${active} busy samples (about ${(active * intervalUs / 1000).toFixed(0)} ms)`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`${(100 * n / active).toFixed(1).padStart(5)} %  ${name}`);
}
