import { EmbeddedModelRegistry } from "../../../../shared/adapters/embedded/embedded_model_registry.ts";
import { modelChecksum } from "../../../../shared/ports/model_registry.ts";
import { modelRegistryConformance } from "../../ports/model_registry_conformance.ts";

Deno.test("EmbeddedModelRegistry passes the model registry conformance suite", async (t) => {
  await modelRegistryConformance(t, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tailwise-models-" });
    return {
      open: ({ keepVersions }) => EmbeddedModelRegistry.open(dir, { keepVersions, pollMs: 50 }),
      async corrupt(container: string, version: number) {
        const hash = (await modelChecksum(new TextEncoder().encode(container))).slice(0, 32);
        const path = `${dir}/models/${hash}/${version}.bin`;
        const blob = await Deno.readFile(path);
        blob[0] = blob[0]! ^ 0xff;
        await Deno.writeFile(path, blob);
      },
      async [Symbol.asyncDispose]() {
        await Deno.remove(dir, { recursive: true });
      },
    };
  });
});
