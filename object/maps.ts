/**
 * The maps of an object, as libbpf reads them: the BTF map definitions of
 * `.maps` (`__uint`, `__type`, `__array` members of an anonymous struct per
 * variable), and global data (`.bss`, `.data`, `.rodata`, their `.name`
 * kin) as one-element arrays holding the section's bytes.
 *
 * @module
 */

import { type BtfType, resolveType, sizeOfType } from "../btf/types.ts";
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from "../ffi/commands.ts";
import { MAP_TYPES, mapTypeName } from "../ffi/map_types.ts";
import { BPF_F_NUMA_NODE, type MapSpec } from "../maps/bpf_map.ts";
import { ObjectFormatError } from "./errors.ts";

// The flag lives with the other map_flags; the object layer's users have long imported it here.
export { BPF_F_MMAPABLE };

/** Where a map of an object comes from. */
export type ObjectMapKind =
  /** A variable of `.maps`, defined by its BTF. */
  | "btf"
  /** A global data section: `.bss`, `.data`, `.rodata`, `.data.*`, `.rodata.*`, `.bss.*`. */
  | "data"
  /** The `.kconfig` externs, filled by the loader from the running kernel's config. */
  | "kconfig";

/** One map of an object: what to create, and what the loader needs beside. */
export interface ObjectMap {
  /** The variable's or section's name in full (the kernel keeps 15 characters: `spec.name`). */
  readonly name: string;
  readonly kind: ObjectMapKind;
  /** The ELF section it is defined in (`.maps`, `.data`, ...), `.kconfig` for the kconfig map. */
  readonly section: string;
  /** Its offset in that section (the variable's symbol value; 0 for data maps). */
  readonly offset: number;
  /** What `BpfMap.create` takes (without `btf` and `innerMap`: the loader adds them). */
  readonly spec: MapSpec;
  /** The key's BTF type id in the object's `.BTF`, 0 if none (or the kernel takes none). */
  readonly btfKeyTypeId: number;
  /** The value's BTF type id (a DATASEC for global data), 0 if none. */
  readonly btfValueTypeId: number;
  /** `pinning`: `"byName"` (`LIBBPF_PIN_BY_NAME`) pins it in the loader's pin folder under its name. */
  readonly pinning: "none" | "byName";
  /** `numa_node` as written (the kernel uses it only with `BPF_F_NUMA_NODE` in the flags). */
  readonly numaNode: number;
  /** A map of maps: the definition of its inner maps (`__array(values, struct {...})`). */
  readonly inner?: ObjectMap;
  /**
   * `values` initializers: slot `index` holds the map (map of maps) or the
   * program (`prog_array`) named `name`.
   */
  readonly initialSlots: readonly { readonly index: number; readonly name: string }[];
  /**
   * Global data: the section's bytes, its own copy (zeros for `.bss`). The
   * spec's `contents` reads them when the map is created, so writing here
   * first sets `.rodata` constants, as a libbpf skeleton does.
   */
  readonly data?: Uint8Array;
}

/** A `.maps` variable, as the symbol table has it. */
export interface MapSymbol {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/**
 * Map types libbpf creates without key and value BTF ids, as their values
 * are fds or have no fixed layout (`bpf_object__create_map`).
 */
const NO_BTF_TYPES = new Set(
  [
    "perf_event_array",
    "cgroup_array",
    "stack_trace",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "devmap_hash",
    "cpumap",
    "xskmap",
    "sockmap",
    "sockhash",
    "queue",
    "stack",
  ].map((name) => MAP_TYPES[name as keyof typeof MAP_TYPES]),
);

/** A `.rel.maps` relocation: the 8-byte slot at `offset` in `.maps` points at `name`. */
export interface SlotReference {
  readonly offset: number;
  readonly name: string;
  /** Its place in the file, for errors. */
  readonly at: number;
}

/** The `values` slots the relocations fill inside one map's variable. */
function slotsOf(
  where: Where,
  start: number,
  valuesStart: number,
  size: number,
  maxEntries: number,
  references: readonly SlotReference[],
): { index: number; name: string }[] {
  const slots: { index: number; name: string }[] = [];
  for (const reference of references) {
    if (reference.offset < start || reference.offset >= start + size) continue;
    const index = (reference.offset - valuesStart) / 8;
    if (!Number.isInteger(index) || index < 0 || index >= maxEntries) {
      throw new ObjectFormatError(
        `map '${where.map}': a 'values' relocation at ${reference.offset} is not a slot below max_entries`,
        reference.at,
      );
    }
    slots.push({ index, name: reference.name });
  }
  return slots.sort((a, b) => a.index - b.index);
}

/** What to tell apart in an error: the map and where its variable sits in the file. */
interface Where {
  readonly map: string;
  readonly at: number;
}

/**
 * The maps of `.maps`, from the BTF DATASEC of that name: each variable's
 * struct read member by member as libbpf's `parse_btf_map_def` does.
 * `symbols` are the `.maps` variables of the symbol table (their offsets),
 * `references` the `.rel.maps` relocations that fill `values` slots, and
 * `sectionAt` the section's file offset (for errors).
 *
 * @throws {ObjectFormatError} for a definition libbpf would refuse: an
 *   unknown member, a `__uint` that is not a pointer to an array, a key or
 *   value size that disagrees with its type, a map without a type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { parseObject } from "./object.ts";
 *
 * const source = `
 *   struct { int (*type)[1]; int (*max_entries)[16]; unsigned *key; unsigned long *value; }
 *     hits __attribute__((section(".maps"), used));`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * const object = parseObject(new Uint8Array(execFileSync("clang", args, { input: source })));
 * const hits = object.maps[0]!;
 * assert.equal(hits.name, "hits");
 * assert.deepEqual(hits.spec, {
 *   type: "hash", // BPF_MAP_TYPE_HASH is 1
 *   keySize: 4,
 *   valueSize: 8,
 *   maxEntries: 16,
 *   flags: 0,
 *   name: "hits",
 * });
 * assert.ok(hits.btfKeyTypeId > 0 && hits.btfValueTypeId > 0);
 * ```
 */
export function btfMaps(
  types: readonly BtfType[],
  symbols: readonly MapSymbol[],
  references: readonly SlotReference[],
  sectionAt: number,
): ObjectMap[] {
  const datasec = types.find((type) => type.kind === "datasec" && type.name === ".maps");
  if (datasec === undefined || datasec.kind !== "datasec") {
    if (symbols.length === 0) return [];
    throw new ObjectFormatError(".maps has variables but .BTF has no DATASEC .maps", sectionAt);
  }
  return datasec.vars.map((secinfo) => {
    const variable = types[secinfo.type];
    if (variable?.kind !== "var") {
      throw new ObjectFormatError(`DATASEC .maps: type ${secinfo.type} is not a VAR`, sectionAt);
    }
    const symbol = symbols.find((s) => s.name === variable.name);
    if (symbol === undefined) {
      throw new ObjectFormatError(`map '${variable.name}': no symbol in .maps`, sectionAt);
    }
    const where = { map: variable.name, at: sectionAt + symbol.offset };
    return mapDefinition(
      types,
      variable.type,
      variable.name,
      symbol.offset,
      symbol.size,
      references,
      where,
      false,
    );
  });
}

function mapDefinition(
  types: readonly BtfType[],
  typeId: number,
  name: string,
  offset: number,
  size: number,
  references: readonly SlotReference[],
  where: Where,
  inner: boolean,
): ObjectMap {
  const fail = (message: string): never => {
    throw new ObjectFormatError(`map '${where.map}': ${message}`, where.at);
  };
  const struct = type(types, resolve(types, typeId, fail), fail);
  if (struct.kind !== "struct") return fail(`expected a struct, got ${struct.kind}`);
  let mapType: number | undefined;
  let maxEntries = 0;
  let flags = 0;
  let numaNode = 0;
  let mapExtra = 0n;
  let pinning: "none" | "byName" = "none";
  let keySize: number | undefined;
  let valueSize: number | undefined;
  let keyTypeId = 0;
  let valueTypeId = 0;
  let innerMap: ObjectMap | undefined;
  let valuesBitOffset: number | undefined;
  const int = (member: { name: string; type: number }): number => {
    const pointer = type(types, resolve(types, member.type, fail), fail);
    if (pointer.kind !== "ptr") {
      return fail(`'${member.name}': expected a pointer, got ${pointer.kind}`);
    }
    const array = type(types, pointer.type, fail);
    if (array.kind !== "array") {
      return fail(`'${member.name}': expected a pointer to an array, got ${array.kind}`);
    }
    return array.length;
  };
  const typed = (member: { name: string; type: number }): { id: number; size: number } => {
    const pointer = type(types, resolve(types, member.type, fail), fail);
    if (pointer.kind !== "ptr") {
      return fail(`'${member.name}': expected a pointer, got ${pointer.kind}`);
    }
    try {
      return { id: pointer.type, size: sizeOfType(types, pointer.type) };
    } catch (error) {
      return fail(`'${member.name}': ${(error as Error).message}`);
    }
  };
  const sized = (what: string, old: number | undefined, size: number): number =>
    old === undefined || old === size ? size : fail(`conflicting ${what} size ${old} != ${size}`);
  for (const member of struct.members) {
    switch (member.name) {
      case "type":
        mapType = int(member);
        break;
      case "max_entries":
        maxEntries = int(member);
        break;
      case "map_flags":
        flags = int(member);
        break;
      case "numa_node":
        numaNode = int(member);
        break;
      case "map_extra":
        mapExtra = longValue(types, member, fail);
        break;
      case "key_size":
        keySize = sized("key", keySize, int(member));
        break;
      case "value_size":
        valueSize = sized("value", valueSize, int(member));
        break;
      case "key": {
        const key = typed(member);
        keySize = sized("key", keySize, key.size);
        keyTypeId = key.id;
        break;
      }
      case "value": {
        const value = typed(member);
        valueSize = sized("value", valueSize, value.size);
        valueTypeId = value.id;
        break;
      }
      case "pinning": {
        if (inner) fail("an inner map cannot be pinned");
        const value = int(member);
        if (value > 1) fail(`pinning ${value}: only 0 (none) and 1 (by name) exist`);
        pinning = value === 1 ? "byName" : "none";
        break;
      }
      case "values": {
        if (inner) fail("an inner map cannot have 'values'");
        const isOfMaps = mapType === MAP_TYPES.array_of_maps || mapType === MAP_TYPES.hash_of_maps;
        if (!isOfMaps && mapType !== MAP_TYPES.prog_array) {
          fail("'values' needs 'type' first, a map of maps or a prog_array");
        }
        const array = type(types, resolve(types, member.type, fail), fail);
        if (array.kind !== "array") fail(`'values': expected an array, got ${array.kind}`);
        const element = array.kind === "array"
          ? type(types, resolve(types, array.type, fail), fail)
          : undefined;
        if (element?.kind !== "ptr") return fail("'values': expected an array of pointers");
        valueSize = sized("value", valueSize, 4);
        valuesBitOffset = member.bitOffset;
        if (isOfMaps) {
          innerMap = mapDefinition(types, element.type, `${name}.inner`, 0, 0, [], where, true);
        }
        break;
      }
      default:
        fail(`unknown field '${member.name}'`);
    }
  }
  if (mapType === undefined) return fail("no 'type'");
  const withoutBtf = NO_BTF_TYPES.has(mapType);
  const spec: MapSpec = {
    type: mapTypeName(mapType) in MAP_TYPES
      ? mapTypeName(mapType) as keyof typeof MAP_TYPES
      : mapType,
    keySize: keySize ?? 0,
    valueSize: valueSize ?? 0,
    maxEntries,
    flags,
    name: kernelName(name),
  };
  if ((flags & BPF_F_NUMA_NODE) !== 0) spec.numaNode = numaNode;
  if (mapExtra !== 0n) spec.mapExtra = mapExtra;
  const map: ObjectMap = {
    name,
    kind: "btf",
    section: ".maps",
    offset,
    spec,
    btfKeyTypeId: withoutBtf ? 0 : keyTypeId,
    btfValueTypeId: withoutBtf ? 0 : valueTypeId,
    pinning,
    numaNode,
    initialSlots: valuesBitOffset === undefined
      ? []
      : slotsOf(where, offset, offset + valuesBitOffset / 8, size, maxEntries, references),
  };
  return innerMap === undefined ? map : { ...map, inner: innerMap };
}

/** `map_extra`: a `__uint` (pointer to an array) or libbpf's `__ulong` (an enum of one value). */
function longValue(
  types: readonly BtfType[],
  member: { name: string; type: number },
  fail: (message: string) => never,
): bigint {
  const t = type(types, resolve(types, member.type, fail), fail);
  if (t.kind === "ptr") {
    const array = type(types, t.type, fail);
    if (array.kind === "array") return BigInt(array.length);
  }
  if ((t.kind === "enum" || t.kind === "enum64") && t.values.length === 1) {
    return BigInt.asUintN(64, t.values[0]!.value);
  }
  return fail(`'${member.name}': expected a pointer to an array or an enum of one value`);
}

function resolve(types: readonly BtfType[], id: number, fail: (message: string) => never): number {
  try {
    return resolveType(types, id);
  } catch (error) {
    return fail((error as Error).message);
  }
}

function type(types: readonly BtfType[], id: number, fail: (message: string) => never): BtfType {
  return types[id] ?? fail(`no BTF type ${id} (${types.length - 1} types)`);
}

/**
 * The name the kernel keeps: 15 characters (`BPF_OBJ_NAME_LEN` less its
 * NUL), as libbpf truncates them.
 */
function kernelName(name: string): string {
  return name.slice(0, 15);
}

/**
 * libbpf's name for the map of a global data section: up to 8 characters
 * of the object's name, then the section's (`maps.bss`, `prog.rodata`); a
 * section with a second dot (`.rodata.str1.1`, `.data.extra`) is named by
 * its section alone; characters the kernel refuses become `_`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dataMapName } from "./maps.ts";
 * assert.equal(dataMapName("maps", ".bss"), "maps.bss");
 * assert.equal(dataMapName("a_long_object_name", ".rodata"), "a_long_o.rodata"); // 8 + 7
 * assert.equal(dataMapName("maps", ".rodata.str1.1"), ".rodata.str1.1");
 * assert.equal(dataMapName("maps", ".data.with-dash"), ".data.with_dash");
 * ```
 */
export function dataMapName(objectName: string, section: string): string {
  const suffixLength = Math.max(7, section.length);
  const prefixLength = section.indexOf(".", 1) >= 0
    ? 0
    : Math.max(0, Math.min(16 - suffixLength - 1, objectName.length));
  const name = (objectName.slice(0, prefixLength) + section.slice(0, suffixLength)).slice(0, 15);
  return name.replace(/[^A-Za-z0-9_.]/g, "_");
}

/** Whether a section holds global data libbpf makes a map of, and of which kind. */
export function dataSectionKind(name: string): "data" | "rodata" | "bss" | undefined {
  for (const kind of ["data", "rodata", "bss"] as const) {
    if (name === `.${kind}` || name.startsWith(`.${kind}.`)) return kind;
  }
  return undefined;
}

/**
 * The map of a global data section, as libbpf makes it: an array of one
 * element holding the section, `.rodata` read-only for programs and frozen
 * once written, mmapable when a non-static variable lives there (libbpf
 * 1.5's rule; 1.1 made every one mmapable). `bytes` is copied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_RDONLY_PROG } from "../ffi/commands.ts";
 * import { BPF_F_MMAPABLE, dataMap } from "./maps.ts";
 *
 * const rodata = dataMap("prog", ".rodata", new Uint8Array([80, 0]), 0, 0x40, true);
 * assert.equal(rodata.spec.name, "prog.rodata");
 * assert.equal(rodata.spec.flags, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE);
 * assert.equal(rodata.spec.freeze, true);
 * rodata.data![0] = 8080 & 0xff; // a constant set before the map is created
 * assert.deepEqual([...rodata.spec.contents!][0]?.[1], rodata.data);
 * ```
 */
export function dataMap(
  objectName: string,
  section: string,
  bytes: Uint8Array,
  datasecId: number,
  sectionAt: number,
  mmapable: boolean,
): ObjectMap {
  const kind = dataSectionKind(section);
  if (kind === undefined) {
    throw new ObjectFormatError(`${section} is not a data section`, sectionAt);
  }
  const data = bytes.slice();
  const readOnly = kind === "rodata";
  return {
    name: section,
    kind: "data",
    section,
    offset: 0,
    spec: {
      type: "array",
      keySize: 4,
      valueSize: data.byteLength,
      maxEntries: 1,
      flags: (readOnly ? BPF_F_RDONLY_PROG : 0) | (mmapable ? BPF_F_MMAPABLE : 0),
      name: dataMapName(objectName, section),
      // Read when the map is created, so the bytes are the ones the caller set.
      contents: {
        *[Symbol.iterator]() {
          yield [new Uint8Array(4), data] as const;
        },
      },
      freeze: readOnly,
    },
    btfKeyTypeId: 0,
    btfValueTypeId: datasecId,
    pinning: "none",
    numaNode: 0,
    initialSlots: [],
    data,
  };
}
