/**
 * A writer for the crash test: appends batches to the data dir's log stream
 * (with a checkpoint state key each), reads and acks them in group `g`, and
 * prints one line per call that resolved: `A <first id> <n> <checkpoint>` for an
 * append, `K <id> ...` for an ack. The test kills it with SIGKILL mid-way.
 *
 * Run with the flags of `deno task start`.
 *
 * @module
 */

import { SqliteLogStream } from "../../../../shared/adapters/sqlite/sqlite_log_stream.ts";

const [dataDir] = Deno.args;
const stream = await SqliteLogStream.open(dataDir!);
await stream.createGroup("logs", "g");
const out = Deno.stdout;
const enc = new TextEncoder();
const say = (s: string) => out.writeSync(enc.encode(s + "\n"));
say("ready");
for (let i = 0;; i++) {
  const batch = Array.from(
    { length: 50 },
    (_, j) => ({ n: String(i * 50 + j), l: "x".repeat(200) }),
  );
  const ids = await stream.append("logs", batch, { state: { ckpt: String(i) } });
  say(`A ${ids[0]} ${ids.length} ${i}`);
  const got = await stream.readNew("logs", "g", "c", { count: 40 });
  const done = got.filter((m) => Number(m.fields.n) % 3 !== 0).map((m) => m.id);
  if (done.length > 0) {
    await stream.ack("logs", "g", done);
    say(`K ${done.join(" ")}`);
  }
}
