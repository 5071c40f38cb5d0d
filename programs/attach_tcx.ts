/**
 * tcx (Linux 6.6): `sched_cls` programs on a network device's ingress or
 * egress, through links. A device holds many tcx programs, run in order;
 * a link goes last unless asked to go first.
 *
 * @module
 */

import { attachTypeNumber } from "../ffi/prog_types.ts";
import { checkInteger, describe } from "../ffi/validate.ts";
import {
  type AttachingProgram,
  checkOptions,
  createLink,
  expectProgramType,
  type Link,
} from "./link.ts";

/** Which way the packets a tcx program sees go. */
export type TcxDirection = "ingress" | "egress";

/** `BPF_F_BEFORE`: with no relative program, the link runs first. */
export const BPF_F_BEFORE = 1 << 3;
/** `BPF_F_AFTER`: with no relative program, the link runs last (the default). */
export const BPF_F_AFTER = 1 << 4;

/** Options of `Program.attachTcx`. */
export interface TcxAttachOptions {
  /**
   * Where among the device's tcx programs this one runs: `"last"` (the
   * default, `BPF_F_AFTER`) or `"first"` (`BPF_F_BEFORE`).
   */
  position?: "first" | "last";
}

/** tcx's return values: `TCX_NEXT` (-1) runs the next program, `TCX_PASS` (0) lets the packet go on. */
export const TCX_NEXT = -1;

/**
 * Attaches a `sched_cls` program to device `ifindex`'s `direction` with a
 * tcx link (`BPF_LINK_CREATE`, attach type `tcx_ingress`/`tcx_egress`).
 * A program of another type, an ifindex that is not a positive integer,
 * a direction or position that is neither, are refused before any call.
 *
 * @throws {BpfError} when the kernel refuses (ENODEV: no such device).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Program, TCX_NEXT } from "../mod.ts";
 *
 * // r0 = TCX_NEXT; exit: passes every packet on to the next program.
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "sched_cls", instructions, license: "GPL" });
 * assert.equal(TCX_NEXT, -1);
 * using link = program.attachTcx(1, "ingress"); // loopback
 * assert.deepEqual([link.info().ifindex, link.info().attachType], [1, "tcx_ingress"]);
 * assert.throws(() => program.attachTcx(1, "inbound" as never), TypeError);
 * ```
 */
export function attachTcx(
  program: AttachingProgram,
  ifindex: number,
  direction: TcxDirection,
  opts?: TcxAttachOptions,
): Link {
  expectProgramType(program, ["sched_cls"]);
  checkInteger(ifindex, "ifindex", 1, 0x7fff_ffff);
  if (direction !== "ingress" && direction !== "egress") {
    throw new TypeError(`direction: expected "ingress" or "egress", got ${describe(direction)}`);
  }
  const { position = "last" } = checkOptions(opts);
  if (position !== "first" && position !== "last") {
    throw new TypeError(`opts.position: expected "first" or "last", got ${describe(position)}`);
  }
  return createLink(program.kernel, program.fd, {
    target: ifindex,
    attachType: attachTypeNumber(`tcx_${direction}`),
    flags: position === "first" ? BPF_F_BEFORE : BPF_F_AFTER,
  }, `${program.description} on ifindex ${ifindex} (tcx ${direction})`);
}
