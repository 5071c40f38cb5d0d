/**
 * Typed access to a map through codecs: `get`, `set`, `entries()` and the
 * batch forms speak JavaScript values; `batches()` hands out zero-copy views
 * of the very buffers the kernel filled.
 *
 * @module
 */

import { BatchError, BpfError } from "../ffi/errors.ts";
import { isPerCpu } from "../ffi/map_types.ts";
import { perCpuSlotSize } from "../ffi/percpu.ts";
import type { BatchResult } from "../maps/batch.ts";
import type { BpfMap, MapSpec } from "../maps/bpf_map.ts";
import { drainBatches, isUnsupported, walkBatches, type WalkOptions } from "../maps/walk.ts";
import { btfOfCodecs } from "./btf.ts";
import { arrayAt, atField, type Codec, type NumberArray } from "./codec.ts";

/** The codecs of a typed map's keys and values. */
export interface TypedSpec<K, V> {
  /** The key codec; `noKey` for queues, stacks and bloom filters. */
  key: Codec<K>;
  value: Codec<V>;
}

/**
 * A per-CPU value as an array of one value per possible CPU, each in a slot
 * of `roundUp(size, 8)` bytes, as the kernel lays them out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, u32 } from "./codec.ts";
 * import { perCpu } from "./typed_map.ts";
 *
 * const counters = perCpu(u32, 2); // 2 CPUs, 8-byte slots
 * assert.deepEqual(
 *   encode(counters, [1, 2]),
 *   new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]),
 * );
 * assert.deepEqual(decode(counters, encode(counters, [1, 2])), [1, 2]);
 * ```
 */
export function perCpu<V>(value: Codec<V>, cpus: number): Codec<V[]> {
  // One value per CPU, a slot apart.
  const slots = arrayAt(value, cpus, perCpuSlotSize(value.size));
  const size = slots.size;
  return Object.freeze({
    element: value,
    cpus,
    name: `percpu<${value.name}>[${cpus}]`,
    size,
    align: 8,
    read: slots.read,
    write: (view: DataView, offset: number, values: V[]) => {
      new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0); // slot padding is zero
      slots.write(view, offset, values);
    },
  });
}

const viewOf = (bytes: Uint8Array) =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The typed array over a batch's keys or values of type `T`: 64-bit for
 * bigints, the other widths for numbers (a per-CPU value's element decides).
 */
export type ArrayOf<T> = [T] extends [bigint | readonly bigint[]] ? BigUint64Array | BigInt64Array
  : [T] extends [number | readonly number[]] ? Exclude<NumberArray, BigUint64Array | BigInt64Array>
  : NumberArray;

/**
 * One lookup batch of a typed map: zero-copy, valid until the next batch replaces it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { u32, u64 } from "./codec.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 3 });
 * const typed = map.typed({ key: u32, value: u64 });
 * typed.setMany([[0, 10n], [1, 11n], [2, 12n]]);
 * const batches = [...typed.batches()];
 * assert.equal(batches.length, 1);
 * const batch = batches[0]!; // one batch: 3 elements
 * assert.equal(batch.count, 3);
 * assert.deepEqual([batch.key(2), batch.value(2)], [2, 12n]); // decoded
 * assert.deepEqual(batch.keyArray(), new Uint32Array([0, 1, 2])); // the kernel's bytes, no copy
 * assert.deepEqual(batch.valueArray(), new BigUint64Array([10n, 11n, 12n]));
 * ```
 */
export class TypedBatch<K, V> {
  /** Elements in this batch. */
  readonly count: number;
  /** The keys as the kernel wrote them: `count * keySize` bytes. */
  readonly keyBytes: Uint8Array;
  /** The values as the kernel wrote them: `count * valueStride` bytes. */
  readonly valueBytes: Uint8Array;
  readonly #spec: TypedSpec<K, V>;

  constructor(count: number, keyBytes: Uint8Array, valueBytes: Uint8Array, spec: TypedSpec<K, V>) {
    this.count = count;
    this.keyBytes = keyBytes;
    this.valueBytes = valueBytes;
    this.#spec = spec;
  }

  /** The `i`-th key, decoded. */
  key(i: number): K {
    return this.#spec.key.read(viewOf(this.keyBytes), i * this.#spec.key.size);
  }

  /** The `i`-th value, decoded. */
  value(i: number): V {
    return this.#spec.value.read(viewOf(this.valueBytes), i * this.#spec.value.size);
  }

  /** The keys as a typed array over the kernel's buffer (fixed-width little-endian key codecs). */
  keyArray(): ArrayOf<K> {
    return arrayView(this.#spec.key, this.keyBytes, "key") as ArrayOf<K>;
  }

  /**
   * The values as a typed array over the kernel's buffer: a `BigUint64Array`
   * (or `BigInt64Array`) for `u64` (`i64`) values, typed so. For per-CPU
   * maps, the slots of every CPU, element after element (see
   * {@linkcode TypedBatch.sumPerCpu}).
   */
  valueArray(): ArrayOf<V> {
    return this.#values ??= arrayView(this.#spec.value, this.valueBytes, "value") as ArrayOf<V>;
  }

  #values: ArrayOf<V> | undefined;

  /**
   * The sum of element `i`'s per-CPU values, in a batch of a per-CPU map
   * seen through `typedPerCpu` with a numeric value codec: what
   * `sumPerCpu(batch.valueArray(), i, cpus, valueSize)` computes, allocating
   * nothing.
   *
   * @throws {TypeError} for a batch whose values are not per-CPU numbers.
   * @throws {RangeError} for an `i` outside `0..count-1`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap, possibleCpus } from "../mod.ts";
   * import { u32, u64 } from "./codec.ts";
   *
   * using map = BpfMap.create({ type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 2 });
   * const counters = map.typedPerCpu({ key: u32, value: u64 });
   * const cpus = possibleCpus();
   * counters.set(1, Array.from({ length: cpus }, (_, cpu) => BigInt(cpu + 1)));
   * const [batch] = [...counters.batches()];
   * assert.equal(batch!.sumPerCpu(0), 0n);
   * assert.equal(batch!.sumPerCpu(1), BigInt((cpus * (cpus + 1)) / 2)); // 1 + 2 + ... + cpus
   * assert.throws(() => batch!.sumPerCpu(2), RangeError);
   * ```
   */
  sumPerCpu(i: number): [V] extends [readonly bigint[]] ? bigint : number {
    const codec = this.#spec.value as Codec<V> & { element?: Codec<unknown>; cpus?: number };
    if (codec.cpus === undefined || codec.element!.array === undefined) {
      throw new TypeError(
        `sumPerCpu: the values (${codec.name}) are not per-CPU numbers: see typedPerCpu`,
      );
    }
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new RangeError(`sumPerCpu: element ${i} is not in this batch of ${this.count}`);
    }
    return sumPerCpu(this.valueArray(), i, codec.cpus, codec.element!.size) as never;
  }
}

function arrayView(codec: Codec<unknown>, bytes: Uint8Array, what: string): NumberArray {
  const base = (codec as { element?: Codec<unknown> }).element ?? codec;
  const Array = base.array;
  if (Array === undefined) {
    throw new TypeError(`${what} codec ${codec.name} has no typed-array view`);
  }
  const width = (Array as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  return new Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / width);
}

/**
 * A map seen through codecs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { u32, u64 } from "./codec.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 64 });
 * const counts = map.typed({ key: u32, value: u64 });
 * counts.set(80, 1n);
 * counts.setMany([[443, 2n], [22, 3n]]);
 * assert.equal(counts.get(443), 2n);
 * assert.deepEqual(new Map(counts.entries()), new Map([[80, 1n], [443, 2n], [22, 3n]]));
 * ```
 */
export class TypedMap<K, V> {
  /** The raw map. */
  readonly map: BpfMap;
  readonly key: Codec<K>;
  /** The value codec as the kernel sees it (per CPU: all CPUs' slots). */
  readonly value: Codec<V>;

  constructor(map: BpfMap, spec: TypedSpec<K, V>) {
    if (spec.key.size !== map.keySize) {
      throw new TypeError(
        `key codec ${spec.key.name} is ${spec.key.size} bytes; the map's keys are ${map.keySize}`,
      );
    }
    if (spec.value.size !== map.valueStride) {
      throw new TypeError(
        `value codec ${spec.value.name} is ${spec.value.size} bytes; the map's values are ${map.valueStride}`
          + (isPerCpu(map.type) ? " (per-CPU: use typedPerCpu)" : ""),
      );
    }
    this.map = map;
    this.key = spec.key;
    this.value = spec.value;
  }

  #encodeKey(key: K): Uint8Array {
    const bytes = new Uint8Array(this.key.size);
    writeAt(this.key, viewOf(bytes), 0, key, "key");
    return bytes;
  }

  #decodeValue(bytes: Uint8Array | undefined): V | undefined {
    return bytes === undefined ? undefined : this.value.read(viewOf(bytes), 0);
  }

  /** The value under `key`, or `undefined`. `flags`: `BPF_F_LOCK` to read under the value's spin lock. */
  get(key: K, flags = 0): V | undefined {
    return this.#decodeValue(this.map.lookup(this.#encodeKey(key), flags));
  }

  /** Whether `key` is present. */
  has(key: K): boolean {
    return this.map.lookup(this.#encodeKey(key)) !== undefined;
  }

  #encodeValue(value: V): Uint8Array {
    const bytes = new Uint8Array(this.value.size);
    writeAt(this.value, viewOf(bytes), 0, value, "value");
    return bytes;
  }

  /** Stores `value` under `key` (`flags`: BPF_ANY, BPF_NOEXIST, BPF_EXIST, each may add BPF_F_LOCK). */
  set(key: K, value: V, flags = 0): this {
    this.map.update(this.#encodeKey(key), this.#encodeValue(value), flags);
    return this;
  }

  /** Deletes `key`; `false` if it was not there. */
  delete(key: K): boolean {
    return this.map.delete(this.#encodeKey(key));
  }

  /**
   * Every `[key, value]`: by lookup batches, or by `nextKey` + `lookup` on
   * map types without them, as `BpfMap.entries()` walks (`elemFlags`:
   * `BPF_F_LOCK` to copy each value under its lock).
   */
  *entries(opts: WalkOptions = {}): IterableIterator<[K, V]> {
    const { batchSize: size, ...rest } = opts;
    for (const batch of this.batches({ size, ...rest })) {
      for (let i = 0; i < batch.count; i++) yield [batch.key(i), batch.value(i)];
    }
  }

  /** Every key. */
  *keys(opts: WalkOptions = {}): IterableIterator<K> {
    for (const [key] of this.entries(opts)) yield key;
  }

  /** Every value. */
  *values(opts: WalkOptions = {}): IterableIterator<V> {
    for (const [, value] of this.entries(opts)) yield value;
  }

  /** The values of `keys` (the kernel has no batch lookup by key: one call each). */
  getMany(keys: Iterable<K>): (V | undefined)[] {
    return [...keys].map((key) => this.get(key));
  }

  /** Stores every `[key, value]` in one `BPF_MAP_UPDATE_BATCH` where the type has it; returns the count. */
  setMany(entries: Iterable<[K, V]>, opts: { elemFlags?: number | undefined } = {}): number {
    const list = [...entries];
    if (list.length === 0) return 0;
    const keys = new Uint8Array(list.length * this.key.size);
    const values = new Uint8Array(list.length * this.value.size);
    const keyView = viewOf(keys);
    const valueView = viewOf(values);
    list.forEach(([key, value], i) => {
      writeAt(this.key, keyView, i * this.key.size, key, `entries[${i}].key`);
      writeAt(this.value, valueView, i * this.value.size, value, `entries[${i}].value`);
    });
    try {
      const flags = opts.elemFlags === undefined ? {} : { elemFlags: opts.elemFlags };
      return this.map.updateBatch(keys, values, flags);
    } catch (error) {
      if (!isUnsupported(error)) throw error;
      list.forEach(([key, value]) => this.set(key, value, opts.elemFlags));
      return list.length;
    }
  }

  /** Deletes every present key of `keys` (by `BPF_MAP_DELETE_BATCH` where the type has it); returns how many were. */
  deleteMany(keys: Iterable<K>): number {
    let list = [...keys];
    let deleted = 0;
    while (list.length > 0) {
      const bytes = new Uint8Array(list.length * this.key.size);
      list.forEach((key, i) =>
        writeAt(this.key, viewOf(bytes), i * this.key.size, key, `keys[${i}]`)
      );
      try {
        return deleted + this.map.deleteBatch(bytes);
      } catch (error) {
        if (error instanceof BatchError && error.code === "ENOENT") {
          // Keys before the missing one are gone; skip it and go on.
          deleted += error.processed;
          list = list.slice(error.processed + 1);
          continue;
        }
        if (!isUnsupported(error)) throw error;
        return deleted + list.filter((key) => this.delete(key)).length;
      }
    }
    return deleted;
  }

  /**
   * Removes and returns every element: by lookup-and-delete batches (hash
   * maps), else one by one (`pop` for queues and stacks; lookup and delete
   * for LPM tries and the like). See `drainBatches` in `maps/walk.ts`.
   *
   * Each batch is decoded as it comes, and the drain stops at the first
   * failure, whatever throws (a call the kernel fails, a codec that cannot
   * read what it removed): what is still in the map stays there, and what
   * was removed comes back with the error.
   *
   * @throws {DrainError} (a `BatchError`) when anything fails: `processed`
   * counts every element the drain removed, `keys` / `values` hold their
   * bytes, `entries` the ones decoded before the failure, `cause` the failure.
   */
  drain(opts: { batchSize?: number } = {}): [K, V][] {
    const removed: BatchResult[] = [];
    const drained: [K, V][] = [];
    try {
      for (const batch of drainBatches(this.map, opts)) {
        removed.push(batch); // first: a codec that throws below loses nothing
        const view = new TypedBatch(batch.count, batch.keys, batch.values, this);
        for (let i = 0; i < view.count; i++) drained.push([view.key(i), view.value(i)]);
      }
    } catch (error) {
      throw new DrainError(this.map, removed, drained, error);
    }
    return drained;
  }

  /** Adds `value` to a queue, stack or bloom filter (`flags`: `BPF_EXIST` overwrites a full queue's oldest). */
  push(value: V, flags = 0): void {
    this.map.push(this.#encodeValue(value), flags);
  }

  /** Removes and returns the next value of a queue or stack, `undefined` when empty. */
  pop(): V | undefined {
    return this.#decodeValue(this.map.pop());
  }

  /** The next value of a queue or stack, left in place; `undefined` when empty. */
  peek(): V | undefined {
    return this.#decodeValue(this.map.peek());
  }

  /** Whether a bloom filter may hold `value` (`false`: certainly not). */
  contains(value: V): boolean {
    return this.map.contains(this.#encodeValue(value));
  }

  /**
   * The map's elements in batches of up to `size`, as zero-copy views: the
   * same two buffers are filled again for every batch, so a batch is valid
   * until the next one is asked for. Copy what must outlive it. Lookup
   * batches fill them where the map type has them; elsewhere (devmap,
   * cpumap, ...) `nextKey` + `lookup` fill them, so every keyed type gives
   * the same views (`via` chooses, as for `entries()`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   * import { u32, u64 } from "./codec.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1000 });
   * const typed = map.typed({ key: u32, value: u64 });
   * typed.setMany(Array.from({ length: 1000 }, (_, i): [number, bigint] => [i, BigInt(i)]));
   * let sum = 0n;
   * for (const batch of typed.batches({ size: 256 })) {
   *   for (const value of batch.valueArray()) sum += value; // a BigUint64Array: u64 values
   * }
   * assert.equal(sum, 499500n);
   * ```
   */
  *batches(
    opts: Omit<WalkOptions, "batchSize"> & { size?: number | undefined } = {},
  ): Generator<TypedBatch<K, V>, void, undefined> {
    const { size: batchSize, ...rest } = opts;
    for (const batch of walkBatches(this.map, { ...rest, batchSize, reuse: true })) {
      yield new TypedBatch(batch.count, batch.keys, batch.values, this);
    }
  }
}

/** Writes `value` with `codec`; a refusal names `field` (`value.packets: ...`). */
function writeAt<T>(codec: Codec<T>, view: DataView, offset: number, value: T, field: string) {
  try {
    codec.write(view, offset, value);
  } catch (error) {
    throw atField(error, field);
  }
}

/**
 * A typed drain that stopped: everything it removed, raw and (as far as its
 * codecs could read them) decoded, and why it stopped. A `BatchError` with
 * `processed` = every element removed; when the kernel failed a call, `op`,
 * `errno` and `code` are that call's, else `op` is `"drain"` and `errno` 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchError, BpfMap, u32 } from "../mod.ts";
 * import type { Codec } from "./codec.ts";
 * import { DrainError } from "./typed_map.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
 * map.typed({ key: u32, value: u32 }).setMany([[1, 10], [2, 666]]);
 * const picky: Codec<number> = { ...u32, read: (view, offset) => {
 *   const n = u32.read(view, offset);
 *   if (n === 666) throw new Error("unlucky");
 *   return n;
 * } };
 * try {
 *   map.typed({ key: u32, value: picky }).drain();
 *   assert.fail("the codec throws");
 * } catch (error) {
 *   assert.ok(error instanceof DrainError && error instanceof BatchError);
 *   assert.equal(error.processed, 2); // both removed, both in error.keys and error.values
 *   assert.deepEqual(new Uint32Array(error.keys!.slice().buffer).sort(), new Uint32Array([1, 2]));
 *   assert.equal((error.cause as Error).message, "unlucky");
 *   assert.ok(error.entries.length < 2); // decoded: those before 666
 *   assert.equal(map.nextKey(), undefined);
 * }
 * ```
 */
export class DrainError<K = unknown, V = unknown> extends BatchError {
  /** The elements decoded before the failure, in the order of `keys` and `values`. */
  readonly entries: [K, V][];

  constructor(
    map: { typeName: string; id: number },
    removed: readonly BatchResult[],
    entries: [K, V][],
    cause: unknown,
  ) {
    const kernel = cause instanceof BpfError ? cause : undefined;
    const processed = removed.reduce((sum, batch) => sum + batch.count, 0);
    const elements = {
      keys: concat(removed.map((batch) => batch.keys)),
      values: concat(removed.map((batch) => batch.values)),
    };
    const where = `drain of ${map.typeName} map (id ${map.id})`;
    super(kernel?.op ?? "drain", kernel?.errno ?? 0, processed, elements, where);
    this.name = "DrainError";
    this.entries = entries;
    this.cause = cause;
    if (kernel === undefined) {
      this.message = `${where} stopped after removing ${processed} element(s), `
        + `${entries.length} decoded (all in keys/values): ${String(cause)}`;
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.byteLength;
  }
  return all;
}

/** A map spec whose key and value sizes come from codecs. */
export interface TypedMapSpec<K, V> extends Omit<MapSpec, "keySize" | "valueSize" | "btf"> {
  /** Left out (or `noKey`) for queues, stacks and bloom filters. */
  key?: Codec<K>;
  value: Codec<V>;
  /**
   * Describe the codecs to the kernel as BTF, as cilium/ebpf does for a
   * spec with types: needed for a value with a `spinLock` (`BPF_F_LOCK`),
   * and what makes `bpftool map dump` print fields by name.
   */
  btf?: boolean;
}

/**
 * The plain spec of a typed spec: sizes from the codecs, and their BTF with
 * `btf: true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_LOCK, BpfMap, spinLock, specOf, struct, u32, u64 } from "../mod.ts";
 *
 * const value = struct({ lock: spinLock, packets: u64 });
 * using map = BpfMap.create(specOf({ type: "hash", key: u32, value, maxEntries: 16, btf: true }));
 * const counters = map.typed({ key: u32, value });
 * counters.set(1, { packets: 5n }, BPF_F_LOCK);
 * assert.deepEqual(counters.get(1, BPF_F_LOCK), { packets: 5n });
 * ```
 */
export function specOf<K, V>(spec: TypedMapSpec<K, V>): MapSpec {
  const { key, value, btf, ...rest } = spec;
  const keySize = key?.size ?? 0;
  const plain: MapSpec = { ...rest, keySize, valueSize: value.size };
  if (btf === true) plain.btf = btfOfCodecs(keySize === 0 ? null : key!, value);
  return plain;
}

/** Where an element's first CPU slot is in a per-CPU batch view, and how far apart the slots are, in array elements. */
function perCpuSlots(values: NumberArray, element: number, cpus: number, valueSize: number) {
  const slot = perCpuSlotSize(valueSize) / values.BYTES_PER_ELEMENT;
  return { first: element * slot * cpus, slot };
}

/**
 * Sums one element's per-CPU counters in a per-CPU batch view, allocating
 * nothing: `values` is `TypedBatch.valueArray()`, `valueSize` the map's
 * value size per CPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sumPerCpu } from "./typed_map.ts";
 *
 * const values = new BigUint64Array([1n, 2n, 10n, 20n]); // 2 elements x 2 CPUs, u64 each
 * assert.equal(sumPerCpu(values, 1, 2, 8), 30n);
 * // u32 values sit in 8-byte slots: every other array element is padding.
 * assert.equal(sumPerCpu(new Uint32Array([1, 99, 2, 99]), 0, 2, 4), 3);
 * ```
 */
export function sumPerCpu<T extends NumberArray>(
  values: T,
  element: number,
  cpus: number,
  valueSize: number,
): T extends BigUint64Array | BigInt64Array ? bigint : number {
  const { first, slot } = perCpuSlots(values, element, cpus, valueSize);
  let sum = (typeof values[0] === "bigint" ? 0n : 0) as never as number;
  for (let cpu = 0; cpu < cpus; cpu++) sum += values[first + cpu * slot] as number;
  return sum as never;
}

/**
 * The largest of one element's per-CPU values in a per-CPU batch view, allocating nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maxPerCpu } from "./typed_map.ts";
 *
 * const values = new BigUint64Array([1n, 2n, 20n, 10n]); // 2 elements x 2 CPUs, u64 each
 * assert.equal(maxPerCpu(values, 0, 2, 8), 2n);
 * assert.equal(maxPerCpu(values, 1, 2, 8), 20n);
 * ```
 */
export function maxPerCpu<T extends NumberArray>(
  values: T,
  element: number,
  cpus: number,
  valueSize: number,
): T extends BigUint64Array | BigInt64Array ? bigint : number {
  const { first, slot } = perCpuSlots(values, element, cpus, valueSize);
  let max = values[first] as number;
  for (let cpu = 1; cpu < cpus; cpu++) {
    if ((values[first + cpu * slot] as number) > max) max = values[first + cpu * slot] as number;
  }
  return max as never;
}
