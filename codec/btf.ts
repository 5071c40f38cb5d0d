/**
 * Codecs and BTF, both ways: describing a map's key and value codecs as BTF
 * types (to create a map with a `struct bpf_spin_lock` value, or one that
 * `bpftool` prints with field names), and building codecs from the BTF of a
 * map another program created.
 *
 * @module
 */

import {
  BtfFormatError,
  type BtfMember,
  type BtfType,
  type MapTypes,
  resolveType,
  sizeOfType,
  typeAt,
} from "../btf/types.ts";
import {
  arrayAt,
  bitfield,
  bool,
  char,
  chars,
  type Codec,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  spinLock,
  structAt,
  u16,
  u16be,
  u32,
  u32be,
  u64,
  u64be,
  u8,
} from "./codec.ts";

/**
 * Describes codecs as BTF types: each codec (and each it is made of) once.
 *
 * @throws {TypeError} for a codec with no C shape (a hand-made one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spinLock, struct, u32, u64 } from "./codec.ts";
 * import { btfOfCodecs } from "./btf.ts";
 *
 * const { types, keyTypeId, valueTypeId } = btfOfCodecs(u32, struct({ lock: spinLock, hits: u64 }));
 * assert.equal(types[keyTypeId - 1]?.name, "unsigned int");
 * assert.equal(types[valueTypeId - 1]?.kind, "struct");
 * ```
 */
export function btfOfCodecs(key: Codec<unknown> | null, value: Codec<unknown>): MapTypes {
  const types: BtfType[] = [];
  const ids = new Map<Codec<unknown>, number>();
  let indexType = 0;
  const add = (type: BtfType) => types.push(type);
  const describe = (codec: Codec<unknown>): number => {
    const known = ids.get(codec);
    if (known !== undefined) return known;
    const shape = codec.shape;
    if (shape === undefined) {
      throw new TypeError(`codec ${codec.name} has no C shape to describe as BTF`);
    }
    let type: BtfType;
    switch (shape.kind) {
      case "int":
        type = {
          kind: "int",
          name: shape.name,
          size: codec.size,
          bits: codec.size * 8,
          bitOffset: 0,
          encoding: shape.encoding,
        };
        break;
      case "float":
        type = { kind: "float", name: shape.name, size: codec.size };
        break;
      case "typedef":
        type = { kind: "typedef", name: shape.name, type: describe(shape.of) };
        break;
      case "array": {
        const element = describe(shape.of);
        if (indexType === 0) {
          indexType = describe(u32);
        }
        type = { kind: "array", name: "", type: element, indexType, length: shape.length };
        break;
      }
      case "struct":
      case "union":
        type = {
          kind: shape.kind,
          name: shape.name,
          size: codec.size,
          members: shape.members.map((member): BtfMember => ({
            name: member.name,
            type: describe(member.codec),
            bitOffset: member.offset * 8,
            bitSize: 0,
          })),
        };
        break;
    }
    const id = add(type);
    ids.set(codec, id);
    return id;
  };
  const keyTypeId = key === null || key.size === 0 ? 0 : describe(key);
  const valueTypeId = describe(value);
  return { types, keyTypeId, valueTypeId };
}

const BIG_ENDIAN: Record<string, Codec<unknown>> = { __be16: u16be, __be32: u32be, __be64: u64be };
const INTS: Record<string, Codec<unknown>> = {
  "unsigned1": u8,
  "unsigned2": u16,
  "unsigned4": u32,
  "unsigned8": u64,
  "signed1": i8,
  "signed2": i16,
  "signed4": i32,
  "signed8": i64,
  "char1": char,
  "bool1": bool,
};

/**
 * A codec for the BTF type `id`: numbers for ints up to 32 bits, bigints for
 * 64-bit ints, enum64s, pointers and bitfields wider than 32 bits, strings
 * for `char` arrays, objects for structs and unions (a `bpf_spin_lock`
 * member reads as absent), `__be16/32/64` typedefs in network order.
 *
 * @throws {BtfFormatError} for a type no value can have (void, functions).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode } from "./codec.ts";
 * import { codecOfType } from "./btf.ts";
 * import type { BtfType } from "../btf/types.ts";
 *
 * const types: BtfType[] = [
 *   { kind: "void", name: "" },
 *   { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" },
 *   { kind: "struct", name: "pair", size: 8, members: [
 *     { name: "a", type: 1, bitOffset: 0, bitSize: 0 },
 *     { name: "b", type: 1, bitOffset: 32, bitSize: 0 },
 *   ] },
 * ];
 * assert.deepEqual(decode(codecOfType(types, 2), new Uint8Array([1, 0, 0, 0, 255, 255, 255, 255])), { a: 1, b: -1 });
 * ```
 */
export function codecOfType(types: readonly BtfType[], id: number): Codec<unknown> {
  const seen = typeAt(types, id);
  const bigEndian = seen.kind === "typedef" ? BIG_ENDIAN[seen.name] : undefined;
  if (bigEndian !== undefined) return bigEndian;
  if (
    seen.kind === "typedef" || seen.kind === "const" || seen.kind === "volatile"
    || seen.kind === "restrict" || seen.kind === "type_tag"
  ) {
    return codecOfType(types, seen.type);
  }
  const type = seen;
  switch (type.kind) {
    case "int": {
      if (type.bitOffset !== 0 || type.bits !== type.size * 8) {
        return bitfield({
          bit: type.bitOffset,
          bits: type.bits,
          signed: type.encoding === "signed",
          bytes: type.size,
        });
      }
      const codec = INTS[`${type.encoding}${type.size}`] ?? INTS[`unsigned${type.size}`];
      if (codec === undefined) return bigInt(type.size, type.encoding === "signed");
      return codec;
    }
    case "ptr":
      return u64;
    case "float":
      if (type.size === 4) return f32;
      if (type.size === 8) return f64;
      throw new BtfFormatError(`float ${type.name} of ${type.size} bytes`);
    case "enum":
    case "enum64": {
      const size = type.size;
      const int = type.kind === "enum"
        ? INTS[`${type.signed ? "signed" : "unsigned"}${size}`]
        : undefined;
      if (int !== undefined) return int;
      return bigInt(size, type.signed);
    }
    case "array": {
      const element = typeAt(types, resolveType(types, type.type));
      if (
        element.kind === "int" && element.size === 1
        && (element.encoding === "char" || element.name === "char")
      ) {
        return chars(type.length);
      }
      return arrayAt(codecOfType(types, type.type), type.length, sizeOfType(types, type.type));
    }
    case "struct":
    case "union": {
      if (type.kind === "struct" && type.name === "bpf_spin_lock") return spinLock;
      const members = type.members.map((member) => {
        const byte = Math.floor(member.bitOffset / 8);
        const bit = member.bitOffset % 8;
        let codec: Codec<unknown>;
        if (member.bitSize !== 0 || bit !== 0) {
          const target = typeAt(types, resolveType(types, member.type));
          const signed = (target.kind === "int" && target.encoding === "signed")
            || ((target.kind === "enum" || target.kind === "enum64") && target.signed);
          const bits = member.bitSize !== 0 ? member.bitSize : sizeOfType(types, member.type) * 8;
          codec = bitfield({ bit, bits, signed, bytes: Math.ceil((bit + bits) / 8) });
        } else {
          codec = codecOfType(types, member.type);
        }
        return { name: member.name, codec, offset: byte };
      });
      return structAt(type.name, members, type.size, alignOf(types, id), {
        union: type.kind === "union",
      });
    }
    case "datasec": {
      // A global-data map's value (.bss, .data, .rodata): the section's variables at their offsets.
      let align = 1;
      const members = type.vars.map((v) => {
        const variable = typeAt(types, v.type);
        if (variable.kind !== "var") {
          throw new BtfFormatError(`datasec ${type.name} holds a ${variable.kind}, not a variable`);
        }
        align = Math.max(align, alignOf(types, variable.type));
        return { name: variable.name, codec: codecOfType(types, variable.type), offset: v.offset };
      });
      const codec = structAt(type.name, members, type.size, align);
      return Object.freeze({ ...codec, name: `datasec${codec.name.slice("struct".length)}` });
    }
    default:
      throw new BtfFormatError(`type ${id} is a ${type.kind}: no value has that type`);
  }
}

/** The alignment of a type, as C gives it (a struct's largest member's). */
function alignOf(types: readonly BtfType[], id: number): number {
  const type = typeAt(types, resolveType(types, id));
  switch (type.kind) {
    case "struct":
    case "union":
      return type.members.reduce((a, m) => Math.max(a, alignOf(types, m.type)), 1);
    case "array":
      return alignOf(types, type.type);
    case "ptr":
      return 8;
    default:
      return Math.min(8, Math.max(1, sizeOfType(types, id)));
  }
}

/** An integer of any byte width as a bigint, little-endian. */
function bigInt(size: number, signed: boolean): Codec<bigint> {
  return bitfield({ bit: 0, bits: size * 8, signed, bytes: size }) as Codec<bigint>;
}
