/**
 * Copies of what the kernel wrote, for single-element results (`lookup`,
 * `nextKey`, `pop`, ...), carved out of a shared slab.
 *
 * Why: in Deno 2.9 (V8 15) every `new Uint8Array(n)` costs about 380 ns,
 * more than a third of a `bpf()` lookup, while a view of an existing buffer
 * costs about 30 ns (Bun: 20 ns and 60 ns). Node's `Buffer` pool makes the
 * same trade. Each result is a view of its own bytes, never shared with
 * another result, but its `.buffer` is the slab: read it through the view,
 * or with `byteOffset` (`new DataView(v.buffer, v.byteOffset, v.byteLength)`).
 *
 * @module
 */

/**
 * Bytes per slab; a live result keeps at most its slab alive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyOut, SLAB_SIZE } from "./result_slab.ts";
 * assert.equal(copyOut(new Uint8Array(8)).buffer.byteLength, SLAB_SIZE);
 * ```
 */
export const SLAB_SIZE = 8192;

/** Results larger than this get a buffer of their own. */
const LARGEST_SLAB_RESULT = SLAB_SIZE / 8;

let slab = new Uint8Array(new ArrayBuffer(SLAB_SIZE));
let used = 0;

/**
 * A new array holding a copy of `bytes`, never overlapping any other.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyOut } from "./result_slab.ts";
 * const source = new Uint8Array([1, 2]);
 * const a = copyOut(source);
 * const b = copyOut(new Uint8Array([3]));
 * source[0] = 9; // a is a copy
 * assert.deepEqual([a, b], [new Uint8Array([1, 2]), new Uint8Array([3])]);
 * assert.equal(a.buffer, b.buffer); // one slab...
 * assert.ok(a.byteOffset + a.byteLength <= b.byteOffset); // ...never overlapping
 * ```
 */
export function copyOut(bytes: Uint8Array): Uint8Array {
  const size = bytes.byteLength;
  if (size > LARGEST_SLAB_RESULT) {
    const own = new Uint8Array(size);
    own.set(bytes);
    return own;
  }
  if (used + size > SLAB_SIZE) {
    slab = new Uint8Array(new ArrayBuffer(SLAB_SIZE));
    used = 0;
  }
  const copy = slab.subarray(used, used + size);
  copy.set(bytes);
  // Keep every result 8-byte aligned, so that typed-array views of it work.
  used += (size + 7) & ~7;
  return copy;
}
