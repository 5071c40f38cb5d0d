/**
 * Argument checks that run before any syscall, so that bad input gets a
 * `TypeError` or `RangeError` naming the argument instead of an errno.
 *
 * @module
 */

import {
  bufferOf,
  byteLengthOf,
  isDetached,
  isFixedLength,
  isUint8Array,
  uint8Length,
} from "./memory.ts";

/**
 * Asserts `value` is a real `Uint8Array` (asked of the engine: a Proxy or a
 * look-alike is refused) and returns its byte length, read once through the
 * built-in getter: an own `byteLength` property or a subclass getter cannot
 * lie about it. A detached array has no bytes; its buffer is only looked at
 * then, for the message (reading `.buffer` moves a small array off V8's heap:
 * not for the hot path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBytes } from "./validate.ts";
 *
 * const keys = new Uint8Array(8);
 * Object.defineProperty(keys, "byteLength", { value: 1 << 20 });
 * assert.equal(checkBytes(keys, "keys"), 8); // the real length
 * assert.throws(() => checkBytes([1, 2], "keys"), {
 *   name: "TypeError",
 *   message: "keys must be a Uint8Array, got Array",
 * });
 * assert.throws(() => checkBytes(new Proxy(new Uint8Array(8), {}), "keys"), {
 *   name: "TypeError",
 *   message: "keys must be a Uint8Array, got a look-alike "
 *     + "(a Proxy, or another object given Uint8Array's prototype)",
 * });
 * ```
 */
export function checkBytes(value: unknown, argument: string): number {
  if (!isUint8Array(value)) {
    throw new TypeError(`${argument} must be a Uint8Array, got ${describeNonBytes(value)}`);
  }
  const length = byteLengthOf(value);
  if (length === 0) checkAttached(value, argument);
  return length;
}

/**
 * Asserts `value` holds exactly `length` bytes of a Uint8Array, as the
 * engine knows them (see `uint8Length`): for arguments bpfmap copies byte
 * by byte, into its own memory before the call or out of it after.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkExactBytes } from "./validate.ts";
 *
 * assert.throws(() => checkExactBytes(new Uint8Array(3), 4, "key"), {
 *   name: "RangeError",
 *   message: "key must be 4 bytes, got 3",
 * });
 * const buffer = new ArrayBuffer(4);
 * const key = new Uint8Array(buffer);
 * buffer.transfer(); // detaches it: key now has no bytes
 * assert.throws(() => checkExactBytes(key, 4, "key"), {
 *   name: "TypeError",
 *   message: "key is a view of a detached ArrayBuffer",
 * });
 * ```
 */
export function checkExactBytes(value: unknown, length: number, argument: string): void {
  const actual = uint8Length(value);
  if (actual === length) return;
  if (actual < 0) {
    throw new TypeError(`${argument} must be a Uint8Array, got ${describeNonBytes(value)}`);
  }
  checkAttached(value as Uint8Array, argument);
  throw new RangeError(`${argument} must be ${length} bytes, got ${actual}`);
}

/**
 * Like {@linkcode checkBytes}, for a buffer the kernel reads or writes in
 * place (batch keys and values): its `ArrayBuffer` must also have a fixed
 * length, so that the length read here still bounds the memory at the call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKernelBytes } from "./validate.ts";
 *
 * assert.equal(checkKernelBytes(new Uint8Array(16), "values"), 16);
 * const resizable = new Uint8Array(new ArrayBuffer(16, { maxByteLength: 64 }));
 * assert.throws(() => checkKernelBytes(resizable, "values"), {
 *   name: "TypeError",
 *   message: "values is a view of a resizable ArrayBuffer: "
 *     + "the kernel needs memory of a fixed length (copy it into a new Uint8Array)",
 * });
 * ```
 */
export function checkKernelBytes(value: unknown, argument: string): number {
  const length = checkBytes(value, argument);
  const buffer = bufferOf(value as Uint8Array);
  if (!isFixedLength(buffer)) {
    const kind = buffer instanceof ArrayBuffer
      ? "resizable ArrayBuffer"
      : "growable SharedArrayBuffer";
    throw new TypeError(
      `${argument} is a view of a ${kind}: `
        + "the kernel needs memory of a fixed length (copy it into a new Uint8Array)",
    );
  }
  return length;
}

function checkAttached(bytes: Uint8Array, argument: string): void {
  if (isDetached(bufferOf(bytes))) {
    throw new TypeError(`${argument} is a view of a detached ArrayBuffer`);
  }
}

/** What a value that is not a real Uint8Array is, for the message; runs no code of the caller's. */
function describeNonBytes(value: unknown): string {
  try {
    if (value !== null && typeof value === "object" && value instanceof Uint8Array) {
      return "a look-alike (a Proxy, or another object given Uint8Array's prototype)";
    }
  } catch {
    return "a Proxy"; // its getPrototypeOf trap threw
  }
  return describe(value);
}

/**
 * Asserts `value` is an integer in `[min, max]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkInteger } from "./validate.ts";
 *
 * assert.equal(checkInteger(4096, "count", 1), 4096);
 * assert.throws(() => checkInteger(0, "count", 1), {
 *   name: "RangeError",
 *   message: "count must be between 1 and 4294967295, got 0",
 * });
 * assert.throws(() => checkInteger(1.5, "count"), {
 *   name: "TypeError",
 *   message: "count must be an integer, got number 1.5",
 * });
 * ```
 */
export function checkInteger(value: unknown, argument: string, min = 0, max = 0xffff_ffff): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${argument} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${argument} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/**
 * A short description of a value for error messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describe } from "./validate.ts";
 *
 * assert.deepEqual(
 *   [null, new ArrayBuffer(1), "4", 4n, undefined].map(describe),
 *   ["null", "ArrayBuffer", '"4"', "bigint 4", "undefined undefined"],
 * );
 * ```
 */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    try {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === "string" ? name : "object";
    } catch {
      return "object"; // a getter or Proxy trap that throws: the message must still be ours
    }
  }
  if (typeof value === "string") return JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}
