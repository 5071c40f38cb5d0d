/**
 * CO-RE ("compile once, run everywhere"): the `.BTF.ext` relocations of an
 * object's instructions resolved against the running kernel's BTF and
 * written into the instructions, as libbpf's `bpf_object__relocate_core`
 * does: field offsets, sizes, existence, signedness and bitfield shifts;
 * type ids, existence, sizes and matches; enumerator existence and values.
 * Pure: the kernel's BTF is given, no kernel call is made.
 *
 * @module
 */

import { essentialName, type KernelType, type TargetBtf } from "../btf/kernel_btf.ts";
import { type BtfType, resolveType, sizeOfType, typeAt } from "../btf/types.ts";
import type { CoreRelocation } from "./btf_ext.ts";
import {
  type CoreKind,
  type CoreSpec,
  isEnumValueKind,
  isFieldKind,
  kindsCompatible,
  matchCoreSpec,
  parseCoreSpec,
} from "./core_spec.ts";
import type { ObjectSpec } from "./object.ts";
import type { ObjectProgram } from "./programs.ts";

/**
 * The helper id libbpf writes into an instruction whose relocation found
 * nothing in the kernel (`0xbad2310`, "bad relo"): code the program guards
 * with `bpf_core_field_exists` and friends is dead and the verifier drops
 * it; reached, the verifier refuses it with `invalid func unknown#195896080`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CORE_POISON } from "./core.ts";
 * assert.equal(CORE_POISON, 195896080);
 * assert.equal(CORE_POISON.toString(16), "bad2310");
 * ```
 */
export const CORE_POISON = 0xbad2310;

/**
 * A relocation that cannot be applied: the object's BTF or instruction do
 * not fit its record, or the kernel's types are ambiguous. libbpf fails
 * the load for these too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CoreRelocationError } from "./core.ts";
 *
 * const error = new CoreRelocationError("probe", 3, "field_byte_offset", "bad access");
 * assert.equal(error.message, "program probe: CO-RE relocation of instruction 3 (field_byte_offset): bad access");
 * assert.equal(error.insn, 3);
 * ```
 */
export class CoreRelocationError extends Error {
  /** The program's (or subprogram's) name. */
  readonly program: string;
  /** The instruction's index in the program. */
  readonly insn: number;
  readonly kind: string;

  constructor(program: string, insn: number, kind: string, why: string, options?: ErrorOptions) {
    super(`program ${program}: CO-RE relocation of instruction ${insn} (${kind}): ${why}`, options);
    this.name = "CoreRelocationError";
    this.program = program;
    this.insn = insn;
    this.kind = kind;
  }
}

/**
 * What one relocation writes: the value clang computed for the object's
 * own types (`expected`, checked against the instruction where it is
 * meaningful) and the kernel's (`value`), or poison.
 */
interface Resolution {
  readonly poison: boolean;
  readonly expected: bigint;
  readonly value: bigint;
  /** Check the instruction holds `expected` (libbpf's `validate`). */
  readonly validate: boolean;
  /** A load or store's size, local and in the kernel (0: not a sized field). */
  readonly localSize: number;
  readonly targetSize: number;
  /** The sizes differ and the field is not one a narrower or wider load reads right. */
  readonly badSizeChange: boolean;
}

/** The result of a calculation that found no kernel field: poison the instruction. */
const POISONED = Symbol("poison");

/**
 * The size of what a load or store of field `id` moves: an array's innermost
 * element, not the whole array (libbpf: "for arrays we care about individual
 * element sizes"), so that a local `a[2]` read against a kernel `a[4]` is not
 * taken for a size change and poisoned.
 */
function elementSize(types: readonly BtfType[], id: number): number {
  let resolved = resolveType(types, id);
  for (let type = typeAt(types, resolved); type.kind === "array"; type = typeAt(types, resolved)) {
    resolved = resolveType(types, type.type);
  }
  return sizeOfType(types, resolved);
}

/** A field's relocated value, size and type id in one spec (libbpf's `bpf_core_calc_field_relo`). */
function fieldValue(
  kind: CoreKind,
  spec: CoreSpec | undefined,
): { value: bigint; size: number; typeId: number; bitfield: boolean } | typeof POISONED {
  if (kind === "field_exists") {
    return { value: spec === undefined ? 0n : 1n, size: 0, typeId: 0, bitfield: false };
  }
  if (spec === undefined) return POISONED;
  const last = spec.accessors[spec.accessors.length - 1]!;
  if (last.name === undefined) {
    // An array element: its offset or size only.
    if (kind === "field_byte_offset") {
      const size = elementSize(spec.types, last.typeId);
      return { value: BigInt(spec.bitOffset / 8), size, typeId: last.typeId, bitfield: false };
    }
    if (kind === "field_byte_size") {
      // The whole element, an inner array included (libbpf's too): what sizeof says.
      const size = sizeOfType(spec.types, last.typeId);
      return { value: BigInt(size), size: 0, typeId: 0, bitfield: false };
    }
    throw new Error(`a ${kind} relocation cannot be applied to an array element`);
  }
  const holder = typeAt(spec.types, last.typeId) as BtfType & { kind: "struct" | "union" };
  const member = holder.members[last.index]!;
  const typeId = resolveType(spec.types, member.type);
  const type = typeAt(spec.types, typeId);
  const bitOffset = spec.bitOffset;
  let bitSize = member.bitSize;
  let byteSize: number;
  let byteOffset: number;
  const bitfield = bitSize > 0;
  if (bitfield) {
    // The smallest aligned load, from the field type's size up, that holds every bit.
    byteSize = sizeOfType(spec.types, typeId);
    byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    while (bitOffset + bitSize - byteOffset * 8 > byteSize * 8) {
      if (byteSize >= 8) throw new Error("a bitfield that no 64-bit load holds");
      byteSize *= 2;
      byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    }
  } else {
    byteSize = sizeOfType(spec.types, typeId);
    byteOffset = bitOffset / 8;
    bitSize = byteSize * 8;
  }
  // field_byte_size is the whole array's size (libbpf's byte_sz); a load moves one element.
  const result = (value: number | boolean) => ({
    value: BigInt(value),
    size: kind === "field_byte_offset" && !bitfield ? elementSize(spec.types, typeId) : 0,
    typeId,
    bitfield,
  });
  switch (kind) {
    case "field_byte_offset":
      return result(byteOffset);
    case "field_byte_size":
      return result(byteSize);
    case "field_signed":
      return result(
        ((type.kind === "enum" || type.kind === "enum64") && type.signed)
          || (type.kind === "int" && type.encoding === "signed"),
      );
    case "field_lshift_u64": // little-endian: the field's top bit to bit 63
      return result(64 - (bitOffset + bitSize - byteOffset * 8));
    case "field_rshift_u64":
      return result(64 - bitSize);
    default:
      throw new Error(`${kind} is no field relocation`);
  }
}

/** Field relocations: libbpf's field branch of `bpf_core_calc_relo`. */
function fieldResolution(
  kind: CoreKind,
  local: CoreSpec,
  target: CoreSpec | undefined,
): Resolution {
  const before = fieldValue(kind, local);
  const after = fieldValue(kind, target);
  if (before === POISONED) throw new Error("the object's own field is missing");
  // Bitfield offsets and shifts are the compiler's choice; signedness and right shifts are not.
  const validate = !before.bitfield || kind === "field_signed" || kind === "field_rshift_u64";
  if (after === POISONED) return { ...poisoned, expected: before.value, validate };
  let badSizeChange = false;
  if (before.size !== after.size) {
    // A narrower or wider load reads a pointer, or an unsigned int, right (zero-extended).
    const a = typeAt(local.types, before.typeId);
    const b = typeAt(target!.types, after.typeId);
    const unsigned = (t: BtfType) => t.kind === "int" && t.encoding !== "signed";
    badSizeChange = !(a.kind === "ptr" && b.kind === "ptr") && !(unsigned(a) && unsigned(b));
  }
  return {
    poison: false,
    expected: before.value,
    value: after.value,
    validate,
    localSize: before.size,
    targetSize: after.size,
    badSizeChange,
  };
}

const poisoned: Resolution = {
  poison: true,
  expected: 0n,
  value: 0n,
  validate: false,
  localSize: 0,
  targetSize: 0,
  badSizeChange: false,
};

const plain = (expected: bigint, value: bigint, validate = true): Resolution => ({
  ...poisoned,
  poison: false,
  expected,
  value,
  validate,
});

/** A type relocation's value in one spec (libbpf's `bpf_core_calc_type_relo`). */
function typeValue(kind: CoreKind, spec: CoreSpec | undefined): bigint {
  if (spec === undefined) return 0n;
  switch (kind) {
    case "type_id_target":
      return BigInt(spec.rootTypeId);
    case "type_exists":
    case "type_matches":
      return 1n;
    case "type_size":
      return BigInt(sizeOfType(spec.types, spec.rootTypeId));
    default:
      throw new Error(`${kind} is no type relocation`);
  }
}

/** An enumerator's value as libbpf reads it: a 32-bit one sign-extended, as a u64. */
function enumValue(spec: CoreSpec): bigint {
  const accessor = spec.accessors[0]!;
  const type = typeAt(spec.types, accessor.typeId) as BtfType & { kind: "enum" | "enum64" };
  const value = type.values[accessor.index]!.value;
  return BigInt.asUintN(64, type.kind === "enum" ? BigInt.asIntN(32, value) : value);
}

/** One relocation's result for one spec pair (libbpf's `bpf_core_calc_relo`). */
function resolution(kind: CoreKind, local: CoreSpec, target: CoreSpec | undefined): Resolution {
  if (isFieldKind(kind)) return fieldResolution(kind, local, target);
  if (isEnumValueKind(kind)) {
    if (kind === "enumval_exists") return plain(1n, target === undefined ? 0n : 1n);
    if (target === undefined) return { ...poisoned, expected: enumValue(local) };
    return plain(enumValue(local), enumValue(target));
  }
  // The type id in the instruction may have changed when objects were linked: not checked.
  return plain(typeValue(kind, local), typeValue(kind, target), kind !== "type_id_target");
}

/**
 * Resolves one relocation of the object's types against the kernel's
 * (libbpf's `bpf_core_calc_relo_insn`): every candidate of the root's
 * essential name and kind is matched; all that match must agree.
 */
function resolve(
  types: readonly BtfType[],
  relocation: CoreRelocation,
  kind: CoreKind,
  target: TargetBtf,
): Resolution {
  const local = parseCoreSpec(types, relocation.typeId, relocation.access, kind);
  if (kind === "type_id_local") {
    const id = BigInt(relocation.typeId);
    return plain(id, id, false);
  }
  const root = typeAt(types, relocation.typeId);
  if (root.name === "") throw new Error("an anonymous root type has no kernel counterpart");
  let found: { spec: CoreSpec; result: Resolution; candidate: KernelType } | undefined;
  for (
    const candidate of target.candidates(essentialName(root.name), (t) => kindsCompatible(t, root))
  ) {
    const spec = matchCoreSpec(local, kind, candidate.btf.types, candidate.id);
    if (spec === undefined) continue;
    const result = resolution(kind, local, spec);
    if (found === undefined) {
      found = { spec, result, candidate };
    } else if (spec.bitOffset !== found.spec.bitOffset) {
      throw new Error(
        `kernel types ${found.candidate.id} and ${candidate.id} put the field at bits `
          + `${found.spec.bitOffset} and ${spec.bitOffset}`,
      );
    } else if (result.poison !== found.result.poison || result.value !== found.result.value) {
      throw new Error(
        `kernel types ${found.candidate.id} and ${candidate.id} give ${found.result.value} `
          + `and ${result.value}`,
      );
    }
  }
  return found?.result ?? resolution(kind, local, undefined);
}

/** `BPF_CLASS`es of the instructions a relocation may patch. */
const LD = 0, LDX = 1, ST = 2, STX = 3, ALU = 4, ALU64 = 7;
const LD_IMM64 = 0x18;
const SIZE_BYTES = [4, 2, 1, 8]; // BPF_W, BPF_H, BPF_B, BPF_DW, by (code >> 3) & 3

/** Writes the call of helper {@linkcode CORE_POISON} at `at` (libbpf's `bpf_core_poison_insn`). */
function poison(view: DataView, at: number): void {
  view.setUint8(at, 0x85); // BPF_JMP | BPF_CALL
  view.setUint8(at + 1, 0); // dst_reg, src_reg
  view.setInt16(at + 2, 0, true);
  view.setInt32(at + 4, CORE_POISON, true);
}

/** Patches instruction `insn` with `result` (libbpf's `bpf_core_patch_insn`). */
function patch(view: DataView, insn: number, result: Resolution): void {
  const at = insn * 8;
  if (at + 8 > view.byteLength) throw new Error(`no instruction ${insn}`);
  const code = view.getUint8(at);
  const ldImm64 = code === LD_IMM64 && at + 16 <= view.byteLength;
  if (result.poison) {
    if (ldImm64) poison(view, at + 8);
    poison(view, at);
    return;
  }
  const { expected, value } = result;
  switch (code & 7) {
    case ALU:
    case ALU64: {
      if ((code & 0x08) !== 0) throw new Error("an ALU instruction with a register source");
      const imm = view.getInt32(at + 4, true);
      if (result.validate && BigInt.asUintN(64, BigInt(imm)) !== expected) {
        throw new Error(`the instruction holds ${imm}, ${expected} expected`);
      }
      view.setInt32(at + 4, Number(BigInt.asIntN(32, value)), true);
      return;
    }
    case LDX:
    case ST:
    case STX: {
      const off = view.getInt16(at + 2, true);
      if (result.validate && BigInt.asUintN(64, BigInt(off)) !== expected) {
        throw new Error(`the instruction's offset is ${off}, ${expected} expected`);
      }
      if (value > 0x7fffn) throw new Error(`offset ${value} does not fit an instruction`);
      if (result.badSizeChange) {
        // libbpf poisons rather than read a signed or differently typed field with the wrong size.
        poison(view, at);
        return;
      }
      view.setInt16(at + 2, Number(value), true);
      if (result.localSize !== result.targetSize) {
        const size = SIZE_BYTES[(code >> 3) & 3]!;
        if (size !== result.localSize) {
          throw new Error(`the instruction accesses ${size} bytes, ${result.localSize} expected`);
        }
        const sizeCode = SIZE_BYTES.indexOf(result.targetSize);
        if (sizeCode < 0) throw new Error(`no load or store of ${result.targetSize} bytes`);
        view.setUint8(at, (code & 0xe7) | (sizeCode << 3));
      }
      return;
    }
    case LD: {
      if (
        !ldImm64 || view.getUint8(at + 1) >> 4 !== 0 || view.getInt16(at + 2, true) !== 0
        || view.getUint32(at + 8, true) !== 0 // the second half's code, registers and offset
      ) {
        throw new Error("an ld_imm64 of an unexpected form");
      }
      const imm = BigInt(view.getUint32(at + 4, true))
        | (BigInt(view.getUint32(at + 12, true)) << 32n);
      if (result.validate && imm !== expected) {
        throw new Error(`the instruction holds ${imm}, ${expected} expected`);
      }
      view.setUint32(at + 4, Number(value & 0xffff_ffffn), true);
      view.setUint32(at + 12, Number((value >> 32n) & 0xffff_ffffn), true);
      return;
    }
    default:
      throw new Error(`instruction code 0x${code.toString(16)} cannot be relocated`);
  }
}

/** One program with its relocations applied to a copy of its instructions. */
function relocateProgram(program: ObjectProgram, types: readonly BtfType[], target: TargetBtf) {
  if (program.coreRelocations.length === 0) return program;
  const instructions = program.instructions.slice();
  const view = new DataView(instructions.buffer);
  for (const relocation of program.coreRelocations) {
    const kind = relocation.kindName;
    try {
      if (kind === "unknown") throw new Error(`relocation kind ${relocation.kind} is unknown`);
      patch(view, relocation.insn, resolve(types, relocation, kind, target));
    } catch (error) {
      throw new CoreRelocationError(
        program.name,
        relocation.insn,
        kind === "unknown" ? String(relocation.kind) : kind,
        `type ${relocation.typeId}, access "${relocation.access}": ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return { ...program, instructions };
}

/**
 * The object's programs and subprograms with every CO-RE relocation
 * applied against `target` (libbpf's `bpf_object__relocate_core`);
 * unresolvable ones poisoned as libbpf does, so guarded code still loads.
 * Returns a new ObjectSpec; the input is not modified.
 *
 * @throws {CoreRelocationError} for a relocation libbpf would refuse too: a record the object's
 *   BTF or instruction does not fit, or kernel types that disagree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { kernelBtf } from "../btf/kernel_btf.ts";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { applyCoreRelocations } from "./core.ts";
 * import { parseObject } from "./object.ts";
 *
 * // A local task_struct with one field: clang reads pid at offset 0.
 * const source = `
 *   struct task_struct { int pid; } __attribute__((preserve_access_index));
 *   __attribute__((section("tp_btf/sched_switch"), used))
 *   int probe(struct task_struct *task) { return task->pid; }`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * const object = parseObject(new Uint8Array(execFileSync("clang", args, { input: source })));
 * const kernel = kernelBtf(liveKernel()); // read through the kernel's backend, as a loader reads it
 * const relocated = applyCoreRelocations(object, kernel);
 *
 * const load = (insns: Uint8Array) => new DataView(insns.buffer, insns.byteOffset).getInt16(2, true);
 * const pidOffset = (() => {
 *   const { btf, id } = kernel.find("task_struct", "struct")!;
 *   const task = btf.types[id] as { members: { name: string; bitOffset: number }[] };
 *   return task.members.find((m) => m.name === "pid")!.bitOffset / 8;
 * })();
 * assert.equal(load(object.programs[0]!.instructions), 0); // as compiled
 * assert.equal(load(relocated.programs[0]!.instructions), pidOffset); // the kernel's offset
 * assert.ok(pidOffset > 0);
 * ```
 */
export function applyCoreRelocations(spec: ObjectSpec, target: TargetBtf): ObjectSpec {
  const hasRelocations = [...spec.programs, ...spec.subprograms].some((p) =>
    p.coreRelocations.length > 0
  );
  if (!hasRelocations) return { ...spec };
  const types = spec.btf?.types;
  if (types === undefined) throw new TypeError("the object has CO-RE relocations but no .BTF");
  return {
    ...spec,
    programs: spec.programs.map((p) => relocateProgram(p, types, target)),
    subprograms: spec.subprograms.map((p) => relocateProgram(p, types, target)),
  };
}
