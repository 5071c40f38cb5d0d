/**
 * Cgroup links: programs on a cgroup v2 directory, run for every process
 * in it and in the cgroups below it (`cgroup_skb` on its packets,
 * `cgroup_sock` on its sockets' creation, ...).
 *
 * @module
 */

import { closeSync, constants, openSync } from "node:fs";
import { type AttachTypeName, attachTypeName, attachTypeNumber } from "../ffi/prog_types.ts";
import { checkInteger, describe } from "../ffi/validate.ts";
import { type AttachingProgram, createLink, expectProgramType, type Link } from "./link.ts";

/** The program type each cgroup attach type takes (the kernel's `attach_type_to_prog_type`). */
const CGROUP_PROGRAM_TYPES: ReadonlyMap<string, string> = new Map([
  ["cgroup_inet_ingress", "cgroup_skb"],
  ["cgroup_inet_egress", "cgroup_skb"],
  ["cgroup_inet_sock_create", "cgroup_sock"],
  ["cgroup_inet_sock_release", "cgroup_sock"],
  ["cgroup_inet4_post_bind", "cgroup_sock"],
  ["cgroup_inet6_post_bind", "cgroup_sock"],
  ["cgroup_sock_ops", "sock_ops"],
  ["cgroup_device", "cgroup_device"],
  ["cgroup_sysctl", "cgroup_sysctl"],
  ["cgroup_getsockopt", "cgroup_sockopt"],
  ["cgroup_setsockopt", "cgroup_sockopt"],
  ...[
    "inet4_bind",
    "inet6_bind",
    "inet4_connect",
    "inet6_connect",
    "udp4_sendmsg",
    "udp6_sendmsg",
    "udp4_recvmsg",
    "udp6_recvmsg",
    "inet4_getpeername",
    "inet6_getpeername",
    "inet4_getsockname",
    "inet6_getsockname",
    "unix_connect",
    "unix_sendmsg",
    "unix_recvmsg",
    "unix_getpeername",
    "unix_getsockname",
  ].map((hook): [string, string] => [`cgroup_${hook}`, "cgroup_sock_addr"]),
]);

/** An attach type a cgroup link takes: `"cgroup_inet_ingress"`, `"cgroup_inet_sock_create"`, ... */
export type CgroupAttachType = Extract<AttachTypeName, `cgroup_${string}`>;

/**
 * Attaches a program to a cgroup v2 directory (its path, or an fd open on
 * it) as `attachType`, with a cgroup link (`BPF_LINK_CREATE`). A path is
 * opened for the call (with node:fs: Deno asks `--allow-read`, and `--allow-all` for a path
 * under `/sys`, so mount cgroup2 elsewhere or pass an fd) and closed after it: the link holds
 * the cgroup. An
 * attach type that is not a cgroup's, or that the program's type does not
 * run at, is refused before any call.
 *
 * @throws {BpfError} when the kernel refuses (EBADF: the fd is not a cgroup's directory).
 * @throws {Error} when the path cannot be opened (ENOENT, ENOTDIR).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { mkdirSync, mkdtempSync, rmdirSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { Program } from "../mod.ts";
 *
 * // A cgroup of its own, in the cgroup2 hierarchy mounted under /tmp (Deno grants /sys to
 * // --allow-all only); r0 = 1; exit: every packet allowed.
 * const mount = mkdtempSync(join(tmpdir(), "cgroup2-"));
 * execFileSync("mount", ["-t", "cgroup2", "none", mount]);
 * const cgroup = join(mount, "attach-example");
 * mkdirSync(cgroup);
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * try {
 *   using program = Program.load({ type: "cgroup_skb", instructions, license: "GPL" });
 *   using link = program.attachCgroup(cgroup, "cgroup_inet_egress");
 *   assert.deepEqual([link.info().typeName, link.info().attachType], ["cgroup", "cgroup_inet_egress"]);
 *   assert.throws(() => program.attachCgroup(cgroup, "cgroup_inet_sock_create"), /not a cgroup_sock/);
 * } finally {
 *   rmdirSync(cgroup);
 *   execFileSync("umount", [mount]);
 *   rmdirSync(mount);
 * }
 * ```
 */
export function attachCgroup(
  program: AttachingProgram,
  cgroup: string | number,
  attachType: CgroupAttachType | number,
): Link {
  const type = attachTypeNumber(attachType, "attachType");
  const wanted = CGROUP_PROGRAM_TYPES.get(attachTypeName(type));
  if (wanted === undefined) {
    throw new TypeError(
      `attachType: ${
        attachTypeName(type)
      } is not a cgroup attach type (e.g. "cgroup_inet_ingress")`,
    );
  }
  expectProgramType(program, [wanted]);
  const what = `${program.description} on cgroup ${
    typeof cgroup === "string" ? cgroup : `fd ${cgroup}`
  } (${attachTypeName(type)})`;
  if (typeof cgroup === "number") {
    checkInteger(cgroup, "cgroup", 0, 0x7fff_ffff);
    return createLink(program.kernel, program.fd, { target: cgroup, attachType: type }, what);
  }
  if (typeof cgroup !== "string" || cgroup === "" || cgroup.includes("\0")) {
    throw new TypeError(
      `cgroup: expected a cgroup directory's path or an fd open on it, got ${describe(cgroup)}`,
    );
  }
  // The fd the kernel is given is only looked at during the call: the link keeps the cgroup.
  const fd = openSync(cgroup, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return createLink(program.kernel, program.fd, { target: fd, attachType: type }, what);
  } finally {
    closeSync(fd);
  }
}
