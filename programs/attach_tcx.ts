/**
 * tcx (Linux 6.6): `sched_cls` programs on a network device's ingress or
 * egress, through links. A device holds many tcx programs, run in order;
 * a link goes last unless asked to go first.
 *
 * @module
 */

import { BPF_LINK_CREATE_TCX } from "../ffi/commands.ts";
import { attachTypeNumber } from "../ffi/prog_types.ts";
import { describe } from "../ffi/validate.ts";
import { createShapedLink } from "./attach_perf_link.ts";
import {
  type AttachingProgram,
  checkOptions,
  createLink,
  expectProgramType,
  Link,
} from "./link.ts";
import { checkDevice, ifindex as indexOf } from "./netdev.ts";

/** Which way the packets a tcx program sees go. */
export type TcxDirection = "ingress" | "egress";

/** `BPF_F_BEFORE`: with no relative program, the link runs first. */
export const BPF_F_BEFORE = 1 << 3;
/** `BPF_F_AFTER`: with no relative program, the link runs last (the default). */
export const BPF_F_AFTER = 1 << 4;
/** `BPF_F_LINK`: tcx's `relative_fd` is a link's fd, not a program's. */
export const BPF_F_LINK = 1 << 13;

/** What a tcx link may be placed next to: a program on the hook, or the link holding one. */
export type TcxRelative = Link | { readonly fd: number };

/** Options of `Program.attachTcx`. */
export interface TcxAttachOptions {
  /**
   * Where among the device's tcx programs this one runs: `"last"` (the
   * default, `BPF_F_AFTER`) or `"first"` (`BPF_F_BEFORE`).
   */
  position?: "first" | "last";
  /**
   * Runs just before this program or link on the same hook (`BPF_F_BEFORE`
   * with its fd as `relative_fd`; `BPF_F_LINK` for a link). ENOENT if it is
   * not on the hook. Not with `position` or `after`.
   */
  before?: TcxRelative;
  /** Runs just after this program or link on the same hook (`BPF_F_AFTER`); see `before`. */
  after?: TcxRelative;
  /**
   * Attaches only if the hook's programs are at this revision (the kernel
   * counts each change from 1 on an empty hook), else ESTALE: a change
   * made meanwhile by someone else is not overlooked. Default: any (0).
   */
  expectedRevision?: bigint | number;
}

/** tcx's return values: `TCX_NEXT` (-1) runs the next program, `TCX_PASS` (0) lets the packet go on. */
export const TCX_NEXT = -1;

/**
 * Attaches a `sched_cls` program to a network device's `direction` (the
 * device named, as `ifindex()` finds it, or by index) with a tcx link
 * (`BPF_LINK_CREATE`, attach type `tcx_ingress`/`tcx_egress`). A program of
 * another type, an ifindex that is not a positive integer, a direction or
 * position that is neither, are refused before any call.
 *
 * @throws {BpfError} when the kernel refuses (ENODEV: no such device; op `if_nametoindex` for a
 *   name no device has).
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
 * using link = program.attachTcx("lo", "ingress"); // loopback, by name
 * assert.deepEqual([link.info().ifindex, link.info().attachType], [1, "tcx_ingress"]);
 * assert.throws(() => program.attachTcx(1, "inbound" as never), TypeError);
 * // Another program, placed just before that link; the hook has changed since revision 1.
 * using other = Program.load({ type: "sched_cls", instructions, license: "GPL" });
 * using before = other.attachTcx(1, "ingress", { before: link });
 * assert.equal(before.info().attachType, "tcx_ingress");
 * before.close();
 * assert.throws(() => other.attachTcx(1, "ingress", { expectedRevision: 1 }), { code: "ESTALE" });
 * ```
 */
export function attachTcx(
  program: AttachingProgram,
  device: string | number,
  direction: TcxDirection,
  opts?: TcxAttachOptions,
): Link {
  expectProgramType(program, ["sched_cls"]);
  checkDevice(device);
  if (direction !== "ingress" && direction !== "egress") {
    throw new TypeError(`direction: expected "ingress" or "egress", got ${describe(direction)}`);
  }
  const { position, before, after, expectedRevision } = checkOptions(opts);
  if (position !== undefined && position !== "first" && position !== "last") {
    throw new TypeError(`opts.position: expected "first" or "last", got ${describe(position)}`);
  }
  const placed = [position, before, after].filter((option) => option !== undefined).length;
  if (placed > 1) {
    throw new TypeError("opts: position, before and after each place the link: give one");
  }
  const relative = before ?? after;
  const relativeFd = relative === undefined
    ? 0
    : relativeFdOf(relative, before ? "before" : "after");
  const revision = expectedRevision === undefined ? 0n : checkRevision(expectedRevision);
  const ifindex = typeof device === "string" ? indexOf(device, program.kernel) : device;
  const link = {
    target: ifindex,
    attachType: attachTypeNumber(`tcx_${direction}`),
    flags: (position === "first" || before !== undefined ? BPF_F_BEFORE : BPF_F_AFTER)
      | (relative instanceof Link ? BPF_F_LINK : 0),
  };
  const what = `${program.description} on ifindex ${ifindex} (tcx ${direction})`;
  // Placed by position alone: the plain shape, as before (its transcripts unchanged).
  if (relativeFd === 0 && revision === 0n) {
    return createLink(program.kernel, program.fd, link, what);
  }
  const { relative_fd, expected_revision } = BPF_LINK_CREATE_TCX.fields;
  return createShapedLink(program.kernel, program.fd, BPF_LINK_CREATE_TCX, link, (attr) => {
    attr.setU32(relative_fd, relativeFd);
    attr.setBigU64(expected_revision, revision);
  }, what);
}

/** The fd of an open program or link, checked before any call. */
function relativeFdOf(relative: unknown, option: string): number {
  const fd = (relative as { fd?: unknown } | null)?.fd;
  if (typeof relative !== "object" || typeof fd !== "number" || !(fd > 0)) {
    throw new TypeError(
      `opts.${option}: expected an open Program or Link, got ${describe(relative)}`,
    );
  }
  return fd;
}

function checkRevision(revision: unknown): bigint {
  const value = typeof revision === "number" && Number.isSafeInteger(revision)
    ? BigInt(revision)
    : revision;
  if (typeof value !== "bigint" || value < 1n || value >= 1n << 64n) {
    throw new RangeError(`opts.expectedRevision: expected a u64 from 1, got ${describe(revision)}`);
  }
  return value;
}
