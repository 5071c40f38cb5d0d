/**
 * `bpfmap prog ...`: bpftool's `prog show` and `prog list`, with the same
 * syntax and the same output (plain, `-j` and `-p`), on bpfmap's systems,
 * so they record and replay as the map commands do.
 *
 * @module
 */

import { Btf } from "../btf/btf.ts";
import { objGetInfoByFd } from "../ffi/bpf.ts";
import { BPF_PROG_INFO, readU32 } from "../ffi/commands.ts";
import { BpfError } from "../ffi/errors.ts";
import { openLiveBackend } from "../ffi/live.ts";
import { offHeapBytes } from "../ffi/memory.ts";
import type { Program, ProgramInfo } from "../programs/program.ts";
import { Args, CommandError, isPrefix, type ProgRef, takeProgRef, UsageError } from "./args.ts";
import type { JsonWriter } from "./json_writer.ts";
import type { CliContext } from "./map_command.ts";
import type { Output } from "./output.ts";

/**
 * The usage text of `bpfmap prog`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PROG_USAGE } from "./prog_command.ts";
 * assert.match(PROG_USAGE, /^Usage: bpfmap \[OPTIONS\] prog \{ show \| list \} \[PROG\]/);
 * assert.match(PROG_USAGE, /PROG := \{ id PROG_ID \| pinned FILE \| tag PROG_TAG \| name PROG_NAME \}/);
 * ```
 */
export const PROG_USAGE = `Usage: bpfmap [OPTIONS] prog { show | list } [PROG]
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
  const command = args.take("a prog command (show, list, help)");
  if (isPrefix(command, "show") || isPrefix(command, "list")) show(ctx, args);
  else if (isPrefix(command, "help")) {
    args.end();
    if (ctx.json) ctx.json.raw("null");
    else ctx.out.write(PROG_USAGE);
  } else throw new UsageError(`unknown prog command '${command}'\n\n${PROG_USAGE}`);
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
  try {
    return ctx.system.programFromId(id);
  } catch (error) {
    if (error instanceof BpfError && error.code === "ENOENT") return undefined;
    throw error;
  }
}

/** Opens the programs a PROG names: one for `id` and `pinned`, every match for `tag` and `name`. */
function openPrograms(ctx: CliContext, ref: ProgRef): Program[] {
  if (ref.kind === "id") {
    const program = openId(ctx, ref.id);
    if (program === undefined) throw new CommandError(`id ${ref.id}: no such program`);
    return [program];
  }
  if (ref.kind === "pinned") {
    try {
      return [ctx.system.openPinnedProgram(ref.path)];
    } catch (error) {
      if (error instanceof BpfError && error.code === "ENOENT") {
        throw new CommandError(`pinned ${ref.path}: no such pinned object`);
      }
      throw error;
    }
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
  const known = !info.typeName.startsWith("type ");
  // bpftool's print_boot_time: whole seconds since the epoch, rounded down.
  const loadedAt = info.loadTime === 0n
    ? undefined
    : (view.bootEpochNs() + info.loadTime) / 1_000_000_000n;
  if (json !== undefined) {
    json.startObject();
    json.rawField("id", info.id);
    if (known) json.stringField("type", info.typeName);
    else json.rawField("type", info.type);
    if (info.name) json.stringField("name", fullName);
    json.stringField("tag", info.tag);
    json.rawField("gpl_compatible", String(info.gplCompatible));
    if (info.runTimeNs) {
      json.rawField("run_time_ns", String(info.runTimeNs));
      json.rawField("run_cnt", String(info.runCount));
    }
    if (info.recursionMisses) json.rawField("recursion_misses", String(info.recursionMisses));
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
  text += "\n";
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
