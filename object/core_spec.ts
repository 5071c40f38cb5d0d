/**
 * CO-RE access specs, as libbpf's `relo_core.c` builds and matches them: a
 * relocation's access string (`"0:1:2"`) walked through the object's own
 * BTF into accessors and a bit offset, then the same walk by member name
 * through a candidate type of the kernel's BTF. Pure: no kernel call.
 *
 * @module
 */

import { essentialName } from "../btf/kernel_btf.ts";
import { type BtfType, resolveType, sizeOfType, typeAt } from "../btf/types.ts";
import { CORE_RELO_KINDS } from "./btf_ext.ts";

/** A relocation kind's name (`enum bpf_core_relo_kind`). */
export type CoreKind = (typeof CORE_RELO_KINDS)[number];

/** libbpf's `BPF_CORE_SPEC_MAX_LEN`: how deep an access may go. */
const MAX_SPEC_LENGTH = 64;

/**
 * One step of an access that means something in C: a named member, an
 * array index (no name), or an enumerator (its name).
 */
export interface Accessor {
  /** The struct, union, array element or enum type the step is in (typedefs skipped). */
  readonly typeId: number;
  /** The member's index, the array index, or the enumerator's index. */
  readonly index: number;
  /** The member's or enumerator's name; `undefined` for an array index. */
  readonly name: string | undefined;
}

/** An access resolved in one BTF: libbpf's `struct bpf_core_spec`. */
export interface CoreSpec {
  readonly types: readonly BtfType[];
  /** The type the access starts from. */
  readonly rootTypeId: number;
  /** Named members, array indexes and enumerators, in order. */
  readonly accessors: readonly Accessor[];
  /** Every index, anonymous members included (libbpf's `raw_spec`). */
  readonly raw: readonly number[];
  /** The field's offset from the root, in bits. */
  readonly bitOffset: number;
}

/** Field kinds: offsets, sizes, existence, signedness, bitfield shifts. */
export function isFieldKind(kind: CoreKind): boolean {
  return kind.startsWith("field_");
}

/** Enumerator kinds: existence and value. */
export function isEnumValueKind(kind: CoreKind): boolean {
  return kind.startsWith("enumval_");
}

/** A spec that cannot be built from the object's BTF: the object is broken, not the kernel. */
class SpecError extends Error {}

/** The type at `id` with typedefs and qualifiers skipped, and its id. */
function skip(types: readonly BtfType[], id: number): [BtfType, number] {
  const resolved = resolveType(types, id);
  return [typeAt(types, resolved), resolved];
}

const isComposite = (type: BtfType) => type.kind === "struct" || type.kind === "union";
const isEnum = (type: BtfType) => type.kind === "enum" || type.kind === "enum64";

/** Same kind, or enum and enum64 (libbpf's `btf_kind_core_compat`). */
export function kindsCompatible(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isEnum(a) && isEnum(b));
}

/** A flexible array: the last member of its struct, with no elements. */
function isFlexibleArray(
  types: readonly BtfType[],
  holder: Accessor | undefined,
  array: BtfType & { kind: "array" },
): boolean {
  if (holder?.name === undefined || array.length > 0) return false;
  const struct = types[holder.typeId];
  return struct !== undefined && "members" in struct && holder.index === struct.members.length - 1;
}

/**
 * Builds the spec of a relocation's access in the object's own types
 * (libbpf's `bpf_core_parse_spec`).
 *
 * @throws {Error} for an access string or type the BTF does not allow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCoreSpec } from "./core_spec.ts";
 * import { type BtfType, VOID } from "../btf/types.ts";
 *
 * const types: BtfType[] = [
 *   VOID,
 *   { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" },
 *   { kind: "struct", name: "task", size: 8, members: [
 *     { name: "pid", type: 1, bitOffset: 0, bitSize: 0 },
 *     { name: "tgid", type: 1, bitOffset: 32, bitSize: 0 },
 *   ] },
 * ];
 * const spec = parseCoreSpec(types, 2, "0:1", "field_byte_offset"); // task->tgid
 * assert.equal(spec.bitOffset, 32);
 * assert.deepEqual(spec.accessors.map((a) => a.name), [undefined, "tgid"]);
 * assert.throws(() => parseCoreSpec(types, 2, "0:2", "field_byte_offset"), /member 2 of 2/);
 * ```
 */
export function parseCoreSpec(
  types: readonly BtfType[],
  rootTypeId: number,
  access: string,
  kind: CoreKind,
): CoreSpec {
  const fail = (why: string): never => {
    throw new SpecError(`access "${access}" of type ${rootTypeId}: ${why}`);
  };
  if (!/^\d+(:\d+)*$/.test(access)) fail("not a list of indexes");
  const raw = access.split(":").map(Number);
  if (raw.length > MAX_SPEC_LENGTH) fail(`deeper than ${MAX_SPEC_LENGTH}`);
  const spec = { types, rootTypeId, accessors: [] as Accessor[], raw, bitOffset: 0 };
  if (!isFieldKind(kind) && !isEnumValueKind(kind)) {
    // Type kinds: the access string is always "0".
    if (access !== "0") fail(`a ${kind} relocation's access must be "0"`);
    return spec;
  }
  let [type, id] = skip(types, rootTypeId);
  const first = raw[0]!;
  if (isEnumValueKind(kind)) {
    if (type.kind !== "enum" && type.kind !== "enum64") return fail(`${type.kind} is no enum`);
    if (raw.length > 1 || first >= type.values.length) {
      fail(`enumerator ${first} of ${type.values.length}`);
    }
    spec.accessors.push({ typeId: id, index: first, name: type.values[first]!.name });
    return spec;
  }
  spec.accessors.push({ typeId: id, index: first, name: undefined });
  spec.bitOffset = first * sizeOfType(types, id) * 8;
  for (const index of raw.slice(1)) {
    [type, id] = skip(types, id);
    if (type.kind === "struct" || type.kind === "union") {
      const member = type.members[index];
      if (member === undefined) return fail(`member ${index} of ${type.members.length}`);
      spec.bitOffset += member.bitOffset;
      // Anonymous members (an embedded struct or union) are steps, not accessors.
      if (member.name !== "") spec.accessors.push({ typeId: id, index, name: member.name });
      id = member.type;
    } else if (type.kind === "array") {
      [, id] = skip(types, type.type);
      const holder = spec.accessors[spec.accessors.length - 1];
      if (!isFlexibleArray(types, holder, type) && index >= type.length) {
        fail(`index ${index} of an array of ${type.length}`);
      }
      spec.accessors.push({ typeId: id, index, name: undefined });
      spec.bitOffset += index * sizeOfType(types, id) * 8;
    } else {
      fail(`index ${index} into a ${type.kind}`);
    }
  }
  return spec;
}

/**
 * The local spec's access made in the target type `targetId` (a candidate
 * whose essential name and kind match the root's), or `undefined` where
 * the target does not have it (libbpf's `bpf_core_spec_match`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { matchCoreSpec, parseCoreSpec } from "./core_spec.ts";
 * import { type BtfType, VOID } from "../btf/types.ts";
 *
 * const int: BtfType = { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" };
 * const member = (name: string, bitOffset: number) => ({ name, type: 1, bitOffset, bitSize: 0 });
 * const local: BtfType[] = [VOID, int, { kind: "struct", name: "task___mine", size: 4, members: [member("tgid", 0)] }];
 * const kernel: BtfType[] = [VOID, int, { kind: "struct", name: "task", size: 8, members: [member("pid", 0), member("tgid", 32)] }];
 * const spec = parseCoreSpec(local, 2, "0:0", "field_byte_offset");
 * assert.equal(matchCoreSpec(spec, "field_byte_offset", kernel, 2)?.bitOffset, 32);
 * const renamed = structuredClone(kernel);
 * (renamed[2] as { members: { name: string }[] }).members[1]!.name = "tgid_v2";
 * assert.equal(matchCoreSpec(spec, "field_byte_offset", renamed, 2), undefined);
 * ```
 */
export function matchCoreSpec(
  local: CoreSpec,
  kind: CoreKind,
  target: readonly BtfType[],
  targetId: number,
): CoreSpec | undefined {
  const spec = {
    types: target,
    rootTypeId: targetId,
    accessors: [] as Accessor[],
    raw: [] as number[],
    bitOffset: 0,
  };
  if (!isFieldKind(kind) && !isEnumValueKind(kind)) {
    const matches = kind === "type_matches"
      ? typesMatch(local.types, local.rootTypeId, target, targetId)
      : typesCompatible(local.types, local.rootTypeId, target, targetId);
    return matches ? spec : undefined;
  }
  if (isEnumValueKind(kind)) {
    const [type, id] = skip(target, targetId);
    if (type.kind !== "enum" && type.kind !== "enum64") return undefined;
    const wanted = essentialName(local.accessors[0]!.name!);
    const index = type.values.findIndex((v) => essentialName(v.name) === wanted);
    if (index < 0) return undefined;
    spec.accessors.push({ typeId: id, index, name: type.values[index]!.name });
    spec.raw.push(index);
    return spec;
  }
  let id = targetId;
  for (const [i, accessor] of local.accessors.entries()) {
    let type: BtfType;
    [type, id] = skip(target, id);
    if (accessor.name !== undefined) {
      const next = matchMember(local, accessor, spec, id);
      if (next === undefined) return undefined;
      id = next;
      continue;
    }
    // An array index: the root itself is indexed first (a pointer to it, as an array).
    if (i > 0) {
      if (type.kind !== "array") return undefined;
      const holder = spec.accessors[spec.accessors.length - 1];
      if (!isFlexibleArray(target, holder, type) && accessor.index >= type.length) {
        return undefined;
      }
      [, id] = skip(target, type.type);
    }
    if (spec.raw.length === MAX_SPEC_LENGTH) throw new SpecError(`deeper than ${MAX_SPEC_LENGTH}`);
    spec.accessors.push({ typeId: id, index: accessor.index, name: undefined });
    spec.raw.push(accessor.index);
    spec.bitOffset += accessor.index * sizeOfType(target, id) * 8;
  }
  return spec;
}

/**
 * Finds the member the local accessor names in target composite `id`,
 * looking into anonymous members too; records it in `spec` and returns its
 * type, or `undefined` (`spec` as it was) if there is no compatible one.
 */
function matchMember(
  local: CoreSpec,
  accessor: Accessor,
  spec: { accessors: Accessor[]; raw: number[]; bitOffset: number; types: readonly BtfType[] },
  id: number,
): number | undefined {
  const localType = local.types[accessor.typeId] as BtfType & { kind: "struct" | "union" };
  const localMember = localType.members[accessor.index]!;
  const [type, typeId] = skip(spec.types, id);
  if (type.kind !== "struct" && type.kind !== "union") return undefined;
  for (const [index, member] of type.members.entries()) {
    if (spec.raw.length === MAX_SPEC_LENGTH) throw new SpecError(`deeper than ${MAX_SPEC_LENGTH}`);
    spec.bitOffset += member.bitOffset;
    spec.raw.push(index);
    if (member.name === "") {
      const found = matchMember(local, accessor, spec, member.type);
      if (found !== undefined) return found;
    } else if (member.name === localMember.name) {
      if (!fieldsCompatible(local.types, localMember.type, spec.types, member.type)) {
        spec.bitOffset -= member.bitOffset;
        spec.raw.pop();
        return undefined;
      }
      spec.accessors.push({ typeId, index, name: member.name });
      return member.type;
    }
    spec.bitOffset -= member.bitOffset;
    spec.raw.pop();
  }
  return undefined;
}

/** Whether two names are equal but for `___flavor` suffixes, or the target's and local's are both empty. */
function namesMatch(local: string, target: string): boolean {
  if (target === "") return local === "";
  return essentialName(local) === essentialName(target);
}

/** Two enums or forward declarations of one name, or one anonymous (libbpf's rule for fields). */
function sameNameOrAnonymous(local: BtfType, target: BtfType): boolean {
  const a = essentialName(local.name);
  const b = essentialName(target.name);
  return a === "" || b === "" || a === b;
}

const plainInt = (type: BtfType) => type.kind === "int" && type.bitOffset === 0;

/**
 * Whether a local field's type can be read as the target field's (libbpf's
 * `bpf_core_fields_are_compat`): any two structs or unions, pointers to
 * anything, ints of any size, enums of one name, arrays of such.
 */
function fieldsCompatible(
  local: readonly BtfType[],
  localId: number,
  target: readonly BtfType[],
  targetId: number,
): boolean {
  for (let depth = 0; depth < 32; depth++) {
    const [a] = skip(local, localId);
    const [b] = skip(target, targetId);
    if (isComposite(a) && isComposite(b)) return true;
    if (!kindsCompatible(a, b)) return false;
    switch (a.kind) {
      case "ptr":
      case "float":
        return true;
      case "fwd":
      case "enum":
      case "enum64":
        return sameNameOrAnonymous(a, b);
      case "int":
        return plainInt(a) && plainInt(b);
      case "array":
        localId = a.type;
        targetId = (b as typeof a).type;
        continue;
      default:
        return false;
    }
  }
  throw new SpecError("types nest deeper than 32");
}

/**
 * libbpf's `bpf_core_types_are_compat`, for type relocations: same kinds
 * all the way down (any struct is any struct; ints of any size), pointers
 * and arrays by what they hold, function prototypes argument by argument.
 */
function typesCompatible(
  local: readonly BtfType[],
  localId: number,
  target: readonly BtfType[],
  targetId: number,
  level = 32,
): boolean {
  if (!kindsCompatible(typeAt(local, localId), typeAt(target, targetId))) return false;
  for (let depth = 0; depth < 32; depth++) {
    const [a, aId] = skip(local, localId);
    const [b, bId] = skip(target, targetId);
    [localId, targetId] = [aId, bId];
    if (!kindsCompatible(a, b)) return false;
    switch (a.kind) {
      case "void":
      case "struct":
      case "union":
      case "enum":
      case "enum64":
      case "fwd":
        return true;
      case "int":
        return plainInt(a) && plainInt(b);
      case "ptr":
      case "array":
        localId = a.type;
        targetId = (b as typeof a).type;
        continue;
      case "func_proto": {
        const other = b as typeof a;
        if (a.params.length !== other.params.length) return false;
        for (const [i, param] of a.params.entries()) {
          if (level <= 0) throw new SpecError("function prototypes nest deeper than 32");
          const localParam = resolveType(local, param.type);
          const targetParam = resolveType(target, other.params[i]!.type);
          if (!typesCompatible(local, localParam, target, targetParam, level - 1)) return false;
        }
        localId = a.type;
        targetId = other.type;
        continue;
      }
      default:
        return false;
    }
  }
  throw new SpecError("types nest deeper than 32");
}

/**
 * libbpf's `__bpf_core_types_match`, for `bpf_core_type_matches`: names
 * equal but for flavors, every local member or enumerator present in the
 * target by name (and, for members, matching in turn unless behind a
 * pointer), ints of one size and signedness, arrays of one length.
 */
function typesMatch(
  local: readonly BtfType[],
  localId: number,
  target: readonly BtfType[],
  targetId: number,
  behindPointer = false,
  level = 32,
): boolean {
  if (level <= 0) throw new SpecError("types nest deeper than 32");
  for (let depth = 0; depth < 32; depth++) {
    const [a] = skip(local, localId);
    const [b] = skip(target, targetId);
    if (!namesMatch(a.name, b.name)) return false;
    switch (a.kind) {
      case "void":
        return b.kind === "void";
      case "fwd":
        if (b.kind === "fwd") return a.union === b.union;
        return behindPointer && b.kind === (a.union ? "union" : "struct");
      case "enum":
      case "enum64":
        return isEnum(b) && enumsMatch(a, b as typeof a);
      case "struct":
      case "union":
        if (behindPointer) {
          return a.kind === b.kind || (b.kind === "fwd" && b.union === (a.kind === "union"));
        }
        if (a.kind !== b.kind || a.members.length > b.members.length) return false;
        return a.members.every((m) =>
          (b as typeof a).members.some((n) =>
            namesMatch(m.name, n.name)
            && typesMatch(local, m.type, target, n.type, behindPointer, level - 1)
          )
        );
      case "int":
        return b.kind === "int" && a.size === b.size
          && (a.encoding === "signed") === (b.encoding === "signed");
      case "ptr":
        if (b.kind !== "ptr") return false;
        behindPointer = true;
        localId = a.type;
        targetId = b.type;
        continue;
      case "array":
        if (b.kind !== "array" || a.length !== b.length) return false;
        localId = a.type;
        targetId = b.type;
        continue;
      case "func_proto":
        if (b.kind !== "func_proto" || a.params.length !== b.params.length) return false;
        for (const [i, param] of a.params.entries()) {
          const other = b.params[i]!.type;
          if (!typesMatch(local, param.type, target, other, behindPointer, level - 1)) return false;
        }
        localId = a.type;
        targetId = b.type;
        continue;
      default:
        return false;
    }
  }
  throw new SpecError("types nest deeper than 32");
}

/** Every local enumerator named in the target, sizes equal. */
function enumsMatch(
  local: BtfType & { kind: "enum" | "enum64" },
  target: BtfType & { kind: "enum" | "enum64" },
): boolean {
  return local.size === target.size && local.values.length <= target.values.length
    && local.values.every((v) => target.values.some((w) => namesMatch(v.name, w.name)));
}
