/**
 * One thin function per map command, as libbpf's `bpf.c`: each packs its
 * command's attr and calls the kernel once, returning what `bpf()` returned
 * (`-errno` on failure). No argument checks: callers (`BpfMap`) check first.
 *
 * Element commands come two ways. The functions (`mapLookupElem`, ...) pack
 * the kernel's shared attr of the command on every call, as libbpf does.
 * {@linkcode ElementCalls} is the per-element fast path: a map's own attrs,
 * packed once with its fd and its off-heap scratch key and value, so a call
 * writes its flags and calls (repacking the shared attr cost 0.1-0.3 µs a
 * call, a fifth of a syscall here).
 *
 * The four batch commands share one packer, {@linkcode mapBatch}, as libbpf's
 * `bpf_map_batch_common`.
 *
 * @module
 */

import { Attr } from "./attr.ts";
import {
  type BatchCommand,
  BPF_MAP_DELETE_ELEM,
  BPF_MAP_GET_NEXT_KEY,
  BPF_MAP_LOOKUP_AND_DELETE_ELEM,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_UPDATE_ELEM,
  type Direction,
  type ElementCommand,
} from "./commands.ts";
import type { Kernel } from "./kernel.ts";

/**
 * Packs the kernel's shared attr of an element command and calls once. `key`
 * and `value` must be off-heap (bpfmap's own memory) or already pinned.
 */
function mapElem(
  kernel: Kernel,
  command: ElementCommand,
  fd: number,
  key: Uint8Array | null,
  value: Uint8Array | null,
  flags: number,
  valueDirection: Direction = command.fields.value.direction,
): number {
  const { fields } = command;
  const attr = kernel.attr(command);
  attr.setU32(fields.map_fd, fd);
  attr.setPointer(fields.key, key);
  attr.setPointer(fields.value, value, undefined, valueDirection);
  attr.setU64(fields.flags, flags);
  return kernel.call(attr);
}

/** An element call that takes a key (or `null`), a value buffer and flags. */
export type ValueCall = (
  kernel: Kernel,
  fd: number,
  key: Uint8Array | null,
  value: Uint8Array,
  flags: number,
) => number;

function valueCall(command: ElementCommand): ValueCall {
  return (kernel, fd, key, value, flags) => mapElem(kernel, command, fd, key, value, flags);
}

/**
 * `BPF_MAP_LOOKUP_ELEM`, as libbpf's `bpf_map_lookup_elem_flags`: the value
 * of `key` into `value`. A `null` key peeks a queue or stack.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { mapLookupElem, mapUpdateElem } from "./bpf.ts";
 * import { ENOENT } from "./errno.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { offHeapBytes } from "./memory.ts";
 *
 * const kernel = liveKernel();
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
 * const key = offHeapBytes(4);
 * const value = offHeapBytes(4);
 * assert.equal(mapLookupElem(kernel, map.fd, key, value, 0), -ENOENT);
 * value.set([1, 2, 3, 4]);
 * assert.equal(mapUpdateElem(kernel, map.fd, key, value, 0), 0);
 * value.fill(0);
 * assert.equal(mapLookupElem(kernel, map.fd, key, value, 0), 0);
 * assert.deepEqual(value, new Uint8Array([1, 2, 3, 4]));
 * ```
 */
export const mapLookupElem: ValueCall = valueCall(BPF_MAP_LOOKUP_ELEM);

/**
 * `BPF_MAP_UPDATE_ELEM` (`bpf_map_update_elem`); a `null` key pushes. See
 * {@linkcode mapLookupElem}.
 */
export const mapUpdateElem: ValueCall = valueCall(BPF_MAP_UPDATE_ELEM);

/**
 * `BPF_MAP_DELETE_ELEM` (`bpf_map_delete_elem`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { mapDeleteElem } from "./bpf.ts";
 * import { ENOENT } from "./errno.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { offHeapBytes } from "./memory.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
 * map.update(new Uint8Array(4), new Uint8Array(4));
 * assert.equal(mapDeleteElem(liveKernel(), map.fd, offHeapBytes(4)), 0);
 * assert.equal(mapDeleteElem(liveKernel(), map.fd, offHeapBytes(4)), -ENOENT);
 * ```
 */
export function mapDeleteElem(kernel: Kernel, fd: number, key: Uint8Array): number {
  return mapElem(kernel, BPF_MAP_DELETE_ELEM, fd, key, null, 0);
}

/**
 * `BPF_MAP_GET_NEXT_KEY` (`bpf_map_get_next_key`): the key after `key` (the
 * first for `null`) into `next`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { mapGetNextKey } from "./bpf.ts";
 * import { ENOENT } from "./errno.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { offHeapBytes } from "./memory.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 2 });
 * const next = offHeapBytes(4);
 * assert.equal(mapGetNextKey(liveKernel(), map.fd, null, next), 0);
 * assert.deepEqual(next, new Uint8Array([0, 0, 0, 0]));
 * const key = next.slice();
 * assert.equal(mapGetNextKey(liveKernel(), map.fd, key, next), 0);
 * assert.deepEqual(next, new Uint8Array([1, 0, 0, 0]));
 * assert.equal(mapGetNextKey(liveKernel(), map.fd, next.slice(), next), -ENOENT);
 * ```
 */
export function mapGetNextKey(
  kernel: Kernel,
  fd: number,
  key: Uint8Array | null,
  next: Uint8Array,
): number {
  return mapElem(kernel, BPF_MAP_GET_NEXT_KEY, fd, key, next, 0);
}

/**
 * `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (`bpf_map_lookup_and_delete_elem_flags`);
 * a `null` key pops a queue or stack. See {@linkcode mapLookupElem}.
 */
export const mapLookupAndDeleteElem: ValueCall = valueCall(BPF_MAP_LOOKUP_AND_DELETE_ELEM);

/**
 * The fields of a batch call (libbpf's `bpf_map_batch_common` arguments).
 * `count` goes in as how many elements `keys` and `values` hold, and comes
 * back as what the kernel wrote there, on success and failure alike.
 */
export interface BatchCall {
  /** Where to resume (lookup batches), `null` to start or for writes. */
  inBatch: Uint8Array | null;
  /** Where the kernel leaves the resume point (lookup batches), `null` for writes. */
  outBatch: Uint8Array | null;
  /** Exactly `count` keys: the span the kernel may touch, and the one a recorder captures. */
  keys: Uint8Array;
  /** Exactly `count` values, or `null` (delete batches). */
  values: Uint8Array | null;
  count: number;
  elemFlags: number;
  flags: number;
}

/**
 * The one packer of the four batch commands: packs `call` into the kernel's
 * attr of `command`, calls once, writes the count the kernel wrote back into
 * `call.count`, and returns the call's result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { type BatchCall, mapBatch } from "./bpf.ts";
 * import { BPF_MAP_LOOKUP_BATCH, BPF_MAP_UPDATE_BATCH } from "./commands.ts";
 * import { ENOENT } from "./errno.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { offHeapBytes } from "./memory.ts";
 *
 * const kernel = liveKernel();
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
 * const keys = new Uint8Array(new Uint32Array([1, 2]).buffer);
 * const write: BatchCall = {
 *   inBatch: null,
 *   outBatch: null,
 *   keys,
 *   values: keys,
 *   count: 2,
 *   elemFlags: 0,
 *   flags: 0,
 * };
 * assert.equal(mapBatch(kernel, BPF_MAP_UPDATE_BATCH, map.fd, write), 0);
 * assert.equal(write.count, 2);
 * const read: BatchCall = {
 *   inBatch: null,
 *   outBatch: offHeapBytes(4),
 *   keys: offHeapBytes(8 * 4),
 *   values: offHeapBytes(8 * 4),
 *   count: 8,
 *   elemFlags: 0,
 *   flags: 0,
 * };
 * assert.equal(mapBatch(kernel, BPF_MAP_LOOKUP_BATCH, map.fd, read), -ENOENT); // all of it
 * assert.equal(read.count, 2);
 * ```
 */
export function mapBatch(
  kernel: Kernel,
  command: BatchCommand,
  fd: number,
  call: BatchCall,
): number {
  const { fields } = command;
  const attr = kernel.attr(command);
  attr.setPointer(fields.in_batch, call.inBatch);
  attr.setPointer(fields.out_batch, call.outBatch);
  attr.setPointer(fields.keys, call.keys);
  attr.setPointer(fields.values, call.values);
  attr.setU32(fields.count, call.count);
  attr.setU32(fields.map_fd, fd);
  attr.setU64(fields.elem_flags, call.elemFlags);
  attr.setU64(fields.flags, call.flags);
  const result = kernel.call(attr);
  call.count = attr.getU32(fields.count);
  return result;
}

/** The element calls {@linkcode ElementCalls} packs once, by index into its attrs. */
const LOOKUP = 0;
const UPDATE = 1;
const DELETE = 2;
const NEXT_KEY = 3;
const FIRST_KEY = 4;
const LOOKUP_AND_DELETE = 5;
const CONTAINS = 6;
const SHAPES: [ElementCommand, key: boolean, value: "key" | "value" | "none", Direction][] = [
  [BPF_MAP_LOOKUP_ELEM, true, "value", "out"],
  [BPF_MAP_UPDATE_ELEM, true, "value", "in"],
  [BPF_MAP_DELETE_ELEM, true, "none", "in"],
  [BPF_MAP_GET_NEXT_KEY, true, "key", "out"],
  [BPF_MAP_GET_NEXT_KEY, false, "key", "out"],
  [BPF_MAP_LOOKUP_AND_DELETE_ELEM, true, "value", "out"],
  // A bloom filter's lookup reads its value: is it (maybe) in the set?
  [BPF_MAP_LOOKUP_ELEM, false, "value", "in"],
];
/** The attr of an element command. */
type ElementAttr = Attr<keyof ElementCommand["fields"]>;

/** Bytes of arena {@linkcode ElementCalls} packs its attrs in. */
export const ELEMENT_ATTRS_SIZE: number = SHAPES.length * BPF_MAP_LOOKUP_ELEM.size;

/**
 * One map's element calls, each on an attr of the map's own packed once
 * (on first use) with the map's fd and its off-heap scratch: `key` in, then
 * `value` or `nextKey` (a `null` key for maps without keys: then lookup
 * peeks, update pushes, lookupAndDelete pops). A call writes its flags and
 * calls; it returns 0 or `-errno`. The caller fills `key` or `value` first
 * and reads `value` or `nextKey` after.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { ELEMENT_ATTRS_SIZE, ElementCalls } from "./bpf.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { offHeapBytes } from "./memory.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 2, maxEntries: 4 });
 * const [key, nextKey, value] = [offHeapBytes(4), offHeapBytes(4), offHeapBytes(2)];
 * const arena = offHeapBytes(ELEMENT_ATTRS_SIZE);
 * const calls = new ElementCalls(liveKernel(), map.fd, key, nextKey, value, arena);
 * key.set([7, 0, 0, 0]);
 * value.set([1, 2]);
 * assert.equal(calls.update(0), 0);
 * value.fill(0);
 * assert.equal(calls.lookup(0), 0);
 * assert.deepEqual(value, new Uint8Array([1, 2]));
 * assert.equal(calls.firstKey(), 0);
 * assert.deepEqual(nextKey, key);
 * ```
 */
export class ElementCalls {
  readonly #kernel: Kernel;
  readonly #fd: number;
  readonly #key: Uint8Array | null;
  readonly #nextKey: Uint8Array | null;
  readonly #value: Uint8Array;
  readonly #arena: Uint8Array;
  readonly #attrs: (ElementAttr | undefined)[] = [];
  /** The flags each packed attr holds (0 when packed). */
  readonly #flags: number[] = SHAPES.map(() => 0);

  constructor(
    kernel: Kernel,
    fd: number,
    key: Uint8Array | null,
    nextKey: Uint8Array | null,
    value: Uint8Array,
    arena: Uint8Array,
  ) {
    this.#kernel = kernel;
    this.#fd = fd;
    this.#key = key;
    this.#nextKey = nextKey;
    this.#value = value;
    this.#arena = arena;
  }

  /** `BPF_MAP_LOOKUP_ELEM`: key → value (a queue's or stack's peek without a key). */
  lookup(flags: number): number {
    return this.#call(LOOKUP, flags);
  }

  /** `BPF_MAP_UPDATE_ELEM`: key, value (a push without a key). */
  update(flags: number): number {
    return this.#call(UPDATE, flags);
  }

  /** `BPF_MAP_DELETE_ELEM`: key. */
  delete(): number {
    return this.#kernel.callPacked(this.#attrs[DELETE] ?? this.#pack(DELETE));
  }

  /** `BPF_MAP_GET_NEXT_KEY`: key → nextKey. */
  nextKey(): number {
    return this.#kernel.callPacked(this.#attrs[NEXT_KEY] ?? this.#pack(NEXT_KEY));
  }

  /** `BPF_MAP_GET_NEXT_KEY` with a NULL key: the first key → nextKey. */
  firstKey(): number {
    return this.#kernel.callPacked(this.#attrs[FIRST_KEY] ?? this.#pack(FIRST_KEY));
  }

  /** `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: key → value (a pop without a key). */
  lookupAndDelete(flags: number): number {
    return this.#call(LOOKUP_AND_DELETE, flags);
  }

  /** `BPF_MAP_LOOKUP_ELEM` of a bloom filter: is value (maybe) there? */
  contains(): number {
    return this.#kernel.callPacked(this.#attrs[CONTAINS] ?? this.#pack(CONTAINS));
  }

  /** A call with flags (0 as packed, for the calls above without them). */
  #call(which: number, flags: number): number {
    const attr = this.#attrs[which] ?? this.#pack(which);
    // Written only when it changes (a loop passes the same flags); the high half stays 0:
    // every flag the kernel knows fits in 32 bits.
    if (flags !== this.#flags[which]) {
      attr.setU32(attr.command.fields.flags, flags);
      this.#flags[which] = flags;
    }
    return this.#kernel.callPacked(attr);
  }

  #pack(which: number): ElementAttr {
    const [command, hasKey, value, direction] = SHAPES[which]!;
    const { size } = command;
    const attr = new Attr(command, this.#kernel.backend, {
      bytes: this.#arena.subarray(which * size, (which + 1) * size),
      packedOnce: true,
    });
    const { fields } = command;
    attr.setU32(fields.map_fd, this.#fd);
    attr.setPointer(fields.key, hasKey ? this.#key : null);
    const target = value === "value" ? this.#value : value === "key" ? this.#nextKey : null;
    attr.setPointer(fields.value, target, undefined, direction);
    this.#attrs[which] = attr;
    return attr;
  }
}
