/**
 * What bpfmap says when the kernel refuses for a reason it can find out
 * cheaply and for certain: the kind of object an fd really is, a missing
 * capability, a frozen map, a map opened read- or write-only, a path outside
 * bpffs. The library's errors and the `bpfmap` command share these words.
 *
 * @module
 */

import { objectKind } from "../ffi/objects.ts";

/** CAP_SYS_ADMIN's bit in `/proc/self/status`'s capability masks. */
export const CAP_SYS_ADMIN = 21n;
/** CAP_DAC_OVERRIDE's bit. */
export const CAP_DAC_OVERRIDE = 1n;
/** CAP_BPF's bit (Linux 5.8). */
export const CAP_BPF = 39n;
/** The file system type of a bpffs in `/proc/self/mountinfo`. */
export const BPF_FS_TYPE = "bpf";

/**
 * The message of an fd that is not a map where one was asked for, as
 * bpftool's `incorrect object type`, naming where it came from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notAMapMessage } from "./hints.ts";
 *
 * assert.equal(
 *   notAMapMessage("/sys/fs/bpf/prog", { prog_type: "3" }),
 *   "/sys/fs/bpf/prog: incorrect object type: prog (prog_type 3), not a map",
 * );
 * assert.equal(
 *   notAMapMessage("fd 5", { memlock: "4096" }),
 *   "fd 5: incorrect object type: not a map (a program, link or BTF object)",
 * );
 * ```
 */
export function notAMapMessage(source: string, fdInfo: Record<string, string>): string {
  const kind = objectKind(fdInfo);
  const what = kind === "prog"
    ? `prog (prog_type ${fdInfo.prog_type})`
    : kind === "link"
    ? `link (link_type ${fdInfo.link_type})`
    : kind ?? "not a map (a program, link or BTF object)";
  return `${source}: incorrect object type: ${what}${kind === undefined ? "" : ", not a map"}`;
}

/**
 * The file system type `/proc/self/mountinfo` (its text) gives the absolute
 * path `path`: that of the longest mount point above it, the last such mount
 * where several stack up; `undefined` if no line covers it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileSystemOf } from "./hints.ts";
 *
 * const mountinfo = "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"
 *   + "30 22 0:30 / /sys/fs/bpf rw - bpf bpf rw\n";
 * assert.equal(fileSystemOf("/sys/fs/bpf/maps/m", mountinfo), "bpf");
 * assert.equal(fileSystemOf("/sys/fs/bpfx", mountinfo), "ext4");
 * ```
 */
export function fileSystemOf(path: string, mountinfo: string): string | undefined {
  let best: { point: string; type: string | undefined } | undefined;
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (fields.length < 5 || separator < 0) continue;
    // Spaces and the like are octal escapes there (\040); fields.length >= 5.
    const point = fields[4]!.replace(
      /\\([0-7]{3})/g,
      (_, octal) => String.fromCharCode(parseInt(octal, 8)),
    );
    const inside = point === "/" || path === point || path.startsWith(point + "/");
    if (inside && (best === undefined || point.length >= best.point.length)) {
      best = { point, type: fields[separator + 1] };
    }
  }
  return best?.type;
}

/** Why a process without CAP_BPF or CAP_SYS_ADMIN is refused. */
export const NO_CAP_BPF_HINT = "run as root or with CAP_BPF";
/** Why a write to a frozen map is refused. */
export const FROZEN_HINT = "the map is frozen: user space may not change it any more";
/** Why a pin or an open outside bpffs is refused (bpftool's words). */
export const NOT_BPFFS_HINT = "directory not in bpf file system (bpffs)";

/** Whether capability bit `cap` is set in the mask `caps`. */
export function hasCapability(caps: bigint, cap: bigint): boolean {
  return (caps >> cap & 1n) === 1n;
}

/**
 * The effective capabilities `/proc/self/status` (its text) gives, or
 * `undefined` if it has no `CapEff` line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CAP_BPF, effectiveCapabilities, hasCapability } from "./hints.ts";
 *
 * const caps = effectiveCapabilities("Name:\tbun\nCapEff:\t000000ffffffffff\n")!;
 * assert.equal(hasCapability(caps, CAP_BPF), true);
 * assert.equal(effectiveCapabilities("Name:\tbun\n"), undefined);
 * ```
 */
export function effectiveCapabilities(status: string): bigint | undefined {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return capEff === undefined ? undefined : BigInt(`0x${capEff}`);
}

/**
 * The hint for an EPERM where the process may lack the capabilities BPF
 * needs: {@linkcode NO_CAP_BPF_HINT} when `/proc/self/status` (its text)
 * shows neither CAP_BPF nor CAP_SYS_ADMIN, else `undefined` (the cause is
 * elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { capabilityHint } from "./hints.ts";
 *
 * assert.equal(capabilityHint("CapEff:\t0000000000000000\n"), "run as root or with CAP_BPF");
 * assert.equal(capabilityHint("CapEff:\t000001ffffffffff\n"), undefined); // root
 * ```
 */
export function capabilityHint(status: string): string | undefined {
  const caps = effectiveCapabilities(status);
  if (caps === undefined || hasCapability(caps, CAP_BPF) || hasCapability(caps, CAP_SYS_ADMIN)) {
    return undefined;
  }
  return NO_CAP_BPF_HINT;
}
