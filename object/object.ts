/**
 * `parseObject`: a BPF object file as clang writes it, read into what a
 * loader needs: the license and kernel version, the programs with their
 * relocations, the maps as specs `BpfMap.create` takes, externs, `.BTF` and
 * `.BTF.ext`. Pure parsing: no kernel call.
 *
 * @module
 */

import { type BtfType, parseBtf, sizeOfType } from "../btf/types.ts";
import { BPF_F_RDONLY_PROG } from "../ffi/commands.ts";
import { checkBytes } from "../ffi/validate.ts";
import { type BtfExt, type BtfExtSection, parseBtfExt } from "./btf_ext.ts";
import {
  ElfFile,
  type ElfSection,
  type ElfSymbol,
  SHF_EXECINSTR,
  SHN_UNDEF,
  SHT_NOBITS,
  SHT_PROGBITS,
  SHT_REL,
  STB_WEAK,
  STT_OBJECT,
} from "./elf.ts";
import { ObjectFormatError } from "./errors.ts";
import {
  BPF_F_MMAPABLE,
  btfMaps,
  dataMap,
  dataMapName,
  dataSectionKind,
  type ObjectMap,
  type SlotReference,
} from "./maps.ts";
import { functionsOf, type ObjectProgram, programsOf } from "./programs.ts";

/** An extern variable or function the loader resolves from the running kernel. */
export interface ExternSpec {
  readonly name: string;
  /** `.kconfig`: a `CONFIG_*` value or `LINUX_KERNEL_VERSION`; `.ksyms`: a kernel symbol or kfunc. */
  readonly kind: "kconfig" | "ksym";
  /** Declared `__weak`: missing from the kernel, it reads as zero instead of failing the load. */
  readonly weak: boolean;
  /** Its BTF type id in `.BTF` (a `VAR`, or a `FUNC` for a kfunc); 0 for none. */
  readonly typeId: number;
  /** A kfunc (a `FUNC` in `.ksyms`). */
  readonly function: boolean;
  /** kconfig: its byte offset in the `.kconfig` map, laid out as libbpf does; 0 otherwise. */
  readonly offset: number;
  /** kconfig: its size in bytes; 0 otherwise. */
  readonly size: number;
}

/** What {@linkcode parseObject} finds in an object. */
export interface ObjectSpec {
  /** The `license` section's string (`"GPL"`, `"Dual BSD/GPL"`), "" if there is none. */
  readonly license: string;
  /** The `version` section's u32, if there is one (old kprobe loaders wanted it). */
  readonly kernelVersion?: number;
  /** One per function of an executable section other than `.text`, in section order. */
  readonly programs: readonly ObjectProgram[];
  /** The functions of `.text`: the subprograms programs call. */
  readonly subprograms: readonly ObjectProgram[];
  /** `.maps` maps, then global data maps, then the `.kconfig` map if externs need it. */
  readonly maps: readonly ObjectMap[];
  readonly externs: readonly ExternSpec[];
  /**
   * `.BTF`: its bytes for `BPF_BTF_LOAD` (its own copy, finalized as libbpf
   * finalizes it: see {@linkcode finalizeBtf}), and its types as clang wrote
   * them (the local types of CO-RE, the externs' own types).
   */
  readonly btf?: { readonly bytes: Uint8Array; readonly types: readonly BtfType[] };
  /** `.BTF.ext`, by section (each program also has its own records). */
  readonly btfExt?: BtfExt;
}

/** Options of {@linkcode parseObject}. */
export interface ParseObjectOptions {
  /**
   * The object's name, which libbpf puts before its global data maps'
   * names (`prog.bss`): see {@linkcode objectName}. Default "": `.bss`.
   */
  name?: string;
}

/**
 * libbpf's name of an object at `path`: its file name up to the first dot,
 * of its first 15 characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { objectName } from "./object.ts";
 * assert.equal(objectName("/tmp/build/maps.bpf.o"), "maps");
 * assert.equal(objectName("an_object_named_at_length.o"), "an_object_named");
 * ```
 */
export function objectName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1).slice(0, 15);
  const dot = base.indexOf(".");
  return dot < 0 ? base : base.slice(0, dot);
}

const decoder = new TextDecoder();

/**
 * Reads a BPF object file (little-endian ELF64 for `EM_BPF`, from `clang -g
 * -O2 -target bpf -c`). The bytes are copied first: what it returns never
 * shares memory with them, nor one result with another.
 *
 * @throws {TypeError} if `bytes` is not a Uint8Array.
 * @throws {ObjectFormatError} for a file that is not such an object, or is truncated, or whose
 *   tables point outside it, or whose maps or relocations libbpf would refuse.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { parseObject } from "./object.ts";
 *
 * const source = `
 *   int limit = 10;
 *   static __attribute__((noinline)) int twice(int x) { return 2 * x; }
 *   __attribute__((section("xdp"), used)) int pass(void *ctx) { return twice(limit) > 5 ? 2 : 1; }
 *   char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * const object = parseObject(new Uint8Array(execFileSync("clang", args, { input: source })), {
 *   name: "demo",
 * });
 * assert.equal(object.license, "GPL");
 * const pass = object.programs[0]!;
 * assert.equal(pass.name, "pass");
 * assert.equal(pass.type?.programType, 6); // BPF_PROG_TYPE_XDP
 * assert.deepEqual(pass.relocations.map((r) => r.kind), ["data", "call"]);
 * assert.deepEqual(object.subprograms.map((f) => f.name), ["twice"]);
 * assert.equal(object.maps[0]?.spec.name, "demo.data");
 * assert.deepEqual(object.maps[0]?.data, new Uint8Array([10, 0, 0, 0]));
 * ```
 */
export function parseObject(bytes: Uint8Array, options: ParseObjectOptions = {}): ObjectSpec {
  checkBytes(bytes, "bytes");
  const name = options.name ?? "";
  if (typeof name !== "string") throw new TypeError("options.name must be a string");
  // Our own copy: nothing the caller does later changes what we read or return.
  const elf = new ElfFile(Uint8Array.prototype.slice.call(bytes));
  const license = licenseOf(elf);
  const kernelVersion = kernelVersionOf(elf);

  const btfSection = elf.sectionByName(".BTF");
  let btf: ObjectSpec["btf"];
  if (btfSection !== undefined) {
    const blob = elf.bytes(btfSection).slice();
    try {
      btf = { bytes: blob, types: parseBtf(blob) };
    } catch (error) {
      throw new ObjectFormatError(`.BTF: ${(error as Error).message}`, btfSection.offset);
    }
  }
  const extSection = elf.sectionByName(".BTF.ext");
  const btfExt = extSection === undefined || btf === undefined
    ? undefined
    : parseBtfExt(elf.bytes(extSection), btf.bytes, extSection.offset);
  const types = btf?.types ?? [];

  // Maps: .maps, then global data (by section index), then .kconfig.
  const mapsSection = elf.sectionByName(".maps");
  const maps: ObjectMap[] = [];
  if (mapsSection !== undefined) {
    const symbols = elf.symbols
      .filter((s) => s.section === mapsSection.index && s.type === STT_OBJECT)
      .map((s) => ({ name: s.name, offset: s.value, size: s.size }));
    maps.push(...btfMaps(types, symbols, slotReferences(elf, mapsSection), mapsSection.offset));
  }
  const dataMaps = new Map<number, string>();
  for (const section of elf.sections) {
    const kind = dataSectionKind(section.name);
    const holdsData = kind === "bss" ? section.type === SHT_NOBITS : section.type === SHT_PROGBITS;
    if (kind === undefined || !holdsData || section.size === 0) continue;
    const datasec = types.findIndex((t) => t.kind === "datasec" && t.name === section.name);
    const map = dataMap(
      name,
      section.name,
      elf.bytes(section),
      Math.max(datasec, 0),
      section.offset,
      datasec > 0 && hasGlobalVariable(types, datasec),
    );
    dataMaps.set(section.index, map.name);
    maps.push(map);
  }
  const externs = externsOf(elf, types);
  const kconfigSize = externs.reduce((end, e) => Math.max(end, e.offset + e.size), 0);
  if (kconfigSize > 0) {
    const kconfigId = types.findIndex((t) => t.kind === "datasec" && t.name === ".kconfig");
    maps.push({
      name: ".kconfig",
      kind: "kconfig",
      section: ".kconfig",
      offset: 0,
      spec: {
        type: "array",
        keySize: 4,
        valueSize: kconfigSize,
        maxEntries: 1,
        flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE,
        name: dataMapName(name, ".kconfig"),
        freeze: true,
      },
      btfKeyTypeId: 0,
      btfValueTypeId: Math.max(kconfigId, 0),
      pinning: "none",
      numaNode: 0,
      initialSlots: [],
    });
  }

  // Programs and subprograms.
  const code = elf.sections.filter((s) =>
    s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0
  );
  const textSection = code.find((s) => s.name === ".text");
  const text = textSection === undefined ? undefined : functionsOf(elf, textSection);
  const targets = {
    mapsSection: mapsSection?.index ?? 0,
    mapAt: (offset: number) => maps.find((m) => m.kind === "btf" && m.offset === offset)?.name,
    dataMapOf: (index: number) => dataMaps.get(index),
  };
  const programs: ObjectProgram[] = [];
  let subprograms: ObjectProgram[] = [];
  for (const section of code) {
    const rel = elf.sections.find((s) => s.type === SHT_REL && s.info === section.index);
    const functions = section === textSection ? text! : functionsOf(elf, section);
    const found = programsOf(elf, functions, rel, text, targets).map((program) =>
      withBtfExt(program, btfExt)
    );
    if (section === textSection) subprograms = found;
    else programs.push(...found);
  }
  checkSlots(maps, programs, mapsSection?.offset ?? 0);
  if (btf !== undefined) {
    const bytes = finalizeBtf(elf, btf, externs, kconfigSize, btfSection!.offset);
    btf = { bytes, types: btf.types };
  }
  const spec = { license, programs, subprograms, maps, externs };
  return {
    ...spec,
    ...(kernelVersion === undefined ? {} : { kernelVersion }),
    ...(btf === undefined ? {} : { btf }),
    ...(btfExt === undefined ? {} : { btfExt }),
  };
}

function licenseOf(elf: ElfFile): string {
  const section = elf.sectionByName("license");
  if (section === undefined) return "";
  const bytes = elf.bytes(section);
  const end = bytes.indexOf(0);
  if (end < 0) throw new ObjectFormatError("license: no NUL ends the string", section.offset);
  return decoder.decode(bytes.subarray(0, end));
}

function kernelVersionOf(elf: ElfFile): number | undefined {
  const section = elf.sectionByName("version");
  if (section === undefined) return undefined;
  if (section.size !== 4) {
    throw new ObjectFormatError(`version: ${section.size} bytes, a u32 expected`, section.offset);
  }
  const bytes = elf.bytes(section);
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}

/** The `.rel.maps` relocations: `values` slots of maps of maps and prog_arrays. */
function slotReferences(elf: ElfFile, maps: ElfSection): SlotReference[] {
  const rel = elf.sections.find((s) => s.type === SHT_REL && s.info === maps.index);
  if (rel === undefined) return [];
  return elf.relocations(rel).map((relocation, i) => ({
    offset: relocation.offset,
    name: elf.symbols[relocation.symbol]!.name,
    at: rel.offset + i * 16,
  }));
}

/**
 * Checks that each `values` slot names what its map holds: a `.maps` map
 * in a map of maps, a program in a prog_array (libbpf refuses the object
 * otherwise).
 */
function checkSlots(maps: readonly ObjectMap[], programs: readonly ObjectProgram[], at: number) {
  for (const map of maps) {
    const ofMaps = map.inner !== undefined;
    for (const { index, name } of map.initialSlots) {
      const found = ofMaps
        ? maps.some((m) => m.kind === "btf" && m.name === name && m !== map)
        : programs.some((p) => p.name === name);
      if (!found) {
        throw new ObjectFormatError(
          `map '${map.name}': slot ${index} names '${name}', which is no ${
            ofMaps ? "other map of .maps" : "program"
          }`,
          at,
        );
      }
    }
  }
}

/** Whether a DATASEC holds a variable that is not static (libbpf then makes its map mmapable). */
function hasGlobalVariable(types: readonly BtfType[], datasec: number): boolean {
  const type = types[datasec];
  return type?.kind === "datasec"
    && type.vars.some((v) => {
      const variable = types[v.type];
      return variable?.kind === "var" && variable.linkage !== 0;
    });
}

/**
 * The externs of the symbol table, sorted as libbpf sorts them (kconfig
 * before ksyms; kconfig by alignment, largest first, then name), kconfig
 * ones laid out in the `.kconfig` map in that order.
 */
function externsOf(elf: ElfFile, types: readonly BtfType[]): ExternSpec[] {
  const found: (ExternSpec & { align: number })[] = [];
  for (const symbol of elf.symbols) {
    if (symbol.section !== SHN_UNDEF || symbol.binding === 0 || symbol.name === "") continue;
    const at = (elf.sections.find((s) => s.type === 2)?.offset ?? 0) + symbol.index * 24;
    const home = externHome(types, symbol.name);
    if (home === undefined) {
      throw new ObjectFormatError(
        `extern '${symbol.name}' is in no .kconfig or .ksyms DATASEC of .BTF`,
        at,
      );
    }
    const [size, align]: [number, number] = home.kind === "kconfig"
      ? kconfigLayout(types, home.typeId)
      : [0, 1];
    found.push({
      name: symbol.name,
      kind: home.kind,
      weak: symbol.binding === STB_WEAK,
      typeId: home.typeId,
      function: home.function,
      offset: 0,
      size,
      align,
    });
  }
  found.sort((a, b) =>
    a.kind !== b.kind
      ? (a.kind === "kconfig" ? -1 : 1)
      : a.kind === "kconfig" && a.align !== b.align
      ? b.align - a.align
      : a.name < b.name
      ? -1
      : a.name > b.name
      ? 1
      : 0
  );
  let end = 0;
  return found.map(({ align, ...extern }) => {
    if (extern.kind !== "kconfig") return extern;
    const offset = Math.ceil(end / align) * align;
    end = offset + extern.size;
    return { ...extern, offset };
  });
}

function externHome(
  types: readonly BtfType[],
  name: string,
): { kind: "kconfig" | "ksym"; typeId: number; function: boolean } | undefined {
  for (const type of types) {
    if (type.kind !== "datasec" || (type.name !== ".kconfig" && type.name !== ".ksyms")) continue;
    for (const v of type.vars) {
      const variable = types[v.type];
      if (variable?.name !== name) continue;
      if (variable.kind !== "var" && variable.kind !== "func") continue;
      return {
        kind: type.name === ".kconfig" ? "kconfig" : "ksym",
        typeId: v.type,
        function: variable.kind === "func",
      };
    }
  }
  return undefined;
}

/** A kconfig extern's size and alignment, from its VAR's type. */
function kconfigLayout(types: readonly BtfType[], varId: number): [number, number] {
  const variable = types[varId];
  if (variable?.kind !== "var") return [0, 1];
  let size: number;
  try {
    size = sizeOfType(types, variable.type);
  } catch {
    return [0, 1];
  }
  let element = variable.type;
  for (let hops = 0; hops < 32; hops++) {
    const t = types[element];
    if (t === undefined) break;
    if (t.kind === "array") element = t.type;
    else if (t.kind === "typedef" || t.kind === "const" || t.kind === "volatile") element = t.type;
    else break;
  }
  let align = 1;
  try {
    align = Math.min(8, Math.max(1, sizeOfType(types, element)));
  } catch {
    align = 1;
  }
  return [size, align];
}

/** A program with the `.BTF.ext` records of its instructions, counted from its first. */
function withBtfExt(program: ObjectProgram, ext: BtfExt | undefined): ObjectProgram {
  if (ext === undefined) return program;
  const start = program.sectionInsn;
  const end = start + program.instructions.byteLength / 8;
  const mine = <T extends { insn: number }>(sections: readonly BtfExtSection<T>[]): T[] =>
    sections
      .filter((s) => s.section === program.section)
      .flatMap((s) => s.records)
      .filter((r) => r.insn >= start && r.insn < end)
      .map((r) => ({ ...r, insn: r.insn - start }));
  return {
    ...program,
    funcInfo: mine(ext.funcInfo),
    lineInfo: mine(ext.lineInfo),
    coreRelocations: mine(ext.coreRelocations),
  };
}

/** BTF kinds' bytes after the 12-byte common header: fixed, and per `vlen` member. */
const KIND_EXTRA: Record<number, [fixed: number, perMember: number]> = {
  1: [4, 0], // int
  3: [12, 0], // array
  4: [0, 12], // struct
  5: [0, 12], // union
  6: [0, 8], // enum
  13: [0, 8], // func_proto
  14: [4, 0], // var
  15: [0, 12], // datasec
  17: [4, 0], // decl_tag
  19: [0, 12], // enum64
};
const BTF_KIND_VAR = 14;
const BTF_VAR_STATIC = 0;
const BTF_VAR_GLOBAL_ALLOCATED = 1;
const BTF_FUNC_GLOBAL = 1;
/** `STV_INTERNAL`, `STV_HIDDEN`: a global variable no other object sees, static to the kernel. */
const HIDDEN_VISIBILITY = new Set([1, 2]);

/**
 * `.BTF` as the kernel takes it, finalized as libbpf's
 * `bpf_object__collect_externs` and `btf_fixup_datasec` finalize it:
 *
 * - a data section's DATASEC (size 0 as clang leaves it): the section's size, each variable at its
 *   symbol's offset, a hidden one made static; the variables then sorted by offset;
 * - `.kconfig`: its size and variables' offsets those of the kconfig map, extern variables made
 *   allocated globals (the kernel refuses extern variables);
 * - `.ksyms`: 4 bytes for each, variables made allocated `int`s, kfuncs (`FUNC`s, which a DATASEC
 *   cannot hold) made global and replaced in it by one `int` variable appended to the types (its
 *   name the first kfunc's, as their unnamed parameters take it).
 *
 * The types keep their ids: only that one variable is added, after the last.
 */
function finalizeBtf(
  elf: ElfFile,
  btf: NonNullable<ObjectSpec["btf"]>,
  externs: readonly ExternSpec[],
  kconfigSize: number,
  at: number,
): Uint8Array {
  const { types } = btf;
  const blob = btf.bytes.slice();
  const view = new DataView(blob.buffer);
  const u32 = (offset: number) => view.getUint32(offset, true);
  const set = (offset: number, value: number) => view.setUint32(offset, value, true);
  const headerLength = u32(4);
  const typesEnd = headerLength + u32(8) + u32(12);
  // Where each type starts in the blob, by id.
  const starts = [0];
  for (let p = headerLength + u32(8); p < typesEnd;) {
    starts.push(p);
    const [fixed, perMember] = KIND_EXTRA[(u32(p + 4) >>> 24) & 0x1f] ?? [0, 0];
    p += 12 + fixed + perMember * (u32(p + 4) & 0xffff);
  }
  const dummyId = types.length;
  let dummyName: number | undefined;
  const int = types.findIndex((t) => t.kind === "int" && t.size === 4);
  types.forEach((type, id) => {
    if (type.kind !== "datasec") return;
    const infos = type.vars.map((_, i) => starts[id]! + 12 + i * 12);
    if (type.name === ".kconfig") {
      set(starts[id]! + 8, kconfigSize);
      for (const info of infos) {
        const extern = externs.find((e) => e.typeId === u32(info));
        if (extern !== undefined) set(info + 4, extern.offset);
        if (types[u32(info)]?.kind === "var") {
          set(starts[u32(info)]! + 12, BTF_VAR_GLOBAL_ALLOCATED);
        }
      }
      sortVars(view, infos);
    } else if (type.name === ".ksyms") {
      if (int < 0) throw new ObjectFormatError(".BTF: .ksyms externs need a 4-byte int type", at);
      infos.forEach((info, i) => {
        const target = u32(info);
        const start = starts[target]!;
        const t = types[target];
        if (t?.kind === "func") {
          dummyName ??= u32(start);
          set(info, dummyId);
          set(start + 4, (u32(start + 4) & ~0xffff) | BTF_FUNC_GLOBAL);
          const proto = types[t.type];
          if (proto?.kind === "func_proto") {
            proto.params.forEach((param, j) => {
              const name = starts[t.type]! + 12 + 8 * j;
              if (param.type !== 0 && u32(name) === 0) set(name, dummyName!);
            });
          }
        } else if (t?.kind === "var") {
          set(start + 8, int);
          set(start + 12, BTF_VAR_GLOBAL_ALLOCATED);
        }
        set(info + 4, 4 * i);
        set(info + 8, 4);
      });
      set(starts[id]! + 8, 4 * infos.length);
    } else {
      fixDataDatasec(elf, types, type.name, starts[id]!, infos, view, starts);
    }
  });
  if (dummyName === undefined) return blob;
  // The variable kfuncs stand for in .ksyms, added after the last type (the strings follow).
  const dummy = new Uint8Array(16);
  const dummyView = new DataView(dummy.buffer);
  dummyView.setUint32(0, dummyName, true);
  dummyView.setUint32(4, BTF_KIND_VAR << 24, true);
  dummyView.setUint32(8, int, true);
  dummyView.setUint32(12, BTF_VAR_GLOBAL_ALLOCATED, true);
  const grown = new Uint8Array(blob.byteLength + 16);
  grown.set(blob.subarray(0, typesEnd));
  grown.set(dummy, typesEnd);
  grown.set(blob.subarray(typesEnd), typesEnd + 16);
  const header = new DataView(grown.buffer);
  header.setUint32(12, u32(12) + 16, true); // type_len
  if (u32(16) >= u32(8) + u32(12)) header.setUint32(16, u32(16) + 16, true); // str_off
  return grown;
}

/**
 * A data section's DATASEC: its size (if clang left 0) the section's, its
 * variables at their symbols' offsets, a hidden one made static, sorted by
 * offset as the kernel wants them.
 */
function fixDataDatasec(
  elf: ElfFile,
  types: readonly BtfType[],
  name: string,
  start: number,
  infos: readonly number[],
  view: DataView,
  starts: readonly number[],
): void {
  const u32 = (offset: number) => view.getUint32(offset, true);
  const section = elf.sectionByName(name);
  const sized = u32(start + 8) !== 0;
  if (!sized) view.setUint32(start + 8, section?.size ?? 0, true);
  infos.forEach((info) => {
    const variable = u32(info);
    const symbol: ElfSymbol | undefined = elf.symbols.find((s) =>
      s.section === section?.index && s.type === STT_OBJECT
      && types[variable]?.kind === "var" && s.name === types[variable].name
    );
    if (symbol !== undefined && HIDDEN_VISIBILITY.has(symbol.visibility)) {
      view.setUint32(starts[variable]! + 12, BTF_VAR_STATIC, true);
    }
    if (!sized && symbol !== undefined) view.setUint32(info + 4, symbol.value, true);
  });
  sortVars(view, infos);
}

/** Sorts a DATASEC's variables (12-byte records at `infos`) by offset, as the kernel wants them. */
function sortVars(view: DataView, infos: readonly number[]): void {
  const records = infos.map((info) => [0, 4, 8].map((at) => view.getUint32(info + at, true)));
  records.sort((a, b) => a[1]! - b[1]!);
  records.forEach((record, i) =>
    record.forEach((word, j) => view.setUint32(infos[i]! + 4 * j, word, true))
  );
}
