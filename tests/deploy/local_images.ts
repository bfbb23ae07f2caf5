/**
 * Base images for the deploy tests, made from this machine's own files with
 * `docker import` (nothing can be pulled here): each root filesystem holds
 * the given programs, the shared libraries `ldd` lists for them, Debian's
 * static busybox as `/bin/sh` and its applets, CA certificates and users.
 *
 * @module
 */

import type { DockerService } from "../harness/services.ts";

/** What goes into one imported image. */
export interface RootfsSpec {
  /**
   * Programs copied to the same path inside (symlinks resolved), or from a
   * host path to another path inside.
   */
  programs: (string | { from: string; to: string })[];
  /** Image config lines for `docker import -c` (ENV, USER, CMD...). */
  changes?: string[];
  /** Empty directories to create (mode 1777 for /tmp, 0755 otherwise). */
  dirs?: string[];
}

async function _run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function _copy(from: string, root: string, to = from): Promise<void> {
  const real = await Deno.realPath(from);
  const dest = `${root}${to}`;
  await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(real, dest);
  await Deno.chmod(dest, (await Deno.stat(real)).mode! & 0o777);
}

/**
 * Imports an image whose root filesystem is made from local files.
 *
 * @param engine the engine to import into
 * @param tag the image name
 * @param spec the programs and settings
 * @returns the image name
 */
export async function importRootfsImage(
  engine: DockerService,
  tag: string,
  spec: RootfsSpec,
): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "tailwise-rootfs-" });
  try {
    // The temp dir is 0700; as the image's "/" it would lock out non-root users.
    await Deno.chmod(root, 0o755);
    const libs = new Set<string>();
    for (const entry of spec.programs) {
      const { from, to } = typeof entry === "string" ? { from: entry, to: entry } : entry;
      await _copy(from, root, to);
      const ldd = await _run("ldd", [from]).catch(() => "");
      for (const m of ldd.matchAll(/(\/[^\s]+\.so[^\s]*)/g)) libs.add(m[1]!);
    }
    for (const lib of libs) await _copy(lib, root);
    await _copy("/bin/busybox", root);
    const applets = (await _run("/bin/busybox", ["--list"])).split("\n").filter(Boolean);
    for (const a of applets) {
      const target = `${root}/bin/${a}`;
      if (a !== "busybox") await Deno.symlink("busybox", target).catch(() => {});
    }
    for (const d of ["/etc/ssl/certs", "/tmp", "/data", "/run", ...(spec.dirs ?? [])]) {
      await Deno.mkdir(`${root}${d}`, { recursive: true });
      await Deno.chmod(`${root}${d}`, d === "/tmp" ? 0o1777 : 0o755);
    }
    await Deno.copyFile(
      "/etc/ssl/certs/ca-certificates.crt",
      `${root}/etc/ssl/certs/ca-certificates.crt`,
    );
    await Deno.writeTextFile(
      `${root}/etc/passwd`,
      "root:x:0:0:root:/root:/bin/sh\ndeno:x:1993:1993:deno:/home/deno:/bin/sh\n",
    );
    await Deno.writeTextFile(`${root}/etc/group`, "root:x:0:\ndeno:x:1993:\n");
    const tar = await new Deno.Command("tar", {
      args: ["-C", root, "-c", "."],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!tar.success) throw new Error(`tar of the ${tag} rootfs failed`);
    const changes = [
      "ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
      ...(spec.changes ?? []),
    ];
    await engine.docker(["import", ...changes.flatMap((c) => ["-c", c]), "-", tag], {
      stdin: tar.stdout,
    });
    return tag;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/**
 * A stand-in for `denoland/deno:2.9.6`: the deno running the tests (wherever
 * it lives: npm's global bin, or npx's cache), as /usr/bin/deno inside.
 *
 * @param engine the engine to import into
 * @returns the image name
 */
export function importDenoImage(engine: DockerService): Promise<string> {
  return importRootfsImage(engine, "tailwise-test/deno:2.9.6", {
    programs: [{ from: Deno.execPath(), to: "/usr/bin/deno" }],
    changes: ['CMD ["deno"]'],
  });
}

/**
 * A stand-in for `redis:7.0`: Debian's redis-server and redis-cli.
 *
 * @param engine the engine to import into
 * @returns the image name
 */
export function importRedisImage(engine: DockerService): Promise<string> {
  return importRootfsImage(engine, "tailwise-test/redis:7.0", {
    programs: ["/usr/bin/redis-server", "/usr/bin/redis-cli"],
    changes: ["WORKDIR /data", 'CMD ["redis-server"]'],
  });
}

/**
 * A stand-in for `influxdb:1.8`: Debian's influxd 1.6 (the same HTTP API).
 *
 * @param engine the engine to import into
 * @returns the image name
 */
export function importInfluxImage(engine: DockerService): Promise<string> {
  return importRootfsImage(engine, "tailwise-test/influxdb:1.8", {
    programs: ["/usr/bin/influxd"],
    dirs: ["/var/lib/influxdb"],
    changes: ['CMD ["influxd", "run"]'],
  });
}
