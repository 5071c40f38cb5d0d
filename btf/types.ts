/**
 * BTF, the kernel's type format (`Documentation/bpf/btf.rst`): the type
 * records as plain objects, and the wire format they are parsed from and
 * encoded to. Type ids are indexes into a list whose entry 0 is `void`.
 *
 * @module
 */

/**
 * `BTF_MAGIC`, first in every BTF blob (little-endian 0xeB9F).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BTF_HEADER_SIZE, BTF_MAGIC, BTF_VERSION, encodeBtf } from "./types.ts";
 *
 * const header = new DataView(encodeBtf([]).buffer);
 * assert.equal(header.getUint16(0, true), BTF_MAGIC); // bytes 9f eb
 * assert.equal(header.getUint8(2), BTF_VERSION);
 * assert.equal(header.getUint32(4, true), BTF_HEADER_SIZE); // hdr_len
 * ```
 */
export const BTF_MAGIC = 0xeb9f;
/** The BTF version the kernel accepts. See {@linkcode BTF_MAGIC}'s example. */
export const BTF_VERSION = 1;
/** `sizeof(struct btf_header)`. See {@linkcode BTF_MAGIC}'s example. */
export const BTF_HEADER_SIZE = 24;

/**
 * The kinds of `enum btf_kind`, by number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BTF_KINDS } from "./types.ts";
 * assert.equal(BTF_KINDS[4], "struct"); // BTF_KIND_STRUCT
 * assert.equal(BTF_KINDS.indexOf("enum64"), 19);
 * ```
 */
export const BTF_KINDS = [
  "void",
  "int",
  "ptr",
  "array",
  "struct",
  "union",
  "enum",
  "fwd",
  "typedef",
  "volatile",
  "const",
  "restrict",
  "func",
  "func_proto",
  "var",
  "datasec",
  "float",
  "decl_tag",
  "type_tag",
  "enum64",
] as const;

/** A BTF kind's name. */
export type BtfKind = (typeof BTF_KINDS)[number];

/** `BTF_INT_SIGNED` / `BTF_INT_CHAR` / `BTF_INT_BOOL`: how an int is meant. */
export type IntEncoding = "unsigned" | "signed" | "char" | "bool";

/** A struct or union member; `bitSize` is non-zero for a bitfield. */
export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  bitSize: number;
}

/** An enumerator of an `enum` or `enum64`. */
export interface BtfEnumValue {
  name: string;
  value: bigint;
}

/** One BTF type record. `type` fields are type ids. */
export type BtfType =
  | { kind: "void"; name: "" }
  | {
    kind: "int";
    name: string;
    size: number;
    bits: number;
    /** Bit offset of the value inside its bytes (`BTF_INT_OFFSET`), normally 0. */
    bitOffset: number;
    encoding: IntEncoding;
  }
  | { kind: "ptr" | "volatile" | "const" | "restrict"; name: string; type: number }
  | { kind: "typedef" | "type_tag"; name: string; type: number }
  | { kind: "array"; name: string; type: number; indexType: number; length: number }
  | { kind: "struct" | "union"; name: string; size: number; members: BtfMember[] }
  | { kind: "enum" | "enum64"; name: string; size: number; signed: boolean; values: BtfEnumValue[] }
  | { kind: "fwd"; name: string; union: boolean }
  | { kind: "func"; name: string; type: number; linkage: number }
  | { kind: "func_proto"; name: string; type: number; params: { name: string; type: number }[] }
  | { kind: "var"; name: string; type: number; linkage: number }
  | {
    kind: "datasec";
    name: string;
    size: number;
    vars: { type: number; offset: number; size: number }[];
  }
  | { kind: "float"; name: string; size: number }
  | { kind: "decl_tag"; name: string; type: number; componentIndex: number };

/** BTF types for a map's key and value, and the ids of the two in them. */
export interface MapTypes {
  /** Types with ids from 1, in order. */
  types: BtfType[];
  /** 0 when the map has no key type (queue, stack, bloom filter). */
  keyTypeId: number;
  valueTypeId: number;
}

/**
 * The `void` type, id 0 of every type list.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBtf, parseBtf, VOID } from "./types.ts";
 * assert.deepEqual(parseBtf(encodeBtf([])), [VOID]);
 * ```
 */
export const VOID: BtfType = Object.freeze({ kind: "void", name: "" });

/**
 * A BTF blob that cannot be parsed, or types that cannot be encoded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBtf } from "./types.ts";
 * assert.throws(() => parseBtf(new Uint8Array(24)), {
 *   name: "BtfFormatError",
 *   message: "not BTF: no 0xeB9F magic",
 * });
 * ```
 */
export class BtfFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BtfFormatError";
  }
}

const INT_ENCODINGS: Record<number, IntEncoding> = {
  0: "unsigned",
  1: "signed",
  2: "char",
  4: "bool",
};
const INT_ENCODING_BITS: Record<IntEncoding, number> = { unsigned: 0, signed: 1, char: 2, bool: 4 };
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Parses a BTF blob (as `BPF_BTF_LOAD` takes it and `bpf_btf_info.btf`
 * returns it) into its types; index 0 is `void`.
 *
 * @throws {BtfFormatError} for a blob that is not BTF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBtf, parseBtf } from "./types.ts";
 *
 * const types = parseBtf(encodeBtf([
 *   { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" },
 * ]));
 * assert.deepEqual(types.map((type) => `${type.kind} ${type.name}`), ["void ", "int int"]);
 * ```
 */
export function parseBtf(blob: Uint8Array): BtfType[] {
  return parseTypes(blob, undefined);
}

/**
 * Parses split BTF (a kernel module's `/sys/kernel/btf/<module>`): types
 * and strings that continue those of `base` (vmlinux's blob), ids and
 * string offsets counted on from where the base's end. Returns the base's
 * types followed by the split's, so a type's index is its id.
 *
 * @throws {BtfFormatError} for a blob that is not BTF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBtf, parseBtf, parseSplitBtf } from "./types.ts";
 *
 * const base = encodeBtf([{ kind: "float", name: "double", size: 8 }]); // strings "\0double\0"
 * const split = encodeBtf([{ kind: "typedef", name: "", type: 1 }]); // strings "\0"
 * // The split's type names its string 8 (base strings are 8 bytes): byte 0 of its own strings.
 * assert.deepEqual(
 *   parseSplitBtf(split, base).map((t) => t.kind),
 *   ["void", "float", "typedef"],
 * );
 * assert.deepEqual(parseSplitBtf(split, base).slice(0, 2), parseBtf(base));
 * ```
 */
export function parseSplitBtf(blob: Uint8Array, base: Uint8Array): BtfType[] {
  const baseTypes = parseBtf(base);
  const baseStrings = stringSection(base);
  return baseTypes.concat(
    parseTypes(blob, { types: baseTypes.length, strings: baseStrings }).slice(1),
  );
}

/** A blob's header, checked against its length. */
function headerOf(blob: Uint8Array) {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.byteLength < BTF_HEADER_SIZE || view.getUint16(0, true) !== BTF_MAGIC) {
    throw new BtfFormatError("not BTF: no 0xeB9F magic");
  }
  const hdrLen = view.getUint32(4, true);
  const typeOff = view.getUint32(8, true);
  const typeLen = view.getUint32(12, true);
  const strOff = view.getUint32(16, true);
  const strLen = view.getUint32(20, true);
  if (hdrLen + Math.max(typeOff + typeLen, strOff + strLen) > blob.byteLength) {
    throw new BtfFormatError(`BTF sections overrun the ${blob.byteLength}-byte blob`);
  }
  return { view, hdrLen, typeOff, typeLen, strOff, strLen };
}

function stringSection(blob: Uint8Array): Uint8Array {
  const { hdrLen, strOff, strLen } = headerOf(blob);
  return blob.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
}

/**
 * The types of `blob`, from `void`; with a `base`, the split blob's own
 * types (after `void`), whose string offsets past the base's strings are
 * into the blob's.
 */
function parseTypes(
  blob: Uint8Array,
  base: { types: number; strings: Uint8Array } | undefined,
): BtfType[] {
  const { view, hdrLen, typeOff, typeLen, strOff, strLen } = headerOf(blob);
  const strings = blob.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
  const baseStrings = base?.strings ?? new Uint8Array(0);
  const text = (bytes: Uint8Array, offset: number) => {
    const end = bytes.indexOf(0, offset);
    return decoder.decode(bytes.subarray(offset, end === -1 ? bytes.byteLength : end));
  };
  const name = (offset: number) => {
    if (offset < baseStrings.byteLength) return text(baseStrings, offset);
    offset -= baseStrings.byteLength;
    if (offset >= strings.byteLength) {
      throw new BtfFormatError(`string offset ${offset + baseStrings.byteLength} out of range`);
    }
    return text(strings, offset);
  };
  const types: BtfType[] = [VOID];
  const firstId = base?.types ?? 1;
  let at = hdrLen + typeOff;
  const end = at + typeLen;
  const u32 = () => {
    if (at + 4 > end) throw new BtfFormatError("truncated type section");
    const value = view.getUint32(at, true);
    at += 4;
    return value;
  };
  while (at < end) {
    const typeName = name(u32());
    const info = u32();
    const sizeOrType = u32();
    const vlen = info & 0xffff;
    const kindNumber = (info >>> 24) & 0x1f;
    const kindFlag = (info >>> 31) === 1;
    const kind = BTF_KINDS[kindNumber];
    switch (kind) {
      case "int": {
        const word = u32();
        const encoding = INT_ENCODINGS[(word >>> 24) & 0xf];
        if (encoding === undefined) throw new BtfFormatError(`int ${typeName}: bad encoding`);
        types.push({
          kind,
          name: typeName,
          size: sizeOrType,
          bits: word & 0xff,
          bitOffset: (word >>> 16) & 0xff,
          encoding,
        });
        break;
      }
      case "ptr":
      case "volatile":
      case "const":
      case "restrict":
      case "typedef":
      case "type_tag":
        types.push({ kind, name: typeName, type: sizeOrType });
        break;
      case "array": {
        const type = u32();
        const indexType = u32();
        types.push({ kind, name: typeName, type, indexType, length: u32() });
        break;
      }
      case "struct":
      case "union": {
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const memberName = name(u32());
          const type = u32();
          const offset = u32();
          members.push({
            name: memberName,
            type,
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitSize: kindFlag ? offset >>> 24 : 0,
          });
        }
        types.push({ kind, name: typeName, size: sizeOrType, members });
        break;
      }
      case "enum":
      case "enum64": {
        const values: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++) {
          const valueName = name(u32());
          const low = u32();
          // kind_flag set: a signed enum (libbpf's btf__add_enum64(..., is_signed)).
          const value = kind === "enum"
            ? BigInt(kindFlag ? low | 0 : low)
            : (BigInt(u32()) << 32n) | BigInt(low);
          values.push({
            name: valueName,
            value: kind === "enum64" && kindFlag ? BigInt.asIntN(64, value) : value,
          });
        }
        types.push({ kind, name: typeName, size: sizeOrType, signed: kindFlag, values });
        break;
      }
      case "fwd":
        types.push({ kind, name: typeName, union: kindFlag });
        break;
      case "func":
        types.push({ kind, name: typeName, type: sizeOrType, linkage: vlen });
        break;
      case "func_proto": {
        const params = [];
        for (let i = 0; i < vlen; i++) params.push({ name: name(u32()), type: u32() });
        types.push({ kind, name: typeName, type: sizeOrType, params });
        break;
      }
      case "var":
        types.push({ kind, name: typeName, type: sizeOrType, linkage: u32() });
        break;
      case "datasec": {
        const vars = [];
        for (let i = 0; i < vlen; i++) vars.push({ type: u32(), offset: u32(), size: u32() });
        types.push({ kind, name: typeName, size: sizeOrType, vars });
        break;
      }
      case "float":
        types.push({ kind, name: typeName, size: sizeOrType });
        break;
      case "decl_tag":
        types.push({ kind, name: typeName, type: sizeOrType, componentIndex: u32() | 0 });
        break;
      default:
        throw new BtfFormatError(
          `type ${firstId + types.length - 1}: unknown BTF kind ${kindNumber}`,
        );
    }
  }
  return types;
}

/** Collects names into a string section, each once, "" at offset 0. */
class StringTable {
  readonly #offsets = new Map<string, number>([["", 0]]);
  readonly #parts: Uint8Array[] = [new Uint8Array(1)];
  #size = 1;

  offsetOf(text: string): number {
    let offset = this.#offsets.get(text);
    if (offset === undefined) {
      offset = this.#size;
      const bytes = encoder.encode(text + "\0");
      this.#parts.push(bytes);
      this.#size += bytes.byteLength;
      this.#offsets.set(text, offset);
    }
    return offset;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const part of this.#parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    return out;
  }
}

/**
 * Encodes types (ids from 1, in order; `void` is implicit) into a BTF blob.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BtfType, encodeBtf, parseBtf, VOID } from "./types.ts";
 *
 * const u32: BtfType = {
 *   kind: "int",
 *   name: "u32",
 *   size: 4,
 *   bits: 32,
 *   bitOffset: 0,
 *   encoding: "unsigned",
 * };
 * const blob = encodeBtf([u32]);
 * assert.equal(blob.byteLength, 24 + 16 + 5); // header, one int record, strings "\0u32\0"
 * assert.deepEqual(parseBtf(blob), [VOID, u32]);
 * ```
 */
export function encodeBtf(types: readonly BtfType[]): Uint8Array {
  const strings = new StringTable();
  const words: number[] = [];
  const head = (
    name: string,
    kind: BtfKind,
    vlen: number,
    kindFlag: boolean,
    sizeOrType: number,
  ) => {
    if (vlen > 0xffff) throw new BtfFormatError(`${kind} ${name}: more than 65535 entries`);
    const info = (kindFlag ? 0x8000_0000 : 0) + (BTF_KINDS.indexOf(kind) << 24) + vlen;
    words.push(strings.offsetOf(name), info, sizeOrType);
  };
  for (const type of types) {
    switch (type.kind) {
      case "void":
        throw new BtfFormatError("void is type 0 and is not encoded");
      case "int":
        head(type.name, type.kind, 0, false, type.size);
        words.push((INT_ENCODING_BITS[type.encoding] << 24) | (type.bitOffset << 16) | type.bits);
        break;
      case "ptr":
      case "volatile":
      case "const":
      case "restrict":
      case "typedef":
      case "type_tag":
        head(type.name, type.kind, 0, false, type.type);
        break;
      case "array":
        head(type.name, type.kind, 0, false, 0);
        words.push(type.type, type.indexType, type.length);
        break;
      case "struct":
      case "union": {
        const bitfields = type.members.some((member) => member.bitSize !== 0);
        head(type.name, type.kind, type.members.length, bitfields, type.size);
        for (const member of type.members) {
          const offset = bitfields
            ? member.bitSize * 0x100_0000 + member.bitOffset
            : member.bitOffset;
          words.push(strings.offsetOf(member.name), member.type, offset);
        }
        break;
      }
      case "enum":
      case "enum64":
        head(type.name, type.kind, type.values.length, type.signed, type.size);
        for (const { name, value } of type.values) {
          const bits = BigInt.asUintN(64, value);
          words.push(strings.offsetOf(name), Number(bits & 0xffff_ffffn));
          if (type.kind === "enum64") words.push(Number(bits >> 32n));
        }
        break;
      case "fwd":
        head(type.name, type.kind, 0, type.union, 0);
        break;
      case "func":
        head(type.name, type.kind, type.linkage, false, type.type);
        break;
      case "func_proto":
        head(type.name, type.kind, type.params.length, false, type.type);
        for (const param of type.params) words.push(strings.offsetOf(param.name), param.type);
        break;
      case "var":
        head(type.name, type.kind, 0, false, type.type);
        words.push(type.linkage);
        break;
      case "datasec":
        head(type.name, type.kind, type.vars.length, false, type.size);
        for (const v of type.vars) words.push(v.type, v.offset, v.size);
        break;
      case "float":
        head(type.name, type.kind, 0, false, type.size);
        break;
      case "decl_tag":
        head(type.name, type.kind, 0, false, type.type);
        words.push(type.componentIndex >>> 0);
        break;
    }
  }
  const stringBytes = strings.bytes();
  const typeLen = words.length * 4;
  const blob = new Uint8Array(BTF_HEADER_SIZE + typeLen + stringBytes.byteLength);
  const view = new DataView(blob.buffer);
  view.setUint16(0, BTF_MAGIC, true);
  view.setUint8(2, BTF_VERSION);
  view.setUint32(4, BTF_HEADER_SIZE, true);
  view.setUint32(8, 0, true);
  view.setUint32(12, typeLen, true);
  view.setUint32(16, typeLen, true);
  view.setUint32(20, stringBytes.byteLength, true);
  words.forEach((word, i) => view.setUint32(BTF_HEADER_SIZE + i * 4, word >>> 0, true));
  blob.set(stringBytes, BTF_HEADER_SIZE + typeLen);
  return blob;
}

/**
 * Follows typedefs and qualifiers (`const`, `volatile`, `restrict`, type tags) to the type they
 * name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BtfType, resolveType, VOID } from "./types.ts";
 *
 * const types: BtfType[] = [
 *   VOID,
 *   { kind: "int", name: "unsigned int", size: 4, bits: 32, bitOffset: 0, encoding: "unsigned" },
 *   { kind: "typedef", name: "u32", type: 1 },
 *   { kind: "const", name: "", type: 2 },
 *   { kind: "array", name: "", type: 3, indexType: 1, length: 16 },
 * ];
 * assert.equal(resolveType(types, 3), 1); // const u32 -> u32 -> unsigned int
 * assert.equal(resolveType(types, 4), 4); // an array is itself
 * ```
 */
export function resolveType(types: readonly BtfType[], id: number): number {
  for (let hops = 0; hops < 32; hops++) {
    const type = typeAt(types, id);
    switch (type.kind) {
      case "typedef":
      case "volatile":
      case "const":
      case "restrict":
      case "type_tag":
        id = type.type;
        continue;
      default:
        return id;
    }
  }
  throw new BtfFormatError(`type ${id}: a typedef loop`);
}

/**
 * The type with id `id`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBtf, parseBtf, typeAt } from "./types.ts";
 *
 * const types = parseBtf(encodeBtf([{ kind: "typedef", name: "u32", type: 0 }]));
 * assert.equal(typeAt(types, 1).name, "u32");
 * assert.throws(() => typeAt(types, 2), {
 *   name: "BtfFormatError",
 *   message: "no BTF type 2 (1 types)",
 * });
 * ```
 */
export function typeAt(types: readonly BtfType[], id: number): BtfType {
  const type = types[id];
  if (type === undefined) throw new BtfFormatError(`no BTF type ${id} (${types.length - 1} types)`);
  return type;
}

/**
 * The size in bytes of a type, as C's `sizeof` (and libbpf's `btf__resolve_size`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BtfType, sizeOfType, VOID } from "./types.ts";
 *
 * const types: BtfType[] = [
 *   VOID,
 *   { kind: "int", name: "unsigned int", size: 4, bits: 32, bitOffset: 0, encoding: "unsigned" },
 *   { kind: "typedef", name: "u32", type: 1 },
 *   { kind: "const", name: "", type: 2 },
 *   { kind: "array", name: "", type: 3, indexType: 1, length: 16 },
 * ];
 * assert.equal(sizeOfType(types, 3), 4); // const u32
 * assert.equal(sizeOfType(types, 4), 64); // const u32[16]
 * ```
 */
export function sizeOfType(types: readonly BtfType[], id: number): number {
  const type = typeAt(types, resolveType(types, id));
  switch (type.kind) {
    case "int":
    case "struct":
    case "union":
    case "enum":
    case "enum64":
    case "float":
    case "datasec":
      return type.size;
    case "ptr":
      return 8;
    case "array":
      return type.length * sizeOfType(types, type.type);
    case "var":
      return sizeOfType(types, type.type);
    default:
      throw new BtfFormatError(`type ${id} (${type.kind}) has no size`);
  }
}
