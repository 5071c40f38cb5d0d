/**
 * Walking every element of a map: by lookup batches where the kernel has
 * them for the map type, by `nextKey` + `lookup` where it has not.
 *
 * @module
 */

import type { BpfMap } from "./bpf_map.ts";
import { BpfError } from "./errors.ts";
import { EINVAL, ENOSPC, ENOTSUPP } from "./ffi/errno.ts";

/** Options of `BpfMap.entries()` and `BpfMap.keys()`. */
export interface WalkOptions {
  /** Elements per lookup batch, to start with; doubled when a hash bucket does not fit. Default 4096. */
  batchSize?: number;
  /**
   * `"auto"` (default): batches, falling back to `nextKey` + `lookup` when
   * the first batch call answers EINVAL (kernel before 5.6) or ENOTSUPP (map
   * type without batch lookup). `"batch"`: batches only. `"nextKey"`: the
   * per-element walk only.
   */
  via?: "auto" | "batch" | "nextKey";
}

/** The default number of elements per lookup batch of a walk. */
export const DEFAULT_BATCH_SIZE = 4096;

/** How many times a walk doubles its batch on ENOSPC before it gives up. */
const MAX_GROWTH_STEPS = 24;

/** Maps whose type or kernel answered a batch lookup with "not supported". */
const withoutBatchLookup = new WeakSet<BpfMap>();

/**
 * Yields every `[key, value]` of `map`. Keys and values are views into a
 * buffer of their own batch, so they stay valid after the walk moves on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "./mod.ts";
 * import { walkEntries } from "./map_walk.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1000 });
 * assert.equal([...walkEntries(map, { batchSize: 512 })].length, 1000);
 * ```
 */
export function* walkEntries(
  map: BpfMap,
  opts: WalkOptions,
): Generator<[Uint8Array, Uint8Array], void, undefined> {
  const via = opts.via ?? "auto";
  if (via !== "auto" && via !== "batch" && via !== "nextKey") {
    throw new TypeError(`opts.via must be "auto", "batch" or "nextKey", got ${String(via)}`);
  }
  let batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 0xffff_ffff) {
    throw new RangeError(`opts.batchSize must be a positive integer, got ${String(batchSize)}`);
  }
  if (via === "nextKey" || (via === "auto" && withoutBatchLookup.has(map))) {
    yield* walkByNextKey(map);
    return;
  }

  let cursor: Uint8Array | null = null;
  let first = true;
  let growth = 0;
  for (;;) {
    let batch;
    try {
      batch = map.lookupBatch({ cursor, count: batchSize });
    } catch (error) {
      if (!(error instanceof BpfError)) throw error;
      if (error.errno === ENOSPC && growth < MAX_GROWTH_STEPS) {
        batchSize *= 2;
        growth++;
        continue;
      }
      if (first && via === "auto" && (error.errno === EINVAL || error.errno === ENOTSUPP)) {
        withoutBatchLookup.add(map);
        yield* walkByNextKey(map);
        return;
      }
      throw error;
    }
    first = false;
    const { keySize, valueStride } = map;
    for (let i = 0; i < batch.count; i++) {
      yield [
        batch.keys.subarray(i * keySize, (i + 1) * keySize),
        batch.values.subarray(i * valueStride, (i + 1) * valueStride),
      ];
    }
    if (batch.cursor === null) return;
    cursor = batch.cursor;
  }
}

/**
 * The per-element walk. A key deleted under it sends `nextKey` back to the
 * first key, so the walk stops with an error after `maxEntries` steps rather
 * than loop; a key deleted between `nextKey` and `lookup` is skipped.
 */
function* walkByNextKey(map: BpfMap): Generator<[Uint8Array, Uint8Array], void, undefined> {
  let key = map.nextKey();
  for (let steps = 0; key !== undefined; steps++) {
    if (steps >= map.maxEntries) {
      throw new Error(
        `bpfmap: walk of map id ${map.id} aborted after ${steps} keys: the map changed under it`,
      );
    }
    const value = map.lookup(key);
    if (value !== undefined) yield [key, value];
    key = map.nextKey(key);
  }
}
