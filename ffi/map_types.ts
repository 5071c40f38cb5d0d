/**
 * The kernel's map types (`enum bpf_map_type`), by number and by the name
 * libbpf and bpftool give them, and what each type means for user space:
 * per-CPU values, what values stand for, keyless access, the shape of a
 * batch cursor, which batch commands exist. The one place these facts are
 * written: the maps, codecs, transcripts and the CLI read them here.
 *
 * @module
 */

import { ENOSPC } from "./errno.ts";

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

/** The batch commands of Linux 5.6, as a map type has them (`BPF_MAP_*_BATCH`). */
export interface BatchCommands {
  /** `BPF_MAP_LOOKUP_BATCH`. */
  readonly lookup: boolean;
  /** `BPF_MAP_LOOKUP_AND_DELETE_BATCH`. */
  readonly lookupAndDelete: boolean;
  /** `BPF_MAP_UPDATE_BATCH`. */
  readonly update: boolean;
  /** `BPF_MAP_DELETE_BATCH`. */
  readonly delete: boolean;
}

/**
 * What user space can learn of a map type from its number alone: one row of
 * the kernel's `enum bpf_map_type` and of how each type's code answers the
 * syscall (Linux 6.18). Every layer asks this table, by {@linkcode mapType}
 * or {@linkcode mapTypeByName}, instead of comparing type numbers itself.
 */
export interface MapType {
  /** bpftool's name, `enum bpf_map_type`'s member without its prefix; `"type N"` for a newer type. */
  readonly name: string;
  /** The `enum bpf_map_type` number. */
  readonly number: number;
  /** Values hold one slot per possible CPU, each `valueSize` rounded up to 8 bytes. */
  readonly perCpu: boolean;
  /**
   * What a value stands for, where it is an object of another kind: an fd of
   * one going in. `"maps"`: inner maps, whose ids come out (hash_of_maps,
   * array_of_maps); `"programs"`: prog_array; `"sockets"`, `"perf_events"`,
   * `"cgroups"`: fds user space cannot read back. `"bytes"`: plain data.
   */
  readonly holds: "bytes" | "maps" | "programs" | "sockets" | "perf_events" | "cgroups";
  /**
   * An array of object slots: a lookup of an empty slot answers ENOENT, and
   * bpftool's dump leaves such a key out rather than print an error
   * (prog_array, array_of_maps, hash_of_maps: its `map_is_map_of_progs` and
   * `map_is_map_of_maps`).
   */
  readonly emptySlotsUnlisted: boolean;
  /** No keys: values go in by push and out by pop or peek (queue, stack), or are tested (bloom_filter). */
  readonly keyless: boolean;
  /**
   * What a batch walk's cursor (`in_batch`/`out_batch`) holds: a u32 bucket
   * index (the hash family), the last key returned (the generic walk of
   * arrays and LPM tries), or nothing for a type without lookup batches.
   */
  readonly cursor: "bucket" | "key" | null;
  /** Which batch commands the type has; the others answer ENOTSUPP (524). */
  readonly batch: BatchCommands;
  /**
   * The errno of a lookup whose value user space cannot be given: a
   * reuseport_sockarray answers ENOSPC unless its values are 8 bytes, the
   * size of the socket cookie it returns (bpftool prints `<cannot read>`).
   */
  readonly unreadableErrno?: number;
}

const NO_BATCH: BatchCommands = Object.freeze({
  lookup: false,
  lookupAndDelete: false,
  update: false,
  delete: false,
});
const HASH_BATCH: BatchCommands = Object.freeze({
  lookup: true,
  lookupAndDelete: true,
  update: true,
  delete: true,
});
/** The generic batch code: arrays have no delete at all, so no delete batch either. */
const ARRAY_BATCH: BatchCommands = Object.freeze({ ...NO_BATCH, lookup: true, update: true });
const TRIE_BATCH: BatchCommands = Object.freeze({ ...ARRAY_BATCH, delete: true });

const PER_CPU = new Set<string>([
  "percpu_hash",
  "percpu_array",
  "lru_percpu_hash",
  "percpu_cgroup_storage",
]);
const HASH_FAMILY = new Set<string>([
  "hash",
  "percpu_hash",
  "lru_hash",
  "lru_percpu_hash",
  "hash_of_maps",
]);
const GENERIC_BATCH: ReadonlyMap<string, BatchCommands> = new Map([
  ["array", ARRAY_BATCH],
  ["percpu_array", ARRAY_BATCH],
  ["array_of_maps", ARRAY_BATCH],
  ["lpm_trie", TRIE_BATCH],
]);
const HOLDS: ReadonlyMap<string, MapType["holds"]> = new Map<string, MapType["holds"]>([
  ["prog_array", "programs"],
  ["perf_event_array", "perf_events"],
  ["cgroup_array", "cgroups"],
  ["array_of_maps", "maps"],
  ["hash_of_maps", "maps"],
  ["sockmap", "sockets"],
  ["xskmap", "sockets"],
  ["sockhash", "sockets"],
  ["reuseport_sockarray", "sockets"],
]);
const KEYLESS = new Set<string>(["queue", "stack", "bloom_filter"]);

function row(name: string, number: number): MapType {
  const holds = HOLDS.get(name) ?? "bytes";
  const hash = HASH_FAMILY.has(name);
  const batch = hash ? HASH_BATCH : GENERIC_BATCH.get(name) ?? NO_BATCH;
  return Object.freeze({
    name,
    number,
    perCpu: PER_CPU.has(name),
    holds,
    emptySlotsUnlisted: holds === "maps" || holds === "programs",
    keyless: KEYLESS.has(name),
    cursor: hash ? "bucket" : batch.lookup ? "key" : null,
    batch,
    ...(name === "reuseport_sockarray" ? { unreadableErrno: ENOSPC } : {}),
  });
}

/** Every type this table knows, by number (index 0 is `unspec`). */
const BY_NUMBER: readonly MapType[] = MAP_TYPE_NAMES.map(row);
/** By name, in a `Map`: a name is user input, and `"constructor"` is no map type. */
const BY_NAME: ReadonlyMap<string, MapType> = new Map(
  BY_NUMBER.slice(1).map((type) => [type.name, type]),
);

/**
 * What the table says of a map type number. A number it does not know (a
 * newer kernel's type) gets a row of its own saying as little as can be
 * said: named `"type N"`, bytes in and out, no batch commands.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapType } from "./map_types.ts";
 *
 * const lpm = mapType(11);
 * assert.deepEqual([lpm.name, lpm.perCpu, lpm.cursor, lpm.keyless], ["lpm_trie", false, "key", false]);
 * assert.deepEqual(lpm.batch, { lookup: true, lookupAndDelete: false, update: true, delete: true });
 * assert.equal(mapType(13).holds, "maps"); // hash_of_maps: inner map fds in, ids out
 * assert.equal(mapType(22).keyless, true); // queue
 * assert.deepEqual([mapType(999).name, mapType(999).batch.lookup], ["type 999", false]);
 * ```
 */
export function mapType(type: number): MapType {
  return BY_NUMBER[type] ?? row(`type ${type}`, type);
}

/**
 * The row of a map type given by name, or `undefined` for a name that is no
 * map type (inherited names such as `"constructor"` included).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapTypeByName } from "./map_types.ts";
 * assert.equal(mapTypeByName("percpu_array")?.number, 6);
 * assert.equal(mapTypeByName("constructor"), undefined);
 * assert.equal(mapTypeByName("unspec"), undefined); // not a type one can create
 * ```
 */
export function mapTypeByName(name: string): MapType | undefined {
  return BY_NAME.get(name);
}

/**
 * Map type numbers by name (an object without a prototype: only the
 * types' own names are in it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAP_TYPES } from "./map_types.ts";
 * assert.equal(MAP_TYPES.hash, 1);
 * assert.equal(MAP_TYPES.lpm_trie, 11);
 * assert.equal("constructor" in MAP_TYPES, false);
 * ```
 */
export const MAP_TYPES: Readonly<Record<MapTypeName, number>> = Object.freeze(
  Object.assign(
    Object.create(null),
    Object.fromEntries([...BY_NAME].map(([name, type]) => [name, type.number])),
  ) as Record<MapTypeName, number>,
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
  return mapType(type).name;
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
 * assert.throws(() => mapTypeNumber("toString"), /^TypeError: type: unknown map type "toString"/);
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
  const found = typeof type === "string" ? BY_NAME.get(type) : undefined;
  if (found === undefined) {
    throw new TypeError(
      `${argument}: unknown map type ${JSON.stringify(type)} (known: ${
        [...BY_NAME.keys()].join(", ")
      })`,
    );
  }
  return found.number;
}

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
  return mapType(type).perCpu;
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
  return mapType(type).cursor === "bucket" ? 4 : keySize;
}
