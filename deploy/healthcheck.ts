/**
 * A container health probe small enough to run every few seconds: exits 0
 * when the target answers, 1 otherwise, within a deadline.
 *
 * ```sh
 * entrypoint.sh healthcheck http://127.0.0.1:8080/health   # 2xx expected
 * entrypoint.sh healthcheck tcp://redis:6379                # a TCP connect
 * entrypoint.sh healthcheck unix:///run/x.sock:/_ping        # HTTP over a unix socket
 * ```
 *
 * @module
 */

/**
 * Probes an HTTP URL (a 2xx answer), a `tcp://host:port` (a connect) or
 * `unix:///path.sock:/http/path` (a 2xx answer over the unix socket).
 *
 * @param target the URL
 * @param timeoutMs the deadline
 * @returns null when healthy, else what went wrong
 */
export async function probe(target: string, timeoutMs = 3000): Promise<string | null> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    if (target.startsWith("unix://")) {
      const [path, httpPath = "/"] = target.slice("unix://".length).split(":");
      using client = Deno.createHttpClient({ proxy: { transport: "unix", path: path! } });
      const res = await fetch(`http://127.0.0.1${httpPath}`, { client, signal });
      await res.body?.cancel();
      return res.ok ? null : `${target} answered ${res.status}`;
    }
    const url = new URL(target);
    if (url.protocol === "tcp:") {
      const conn = await Deno.connect({
        hostname: url.hostname,
        port: Number(url.port),
        signal,
      });
      conn.close();
      return null;
    }
    const res = await fetch(url, { signal });
    await res.body?.cancel();
    return res.ok ? null : `${target} answered ${res.status}`;
  } catch (e) {
    return `${target} is unreachable: ${e instanceof Error ? e.message : String(e)}`;
  }
}

if (import.meta.main) {
  const target = Deno.args[0];
  if (!target) {
    console.error("usage: healthcheck.ts <http://host:port/path | tcp://host:port>");
    Deno.exit(64);
  }
  const problem = await probe(target);
  if (problem) console.error(problem);
  Deno.exit(problem ? 1 : 0);
}
