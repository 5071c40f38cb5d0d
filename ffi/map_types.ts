/**
 * The kernel's map types (`enum bpf_map_type`), by number and by the name
 * libbpf and bpftool give them, and what each type means for user space:
 * per-CPU values, the shape of a batch cursor, keyless access.
 *
 * @module
 */

/** The lower-case names of `enum bpf_map_type`, as bpftool prints them, in kernel order. */
const MAP_TYPE_NAMES = [
  "unspec",
  "hash",
  "array",
  "prog_array",
  "perf_event_array",
  "percpu_hash",
  "percpu_array",
  "stack_trace",
  "cgroup_array",
  "lru_hash",
  "lru_percpu_hash",
  "lpm_trie",
  "array_of_maps",
  "hash_of_maps",
  "devmap",
  "sockmap",
  "cpumap",
  "xskmap",
  "sockhash",
  "cgroup_storage",
  "reuseport_sockarray",
  "percpu_cgroup_storage",
  "queue",
  "stack",
  "sk_storage",
  "devmap_hash",
  "struct_ops",
  "ringbuf",
  "inode_storage",
  "task_storage",
  "bloom_filter",
  "user_ringbuf",
  "cgrp_storage",
  "arena",
] as const;

/**
 * A map type's name: `"hash"`, `"percpu_array"`, `"lpm_trie"`, ... (every
 * member of the kernel's `enum bpf_map_type`, without its prefix).
 */
export type MapTypeName = Exclude<(typeof MAP_TYPE_NAMES)[number], "unspec">;

/**
 * Map type numbers by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAP_TYPES } from "./map_types.ts";
 * assert.equal(MAP_TYPES.hash, 1);
 * assert.equal(MAP_TYPES.lpm_trie, 11);
 * ```
 */
export const MAP_TYPES: Readonly<Record<MapTypeName, number>> = Object.freeze(
  Object.fromEntries(MAP_TYPE_NAMES.map((name, number) => [name, number]).slice(1)) as Record<
    MapTypeName,
    number
  >,
);

/**
 * The name of a map type number, or `"type N"` for one this table does not
 * know yet (a newer kernel).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapTypeName } from "./map_types.ts";
 * assert.equal(mapTypeName(5), "percpu_hash");
 * assert.equal(mapTypeName(999), "type 999");
 * ```
 */
export function mapTypeName(type: number): string {
  return MAP_TYPE_NAMES[type] ?? `type ${type}`;
}

/**
 * The number of a map type given by name or number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapTypeNumber } from "./map_types.ts";
 * assert.equal(mapTypeNumber("percpu_array"), 6);
 * assert.equal(mapTypeNumber(40), 40); // a number passes, for types newer than this table
 * assert.throws(() => mapTypeNumber(-1), {
 *   name: "TypeError",
 *   message: "type: -1 is not a map type number",
 * });
 * ```
 *
 * @throws {TypeError} naming `argument` for an unknown name or a number that
 * is not a non-negative integer.
 */
export function mapTypeNumber(type: string | number, argument = "type"): number {
  if (typeof type === "number") {
    if (!Number.isInteger(type) || type < 0 || type > 0xffff_ffff) {
      throw new TypeError(`${argument}: ${type} is not a map type number`);
    }
    return type;
  }
  const number = (MAP_TYPES as Record<string, number>)[type];
  if (number === undefined) {
    throw new TypeError(
      `${argument}: unknown map type ${JSON.stringify(type)} (known: ${
        MAP_TYPE_NAMES.slice(1).join(", ")
      })`,
    );
  }
  return number;
}

const PER_CPU = new Set<number>([5, 6, 10, 21]);
const HASH_FAMILY = new Set<number>([1, 5, 9, 10, 13]);

/**
 * Whether values of this map type hold one slot per possible CPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPerCpu, MAP_TYPES } from "./map_types.ts";
 * assert.equal(isPerCpu(MAP_TYPES.percpu_hash), true);
 * assert.equal(isPerCpu(MAP_TYPES.hash), false);
 * ```
 */
export function isPerCpu(type: number): boolean {
  return PER_CPU.has(type);
}

/**
 * The byte size of a batch cursor (`in_batch`/`out_batch`) for a map type:
 * hash maps walk by a u32 bucket index, the rest by their last key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchCursorSize, MAP_TYPES } from "./map_types.ts";
 * assert.equal(batchCursorSize(MAP_TYPES.hash, 16), 4);
 * assert.equal(batchCursorSize(MAP_TYPES.array, 4), 4);
 * assert.equal(batchCursorSize(MAP_TYPES.lpm_trie, 8), 8);
 * ```
 */
export function batchCursorSize(type: number, keySize: number): number {
  return HASH_FAMILY.has(type) ? 4 : keySize;
}
