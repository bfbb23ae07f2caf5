import { InfluxLogStore } from "../../../../shared/adapters/influx/influx_log_store.ts";
import { suiteEnv } from "../../../harness/services.ts";
import { dropDatabase, testDatabase } from "./influx_helpers.ts";
import { logStoreConformance } from "../../ports/log_store_conformance.ts";

/** A store on a database of its own, dropped on dispose. */
async function _openTemp(): Promise<InfluxLogStore> {
  const url = suiteEnv().influxUrl;
  const database = testDatabase();
  const store = new InfluxLogStore({ url, database, retentionPolicy: "tw", retentionMs: 0 });
  await store.prepare();
  // Private fields need the real object as `this`, so methods are bound to it.
  return new Proxy(store, {
    get(target, prop) {
      if (prop === Symbol.asyncDispose) {
        return async () => {
          try {
            await target[Symbol.asyncDispose]();
          } finally {
            await dropDatabase(url, database);
          }
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

logStoreConformance("InfluxLogStore", _openTemp);
