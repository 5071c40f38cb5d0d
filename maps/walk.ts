/**
 * Walking every element of a map: by lookup batches where the kernel has
 * them for the map type, by `nextKey` + `lookup` where it has not. One walk
 * serves `BpfMap.entries()`, a typed map's zero-copy `batches()` and the
 * `bpfmap map dump` command.
 *
 * @module
 */

import { EINVAL, ENOENT, ENOSPC, ENOTSUPP } from "../ffi/errno.ts";
import { BatchError, BpfError } from "../ffi/errors.ts";
import { offHeapBytes } from "../ffi/memory.ts";
import type { BatchLookupOptions, BatchResult } from "./batch.ts";

/**
 * The map a walk runs over: the element and batch calls of `BpfMap`, named
 * here so that the walk sits below the map whose `entries()` it serves.
 */
export interface WalkableMap {
  readonly id: number;
  readonly keySize: number;
  readonly valueStride: number;
  readonly maxEntries: number;
  lookup(key: Uint8Array, flags?: number): Uint8Array | undefined;
  lookupInto(key: Uint8Array, out: Uint8Array, flags?: number): boolean;
  nextKeyInto(key: Uint8Array | null | undefined, out: Uint8Array): boolean;
  lookupAndDelete(key: Uint8Array): Uint8Array | undefined;
  delete(key: Uint8Array): boolean;
  nextKey(key?: Uint8Array): Uint8Array | undefined;
  pop(): Uint8Array | undefined;
  lookupBatch(opts: BatchLookupOptions): BatchResult;
  lookupAndDeleteBatch(opts: BatchLookupOptions): BatchResult;
}

/** Options of `BpfMap.entries()` and `BpfMap.keys()`. */
export interface WalkOptions {
  /** Elements per lookup batch, to start with; doubled when a hash bucket does not fit. Default 4096. */
  batchSize?: number | undefined;
  /**
   * `"auto"` (default): batches, falling back to `nextKey` + `lookup` when
   * the first batch call answers EINVAL (kernel before 5.6) or ENOTSUPP (map
   * type without batch lookup). `"batch"`: batches only. `"nextKey"`: the
   * per-element walk only.
   */
  via?: "auto" | "batch" | "nextKey" | undefined;
  /** 0, or `BPF_F_LOCK` to copy each value under its spin lock. */
  elemFlags?: number | undefined;
  /**
   * For the per-element walk: called with a key whose lookup failed (its
   * errno, ENOENT for a key deleted since `nextKey` gave it), after every
   * element before it was yielded; the walk then goes on, as bpftool's dump
   * prints an error line for the key and goes on. Without it, a key deleted
   * meanwhile is skipped and any other failure ends the walk.
   */
  onLookupError?: ((key: Uint8Array, errno: number) => void) | undefined;
}

/** Options of {@linkcode walkBatches}. */
export interface BatchWalkOptions extends WalkOptions {
  /**
   * `true`: one pair of buffers is filled again for every batch, so a batch
   * is valid until the next one is asked for (zero-copy readers). `false`
   * (default): every batch has buffers of its own, so its views stay valid.
   */
  reuse?: boolean | undefined;
}

/**
 * The default number of elements per lookup batch of a walk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, DEFAULT_BATCH_SIZE, walkBatches } from "../mod.ts";
 *
 * assert.equal(DEFAULT_BATCH_SIZE, 4096);
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 5000 });
 * assert.deepEqual([...walkBatches(map, {})].map((batch) => batch.count), [4096, 904]);
 * ```
 */
export const DEFAULT_BATCH_SIZE = 4096;

/** How many times a walk doubles its batch on ENOSPC before it gives up. */
const MAX_GROWTH_STEPS = 24;

/** Maps whose type or kernel answered a batch lookup with "not supported". */
const withoutBatchLookup = new WeakSet<WalkableMap>();
/** Maps whose type or kernel answered a lookup-and-delete batch with "not supported". */
const withoutBatchDrain = new WeakSet<WalkableMap>();
/** Maps without single-element lookup-and-delete (arrays, LPM tries; hash maps before 5.14). */
const withoutLookupAndDelete = new WeakSet<WalkableMap>();

/**
 * Whether a failed call means "this kernel or map type has no such
 * command" (EINVAL from kernels before it, ENOTSUPP from types without it),
 * rather than a batch that failed part-way through.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchError, BpfMap } from "../mod.ts";
 * import { isUnsupported } from "./walk.ts";
 *
 * using devmap = BpfMap.create({ type: "devmap", keySize: 4, valueSize: 4, maxEntries: 8 });
 * assert.throws(() => devmap.lookupBatch({ count: 8 }), isUnsupported); // ENOTSUPP
 * assert.equal(isUnsupported(new BatchError("BPF_MAP_LOOKUP_BATCH", 22, 5)), false); // part-way
 * ```
 */
export function isUnsupported(error: unknown): error is BpfError {
  return error instanceof BpfError && (error.errno === ENOTSUPP || error.errno === EINVAL)
    && (!(error instanceof BatchError) || error.processed === 0);
}

/**
 * Yields every `[key, value]` of `map`. Keys and values are views into a
 * buffer of their own batch, so they stay valid after the walk moves on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { walkEntries } from "./walk.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1000 });
 * const entries = [...walkEntries(map, { batchSize: 512 })]; // two batches
 * // Every key still reads as itself after the walk: an array's keys are 0..999.
 * const keys = entries.map(([key]) => new DataView(key.slice().buffer).getUint32(0, true));
 * assert.deepEqual(keys, Array.from({ length: 1000 }, (_, index) => index));
 * ```
 */
export function* walkEntries(
  map: WalkableMap,
  opts: WalkOptions,
): Generator<[Uint8Array, Uint8Array], void, undefined> {
  const { keySize, valueStride } = map;
  for (const batch of walkBatches(map, { ...opts, reuse: false })) {
    for (let i = 0; i < batch.count; i++) {
      yield [
        batch.keys.subarray(i * keySize, (i + 1) * keySize),
        batch.values.subarray(i * valueStride, (i + 1) * valueStride),
      ];
    }
  }
}

/**
 * Yields the map's elements batch by batch, on every map type: lookup
 * batches where the kernel has them, else batches filled by `nextKey` +
 * `lookup` (see {@linkcode WalkOptions.via}). Every batch holds at least one
 * element. A batch's `cursor` is not for the caller: the walk resumes by
 * itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { walkBatches } from "./walk.ts";
 *
 * // A devmap has no batch lookup: the walk fills its batches key by key.
 * using map = BpfMap.create({ type: "devmap", keySize: 4, valueSize: 4, maxEntries: 8 });
 * map.update(new Uint8Array([3, 0, 0, 0]), new Uint8Array([1, 0, 0, 0]));
 * const counts = [...walkBatches(map, { batchSize: 4, reuse: true })].map((b) => b.count);
 * assert.deepEqual(counts, [1]);
 * ```
 */
export function* walkBatches(
  map: WalkableMap,
  opts: BatchWalkOptions,
): Generator<BatchResult, void, undefined> {
  const via = opts.via ?? "auto";
  if (via !== "auto" && via !== "batch" && via !== "nextKey") {
    throw new TypeError(`opts.via must be "auto", "batch" or "nextKey", got ${String(via)}`);
  }
  const batchSize = checkBatchSize(opts.batchSize ?? DEFAULT_BATCH_SIZE);
  const byNextKey = () => batchesByNextKey(map, batchSize, opts);
  if (via === "nextKey" || (via === "auto" && withoutBatchLookup.has(map))) {
    yield* byNextKey();
    return;
  }
  const batches = lookupBatches(map, { ...opts, batchSize });
  if (via === "batch") yield* batches;
  else yield* orElse(map, batches, withoutBatchLookup, byNextKey);
}

/**
 * Yields `batches`; if their first call answers that the kernel or map type
 * has no such command, remembers that of `map` in `without` and yields
 * `fallback()` instead.
 */
function* orElse(
  map: WalkableMap,
  batches: Generator<BatchResult, void, undefined>,
  without: WeakSet<WalkableMap>,
  fallback: () => Generator<BatchResult, void, undefined>,
): Generator<BatchResult, void, undefined> {
  for (let first = true;; first = false) {
    let next;
    try {
      next = batches.next();
    } catch (error) {
      if (!first || !isUnsupported(error)) throw error;
      without.add(map);
      yield* fallback();
      return;
    }
    if (next.done) return;
    yield next.value;
  }
}

/**
 * Yields the map's lookup batches (`BPF_MAP_LOOKUP_BATCH`, or
 * `BPF_MAP_LOOKUP_AND_DELETE_BATCH` with `andDelete`) from the first to the
 * last, resuming from each batch's cursor. When a hash bucket does not fit
 * (ENOSPC), the batch doubles and the same cursor is asked again, at most 24
 * times. A call that fails part-way yields the elements it returned, then
 * throws: nothing a lookup-and-delete removed is lost. Every error, the
 * first call's ENOTSUPP included, reaches the caller: {@linkcode walkBatches}
 * and {@linkcode drainBatches} are the walks that fall back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { lookupBatches } from "./walk.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 3 });
 * const keys = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
 * map.updateBatch(keys, keys);
 * // Batches of 1 grow where two keys share a hash bucket (ENOSPC): none is lost.
 * const batches = [...lookupBatches(map, { batchSize: 1 })];
 * const read = batches.flatMap((batch) => [...new Uint32Array(batch.keys.slice().buffer)]);
 * assert.deepEqual(read.sort((a, b) => a - b), [1, 2, 3]);
 * using devmap = BpfMap.create({ type: "devmap", keySize: 4, valueSize: 4, maxEntries: 8 });
 * assert.throws(() => [...lookupBatches(devmap, {})], { name: "BatchError", code: "ENOTSUPP" });
 * ```
 */
export function* lookupBatches(
  map: WalkableMap,
  opts: BatchWalkOptions & { andDelete?: boolean },
): Generator<BatchResult, void, undefined> {
  let size = checkBatchSize(opts.batchSize ?? DEFAULT_BATCH_SIZE);
  const buffers = () =>
    opts.reuse
      ? { keys: offHeapBytes(size * map.keySize), values: offHeapBytes(size * map.valueStride) }
      : {};
  let reused = buffers();
  let cursor: Uint8Array | null = null;
  let growth = 0;
  for (;;) {
    let batch;
    try {
      const batchOpts: BatchLookupOptions = {
        cursor,
        count: size,
        // BatchLookupOptions has no room for an explicit undefined.
        ...(opts.elemFlags === undefined ? {} : { elemFlags: opts.elemFlags }),
        ...reused,
      };
      batch = opts.andDelete ? map.lookupAndDeleteBatch(batchOpts) : map.lookupBatch(batchOpts);
    } catch (error) {
      if (error instanceof BpfError && error.errno === ENOSPC && growth < MAX_GROWTH_STEPS) {
        size *= 2;
        growth++;
        reused = buffers();
        continue;
      }
      if (error instanceof BatchError && error.processed > 0 && error.keys && error.values) {
        yield { count: error.processed, keys: error.keys, values: error.values, cursor: null };
      }
      throw error;
    }
    if (batch.count > 0) yield batch;
    if (batch.cursor === null) return;
    cursor = batch.cursor;
  }
}

/**
 * Removes every element of `map` and yields what it removed, batch by batch
 * in buffers of their own: lookup-and-delete batches where the map type has
 * them (the hash family), else one element at a time: `pop` for queues and
 * stacks, and for keyed types the first key's lookup-and-delete (or lookup,
 * then delete, where the type has no lookup-and-delete). A failure yields
 * what was removed before it, then throws. The per-element path stops after
 * `maxEntries` elements, so that a writer racing it cannot keep it going;
 * elements added while a drain runs may stay.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { drainBatches } from "./walk.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 16 });
 * const keys = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
 * map.updateBatch(keys, keys);
 * const removed = [...drainBatches(map, {})].reduce((sum, batch) => sum + batch.count, 0);
 * assert.equal(removed, 3);
 * assert.equal(map.nextKey(), undefined);
 * ```
 */
export function* drainBatches(
  map: WalkableMap,
  opts: { batchSize?: number },
): Generator<BatchResult, void, undefined> {
  const batchSize = checkBatchSize(opts.batchSize ?? DEFAULT_BATCH_SIZE);
  const oneByOne = () => batchesOf(map, batchSize, removeOneByOne(map));
  if (map.keySize === 0 || withoutBatchDrain.has(map)) {
    yield* oneByOne();
    return;
  }
  const batches = lookupBatches(map, { batchSize, andDelete: true });
  yield* orElse(map, batches, withoutBatchDrain, oneByOne);
}

/**
 * Batches of up to `batchSize` elements, filled by the per-element walk: for
 * types without lookup batches. `nextKeyInto` and `lookupInto` write straight
 * into one key buffer and the batch's values, so the walk allocates nothing
 * per element. A key whose lookup fails goes to `onLookupError` (ENOENT for a
 * key deleted since `nextKey` gave it) after the batch gathered before it is
 * yielded; without the hook, a deleted key is left out and any other failure
 * throws, after the batch gathered so far is yielded. A key deleted under
 * the walk sends `nextKey` back to the first key, so the walk stops with an
 * error once it has passed `maxEntries` keys rather than loop.
 */
function* batchesByNextKey(
  map: WalkableMap,
  batchSize: number,
  opts: BatchWalkOptions,
): Generator<BatchResult, void, undefined> {
  const elemFlags = opts.elemFlags ?? 0;
  const { onLookupError } = opts;
  const filled = new FilledBatch(map, batchSize, opts.reuse ?? false);
  const key = new Uint8Array(map.keySize);
  try {
    let more = map.nextKeyInto(null, key);
    for (let steps = 1; more; steps++) {
      let found: boolean | number;
      try {
        found = map.lookupInto(key, filled.valueSlot(), elemFlags);
      } catch (error) {
        if (onLookupError === undefined || !(error instanceof BpfError)) throw error;
        found = error.errno;
      }
      if (found === true) {
        filled.keySlot().set(key);
        filled.count++;
        if (filled.full) yield filled.take();
      } else if (onLookupError !== undefined) {
        if (filled.count > 0) yield filled.take();
        onLookupError(key.slice(), found === false ? ENOENT : found);
      }
      more = map.nextKeyInto(key, key);
      if (more && steps >= map.maxEntries) {
        throw new Error(
          `bpfmap: walk of map id ${map.id} aborted after ${steps} keys: the map changed under it`,
        );
      }
    }
  } catch (error) {
    if (filled.count > 0) yield filled.take();
    throw error;
  }
  if (filled.count > 0) yield filled.take();
}

/**
 * A batch filled element by element, shaped as lookup batches are: keys back
 * to back, values `valueStride` apart, in buffers of its own (or, with
 * `reuse`, the same buffers batch after batch).
 */
class FilledBatch {
  count = 0;
  #keys: Uint8Array;
  #values: Uint8Array;
  readonly #map: WalkableMap;
  readonly #size: number;
  readonly #reuse: boolean;

  constructor(map: WalkableMap, size: number, reuse: boolean) {
    this.#map = map;
    this.#size = size;
    this.#reuse = reuse;
    this.#keys = offHeapBytes(size * map.keySize);
    this.#values = offHeapBytes(size * map.valueStride);
  }

  /** Whether the batch holds its `size` elements. */
  get full(): boolean {
    return this.count === this.#size;
  }

  /** The next element's key slot. */
  keySlot(): Uint8Array {
    const { keySize } = this.#map;
    return this.#keys.subarray(this.count * keySize, (this.count + 1) * keySize);
  }

  /** The next element's value slot. */
  valueSlot(): Uint8Array {
    const { valueStride } = this.#map;
    return this.#values.subarray(this.count * valueStride, (this.count + 1) * valueStride);
  }

  /** The elements so far, as a batch; the next ones start a new one. */
  take(): BatchResult {
    const { keySize, valueStride } = this.#map;
    const batch = {
      count: this.count,
      keys: this.#keys.subarray(0, this.count * keySize),
      values: this.#values.subarray(0, this.count * valueStride),
      cursor: null,
    };
    this.count = 0;
    if (!this.#reuse) {
      this.#keys = offHeapBytes(this.#size * keySize);
      this.#values = offHeapBytes(this.#size * valueStride);
    }
    return batch;
  }
}

/**
 * `elements` gathered into batches of up to `batchSize`. If `elements`
 * throws, the batch gathered so far is yielded first.
 */
function* batchesOf(
  map: WalkableMap,
  batchSize: number,
  elements: Iterable<[Uint8Array, Uint8Array]>,
): Generator<BatchResult, void, undefined> {
  const filled = new FilledBatch(map, batchSize, false);
  try {
    for (const [key, value] of elements) {
      filled.keySlot().set(key);
      filled.valueSlot().set(value);
      filled.count++;
      if (filled.full) yield filled.take();
    }
  } catch (error) {
    if (filled.count > 0) yield filled.take();
    throw error;
  }
  if (filled.count > 0) yield filled.take();
}

/**
 * Removes elements one call at a time (see {@linkcode drainBatches}),
 * yielding each: at most `maxEntries` calls' worth, raced ones included.
 */
function* removeOneByOne(map: WalkableMap): Generator<[Uint8Array, Uint8Array], void, undefined> {
  if (map.keySize > 0) {
    yield* keyByKey(map, (key) => removeKey(map, key));
    return;
  }
  const noKey = new Uint8Array(0);
  for (let step = 0; step < map.maxEntries; step++) {
    const value = map.pop();
    if (value === undefined) return;
    yield [noKey, value];
  }
}

/**
 * Removes `key` and returns its value: by lookup-and-delete, or by lookup
 * then delete where the map has no lookup-and-delete; `undefined` if
 * someone else removed it first.
 */
function removeKey(map: WalkableMap, key: Uint8Array): Uint8Array | undefined {
  if (!withoutLookupAndDelete.has(map)) {
    try {
      return map.lookupAndDelete(key);
    } catch (error) {
      if (!isUnsupported(error)) throw error;
      withoutLookupAndDelete.add(map);
    }
  }
  const value = map.lookup(key);
  // Deleted by someone else in between: theirs, not ours.
  return value !== undefined && map.delete(key) ? value : undefined;
}

/**
 * The per-element drain: `nextKey` from the first key, `remove` it, and again
 * from the first key (the last one is gone). Elements `remove` finds missing
 * (removed by someone else) are left out. It stops, with no error, after
 * `maxEntries` keys, so that a writer racing it cannot keep it going.
 */
function* keyByKey(
  map: WalkableMap,
  remove: (key: Uint8Array) => Uint8Array | undefined,
): Generator<[Uint8Array, Uint8Array], void, undefined> {
  let key = map.nextKey();
  for (let steps = 1; key !== undefined; steps++) {
    const value = remove(key);
    if (value !== undefined) yield [key, value];
    if (steps >= map.maxEntries) return;
    key = map.nextKey();
  }
}

function checkBatchSize(batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 0xffff_ffff) {
    throw new RangeError(`opts.batchSize must be a positive integer, got ${String(batchSize)}`);
  }
  return batchSize;
}
