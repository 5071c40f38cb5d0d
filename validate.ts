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
 */
export function checkBytes(value: unknown, argument: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${argument} must be a Uint8Array, got ${describe(value)}`);
  }
  if (value.byteLength === 0) checkAttached(value, argument);
  return value;
}

/** Asserts `value` is a `Uint8Array` of exactly `length` bytes. */
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

/** Asserts `value` is an integer in `[min, max]`. */
export function checkInteger(value: unknown, argument: string, min = 0, max = 0xffff_ffff): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${argument} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${argument} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** Asserts `value` is a flag word made only of the bits in `allowed`. */
export function checkFlags(value: unknown, allowed: number, argument: string): number {
  const flags = checkInteger(value, argument, 0, Number.MAX_SAFE_INTEGER);
  if (flags > 0xffff_ffff || (flags & ~allowed) !== 0) {
    throw new RangeError(
      `${argument}: 0x${flags.toString(16)} has bits outside 0x${allowed.toString(16)}`,
    );
  }
  return flags;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  if (typeof value === "string") return JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}
