/**
 * Per-CPU values. A per-CPU map's value, in single-element and batch calls
 * alike, is one slot per possible CPU, each slot `valueSize` rounded up to 8
 * bytes. The kernel copies whole slots both ways (measured on Linux 6.18),
 * so padding written as zero, as {@linkcode joinPerCpu} writes it, reads back
 * as zero.
 *
 * @module
 */

import { isPerCpu } from "./map_types.ts";

/**
 * `valueSize` rounded up to a multiple of 8: the size of one CPU's slot.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { perCpuSlotSize } from "./percpu.ts";
 * assert.equal(perCpuSlotSize(4), 8);
 * assert.equal(perCpuSlotSize(12), 16);
 * ```
 */
export function perCpuSlotSize(valueSize: number): number {
  return Math.ceil(valueSize / 8) * 8;
}

/**
 * The bytes one element's value takes in lookups, updates and batches: the
 * value itself, or for a per-CPU map one slot per possible CPU. The one place
 * this arithmetic is written; maps, codecs, the CLI and the verifier read it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAP_TYPES } from "./map_types.ts";
 * import { valueStride } from "./percpu.ts";
 * assert.equal(valueStride(MAP_TYPES.hash, 12, 4), 12);
 * assert.equal(valueStride(MAP_TYPES.percpu_hash, 12, 4), 64); // 16-byte slots, 4 CPUs
 * ```
 */
export function valueStride(type: number, valueSize: number, possibleCpus: number): number {
  return isPerCpu(type) ? perCpuSlotSize(valueSize) * possibleCpus : valueSize;
}

/**
 * How many CPUs' slots a per-CPU value of `stride` bytes holds (the inverse of
 * {@linkcode valueStride} for per-CPU maps).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpusInStride } from "./percpu.ts";
 * assert.equal(cpusInStride(64, 12), 4);
 * ```
 */
export function cpusInStride(stride: number, valueSize: number): number {
  return stride / perCpuSlotSize(valueSize);
}

/**
 * Where CPU `cpu`'s slot starts, in bytes, inside a per-CPU value that
 * starts at byte `at` of a buffer: for readers that walk the slots in place
 * (a dump, a batch view) rather than split them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpuSlotAt } from "./percpu.ts";
 * assert.equal(cpuSlotAt(12, 0, 100), 100);
 * assert.equal(cpuSlotAt(12, 3, 100), 148); // 16-byte slots
 * ```
 */
export function cpuSlotAt(valueSize: number, cpu: number, at = 0): number {
  return at + cpu * perCpuSlotSize(valueSize);
}

/**
 * Views of each CPU's value inside one element's per-CPU value (no copy).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitPerCpu } from "./percpu.ts";
 * const value = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]); // 2 CPUs' slots
 * assert.deepEqual(splitPerCpu(value, 4), [
 *   new Uint8Array([1, 0, 0, 0]), // CPU 0, its 4 padding bytes left out
 *   new Uint8Array([7, 0, 0, 0]), // CPU 1
 * ]);
 * assert.throws(() => splitPerCpu(value.subarray(4), 4), {
 *   name: "RangeError",
 *   message: "value: 12 bytes is not a whole number of 8-byte per-CPU slots",
 * });
 * ```
 */
export function splitPerCpu(value: Uint8Array, valueSize: number): Uint8Array[] {
  const slot = perCpuSlotSize(valueSize);
  if (valueSize <= 0 || value.byteLength % slot !== 0) {
    throw new RangeError(
      `value: ${value.byteLength} bytes is not a whole number of ${slot}-byte per-CPU slots`,
    );
  }
  const values: Uint8Array[] = [];
  for (let offset = 0; offset < value.byteLength; offset += slot) {
    values.push(value.subarray(offset, offset + valueSize));
  }
  return values;
}

/**
 * One element's per-CPU value from each CPU's value, padding each slot to 8
 * bytes, ready for `update`. Pass one value per possible CPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { joinPerCpu } from "./percpu.ts";
 * const value = joinPerCpu([new Uint8Array([1, 0, 0, 0]), new Uint8Array([2, 0, 0, 0])], 4);
 * assert.deepEqual(value, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]));
 * ```
 */
export function joinPerCpu(values: readonly Uint8Array[], valueSize: number): Uint8Array {
  const slot = perCpuSlotSize(valueSize);
  const joined = new Uint8Array(new ArrayBuffer(slot * values.length));
  values.forEach((value, cpu) => {
    if (value.byteLength !== valueSize) {
      throw new RangeError(`values[${cpu}] must be ${valueSize} bytes, got ${value.byteLength}`);
    }
    joined.set(value, cpu * slot);
  });
  return joined;
}

/**
 * Parses a CPU list such as `/sys/devices/system/cpu/possible` holds
 * (`"0-1"`, `"0,2-5"`) and counts the CPUs in it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countCpuList } from "./percpu.ts";
 * assert.equal(countCpuList("0,2-5\n"), 5);
 * assert.equal(countCpuList("0"), 1);
 * ```
 */
export function countCpuList(list: string): number {
  let count = 0;
  for (const part of list.trim().split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (match === null) throw new Error(`bpfmap: cannot parse CPU list ${JSON.stringify(list)}`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) throw new Error(`bpfmap: cannot parse CPU list ${JSON.stringify(list)}`);
    count += last - first + 1;
  }
  return count;
}
