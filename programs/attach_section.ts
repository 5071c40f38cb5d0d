/**
 * Attaching a program of an object file where its section name says, as
 * libbpf's `bpf_program__attach` does: `tp/syscalls/sys_enter_kill`,
 * `kprobe/do_sys_openat2`, `uretprobe//usr/lib/libc.so.6:malloc`,
 * `raw_tp/sys_enter`, `fentry/...`, `tp_btf/...`, `lsm/...`, `iter/...`.
 * Sections whose hook needs more than their name (`xdp`, `tcx/ingress`,
 * `cgroup/...`: a device or a cgroup) are refused, naming the method that
 * takes it.
 *
 * @module
 */

import type { ProgramSection } from "../object/sections.ts";
import type { KprobeAttachOptions, UprobeAttachOptions } from "./attach_perf_link.ts";
import type { TracingAttachOptions } from "./attach_tracing.ts";
import type { Link } from "./link.ts";

/** What attaching by section calls: the attach methods of `Program`. */
export interface SectionAttachable {
  attachTracepoint(category: string, name: string): Link;
  attachKprobe(fn: string, opts?: KprobeAttachOptions): Link;
  attachKsyscall(name: string, opts?: KprobeAttachOptions): Link;
  attachUprobe(path: string, symbol: string | number, opts?: UprobeAttachOptions): Link;
  attachRawTracepoint(name: string): Link;
  attachTracing(opts?: TracingAttachOptions): Link;
  toString(): string;
}

/** The object sections of programs loaded from objects (see {@linkcode rememberSection}). */
const sections = new WeakMap<object, { name: string; section: ProgramSection }>();

/**
 * Remembers that `program` was loaded from section `name` (parsed as
 * `section`), so that `program.attach()` can attach it there: what an
 * object loader calls for each program it loads.
 */
export function rememberSection(program: object, name: string, section: ProgramSection): void {
  sections.set(program, { name, section });
}

/** The method that attaches programs of each section kind that needs more than its name. */
const NEEDS_A_TARGET: Readonly<Record<string, string>> = {
  xdp: "attachXdp(ifindex)",
  tcx: "attachTcx(ifindex, direction)",
  tc: "attachTcx(ifindex, direction)",
  cgroup: "attachCgroup(path, attachType)",
};

/**
 * Attaches `program` as section `name` (parsed as `section`) says.
 *
 * @throws {TypeError} for a section that names no target (`xdp`, `cgroup/skb`, ...), saying
 * which method attaches it, or one bpfmap cannot attach by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Program, programSection } from "../mod.ts";
 * import { attachBySection, rememberSection } from "./attach_section.ts";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using tracer = Program.load({ type: "raw_tracepoint", instructions, license: "GPL" });
 * using link = attachBySection(tracer, "raw_tp/sys_exit", programSection("raw_tp/sys_exit")!);
 * assert.equal(link.info().tracepoint, "sys_exit");
 * // What an object loader does, so that program.attach() knows where:
 * rememberSection(tracer, "raw_tp/sys_enter", programSection("raw_tp/sys_enter")!);
 * using again = tracer.attach();
 * assert.equal(again.info().tracepoint, "sys_enter");
 * ```
 */
export function attachBySection(
  program: SectionAttachable,
  name: string,
  section: ProgramSection,
): Link {
  const target = section.target;
  switch (target?.kind) {
    case "tracepoint":
      return program.attachTracepoint(target.category, target.name);
    case "kprobe":
      return program.attachKprobe(target.function, {
        retprobe: target.retprobe,
        ...(target.offset === 0 ? {} : { offset: target.offset }),
      });
    case "ksyscall":
      return program.attachKsyscall(target.syscall, { retprobe: target.retprobe });
    case "uprobe":
      return program.attachUprobe(target.path, target.function, { retprobe: target.retprobe });
    case "raw_tracepoint":
      return program.attachRawTracepoint(target.name);
    case "btf":
      return program.attachTracing();
  }
  const kind = name.split("/")[0]!;
  const method = NEEDS_A_TARGET[kind];
  throw new TypeError(
    method === undefined
      ? `attach: ${program} is of section "${name}", which bpfmap cannot attach by name`
      : `attach: ${program} is of section "${name}", which names no ${
        kind === "cgroup" ? "cgroup" : "device"
      }: call ${method}`,
  );
}

/**
 * Attaches `program` where the section it was loaded from says (see
 * {@linkcode attachBySection}).
 *
 * @throws {TypeError} for a program not loaded from an object file.
 */
export function attachByRememberedSection(program: SectionAttachable): Link {
  const known = sections.get(program);
  if (known === undefined) {
    throw new TypeError(
      `attach: ${program} was not loaded from an object file: call the attach method of its hook`,
    );
  }
  return attachBySection(program, known.name, known.section);
}
