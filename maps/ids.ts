/**
 * Enumerating every map on the system.
 *
 * @module
 */

import { listObjectIds } from "../ffi/bpf.ts";
import { BPF_MAP_GET_NEXT_ID } from "../ffi/commands.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";

/**
 * The ids of every map on the system, ascending (`BPF_MAP_GET_NEXT_ID`).
 * Needs CAP_SYS_ADMIN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, listMapIds } from "../mod.ts";
 *
 * using mine = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 * const ids = listMapIds();
 * assert.ok(ids.includes(mine.id));
 * assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
 * ```
 */
export function listMapIds(kernel: Kernel = liveKernel()): number[] {
  return listObjectIds(kernel, BPF_MAP_GET_NEXT_ID);
}

/**
 * How many CPUs may ever be online on this system: the number of slots in a
 * per-CPU map's value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, joinPerCpu, possibleCpus, splitPerCpu } from "../mod.ts";
 *
 * using counters = BpfMap.create({
 *   type: "percpu_array",
 *   keySize: 4,
 *   valueSize: 4,
 *   maxEntries: 1,
 * });
 * const perCpu = Array.from(
 *   { length: possibleCpus() },
 *   (_, cpu) => new Uint8Array([cpu + 1, 0, 0, 0]),
 * );
 * counters.update(new Uint8Array(4), joinPerCpu(perCpu, 4)); // one slot per possible CPU
 * assert.deepEqual(splitPerCpu(counters.lookup(new Uint8Array(4))!, 4), perCpu);
 * ```
 */
export function possibleCpus(kernel: Kernel = liveKernel()): number {
  return kernel.possibleCpus();
}
