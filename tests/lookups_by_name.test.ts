// Names a user gives are looked up in tables without prototypes: a map type
// named "constructor", "toString", "__proto__" or "hasOwnProperty" is an
// unknown type, refused before any syscall, in the library and in the CLI.
// (Looked up in a plain object they found Object.prototype's members and
// reached the kernel as type 0, EINVAL, and the CLI said "unknown map type
// undefined".)

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../ffi/live.ts";
import { mapTypeByName, mapTypeNumber } from "../ffi/map_types.ts";
import { BpfMap, MAP_TYPES, type MapSpec, TRANSCRIPT_ENV } from "../mod.ts";
import { freshBpffs } from "./helpers/bpffs.ts";
import { liveTest, tallyingKernel } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** Object.prototype's members, and Bun's inherited `__proto__` accessor. */
const INHERITED = ["constructor", "toString", "__proto__", "hasOwnProperty"];

transcriptTest("inherited names are no map type: a TypeError before any syscall", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  for (const name of INHERITED) {
    const spec = { type: name, keySize: 4, valueSize: 4, maxEntries: 1 } as unknown as MapSpec;
    assert.throws(() => BpfMap.create(spec, kernel), {
      name: "TypeError",
      message: new RegExp(`^spec\\.type: unknown map type "${name}" \\(known: hash, array, `),
    });
    assert.equal(mapTypeByName(name), undefined, name);
    assert.equal(Object.hasOwn(MAP_TYPES, name), false, name);
    assert.equal((MAP_TYPES as Record<string, unknown>)[name], undefined, name);
    assert.throws(() => mapTypeNumber(name), { name: "TypeError" });
  }
  assert.equal(calls(), 0, "no syscall for an unknown type");
  // The same table still knows its own names.
  assert.equal(mapTypeNumber("hash_of_maps"), 13);
});

liveTest("bpfmap map create ... type constructor is a usage error naming the type", () => {
  const bpffs = freshBpffs();
  const cli = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
  const env: Record<string, string | undefined> = { ...process.env };
  delete env[TRANSCRIPT_ENV];
  for (const name of INHERITED) {
    const path = `${bpffs.path}/m`;
    const args = ["map", "create", path, "type", name, "key", "4", "value", "4"];
    args.push("entries", "1", "name", "m");
    const command = detectRuntime() === "deno"
      ? ["run", "--allow-ffi", "--allow-read", "--allow-write", cli, ...args]
      : [cli, ...args];
    const run = spawnSync(process.execPath, command, { encoding: "utf8", env });
    assert.equal(run.status, 2, `${name}: ${run.stderr}`);
    assert.match(
      run.stderr,
      new RegExp(`^Error: type: unknown map type "${name}" \\(known: hash, `),
    );
    assert.equal(existsSync(path), false, `${name}: no map was created`);
  }
  bpffs.unmount();
});
