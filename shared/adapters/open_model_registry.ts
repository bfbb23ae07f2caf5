/**
 * Picks the model registry adapter from the config: Redis when `REDIS_URL`
 * is set, the data dir's SQLite database otherwise (without the data dir's
 * lock: the CLI may use the registry while `deno task start` runs; SQLite
 * makes their writes take turns).
 *
 * @module
 */

import type { Config } from "../runtime/config.ts";
import { SqliteModelRegistry } from "./sqlite/sqlite_model_registry.ts";
import type { ModelRegistry } from "../ports/model_registry.ts";
import { RedisModelRegistry } from "./redis/redis_model_registry.ts";

/**
 * Opens the model registry the config asks for. The caller disposes it.
 *
 * @param config the settings (`redis`, `dataDir`, `train.keepVersions`, `instance`)
 * @returns a {@linkcode RedisModelRegistry} when `config.redis.url` is set,
 *   else a {@linkcode SqliteModelRegistry} in `config.dataDir`
 * @throws {Deno.errors.PermissionDenied} when the data dir cannot be created (embedded)
 */
export async function openModelRegistry(config: Config): Promise<ModelRegistry> {
  if (config.redis.url !== null) {
    return RedisModelRegistry.connect(config.redis.url, {
      username: config.redis.username,
      password: config.redis.password,
      name: `tailwise-models-${config.instance}`,
      cluster: config.redis.cluster,
      keepVersions: config.train.keepVersions,
    });
  }
  return await SqliteModelRegistry.open(config.dataDir, {
    keepVersions: config.train.keepVersions,
  });
}
