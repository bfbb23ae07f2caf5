import assert from "node:assert/strict";
import Docker from "dockerode";
import { ContainerWatch, LineRing } from "../../../functions/collect/container_watch.ts";
import { openAdapters } from "../../../shared/adapters/open_adapters.ts";
import { fieldsToAnomaly } from "../../../shared/ports/anomaly.ts";
import { loadConfig } from "../../../shared/runtime/config.ts";
import { createLogger } from "../../../shared/runtime/logger.ts";
import { IncidentManager } from "../../../shared/runtime/incidents.ts";
import { suiteEnv } from "../../harness/services.ts";

Deno.test("LineRing keeps the last lines, oldest first, each cut at 2,000 characters", () => {
  const ring = new LineRing(3);
  assert.deepEqual(ring.lines(), []);
  for (const l of ["a", "b", "c", "d"]) ring.push(l);
  assert.deepEqual(ring.lines(), ["b", "c", "d"]);
  ring.push("x".repeat(5000));
  assert.equal(ring.lines()[2]!.length, 2000);
  const none = new LineRing(0);
  none.push("a");
  assert.deepEqual(none.lines(), []);
});

Deno.test("ContainerWatch: a replayed die event adds nothing; with incidents the anomaly joins its service's incident", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tailwise-watch-" });
  try {
    const config = loadConfig({ TAILWISE_DATA_DIR: dir });
    await using adapters = await openAdapters(config);
    const incidents = new IncidentManager(adapters.incidents);
    const watch = new ContainerWatch({
      docker: new Docker({ socketPath: suiteEnv().dockerSocket }),
      log: adapters.stream,
      logger: createLogger("test", { write: () => {} }),
      incidents,
    }, { anomalyStream: "a", settleMs: 10 });
    const id = "f".repeat(64);
    watch.ring(id).push("panic: out of cheese");
    const die = {
      Action: "die",
      Actor: {
        ID: id,
        Attributes: {
          name: "shop_web.1.abc",
          image: "shop/web:2",
          exitCode: "2",
          "com.docker.swarm.service.name": "shop_web",
        },
      },
      timeNano: Date.now() * 1e6,
    };
    watch.event(die);
    watch.event(die);
    await watch.close();
    const list = (await adapters.stream.range("a")).map((m) => fieldsToAnomaly(m.id, m.fields));
    assert.equal(list.length, 1);
    assert.deepEqual(list[0]!.reasons, ["exited"]);
    assert.equal(list[0]!.container, "shop_web");
    assert.equal(list[0]!.version, "shop/web:2");
    assert.deepEqual(list[0]!.lastLines, ["panic: out of cheese"]);
    const incident = await adapters.incidents.current("shop_web");
    assert.ok(incident, "an open incident for the service");
    assert.deepEqual(incident.members, [list[0]!.id]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
