/**
 * Codecs: how a JavaScript value is laid out in a key or value, with C's
 * sizes and natural alignment, so that a `struct` here has the same size and
 * offsets gcc gives the same C struct on x86_64 and aarch64.
 *
 * @module
 */

/** The typed arrays a fixed-width number codec can view a buffer as, without copying. */
export type NumberArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** How to read and write one `T` at an offset of a buffer. */
export interface Codec<T> {
  /** A name for messages, e.g. `"u32"`, `"struct { a: u32; b: u8 }"`. */
  readonly name: string;
  /** Bytes, as C's `sizeof`. */
  readonly size: number;
  /** Alignment, as C's `_Alignof`. */
  readonly align: number;
  read(view: DataView, offset: number): T;
  write(view: DataView, offset: number, value: T): void;
  /** For little-endian numbers: the typed array that views a run of them in place. */
  readonly array?: {
    new(buffer: ArrayBufferLike, byteOffset: number, length: number): NumberArray;
  } | undefined;
  /** What the codec is in C terms: what `btf/` describes to the kernel as BTF. */
  readonly shape?: CodecShape | undefined;
}

/** A member of a struct or union codec. */
export interface CodecMember {
  readonly name: string;
  readonly codec: Codec<unknown>;
  /** Byte offset, as `offsetof`. */
  readonly offset: number;
}

/**
 * A codec's C type: an integer (with BTF's encoding), a float, an array, a
 * struct or union, or a typedef naming another codec (`__be32`).
 */
export type CodecShape =
  | {
    readonly kind: "int";
    readonly name: string;
    readonly encoding: "unsigned" | "signed" | "char" | "bool";
  }
  | { readonly kind: "float"; readonly name: string }
  | { readonly kind: "array"; readonly of: Codec<unknown>; readonly length: number }
  | {
    readonly kind: "struct" | "union";
    readonly name: string;
    readonly members: readonly CodecMember[];
  }
  | { readonly kind: "typedef"; readonly name: string; readonly of: Codec<unknown> };

/** A codec's refusal, kept on the error so that each enclosing codec can add its field's name. */
const REFUSAL = Symbol("bpfmap.codecRefusal");
type Refusal = Error & { [REFUSAL]?: { path: string; reason: string } };

/** Throws a codec's refusal of a value: `reason`, with no field named yet. */
function refuse(kind: TypeErrorConstructor | RangeErrorConstructor, reason: string): never {
  const error: Refusal = new kind(reason);
  error[REFUSAL] = { path: "", reason };
  throw error;
}

/**
 * The error to throw for `error`, thrown while writing the field (or element)
 * `field`: a codec's refusal comes back as the same kind of error with the
 * field before its path (`packets: ...` becomes `value.packets: ...`,
 * `[2]` joins as `ports[2]`); anything else comes back as it is. Codecs made
 * of other codecs and typed maps name where a refused value sits with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { atField, encode, struct, u8 } from "./codec.ts";
 *
 * const flow = struct({ proto: u8 });
 * let error: unknown;
 * try {
 *   encode(flow, { proto: 300 });
 * } catch (e) {
 *   error = atField(e, "key");
 * }
 * assert.ok(error instanceof RangeError);
 * assert.equal(error.message, "key.proto: expected an integer from 0 to 255, got 300");
 * assert.equal(atField(new Error("other"), "key").message, "other"); // not a codec's
 * ```
 */
export function atField(error: unknown, field: string): Error {
  const refusal = (error as Refusal | undefined)?.[REFUSAL];
  if (refusal === undefined) return error as Error;
  const { path, reason } = refusal;
  const joined = path === "" ? field : path.startsWith("[") ? field + path : `${field}.${path}`;
  const kind = (error as Error).constructor as ErrorConstructor;
  const named: Refusal = new kind(`${joined}: ${reason}`);
  named[REFUSAL] = { path: joined, reason };
  return named;
}

/** A value as a message shows it: `5.5`, `"abc"`, `5n`, `undefined`, `an object`, `a Uint8Array`. */
function shown(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "bigint":
      return `${value}n`;
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return `an array of ${value.length}`;
      return value.constructor?.name && value.constructor !== Object
        ? `a ${value.constructor.name}`
        : "an object";
    case "function":
      return "a function";
    default:
      return String(value);
  }
}

/** The check of an integer codec from `min` to `max` (numbers up to 32 bits). */
function integer(min: number, max: number) {
  return (x: unknown): number => {
    if (typeof x === "number" && Number.isInteger(x) && x >= min && x <= max) return x;
    return refuse(
      typeof x === "number" ? RangeError : TypeError,
      `expected an integer from ${min} to ${max}, got ${shown(x)}`,
    );
  };
}

/**
 * The check and conversion of a 64-bit codec: a bigint, or a safe integer
 * (a number that is exactly the integer it shows), from `min` to `max`.
 */
function bigInteger(min: bigint, max: bigint) {
  return (x: unknown): bigint => {
    let big: bigint;
    if (typeof x === "bigint") big = x;
    else if (Number.isSafeInteger(x)) big = BigInt(x as number);
    else {
      return refuse(
        typeof x === "number" ? RangeError : TypeError,
        `expected a bigint or a safe integer, got ${shown(x)}`,
      );
    }
    if (big < min || big > max) {
      refuse(RangeError, `expected an integer from ${min} to ${max}, got ${shown(x)}`);
    }
    return big;
  };
}

const finite = (x: unknown): number => {
  if (typeof x === "number" && Number.isFinite(x)) return x;
  return refuse(
    typeof x === "number" ? RangeError : TypeError,
    `expected a finite number, got ${shown(x)}`,
  );
};

const boolean = (x: unknown): boolean => {
  if (typeof x === "boolean") return x;
  return refuse(TypeError, `expected true or false, got ${shown(x)}`);
};

/**
 * A fixed-width number codec. `check` refuses what does not fit (before a
 * byte is written: DataView's setters wrap and coerce) and gives the value
 * to write.
 */
function number<T>(
  name: string,
  size: number,
  check: (value: unknown) => T,
  read: (view: DataView, offset: number) => T,
  write: (view: DataView, offset: number, value: T) => void,
  array?: Codec<T>["array"],
  shape?: CodecShape,
): Codec<T> {
  const checked = (view: DataView, offset: number, value: T) => write(view, offset, check(value));
  return Object.freeze({ name, size, align: size, read, write: checked, array, shape });
}

const int = (
  name: string,
  encoding: "unsigned" | "signed" | "char" | "bool" = "unsigned",
): CodecShape => ({
  kind: "int",
  name,
  encoding,
});

/**
 * Unsigned 8-bit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u8 } from "./codec.ts";
 * assert.deepEqual(encode(u8, 255), new Uint8Array([255]));
 * ```
 */
export const u8: Codec<number> = number(
  "u8",
  1,
  integer(0, 0xff),
  (v, o) => v.getUint8(o),
  (v, o, x) => v.setUint8(o, x),
  Uint8Array,
  int("unsigned char"),
);
/**
 * Unsigned 16-bit, little-endian.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u16 } from "./codec.ts";
 * assert.deepEqual(encode(u16, 0x1234), new Uint8Array([0x34, 0x12]));
 * ```
 */
export const u16: Codec<number> = number(
  "u16",
  2,
  integer(0, 0xffff),
  (v, o) => v.getUint16(o, true),
  (v, o, x) => v.setUint16(o, x, true),
  Uint16Array,
  int("unsigned short"),
);
/**
 * Unsigned 32-bit, little-endian.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, u32 } from "./codec.ts";
 * assert.deepEqual(encode(u32, 0x01020304), new Uint8Array([4, 3, 2, 1]));
 * assert.equal(decode(u32, new Uint8Array([0xff, 0xff, 0xff, 0xff])), 0xffff_ffff);
 * ```
 */
export const u32: Codec<number> = number(
  "u32",
  4,
  integer(0, 0xffff_ffff),
  (v, o) => v.getUint32(o, true),
  (v, o, x) => v.setUint32(o, x, true),
  Uint32Array,
  int("unsigned int"),
);
/**
 * Unsigned 64-bit, little-endian, as a bigint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u64 } from "./codec.ts";
 * assert.deepEqual(encode(u64, 1n << 40n), new Uint8Array([0, 0, 0, 0, 0, 1, 0, 0]));
 * ```
 */
export const u64: Codec<bigint> = number(
  "u64",
  8,
  bigInteger(0n, 0xffff_ffff_ffff_ffffn),
  (v, o) => v.getBigUint64(o, true),
  (v, o, x) => v.setBigUint64(o, x, true),
  BigUint64Array,
  int("unsigned long long"),
);
/**
 * Signed 8-bit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, i8 } from "./codec.ts";
 * assert.equal(decode(i8, new Uint8Array([0xff])), -1);
 * ```
 */
export const i8: Codec<number> = number(
  "i8",
  1,
  integer(-0x80, 0x7f),
  (v, o) => v.getInt8(o),
  (v, o, x) => v.setInt8(o, x),
  Int8Array,
  int("signed char", "signed"),
);
/**
 * Signed 16-bit, little-endian.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, i16 } from "./codec.ts";
 * assert.deepEqual(encode(i16, -2), new Uint8Array([0xfe, 0xff]));
 * ```
 */
export const i16: Codec<number> = number(
  "i16",
  2,
  integer(-0x8000, 0x7fff),
  (v, o) => v.getInt16(o, true),
  (v, o, x) => v.setInt16(o, x, true),
  Int16Array,
  int("short", "signed"),
);
/**
 * Signed 32-bit, little-endian.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, i32 } from "./codec.ts";
 * assert.equal(decode(i32, new Uint8Array([0xfe, 0xff, 0xff, 0xff])), -2);
 * ```
 */
export const i32: Codec<number> = number(
  "i32",
  4,
  integer(-0x8000_0000, 0x7fff_ffff),
  (v, o) => v.getInt32(o, true),
  (v, o, x) => v.setInt32(o, x, true),
  Int32Array,
  int("int", "signed"),
);
/**
 * Signed 64-bit, little-endian, as a bigint.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, i64 } from "./codec.ts";
 * assert.equal(decode(i64, new Uint8Array(8).fill(0xff)), -1n);
 * ```
 */
export const i64: Codec<bigint> = number(
  "i64",
  8,
  bigInteger(-(1n << 63n), (1n << 63n) - 1n),
  (v, o) => v.getBigInt64(o, true),
  (v, o, x) => v.setBigInt64(o, x, true),
  BigInt64Array,
  int("long long", "signed"),
);
/**
 * IEEE 754 single.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, f32 } from "./codec.ts";
 * assert.deepEqual(encode(f32, 1), new Uint8Array([0, 0, 0x80, 0x3f]));
 * assert.equal(decode(f32, encode(f32, 0.1)), Math.fround(0.1)); // single precision
 * ```
 */
export const f32: Codec<number> = number(
  "f32",
  4,
  finite,
  (v, o) => v.getFloat32(o, true),
  (v, o, x) => v.setFloat32(o, x, true),
  Float32Array,
  { kind: "float", name: "float" },
);
/**
 * IEEE 754 double.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, f64 } from "./codec.ts";
 * assert.deepEqual(encode(f64, 1), new Uint8Array([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]));
 * ```
 */
export const f64: Codec<number> = number(
  "f64",
  8,
  finite,
  (v, o) => v.getFloat64(o, true),
  (v, o, x) => v.setFloat64(o, x, true),
  Float64Array,
  { kind: "float", name: "double" },
);
/**
 * C `bool`: one byte, 0 or 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bool, decode, encode } from "./codec.ts";
 * assert.deepEqual(encode(bool, true), new Uint8Array([1]));
 * assert.equal(decode(bool, new Uint8Array([2])), true); // any non-zero byte
 * ```
 */
export const bool: Codec<boolean> = number(
  "bool",
  1,
  boolean,
  (v, o) => v.getUint8(o) !== 0,
  (v, o, x) => v.setUint8(o, x ? 1 : 0),
  undefined,
  int("_Bool", "bool"),
);
/**
 * Unsigned 16-bit in network order (big-endian), as ports are.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u16be } from "./codec.ts";
 * assert.deepEqual(encode(u16be, 443), new Uint8Array([0x01, 0xbb]));
 * ```
 */
export const u16be: Codec<number> = number(
  "u16be",
  2,
  integer(0, 0xffff),
  (v, o) => v.getUint16(o),
  (v, o, x) => v.setUint16(o, x),
  undefined,
  { kind: "typedef", name: "__be16", of: u16 },
);
/**
 * Unsigned 32-bit in network order (big-endian).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u32be } from "./codec.ts";
 * assert.deepEqual(encode(u32be, 0x0a000001), new Uint8Array([10, 0, 0, 1]));
 * ```
 */
export const u32be: Codec<number> = number(
  "u32be",
  4,
  integer(0, 0xffff_ffff),
  (v, o) => v.getUint32(o),
  (v, o, x) => v.setUint32(o, x),
  undefined,
  { kind: "typedef", name: "__be32", of: u32 },
);
/**
 * Unsigned 64-bit in network order (big-endian).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u64be } from "./codec.ts";
 * assert.deepEqual(encode(u64be, 1n), new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1]));
 * ```
 */
export const u64be: Codec<bigint> = number(
  "u64be",
  8,
  bigInteger(0n, 0xffff_ffff_ffff_ffffn),
  (v, o) => v.getBigUint64(o),
  (v, o, x) => v.setBigUint64(o, x),
  undefined,
  { kind: "typedef", name: "__be64", of: u64 },
);

/**
 * `size` raw bytes (C `unsigned char[size]`), copied out on read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytes, decode, encode } from "./codec.ts";
 *
 * const mac = bytes(6);
 * const raw = new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
 * assert.equal(mac.size, 6);
 * assert.deepEqual(decode(mac, encode(mac, raw)), raw);
 * assert.throws(() => encode(mac, new Uint8Array(4)), {
 *   name: "RangeError",
 *   message: "u8[6]: expected 6 bytes, got 4",
 * });
 * ```
 */
export function bytes(size: number): Codec<Uint8Array> {
  return Object.freeze({
    name: `u8[${size}]`,
    size,
    align: 1,
    shape: { kind: "array" as const, of: u8, length: size },
    read: (view: DataView, offset: number) =>
      new Uint8Array(view.buffer, view.byteOffset + offset, size).slice(),
    write: (view: DataView, offset: number, value: Uint8Array) => {
      if (!(value instanceof Uint8Array)) {
        refuse(TypeError, `expected a Uint8Array of ${size} bytes, got ${shown(value)}`);
      }
      // The built-in getter: a byteLength the value overrides is not the one .set() copies.
      const length = byteLengthOf.call(value);
      if (length !== size) refuse(RangeError, `expected ${size} bytes, got ${length}`);
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value);
    },
  });
}

/**
 * `length` values of one codec back to back (C `T[length]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { array, encode, u16 } from "./codec.ts";
 *
 * const ports = array(u16, 3);
 * assert.equal(ports.size, 6);
 * assert.deepEqual(encode(ports, [1, 2, 3]), new Uint8Array([1, 0, 2, 0, 3, 0]));
 * ```
 */
export function array<T>(of: Codec<T>, length: number): Codec<T[]> {
  return Object.freeze({
    ...arrayAt(of, length, of.size),
    shape: { kind: "array" as const, of, length },
  });
}

/**
 * `length` values of one codec, `stride` bytes apart: an array as a C type
 * described elsewhere (BTF) lays it out, where an element's codec may cover
 * fewer bytes than its type (a bitfield's). Takes an array or a typed array
 * of exactly `length` values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrayAt, decode, encode, u8 } from "./codec.ts";
 *
 * const spaced = arrayAt(u8, 2, 4);
 * assert.equal(spaced.size, 8);
 * assert.deepEqual(encode(spaced, [1, 2]), new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]));
 * assert.deepEqual(decode(spaced, new Uint8Array([1, 9, 9, 9, 2, 9, 9, 9])), [1, 2]);
 * assert.throws(() => encode(spaced, [1, 2, 3]), {
 *   name: "RangeError",
 *   message: "u8[2]: expected 2 values, got 3",
 * });
 * ```
 */
export function arrayAt<T>(of: Codec<T>, length: number, stride: number): Codec<T[]> {
  return Object.freeze({
    name: `${of.name}[${length}]`,
    size: stride * length,
    align: of.align,
    read: (view: DataView, offset: number) =>
      Array.from({ length }, (_, i) => of.read(view, offset + i * stride)),
    write: (view: DataView, offset: number, value: T[]) => {
      const items: unknown = value;
      if (!Array.isArray(items) && !(ArrayBuffer.isView(items) && !(items instanceof DataView))) {
        refuse(TypeError, `expected an array of ${length} values, got ${shown(value)}`);
      }
      if (value.length !== length) {
        refuse(RangeError, `expected ${length} values, got ${value.length}`);
      }
      for (let i = 0; i < length; i++) {
        try {
          // i < length, which is value.length (checked above).
          of.write(view, offset + i * stride, value[i] as T);
        } catch (error) {
          throw atField(error, `[${i}]`);
        }
      }
    },
  });
}

/**
 * A C bitfield: `bits` bits starting `bit` bits into `bytes` little-endian
 * bytes (as BTF places a member), a number up to 32 bits and a bigint beyond.
 * A write takes a safe integer or a bigint that fits the field, and keeps the
 * neighbouring bits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bitfield, decode, encode } from "./codec.ts";
 *
 * const prio = bitfield({ bit: 4, bits: 4, signed: false, bytes: 1 }); // unsigned prio : 4
 * assert.deepEqual(encode(prio, 5), new Uint8Array([0x50]));
 * assert.equal(decode(prio, new Uint8Array([0x5f])), 5);
 * assert.throws(() => encode(prio, 16), {
 *   name: "RangeError",
 *   message: "u4:4: expected an integer from 0 to 15, got 16",
 * });
 * ```
 */
export function bitfield(
  field: { bit: number; bits: number; signed: boolean; bytes: number },
): Codec<number | bigint> {
  const { bit, bits, signed, bytes } = field;
  const mask = (1n << BigInt(bits)) - 1n;
  const check = signed
    ? bigInteger(-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n)
    : bigInteger(0n, mask);
  const load = (view: DataView, offset: number) => {
    let word = 0n;
    for (let i = bytes - 1; i >= 0; i--) word = (word << 8n) | BigInt(view.getUint8(offset + i));
    return word;
  };
  return Object.freeze({
    name: `${signed ? "i" : "u"}${bits}${bit || bits % 8 ? `:${bit}` : ""}`,
    size: bytes,
    align: 1,
    read: (view: DataView, offset: number) => {
      const raw = (load(view, offset) >> BigInt(bit)) & mask;
      const value = signed ? BigInt.asIntN(bits, raw) : raw;
      return bits <= 32 ? Number(value) : value;
    },
    write: (view: DataView, offset: number, value: number | bigint) => {
      const field = BigInt.asUintN(bits, check(value)) << BigInt(bit);
      let word = (load(view, offset) & ~(mask << BigInt(bit))) | field;
      for (let i = 0; i < bytes; i++) {
        view.setUint8(offset + i, Number(word & 0xffn));
        word >>= 8n;
      }
    },
  });
}

/** The JavaScript value a struct's fields make. */
export type StructValue<F extends Record<string, Codec<unknown>>> =
  & {
    [K in keyof F as F[K] extends Codec<undefined> ? never : K]: F[K] extends Codec<infer T> ? T
      : never;
  }
  & { [K in keyof F as F[K] extends Codec<undefined> ? K : never]?: undefined };

/** A struct codec, with the offset of every field. */
export interface StructCodec<F extends Record<string, Codec<unknown>>>
  extends Codec<StructValue<F>>
{
  /** Each field's offset, as C's `offsetof`. */
  readonly offsets: { readonly [K in keyof F]: number };
}

/**
 * A C struct: fields in order, each at the next offset its alignment allows,
 * the whole padded to its largest alignment (or packed, with `packed: true`,
 * as `__attribute__((packed))`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, struct, u32, u64, u8 } from "./codec.ts";
 *
 * const flow = struct({ proto: u8, port: u32, bytes: u64 });
 * assert.equal(flow.size, 16);
 * assert.deepEqual(flow.offsets, { proto: 0, port: 4, bytes: 8 }); // as gcc's offsetof
 * const value = { proto: 6, port: 443, bytes: 1500n };
 * assert.deepEqual(decode(flow, encode(flow, value)), value);
 * assert.equal(struct({ proto: u8, port: u32 }, { packed: true }).size, 5);
 * ```
 */
export function struct<F extends Record<string, Codec<unknown>>>(
  fields: F,
  opts: { packed?: boolean; name?: string } = {},
): StructCodec<F> {
  const offsets = {} as { [K in keyof F]: number };
  let size = 0;
  let align = 1;
  const entries = Object.entries(fields) as [keyof F & string, Codec<unknown>][];
  for (const [name, field] of entries) {
    const fieldAlign = opts.packed ? 1 : field.align;
    size = Math.ceil(size / fieldAlign) * fieldAlign;
    offsets[name] = size;
    size += field.size;
    align = Math.max(align, fieldAlign);
  }
  size = Math.ceil(size / align) * align;
  const members = entries.map(([name, codec]) => ({ name, codec, offset: offsets[name] }));
  const codec = structAt(opts.name ?? "", members, size, align);
  return Object.freeze({ ...codec, offsets: Object.freeze(offsets) }) as unknown as StructCodec<F>;
}

/**
 * A struct (or union) with its members at given offsets: what a C type
 * described elsewhere (BTF) lays out. Bytes no member covers are written as
 * zero; a union writes the members its value has.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, structAt, u16, u32 } from "./codec.ts";
 *
 * const members = [{ name: "a", codec: u16, offset: 0 }, { name: "b", codec: u32, offset: 4 }];
 * const pair = structAt("pair", members, 8, 4);
 * assert.deepEqual(decode(pair, new Uint8Array([1, 0, 9, 9, 2, 0, 0, 0])), { a: 1, b: 2 });
 * assert.deepEqual(encode(pair, { a: 1, b: 2 }), new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]));
 * const either = structAt("either", members, 4, 4, { union: true });
 * assert.deepEqual(encode(either, { a: 0x0102 }), new Uint8Array([2, 1, 0, 0]));
 * ```
 */
export function structAt(
  name: string,
  members: readonly CodecMember[],
  size: number,
  align: number,
  opts: { union?: boolean } = {},
): Codec<Record<string, unknown>> {
  const union = opts.union === true;
  const label = members.map((m) => `${m.name}: ${m.codec.name}`).join("; ");
  const names = new Set(members.map((m) => m.name));
  return Object.freeze({
    name: `${union ? "union" : "struct"}${name ? ` ${name}` : ""} { ${label} }`,
    size,
    align,
    shape: { kind: union ? ("union" as const) : ("struct" as const), name, members },
    read: (view: DataView, offset: number) => {
      const value: Record<string, unknown> = {};
      for (const member of members) {
        const field = member.codec.read(view, offset + member.offset);
        if (field !== undefined) value[member.name] = field;
      }
      return value;
    },
    write: (view: DataView, offset: number, value: Record<string, unknown>) => {
      checkFields(value, names, label);
      new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0); // padding is zero
      for (const member of members) {
        if (!(member.name in value)) {
          // A union writes the members its value has; a lock is the kernel's to fill.
          if (union || member.codec === spinLock) continue;
          refuse(TypeError, `missing field ${member.name} (${member.codec.name})`);
        }
        try {
          member.codec.write(view, offset + member.offset, value[member.name]);
        } catch (error) {
          throw atField(error, member.name);
        }
      }
    },
  });
}

/** Refuses what is not an object of `names`' fields: no field the codec does not have. */
function checkFields(value: unknown, names: ReadonlySet<string>, label: string): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    refuse(TypeError, `expected an object { ${label} }, got ${shown(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!names.has(key)) {
      refuse(TypeError, `unknown field ${key}: the fields are ${[...names].join(", ")}`);
    }
  }
}

const byteLengthOf = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  "byteLength",
)!.get!;

/**
 * The key of a map that has none (queue, stack, bloom filter): zero bytes,
 * read as `undefined`. `map.typed({ value })` on such a map uses it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, noKey, u32 } from "../mod.ts";
 *
 * using queue = BpfMap.create({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 8 });
 * const jobs = queue.typed({ key: noKey, value: u32 });
 * jobs.push(7);
 * assert.equal(jobs.pop(), 7);
 * ```
 */
export const noKey: Codec<undefined> = Object.freeze({
  name: "none",
  size: 0,
  align: 1,
  read: () => undefined,
  write: () => {},
});

/**
 * `struct bpf_spin_lock`: the lock the kernel takes for `BPF_F_LOCK` lookups
 * and updates. It reads as `undefined` (the kernel hands it back zeroed) and
 * the kernel never copies it from user space, so a value may leave it out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, spinLock, struct, u64 } from "./codec.ts";
 *
 * const counter = struct({ lock: spinLock, packets: u64, bytes: u64 });
 * assert.equal(counter.size, 24); // the lock, 4 bytes of padding, two u64
 * assert.deepEqual(decode(counter, encode(counter, { packets: 5n, bytes: 9n })), {
 *   packets: 5n,
 *   bytes: 9n,
 * });
 * ```
 */
export const spinLock: Codec<undefined> = Object.freeze({
  name: "bpf_spin_lock",
  size: 4,
  align: 4,
  shape: {
    kind: "struct" as const,
    name: "bpf_spin_lock",
    members: [{ name: "val", codec: u32, offset: 0 }],
  },
  read: () => undefined,
  write: (view: DataView, offset: number) => view.setUint32(offset, 0, true),
});

/**
 * A `char[size]` holding NUL-terminated text (a task's `comm`, an interface
 * name), read up to the first NUL, written NUL-padded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chars, decode, encode } from "./codec.ts";
 *
 * const comm = chars(8);
 * assert.deepEqual(encode(comm, "nginx"), new Uint8Array([110, 103, 105, 110, 120, 0, 0, 0]));
 * assert.equal(decode(comm, new Uint8Array([115, 115, 104, 0, 120, 120, 0, 0])), "ssh");
 * assert.throws(() => encode(comm, "systemd-journal"), {
 *   name: "RangeError",
 *   message: 'char[8]: "systemd-journal" takes 15 bytes',
 * });
 * ```
 */
export function chars(size: number): Codec<string> {
  return Object.freeze({
    name: `char[${size}]`,
    size,
    align: 1,
    shape: { kind: "array" as const, of: char, length: size },
    read: (view: DataView, offset: number) => {
      const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, size);
      const end = bytes.indexOf(0);
      return textDecoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
    },
    write: (view: DataView, offset: number, value: string) => {
      if (typeof value !== "string") refuse(TypeError, `expected a string, got ${shown(value)}`);
      const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, size);
      const text = textEncoder.encode(value);
      if (text.byteLength > size) {
        refuse(RangeError, `${JSON.stringify(value)} takes ${text.byteLength} bytes`);
      }
      bytes.fill(0);
      bytes.set(text);
    },
  });
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/**
 * C `char`, as a number (signed on x86_64).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { char, decode } from "./codec.ts";
 * assert.equal(decode(char, new Uint8Array([0x80])), -128);
 * ```
 */
export const char: Codec<number> = number(
  "char",
  1,
  integer(-0x80, 0x7f),
  (v, o) => v.getInt8(o),
  (v, o, x) => v.setInt8(o, x),
  Int8Array,
  int("char", "char"),
);

/**
 * An IPv4 address (4 bytes, network order) as `"10.0.0.1"`: read and written
 * as `inet_ntop` and `inet_pton` do, so exactly four decimal parts, each
 * 0-255, none with a leading zero (`"010.0.0.1"` is refused, as `inet_pton`
 * refuses it: other parsers read it as octal).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, ipv4 } from "./codec.ts";
 *
 * assert.deepEqual(encode(ipv4, "10.1.2.3"), new Uint8Array([10, 1, 2, 3]));
 * assert.equal(decode(ipv4, new Uint8Array([192, 168, 0, 1])), "192.168.0.1");
 * assert.throws(() => encode(ipv4, "10.1.2.256"), {
 *   name: "TypeError",
 *   message: 'ipv4: "10.1.2.256" is not an IPv4 address',
 * });
 * assert.throws(() => encode(ipv4, "010.0.0.1"), { name: "TypeError" });
 * ```
 */
export const ipv4: Codec<string> = Object.freeze({
  name: "ipv4",
  size: 4,
  align: 1,
  shape: { kind: "array" as const, of: u8, length: 4 },
  read: (view: DataView, offset: number) =>
    `${view.getUint8(offset)}.${view.getUint8(offset + 1)}.${view.getUint8(offset + 2)}.${
      view.getUint8(offset + 3)
    }`,
  write: (view: DataView, offset: number, value: string) => {
    if (typeof value !== "string") refuse(TypeError, `expected a string, got ${shown(value)}`);
    if (!IPV4.test(value)) refuse(TypeError, `${JSON.stringify(value)} is not an IPv4 address`);
    value.split(".").forEach((part, i) => view.setUint8(offset + i, Number(part)));
  },
});

/** glibc's `inet_pton4`: four parts 0-255, no leading zeros, nothing else. */
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * An IPv6 address (16 bytes, network order) as text. Every form glibc's
 * `inet_pton` takes is written (`::` once, one to four hex digits a group, a
 * dotted IPv4 address as the last 32 bits: `::ffff:192.168.0.1`,
 * `64:ff9b::10.0.0.1`), and read as glibc's `inet_ntop` prints it: the
 * longest run of two or more zero groups (the first, on a tie) as `::`, and
 * the last 32 bits dotted for IPv4-mapped (`::ffff:a.b.c.d`) and
 * IPv4-compatible (`::a.b.c.d`) addresses. A test runs both against glibc.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, ipv6 } from "./codec.ts";
 * const loopback = encode(ipv6, "::1");
 * assert.deepEqual(loopback, new Uint8Array([...new Uint8Array(15), 1]));
 * assert.equal(decode(ipv6, encode(ipv6, "2001:db8:0:0:0:0:0:1")), "2001:db8::1");
 * assert.equal(decode(ipv6, encode(ipv6, "0:0:0:0:0:ffff:c0a8:1")), "::ffff:192.168.0.1");
 * assert.equal(decode(ipv6, encode(ipv6, "64:ff9b::10.0.0.1")), "64:ff9b::a00:1");
 * assert.throws(() => encode(ipv6, "1::2::3"), {
 *   name: "TypeError",
 *   message: 'ipv6: "1::2::3" is not an IPv6 address',
 * });
 * ```
 */
export const ipv6: Codec<string> = Object.freeze({
  name: "ipv6",
  size: 16,
  align: 1,
  shape: { kind: "array" as const, of: u8, length: 16 },
  read: (view: DataView, offset: number) => formatIpv6(view, offset),
  write: (view: DataView, offset: number, value: string) => {
    if (typeof value !== "string") refuse(TypeError, `expected a string, got ${shown(value)}`);
    const address = parseIpv6(value);
    if (address === undefined) {
      refuse(TypeError, `${JSON.stringify(value)} is not an IPv6 address`);
    }
    new Uint8Array(view.buffer, view.byteOffset + offset, 16).set(address);
  },
});

/** The value of a hex digit's char code, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** glibc's `inet_pton6`, step for step: its answers are the ones to give. */
function parseIpv6(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  let at = 0;
  let gap = -1; // where "::" stands, in bytes
  let i = 0;
  if (text.length === 0) return undefined;
  if (text[0] === ":") {
    if (text[1] !== ":") return undefined;
    i = 1;
  }
  let token = i;
  let digits = 0;
  let word = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i++);
    const digit = hexDigit(c);
    if (digit >= 0) {
      if (digits === 4) return undefined;
      word = (word << 4) | digit;
      digits++;
      continue;
    }
    if (c === 0x3a) { // ':'
      token = i;
      if (digits === 0) {
        if (gap >= 0) return undefined;
        gap = at;
        continue;
      }
      if (i === text.length || at + 2 > 16) return undefined;
      out[at++] = word >> 8;
      out[at++] = word & 0xff;
      digits = 0;
      word = 0;
      continue;
    }
    // A dotted IPv4 address ends the text, where its 4 bytes still fit.
    if (c === 0x2e && at + 4 <= 16 && IPV4.test(text.slice(token))) {
      text.slice(token).split(".").forEach((part) => out[at++] = Number(part));
      digits = 0;
      break;
    }
    return undefined;
  }
  if (digits > 0) {
    if (at + 2 > 16) return undefined;
    out[at++] = word >> 8;
    out[at++] = word & 0xff;
  }
  if (gap >= 0) {
    if (at === 16) return undefined; // "::" would stand for no group at all
    const tail = out.slice(gap, at);
    out.fill(0, gap);
    out.set(tail, 16 - tail.length);
    at = 16;
  }
  return at === 16 ? out : undefined;
}

/** glibc's `inet_ntop6`, step for step. */
function formatIpv6(view: DataView, offset: number): string {
  const words = Array.from({ length: 8 }, (_, i) => view.getUint16(offset + 2 * i));
  let best = { base: -1, length: 0 };
  let run = { base: -1, length: 0 };
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && words[i] === 0) {
      run = run.base === -1 ? { base: i, length: 1 } : { base: run.base, length: run.length + 1 };
      continue;
    }
    if (run.base !== -1 && (best.base === -1 || run.length > best.length)) best = run;
    run = { base: -1, length: 0 };
  }
  if (best.length < 2) best = { base: -1, length: 0 };
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.length) {
      if (i === best.base) text += ":";
      continue;
    }
    if (i !== 0) text += ":";
    // IPv4-compatible (::a.b.c.d) or IPv4-mapped (::ffff:a.b.c.d): dotted, as glibc prints them.
    if (
      i === 6 && best.base === 0
      && (best.length === 6 || (best.length === 5 && words[5] === 0xffff))
    ) {
      return text + ipv4.read(view, offset + 12);
    }
    text += words[i]!.toString(16); // i < 8, words' length
  }
  return best.base !== -1 && best.base + best.length === 8 ? `${text}:` : text;
}

/**
 * An LPM trie key: `struct { __u32 prefixlen; data }` with the data right
 * after the prefix length, as `struct bpf_lpm_trie_key_u8`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, ipv4, lpmKey } from "./codec.ts";
 *
 * assert.deepEqual(
 *   encode(lpmKey(ipv4), { prefixlen: 24, data: "10.1.2.0" }),
 *   new Uint8Array([24, 0, 0, 0, 10, 1, 2, 0]),
 * );
 * ```
 */
export function lpmKey<T>(data: Codec<T>): Codec<{ prefixlen: number; data: T }> {
  return Object.freeze({
    name: `lpm_key<${data.name}>`,
    size: 4 + data.size,
    align: 4,
    shape: {
      kind: "struct" as const,
      name: "",
      members: [{ name: "prefixlen", codec: u32, offset: 0 }, {
        name: "data",
        codec: data,
        offset: 4,
      }],
    },
    read: (view: DataView, offset: number) => ({
      prefixlen: view.getUint32(offset, true),
      data: data.read(view, offset + 4),
    }),
    write: (view: DataView, offset: number, value: { prefixlen: number; data: T }) => {
      checkFields(value, LPM_FIELDS, `prefixlen: u32; data: ${data.name}`);
      for (const field of LPM_FIELDS) {
        if (!(field in value)) refuse(TypeError, `missing field ${field}`);
      }
      try {
        u32.write(view, offset, value.prefixlen);
      } catch (error) {
        throw atField(error, "prefixlen");
      }
      try {
        data.write(view, offset + 4, value.data);
      } catch (error) {
        throw atField(error, "data");
      }
    },
  });
}

const LPM_FIELDS: ReadonlySet<"prefixlen" | "data"> = new Set(["prefixlen", "data"]);

/**
 * One value as a new byte buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encode, u32 } from "./codec.ts";
 * const bytes = encode(u32, 7);
 * assert.deepEqual(bytes, new Uint8Array([7, 0, 0, 0]));
 * assert.equal(bytes.buffer.byteLength, 4); // a buffer of its own
 * ```
 */
export function encode<T>(codec: Codec<T>, value: T): Uint8Array {
  const out = new Uint8Array(codec.size);
  try {
    codec.write(new DataView(out.buffer), 0, value);
  } catch (error) {
    throw atCodec(error, codec);
  }
  return out;
}

/** A refusal with no field named yet names the codec instead: `u32: expected ...`. */
function atCodec(error: unknown, codec: Codec<unknown>): Error {
  return (error as Refusal | undefined)?.[REFUSAL]?.path === ""
    ? atField(error, codec.name)
    : error as Error;
}

/**
 * One value read from `bytes` (at `offset`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, u16 } from "./codec.ts";
 * const bytes = new Uint8Array([9, 0x34, 0x12]);
 * assert.equal(decode(u16, bytes, 1), 0x1234);
 * assert.equal(decode(u16, bytes.subarray(1)), 0x1234);
 * ```
 */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array, offset = 0): T {
  return codec.read(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
}
