/**
 * The api as a process: reads the config, opens the adapters (Redis when
 * `REDIS_URL` is set, the embedded ones under the data dir otherwise) and
 * runs {@linkcode buildApi} on `API_HOST:API_PORT` until SIGTERM or SIGINT,
 * then stops taking requests, lets running ones finish and closes the
 * adapters. `POST /train/:container` trains in this process (its lease keeps
 * it from racing the train replica). `deno task start` builds the same
 * function.
 *
 * `deno task api`.
 *
 * @module
 */

import { exitOnHelp } from "../../shared/runtime/task_help.ts";
import { openAdapters } from "../../shared/adapters/open_adapters.ts";
import { DataDirLockedError } from "../../shared/adapters/sqlite/data_dir_lock.ts";
import { DataDirError } from "../../shared/adapters/sqlite/sqlite_database.ts";
import { redactConfig } from "../../shared/runtime/config.ts";
import { createLogger } from "../../shared/runtime/logger.ts";
import { runUntilSignal } from "../../shared/runtime/tailwise_function.ts";
import { AddressInUseError, buildApi, loadApiConfig } from "./build.ts";

if (import.meta.main) {
  exitOnHelp("api");
  const loaded = await loadApiConfig();
  if (loaded === null) Deno.exit(2);
  const { config, token } = loaded;
  const log = createLogger("api", { level: config.logLevel });
  log.info("starting", { config: redactConfig(config), token: `from ${token.source}` });
  let opened;
  try {
    opened = await openAdapters(config, { name: `api-${config.instance}`, logStore: true });
  } catch (e) {
    if (!(e instanceof DataDirLockedError || e instanceof DataDirError)) throw e;
    log.error(e.message);
    Deno.exit(2);
  }
  await using adapters = opened;
  const api = buildApi(config, { ...adapters, logStore: adapters.logStore! }, {
    token: token.token,
    log,
  });
  try {
    await runUntilSignal(api, log);
  } catch (e) {
    if (!(e instanceof AddressInUseError)) throw e;
    console.error(`tailwise api: ${e.message}`);
    Deno.exit(2);
  }
}
