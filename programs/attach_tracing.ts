/**
 * Tracing links: programs loaded against a kernel BTF id (`attachBtfId`)
 * attach to what that id names, with no other target: fentry, fexit and
 * fmod_ret on a kernel function, lsm on an LSM hook (`bpf_lsm_<hook>`),
 * tp_btf on a tracepoint (`btf_trace_<name>`), iter on an iterator
 * (`bpf_iter_<name>`).
 *
 * @module
 */

import { kernelBtf } from "../btf/kernel_btf.ts";
import type { BtfKind } from "../btf/types.ts";
import { BPF_LINK_CREATE_ITER } from "../ffi/commands.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import { offHeapBytes } from "../ffi/memory.ts";
import { type AttachTypeName, attachTypeName, attachTypeNumber } from "../ffi/prog_types.ts";
import { describe } from "../ffi/validate.ts";
import { createShapedLink } from "./attach_perf_link.ts";
import {
  type AttachingProgram,
  checkOptions,
  createLink,
  expectProgramType,
  type Link,
} from "./link.ts";

/** The attach types a tracing link takes, and the program types that load with each. */
const TRACING_ATTACH_TYPES: ReadonlyMap<string, string> = new Map([
  ["trace_fentry", "tracing"],
  ["trace_fexit", "tracing"],
  ["modify_return", "tracing"],
  ["trace_raw_tp", "tracing"],
  ["trace_iter", "tracing"],
  ["lsm_mac", "lsm"],
]);

/** An attach type of a tracing link. */
export type TracingAttachType = Extract<
  AttachTypeName,
  "trace_fentry" | "trace_fexit" | "modify_return" | "trace_raw_tp" | "trace_iter" | "lsm_mac"
>;

/** Options of `Program.attachTracing`. */
export interface TracingAttachOptions {
  /**
   * The attach type the program was loaded with (`expectedAttachType`):
   * needed only for a program this process did not load (by id, pin or
   * fd), whose attach type the kernel does not tell.
   */
  attachType?: TracingAttachType | number;
  /**
   * For an `iter/bpf_map_elem` iterator (attach type `trace_iter`): the map
   * whose elements it walks, one run per element (`BPF_LINK_CREATE`'s
   * `iter_info`, a `bpf_iter_link_info` naming the map's fd). Any open map,
   * or an object with its fd.
   */
  iterMap?: { readonly fd: number };
}

/**
 * Attaches a tracing or lsm program to the target its `attachBtfId` named
 * at load (`BPF_LINK_CREATE` with no target and the program's expected
 * attach type, which the kernel requires to match). A program of another
 * type, or whose attach type is unknown or not a tracing one, is refused
 * before any call.
 *
 * @throws {BpfError} when the kernel refuses.
 */
export function attachTracing(
  program: AttachingProgram,
  expectedAttachType: number | undefined,
  opts?: TracingAttachOptions,
): Link {
  expectProgramType(program, ["tracing", "lsm"]);
  const { attachType, iterMap } = checkOptions(opts);
  const mapFd = iterMap === undefined ? undefined : (iterMap as { fd?: unknown } | null)?.fd;
  if (iterMap !== undefined && !(typeof mapFd === "number" && mapFd > 0)) {
    throw new TypeError(`opts.iterMap: expected an open map, got ${describe(iterMap)}`);
  }
  const type = attachType === undefined
    ? expectedAttachType
    : attachTypeNumber(attachType, "opts.attachType");
  if (type === undefined) {
    throw new TypeError(
      `${program.operation}: ${program.description} was not loaded by this process: `
        + `say its opts.attachType ("trace_fentry", "lsm_mac", ...)`,
    );
  }
  const wanted = TRACING_ATTACH_TYPES.get(attachTypeName(type));
  if (wanted === undefined) {
    throw new TypeError(
      `${program.operation}: attach type ${attachTypeName(type)} is not a tracing one `
        + `(trace_fentry, trace_fexit, modify_return, trace_raw_tp, trace_iter, lsm_mac)`,
    );
  }
  expectProgramType(program, [wanted]);
  const what = `${program.description} (${attachTypeName(type)})`;
  const link = { target: 0, attachType: type };
  if (mapFd === undefined) return createLink(program.kernel, program.fd, link, what);
  if (attachTypeName(type) !== "trace_iter") {
    throw new TypeError(`opts.iterMap: ${what} is no iterator`);
  }
  // union bpf_iter_link_info: map.map_fd is its first u32, all the kernel needs to read.
  const info = offHeapBytes(4);
  new DataView(info.buffer, info.byteOffset, 4).setUint32(0, mapFd as number, true);
  const { iter_info, iter_info_len } = BPF_LINK_CREATE_ITER.fields;
  return createShapedLink(program.kernel, program.fd, BPF_LINK_CREATE_ITER, link, (attr) => {
    attr.setPointer(iter_info, info);
    attr.setU32(iter_info_len, info.byteLength);
  }, what);
}

/** How a tracing target is named in the kernel's BTF, by attach type: a prefix and a kind. */
const TARGET_NAMES: ReadonlyMap<string, { prefix: string; kind: BtfKind }> = new Map([
  ["trace_fentry", { prefix: "", kind: "func" }],
  ["trace_fexit", { prefix: "", kind: "func" }],
  ["modify_return", { prefix: "", kind: "func" }],
  ["lsm_mac", { prefix: "bpf_lsm_", kind: "func" }],
  ["trace_raw_tp", { prefix: "btf_trace_", kind: "typedef" }],
  ["trace_iter", { prefix: "bpf_iter_", kind: "func" }],
]);

/**
 * The kernel BTF id a tracing program of `attachType` loads against to
 * attach to `target` (libbpf's section suffix): a kernel function for
 * fentry, fexit and fmod_ret (`"do_sys_openat2"`), an LSM hook for lsm
 * (`"file_open"`: `bpf_lsm_file_open`), a tracepoint for tp_btf
 * (`"sys_enter"`: the typedef `btf_trace_sys_enter`), an iterator for iter
 * (`"bpf_map"`: `bpf_iter_bpf_map`). Read from vmlinux's BTF through the
 * kernel's backend (so a recorded run replays it); module BTF is not
 * searched (its id would need the module's BTF fd at load).
 *
 * @throws {TypeError} for an attach type that is not a tracing one, or a target vmlinux lacks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attachBtfIdOf, Program } from "../mod.ts";
 *
 * // r0 = 0; exit: an iterator over every map, printing nothing.
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * const attachBtfId = attachBtfIdOf("trace_iter", "bpf_map");
 * using iter = Program.load({
 *   type: "tracing",
 *   expectedAttachType: "trace_iter",
 *   attachBtfId,
 *   instructions,
 *   license: "GPL",
 * });
 * assert.equal(iter.info().attachBtfId, attachBtfId);
 * using link = iter.attachTracing();
 * assert.equal(link.info().typeName, "iter");
 * assert.throws(() => attachBtfIdOf("trace_fentry", "no_such_function"), TypeError);
 * ```
 */
export function attachBtfIdOf(
  attachType: TracingAttachType,
  target: string,
  kernel: Kernel = liveKernel(),
): number {
  const naming = TARGET_NAMES.get(attachType);
  if (naming === undefined) {
    throw new TypeError(
      `attachType: expected one of ${[...TARGET_NAMES.keys()].join(", ")}, got ${
        describe(attachType)
      }`,
    );
  }
  if (typeof target !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(target)) {
    throw new TypeError(`target: expected a C identifier, got ${describe(target)}`);
  }
  const name = naming.prefix + target;
  const [id] = kernelBtf(kernel).vmlinux.named(name, naming.kind);
  if (id === undefined) {
    throw new TypeError(
      `target: the kernel's BTF has no ${naming.kind} ${name} (for ${attachType} ${target})`,
    );
  }
  return id;
}
