/**
 * `bpfmap prog ...`: bpftool's `prog show`, `prog list`, `prog dump
 * xlated` and `prog loadall`, with the same syntax and the same output
 * (plain, `-j` and `-p`), on bpfmap's systems, so they record and replay as
 * the map commands do.
 *
 * @module
 */

import { Btf, readBtfInfo } from "../btf/btf.ts";
import { parseBtf } from "../btf/types.ts";
import { objGetInfoByFd } from "../ffi/bpf.ts";
import { BPF_PROG_INFO, readU32 } from "../ffi/commands.ts";
import { BpfError } from "../ffi/errors.ts";
import { openLiveBackend } from "../ffi/live.ts";
import { offHeapBytes } from "../ffi/memory.ts";
import type { Program, ProgramInfo } from "../programs/program.ts";
import {
  type Args,
  CommandError,
  isPrefix,
  openPinnedAt,
  type ProgRef,
  runSubcommand,
  takeProgRef,
  unlessGone,
  UsageError,
} from "./args.ts";
import type { JsonWriter } from "./json_writer.ts";
import type { CliContext } from "./map_command.ts";
import type { Output } from "./output.ts";
import {
  type DumpOptions,
  dumpXlated,
  KernelSymbols,
  type LineInfo,
  type XlatedProgram,
} from "./prog_dump.ts";
import { loadAll, takeLoadAll } from "./prog_load.ts";

/**
 * The usage text of `bpfmap prog`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROG_USAGE } from "./prog_command.ts";
 * assert.match(PROG_USAGE, /^Usage: bpfmap \[OPTIONS\] prog \{ show \| list \} \[PROG\]/);
 * assert.match(PROG_USAGE, /prog dump xlated PROG \[\{ opcodes \| linum \}\]/);
 * assert.match(PROG_USAGE, /prog \{ load \| loadall \} OBJ PATH \[pinmaps MAP_DIR\]/);
 * assert.match(PROG_USAGE, /PROG := \{ id PROG_ID \| pinned FILE \| tag PROG_TAG \| name PROG_NAME \}/);
 * ```
 */
export const PROG_USAGE = `Usage: bpfmap [OPTIONS] prog { show | list } [PROG]
       bpfmap [OPTIONS] prog dump xlated PROG [{ opcodes | linum }]
       bpfmap [OPTIONS] prog { load | loadall } OBJ PATH [pinmaps MAP_DIR]
       bpfmap [OPTIONS] prog help

       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       OPTIONS := { -j | --json } [{ -p | --pretty }] | --record FILE | --replay FILE
                  | --path NAME=DIR
`;

/**
 * What `prog show` prints of one program: its info, its fdinfo's `memlock`,
 * its full name, and the wall-clock time of boot that its `loaded_at` is
 * counted from.
 */
export interface ProgramView {
  info: ProgramInfo;
  /** The name bpftool prints: the BTF name of its function where the kernel kept 15 characters. */
  fullName: string;
  /** `memlock` of the program's fdinfo, in bytes, as the kernel wrote it. */
  memlock?: string | undefined;
  /** Nanoseconds from the Unix epoch to boot (`CLOCK_REALTIME - CLOCK_BOOTTIME`). */
  bootEpochNs: () => bigint;
}

/**
 * Runs `prog SUBCOMMAND ...`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { openSystem } from "../mod.ts";
 * import { Args } from "./args.ts";
 * import { JsonWriter } from "./json_writer.ts";
 * import { Output } from "./output.ts";
 * import { PROG_USAGE, runProgCommand } from "./prog_command.ts";
 *
 * await using system = await openSystem({ mode: "live" });
 * // r0 = 2 (XDP_PASS); exit
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const program = system.loadProgram({ type: "xdp", instructions, license: "GPL", name: "pass" });
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const json = new JsonWriter(out, false);
 * const ctx = { system, out, err: out, batchSize: 8192 };
 * runProgCommand({ ...ctx, json }, new Args(["show", "id", `${program.id}`]));
 * json.finish();
 * assert.throws(() => runProgCommand(ctx, new Args(["frob"])), {
 *   name: "UsageError",
 *   message: `unknown prog command 'frob'\n\n${PROG_USAGE}`,
 * });
 * out.flush();
 * closeSync(out.fd);
 * const shown = JSON.parse(readFileSync(`${dir}/out`, "utf8"));
 * assert.deepEqual(
 *   [shown.id, shown.type, shown.name, shown.tag, shown.gpl_compatible, shown.bytes_xlated],
 *   [program.id, "xdp", "pass", program.info().tag, true, 16],
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export function runProgCommand(ctx: CliContext, args: Args): void {
  runSubcommand(ctx, args, "prog", PROG_USAGE, {
    show,
    list: show,
    dump,
    // `load` first: a word that is a prefix of both is bpftool's `load`.
    load: (ctx, args) => loadAll(ctx, takeLoadAll(args), true),
    loadall: (ctx, args) => loadAll(ctx, takeLoadAll(args)),
  });
}

function show(ctx: CliContext, args: Args): void {
  const { json } = ctx;
  const boot = bootEpoch();
  if (args.left === 0) {
    json?.startArray();
    for (const id of ctx.system.listProgramIds()) {
      const program = openId(ctx, id);
      if (program === undefined) continue; // unloaded since it was listed
      printOne(ctx, program, boot);
    }
    json?.endArray();
    return;
  }
  const ref = takeProgRef(args);
  args.end();
  const programs = openPrograms(ctx, ref);
  const many = programs.length > 1;
  if (json && many) json.startArray();
  programs.forEach((program, i) => {
    try {
      printOne(ctx, program, boot);
    } catch (error) {
      for (const rest of programs.slice(i + 1)) rest.close();
      throw error;
    }
  });
  if (json && many) json.endArray();
}

/**
 * `prog dump xlated PROG [{ opcodes | linum }]`: one word after PROG at
 * most, as bpftool 7.1 takes it; `file` and `visual` are bpftool's alone.
 */
function dump(ctx: CliContext, args: Args): void {
  const mode = args.take("'xlated' after 'dump'");
  if (isPrefix(mode, "jited")) {
    throw new UsageError("bpfmap dumps xlated instructions only: no JIT disassembler");
  }
  if (!isPrefix(mode, "xlated")) throw new UsageError(`expected 'xlated', got: ${mode}`);
  const ref = takeProgRef(args);
  const options: DumpOptions = { opcodes: false, linum: false };
  const word = args.peek();
  if (word !== undefined) {
    if (isPrefix(word, "opcodes")) options.opcodes = true;
    else if (isPrefix(word, "linum")) options.linum = true;
    else if (isPrefix(word, "file") || isPrefix(word, "visual")) {
      throw new UsageError(`'${word}' is bpftool's: bpfmap dumps to stdout as text or JSON`);
    } else throw new UsageError(`expected 'opcodes' or 'linum', got: ${word}\n\n${PROG_USAGE}`);
    args.take("an option");
  }
  args.end();
  const programs = openPrograms(ctx, ref);
  const many = programs.length > 1;
  const { json } = ctx;
  // Symbols name calls; a replay has the recorded kernel's instructions but not its symbols.
  let symbols: KernelSymbols | undefined;
  const kernelSymbols = () => symbols ??= loadSymbols(ctx);
  if (json && many) json.startArray();
  programs.forEach((program, i) => {
    try {
      const info = program.info();
      const name = fullName(ctx, program, info);
      if (json && many) {
        json.startObject();
        headerJson(json, info, name);
        json.name("insns");
      } else if (many) ctx.out.write(headerPlain(info, name));
      const xlated = readXlated(ctx, program, info);
      dumpXlated(
        ctx.out,
        json,
        xlated,
        options,
        hasCalls(xlated.insns) ? kernelSymbols() : KernelSymbols.NONE,
      );
      if (json && many) json.endObject();
      else if (many && i !== programs.length - 1) ctx.out.write("\n");
    } finally {
      program.close();
    }
  });
  if (json && many) json.endArray();
}

/**
 * Whether a program calls anything (only then are the kernel's symbols
 * read), or with `subprograms`, any subprogram (`BPF_PSEUDO_CALL`).
 */
function hasCalls(insns: Uint8Array, subprograms = false): boolean {
  for (let at = 0; at + 1 < insns.byteLength; at += 8) {
    if ((insns[at]! & 0xf7) !== 0x85) continue;
    if (!subprograms || insns[at + 1]! >> 4 === 1) return true;
  }
  return false;
}

/** `/proc/kallsyms`, read live (root sees addresses), or none in a replay. */
function loadSymbols(ctx: CliContext): KernelSymbols {
  if (ctx.system.mode === "replay") return KernelSymbols.NONE;
  try {
    return KernelSymbols.parse(openLiveBackend().readTextFile("/proc/kallsyms"));
  } catch {
    return KernelSymbols.NONE;
  }
}

/** `sizeof(struct bpf_line_info)` as this code reads it. */
const LINE_INFO_SIZE = 16;

/**
 * A program's xlated instructions with their func and line info and JIT
 * symbols: the counts first, then the arrays with room for them, as
 * bpftool's `prep_prog_info`.
 */
function readXlated(ctx: CliContext, program: Program, info: ProgramInfo): XlatedProgram {
  const { kernel } = ctx.system;
  const f = BPF_PROG_INFO.fields;
  const bytes = offHeapBytes(BPF_PROG_INFO.size);
  const call = (nested: [typeof f.func_info, Uint8Array][]) => {
    const result = objGetInfoByFd(kernel, program.fd, bytes, BPF_PROG_INFO, nested);
    if (result < 0) throw new BpfError("BPF_OBJ_GET_INFO_BY_FD", -result, `program id ${info.id}`);
  };
  call([]);
  const counts = {
    xlated: readU32(bytes, f.xlated_prog_len),
    ksyms: readU32(bytes, f.nr_jited_ksyms),
    funcs: readU32(bytes, f.nr_func_info),
    funcSize: readU32(bytes, f.func_info_rec_size),
    lines: readU32(bytes, f.nr_line_info),
    lineSize: readU32(bytes, f.line_info_rec_size),
  };
  // The kernel tells a caller without CAP_BPF no lengths at all (bpftool's words, then why).
  if (counts.xlated === 0) {
    throw new CommandError(
      `program id ${info.id}: no instructions returned (the kernel shows them to CAP_BPF only)`,
    );
  }
  const insns = offHeapBytes(Math.max(counts.xlated, 1));
  const ksyms = offHeapBytes(Math.max(counts.ksyms * 8, 1));
  const funcs = offHeapBytes(Math.max(counts.funcs * counts.funcSize, 1));
  const lines = offHeapBytes(Math.max(counts.lines * counts.lineSize, 1));
  bytes.fill(0);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  view.setUint32(f.xlated_prog_len.offset, counts.xlated, true);
  view.setUint32(f.nr_func_info.offset, counts.funcs, true);
  view.setUint32(f.func_info_rec_size.offset, counts.funcSize, true);
  view.setUint32(f.nr_line_info.offset, counts.lines, true);
  view.setUint32(f.line_info_rec_size.offset, counts.lineSize, true);
  const nested: [typeof f.func_info, Uint8Array][] = [[f.xlated_prog_insns, insns]];
  if (counts.funcs) nested.push([f.func_info, funcs]);
  if (counts.lines) nested.push([f.line_info, lines]);
  call(nested);
  // The JIT images' addresses name calls to subprograms only, and differ every load: asked for
  // only then, so a recorded dump of a program without them is the same every run.
  if (counts.ksyms && hasCalls(insns, true)) {
    bytes.fill(0);
    view.setUint32(f.nr_jited_ksyms.offset, counts.ksyms, true);
    call([[f.jited_ksyms, ksyms]]);
  } else counts.ksyms = 0;
  const words = (from: Uint8Array, n: number, size: number, word: number) =>
    new DataView(from.buffer, from.byteOffset).getUint32(n * size + word * 4, true);
  const funcInfo = Array.from({ length: counts.funcs }, (_, n) => ({
    insnOff: words(funcs, n, counts.funcSize, 0),
    typeId: words(funcs, n, counts.funcSize, 1),
  }));
  const lineInfo: LineInfo[] = counts.lineSize < LINE_INFO_SIZE ? [] : Array.from(
    { length: counts.lines },
    (_, n) => ({
      insnOff: words(lines, n, counts.lineSize, 0),
      fileNameOff: words(lines, n, counts.lineSize, 1),
      lineOff: words(lines, n, counts.lineSize, 2),
      lineCol: words(lines, n, counts.lineSize, 3),
    }),
  );
  const jitedKsyms = Array.from(
    { length: counts.ksyms },
    (_, n) => new DataView(ksyms.buffer, ksyms.byteOffset).getBigUint64(n * 8, true),
  );
  return {
    insns: insns.slice(0, counts.xlated),
    jitedKsyms,
    funcInfo,
    lineInfo,
    btf: info.btfId ? programBtf(ctx, info.btfId) : undefined,
  };
}

/** A program's BTF: its types and its string section, for signatures and source lines. */
function programBtf(ctx: CliContext, id: number): XlatedProgram["btf"] {
  const btf = ctx.system.btfFromId(id);
  try {
    const { blob } = readBtfInfo(ctx.system.kernel, btf.fd);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const headerLength = view.getUint32(4, true);
    const start = headerLength + view.getUint32(16, true);
    return {
      types: parseBtf(blob),
      strings: blob.subarray(start, start + view.getUint32(20, true)),
    };
  } finally {
    btf.close();
  }
}

/** Prints a program and closes it. */
function printOne(ctx: CliContext, program: Program, boot: () => bigint): void {
  try {
    const info = program.info();
    const view: ProgramView = {
      info,
      fullName: fullName(ctx, program, info),
      memlock: ctx.system.kernel.backend.fdInfo(program.fd).memlock,
      bootEpochNs: boot,
    };
    showProgram(ctx.out, ctx.json, view);
  } finally {
    program.close();
  }
}

/** A program by id, or `undefined` if it is gone. */
function openId(ctx: CliContext, id: number): Program | undefined {
  return unlessGone(() => ctx.system.programFromId(id));
}

/** Opens the programs a PROG names: one for `id` and `pinned`, every match for `tag` and `name`. */
function openPrograms(ctx: CliContext, ref: ProgRef): Program[] {
  if (ref.kind === "id") {
    const program = openId(ctx, ref.id);
    if (program === undefined) throw new CommandError(`id ${ref.id}: no such program`);
    return [program];
  }
  if (ref.kind === "pinned") {
    return [openPinnedAt(ref.path, (path) => ctx.system.openPinnedProgram(path))];
  }
  const found: Program[] = [];
  try {
    for (const id of ctx.system.listProgramIds()) {
      const program = openId(ctx, id);
      if (program === undefined) continue;
      const info = program.info();
      // As bpftool: a name matches the full name it prints, a tag the kernel's tag.
      if (ref.kind === "tag" ? info.tag === ref.tag : fullName(ctx, program, info) === ref.name) {
        found.push(program);
      } else program.close();
    }
  } catch (error) {
    for (const program of found) program.close();
    throw error;
  }
  if (found.length === 0) {
    throw new CommandError(
      `${ref.kind} ${ref.kind === "tag" ? ref.tag : ref.name}: no such program`,
    );
  }
  return found;
}

/** The kernel keeps 15 characters of a name: a name that long may be cut. */
const NAME_KEPT = 15;
/** `sizeof(struct bpf_func_info)`: `insn_off` and `type_id`. */
const FUNC_INFO_SIZE = 8;

/**
 * The name bpftool prints (its `get_prog_full_name`): where the kernel kept
 * 15 characters, the name of the BTF function of the program's first
 * `func_info` record, else the kernel's name.
 */
function fullName(ctx: CliContext, program: Program, info: ProgramInfo): string {
  if (info.name.length < NAME_KEPT || info.btfId === 0) return info.name;
  const { kernel } = ctx.system;
  const { nr_func_info, func_info_rec_size, func_info } = BPF_PROG_INFO.fields;
  const bytes = offHeapBytes(BPF_PROG_INFO.size);
  const record = offHeapBytes(FUNC_INFO_SIZE);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  // Room for one record: the kernel writes the first and says how many there are.
  view.setUint32(nr_func_info.offset, 1, true);
  view.setUint32(func_info_rec_size.offset, FUNC_INFO_SIZE, true);
  if (objGetInfoByFd(kernel, program.fd, bytes, BPF_PROG_INFO, [[func_info, record]]) < 0) {
    return info.name;
  }
  if (readU32(bytes, nr_func_info) === 0) return info.name;
  const typeId = new DataView(record.buffer, record.byteOffset).getUint32(4, true);
  let btf: Btf;
  try {
    btf = Btf.fromId(info.btfId, kernel);
  } catch (error) {
    if (error instanceof BpfError) return info.name;
    throw error;
  }
  try {
    const type = btf.types[typeId];
    return type?.kind === "func" && type.name ? type.name : info.name;
  } finally {
    btf.close();
  }
}

/**
 * `prog show` of one program, as bpftool 7.1's `print_prog_plain` /
 * `print_prog_json` (without `pids`, which bpftool prints only when built
 * with skeletons, and without `metadata`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { decodeProgramInfo } from "../programs/program.ts";
 * import { BPF_PROG_INFO } from "../ffi/commands.ts";
 * import { JsonWriter } from "./json_writer.ts";
 * import { Output } from "./output.ts";
 * import { showProgram } from "./prog_command.ts";
 *
 * const info = {
 *   ...decodeProgramInfo(new Uint8Array(BPF_PROG_INFO.size), [3, 4]),
 *   type: 6, typeName: "xdp", id: 12, name: "counter", tag: "614b434cd8324ecc",
 *   xlatedLength: 16, gplCompatible: true, btfId: 7,
 *   loadTime: 5_000_000_000n, runTimeNs: 1500n, runCount: 3n,
 * };
 * const view = {
 *   info, fullName: "counter", memlock: "4096",
 *   bootEpochNs: () => 1_700_000_000_500_000_000n, // 2023-11-14T22:13:20.5Z
 * };
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * showProgram(out, undefined, view);
 * const json = new JsonWriter(out, false);
 * showProgram(out, json, view);
 * json.finish();
 * out.flush();
 * closeSync(out.fd);
 * const [plain, compact] = readFileSync(`${dir}/out`, "utf8").split(/(?<=\n)(?=\{)/) as [string, string];
 * // Loaded 5 s after boot, in this machine's time zone (strftime's %FT%T%z): boot + 5.5 s, floored.
 * const loadedAt = /\tloaded_at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([+-]\d\d)(\d\d)  uid 0\n/.exec(plain)!;
 * assert.equal(new Date(`${loadedAt[1]}${loadedAt[2]}:${loadedAt[3]}`).getTime(), 1_700_000_005_000);
 * assert.equal(plain.replace(loadedAt[0], "\tloaded_at …  uid 0\n"),
 *   "12: xdp  name counter  tag 614b434cd8324ecc  gpl run_time_ns 1500 run_cnt 3\n"
 *     + "\tloaded_at …  uid 0\n"
 *     + "\txlated 16B  not jited  memlock 4096B  map_ids 3,4\n\tbtf_id 7\n");
 * assert.equal(compact,
 *   '{"id":12,"type":"xdp","name":"counter","tag":"614b434cd8324ecc","gpl_compatible":true,'
 *     + '"run_time_ns":1500,"run_cnt":3,"loaded_at":1700000005,"uid":0,"bytes_xlated":16,'
 *     + '"jited":false,"bytes_memlock":4096,"map_ids":[3,4],"btf_id":7}\n');
 * rmSync(dir, { recursive: true });
 * ```
 */
export function showProgram(out: Output, json: JsonWriter | undefined, view: ProgramView): void {
  const { info, fullName, memlock } = view;
  // bpftool's print_boot_time: whole seconds since the epoch, rounded down.
  const loadedAt = info.loadTime === 0n
    ? undefined
    : (view.bootEpochNs() + info.loadTime) / 1_000_000_000n;
  if (json !== undefined) {
    json.startObject();
    headerJson(json, info, fullName);
    if (info.ifindex) {
      json.name("dev");
      json.startObject();
      json.rawField("ifindex", info.ifindex);
      json.rawField("ns_dev", String(info.netnsDev));
      json.rawField("ns_inode", String(info.netnsIno));
      json.endObject();
    }
    if (loadedAt !== undefined) {
      json.rawField("loaded_at", String(loadedAt));
      json.rawField("uid", info.createdByUid);
    }
    json.rawField("bytes_xlated", info.xlatedLength);
    json.rawField("jited", String(info.jitedLength !== 0));
    if (info.jitedLength) json.rawField("bytes_jited", info.jitedLength);
    if (memlock !== undefined) json.rawField("bytes_memlock", Number(memlock));
    if (info.mapIds.length > 0) {
      json.name("map_ids");
      json.startArray();
      for (const id of info.mapIds) json.raw(String(id));
      json.endArray();
    }
    if (info.btfId) json.rawField("btf_id", info.btfId);
    json.endObject();
    return;
  }
  let text = headerPlain(info, fullName);
  if (loadedAt !== undefined) {
    text += `\tloaded_at ${localTime(loadedAt)}  uid ${info.createdByUid}\n`;
  }
  text += `\txlated ${info.xlatedLength}B`;
  text += info.jitedLength ? `  jited ${info.jitedLength}B` : "  not jited";
  if (memlock !== undefined) text += `  memlock ${memlock}B`;
  if (info.mapIds.length > 0) text += `  map_ids ${info.mapIds.join(",")}`;
  if (info.btfId) text += `\n\tbtf_id ${info.btfId}`;
  out.write(text + "\n");
}

/** The first line of `prog show`, and of each program of a `prog dump` of several (`print_prog_header_plain`). */
function headerPlain(info: ProgramInfo, fullName: string): string {
  let text = `${info.id}: ${info.typeName}  ${
    info.name ? `name ${fullName}  ` : ""
  }tag ${info.tag}`;
  if (info.ifindex) {
    // bpftool names the device when it is in this network namespace; bpfmap gives its numbers.
    text +=
      `  offloaded_to ifindex ${info.ifindex} ns_dev ${info.netnsDev} ns_ino ${info.netnsIno}`;
  }
  if (info.gplCompatible) text += "  gpl";
  if (info.runTimeNs) text += ` run_time_ns ${info.runTimeNs} run_cnt ${info.runCount}`;
  if (info.recursionMisses) text += ` recursion_misses ${info.recursionMisses}`;
  return text + "\n";
}

/** The first members of `prog show`'s object, and of each program of a `prog dump` of several (`print_prog_header_json`). */
function headerJson(json: JsonWriter, info: ProgramInfo, fullName: string): void {
  json.rawField("id", info.id);
  if (!info.typeName.startsWith("type ")) json.stringField("type", info.typeName);
  else json.rawField("type", info.type);
  if (info.name) json.stringField("name", fullName);
  json.stringField("tag", info.tag);
  json.rawField("gpl_compatible", String(info.gplCompatible));
  if (info.runTimeNs) {
    json.rawField("run_time_ns", String(info.runTimeNs));
    json.rawField("run_cnt", String(info.runCount));
  }
  if (info.recursionMisses) json.rawField("recursion_misses", String(info.recursionMisses));
}

/** `strftime("%FT%T%z")` of `localtime(seconds)`: `2026-11-26T00:56:17+0000`. */
function localTime(seconds: bigint): string {
  const date = new Date(Number(seconds) * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const zone = `${offset < 0 ? "-" : "+"}${two(Math.trunc(Math.abs(offset) / 60))}${
    two(Math.abs(offset) % 60)
  }`;
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}T${
    two(date.getHours())
  }:${two(date.getMinutes())}:${two(date.getSeconds())}${zone}`;
}

/**
 * The wall-clock time of boot, read once when first asked (a replay never
 * asks: it records no load times). bpftool takes it as CLOCK_REALTIME minus
 * CLOCK_BOOTTIME, read one after the other; the kernel keeps both as offsets
 * from CLOCK_MONOTONIC, which `/proc/timer_list` prints (root only), so
 * their difference is the same time to a few nanoseconds, with no FFI call
 * that the backends lack. Without it: `/proc/uptime` (10 ms steps), which
 * may put `loaded_at` a second off bpftool's.
 */
function bootEpoch(): () => bigint {
  let epoch: bigint | undefined;
  return () => epoch ??= readBootEpoch();
}

function readBootEpoch(): bigint {
  // Through libc, as the backends read /proc: no Deno permission beyond FFI, and no entry in
  // a transcript (the clock differs every run).
  const live = openLiveBackend();
  try {
    const list = live.readTextFile("/proc/timer_list");
    // Clock bases 1 and 2 of CPU 0: CLOCK_REALTIME and CLOCK_BOOTTIME.
    const offset = (base: number) =>
      new RegExp(`^ clock ${base}:\\n(?:  .*\\n)*?  \\.offset: +(\\d+) nsecs`, "m").exec(list)?.[1];
    const real = offset(1);
    const boot = offset(2);
    if (real !== undefined && boot !== undefined) return BigInt(real) - BigInt(boot);
  } catch {
    // Not root: the coarser way.
  }
  const uptime = Number(live.readTextFile("/proc/uptime").split(" ")[0]);
  return BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(uptime * 1e9));
}
