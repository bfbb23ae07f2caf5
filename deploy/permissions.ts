/**
 * Turns deploy/permissions.json into the `deno run` flags of one function,
 * resolved against the task's environment, so each function gets only the
 * hosts, paths and unstable features it needs (never `-A`).
 *
 * As a script it prints the flags and the main module on one line, for
 * deploy/entrypoint.sh:
 *
 * ```sh
 * deno run --allow-read=deploy/permissions.json --allow-env deploy/permissions.ts score
 * ```
 *
 * @module
 */

/** One function's entry in deploy/permissions.json. */
export interface PermissionEntry {
  /** Its main module, relative to the app root. */
  main: string;
  /** Hosts (and `unix:` paths) it may reach or listen on; placeholders allowed. */
  "allow-net": string[];
  /** Paths it may read; placeholders allowed. */
  "allow-read": string[];
  /** Paths it may write; placeholders allowed. */
  "allow-write": string[];
  /** `true` for the whole environment, a list of names, or `false`. */
  "allow-env": boolean | string[];
  /** System APIs it may call (`hostname`, ...). */
  "allow-sys": string[];
  /** Unstable features (`cron`, ...). */
  unstable: string[];
}

/** Options of {@linkcode permissionFlags}. */
export interface PermissionFlagsOptions {
  /**
   * The environment the function will run with.
   * @default {}
   */
  env?: Record<string, string | undefined>;
  /**
   * The function's arguments ({ARG_URL} is the first that parses as a URL).
   * @default []
   */
  args?: readonly string[];
}

/**
 * The `deno run` flags of one function.
 *
 * @param table the parsed deploy/permissions.json
 * @param name the function
 * @param options the environment and arguments the placeholders resolve from
 * @returns the flags (never `-A`) followed by nothing else
 * @throws {RangeError} when the function is not in the table
 * @throws {TypeError} when a placeholder's URL cannot be parsed
 */
export function permissionFlags(
  table: Record<string, unknown>,
  name: string,
  options: PermissionFlagsOptions = {},
): string[] {
  const entry = table[name] as PermissionEntry | undefined;
  if (name.startsWith("$") || !entry || typeof entry !== "object") {
    const names = Object.keys(table).filter((k) => !k.startsWith("$"));
    throw new RangeError(`Unknown function "${name}": expected one of ${names.join(", ")}`);
  }
  const env = options.env ?? {};
  const args = options.args ?? [];
  const resolve = (items: string[]) => [...new Set(items.flatMap((i) => _resolve(i, env, args)))];
  const flags = ["--cached-only", "--frozen", "--no-prompt"];
  const net = resolve(entry["allow-net"]);
  if (net.length > 0) flags.push(`--allow-net=${net.join(",")}`);
  const read = resolve(entry["allow-read"]);
  if (read.length > 0) flags.push(`--allow-read=${read.join(",")}`);
  const write = resolve(entry["allow-write"]);
  if (write.length > 0) flags.push(`--allow-write=${write.join(",")}`);
  const allowEnv = entry["allow-env"];
  if (allowEnv === true) flags.push("--allow-env");
  else if (Array.isArray(allowEnv) && allowEnv.length > 0) {
    flags.push(`--allow-env=${allowEnv.join(",")}`);
  }
  if (entry["allow-sys"].length > 0) flags.push(`--allow-sys=${entry["allow-sys"].join(",")}`);
  for (const feature of entry.unstable) flags.push(`--unstable-${feature}`);
  return flags;
}

function _hostPort(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`Cannot parse ${what} ${JSON.stringify(value)}: expected a URL`);
  }
  const defaults: Record<string, string> = {
    "redis:": "6379",
    "rediss:": "6379",
    "http:": "80",
    "https:": "443",
    "tcp:": "2375",
  };
  return `${url.hostname}:${url.port || defaults[url.protocol] || "80"}`;
}

/** The socket path of `unix:///path/to.sock[:/http/path]`. */
function _unixPath(url: string): string {
  return url.slice("unix://".length).split(":")[0]!;
}

function _resolve(item: string, env: Record<string, string | undefined>, args: readonly string[]) {
  const m = /^\{([A-Z_]+)(?::([A-Z0-9_]+))?\}$/.exec(item);
  if (!m) return [item];
  const [, kind, name = ""] = m;
  const value = env[name]?.trim() || undefined;
  switch (kind) {
    case "URL":
      return value ? [_hostPort(value, name)] : [];
    case "TCP":
      return value?.startsWith("tcp://") ? [_hostPort(value, name)] : [];
    case "UNIX":
    case "UNIX_NET": {
      const url = value ?? "unix:///var/run/docker.sock";
      if (!url.startsWith("unix://")) return [];
      const path = url.slice("unix://".length);
      return [kind === "UNIX" ? path : `unix:${path}`];
    }
    case "LIST":
      return (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    case "LISTEN":
      return [`${env.API_HOST?.trim() || "127.0.0.1"}:${env.API_PORT?.trim() || "8080"}`];
    case "ARG_URL": {
      const arg = args.find((a) => /^[a-z]+:\/\//.test(a));
      if (arg?.startsWith("unix://")) return [`unix:${_unixPath(arg)}`, "127.0.0.1:80"];
      return arg ? [_hostPort(arg, "the argument")] : [];
    }
    case "ARG_LISTEN":
    case "ARG_LISTEN_UNIX": {
      const at = args.indexOf("--listen");
      const listen = at === -1 ? "0.0.0.0:2375" : args[at + 1] ?? "";
      if (listen.startsWith("unix:")) {
        return kind === "ARG_LISTEN" ? [listen] : [listen.slice("unix:".length)];
      }
      return kind === "ARG_LISTEN" ? [listen] : [];
    }
    case "ARG_UNIX": {
      const arg = args.find((a) => a.startsWith("unix://"));
      return arg ? [_unixPath(arg)] : [];
    }
    default:
      throw new TypeError(`Cannot resolve the placeholder ${item}: unknown kind ${kind}`);
  }
}

if (import.meta.main) {
  const [name = "", ...rest] = Deno.args;
  const url = new URL("./permissions.json", import.meta.url);
  const table = JSON.parse(await Deno.readTextFile(url)) as Record<string, unknown>;
  const flags = permissionFlags(table, name, { env: Deno.env.toObject(), args: rest });
  const entry = table[name] as PermissionEntry;
  console.log([...flags, entry.main].join(" "));
}
