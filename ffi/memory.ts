/**
 * Memory the kernel reads and writes: buffers that own an off-heap
 * `ArrayBuffer`, and the address of a buffer's first byte. Below the attrs
 * and the backends, which both use it.
 *
 * @module
 */

/** What gives buffers their addresses: a backend (each has its own address space for stand-ins). */
export interface AddressSpace {
  /**
   * The address of a buffer's first byte. The caller makes sure the buffer is
   * off the engine's moving heap (see {@linkcode addressOf}).
   */
  baseAddress(buffer: ArrayBufferLike): number;
}

/** Base addresses by buffer, per backend: a stand-in's addresses must never reach a live one. */
const baseAddresses = new WeakMap<AddressSpace, WeakMap<ArrayBufferLike, number>>();

/**
 * The address of `bytes[0]`, safe to hand to the kernel while `bytes` stays
 * referenced.
 *
 * Reading `bytes.buffer` first is what makes it safe: V8 keeps typed arrays of
 * 64 bytes or less on its moving heap, and JavaScriptCore keeps small ones in
 * a "fast" form; asking for the buffer moves their bytes into a fixed
 * off-heap backing store for good, whose address never changes afterwards.
 * Addresses are cached per backend and `ArrayBuffer`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressOf } from "./memory.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * const bytes = new Uint8Array(16);
 * const backend = liveKernel().backend;
 * assert.equal(addressOf(backend, bytes.subarray(8)), addressOf(backend, bytes) + 8);
 * ```
 */
export function addressOf(backend: AddressSpace, bytes: Uint8Array): number {
  const buffer = bytes.buffer;
  let cache = baseAddresses.get(backend);
  if (cache === undefined) {
    cache = new WeakMap();
    baseAddresses.set(backend, cache);
  }
  let base = cache.get(buffer);
  if (base === undefined) {
    base = backend.baseAddress(buffer);
    cache.set(buffer, base);
  }
  return base + bytes.byteOffset;
}

/**
 * A zero-filled buffer that owns an off-heap `ArrayBuffer`: what every buffer
 * bpfmap itself hands the kernel is made with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offHeapBytes } from "./memory.ts";
 *
 * const attr = offHeapBytes(56);
 * assert.deepEqual(attr, new Uint8Array(56)); // zero-filled
 * assert.equal(attr.buffer.byteLength, 56); // its own buffer, shared with nothing
 * ```
 */
export function offHeapBytes(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

const encoder = new TextEncoder();

/**
 * A NUL-terminated UTF-8 copy of `text` in an off-heap buffer, for `const char *` arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cString } from "./memory.ts";
 * assert.deepEqual(cString("/sys/fs/bpf/é"), new TextEncoder().encode("/sys/fs/bpf/é\0"));
 * ```
 */
export function cString(text: string): Uint8Array {
  const encoded = encoder.encode(text);
  const bytes = offHeapBytes(encoded.byteLength + 1);
  bytes.set(encoded);
  return bytes;
}
