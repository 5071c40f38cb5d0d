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
 * Programs have theirs too: {@linkcode progLoad}, {@linkcode progTestRun},
 * {@linkcode objGetNextId}, {@linkcode listObjectIds} and {@linkcode progGetFdById}, and
 * {@linkcode objGetInfoByFd} reads the info of any object. Links too:
 * {@linkcode linkCreate}, {@linkcode rawTracepointOpen}, {@linkcode linkUpdate},
 * {@linkcode linkDetach}, and {@linkcode linkGetFdById}.
 * Every buffer they pass must be off-heap.
 *
 * @module
 */

import { Attr } from "./attr.ts";
import {
  type BatchCommand,
  BPF_BTF_GET_FD_BY_ID,
  BPF_BTF_GET_NEXT_ID,
  BPF_LINK_CREATE,
  BPF_LINK_DETACH,
  BPF_LINK_GET_FD_BY_ID,
  BPF_LINK_GET_NEXT_ID,
  BPF_LINK_UPDATE,
  BPF_MAP_DELETE_ELEM,
  BPF_MAP_GET_FD_BY_ID,
  BPF_MAP_GET_NEXT_ID,
  BPF_MAP_GET_NEXT_KEY,
  BPF_MAP_LOOKUP_AND_DELETE_ELEM,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_UPDATE_ELEM,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_PROG_GET_FD_BY_ID,
  BPF_PROG_GET_NEXT_ID,
  BPF_PROG_LOAD,
  BPF_PROG_TEST_RUN,
  BPF_PROG_TEST_RUN_SYSCALL,
  BPF_RAW_TRACEPOINT_OPEN,
  type Command,
  type Direction,
  type ElementCommand,
  type Field,
  type Layout,
} from "./commands.ts";
import { ENOENT } from "./errno.ts";
import { BpfError } from "./errors.ts";
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

/**
 * The fields of a `BPF_PROG_LOAD` (libbpf's `bpf_prog_load` options). Fields
 * left out are 0; `logTrueSize` comes back as the log size the kernel needed.
 */
export interface ProgLoadCall {
  progType: number;
  /** 8-byte instructions, off-heap. */
  insns: Uint8Array;
  /** The license, a NUL-terminated C string, off-heap. */
  license: Uint8Array;
  logLevel?: number;
  /** The verifier log's buffer (off-heap), or `null`. */
  log?: Uint8Array | null;
  kernVersion?: number;
  progFlags?: number;
  /** At most 15 characters. */
  name?: string;
  ifindex?: number;
  expectedAttachType?: number;
  progBtfFd?: number;
  attachBtfId?: number;
  /** `attach_prog_fd`, or the module BTF object's fd (`attach_btf_obj_fd`). */
  attachFd?: number;
  /** u32 fds (off-heap) that `BPF_PSEUDO_MAP_IDX` instructions index. */
  fdArray?: Uint8Array | null;
  /** `bpf_func_info` records, 8 bytes each (insn_off, type_id), off-heap; with `progBtfFd`. */
  funcInfo?: Uint8Array | null;
  /** `bpf_line_info` records, 16 bytes each (insn_off, file, line, line_col), off-heap. */
  lineInfo?: Uint8Array | null;
  /** What the kernel wrote into `log_true_size`, after the call. */
  logTrueSize?: number;
}

/**
 * `BPF_PROG_LOAD` (`bpf_prog_load`): the program's fd, or `-errno`. Writes
 * the log size the kernel needed into `call.logTrueSize`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progLoad, progTestRun, type TestRunCall } from "./bpf.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { cString, offHeapBytes } from "./memory.ts";
 *
 * const kernel = liveKernel();
 * const insns = offHeapBytes(16); // r0 = 2 (XDP_PASS); exit
 * insns.set([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const fd = progLoad(kernel, { progType: 6, insns, license: cString("GPL"), name: "pass" });
 * assert.ok(fd > 0);
 * const run: TestRunCall = { dataIn: offHeapBytes(64), dataOut: offHeapBytes(64) };
 * assert.equal(progTestRun(kernel, fd, run), 0);
 * assert.deepEqual([run.retval, run.dataSizeOut], [2, 64]);
 * kernel.close(fd);
 * ```
 */
export function progLoad(kernel: Kernel, call: ProgLoadCall): number {
  const { fields } = BPF_PROG_LOAD;
  const attr = kernel.attr(BPF_PROG_LOAD);
  attr.clear();
  const log = call.log ?? null;
  attr.setU32(fields.prog_type, call.progType);
  attr.setU32(fields.insn_cnt, Math.floor(call.insns.byteLength / 8));
  attr.setPointer(fields.insns, call.insns);
  attr.setPointer(fields.license, call.license);
  attr.setU32(fields.log_level, call.logLevel ?? 0);
  attr.setU32(fields.log_size, log === null ? 0 : log.byteLength);
  attr.setPointer(fields.log_buf, log);
  attr.setU32(fields.kern_version, call.kernVersion ?? 0);
  attr.setU32(fields.prog_flags, call.progFlags ?? 0);
  attr.setChars(fields.prog_name, call.name ?? "");
  attr.setU32(fields.prog_ifindex, call.ifindex ?? 0);
  attr.setU32(fields.expected_attach_type, call.expectedAttachType ?? 0);
  attr.setU32(fields.prog_btf_fd, call.progBtfFd ?? 0);
  attr.setU32(fields.attach_btf_id, call.attachBtfId ?? 0);
  attr.setU32(fields.attach_prog_fd, call.attachFd ?? 0);
  attr.setPointer(fields.fd_array, call.fdArray ?? null);
  // Record sizes as the kernel's own structs, so a missing record leaves all three at 0.
  for (
    const [records, size, pointer, recSize, count] of [
      [call.funcInfo, 8, fields.func_info, fields.func_info_rec_size, fields.func_info_cnt],
      [call.lineInfo, 16, fields.line_info, fields.line_info_rec_size, fields.line_info_cnt],
    ] as const
  ) {
    attr.setPointer(pointer, records ?? null);
    attr.setU32(recSize, records ? size : 0);
    attr.setU32(count, records ? records.byteLength / size : 0);
  }
  attr.setPointer(fields.core_relos, null);
  const result = kernel.call(attr);
  call.logTrueSize = attr.getU32(fields.log_true_size);
  return result;
}

/**
 * The fields of a `BPF_PROG_TEST_RUN` (libbpf's `bpf_test_run_opts`). Buffers
 * are off-heap; the kernel's answers come back in `retval`, `duration`,
 * `dataSizeOut` and `ctxSizeOut` (the sizes it wanted to write: more than
 * the buffer on ENOSPC).
 */
export interface TestRunCall {
  dataIn?: Uint8Array | null;
  dataOut?: Uint8Array | null;
  ctxIn?: Uint8Array | null;
  ctxOut?: Uint8Array | null;
  /** A `syscall` program's run: the kernel writes the context back into `ctxIn`. */
  contextWrittenIn?: boolean;
  repeat?: number;
  flags?: number;
  cpu?: number;
  batchSize?: number;
  retval?: number;
  duration?: number;
  dataSizeOut?: number;
  ctxSizeOut?: number;
}

/** `BPF_PROG_TEST_RUN` (`bpf_prog_test_run_opts`): 0 or `-errno`. See {@linkcode progLoad}. */
export function progTestRun(kernel: Kernel, fd: number, call: TestRunCall): number {
  const command = call.contextWrittenIn ? BPF_PROG_TEST_RUN_SYSCALL : BPF_PROG_TEST_RUN;
  const { fields } = command;
  const attr = kernel.attr(command);
  attr.clear();
  const [dataIn, dataOut] = [call.dataIn ?? null, call.dataOut ?? null];
  const [ctxIn, ctxOut] = [call.ctxIn ?? null, call.ctxOut ?? null];
  attr.setU32(fields.prog_fd, fd);
  attr.setU32(fields.data_size_in, dataIn === null ? 0 : dataIn.byteLength);
  attr.setU32(fields.data_size_out, dataOut === null ? 0 : dataOut.byteLength);
  attr.setPointer(fields.data_in, dataIn);
  attr.setPointer(fields.data_out, dataOut);
  attr.setU32(fields.repeat, call.repeat ?? 0);
  attr.setU32(fields.ctx_size_in, ctxIn === null ? 0 : ctxIn.byteLength);
  attr.setU32(fields.ctx_size_out, ctxOut === null ? 0 : ctxOut.byteLength);
  attr.setPointer(fields.ctx_in, ctxIn);
  attr.setPointer(fields.ctx_out, ctxOut);
  attr.setU32(fields.flags, call.flags ?? 0);
  attr.setU32(fields.cpu, call.cpu ?? 0);
  attr.setU32(fields.batch_size, call.batchSize ?? 0);
  const result = kernel.call(attr);
  call.retval = attr.getU32(fields.retval);
  call.duration = attr.getU32(fields.duration);
  call.dataSizeOut = attr.getU32(fields.data_size_out);
  call.ctxSizeOut = attr.getU32(fields.ctx_size_out);
  return result;
}

/**
 * `BPF_PROG_GET_FD_BY_ID` (`bpf_prog_get_fd_by_id_opts`): a new fd for the
 * program, or `-errno`. See {@linkcode objGetNextId}.
 */
export function progGetFdById(kernel: Kernel, id: number, openFlags = 0): number {
  return getFdById(
    kernel,
    BPF_PROG_GET_FD_BY_ID,
    BPF_PROG_GET_FD_BY_ID.fields.prog_id,
    id,
    openFlags,
  );
}

/** One `*_GET_FD_BY_ID` call: the id in `idField`, the open flags; the fd or `-errno`. */
function getFdById<F extends string>(
  kernel: Kernel,
  command: Command<F | "open_flags">,
  idField: Field,
  id: number,
  openFlags: number,
): number {
  const attr = kernel.attr(command);
  attr.clear();
  attr.setU32(idField, id);
  attr.setU32(command.fields.open_flags, openFlags);
  return kernel.call(attr);
}

/**
 * `BPF_OBJ_GET_INFO_BY_FD` (`bpf_obj_get_info_by_fd`): fills `info`, an
 * off-heap struct of `layout` (`BPF_PROG_INFO`, `BPF_MAP_INFO`, ...) that
 * the kernel also reads (zero it, then set what asks for more: a program's
 * `nr_map_ids`), and the buffers `nested` points its pointer fields at
 * (a program's `map_ids`). 0 or `-errno`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { objGetInfoByFd, progLoad } from "./bpf.ts";
 * import { BPF_PROG_INFO, readU32 } from "./commands.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { cString, offHeapBytes } from "./memory.ts";
 *
 * const kernel = liveKernel();
 * const insns = offHeapBytes(16); // r0 = 0; exit
 * insns.set([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const fd = progLoad(kernel, { progType: 1, insns, license: cString("MIT") });
 * const info = offHeapBytes(BPF_PROG_INFO.size);
 * const mapIds = offHeapBytes(4); // room for one; this program has none
 * info[BPF_PROG_INFO.fields.nr_map_ids.offset] = 1;
 * assert.equal(objGetInfoByFd(kernel, fd, info, BPF_PROG_INFO, [[BPF_PROG_INFO.fields.map_ids, mapIds]]), 0);
 * assert.equal(readU32(info, BPF_PROG_INFO.fields.type), 1); // socket_filter
 * assert.equal(readU32(info, BPF_PROG_INFO.fields.xlated_prog_len), 16);
 * assert.equal(readU32(info, BPF_PROG_INFO.fields.nr_map_ids), 0);
 * kernel.close(fd);
 * ```
 */
export function objGetInfoByFd(
  kernel: Kernel,
  fd: number,
  info: Uint8Array,
  layout: Layout,
  nested: readonly (readonly [Field, Uint8Array])[] = [],
): number {
  const { fields } = BPF_OBJ_GET_INFO_BY_FD;
  const attr = kernel.attr(BPF_OBJ_GET_INFO_BY_FD);
  attr.clear();
  attr.setU32(fields.bpf_fd, fd);
  attr.setU32(fields.info_len, info.byteLength);
  attr.setPointer(fields.info, info, undefined, "inout", layout);
  for (const [field, bytes] of nested) attr.setNestedPointer(fields.info, field, bytes);
  return kernel.call(attr);
}

/** The fields of a `BPF_LINK_CREATE` (libbpf's `bpf_link_create` options). Fields left out are 0. */
export interface LinkCreateCall {
  progFd: number;
  /** The device's ifindex (XDP), or the target's fd (cgroups, programs). */
  target: number;
  attachType: number;
  flags?: number;
  /** `target_btf_id` (tracing links to a BTF function). */
  targetBtfId?: number;
}

/**
 * `BPF_LINK_CREATE` (`bpf_link_create`): the new link's fd, or `-errno`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkCreate, linkDetach, progLoad } from "./bpf.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { cString, offHeapBytes } from "./memory.ts";
 *
 * const kernel = liveKernel();
 * const insns = offHeapBytes(16); // r0 = 2 (XDP_PASS); exit
 * insns.set([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const prog = progLoad(kernel, { progType: 6, insns, license: cString("GPL") });
 * // Loopback (ifindex 1) has no XDP driver: flags 0 let the kernel take generic XDP.
 * const link = linkCreate(kernel, { progFd: prog, target: 1, attachType: 37 });
 * assert.ok(link > 0);
 * assert.equal(linkDetach(kernel, link), 0);
 * kernel.close(link);
 * kernel.close(prog);
 * ```
 */
export function linkCreate(kernel: Kernel, call: LinkCreateCall): number {
  const { fields } = BPF_LINK_CREATE;
  const attr = kernel.attr(BPF_LINK_CREATE);
  attr.clear();
  attr.setU32(fields.prog_fd, call.progFd);
  attr.setU32(fields.target_ifindex, call.target);
  attr.setU32(fields.attach_type, call.attachType);
  attr.setU32(fields.flags, call.flags ?? 0);
  attr.setU32(fields.target_btf_id, call.targetBtfId ?? 0);
  return kernel.call(attr);
}

/**
 * `BPF_RAW_TRACEPOINT_OPEN` (`bpf_raw_tracepoint_open`): attaches raw
 * tracepoint program `progFd` to tracepoint `name` (an off-heap C string).
 * The new link's fd, or `-errno`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progLoad, rawTracepointOpen } from "./bpf.ts";
 * import { ENOENT } from "./errno.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { cString, offHeapBytes } from "./memory.ts";
 *
 * const kernel = liveKernel();
 * const insns = offHeapBytes(16); // r0 = 0; exit
 * insns.set([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const prog = progLoad(kernel, { progType: 17, insns, license: cString("GPL") });
 * const link = rawTracepointOpen(kernel, cString("sys_enter"), prog);
 * assert.ok(link > 0);
 * assert.equal(rawTracepointOpen(kernel, cString("no_such_tracepoint"), prog), -ENOENT);
 * kernel.close(link);
 * kernel.close(prog);
 * ```
 */
export function rawTracepointOpen(kernel: Kernel, name: Uint8Array, progFd: number): number {
  const { fields } = BPF_RAW_TRACEPOINT_OPEN;
  const attr = kernel.attr(BPF_RAW_TRACEPOINT_OPEN);
  attr.clear();
  attr.setPointer(fields.name, name);
  attr.setU32(fields.prog_fd, progFd);
  return kernel.call(attr);
}

/**
 * `BPF_LINK_UPDATE` (`bpf_link_update`): the link runs `newProgFd` from now
 * on; with `BPF_F_REPLACE` in `flags`, only if it ran `oldProgFd`. 0 or `-errno`.
 */
export function linkUpdate(
  kernel: Kernel,
  linkFd: number,
  newProgFd: number,
  flags = 0,
  oldProgFd = 0,
): number {
  const { fields } = BPF_LINK_UPDATE;
  const attr = kernel.attr(BPF_LINK_UPDATE);
  attr.clear();
  attr.setU32(fields.link_fd, linkFd);
  attr.setU32(fields.new_prog_fd, newProgFd);
  attr.setU32(fields.flags, flags);
  attr.setU32(fields.old_prog_fd, oldProgFd);
  return kernel.call(attr);
}

/** `BPF_LINK_DETACH` (`bpf_link_detach`): 0 or `-errno`. See {@linkcode linkCreate}. */
export function linkDetach(kernel: Kernel, linkFd: number): number {
  const attr = kernel.attr(BPF_LINK_DETACH);
  attr.clear();
  attr.setU32(BPF_LINK_DETACH.fields.link_fd, linkFd);
  return kernel.call(attr);
}

/**
 * `BPF_LINK_GET_FD_BY_ID` (`bpf_link_get_fd_by_id_opts`): a new fd for the
 * link, or `-errno`. See {@linkcode linkGetNextId}.
 */
export function linkGetFdById(kernel: Kernel, id: number, openFlags = 0): number {
  return getFdById(
    kernel,
    BPF_LINK_GET_FD_BY_ID,
    BPF_LINK_GET_FD_BY_ID.fields.link_id,
    id,
    openFlags,
  );
}

/**
 * `BPF_MAP_GET_FD_BY_ID` (`bpf_map_get_fd_by_id_opts`): a new fd for the
 * map, or `-errno`: what a walk of every map opens by (`BpfMap.fromId` reads
 * the map's info too). See {@linkcode objGetNextId}.
 */
export function mapGetFdById(kernel: Kernel, id: number, openFlags = 0): number {
  return getFdById(kernel, BPF_MAP_GET_FD_BY_ID, BPF_MAP_GET_FD_BY_ID.fields.map_id, id, openFlags);
}

/**
 * `BPF_BTF_GET_FD_BY_ID` (`bpf_btf_get_fd_by_id_opts`): a new fd for the BTF
 * object, or `-errno`. See {@linkcode objGetNextId}.
 */
export function btfGetFdById(kernel: Kernel, id: number, openFlags = 0): number {
  return getFdById(kernel, BPF_BTF_GET_FD_BY_ID, BPF_BTF_GET_FD_BY_ID.fields.btf_id, id, openFlags);
}

/**
 * The `*_GET_NEXT_ID` commands: one layout (start_id, next_id, open_flags)
 * for maps, programs, links and BTF objects.
 */
export type NextIdCommand =
  | typeof BPF_MAP_GET_NEXT_ID
  | typeof BPF_PROG_GET_NEXT_ID
  | typeof BPF_LINK_GET_NEXT_ID
  | typeof BPF_BTF_GET_NEXT_ID;

/**
 * `BPF_MAP_GET_NEXT_ID`, `BPF_PROG_GET_NEXT_ID`, `BPF_LINK_GET_NEXT_ID` or
 * `BPF_BTF_GET_NEXT_ID` (libbpf's `bpf_obj_get_next_id`): the id of the first object after
 * `startId` (ids start at 1), or `-errno` (`-ENOENT` past the last).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { btfGetFdById, linkGetFdById, mapGetFdById, objGetNextId, progGetFdById } from "./bpf.ts";
 * import { BPF_BTF_GET_NEXT_ID, BPF_LINK_GET_NEXT_ID, BPF_PROG_GET_NEXT_ID } from "./commands.ts";
 * import { ENOENT } from "./errno.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * const kernel = liveKernel();
 * assert.equal(objGetNextId(kernel, BPF_PROG_GET_NEXT_ID, 0x7fff_fff0), -ENOENT);
 * assert.equal(progGetFdById(kernel, 0x7fff_fff0), -ENOENT);
 * assert.equal(objGetNextId(kernel, BPF_LINK_GET_NEXT_ID, 0x7fff_fff0), -ENOENT);
 * assert.equal(linkGetFdById(kernel, 0x7fff_fff0), -ENOENT);
 * assert.equal(objGetNextId(kernel, BPF_BTF_GET_NEXT_ID, 0x7fff_fff0), -ENOENT);
 * assert.equal(btfGetFdById(kernel, 0x7fff_fff0), -ENOENT);
 * assert.equal(mapGetFdById(kernel, 0x7fff_fff0), -ENOENT);
 * ```
 */
export function objGetNextId(kernel: Kernel, command: NextIdCommand, startId: number): number {
  const attr = kernel.attr(command);
  attr.clear();
  attr.setU32(command.fields.start_id, startId);
  const result = kernel.call(attr);
  return result < 0 ? result : attr.getU32(command.fields.next_id);
}

/**
 * Every id `command` walks (maps, programs, links or BTF objects), ascending:
 * what `listMapIds`, `listProgramIds`, `listLinkIds` and `listBtfIds` return.
 *
 * @throws {BpfError} if the kernel refuses a step (EPERM without CAP_SYS_ADMIN).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { listObjectIds } from "./bpf.ts";
 * import { BPF_MAP_GET_NEXT_ID } from "./commands.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 * const ids = listObjectIds(liveKernel(), BPF_MAP_GET_NEXT_ID);
 * assert.ok(ids.includes(map.id));
 * assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
 * ```
 */
export function listObjectIds(kernel: Kernel, command: NextIdCommand): number[] {
  const ids: number[] = [];
  for (let id = 0;;) {
    const next = objGetNextId(kernel, command, id);
    if (next === -ENOENT) return ids;
    if (next < 0) throw new BpfError(command.name, -next, `after id ${id}`);
    ids.push(id = next);
  }
}
