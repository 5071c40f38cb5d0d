/**
 * The memory of a BPF ring buffer as the kernel lays it out for user space
 * (Documentation/bpf/ringbuf.rst; kernel/bpf/ringbuf.c): the consumer page at
 * offset 0, then, at one page in, the producer page followed by the data area
 * mapped twice in a row, so that a record that runs past the end of the ring
 * reads on, contiguous, in the second mapping. Positions are 64-bit byte
 * counters that only grow; a record starts at `position & (size - 1)` with an
 * 8-byte header: a u32 length whose top two bits are the busy and discard
 * bits, and a u32 the kernel keeps for itself. Records start 8-byte aligned.
 *
 * A `ringbuf` map is written by programs and read by user space: its
 * consumer page is writable, the rest read-only. A `user_ringbuf` map is the
 * other way round.
 *
 * @module
 */

import { kernelArch } from "../ffi/arch.ts";
import { type KernelPrimitives, primitivesOf } from "../ffi/backend.ts";
import { BpfError } from "../ffi/errors.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { currentPlatform } from "../ffi/live.ts";
import { MAP_TYPES } from "../ffi/map_types.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import { describe } from "../ffi/validate.ts";
import { BpfMap } from "../maps/bpf_map.ts";

/**
 * The length word's top bit: the producer has reserved the record and not
 * yet committed it (`BPF_RINGBUF_BUSY_BIT` in linux/bpf.h).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ } from "../mod.ts";
 *
 * // A header's first word: a discarded record of 16 bytes, its 8-byte header before it.
 * const word = BPF_RINGBUF_DISCARD_BIT | 16;
 * assert.equal(word & BPF_RINGBUF_BUSY_BIT, 0); // committed
 * assert.notEqual(word & BPF_RINGBUF_DISCARD_BIT, 0); // and discarded: readers skip it
 * assert.equal(word & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT), 16);
 * assert.equal(BPF_RINGBUF_HDR_SZ, 8);
 * ```
 */
export const BPF_RINGBUF_BUSY_BIT = 0x80000000;
/** The length word's next bit: the record was discarded; the consumer skips it. */
export const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
/** The bytes of a record's header (`struct bpf_ringbuf_hdr`: len, pg_off). */
export const BPF_RINGBUF_HDR_SZ = 8;

/** The length bits of a header's first word. */
export const RECORD_LENGTH_MASK = 0x3fffffff;

/**
 * Whether words of a mapping are read and written with `Atomics` (acquire and
 * release, as the kernel's `smp_load_acquire`/`smp_store_release` pair with
 * them), or with plain loads and stores.
 *
 * Plain on x86-64: it keeps loads in order with loads and stores with stores,
 * so there the kernel's own acquire and release are compiler barriers only,
 * and the engines keep typed-array accesses in program order; and `Atomics`
 * cost there: Deno 2.9 takes 40-60 ns a record more with them on mapped
 * memory (3.3 ns a record without, bench/ring_buffer.ts). Plain in Bun on every
 * CPU: Bun 1.4's JIT crashes (SIGSEGV) on `Atomics.load` of a typed array over
 * memory `toArrayBuffer` wraps, once the loop is compiled (on arm64 that
 * leaves Bun's reads unordered: a known gap).
 */
const ATOMICS = (globalThis as { Bun?: unknown }).Bun === undefined
  && kernelArch(currentPlatform().arch) !== "x86_64";

/** Reads word `index` of `words`, with acquire ordering where the runtime allows (`ATOMICS`). */
export const loadWord: (words: Int32Array | Uint32Array, index: number) => number = ATOMICS
  ? (words, index) => Atomics.load(words, index)
  : (words, index) => words[index]!;

/** Writes word `index` of `words`, with release ordering where the runtime allows. */
export const storeWord: (words: Int32Array | Uint32Array, index: number, value: number) => void =
  ATOMICS
    ? (words, index, value) => void Atomics.store(words, index, value)
    : (words, index, value) => void (words[index] = value);

/**
 * {@linkcode loadWord} for i32 views only, as the rings use: one element
 * kind keeps the call monomorphic, so V8 inlines `Atomics.load` in the walk
 * (with two kinds it calls a builtin per word).
 */
export const loadI32: (words: Int32Array, index: number) => number = ATOMICS
  ? (words, index) => Atomics.load(words, index)
  : (words, index) => words[index]!;

/** {@linkcode storeWord} for i32 views only (see {@linkcode loadI32}). */
export const storeI32: (words: Int32Array, index: number, value: number) => void = ATOMICS
  ? (words, index, value) => void Atomics.store(words, index, value)
  : (words, index, value) => void (words[index] = value);

/** 2^32, to split a 64-bit position into the two u32 words it is stored as. */
const TWO_TO_32 = 4294967296;

/**
 * How many bytes of the ring a record of `length` bytes takes: its header
 * and body, rounded up to 8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordSpan } from "./ring_memory.ts";
 * assert.equal(recordSpan(0), 8);
 * assert.equal(recordSpan(1), 16);
 * assert.equal(recordSpan(8), 16);
 * assert.equal(recordSpan(4096), 4104);
 * ```
 */
export function recordSpan(length: number): number {
  return (length + BPF_RINGBUF_HDR_SZ + 7) & ~7;
}

/** A ring's two mappings, with the views a reader or writer works through. */
export interface RingMemory {
  /** The data area's size (the map's `max_entries`): a power of 2, a multiple of the page size. */
  readonly size: number;
  /** `size - 1`: a position's offset in the data area. */
  readonly mask: number;
  /** The page size: where the data area starts in {@linkcode RingMemory.producer}. */
  readonly pageSize: number;
  /** The consumer page (its first 8 bytes: the consumer position). */
  readonly consumer: MappedRegion;
  /** The producer page (its first 8 bytes: the producer position), then the data area twice. */
  readonly producer: MappedRegion;
  /** The consumer position's words: `[low, high]`. */
  readonly consumerWords: Int32Array;
  /** The producer position's words: `[low, high]`. */
  readonly producerWords: Int32Array;
  /** The data area, both mappings: a record that wraps reads on past `size`. */
  readonly data: Uint8Array;
  /** The data area as i32s, for the header's length word (read with {@linkcode loadI32}). */
  readonly dataWords: Int32Array;
}

/**
 * Checks that `map` is an open map of the type `expected` names (before any
 * syscall); returns the kernel to reach it through (`kernel`, or the one the
 * map was made on), with the primitives a ring needs of it.
 */
export function checkRingMap(
  op: string,
  map: unknown,
  expected: "ringbuf" | "user_ringbuf",
  kernel?: Kernel,
): { kernel: Kernel; primitives: KernelPrimitives } {
  if (!(map instanceof BpfMap)) {
    throw new TypeError(`${op}: map must be a BpfMap, got ${describe(map)}`);
  }
  if (map.closed) throw new TypeError(`${op}: ${map} is closed`);
  if (map.type !== MAP_TYPES[expected]) {
    const hint = expected === "ringbuf" && map.type === MAP_TYPES.user_ringbuf
      ? " (a user_ringbuf is written from user space: UserRingBuffer)"
      : expected === "user_ringbuf" && map.type === MAP_TYPES.ringbuf
      ? " (a ringbuf is read from user space: RingBuffer)"
      : "";
    throw new TypeError(`${op}: ${map} is a ${map.typeName} map, not a ${expected}${hint}`);
  }
  const through = kernel ?? map.kernel;
  return { kernel: through, primitives: primitivesOf(through.backend) };
}

/**
 * Maps `map`'s ring: the consumer page, and the producer page with the data
 * area twice; a `ringbuf` read-only but for the consumer page, a
 * `user_ringbuf` read-only but for the producer page and data.
 *
 * @throws {BpfError} (`op` `"mmap"`) when the kernel refuses a mapping.
 */
export function mapRing(
  primitives: KernelPrimitives,
  map: BpfMap,
  writer: "consumer" | "producer",
): RingMemory {
  const pageSize = primitives.pageSize;
  const size = map.maxEntries;
  const consumer = mapOrThrow(
    primitives,
    map,
    pageSize,
    writer === "consumer" ? "readWrite" : "read",
    0,
  );
  let producer: MappedRegion;
  try {
    producer = mapOrThrow(
      primitives,
      map,
      pageSize + 2 * size,
      writer === "producer" ? "readWrite" : "read",
      pageSize,
    );
  } catch (error) {
    consumer.unmap();
    throw error;
  }
  const data = producer.bytes.subarray(pageSize);
  return {
    size,
    mask: size - 1,
    pageSize,
    consumer,
    producer,
    consumerWords: new Int32Array(consumer.bytes.buffer, consumer.bytes.byteOffset, 2),
    producerWords: new Int32Array(producer.bytes.buffer, producer.bytes.byteOffset, 2),
    data,
    dataWords: new Int32Array(data.buffer, data.byteOffset, data.byteLength >>> 2),
  };
}

function mapOrThrow(
  primitives: KernelPrimitives,
  map: BpfMap,
  length: number,
  prot: "read" | "readWrite",
  offset: number,
): MappedRegion {
  const region = primitives.mmap(map.fd, length, prot, offset);
  if (typeof region === "number") {
    throw new BpfError("mmap", -region, `${map}: ${length} bytes at ${offset}, ${prot}`);
  }
  return region;
}

/**
 * Reads this side's own position (only this side writes it, so it cannot
 * move while read), observed first so that a replay serves what the
 * recording saw.
 */
export function readOwnPosition(region: MappedRegion, words: Int32Array): number {
  region.observe(0, 8);
  return (loadI32(words, 1) >>> 0) * TWO_TO_32 + (loadI32(words, 0) >>> 0);
}

/**
 * The low word of the other side's position, observed first. Positions are
 * only ever compared by their difference, which is less than the ring's size:
 * `(a - b) >>> 0` of the low words gives it, and a position that crosses a
 * 4 GiB boundary between two reads of its words can never be read torn.
 */
export function readPeerPosition(region: MappedRegion, words: Int32Array): number {
  region.observe(0, 4);
  return loadI32(words, 0) >>> 0;
}

/**
 * Stores a position the way the other side can read at any moment: the low
 * word first, so that a reader between the two stores sees a position
 * behind the real one (less room, never room that is not there); then
 * tells the recorder.
 */
export function writePosition(region: MappedRegion, words: Int32Array, position: number): void {
  const low = position >>> 0;
  storeI32(words, 0, low | 0);
  storeI32(words, 1, ((position - low) / TWO_TO_32) | 0);
  region.wrote(0, 8);
}

/** What a ring dropped without `close()` leaves behind: its mappings, and maybe an epoll fd. */
export interface RingLeftovers {
  readonly memory: RingMemory;
  /** The ring's epoll waiter, once it has one. */
  waiter?: { close(): void };
}

/** Unmaps what rings dropped without `close()` left, once collected (as maps close their fds). */
const dropped = new FinalizationRegistry<RingLeftovers>((left) => {
  left.waiter?.close();
  left.memory.producer.unmap();
  left.memory.consumer.unmap();
});

/**
 * Has `leftovers` released when `owner` is collected without being closed;
 * only on a kernel that closes leaked fds (a live one: a recording or replay
 * must not see calls at moments the garbage collector picks).
 */
export function releaseWhenDropped(owner: object, kernel: Kernel, leftovers: RingLeftovers): void {
  if (kernel.closesLeakedFds) dropped.register(owner, leftovers, owner);
}

/** `owner` is being closed: nothing is left to release for it. */
export function closedByOwner(owner: object): void {
  dropped.unregister(owner);
}

/** Unmaps both regions; the first failure is thrown once both are gone. */
export function unmapRing(memory: RingMemory): void {
  const results = [memory.producer.unmap(), memory.consumer.unmap()];
  const failed = results.find((result) => result < 0);
  if (failed !== undefined) throw new BpfError("munmap", -failed);
}
