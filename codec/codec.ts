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
  };
  /** What the codec is in C terms: what `btf/` describes to the kernel as BTF. */
  readonly shape?: CodecShape;
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

function number<T>(
  name: string,
  size: number,
  read: (view: DataView, offset: number) => T,
  write: (view: DataView, offset: number, value: T) => void,
  array?: Codec<T>["array"],
  shape?: CodecShape,
): Codec<T> {
  return Object.freeze({ name, size, align: size, read, write, array, shape });
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
 *   message: "u8[6]: got 4 bytes",
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
      if (value.byteLength !== size) {
        throw new RangeError(`u8[${size}]: got ${value.byteLength} bytes`);
      }
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
    name: `${of.name}[${length}]`,
    size: of.size * length,
    align: of.align,
    shape: { kind: "array" as const, of, length },
    read: (view: DataView, offset: number) =>
      Array.from({ length }, (_, i) => of.read(view, offset + i * of.size)),
    write: (view: DataView, offset: number, value: T[]) => {
      if (value.length !== length) {
        throw new RangeError(`${of.name}[${length}]: got ${value.length} values`);
      }
      value.forEach((item, i) => of.write(view, offset + i * of.size, item));
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
  for (const name of Object.keys(fields) as (keyof F)[]) {
    const field = fields[name];
    const fieldAlign = opts.packed ? 1 : field.align;
    size = Math.ceil(size / fieldAlign) * fieldAlign;
    offsets[name] = size;
    size += field.size;
    align = Math.max(align, fieldAlign);
  }
  size = Math.ceil(size / align) * align;
  const members = (Object.keys(fields) as (keyof F & string)[]).map((name) => ({
    name,
    codec: fields[name],
    offset: offsets[name],
  }));
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
      if (value === null || typeof value !== "object") {
        throw new TypeError(`${name || "struct"}: expected an object, got ${typeof value}`);
      }
      new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0); // padding is zero
      for (const member of members) {
        if (union && !(member.name in value)) continue;
        member.codec.write(view, offset + member.offset, value[member.name]);
      }
    },
  });
}

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
      const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, size);
      const text = textEncoder.encode(value);
      if (text.byteLength > size) {
        throw new RangeError(
          `char[${size}]: ${JSON.stringify(value)} takes ${text.byteLength} bytes`,
        );
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
  (v, o) => v.getInt8(o),
  (v, o, x) => v.setInt8(o, x),
  Int8Array,
  int("char", "char"),
);

/**
 * An IPv4 address (4 bytes, network order) as `"10.0.0.1"`.
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
 * ```
 */
export const ipv4: Codec<string> = Object.freeze({
  name: "ipv4",
  size: 4,
  align: 1,
  shape: { kind: "array" as const, of: u8, length: 4 },
  read: (view: DataView, offset: number) =>
    [0, 1, 2, 3].map((i) => view.getUint8(offset + i)).join("."),
  write: (view: DataView, offset: number, value: string) => {
    const parts = value.split(".");
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
      throw new TypeError(`ipv4: ${JSON.stringify(value)} is not an IPv4 address`);
    }
    parts.forEach((p, i) => view.setUint8(offset + i, Number(p)));
  },
});

/**
 * An IPv6 address (16 bytes, network order) as text; written in RFC 5952's short form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode, ipv6 } from "./codec.ts";
 * const loopback = encode(ipv6, "::1");
 * assert.deepEqual(loopback, new Uint8Array([...new Uint8Array(15), 1]));
 * assert.equal(decode(ipv6, encode(ipv6, "2001:db8:0:0:0:0:0:1")), "2001:db8::1");
 * ```
 */
export const ipv6: Codec<string> = Object.freeze({
  name: "ipv6",
  size: 16,
  align: 1,
  shape: { kind: "array" as const, of: u8, length: 16 },
  read: (view: DataView, offset: number) => {
    const groups = Array.from({ length: 8 }, (_, i) => view.getUint16(offset + 2 * i));
    let best = { at: -1, length: 1 };
    for (let i = 0; i < 8;) {
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > best.length) best = { at: i, length: j - i };
      i = j === i ? i + 1 : j;
    }
    const text = groups.map((g) => g.toString(16));
    if (best.at < 0) return text.join(":");
    return `${text.slice(0, best.at).join(":")}::${text.slice(best.at + best.length).join(":")}`;
  },
  write: (view: DataView, offset: number, value: string) => {
    const halves = value.split("::");
    const parse = (part: string) => (part === "" ? [] : part.split(":"));
    const head = parse(halves[0]);
    const tail = halves.length === 2 ? parse(halves[1]) : [];
    const zeros = 8 - head.length - tail.length;
    const groups = [...head, ...(halves.length === 2 ? Array(zeros).fill("0") : []), ...tail];
    if (
      halves.length > 2 || groups.length !== 8 || (halves.length === 2 && zeros < 1)
      || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))
    ) {
      throw new TypeError(`ipv6: ${JSON.stringify(value)} is not an IPv6 address`);
    }
    groups.forEach((g, i) => view.setUint16(offset + 2 * i, parseInt(g, 16)));
  },
});

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
      view.setUint32(offset, value.prefixlen, true);
      data.write(view, offset + 4, value.data);
    },
  });
}

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
  codec.write(new DataView(out.buffer), 0, value);
  return out;
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
