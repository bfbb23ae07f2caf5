/**
 * Helpers of the tests that run a single-node swarm on a private engine:
 * what such an engine leaves on the host (docker_gwbridge and its iptables
 * rules) and taking it all down again.
 *
 * @module
 */

import type { DockerService } from "./services.ts";

async function _run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return { ok: o.success, out: new TextDecoder().decode(o.stdout) };
  } catch {
    return { ok: false, out: "" };
  }
}

/**
 * Whether the host has a docker_gwbridge link now (take it before a swarm starts, so that
 * {@link tearDownSwarm} removes only what the test made).
 *
 * @returns true when the link exists
 */
export async function gwbridgePresent(): Promise<boolean> {
  return (await _run("ip", ["link", "show", "docker_gwbridge"])).ok;
}

/** Removes what a swarm engine leaves on the host: docker_gwbridge and its iptables rules. */
export async function removeGwbridge(): Promise<void> {
  await _run("ip", ["link", "delete", "docker_gwbridge"]);
  for (const table of ["filter", "nat"]) {
    const rules = (await _run("iptables", ["-t", table, "-S"])).out.split("\n");
    for (const rule of rules.filter((r) => r.startsWith("-A ") && r.includes("docker_gwbridge"))) {
      await _run("iptables", ["-t", table, "-D", ...rule.slice(3).split(" ")]);
    }
  }
}

/**
 * Takes a swarm test's engine down: removes its containers left, leaves the swarm, stops the
 * engine, then removes docker_gwbridge unless the host had it before.
 *
 * @param engine the private engine
 * @param state whether the swarm was initialised, and {@link gwbridgePresent} from before it
 */
export async function tearDownSwarm(
  engine: DockerService,
  state: { swarm: boolean; gwbridgeBefore: boolean },
): Promise<void> {
  const left = (await engine.docker(["ps", "-aq"]).catch(() => "")).split("\n").filter(Boolean);
  if (left.length > 0) await engine.docker(["rm", "-f", ...left]).catch(() => "");
  if (state.swarm) await engine.docker(["swarm", "leave", "--force"]).catch(() => "");
  await engine[Symbol.asyncDispose]();
  if (!state.gwbridgeBefore) await removeGwbridge();
}
