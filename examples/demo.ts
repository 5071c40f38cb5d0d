// The README's first command: create a hash map, fill it with one
// updateBatch, dump it with lookupBatch; then, while it is open, show it to
// the bpfmap command: `bpfmap map list` and a dump of it.
//
//   deno run --allow-ffi --allow-run --allow-env examples/demo.ts      bun examples/demo.ts

import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../ffi/live.ts";
import { BpfMap, possibleCpus } from "../mod.ts";

const ENTRIES = 100_000;
using map = BpfMap.create({
  type: "hash",
  keySize: 4,
  valueSize: 8,
  maxEntries: ENTRIES,
  name: "bpfmap_demo",
});
console.log(
  `created ${map.typeName} map "${map.name}" id ${map.id} (fd ${map.fd}), ${possibleCpus()} possible CPUs`,
);

const keys = new Uint32Array(ENTRIES);
const values = new BigUint64Array(ENTRIES);
for (let i = 0; i < ENTRIES; i++) {
  keys[i] = i;
  values[i] = BigInt(i) * 1000n;
}
let started = performance.now();
const written = map.updateBatch(new Uint8Array(keys.buffer), new Uint8Array(values.buffer));
console.log(
  `updateBatch: ${written} elements in 1 syscall, ${(performance.now() - started).toFixed(1)} ms`,
);

started = performance.now();
let cursor: Uint8Array | null = null;
let calls = 0;
let total = 0;
let sum = 0n;
const keyBuffer = new Uint8Array(4096 * map.keySize);
const valueBuffer = new Uint8Array(4096 * map.valueStride);
const valueView = new BigUint64Array(valueBuffer.buffer);
do {
  const batch = map.lookupBatch({ cursor, count: 4096, keys: keyBuffer, values: valueBuffer });
  for (const value of valueView.subarray(0, batch.count)) sum += value;
  total += batch.count;
  cursor = batch.cursor;
  calls++;
} while (cursor !== null);
console.log(
  `lookupBatch: ${total} elements in ${calls} syscalls, ${
    (performance.now() - started).toFixed(1)
  } ms; sum of values ${sum}`,
);

/** Runs the bpfmap command with this runtime, as `bpfmap ARGS` would. */
function bpfmap(args: string[]): string {
  const cli = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
  const argv = detectRuntime() === "deno" ? ["run", "--allow-ffi", cli, ...args] : [cli, ...args];
  const run = spawnSync(process.execPath, argv, { encoding: "utf8", maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`bpfmap ${args.join(" ")}: ${run.stderr}`);
  return run.stdout;
}

console.log("\n$ bpfmap map list");
process.stdout.write(bpfmap(["map", "list"]));
console.log(`\n$ bpfmap map dump id ${map.id}    (first 3 lines and the last)`);
const dump = bpfmap(["map", "dump", "id", String(map.id)]).trimEnd().split("\n");
console.log([...dump.slice(0, 3), "...", dump.at(-1)].join("\n"));
