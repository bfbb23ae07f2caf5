import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Every .ts file under a folder of the repository, relative to the root. */
function _files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(join(ROOT, d))) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".ts")) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The repository paths a file imports (relative specifiers only). */
function _imports(file: string): string[] {
  const text = Deno.readTextFileSync(join(ROOT, file));
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms)) {
    out.push(relative(ROOT, join(ROOT, dirname(file), m[1]!)));
  }
  return out;
}

function _violations(files: string[], bad: (file: string, target: string) => boolean): string[] {
  const out: string[] = [];
  for (const f of files) for (const t of _imports(f)) if (bad(f, t)) out.push(`${f} -> ${t}`);
  return out;
}

const _code = [..._files("functions"), ..._files("shared"), ..._files("bench"), ..._files("tests")];

Deno.test("layering: outside shared/detector/ only detector.ts, its public surface, is imported", () => {
  const outside = _code.filter((f) =>
    !f.startsWith("shared/detector/") && !f.startsWith("tests/shared/detector/")
  );
  assert.deepEqual(
    _violations(
      outside,
      (_, t) => t.startsWith("shared/detector/") && t !== "shared/detector/detector.ts",
    ),
    [],
  );
});

Deno.test("layering: the detector imports nothing outside itself", () => {
  assert.deepEqual(
    _violations(_files("shared/detector"), (_, t) => !t.startsWith("shared/detector/")),
    [],
  );
});

Deno.test("layering: ports import no adapter, source or function", () => {
  assert.deepEqual(
    _violations(
      _files("shared/ports"),
      (_, t) =>
        t.startsWith("shared/adapters/") || t.startsWith("shared/sources/") ||
        t.startsWith("functions/"),
    ),
    [],
  );
});

Deno.test("layering: shared/ imports no function, and no function imports another", () => {
  assert.deepEqual(_violations(_files("shared"), (_, t) => t.startsWith("functions/")), []);
  const own = (f: string) => f.split("/")[1];
  assert.deepEqual(
    _violations(
      _files("functions").filter((f) => f !== "functions/main.ts"),
      (f, t) => t.startsWith("functions/") && own(t) !== own(f),
    ),
    [],
  );
});

Deno.test("layering: deno task start builds the functions through their builders only", () => {
  assert.deepEqual(
    _violations(
      ["functions/main.ts"],
      (_, t) =>
        t.startsWith("functions/") && !t.endsWith("/build.ts") &&
        t !== "functions/api/dashboard.ts",
    ),
    [],
  );
});
