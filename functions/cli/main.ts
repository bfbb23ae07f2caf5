/**
 * Entry point of `deno task cli`: reads the config (only when a command needs
 * the registry), builds the dependencies and runs {@linkcode runCli}.
 *
 * @module
 */

import { loadConfig } from "../../shared/runtime/config.ts";
import { openModelRegistry } from "../../shared/adapters/open_model_registry.ts";
import { runCli } from "./cli.ts";

const encoder = new TextEncoder();

async function _write(stream: typeof Deno.stdout, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += await stream.write(bytes.subarray(off));
}

const code = await runCli(Deno.args, {
  openRegistry: () => openModelRegistry(loadConfig()),
  stdout: (text) => _write(Deno.stdout, text),
  stderr: (text) => _write(Deno.stderr, text),
  stderrIsTerminal: Deno.stderr.isTerminal(),
  openFile: async (path) => {
    if (path === "-") return Deno.stdin.readable;
    const stat = await Deno.stat(path);
    if (stat.isDirectory) throw new Deno.errors.IsADirectory(path);
    return (await Deno.open(path, { read: true })).readable;
  },
});
Deno.exit(code);
