// The README's first command: create a hash map, fill it with one
// updateBatch, dump it with lookupBatch, and print what the kernel returned.
//
//   deno run --allow-ffi cli/demo.ts      bun cli/demo.ts

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
  for (let i = 0; i < batch.count; i++) sum += valueView[i];
  total += batch.count;
  cursor = batch.cursor;
  calls++;
} while (cursor !== null);
console.log(
  `lookupBatch: ${total} elements in ${calls} syscalls, ${
    (performance.now() - started).toFixed(1)
  } ms; sum of values ${sum}`,
);
const first = map.nextKey()!;
console.log(`first key in kernel order: ${new DataView(first.buffer).getUint32(0, true)}`);
