/**
 * The kernel's program types (`enum bpf_prog_type`) and attach types
 * (`enum bpf_attach_type`), by number and by the lower-case name bpftool
 * prints: the one place these numbers are written down.
 *
 * @module
 */

/** The lower-case names of `enum bpf_prog_type`, in kernel order (Linux 6.18). */
const PROG_TYPE_NAMES = [
  "unspec",
  "socket_filter",
  "kprobe",
  "sched_cls",
  "sched_act",
  "tracepoint",
  "xdp",
  "perf_event",
  "cgroup_skb",
  "cgroup_sock",
  "lwt_in",
  "lwt_out",
  "lwt_xmit",
  "sock_ops",
  "sk_skb",
  "cgroup_device",
  "sk_msg",
  "raw_tracepoint",
  "cgroup_sock_addr",
  "lwt_seg6local",
  "lirc_mode2",
  "sk_reuseport",
  "flow_dissector",
  "cgroup_sysctl",
  "raw_tracepoint_writable",
  "cgroup_sockopt",
  "tracing",
  "struct_ops",
  "ext",
  "lsm",
  "sk_lookup",
  "syscall",
  "netfilter",
] as const;

/** The lower-case names of `enum bpf_attach_type`, without `BPF_`, in kernel order (Linux 6.18). */
const ATTACH_TYPE_NAMES = [
  "cgroup_inet_ingress",
  "cgroup_inet_egress",
  "cgroup_inet_sock_create",
  "cgroup_sock_ops",
  "sk_skb_stream_parser",
  "sk_skb_stream_verdict",
  "cgroup_device",
  "sk_msg_verdict",
  "cgroup_inet4_bind",
  "cgroup_inet6_bind",
  "cgroup_inet4_connect",
  "cgroup_inet6_connect",
  "cgroup_inet4_post_bind",
  "cgroup_inet6_post_bind",
  "cgroup_udp4_sendmsg",
  "cgroup_udp6_sendmsg",
  "lirc_mode2",
  "flow_dissector",
  "cgroup_sysctl",
  "cgroup_udp4_recvmsg",
  "cgroup_udp6_recvmsg",
  "cgroup_getsockopt",
  "cgroup_setsockopt",
  "trace_raw_tp",
  "trace_fentry",
  "trace_fexit",
  "modify_return",
  "lsm_mac",
  "trace_iter",
  "cgroup_inet4_getpeername",
  "cgroup_inet6_getpeername",
  "cgroup_inet4_getsockname",
  "cgroup_inet6_getsockname",
  "xdp_devmap",
  "cgroup_inet_sock_release",
  "xdp_cpumap",
  "sk_lookup",
  "xdp",
  "sk_skb_verdict",
  "sk_reuseport_select",
  "sk_reuseport_select_or_migrate",
  "perf_event",
  "trace_kprobe_multi",
  "lsm_cgroup",
  "struct_ops",
  "netfilter",
  "tcx_ingress",
  "tcx_egress",
  "trace_uprobe_multi",
  "cgroup_unix_connect",
  "cgroup_unix_sendmsg",
  "cgroup_unix_recvmsg",
  "cgroup_unix_getpeername",
  "cgroup_unix_getsockname",
  "netkit_primary",
  "netkit_peer",
  "trace_kprobe_session",
  "trace_uprobe_session",
] as const;

/** A program type's name: `"xdp"`, `"socket_filter"`, `"tracing"`, ... */
export type ProgTypeName = Exclude<(typeof PROG_TYPE_NAMES)[number], "unspec">;
/** An attach type's name: `"xdp"`, `"trace_fentry"`, `"cgroup_inet_ingress"`, ... */
export type AttachTypeName = (typeof ATTACH_TYPE_NAMES)[number];

const PROG_TYPES = new Map<string, number>(PROG_TYPE_NAMES.map((name, i) => [name, i]));
const ATTACH_TYPES = new Map<string, number>(ATTACH_TYPE_NAMES.map((name, i) => [name, i]));

/**
 * A program type's name by number, or `"type N"` for a number newer than
 * this table (bpftool prints such types by number too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progTypeName } from "./prog_types.ts";
 * assert.equal(progTypeName(6), "xdp");
 * assert.equal(progTypeName(1), "socket_filter");
 * assert.equal(progTypeName(999), "type 999");
 * ```
 */
export function progTypeName(type: number): string {
  return PROG_TYPE_NAMES[type] ?? `type ${type}`;
}

/**
 * An attach type's name by number, or `"type N"` for one newer than this table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attachTypeName } from "./prog_types.ts";
 * assert.equal(attachTypeName(37), "xdp");
 * assert.equal(attachTypeName(0), "cgroup_inet_ingress");
 * assert.equal(attachTypeName(999), "type 999");
 * ```
 */
export function attachTypeName(type: number): string {
  return ATTACH_TYPE_NAMES[type] ?? `type ${type}`;
}

/**
 * The number of a program type given by name (`"xdp"`, case as bpftool
 * prints it) or as a number (any u32: a type newer than this table goes to
 * the kernel, whose EINVAL speaks for it).
 *
 * @throws {TypeError} for an unknown name or a value that is neither.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progTypeNumber } from "./prog_types.ts";
 * assert.equal(progTypeNumber("xdp"), 6);
 * assert.equal(progTypeNumber(40), 40);
 * assert.throws(() => progTypeNumber("xpd"), {
 *   name: "TypeError",
 *   message: 'type: unknown program type "xpd" (e.g. "socket_filter", "xdp", "sched_cls", "tracing")',
 * });
 * assert.throws(() => progTypeNumber("unspec"), TypeError);
 * ```
 */
export function progTypeNumber(type: string | number, argument = "type"): number {
  return lookUp(
    PROG_TYPES,
    type,
    argument,
    "program type",
    "\"socket_filter\", \"xdp\", \"sched_cls\", \"tracing\"",
    1,
  );
}

/**
 * The number of an attach type given by name (`"xdp"`, `"trace_fentry"`) or
 * as a u32.
 *
 * @throws {TypeError} for an unknown name or a value that is neither.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { attachTypeNumber } from "./prog_types.ts";
 * assert.equal(attachTypeNumber("trace_fentry"), 24);
 * assert.equal(attachTypeNumber(0), 0);
 * assert.throws(() => attachTypeNumber("fentry"), /unknown attach type "fentry"/);
 * ```
 */
export function attachTypeNumber(type: string | number, argument = "expectedAttachType"): number {
  return lookUp(
    ATTACH_TYPES,
    type,
    argument,
    "attach type",
    "\"xdp\", \"trace_fentry\", \"cgroup_inet_ingress\"",
    0,
  );
}

function lookUp(
  table: ReadonlyMap<string, number>,
  type: string | number,
  argument: string,
  what: string,
  examples: string,
  min: number,
): number {
  if (typeof type === "number") {
    if (Number.isInteger(type) && type >= min && type <= 0xffff_ffff) return type;
    throw new TypeError(
      `${argument}: expected a ${what} name or a number from ${min}, got ${type}`,
    );
  }
  const number = typeof type === "string" ? table.get(type) : undefined;
  if (number === undefined || number < min) {
    const shown = typeof type === "string" ? JSON.stringify(type) : String(type);
    throw new TypeError(`${argument}: unknown ${what} ${shown} (e.g. ${examples})`);
  }
  return number;
}
