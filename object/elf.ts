/**
 * A reader for the ELF files `clang -target bpf -c` writes: little-endian
 * ELF64 relocatable objects for `EM_BPF`. It reads the section headers and
 * their names, the symbol table and `SHT_REL` relocations, and checks every
 * offset, size and index against the file before it reads there: a
 * truncated or hostile file is an {@linkcode ObjectFormatError} naming the
 * offset, never an out-of-range read.
 *
 * @module
 */

import { ObjectFormatError } from "./errors.ts";

/** `EM_BPF`, the ELF machine number of BPF objects. */
export const EM_BPF = 247;
/** `ET_REL`: a relocatable object, what `clang -c` writes. */
export const ET_REL = 1;

/** `SHT_PROGBITS`: bytes in the file. */
export const SHT_PROGBITS = 1;
/** `SHT_SYMTAB`: the symbol table. */
export const SHT_SYMTAB = 2;
/** `SHT_STRTAB`: a string table. */
export const SHT_STRTAB = 3;
/** `SHT_NOBITS`: a section with a size but no bytes in the file (`.bss`). */
export const SHT_NOBITS = 8;
/** `SHT_REL`: relocations without addends. */
export const SHT_REL = 9;

/** `SHF_WRITE`. */
export const SHF_WRITE = 0x1;
/** `SHF_ALLOC`. */
export const SHF_ALLOC = 0x2;
/** `SHF_EXECINSTR`: a section of instructions. */
export const SHF_EXECINSTR = 0x4;

/** `SHN_UNDEF`: the section index of an undefined (extern) symbol. */
export const SHN_UNDEF = 0;
/** `SHN_ABS`: an absolute symbol, in no section. */
export const SHN_ABS = 0xfff1;
/** `SHN_COMMON`. */
export const SHN_COMMON = 0xfff2;
/** `SHN_XINDEX`: the real index is elsewhere (huge files: clang never writes it for BPF). */
export const SHN_XINDEX = 0xffff;

/**
 * The BPF relocation types (`R_BPF_*`), by number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { R_BPF } from "./elf.ts";
 * assert.equal(R_BPF.R_BPF_64_64, 1); // a 64-bit immediate: ld_imm64 of a map or a variable
 * assert.equal(R_BPF.R_BPF_64_32, 10); // a call
 * ```
 */
export const R_BPF = Object.freeze({
  R_BPF_NONE: 0,
  R_BPF_64_64: 1,
  R_BPF_64_ABS64: 2,
  R_BPF_64_ABS32: 3,
  R_BPF_64_NODYLD32: 4,
  R_BPF_64_32: 10,
});

const ELF_HEADER_SIZE = 64;
const SECTION_HEADER_SIZE = 64;
const SYMBOL_SIZE = 24;
const REL_SIZE = 16;
const decoder = new TextDecoder("utf-8", { fatal: false });

/** One section header, its name resolved. */
export interface ElfSection {
  /** Its index in the section header table. */
  readonly index: number;
  readonly name: string;
  /** `sh_type`: `SHT_PROGBITS`, `SHT_NOBITS`, `SHT_REL`, ... */
  readonly type: number;
  /** `sh_flags`: `SHF_WRITE | SHF_ALLOC | SHF_EXECINSTR` bits (the low 32). */
  readonly flags: number;
  /** `sh_offset`: where its bytes start in the file. */
  readonly offset: number;
  /** `sh_size`: its size in bytes (in memory, for `SHT_NOBITS`). */
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
}

/** One entry of the symbol table. */
export interface ElfSymbol {
  /** Its index in the table (relocations name symbols by index). */
  readonly index: number;
  /** Its name; a section symbol (`STT_SECTION`) takes its section's name. */
  readonly name: string;
  /** `st_value`: for a defined symbol of a relocatable object, its offset in its section. */
  readonly value: number;
  readonly size: number;
  /** `STT_*`: 0 notype, 1 object, 2 func, 3 section, 4 file. */
  readonly type: number;
  /** `STB_*`: 0 local, 1 global, 2 weak. */
  readonly binding: number;
  /** `STV_*`: 0 default, 1 internal, 2 hidden, 3 protected. */
  readonly visibility: number;
  /** `st_shndx`: the section it is defined in, `SHN_UNDEF` (0) for an extern. */
  readonly section: number;
}

/** One `Elf64_Rel`. */
export interface ElfRelocation {
  /** `r_offset`: the byte offset in the target section. */
  readonly offset: number;
  /** The symbol's index in the symbol table. */
  readonly symbol: number;
  /** `R_BPF_*`. */
  readonly type: number;
}

/** `STT_*` symbol types. */
export const STT_NOTYPE = 0;
/** `STT_OBJECT`: a variable, or a map in `.maps`. */
export const STT_OBJECT = 1;
/** `STT_FUNC`: a function: a program or a subprogram. */
export const STT_FUNC = 2;
/** `STT_SECTION`: stands for its section (relocations of static variables use it). */
export const STT_SECTION = 3;
/** `STB_LOCAL`: a static symbol. */
export const STB_LOCAL = 0;
/** `STB_GLOBAL`. */
export const STB_GLOBAL = 1;
/** `STB_WEAK`. */
export const STB_WEAK = 2;

/**
 * A parsed BPF ELF object: its sections, symbols and relocation sections.
 * Everything it returns was bounds-checked when it was read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { ElfFile, SHF_EXECINSTR, STT_FUNC } from "./elf.ts";
 *
 * const source = `__attribute__((section("xdp"), used)) int pass(void *ctx) { return 2; }`;
 * const bytes = execFileSync("clang", ["-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"], {
 *   input: source,
 * });
 * const elf = new ElfFile(new Uint8Array(bytes));
 * const xdp = elf.sectionByName("xdp");
 * assert.ok(xdp !== undefined && (xdp.flags & SHF_EXECINSTR) !== 0);
 * assert.equal(elf.bytes(xdp).byteLength, 16); // r0 = 2; exit
 * const pass = elf.symbols.find((symbol) => symbol.name === "pass");
 * assert.equal(pass?.type, STT_FUNC);
 * assert.equal(pass?.section, xdp.index);
 * assert.throws(() => new ElfFile(new Uint8Array(bytes).subarray(0, 63)), {
 *   name: "ObjectFormatError",
 *   message: "at offset 0x0: ELF header truncated: 64 bytes needed, the file has 63",
 * });
 * ```
 */
export class ElfFile {
  /** The file's bytes (the caller's: not copied). */
  readonly file: Uint8Array;
  /** Every section header, by index (0 is the null section). */
  readonly sections: readonly ElfSection[];
  /** The symbol table, by index (0 is the null symbol); empty if the file has none. */
  readonly symbols: readonly ElfSymbol[];
  readonly #view: DataView;

  /**
   * Reads the header, the section headers and names, and the symbol table.
   *
   * @throws {ObjectFormatError} `not an ELF file`, `not ELF64 little-endian`,
   *   `not a BPF object (e_machine N)`, or what is truncated or out of range.
   */
  constructor(file: Uint8Array) {
    this.file = file;
    this.#view = new DataView(file.buffer, file.byteOffset, file.byteLength);
    const size = file.byteLength;
    if (size < 4 || file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) {
      throw new ObjectFormatError("not an ELF file (no \\x7fELF magic)", 0);
    }
    if (size < 6 || file[4] !== 2 || file[5] !== 1) {
      throw new ObjectFormatError(
        `not ELF64 little-endian (EI_CLASS ${file[4] ?? "missing"}, EI_DATA ${
          file[5] ?? "missing"
        }; BPF objects are class 2, data 1)`,
        4,
      );
    }
    if (size < ELF_HEADER_SIZE) {
      throw new ObjectFormatError(
        `ELF header truncated: ${ELF_HEADER_SIZE} bytes needed, the file has ${size}`,
        0,
      );
    }
    const view = this.#view;
    const type = view.getUint16(16, true);
    const machine = view.getUint16(18, true);
    // EM_NONE too, as libbpf: LLVM before 7 wrote 0 there.
    if (machine !== EM_BPF && machine !== 0) {
      throw new ObjectFormatError(`not a BPF object (e_machine ${machine}, BPF is 247)`, 18);
    }
    if (type !== ET_REL) {
      throw new ObjectFormatError(`not a relocatable object (e_type ${type}, expected 1)`, 16);
    }
    const shoff = this.#u64(40, "e_shoff");
    const shentsize = view.getUint16(58, true);
    let shnum = view.getUint16(60, true);
    let shstrndx = view.getUint16(62, true);
    if (shoff === 0) {
      this.sections = [];
      this.symbols = [];
      return;
    }
    if (shentsize !== SECTION_HEADER_SIZE) {
      throw new ObjectFormatError(`e_shentsize is ${shentsize}, ELF64 needs 64`, 58);
    }
    this.#within(shoff, SECTION_HEADER_SIZE, "section header 0");
    // Extended numbering: more than 0xff00 sections keep their count and the
    // names' index in section 0.
    if (shnum === 0) shnum = this.#u64(shoff + 32, "section 0's sh_size (the section count)");
    if (shstrndx === SHN_XINDEX) shstrndx = view.getUint32(shoff + 40, true);
    this.#within(shoff, shnum * SECTION_HEADER_SIZE, `the table of ${shnum} section headers`);
    const headers: Omit<ElfSection, "name">[] = [];
    const names: number[] = [];
    for (let index = 0; index < shnum; index++) {
      const at = shoff + index * SECTION_HEADER_SIZE;
      names.push(view.getUint32(at, true));
      const header = {
        index,
        type: view.getUint32(at + 4, true),
        flags: view.getUint32(at + 8, true),
        offset: this.#u64(at + 24, `section ${index}'s sh_offset`),
        size: this.#u64(at + 32, `section ${index}'s sh_size`),
        link: view.getUint32(at + 40, true),
        info: view.getUint32(at + 44, true),
        addralign: this.#u64(at + 48, `section ${index}'s sh_addralign`),
        entsize: this.#u64(at + 56, `section ${index}'s sh_entsize`),
      };
      if (header.type !== SHT_NOBITS && index !== 0) {
        this.#within(header.offset, header.size, `section ${index}'s bytes`, at + 24);
      }
      headers.push(header);
    }
    const nameTable = headers[shstrndx];
    if (nameTable === undefined || nameTable.type !== SHT_STRTAB) {
      throw new ObjectFormatError(
        `e_shstrndx ${shstrndx} is not a string table (${shnum} sections)`,
        62,
      );
    }
    this.sections = headers.map((header, index) => ({
      ...header,
      name: this.#string(nameTable, names[index]!, `section ${index}'s name`),
    }));
    this.symbols = this.#readSymbols();
  }

  /** The first section called `name`, if any. */
  sectionByName(name: string): ElfSection | undefined {
    return this.sections.find((section) => section.name === name);
  }

  /** The section with index `index`, or an error naming `what` pointed at it. */
  section(index: number, what: string, offset: number): ElfSection {
    const section = index === 0 ? undefined : this.sections[index];
    if (section === undefined) {
      throw new ObjectFormatError(
        `${what}: no section ${index} (${this.sections.length} sections)`,
        offset,
      );
    }
    return section;
  }

  /**
   * A view of a section's bytes in the file (checked when the headers were
   * read); a `SHT_NOBITS` section has none in the file: zeros of its size.
   */
  bytes(section: ElfSection): Uint8Array {
    if (section.type === SHT_NOBITS) return new Uint8Array(section.size);
    return this.file.subarray(section.offset, section.offset + section.size);
  }

  /**
   * The relocations of a `SHT_REL` section, each checked: its symbol exists
   * and its offset lies inside the section it applies to (`sh_info`).
   */
  relocations(rel: ElfSection): ElfRelocation[] {
    if (rel.type !== SHT_REL) {
      throw new ObjectFormatError(`section ${rel.index} (${rel.name}) is not SHT_REL`, rel.offset);
    }
    const target = this.section(rel.info, `${rel.name}'s sh_info`, rel.offset);
    if (rel.size % REL_SIZE !== 0) {
      throw new ObjectFormatError(
        `${rel.name}: ${rel.size} bytes is not a whole number of 16-byte Elf64_Rel`,
        rel.offset,
      );
    }
    const relocations: ElfRelocation[] = [];
    for (let at = rel.offset; at < rel.offset + rel.size; at += REL_SIZE) {
      const offset = this.#u64(at, `${rel.name}'s r_offset`);
      const type = this.#view.getUint32(at + 8, true);
      const symbol = this.#view.getUint32(at + 12, true);
      if (symbol >= this.symbols.length) {
        throw new ObjectFormatError(
          `${rel.name}: symbol ${symbol} is not in the ${this.symbols.length}-entry symbol table`,
          at + 12,
        );
      }
      if (offset >= target.size) {
        throw new ObjectFormatError(
          `${rel.name}: r_offset 0x${
            offset.toString(16)
          } is outside ${target.name} (${target.size} bytes)`,
          at,
        );
      }
      relocations.push({ offset, symbol, type });
    }
    return relocations;
  }

  #readSymbols(): ElfSymbol[] {
    const tables = this.sections.filter((section) => section.type === SHT_SYMTAB);
    if (tables.length === 0) return [];
    if (tables.length > 1) {
      throw new ObjectFormatError(
        `${tables.length} symbol tables, one expected`,
        tables[1]!.offset,
      );
    }
    const table = tables[0]!;
    const strings = this.section(table.link, `${table.name}'s sh_link`, table.offset);
    if (strings.type !== SHT_STRTAB) {
      throw new ObjectFormatError(
        `${table.name}'s sh_link ${table.link} is not a string table`,
        table.offset,
      );
    }
    if (table.size % SYMBOL_SIZE !== 0) {
      throw new ObjectFormatError(
        `${table.name}: ${table.size} bytes is not a whole number of 24-byte Elf64_Sym`,
        table.offset,
      );
    }
    const view = this.#view;
    const symbols: ElfSymbol[] = [];
    for (let index = 0; index < table.size / SYMBOL_SIZE; index++) {
      const at = table.offset + index * SYMBOL_SIZE;
      const info = view.getUint8(at + 4);
      const type = info & 0xf;
      const section = view.getUint16(at + 6, true);
      if (section === SHN_XINDEX) {
        throw new ObjectFormatError(
          `symbol ${index}: SHN_XINDEX section indexes are not supported`,
          at + 6,
        );
      }
      let name = this.#string(strings, view.getUint32(at, true), `symbol ${index}'s name`);
      if (type === STT_SECTION && name === "") {
        name = this.section(section, `section symbol ${index}`, at + 6).name;
      }
      symbols.push({
        index,
        name,
        value: this.#u64(at + 8, `symbol ${index}'s st_value`),
        size: this.#u64(at + 16, `symbol ${index}'s st_size`),
        type,
        binding: info >>> 4,
        visibility: view.getUint8(at + 5) & 0x3,
        section,
      });
    }
    return symbols;
  }

  /** A NUL-terminated string at `offset` in a string table section. */
  #string(table: Omit<ElfSection, "name">, offset: number, what: string): string {
    if (offset >= table.size) {
      throw new ObjectFormatError(
        `${what}: string offset ${offset} is outside its ${table.size}-byte string table`,
        table.offset,
      );
    }
    const bytes = this.file.subarray(table.offset, table.offset + table.size);
    const end = bytes.indexOf(0, offset);
    if (end < 0) {
      throw new ObjectFormatError(
        `${what}: the string at ${offset} has no NUL before the table's end`,
        table.offset + offset,
      );
    }
    return decoder.decode(bytes.subarray(offset, end));
  }

  /** A u64 at `at` that must be a safe integer (offsets and sizes are far smaller in any real file). */
  #u64(at: number, what: string): number {
    const value = this.#view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ObjectFormatError(`${what} is 0x${value.toString(16)}, past any file`, at);
    }
    return Number(value);
  }

  /** Checks that `[start, start + length)` lies inside the file. */
  #within(start: number, length: number, what: string, at = start): void {
    if (start + length > this.file.byteLength) {
      throw new ObjectFormatError(
        `${what} (${length} bytes at 0x${
          start.toString(16)
        }) run past the end of the ${this.file.byteLength}-byte file`,
        at,
      );
    }
  }
}
