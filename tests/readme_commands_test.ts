/**
 * The README's two commands are a promise, and CI must prove exactly them:
 * `.ci/run` runs the README's test command verbatim.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** The commands of the README's "The two commands" code block, comments stripped. */
async function _readmeCommands(): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const section = readme.split("## The two commands")[1];
  assert.ok(section, 'README.md has no "## The two commands" section');
  const block = section.match(/```sh\n([\s\S]*?)```/);
  assert.ok(block?.[1], 'README.md\'s "The two commands" section has no ```sh block');
  return block[1].split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter(Boolean);
}

Deno.test("README has exactly two commands: start and the test gate, through npx", async () => {
  const commands = await _readmeCommands();
  assert.equal(commands.length, 2, `expected two commands, got ${JSON.stringify(commands)}`);
  assert.match(commands[0]!, /^npx -y deno@\d+\.\d+\.\d+ task start\b/);
  assert.match(commands[1]!, /^npx -y deno@\d+\.\d+\.\d+ task ok$/);
});

Deno.test(".ci/run runs the README's test command verbatim and nothing else", async () => {
  const [, testCommand] = await _readmeCommands();
  const script = await Deno.readTextFile(new URL(".ci/run", ROOT));
  const commands = script.split("\n").map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#") && !l.startsWith("set ") && !l.startsWith("cd "));
  assert.deepEqual(commands, [testCommand]);
});

Deno.test("the README's Deno version is the one deno.lock was made with and CI pins", async () => {
  const commands = await _readmeCommands();
  const versions = new Set(commands.map((c) => c.match(/deno@([\d.]+)/)?.[1]));
  assert.equal(versions.size, 1, `the two commands pin different Deno versions: ${[...versions]}`);
  assert.ok(versions.has(Deno.version.deno), `tests run on Deno ${Deno.version.deno}`);
});
