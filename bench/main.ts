/**
 * `deno task bench [case ...] [--json]`: runs benchmark cases and prints their
 * figures. A case is a module `bench/<case>_bench.ts` exporting a function
 * whose name starts with `bench`; it returns its figures as one flat object.
 * With no case named, every case runs. `--json` prints every figure of every
 * case as one JSON object `{ machine, <case>: { ... } }`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cpus, totalmem } from "node:os";
import { preflight } from "../tests/harness/preflight.ts";

/** The figures of one case. */
export type Figures = Record<string, number | string | boolean | null>;

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { json: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
});

const here = new URL(".", import.meta.url);
const available = [...Deno.readDirSync(here)]
  .map((e) => /^(.+)_bench\.ts$/.exec(e.name)?.[1])
  .filter((n): n is string => n !== undefined)
  .sort();

if (values.help) {
  console.log(
    `Usage: deno task bench [case ...] [--json]\n\nCases: ${available.join(", ")}\n` +
      "With no case, all run. --json prints all figures as one JSON object.",
  );
  Deno.exit(0);
}
const unknown = positionals.filter((p) => !available.includes(p));
if (unknown.length > 0) {
  console.error(
    `Unknown benchmark case(s) ${unknown.join(", ")}: expected one of ${available.join(", ")}`,
  );
  Deno.exit(2);
}

// The cases start private services (dockerd, redis-server, influxd), like the
// test suite: install what is missing, or say what to install.
if (!(await preflight({ log: (msg) => console.error(`[bench] ${msg}`) }))) Deno.exit(1);

const machine = {
  cpu: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  deno: Deno.version.deno,
  os: Deno.build.os,
};
const results: Record<string, unknown> = { machine };
for (const name of positionals.length > 0 ? positionals : available) {
  const mod = await import(new URL(`./${name}_bench.ts`, here).href) as Record<string, unknown>;
  const fn = Object.entries(mod).find(([k, v]) => k.startsWith("bench") && typeof v === "function")
    ?.[1] as ((options: { log: (msg: string) => void }) => Promise<Figures>) | undefined;
  if (!fn) throw new TypeError(`bench/${name}_bench.ts exports no bench* function`);
  const log = (msg: string) => console.error(`[${name}] ${msg}`);
  log("running");
  const figures = await fn({ log });
  results[name] = figures;
  if (!values.json) {
    console.log(`\n## ${name}`);
    for (const [k, v] of Object.entries(figures)) {
      console.log(`${k.padEnd(40)} ${typeof v === "number" ? _fmt(v) : String(v)}`);
    }
  }
}
if (values.json) console.log(JSON.stringify(results));
else console.log(`\nmachine: ${JSON.stringify(machine)}`);

function _fmt(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  return n.toFixed(Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 1 ? 2 : 4);
}
