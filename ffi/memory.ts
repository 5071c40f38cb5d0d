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

// The built-in getters of typed arrays and buffers, taken once at load: a
// caller's array may override `byteLength` (own property, subclass getter) or
// be a Proxy, and what decides where the kernel reads and writes must be what
// the engine itself knows about the memory.
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
type Getter<T> = (this: unknown) => T;
function builtinGetter<T>(target: object, key: PropertyKey): Getter<T> {
  return Object.getOwnPropertyDescriptor(target, key)!.get as Getter<T>;
}
const tagGetter = builtinGetter<string | undefined>(TypedArrayPrototype, Symbol.toStringTag);
const byteLengthGetter = builtinGetter<number>(TypedArrayPrototype, "byteLength");
const lengthGetter = builtinGetter<number>(TypedArrayPrototype, "length");
const isView = ArrayBuffer.isView;
const byteOffsetGetter = builtinGetter<number>(TypedArrayPrototype, "byteOffset");
const bufferGetter = builtinGetter<ArrayBufferLike>(TypedArrayPrototype, "buffer");
const resizableGetter = builtinGetter<boolean>(ArrayBuffer.prototype, "resizable");
const growableGetter = typeof SharedArrayBuffer === "function"
  ? builtinGetter<boolean>(SharedArrayBuffer.prototype, "growable")
  : undefined;
const detachedGetter = builtinGetter<boolean>(ArrayBuffer.prototype, "detached");
const typedArraySet = (TypedArrayPrototype as { set: Uint8Array["set"] }).set;

/**
 * Whether `value` is a real `Uint8Array`, asked of the engine (the built-in
 * `Symbol.toStringTag` getter): a Proxy around one, another typed array given
 * Uint8Array's prototype, or a look-alike object all answer `false`. No code
 * of the caller's runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isUint8Array } from "./memory.ts";
 *
 * class Sub extends Uint8Array {}
 * assert.equal(isUint8Array(new Sub(4)), true); // a subclass is still one
 * assert.equal(isUint8Array(new Proxy(new Uint8Array(4), {})), false);
 * const dressed = Object.setPrototypeOf(new Uint16Array(2), Uint8Array.prototype);
 * assert.equal(isUint8Array(dressed), false);
 * ```
 */
export function isUint8Array(value: unknown): value is Uint8Array {
  return tagGetter.call(value) === "Uint8Array";
}

/**
 * The byte length of `value` if its bytes are those of a Uint8Array, else
 * -1: a real typed array (not a Proxy, not a look-alike object: asked of the
 * engine) of one-byte elements, with `Uint8Array.prototype` in its chain.
 * That is a Uint8Array or a subclass of it, or an Int8Array or
 * Uint8ClampedArray given Uint8Array's prototype, whose bytes read and
 * write the same; a DataView or wider typed array so dressed answers -1.
 * For arguments bpfmap copies byte by byte (keys, values, outputs of the
 * element calls): in JavaScriptCore this costs 11 ns where
 * {@linkcode isUint8Array} and {@linkcode byteLengthOf} cost 25 ns, twice
 * per element call (V8: 13 ns and 11 ns). No code of the caller's runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { uint8Length } from "./memory.ts";
 *
 * const liar = new Uint8Array(2);
 * Object.defineProperty(liar, "byteLength", { value: 64 });
 * assert.equal(uint8Length(liar), 2);
 * assert.equal(uint8Length(new Proxy(new Uint8Array(2), {})), -1);
 * const dress = (view: object) => Object.setPrototypeOf(view, Uint8Array.prototype);
 * assert.equal(uint8Length(dress(new Uint16Array(2))), -1);
 * assert.equal(uint8Length(dress(new DataView(new ArrayBuffer(2)))), -1);
 * assert.equal(uint8Length(dress(new Int8Array([-1, 2]))), 2); // the same bytes
 * assert.equal(uint8Length([1, 2]), -1);
 * ```
 */
export function uint8Length(value: unknown): number {
  // isView first: a Proxy is no view, so no trap of its runs in `instanceof`.
  if (!isView(value) || !(value instanceof Uint8Array)) return -1;
  try {
    const length = byteLengthGetter.call(value);
    return lengthGetter.call(value) === length ? length : -1;
  } catch {
    return -1; // a DataView with Uint8Array's prototype: not a typed array
  }
}

/**
 * The byte length the engine knows for `bytes` (a real typed array): what
 * an own `byteLength` property or a subclass getter says does not count.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { byteLengthOf } from "./memory.ts";
 *
 * const bytes = new Uint8Array(4);
 * Object.defineProperty(bytes, "byteLength", { value: 4096 });
 * assert.equal(bytes.byteLength, 4096);
 * assert.equal(byteLengthOf(bytes), 4);
 * ```
 */
export function byteLengthOf(bytes: Uint8Array): number {
  return byteLengthGetter.call(bytes);
}

/**
 * The byte offset the engine knows for `bytes` (see {@linkcode byteLengthOf}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { byteOffsetOf } from "./memory.ts";
 *
 * class Shifted extends Uint8Array {
 *   override get byteOffset(): number {
 *     return 4096;
 *   }
 * }
 * assert.equal(byteOffsetOf(new Shifted(new ArrayBuffer(8), 2)), 2);
 * ```
 */
export function byteOffsetOf(bytes: Uint8Array): number {
  return byteOffsetGetter.call(bytes);
}

/**
 * The buffer the engine knows for `bytes`. Reading it moves a small on-heap
 * array into a fixed backing store (see {@linkcode addressOf}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bufferOf } from "./memory.ts";
 *
 * const backing = new ArrayBuffer(8);
 * const bytes = new Uint8Array(backing);
 * Object.defineProperty(bytes, "buffer", { value: new ArrayBuffer(1 << 20) });
 * assert.equal(bufferOf(bytes), backing);
 * ```
 */
export function bufferOf(bytes: Uint8Array): ArrayBufferLike {
  return bufferGetter.call(bytes);
}

/**
 * Whether `buffer` can never change length: not a resizable `ArrayBuffer`,
 * not a growable `SharedArrayBuffer`. A buffer the kernel writes into must
 * be: a length read once would otherwise not bind the memory behind it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isFixedLength } from "./memory.ts";
 *
 * assert.equal(isFixedLength(new ArrayBuffer(8)), true);
 * assert.equal(isFixedLength(new ArrayBuffer(8, { maxByteLength: 16 })), false);
 * assert.equal(isFixedLength(new SharedArrayBuffer(8, { maxByteLength: 16 })), false);
 * ```
 */
export function isFixedLength(buffer: ArrayBufferLike): boolean {
  try {
    return !resizableGetter.call(buffer);
  } catch {
    // Not an ArrayBuffer: a SharedArrayBuffer.
    return growableGetter === undefined || !growableGetter.call(buffer);
  }
}

/**
 * Whether `buffer` was detached (transferred); a SharedArrayBuffer never is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isDetached } from "./memory.ts";
 *
 * const buffer = new ArrayBuffer(8);
 * assert.equal(isDetached(buffer), false);
 * buffer.transfer();
 * assert.equal(isDetached(buffer), true);
 * assert.equal(isDetached(new SharedArrayBuffer(8)), false);
 * ```
 */
export function isDetached(buffer: ArrayBufferLike): boolean {
  try {
    return detachedGetter.call(buffer);
  } catch {
    return false;
  }
}

/**
 * A plain `Uint8Array` over the first `length` bytes of `bytes`' memory, made
 * from the engine's own buffer and offset: no subclass constructor (which
 * `subarray` would call) and no getter of the caller's runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spanOf } from "./memory.ts";
 *
 * class Sub extends Uint8Array {}
 * const bytes = new Sub([1, 2, 3, 4]).subarray(1);
 * const span = spanOf(bytes, 2);
 * assert.equal(span.constructor, Uint8Array);
 * assert.deepEqual(span, new Uint8Array([2, 3]));
 * assert.equal(span.buffer, bytes.buffer); // the same memory
 * ```
 */
export function spanOf(bytes: Uint8Array, length: number): Uint8Array {
  return new Uint8Array(bufferGetter.call(bytes), byteOffsetGetter.call(bytes), length);
}

/**
 * Copies the first `length` bytes of `source` into `target`, both checked
 * to hold them (`length` read through {@linkcode byteLengthOf}), with no
 * method of either object: indexed access on a typed array never reaches a
 * getter, and longer copies use the built-in `set`. So a caller's subclass
 * runs nothing between a kernel call and the copy of what it returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyInto } from "./memory.ts";
 *
 * class Sub extends Uint8Array {
 *   override set(): void {
 *     throw new Error("never called");
 *   }
 * }
 * const out = new Sub(2);
 * copyInto(out, new Uint8Array([7, 8]), 2);
 * assert.deepEqual([...out], [7, 8]);
 * const big = new Sub(64);
 * copyInto(big, new Uint8Array(64).fill(1), 64);
 * assert.equal(big[63], 1);
 * ```
 */
export function copyInto(target: Uint8Array, source: Uint8Array, length: number): void {
  // A key or value of a few words is copied faster by hand than by `set` (18 ns in Deno 2.9,
  // 22 ns in Bun 1.4, for 8 bytes).
  if (length > SMALL_COPY) {
    const whole = length === byteLengthGetter.call(source);
    typedArraySet.call(target, whole ? source : spanOf(source, length));
    return;
  }
  for (let i = 0; i < length; i++) target[i] = source[i]!;
}

/** Up to this many bytes, {@linkcode copyInto} copies byte by byte. */
const SMALL_COPY = 16;

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
 * Addresses are cached per backend and `ArrayBuffer`. The buffer and offset are
 * read through the built-in getters: a caller's subclass cannot point the
 * kernel elsewhere.
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
  const buffer = bufferOf(bytes);
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
  return base + byteOffsetOf(bytes);
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
