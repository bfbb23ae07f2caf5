/**
 * The test suite's preflight: before any test starts, check that every
 * program the suite runs is on this machine (redis-server and redis-cli,
 * influxd, dockerd and docker, Debian's static busybox, chromium, tar, ldd,
 * the CA bundle). When one is missing and we run as root with apt, install
 * the Debian packages that provide them; otherwise stop at once and print the
 * exact command to run. No test is ever skipped for a missing service.
 *
 * @example
 * ```ts
 * import { preflight } from "./preflight.ts";
 * await preflight({ log: console.error });
 * ```
 *
 * @module
 */

/** One program or file the suite needs, and the Debian package that has it. */
export interface Requirement {
  /** A program name looked up on PATH, or an absolute path that must exist. */
  need: string;
  /** The Debian package that provides it. */
  pkg: string;
  /** What the suite uses it for (shown when it is missing). */
  why: string;
}

/** Everything the suite needs beyond Deno itself. */
export const REQUIREMENTS: readonly Requirement[] = [
  { need: "redis-server", pkg: "redis-server", why: "Redis Streams, registry, Cluster tests" },
  { need: "redis-cli", pkg: "redis-tools", why: "creating the Redis Cluster" },
  { need: "influxd", pkg: "influxdb", why: "the InfluxDB 1.x history store" },
  { need: "dockerd", pkg: "docker.io", why: "the private Docker engine" },
  { need: "docker", pkg: "docker.io", why: "docker import, swarm and service commands" },
  { need: "/bin/busybox", pkg: "busybox-static", why: "the test containers' image" },
  { need: "/usr/bin/chromium", pkg: "chromium", why: "the dashboard's browser tests" },
  { need: "tar", pkg: "tar", why: "packing images for docker import" },
  { need: "ldd", pkg: "libc-bin", why: "finding the libraries of imported programs" },
  {
    need: "/etc/ssl/certs/ca-certificates.crt",
    pkg: "ca-certificates",
    why: "the CA bundle of imported images",
  },
];

/** Services Debian's packages may start on install; the suite starts its own. */
const _SERVICES_STARTED_BY_PACKAGES = ["redis-server", "influxdb", "docker", "containerd"];

/** Options of {@linkcode preflight}. */
export interface PreflightOptions {
  /** Where progress and problems are written. */
  log: (line: string) => void;
  /**
   * Install missing packages when running as root with apt-get.
   * @default true
   */
  install?: boolean;
}

/**
 * The requirements that are missing on this machine.
 *
 * @param requirements what to check
 * @returns the missing ones, in order
 */
export async function missingRequirements(
  requirements: readonly Requirement[] = REQUIREMENTS,
): Promise<Requirement[]> {
  const missing: Requirement[] = [];
  for (const r of requirements) {
    if (!(await _present(r.need))) missing.push(r);
  }
  return missing;
}

/**
 * Checks the machine and installs what is missing (as root with apt), or
 * explains exactly what to run.
 *
 * @param options where to log, whether to install
 * @returns true when everything is there (after installing), false when the
 * suite cannot run; the reason and the command to run have been logged
 */
export async function preflight(options: PreflightOptions): Promise<boolean> {
  const { log } = options;
  const isRoot = Deno.uid() === 0;
  if (!isRoot) {
    log(
      "The test suite starts a private dockerd and needs root. Run it as root, e.g.: " +
        'sudo env "PATH=$PATH" npx -y deno@2.9.6 task ok',
    );
    return false;
  }
  let missing = await missingRequirements();
  if (missing.length === 0) return true;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  const command = `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(" ")}`;
  for (const m of missing) log(`missing ${m.need} (Debian package ${m.pkg}): ${m.why}`);
  const canInstall = (options.install ?? true) && (await _present("apt-get"));
  if (!canInstall) {
    log(`Install them, then run the tests again:\n  ${command}`);
    return false;
  }
  log(`installing ${pkgs.join(" ")} with apt-get (a minute or two on a fresh machine)`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const ok = (await _run("apt-get", ["update", "-qq"], env)) &&
    (await _run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], env));
  // Debian may have started the packages' own services; the suite starts
  // private ones on free ports, so stop those we just brought in.
  for (const svc of _SERVICES_STARTED_BY_PACKAGES) {
    await _run("service", [svc, "stop"], {}, true);
  }
  missing = await missingRequirements();
  if (!ok || missing.length > 0) {
    log(
      `apt-get could not install everything (${
        missing.map((m) => m.need).join(", ") || "see its output above"
      }). Run this yourself, then the tests again:\n  ${command}`,
    );
    return false;
  }
  log("installed; every service the suite needs is present");
  return true;
}

async function _present(need: string): Promise<boolean> {
  if (need.startsWith("/")) return await _isFile(need);
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && (await _isFile(`${dir}/${need}`))) return true;
  }
  return false;
}

async function _isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function _run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  quiet = false,
): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      env,
      stdin: "null",
      stdout: quiet ? "null" : "inherit",
      stderr: quiet ? "null" : "inherit",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}
