/**
 * `.BTF.ext`, clang's per-instruction debug and relocation records
 * (`Documentation/bpf/btf.rst`, "BTF Extension"): func_info, line_info and
 * CO-RE relocations, grouped by the section of the instructions they
 * describe. The records are kept as the kernel takes them, their string
 * offsets (into `.BTF`'s strings) resolved beside.
 *
 * @module
 */

import { BTF_MAGIC } from "../btf/types.ts";
import { ObjectFormatError } from "./errors.ts";

/** A `bpf_func_info`: the function (a BTF `FUNC`) starting at an instruction. */
export interface FuncInfo {
  /** The instruction index, from the start of its section (or program, once split). */
  readonly insn: number;
  /** The BTF id of the `FUNC`. */
  readonly typeId: number;
}

/** A `bpf_line_info`: the source line of an instruction. */
export interface LineInfo {
  /** The instruction index, from the start of its section (or program, once split). */
  readonly insn: number;
  /** Offset of the file name in `.BTF`'s strings, as the kernel takes it. */
  readonly fileNameOffset: number;
  /** Offset of the source line's text in `.BTF`'s strings. */
  readonly lineOffset: number;
  readonly line: number;
  readonly column: number;
  readonly fileName: string;
  readonly text: string;
}

/**
 * `enum bpf_core_relo_kind`, by number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CORE_RELO_KINDS } from "./btf_ext.ts";
 * assert.equal(CORE_RELO_KINDS[0], "field_byte_offset");
 * assert.equal(CORE_RELO_KINDS.indexOf("type_matches"), 12);
 * ```
 */
export const CORE_RELO_KINDS = [
  "field_byte_offset",
  "field_byte_size",
  "field_exists",
  "field_signed",
  "field_lshift_u64",
  "field_rshift_u64",
  "type_id_local",
  "type_id_target",
  "type_exists",
  "type_size",
  "enumval_exists",
  "enumval_value",
  "type_matches",
] as const;

/** A `bpf_core_relo`: an instruction whose immediate depends on the running kernel's types. */
export interface CoreRelocation {
  /** The instruction index, from the start of its section (or program, once split). */
  readonly insn: number;
  /** The local (object's) BTF type id the access starts from. */
  readonly typeId: number;
  /** The access string, `"0:1:2"`: member and array indexes. */
  readonly access: string;
  /** `enum bpf_core_relo_kind`. */
  readonly kind: number;
  /** Its name, or `"unknown"` for a kind newer than this table. */
  readonly kindName: (typeof CORE_RELO_KINDS)[number] | "unknown";
}

/** The records of one code section. */
export interface BtfExtSection<T> {
  readonly section: string;
  readonly records: readonly T[];
}

/** A parsed `.BTF.ext`. */
export interface BtfExt {
  /** The size of one func_info record in the file (8, or more from a newer compiler). */
  readonly funcInfoRecordSize: number;
  readonly lineInfoRecordSize: number;
  readonly funcInfo: readonly BtfExtSection<FuncInfo>[];
  readonly lineInfo: readonly BtfExtSection<LineInfo>[];
  /** Empty when the header has no CO-RE part (clang without `__builtin_preserve_access_index`). */
  readonly coreRelocations: readonly BtfExtSection<CoreRelocation>[];
}

/**
 * Reads the strings of a `.BTF` blob: `(offset) => string`, checked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeBtf } from "../btf/types.ts";
 * import { btfStrings } from "./btf_ext.ts";
 *
 * const blob = encodeBtf([{ kind: "typedef", name: "u32", type: 0 }]);
 * assert.equal(btfStrings(blob)(1), "u32");
 * assert.throws(() => btfStrings(blob)(99), { name: "RangeError" });
 * ```
 */
export function btfStrings(btf: Uint8Array): (offset: number) => string {
  const view = new DataView(btf.buffer, btf.byteOffset, btf.byteLength);
  if (btf.byteLength < 24 || view.getUint16(0, true) !== BTF_MAGIC) {
    throw new RangeError("not BTF: no 0xeB9F magic");
  }
  const start = view.getUint32(4, true) + view.getUint32(16, true);
  const length = view.getUint32(20, true);
  if (start + length > btf.byteLength) throw new RangeError("BTF strings overrun the blob");
  const strings = btf.subarray(start, start + length);
  const decoder = new TextDecoder();
  // Line info names one file in every record, and lines repeat: each string decoded once.
  const decoded = new Map<number, string>();
  return (offset) => {
    let text = decoded.get(offset);
    if (text !== undefined) return text;
    if (offset >= strings.byteLength) {
      throw new RangeError(`string offset ${offset} is outside the ${length}-byte BTF strings`);
    }
    const end = strings.indexOf(0, offset);
    text = decoder.decode(strings.subarray(offset, end < 0 ? strings.byteLength : end));
    decoded.set(offset, text);
    return text;
  };
}

/**
 * Parses a `.BTF.ext` section. `btf` is the object's `.BTF` (the records
 * name sections and lines by offsets into its strings); `at` is the
 * section's offset in the file, for errors.
 *
 * @throws {ObjectFormatError} for a bad magic, a header or a record that runs past the section, an
 *   instruction offset that is not a whole instruction, a string offset outside `.BTF`'s strings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { parseBtfExt } from "./btf_ext.ts";
 * import { ElfFile } from "./elf.ts";
 *
 * const source = `__attribute__((section("xdp"), used)) int pass(void *ctx) { return 2; }`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * const elf = new ElfFile(new Uint8Array(execFileSync("clang", args, { input: source })));
 * const ext = parseBtfExt(
 *   elf.bytes(elf.sectionByName(".BTF.ext")!),
 *   elf.bytes(elf.sectionByName(".BTF")!),
 * );
 * assert.equal(ext.funcInfo[0]?.section, "xdp");
 * assert.equal(ext.funcInfo[0]?.records[0]?.insn, 0); // pass() starts the section
 * assert.equal(ext.lineInfo[0]?.records[0]?.line, 1);
 * assert.deepEqual(ext.coreRelocations, []);
 * ```
 */
export function parseBtfExt(bytes: Uint8Array, btf: Uint8Array, at = 0): BtfExt {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (message: string, offset: number): never => {
    throw new ObjectFormatError(`.BTF.ext: ${message}`, at + offset);
  };
  if (bytes.byteLength < 8 || view.getUint16(0, true) !== BTF_MAGIC) fail("no 0xeB9F magic", 0);
  const headerLength = view.getUint32(4, true);
  if (headerLength < 24 || headerLength > bytes.byteLength) {
    fail(`header length ${headerLength} is not 24 to ${bytes.byteLength}`, 4);
  }
  let strings: (offset: number) => string;
  try {
    strings = btfStrings(btf);
  } catch (error) {
    return fail(`its .BTF has no readable strings (${(error as Error).message})`, 0);
  }
  const string = (offset: number, where: number) => {
    try {
      return strings(offset);
    } catch (error) {
      return fail((error as Error).message, where);
    }
  };
  const part = <T>(
    headerAt: number,
    minRecord: number,
    read: (record: number, insn: number) => T,
  ): { recordSize: number; sections: BtfExtSection<T>[] } => {
    if (headerAt + 8 > headerLength) return { recordSize: minRecord, sections: [] };
    const offset = view.getUint32(headerAt, true);
    const length = view.getUint32(headerAt + 4, true);
    if (length === 0) return { recordSize: minRecord, sections: [] };
    const start = headerLength + offset;
    const end = start + length;
    if (end > bytes.byteLength) {
      fail(`a subsection of ${length} bytes at ${offset} runs past the end`, headerAt);
    }
    if (length < 4) fail("a subsection too short for its record size", start);
    const recordSize = view.getUint32(start, true);
    if (recordSize < minRecord || recordSize % 4 !== 0) {
      fail(`record size ${recordSize}, at least ${minRecord} and a multiple of 4 expected`, start);
    }
    const sections: BtfExtSection<T>[] = [];
    let p = start + 4;
    while (p < end) {
      if (p + 8 > end) fail("a truncated section header", p);
      const section = string(view.getUint32(p, true), p);
      const count = view.getUint32(p + 4, true);
      p += 8;
      if (p + count * recordSize > end) {
        fail(`${count} records of ${section} run past the end`, p - 4);
      }
      const records: T[] = [];
      for (let i = 0; i < count; i++, p += recordSize) {
        const insnOffset = view.getUint32(p, true);
        if (insnOffset % 8 !== 0) {
          fail(`instruction offset ${insnOffset} is not a multiple of 8`, p);
        }
        records.push(read(p, insnOffset / 8));
      }
      sections.push({ section, records });
    }
    return { recordSize, sections };
  };
  const funcInfo = part(
    8,
    8,
    (p, insn): FuncInfo => ({ insn, typeId: view.getUint32(p + 4, true) }),
  );
  const lineInfo = part(16, 16, (p, insn): LineInfo => {
    const fileNameOffset = view.getUint32(p + 4, true);
    const lineOffset = view.getUint32(p + 8, true);
    const lineColumn = view.getUint32(p + 12, true);
    return {
      insn,
      fileNameOffset,
      lineOffset,
      line: lineColumn >>> 10,
      column: lineColumn & 0x3ff,
      fileName: string(fileNameOffset, p + 4),
      text: string(lineOffset, p + 8),
    };
  });
  const core = part(24, 16, (p, insn): CoreRelocation => {
    const kind = view.getUint32(p + 12, true);
    return {
      insn,
      typeId: view.getUint32(p + 4, true),
      access: string(view.getUint32(p + 8, true), p + 8),
      kind,
      kindName: CORE_RELO_KINDS[kind] ?? "unknown",
    };
  });
  return {
    funcInfoRecordSize: funcInfo.recordSize,
    lineInfoRecordSize: lineInfo.recordSize,
    funcInfo: funcInfo.sections,
    lineInfo: lineInfo.sections,
    coreRelocations: core.sections,
  };
}
