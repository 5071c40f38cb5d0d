/**
 * Argument checks that run before any syscall, so that bad input gets a
 * `TypeError` or `RangeError` naming the argument instead of an errno.
 *
 * @module
 */

/**
 * Asserts `value` is a `Uint8Array`. A detached one has no bytes, which the
 * length checks below catch; its `.buffer` is only read then, for the message
 * (reading `.buffer` moves a small array off V8's heap: not for the hot path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBytes } from "./validate.ts";
 *
 * const keys = new Uint8Array(8);
 * assert.equal(checkBytes(keys, "keys"), keys);
 * assert.throws(() => checkBytes([1, 2], "keys"), {
 *   name: "TypeError",
 *   message: "keys must be a Uint8Array, got Array",
 * });
 * ```
 */
export function checkBytes(value: unknown, argument: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${argument} must be a Uint8Array, got ${describe(value)}`);
  }
  if (value.byteLength === 0) checkAttached(value, argument);
  return value;
}

/**
 * Asserts `value` is a `Uint8Array` of exactly `length` bytes.
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
export function checkExactBytes(value: unknown, length: number, argument: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${argument} must be a Uint8Array, got ${describe(value)}`);
  }
  if (value.byteLength !== length) {
    checkAttached(value, argument);
    throw new RangeError(`${argument} must be ${length} bytes, got ${value.byteLength}`);
  }
  return value;
}

function checkAttached(bytes: Uint8Array, argument: string): void {
  if ((bytes.buffer as ArrayBufferLike & { detached?: boolean }).detached === true) {
    throw new TypeError(`${argument} is a view of a detached ArrayBuffer`);
  }
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
 * Asserts `value` is a flag word made only of the bits in `allowed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFlags } from "./validate.ts";
 *
 * assert.equal(checkFlags(4, 0b111, "flags"), 4);
 * assert.throws(() => checkFlags(8, 0b111, "flags"), {
 *   name: "RangeError",
 *   message: "flags: 0x8 has bits outside 0x7",
 * });
 * ```
 */
export function checkFlags(value: unknown, allowed: number, argument: string): number {
  const flags = checkInteger(value, argument, 0, Number.MAX_SAFE_INTEGER);
  if (flags > 0xffff_ffff || (flags & ~allowed) !== 0) {
    throw new RangeError(
      `${argument}: 0x${flags.toString(16)} has bits outside 0x${allowed.toString(16)}`,
    );
  }
  return flags;
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
  if (typeof value === "object") return value.constructor?.name ?? "object";
  if (typeof value === "string") return JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}
