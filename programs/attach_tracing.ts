/**
 * Tracing links: programs loaded against a kernel BTF id (`attachBtfId`)
 * attach to what that id names, with no other target: fentry, fexit and
 * fmod_ret on a kernel function, lsm on an LSM hook (`bpf_lsm_<hook>`),
 * tp_btf on a tracepoint (`btf_trace_<name>`), iter on an iterator
 * (`bpf_iter_<name>`).
 *
 * @module
 */

import { type AttachTypeName, attachTypeName, attachTypeNumber } from "../ffi/prog_types.ts";
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
  const { attachType } = checkOptions(opts);
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
      `${program.operation}: ${program.description} has attach type ${attachTypeName(type)}, `
        + `not a tracing one (trace_fentry, trace_fexit, modify_return, trace_raw_tp, trace_iter, lsm_mac)`,
    );
  }
  expectProgramType(program, [wanted]);
  return createLink(
    program.kernel,
    program.fd,
    { target: 0, attachType: type },
    `${program.description} (${attachTypeName(type)})`,
  );
}
