/**
 * Programs and subprograms of an object, and their relocations resolved to
 * what they reference, as libbpf's `bpf_program__record_reloc` sorts them.
 * Nothing is applied: patching an instruction needs the map's fd or the
 * subprogram's final place, which only the loader knows.
 *
 * @module
 */

import type { CoreRelocation, FuncInfo, LineInfo } from "./btf_ext.ts";
import {
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  SHN_UNDEF,
  STB_LOCAL,
  STT_FUNC,
} from "./elf.ts";
import { ObjectFormatError } from "./errors.ts";
import { type ProgramSection, programSection } from "./sections.ts";

/** `BPF_JMP | BPF_CALL`. */
const CALL = 0x85;
/** `BPF_LD | BPF_IMM | BPF_DW`: the 16-byte 64-bit immediate load. */
const LD_IMM64 = 0x18;
/** `BPF_PSEUDO_CALL`: a call's `src_reg` for a bpf-to-bpf call. */
const BPF_PSEUDO_CALL = 1;
const INSN = 8;

/**
 * One relocation of a program, with `insn` its instruction index from the
 * program's first instruction. What the loader does with each:
 *
 * - `map`: `ld_imm64` of a `.maps` map: `src_reg = BPF_PSEUDO_MAP_FD`, `imm` = the map's fd.
 * - `data`: `ld_imm64` of a global variable: `src_reg = BPF_PSEUDO_MAP_VALUE`, `imm` = the data
 *   map's fd, the second instruction's `imm` = `offset`.
 * - `call`: a bpf-to-bpf call of `target` (a `.text` function at `targetInsn` of `.text`), by an
 *   ELF relocation or, between two `.text` functions, by the call's own `imm`: the loader appends
 *   the subprogram and sets `imm` to the distance to it, less one.
 * - `functionAddress`: `ld_imm64` of a function's address (a callback, as `bpf_loop` takes):
 *   `src_reg = BPF_PSEUDO_FUNC`, `imm` as for a call.
 * - `extern`: `ld_imm64` of a `.kconfig` variable (a load from the kconfig map) or a `.ksyms`
 *   variable (its BTF id, `BPF_PSEUDO_BTF_ID`, or its address when typeless); `call` is a kfunc call
 *   (`src_reg = BPF_PSEUDO_KFUNC_CALL`, `imm` = its BTF id in the kernel).
 */
export type ProgramRelocation =
  | { readonly kind: "map"; readonly insn: number; readonly map: string }
  | {
    readonly kind: "data";
    readonly insn: number;
    /** The data map's name in {@linkcode ObjectSpec.maps}: its section's name. */
    readonly map: string;
    /** The byte offset of the variable in the section. */
    readonly offset: number;
  }
  | {
    readonly kind: "call" | "functionAddress";
    readonly insn: number;
    readonly target: string;
    readonly targetInsn: number;
  }
  | {
    readonly kind: "extern";
    readonly insn: number;
    readonly name: string;
    readonly call: boolean;
  };

/** A program, or a `.text` subprogram. */
export interface ObjectProgram {
  /** The function's name (the kernel keeps 15 characters). */
  readonly name: string;
  /** Its ELF section's name: `xdp`, `tracepoint/syscalls/sys_enter_execve`, `.text`. */
  readonly section: string;
  /**
   * What libbpf's table says of the section: program type, expected attach type, attach
   * target; `undefined` for `.text` and for a name libbpf does not know.
   */
  readonly type: ProgramSection | undefined;
  /** Its first instruction's index in its section. */
  readonly sectionInsn: number;
  /** The instructions, 8 bytes each, as clang wrote them (its own buffer). */
  readonly instructions: Uint8Array;
  /** A global function (`STB_GLOBAL`/`STB_WEAK`); a `.text` static one is verified with its caller. */
  readonly global: boolean;
  readonly relocations: readonly ProgramRelocation[];
  /** `.BTF.ext` records of its instructions, `insn` from its first instruction. */
  readonly funcInfo: readonly FuncInfo[];
  readonly lineInfo: readonly LineInfo[];
  readonly coreRelocations: readonly CoreRelocation[];
}

/** What a relocation's symbol can resolve to, given by the object reader. */
export interface SymbolTargets {
  /** The `.maps` map whose variable starts at `offset` of `.maps`. */
  mapAt(offset: number): string | undefined;
  /** The name of the data map of section `index`, if it is one. */
  dataMapOf(index: number): string | undefined;
  /** The index of `.maps`, 0 if none. */
  readonly mapsSection: number;
}

/** The functions of one code section, each with its symbol. */
interface Functions {
  readonly section: ElfSection;
  readonly functions: readonly ElfSymbol[];
}

/**
 * The function symbols of a code section, each checked to lie whole
 * within it on instruction boundaries.
 */
export function functionsOf(elf: ElfFile, section: ElfSection): Functions {
  const functions = elf.symbols
    .filter((symbol) => symbol.section === section.index && symbol.type === STT_FUNC)
    .sort((a, b) => a.value - b.value);
  const at = (symbol: ElfSymbol) => {
    const table = elf.sections.find((s) => s.type === 2)!;
    return table.offset + symbol.index * 24;
  };
  for (const symbol of functions) {
    if (symbol.value % INSN !== 0 || symbol.size % INSN !== 0 || symbol.size === 0) {
      throw new ObjectFormatError(
        `function '${symbol.name}': ${symbol.size} bytes at ${symbol.value} are not whole instructions`,
        at(symbol),
      );
    }
    if (symbol.value + symbol.size > section.size) {
      throw new ObjectFormatError(
        `function '${symbol.name}' runs past the end of ${section.name} (${section.size} bytes)`,
        at(symbol),
      );
    }
  }
  return { section, functions };
}

/**
 * The programs (or subprograms) of one code section with their
 * relocations, read from `rel` (its `SHT_REL` section, if any).
 */
export function programsOf(
  elf: ElfFile,
  code: Functions,
  rel: ElfSection | undefined,
  text: Functions | undefined,
  targets: SymbolTargets,
): ObjectProgram[] {
  const { section, functions } = code;
  const bytes = elf.bytes(section);
  const isText = section.name === ".text";
  const type = isText ? undefined : programSection(section.name);
  const relocations = rel === undefined ? [] : elf.relocations(rel);
  const byFunction = new Map<ElfSymbol, ProgramRelocation[]>(functions.map((f) => [f, []]));
  for (const relocation of relocations) {
    const at = rel!.offset + relocations.indexOf(relocation) * 16;
    const fail = (message: string): never => {
      throw new ObjectFormatError(`${rel!.name}: ${message}`, at);
    };
    const owner = functions.find((f) =>
      relocation.offset >= f.value && relocation.offset < f.value + f.size
    );
    if (owner === undefined) {
      fail(`r_offset ${relocation.offset} is in no function of ${section.name}`);
    }
    if (relocation.offset % INSN !== 0) fail(`r_offset ${relocation.offset} is not an instruction`);
    const symbol = elf.symbols[relocation.symbol]!;
    const insn = (relocation.offset - owner!.value) / INSN;
    byFunction.get(owner!)!.push(
      resolve(elf, bytes, relocation.offset, insn, symbol, text, targets, fail),
    );
  }
  return functions.map((symbol) => {
    if (!isText && symbol.binding === STB_LOCAL) {
      throw new ObjectFormatError(
        `program '${symbol.name}' in ${section.name} is static: libbpf refuses static programs`,
        section.offset + symbol.value,
      );
    }
    const own = byFunction.get(symbol)!;
    unrelocatedCalls(bytes, section, symbol, own, text);
    return {
      name: symbol.name,
      section: section.name,
      type,
      sectionInsn: symbol.value / INSN,
      instructions: bytes.slice(symbol.value, symbol.value + symbol.size),
      global: symbol.binding !== STB_LOCAL,
      relocations: own,
      funcInfo: [],
      lineInfo: [],
      coreRelocations: [],
    };
  });
}

/**
 * Adds to `own` the calls of `fn` that have no relocation, in instruction
 * order. clang resolves a call between two functions of one section itself,
 * relative to the section (libbpf's `bpf_object__reloc_code` reads it as
 * `sec_insn_off + insn + imm + 1`): only `.text` can hold such a pair, a
 * program section's static functions being refused and calls to its global
 * ones relocated. Elsewhere the call is refused here, where the kernel would
 * only say "call to invalid destination".
 */
function unrelocatedCalls(
  bytes: Uint8Array,
  section: ElfSection,
  fn: ElfSymbol,
  own: ProgramRelocation[],
  text: Functions | undefined,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const relocated = new Set(own.map((r) => r.insn));
  const before = own.length;
  for (let insn = 0; insn < fn.size / INSN; insn++) {
    const offset = fn.value + insn * INSN;
    if (bytes[offset] !== CALL || bytes[offset + 1]! >>> 4 !== BPF_PSEUDO_CALL) continue;
    if (relocated.has(insn)) continue;
    const fail = (message: string): never => {
      throw new ObjectFormatError(`${section.name}: ${message}`, section.offset + offset);
    };
    if (section.name !== ".text") {
      fail(`instruction ${insn} of '${fn.name}' is a bpf-to-bpf call with no relocation`);
    }
    const targetInsn = fn.value / INSN + insn + view.getInt32(offset + 4, true) + 1;
    own.push({ kind: "call", insn, ...callTarget(fn, targetInsn, text, fail) });
  }
  // The loader places subprograms in the order calls reach them, as libbpf walks instructions.
  if (own.length > before) own.sort((a, b) => a.insn - b.insn);
}

/** One relocation, sorted as libbpf sorts it. */
function resolve(
  elf: ElfFile,
  bytes: Uint8Array,
  offset: number,
  insn: number,
  symbol: ElfSymbol,
  text: Functions | undefined,
  targets: SymbolTargets,
  fail: (message: string) => never,
): ProgramRelocation {
  const code = bytes[offset]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const imm = view.getInt32(offset + 4, true);
  const isExtern = symbol.section === SHN_UNDEF && symbol.binding !== STB_LOCAL;
  if (code === CALL) {
    if (isExtern) return { kind: "extern", insn, name: symbol.name, call: true };
    if ((bytes[offset + 1]! >>> 4) !== BPF_PSEUDO_CALL) {
      fail(`the call at instruction ${insn} of '${symbol.name}' is not a bpf-to-bpf call`);
    }
    const targetInsn = symbol.value / INSN + imm + 1;
    return { kind: "call", insn, ...callTarget(symbol, targetInsn, text, fail) };
  }
  if (code !== LD_IMM64) {
    return fail(
      `instruction ${insn} (code 0x${code.toString(16)}) is neither a call nor a 64-bit load`,
    );
  }
  if (offset + 2 * INSN > bytes.byteLength) fail(`the 64-bit load at ${offset} is cut short`);
  if (isExtern) return { kind: "extern", insn, name: symbol.name, call: false };
  if (text !== undefined && symbol.section === text.section.index) {
    const targetInsn = (symbol.value + imm) / INSN;
    return { kind: "functionAddress", insn, ...callTarget(symbol, targetInsn, text, fail) };
  }
  if (symbol.section === targets.mapsSection && targets.mapsSection !== 0) {
    const map = targets.mapAt(symbol.value);
    if (map === undefined) fail(`no map at ${symbol.value} of .maps ('${symbol.name}')`);
    return { kind: "map", insn, map: map! };
  }
  const data = targets.dataMapOf(symbol.section);
  if (data !== undefined) return { kind: "data", insn, map: data, offset: symbol.value + imm };
  const where = symbol.section < elf.sections.length
    ? elf.sections[symbol.section]!.name
    : `section ${symbol.section}`;
  return fail(
    `instruction ${insn} refers to '${symbol.name}' in ${where}, not a map, data or code`,
  );
}

function callTarget(
  symbol: ElfSymbol,
  targetInsn: number,
  text: Functions | undefined,
  fail: (message: string) => never,
): { target: string; targetInsn: number } {
  const target = text?.functions.find((f) => f.value === targetInsn * INSN);
  if (text === undefined || symbol.section !== text.section.index || target === undefined) {
    return fail(
      `a call of '${symbol.name}' to instruction ${targetInsn} reaches no .text function`,
    );
  }
  return { target: target.name, targetInsn };
}
