/**
 * Shared mappings of kernel memory (`mmap(MAP_SHARED)` of a map or perf
 * event fd), as every backend hands them out: bytes to read and write, and
 * the two calls that tell a recorder or player what was read and written.
 *
 * @module
 */

import { byteLengthOf } from "./memory.ts";

/** How a mapping may be accessed: `PROT_READ`, or `PROT_READ | PROT_WRITE`. */
export type MapProtection = "read" | "readWrite";

/** `PROT_READ`. */
export const PROT_READ = 1;
/** `PROT_WRITE`. */
export const PROT_WRITE = 2;
/** `MAP_SHARED`: writes reach the kernel's object, and its writes are seen. */
export const MAP_SHARED = 1;

/**
 * The `prot` argument of `mmap` for a {@linkcode MapProtection}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { protFlags } from "./mmap.ts";
 * assert.equal(protFlags("read"), 1);
 * assert.equal(protFlags("readWrite"), 3);
 * ```
 */
export function protFlags(prot: MapProtection): number {
  return prot === "read" ? PROT_READ : PROT_READ | PROT_WRITE;
}

/** A mapping made by a backend's `mmap`. */
export interface MappedRegion {
  /** The mapping's length in bytes, as asked. */
  readonly length: number;
  /**
   * The mapping's bytes. Live: a view of the kernel's memory (Atomics and
   * DataView work on its buffer); replay: a buffer the player fills. After
   * {@linkcode MappedRegion.unmap} its buffer is detached: length 0, so a
   * stale read cannot touch unmapped memory. A `"read"` mapping must never be
   * written: JavaScript cannot make the buffer read-only, and the kernel's
   * page protection ends the process (SIGSEGV) at the first write.
   */
  readonly bytes: Uint8Array;
  /**
   * Call before reading bytes `[offset, offset + length)`: the recorder notes
   * what they held then; the player writes the recorded bytes into `bytes`.
   * Live: does nothing.
   */
  observe(offset: number, length: number): void;
  /**
   * Call after writing bytes `[offset, offset + length)` (a consumer
   * position): the recorder notes them; the player checks them against the
   * transcript. Live: does nothing.
   */
  wrote(offset: number, length: number): void;
  /** `munmap`: 0, or `-errno`. A second call does nothing and returns 0. */
  unmap(): number;
}

/**
 * The live {@linkcode MappedRegion} over `buffer` (the runtime's view of the
 * mapping): `unmap` detaches the buffer first, then calls `munmap`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveRegion } from "./mmap.ts";
 *
 * let unmapped = 0;
 * const region = liveRegion(new ArrayBuffer(8), () => (unmapped++, 0));
 * region.bytes[0] = 1;
 * region.observe(0, 8); // live: checks the span, nothing else
 * assert.throws(() => region.observe(4, 8), { name: "RangeError" }); // past the end
 * assert.throws(() => region.wrote(0.5, 1), { name: "RangeError" }); // not a byte's offset
 * assert.equal(region.unmap(), 0);
 * assert.throws(() => region.observe(0, 8), { name: "TypeError" }); // unmapped
 * assert.equal(region.unmap(), 0); // idempotent
 * assert.equal(unmapped, 1);
 * assert.equal(region.bytes.byteLength, 0); // detached: no read reaches the old mapping
 * ```
 */
export function liveRegion(buffer: ArrayBuffer, munmap: () => number): MappedRegion {
  const length = buffer.byteLength;
  const bytes = new Uint8Array(buffer);
  let unmapped = false;
  // A reader calls these once or twice a record: against the captured length and flag they cost
  // a few compares, where asking the buffer its length (checkSpan) costs more than the read.
  const check = (what: string, offset: number, size: number) => {
    const inside = Number.isInteger(offset) && Number.isInteger(size) && offset >= 0 && size > 0
      && offset + size <= length;
    if (unmapped || !inside) {
      checkSpan(what, bytes, offset, size); // the TypeError or RangeError, worded once
    }
  };
  return {
    length,
    bytes,
    observe(offset: number, size: number) {
      check("observe", offset, size);
    },
    wrote(offset: number, size: number) {
      check("wrote", offset, size);
    },
    unmap(): number {
      if (unmapped) return 0;
      unmapped = true;
      // Detach before the memory goes: every view of it then reads as empty, never a fault.
      buffer.transfer(0);
      return munmap();
    },
  };
}

/**
 * Checks that `[offset, offset + size)` is a non-empty span of a mapping's
 * `bytes`, for {@linkcode MappedRegion.observe} and `wrote`: the same
 * refusal live, recording and replaying, and after `unmap` (whose bytes are
 * detached) a `TypeError`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSpan } from "./mmap.ts";
 * const bytes = new Uint8Array(4096);
 * checkSpan("observe", bytes, 4088, 8);
 * assert.throws(() => checkSpan("observe", bytes, 4090, 8), {
 *   name: "RangeError",
 *   message: "observe: bytes [4090, 4098) are not inside the mapping's 4096",
 * });
 * bytes.buffer.transfer(0);
 * assert.throws(() => checkSpan("wrote", bytes, 0, 8), {
 *   name: "TypeError",
 *   message: "wrote: the mapping was unmapped",
 * });
 * ```
 */
export function checkSpan(what: string, bytes: Uint8Array, offset: number, size: number): void {
  const length = byteLengthOf(bytes);
  if (length === 0) throw new TypeError(`${what}: the mapping was unmapped`);
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size <= 0
    || offset + size > length
  ) {
    throw new RangeError(
      `${what}: bytes [${offset}, ${offset + size}) are not inside the mapping's ${length}`,
    );
  }
}

/**
 * Checks an `mmap` request before any syscall: a positive length and a
 * page-aligned offset, both safe integers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkMmap } from "./mmap.ts";
 * checkMmap(8192, 4096, 4096);
 * assert.throws(() => checkMmap(0, 0, 4096), { name: "RangeError", message: /length/ });
 * assert.throws(() => checkMmap(4096, 100, 4096), { name: "RangeError", message: /offset/ });
 * ```
 */
export function checkMmap(length: number, offset: number, pageSize: number): void {
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new RangeError(`mmap: length must be a positive integer, got ${length}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % pageSize !== 0) {
    throw new RangeError(
      `mmap: offset must be a non-negative multiple of the page size (${pageSize}), got ${offset}`,
    );
  }
}
