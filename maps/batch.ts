/**
 * What the four batch commands take and give back, as `BpfMap` and the walks
 * over it both speak it: a file of its own so that the walks need not import
 * the map.
 *
 * @module
 */

/** Options of `BpfMap.lookupBatch` and `BpfMap.lookupAndDeleteBatch`. */
export interface BatchLookupOptions {
  /** Where to resume: the `cursor` of the previous result; `null` or absent to start. */
  cursor?: Uint8Array | null | undefined;
  /** How many elements at most (a hash map returns whole buckets only, maybe fewer). */
  count: number;
  /** A buffer for at least `count * keySize` bytes of keys; allocated if absent. */
  keys?: Uint8Array | undefined;
  /** A buffer for at least `count * valueStride` bytes of values; allocated if absent. */
  values?: Uint8Array | undefined;
  /** `elem_flags`: 0 or `BPF_F_LOCK` (other bits go to the kernel, which judges them). */
  elemFlags?: number | undefined;
}

/** What a lookup batch returned. */
export interface BatchResult {
  /** Elements returned. */
  count: number;
  /** `count * keySize` bytes: a view of the keys buffer. */
  keys: Uint8Array;
  /** `count * valueStride` bytes: a view of the values buffer. */
  values: Uint8Array;
  /** Pass it back to continue; `null` once the map is exhausted (the kernel said ENOENT). */
  cursor: Uint8Array | null;
}

/** Options of `BpfMap.updateBatch` and `BpfMap.deleteBatch`. */
export interface BatchWriteOptions {
  /** Elements to write; by default every key in `keys`. */
  count?: number | undefined;
  /**
   * `elem_flags`: 0 or `BPF_F_LOCK`, or `BPF_NOEXIST`/`BPF_EXIST` where the
   * kernel takes them; a u32, passed through for the kernel to judge.
   */
  elemFlags?: number | undefined;
  /** The attr's `flags` word. */
  flags?: number | undefined;
}
