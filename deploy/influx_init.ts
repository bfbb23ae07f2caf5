/**
 * One-shot setup of an InfluxDB 1.x started with authentication on and no
 * user: creates tailwise's admin user with the password from a Docker secret
 * (InfluxDB allows exactly this one unauthenticated statement while it has no
 * user), then checks that the credentials work. Run again, it only checks.
 *
 * ```sh
 * entrypoint.sh influx_init http://influxdb:8086 tailwise /run/secrets/influx_password
 * ```
 *
 * @module
 */

/** Options of {@linkcode initInflux}. */
export interface InitInfluxOptions {
  /**
   * How long to wait for InfluxDB to answer `/ping`.
   * @default 120000
   */
  timeoutMs?: number;
  /**
   * Progress messages.
   * @default console.info
   */
  log?: (message: string) => void;
}

/**
 * Creates the admin user if InfluxDB has none, then verifies the credentials.
 *
 * @param url InfluxDB's base URL
 * @param credentials the user and password
 * @param options deadline and logging
 * @returns true when the user was created, false when it existed
 * @throws {Error} when InfluxDB does not answer in time or rejects the credentials
 */
export async function initInflux(
  url: string,
  credentials: { username: string; password: string },
  options: InitInfluxOptions = {},
): Promise<boolean> {
  const log = options.log ?? console.info;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  while (true) {
    try {
      const ping = await fetch(new URL("/ping", url), { signal: AbortSignal.timeout(2000) });
      await ping.body?.cancel();
      if (ping.status === 204) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`InfluxDB at ${url} did not answer /ping in time`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const query = async (q: string, auth: boolean) => {
    const body = new URLSearchParams({ q });
    const headers: Record<string, string> = {};
    if (auth) {
      headers.authorization = `Basic ${btoa(`${credentials.username}:${credentials.password}`)}`;
    }
    const res = await fetch(new URL("/query", url), { method: "POST", body, headers });
    return { status: res.status, text: await res.text() };
  };
  const check = await query("SHOW USERS", true);
  if (check.status === 200 && !check.text.includes('"error"')) {
    log(`InfluxDB user ${credentials.username} exists`);
    return false;
  }
  const name = credentials.username.replaceAll('"', "");
  const password = credentials.password.replaceAll("\\", "\\\\").replaceAll("'", "\\'");
  const created = await query(
    `CREATE USER "${name}" WITH PASSWORD '${password}' WITH ALL PRIVILEGES`,
    false,
  );
  if (created.status !== 200 || created.text.includes('"error"')) {
    throw new Error(
      `InfluxDB refused to create ${name} (${created.status}): the database already has ` +
        `users and the secret does not match theirs`,
    );
  }
  const verify = await query("SHOW USERS", true);
  if (verify.status !== 200) throw new Error(`The new InfluxDB user ${name} cannot log in`);
  log(`InfluxDB user ${name} created`);
  return true;
}

if (import.meta.main) {
  const [url, username, passwordFile] = Deno.args;
  if (!url || !username || !passwordFile) {
    console.error("usage: influx_init.ts <influx url> <username> <password file>");
    Deno.exit(64);
  }
  const password = (await Deno.readTextFile(passwordFile)).trim();
  await initInflux(url, { username, password });
}
