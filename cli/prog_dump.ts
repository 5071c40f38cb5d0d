/**
 * `bpfmap prog dump xlated`: a program's instructions as the kernel keeps
 * them after verification, printed as bpftool 7.1's `xlated_dumper.c`
 * prints them (plain, `-j`, `-p`; `opcodes`, `linum`), with the function
 * headers and source lines of its BTF.
 *
 * @module
 */

import type { BtfType } from "../btf/types.ts";
import {
  decodeInsn,
  formatInsn,
  type Insn,
  INSN_SIZE,
  LD_IMM64,
  PSEUDO_CALL,
  PSEUDO_FUNC,
  PSEUDO_MAP_FD,
  PSEUDO_MAP_IDX_VALUE,
  PSEUDO_MAP_VALUE,
} from "../ffi/insn.ts";
import type { JsonWriter } from "./json_writer.ts";
import type { Output } from "./output.ts";

/** What the kernel said of a program's instructions (`bpf_prog_info` and the arrays it points to). */
export interface XlatedProgram {
  /** `xlated_prog_insns`. */
  insns: Uint8Array;
  /** `jited_ksyms`: the address of each function's JIT image (none if not jited). */
  jitedKsyms: readonly bigint[];
  /** `func_info` records (`insn_off`, `type_id`), or none. */
  funcInfo: readonly { insnOff: number; typeId: number }[];
  /** `line_info` records, or none. */
  lineInfo: readonly LineInfo[];
  /** The program's BTF (types, and its string section), if it has one. */
  btf?: { types: readonly BtfType[]; strings: Uint8Array } | undefined;
}

/** `struct bpf_line_info`. */
export interface LineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  lineCol: number;
}

/** How to print a dump: `opcodes` and `linum` as bpftool's words. */
export interface DumpOptions {
  opcodes: boolean;
  linum: boolean;
}

/**
 * The kernel's symbols as bpftool loads them (`kernel_syms_load`): ordered
 * and searched with bpftool's comparison, which looks at the low 32 bits of
 * an address only, so that a call prints the symbol bpftool finds.
 */
export class KernelSymbols {
  /** `__bpf_call_base`: helper calls' immediates count from it. */
  readonly callBase: bigint;
  readonly #low: Uint32Array;
  readonly #names: string[];

  private constructor(callBase: bigint, low: Uint32Array, names: string[]) {
    this.callBase = callBase;
    this.#low = low;
    this.#names = names;
  }

  /** No symbols (an unreadable `/proc/kallsyms`, or a replay). */
  static readonly NONE: KernelSymbols = new KernelSymbols(0n, new Uint32Array(0), []);

  /**
   * Parses `/proc/kallsyms` text.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { KernelSymbols } from "./prog_dump.ts";
   * const syms = KernelSymbols.parse(
   *   "ffffffff81000010 T b\nffffffff81000000 T __bpf_call_base\nffffffffc0000000 t a [m]\n",
   * );
   * assert.equal(syms.callBase, 0xffffffff81000000n);
   * assert.equal(syms.find(0xffffffff81000010n), "b");
   * assert.equal(syms.find(0xffffffffc0000000n), "a");
   * assert.equal(syms.find(0xffffffff81000011n), undefined);
   * ```
   */
  static parse(text: string): KernelSymbols {
    const entries: { low: number; name: string }[] = [];
    let callBase = 0n;
    for (const line of text.split("\n")) {
      const match = /^([0-9a-fA-F]+) +\S+ +(\S+)/.exec(line);
      if (match === null) continue;
      const address = BigInt(`0x${match[1]}`);
      if (match[2] === "__bpf_call_base") {
        callBase = address;
        // kptr_restrict: every address reads 0, and bpftool stops.
        if (address === 0n) break;
      }
      if (address !== 0n) entries.push({ low: Number(address & 0xffff_ffffn), name: match[2]! });
    }
    const sorted = mergeSort(entries, (a, b) => truncatedCompare(a.low, b.low));
    return new KernelSymbols(
      callBase,
      Uint32Array.from(sorted, (e) => e.low),
      sorted.map((e) => e.name),
    );
  }

  /** glibc's `bsearch` with bpftool's comparison: a symbol whose address matches in its low 32 bits. */
  find(address: bigint): string | undefined {
    const key = Number(address & 0xffff_ffffn);
    let low = 0;
    let high = this.#low.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const order = truncatedCompare(key, this.#low[mid]!);
      if (order < 0) high = mid;
      else if (order > 0) low = mid + 1;
      else return this.#names[mid];
    }
    return undefined;
  }
}

/** bpftool's `kernel_syms_cmp`: `(int)(a - b)` of two unsigned longs. */
function truncatedCompare(a: number, b: number): number {
  return (a - b) | 0;
}

/** glibc's `qsort` (its stable merge sort, halves split at n / 2), so that ties and the odd comparison land where bpftool's do. */
function mergeSort<T>(items: T[], compare: (a: T, b: T) => number): T[] {
  if (items.length < 2) return items;
  const half = items.length >>> 1;
  const left = mergeSort(items.slice(0, half), compare);
  const right = mergeSort(items.slice(half), compare);
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) {
    out.push(compare(left[i]!, right[j]!) <= 0 ? left[i++]! : right[j++]!);
  }
  while (i < left.length) out.push(left[i++]!);
  while (j < right.length) out.push(right[j++]!);
  return out;
}

const decoder = new TextDecoder();

/** `btf__name_by_offset`: the string at `offset`, or `undefined` past the end. */
function stringAt(strings: Uint8Array, offset: number): string | undefined {
  if (offset >= strings.byteLength) return undefined;
  const end = strings.indexOf(0, offset);
  return decoder.decode(strings.subarray(offset, end === -1 ? strings.byteLength : end));
}

/**
 * A function's signature as bpftool's `btf_dumper_type_only` writes it
 * (`int xdp_pass(struct xdp_md * ctx)`), or `""` where it gives up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BtfType } from "../btf/types.ts";
 * import { typeOnly } from "./prog_dump.ts";
 * const types: BtfType[] = [
 *   { kind: "void", name: "" },
 *   { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" },
 *   { kind: "struct", name: "xdp_md", size: 24, members: [] },
 *   { kind: "ptr", name: "", type: 2 },
 *   { kind: "func_proto", name: "", type: 1, params: [{ name: "ctx", type: 3 }, { name: "", type: 0 }] },
 *   { kind: "func", name: "xdp_pass", type: 4, linkage: 1 },
 * ];
 * assert.equal(typeOnly(types, 5), "int xdp_pass(struct xdp_md * ctx, ...)");
 * ```
 */
export function typeOnly(types: readonly BtfType[], id: number): string {
  const out = { text: "" };
  return typeInto(types, id, out) ? out.text : "";
}

function typeInto(types: readonly BtfType[], id: number, out: { text: string }): boolean {
  if (id === 0) {
    out.text += "void ";
    return true;
  }
  const t = types[id];
  if (t === undefined) return false;
  switch (t.kind) {
    case "int":
    case "typedef":
    case "float":
      out.text += `${t.name} `;
      return true;
    case "struct":
    case "union":
      out.text += `${t.kind} ${t.name} `;
      return true;
    case "enum":
    case "enum64":
      out.text += `enum ${t.name} `;
      return true;
    case "array":
      if (!typeInto(types, t.type, out)) return false;
      out.text += `[${t.length}]`;
      return true;
    case "ptr":
      if (!typeInto(types, t.type, out)) return false;
      out.text += "* ";
      return true;
    case "fwd":
      out.text += `${t.union ? "union" : "struct"} ${t.name} `;
      return true;
    case "volatile":
    case "const":
    case "restrict":
      out.text += `${t.kind} `;
      return typeInto(types, t.type, out);
    case "func_proto":
      return funcInto(types, t, undefined, out);
    case "func": {
      const proto = types[t.type];
      return proto?.kind === "func_proto" && funcInto(types, proto, t.name, out);
    }
    case "var":
      if (t.linkage === 0) out.text += "static ";
      if (!typeInto(types, t.type, out)) return false;
      out.text += ` ${t.name}`;
      return true;
    case "datasec":
      out.text += `section ("${t.name}") `;
      return true;
    default:
      return false;
  }
}

function funcInto(
  types: readonly BtfType[],
  proto: Extract<BtfType, { kind: "func_proto" }>,
  name: string | undefined,
  out: { text: string },
): boolean {
  if (!typeInto(types, proto.type, out)) return false;
  out.text += `${name ?? ""}(`;
  proto.params.forEach((param, i) => {
    if (i > 0) out.text += ", ";
    if (param.type === 0) {
      out.text += "...";
      return;
    }
    typeInto(types, param.type, out);
    if (param.name) out.text += param.name;
    else if (out.text.endsWith(" ")) out.text = out.text.slice(0, -1);
  });
  out.text += ")";
  return true;
}

/** libbpf's `bpf_prog_linfo__lfind`: the last record at or before `insn` from `skip` on, if it is at `insn`. */
function lineAt(lines: readonly LineInfo[], insn: number, skip: number): LineInfo | undefined {
  if (skip >= lines.length || insn < lines[skip]!.insnOff) return undefined;
  let at = skip;
  while (at < lines.length && insn >= lines[at]!.insnOff) at++;
  const found = lines[at - 1]!;
  return found.insnOff === insn ? found : undefined;
}

/**
 * Prints a program's xlated instructions as bpftool's `dump_xlated_plain`
 * or `dump_xlated_json`; `symbols` names the targets of calls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { dumpXlated, KernelSymbols } from "./prog_dump.ts";
 *
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * // r0 = 2; exit
 * const insns = new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const program = { insns, jitedKsyms: [], funcInfo: [], lineInfo: [] };
 * dumpXlated(out, undefined, program, { opcodes: true, linum: false }, KernelSymbols.NONE);
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"),
 *   "   0: (b7) r0 = 2\n       b7 00 00 00 02 00 00 00\n   1: (95) exit\n       95 00 00 00 00 00 00 00\n");
 * rmSync(dir, { recursive: true });
 * ```
 */
export function dumpXlated(
  out: Output,
  json: JsonWriter | undefined,
  program: XlatedProgram,
  options: DumpOptions,
  symbols: KernelSymbols,
): void {
  const { insns, funcInfo, lineInfo, btf } = program;
  const count = Math.floor(insns.byteLength / INSN_SIZE);
  const names = {
    call: (insn: Insn) => callTarget(insn, program.jitedKsyms, symbols),
    imm: (insn: Insn, next: Insn, value: bigint) => immediate(insn, next, value),
  };
  let record = 0;
  let skip = 0;
  json?.startArray();
  for (let i = 0; i < count; i++) {
    const insn = decodeInsn(insns, i);
    const double = insn.code === LD_IMM64;
    const next = double && i + 1 < count ? decodeInsn(insns, i + 1) : undefined;
    json?.startObject();
    if (btf !== undefined && funcInfo[record]?.insnOff === i) {
      const signature = typeOnly(btf.types, funcInfo[record]!.typeId);
      record++;
      if (signature !== "") {
        if (json) json.stringField("proto", signature);
        else out.write(`${signature}:\n`);
      }
    }
    const line = btf === undefined ? undefined : lineAt(lineInfo, i, skip);
    if (line !== undefined && btf !== undefined) {
      skip++;
      printLine(out, json, btf.strings, line, options.linum);
    }
    const text = formatInsn(insn, next, names);
    const raw = insns.subarray(i * INSN_SIZE, (i + (next ? 2 : 1)) * INSN_SIZE);
    if (json) {
      json.stringField("disasm", text);
      if (options.opcodes) {
        json.name("opcodes");
        json.startObject();
        json.rawField("code", `"0x${hex(insn.code)}"`);
        json.rawField("src_reg", `"0x${insn.src.toString(16)}"`);
        json.rawField("dst_reg", `"0x${insn.dst.toString(16)}"`);
        json.name("off");
        json.hexArray(raw, 2, 4);
        json.name("imm");
        json.hexArray(raw, 4, next ? 16 : 8);
        json.endObject();
      }
      json.endObject();
    } else {
      let text2 = `${String(i).padStart(4)}: ${text}\n`;
      if (options.opcodes) {
        text2 += `       ${spaced(raw.subarray(0, 8))}`;
        if (next) text2 += ` ${spaced(raw.subarray(8, 16))}`;
        text2 += "\n";
      }
      out.write(text2);
    }
    if (next) i++;
  }
  json?.endArray();
}

function printLine(
  out: Output,
  json: JsonWriter | undefined,
  strings: Uint8Array,
  line: LineInfo,
  linum: boolean,
): void {
  // C's isspace: the source line as bpftool's ltrim leaves it.
  const source = stringAt(strings, line.lineOff)?.replace(/^[ \t\n\v\f\r]+/, "");
  const file = stringAt(strings, line.fileNameOff);
  const lineNum = line.lineCol >>> 10;
  const lineCol = line.lineCol & 0x3ff;
  if (json) {
    if (source !== undefined) json.stringField("src", source);
    if (!linum) return;
    if (file !== undefined) json.stringField("file", file);
    if (lineNum) json.rawField("line_num", lineNum);
    if (lineCol) json.rawField("line_col", lineCol);
    return;
  }
  if (source === undefined) return;
  out.write(
    linum
      ? `; ${source} [file:${file ?? ""} line_num:${lineNum} line_col:${lineCol}]\n`
      : `; ${source}\n`,
  );
}

const hex = (n: number) => n.toString(16).padStart(2, "0");
const spaced = (bytes: Uint8Array) => Array.from(bytes, hex).join(" ");

/** bpftool's `print_imm`: maps by id, map values, subprograms, or the value in hex. */
function immediate(insn: Insn, next: Insn, value: bigint): string {
  const u32 = (n: number) => n >>> 0;
  switch (insn.src) {
    case PSEUDO_MAP_FD:
      return `map[id:${u32(insn.imm)}]`;
    case PSEUDO_MAP_VALUE:
      return `map[id:${u32(insn.imm)}][0]+${u32(next.imm)}`;
    case PSEUDO_MAP_IDX_VALUE:
      return `map[idx:${u32(insn.imm)}]+${u32(next.imm)}`;
    case PSEUDO_FUNC:
      return `subprog[${insn.imm < 0 ? insn.imm : `+${insn.imm}`}]`;
    default:
      return `0x${value.toString(16)}`;
  }
}

/** bpftool's `print_call`: a helper or kfunc by kernel symbol, a subprogram by its JIT image's. */
function callTarget(insn: Insn, ksyms: readonly bigint[], symbols: KernelSymbols): string {
  let address = BigInt.asUintN(64, symbols.callBase + BigInt(insn.imm));
  if (insn.src === PSEUDO_CALL && insn.imm >>> 0 < ksyms.length) address = ksyms[insn.imm]!;
  const name = symbols.find(address);
  if (insn.src !== PSEUDO_CALL) return name ?? `0x${address.toString(16)}`;
  const off = insn.off < 0 ? String(insn.off) : `+${insn.off}`;
  if (ksyms.length === 0) return off;
  return name === undefined ? `${off}#0x${address.toString(16)}` : `${off}#${name}`;
}
