/**
 * `map.memory()`: the live memory of an array map created with
 * `BPF_F_MMAPABLE` (libbpf's global data, `.bss`/`.data`/`.rodata`, and any
 * array a program shares with user space), mapped into this process as
 * cilium/ebpf's `Map.Memory` and libbpf's skeletons map it. Reads and writes
 * go straight to the memory programs use, with no syscall.
 *
 * Element `i` of an array whose values are `v` bytes lives at
 * `i * roundUp(v, 8)`, as the kernel lays array elements out.
 *
 * Replay: every read through a {@linkcode MapMemory} method is observed
 * first and every write reported after (the backend's mapping protocol), so
 * a recorded run reads in replay what it read live, at the same points, with
 * no FFI. {@linkcode MapMemory.view} is the exception that hot loops need:
 * one observation of its range when it is taken, nothing after.
 *
 * @module
 */

import { primitivesOf } from "../ffi/backend.ts";
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from "../ffi/commands.ts";
import { errnoNumber } from "../ffi/errno.ts";
import { BpfError } from "../ffi/errors.ts";
import { isPerCpu, MAP_TYPES } from "../ffi/map_types.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import { checkBytes, describe } from "../ffi/validate.ts";
import { BpfMap } from "./bpf_map.ts";

/** What `mmap` answers for a writable mapping of an fd opened read-only. */
const EACCES = errnoNumber("EACCES")!;
/** What `mmap` answers for a shared mapping of an fd opened read-only (`VM_SHARED` cleared). */
const EINVAL = errnoNumber("EINVAL")!;

/**
 * Options of {@linkcode MapMemory.open} and `map.memory()`. The mapping is
 * made through the map's own kernel (`map.kernel`), so a system's map is
 * mapped, recorded and replayed with its other calls.
 */
export interface MemoryOptions {
  /** Map read-only even where the map could be written (`PROT_READ`). */
  readOnly?: boolean;
}

declare module "./bpf_map.ts" {
  interface BpfMap {
    /**
     * Maps this array's memory (it must be created with `BPF_F_MMAPABLE`):
     * see {@linkcode MapMemory}. Read-only where the map is frozen or
     * read-only for programs (`BPF_F_RDONLY_PROG`: the kernel refuses to map
     * it writable). A read-only fd (`BPF_F_RDONLY`) cannot be mapped at all:
     * the kernel shares mappings of writable fds only.
     *
     * @example
     * ```ts
     * import assert from "node:assert/strict";
     * import { BPF_F_MMAPABLE, BpfMap } from "../mod.ts";
     *
     * using map = BpfMap.create({
     *   type: "array", keySize: 4, valueSize: 8, maxEntries: 4, flags: BPF_F_MMAPABLE,
     * });
     * using memory = map.memory();
     * memory.setU64(8 * 2, 42n); // element 2, no syscall
     * assert.deepEqual(map.lookup(new Uint8Array([2, 0, 0, 0])), new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0]));
     * map.update(new Uint8Array([3, 0, 0, 0]), new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0]));
     * assert.equal(memory.readU64(8 * 3), 7n);
     * ```
     *
     * @throws {TypeError} for a map that is closed, not an array, per-CPU or not mmapable.
     * @throws {BpfError} (`op` `"mmap"`) when the kernel refuses the mapping (`EACCES`: a read-only fd).
     */
    memory(options?: MemoryOptions): MapMemory;
  }
}

/**
 * What {@linkcode MapMemory.get} and `set` read and write elements through:
 * any codec of `codec/` (`u64`, `struct({...})`, ...), whose size is the
 * map's value size.
 */
export interface ElementCodec<T> {
  /** For messages. */
  readonly name: string;
  /** Bytes, as C's `sizeof`. */
  readonly size: number;
  read(view: DataView, offset: number): T;
  write(view: DataView, offset: number, value: T): void;
}

/** One of the fixed-size numbers {@linkcode MapMemory} reads and writes. */
type NumberKind = "u8" | "u16" | "u32" | "i32" | "f64";

const SIZES: Readonly<Record<NumberKind | "u64" | "i64", number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  i32: 4,
  f64: 8,
  u64: 8,
  i64: 8,
};

/**
 * The mapped memory of an mmapable array map. Offsets are bytes from the
 * first element; every access is bounds-checked (a `RangeError` before
 * touching memory) and writes to a read-only mapping are refused with a
 * `TypeError` (the hardware would kill the process instead). Numbers are
 * little-endian, as the kernel stores them on x86-64 and arm64.
 *
 * Closing it (`using`) unmaps the memory; the map stays open, and the
 * mapping does not keep the map's fd busy (the kernel holds the map while
 * it is mapped).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_MMAPABLE, BpfError, BpfMap, MapMemory } from "../mod.ts";
 *
 * using map = BpfMap.create({
 *   type: "array", keySize: 4, valueSize: 12, maxEntries: 3, flags: BPF_F_MMAPABLE,
 * });
 * using memory = MapMemory.open(map);
 * assert.equal(memory.stride, 16); // 12 rounded up to 8
 * assert.equal(memory.length, 48);
 * memory.setValue(1, new Uint8Array(12).fill(9));
 * assert.deepEqual(map.lookup(new Uint8Array([1, 0, 0, 0])), new Uint8Array(12).fill(9));
 * // A writable mapping holds the map writable: the kernel will not freeze it under one.
 * assert.throws(() => map.freeze(), (e) => e instanceof BpfError && e.code === "EBUSY");
 * ```
 */
export class MapMemory {
  /** The map whose memory this is. */
  readonly map: BpfMap;
  /** The bytes of every element, strides included: `maxEntries * stride`. */
  readonly length: number;
  /** Bytes from one element to the next: the value size rounded up to 8. */
  readonly stride: number;
  /** Whether the memory is mapped writable. */
  readonly writable: boolean;
  readonly #region: MappedRegion;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #closed = false;

  private constructor(map: BpfMap, region: MappedRegion, length: number, writable: boolean) {
    this.map = map;
    this.#region = region;
    this.length = length;
    this.stride = strideOf(map.valueSize);
    this.writable = writable;
    this.#bytes = region.bytes;
    this.#view = new DataView(region.bytes.buffer, region.bytes.byteOffset, length);
  }

  /**
   * Maps `map`'s memory: writable unless `options.readOnly`, or the map is
   * frozen (fdinfo) or read-only for programs (`BPF_F_RDONLY_PROG`).
   *
   * @throws {TypeError} for a map that is closed, not an array, per-CPU or not mmapable (before any syscall).
   * @throws {BpfError} (`op` `"mmap"`) when the kernel refuses: `EACCES` for a read-only fd.
   */
  static open(map: BpfMap, options: MemoryOptions = {}): MapMemory {
    if (!(map instanceof BpfMap)) {
      throw new TypeError(`memory: map must be a BpfMap, got ${describe(map)}`);
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(`memory: options must be an object, got ${describe(options)}`);
    }
    if (map.closed) throw new TypeError(`memory: ${map} is closed`);
    if (isPerCpu(map.type)) {
      throw new TypeError(
        `memory: ${map} is a ${map.typeName} map: per-CPU memory cannot be mapped (read it with lookup)`,
      );
    }
    if (map.type !== MAP_TYPES.array) {
      throw new TypeError(`memory: ${map} is a ${map.typeName} map; only arrays can be mapped`);
    }
    if ((map.flags & BPF_F_MMAPABLE) === 0) {
      throw new TypeError(
        `memory: ${map} was not created with BPF_F_MMAPABLE (flags 0x${map.flags.toString(16)})`,
      );
    }
    const kernel = map.kernel;
    const primitives = primitivesOf(kernel.backend);
    const length = map.maxEntries * strideOf(map.valueSize);
    // The kernel maps whole pages: the last one past the elements reads as zeros.
    const pages = Math.ceil(length / primitives.pageSize) * primitives.pageSize;
    const writable = options.readOnly !== true && (map.flags & BPF_F_RDONLY_PROG) === 0
      && kernel.backend.fdInfo(map.fd)["frozen"] !== "1";
    const prot = writable ? "readWrite" : "read";
    const region = primitives.mmap(map.fd, pages, prot, 0);
    if (typeof region === "number") {
      // A read-only fd: the kernel refuses PROT_WRITE (EACCES), and a shared mapping at all (EINVAL).
      const hint = region === -EACCES || region === -EINVAL
        ? " (an fd opened read-only, BPF_F_RDONLY, cannot be mapped: open the map read-write)"
        : "";
      throw new BpfError("mmap", -region, `${map}: ${pages} bytes, ${prot}${hint}`);
    }
    return new MapMemory(map, region, length, writable);
  }

  /** Whether {@linkcode MapMemory.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Copies bytes `[offset, offset + into.length)` into `into`.
   *
   * @returns `into`.
   */
  read(offset: number, into: Uint8Array): Uint8Array {
    const size = checkBytes(into, "into");
    if (size === 0) return into;
    this.#observe("read", offset, size);
    into.set(this.#bytes.subarray(offset, offset + size));
    return into;
  }

  /** A copy of element `index`'s value (`valueSize` bytes), in an `ArrayBuffer` of its own. */
  value(index: number): Uint8Array {
    return this.read(this.#element("value", index), new Uint8Array(this.map.valueSize));
  }

  /** Writes `bytes` at `offset`. */
  write(offset: number, bytes: Uint8Array): void {
    const size = checkBytes(bytes, "bytes");
    if (size === 0) return;
    this.#writing("write", offset, size);
    // A copy first: `bytes` may be a view of this very memory.
    this.#bytes.set(bytes.slice(), offset);
    this.#region.wrote(offset, size);
  }

  /** Writes element `index`'s value: exactly `valueSize` bytes. */
  setValue(index: number, bytes: Uint8Array): void {
    const size = checkBytes(bytes, "bytes");
    if (size !== this.map.valueSize) {
      throw new RangeError(`setValue: bytes must be ${this.map.valueSize} bytes, got ${size}`);
    }
    this.write(this.#element("setValue", index), bytes);
  }

  /**
   * Element `index` decoded by `codec`, read in place (no copy first).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BPF_F_MMAPABLE, BpfMap, struct, u16, u32 } from "../mod.ts";
   *
   * const point = struct({ x: u32, y: u16 }); // 8 bytes, as gcc pads it
   * using map = BpfMap.create({
   *   type: "array", keySize: 4, valueSize: point.size, maxEntries: 4, flags: BPF_F_MMAPABLE,
   * });
   * using memory = map.memory();
   * memory.set(3, point, { x: 70000, y: 9 });
   * assert.deepEqual(memory.get(3, point), { x: 70000, y: 9 });
   * assert.throws(() => memory.set(3, point, { x: 1 } as never), { name: "TypeError", message: /^value: / });
   * ```
   *
   * @throws {RangeError} for an index out of range, or a codec of another size than the value's.
   */
  get<T>(index: number, codec: ElementCodec<T>): T {
    const offset = this.#element("get", index);
    this.#checkCodec("get", codec);
    this.#observe("get", offset, codec.size);
    return codec.read(this.#view, offset);
  }

  /**
   * Writes element `index` as `codec` encodes `value`: encoded aside first,
   * so a value the codec refuses leaves the memory as it was.
   */
  set<T>(index: number, codec: ElementCodec<T>, value: T): void {
    const offset = this.#element("set", index);
    this.#checkCodec("set", codec);
    const bytes = new Uint8Array(codec.size);
    try {
      codec.write(new DataView(bytes.buffer), 0, value);
    } catch (error) {
      if (error instanceof Error) error.message = `value: ${error.message}`;
      throw error;
    }
    this.write(offset, bytes);
  }

  /** The u8 at `offset`. */
  readU8(offset: number): number {
    return this.#readNumber("u8", offset);
  }

  /** The little-endian u16 at `offset`. */
  readU16(offset: number): number {
    return this.#readNumber("u16", offset);
  }

  /** The little-endian u32 at `offset`. */
  readU32(offset: number): number {
    return this.#readNumber("u32", offset);
  }

  /** The little-endian i32 at `offset`. */
  readI32(offset: number): number {
    return this.#readNumber("i32", offset);
  }

  /** The little-endian f64 at `offset`. */
  readF64(offset: number): number {
    return this.#readNumber("f64", offset);
  }

  /** The little-endian u64 at `offset`. */
  readU64(offset: number): bigint {
    this.#observe("readU64", offset, 8);
    return this.#view.getBigUint64(offset, true);
  }

  /** The little-endian i64 at `offset`. */
  readI64(offset: number): bigint {
    this.#observe("readI64", offset, 8);
    return this.#view.getBigInt64(offset, true);
  }

  /** Writes a u8 at `offset`. */
  setU8(offset: number, value: number): void {
    this.#setNumber("u8", offset, value);
  }

  /** Writes a little-endian u16 at `offset`. */
  setU16(offset: number, value: number): void {
    this.#setNumber("u16", offset, value);
  }

  /** Writes a little-endian u32 at `offset`. */
  setU32(offset: number, value: number): void {
    this.#setNumber("u32", offset, value);
  }

  /** Writes a little-endian i32 at `offset`. */
  setI32(offset: number, value: number): void {
    this.#setNumber("i32", offset, value);
  }

  /** Writes a little-endian f64 at `offset`. */
  setF64(offset: number, value: number): void {
    this.#setNumber("f64", offset, value);
  }

  /** Writes a little-endian u64 at `offset` (a bigint, or a non-negative safe integer). */
  setU64(offset: number, value: bigint | number): void {
    this.#setBig("setU64", offset, value, 0n, 0xffff_ffff_ffff_ffffn);
  }

  /** Writes a little-endian i64 at `offset` (a bigint, or a safe integer). */
  setI64(offset: number, value: bigint | number): void {
    this.#setBig("setI64", offset, value, -(1n << 63n), (1n << 63n) - 1n);
  }

  /**
   * The memory itself, `[offset, offset + length)`, for loops that cannot
   * pay a call per read: live, a view of the kernel's pages (programs' writes
   * show at once; on a read-only mapping a write through it kills the
   * process, so only read it there); recording, a view of the recorder's
   * copy as observed when taken. For replay it is observed once, when taken:
   * what a recording's later reads through it saw is not kept, nor are
   * writes through it, so a replayed run must not depend on them. Valid
   * until {@linkcode MapMemory.close}, after which it is empty.
   */
  view(offset = 0, length: number = this.length - offset): Uint8Array {
    this.#observe("view", offset, length);
    return this.#bytes.subarray(offset, offset + length);
  }

  /** Unmaps the memory (the map stays open). A second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const result = this.#region.unmap();
    if (result < 0) throw new BpfError("munmap", -result, `${this.map}`);
  }

  /** {@linkcode MapMemory.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkCodec(op: string, codec: ElementCodec<unknown>): void {
    if (codec === null || typeof codec !== "object" || typeof codec.read !== "function") {
      throw new TypeError(`${op}: codec must be a codec, got ${describe(codec)}`);
    }
    if (codec.size !== this.map.valueSize) {
      throw new RangeError(
        `${op}: codec ${codec.name} is ${codec.size} bytes; the map's values are ${this.map.valueSize}`,
      );
    }
  }

  #element(op: string, index: number): number {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.map.maxEntries) {
      throw new RangeError(
        `${op}: index must be an integer from 0 to ${this.map.maxEntries - 1}, got ${shown(index)}`,
      );
    }
    return index * this.stride;
  }

  /** Checks `[offset, offset + size)` and tells the backend it is about to be read. */
  #observe(op: string, offset: number, size: number): void {
    this.#checkSpan(op, offset, size);
    this.#region.observe(offset, size);
  }

  #checkSpan(op: string, offset: number, size: number): void {
    if (this.#closed) throw new TypeError(`${op}: the memory of ${this.map} is unmapped`);
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size <= 0
      || offset + size > this.length
    ) {
      throw new RangeError(
        `${op}: bytes [${String(offset)}, +${
          String(size)
        }) are not inside the map's ${this.length}`,
      );
    }
  }

  #writing(op: string, offset: number, size: number): void {
    this.#checkSpan(op, offset, size);
    if (!this.writable) {
      throw new TypeError(`${op}: the memory of ${this.map} is mapped read-only`);
    }
  }

  #readNumber(kind: NumberKind, offset: number): number {
    this.#observe(`read${kind.toUpperCase()}`, offset, SIZES[kind]);
    const view = this.#view;
    switch (kind) {
      case "u8":
        return view.getUint8(offset);
      case "u16":
        return view.getUint16(offset, true);
      case "u32":
        return view.getUint32(offset, true);
      case "i32":
        return view.getInt32(offset, true);
      case "f64":
        return view.getFloat64(offset, true);
    }
  }

  #setNumber(kind: NumberKind, offset: number, value: number): void {
    const op = `set${kind.toUpperCase()}`;
    if (kind === "f64") {
      if (typeof value !== "number") {
        throw new TypeError(`${op}: value must be a number, got ${shown(value)}`);
      }
    } else {
      const bits = SIZES[kind] * 8;
      const [min, max] = kind === "i32" ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** bits - 1];
      if (!Number.isInteger(value) || value < min || value > max) {
        throw new RangeError(
          `${op}: value must be an integer from ${min} to ${max}, got ${shown(value)}`,
        );
      }
    }
    this.#writing(op, offset, SIZES[kind]);
    const view = this.#view;
    if (kind === "u8") view.setUint8(offset, value);
    else if (kind === "u16") view.setUint16(offset, value, true);
    else if (kind === "u32") view.setUint32(offset, value, true);
    else if (kind === "i32") view.setInt32(offset, value, true);
    else view.setFloat64(offset, value, true);
    this.#region.wrote(offset, SIZES[kind]);
  }

  #setBig(op: string, offset: number, value: bigint | number, min: bigint, max: bigint): void {
    const big = typeof value === "bigint"
      ? value
      : Number.isSafeInteger(value)
      ? BigInt(value)
      : undefined;
    if (big === undefined || big < min || big > max) {
      throw new RangeError(
        `${op}: value must be a bigint or a safe integer from ${min} to ${max}, got ${
          shown(value)
        }`,
      );
    }
    this.#writing(op, offset, 8);
    this.#view.setBigUint64(offset, BigInt.asUintN(64, big), true);
    this.#region.wrote(offset, 8);
  }
}

/** A number as written, anything else as `describe` names it. */
function shown(value: unknown): string {
  return typeof value === "number" || typeof value === "bigint" ? String(value) : describe(value);
}

/** An array element's stride: its value size rounded up to 8, as `array_map_alloc` rounds it. */
function strideOf(valueSize: number): number {
  return (valueSize + 7) & ~7;
}

// A method, as a class would define it: not enumerable.
Object.defineProperty(BpfMap.prototype, "memory", {
  value: function memory(this: BpfMap, options?: MemoryOptions): MapMemory {
    return MapMemory.open(this, options);
  },
  writable: true,
  configurable: true,
});
