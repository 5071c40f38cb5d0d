/**
 * The kernel's link types (`enum bpf_link_type`), by number and by the
 * lower-case name bpftool prints: the one place these numbers are written down.
 *
 * @module
 */

/** The lower-case names of `enum bpf_link_type`, without `BPF_LINK_TYPE_`, in kernel order (Linux 6.18). */
const LINK_TYPE_NAMES = [
  "unspec",
  "raw_tracepoint",
  "tracing",
  "cgroup",
  "iter",
  "netns",
  "xdp",
  "perf_event",
  "kprobe_multi",
  "struct_ops",
  "netfilter",
  "tcx",
  "uprobe_multi",
  "netkit",
  "sockmap",
] as const;

/** A link type's name: `"xdp"`, `"raw_tracepoint"`, `"tcx"`, ... */
export type LinkTypeName = Exclude<(typeof LINK_TYPE_NAMES)[number], "unspec">;

/** `BPF_LINK_TYPE_RAW_TRACEPOINT`. */
export const LINK_TYPE_RAW_TRACEPOINT = 1;
/** `BPF_LINK_TYPE_TRACING`: fentry, fexit, fmod_ret, lsm and tp_btf programs. */
export const LINK_TYPE_TRACING = 2;
/** `BPF_LINK_TYPE_CGROUP`. */
export const LINK_TYPE_CGROUP = 3;
/** `BPF_LINK_TYPE_ITER`. */
export const LINK_TYPE_ITER = 4;
/** `BPF_LINK_TYPE_NETNS`: flow dissector and sk_lookup programs on a network namespace. */
export const LINK_TYPE_NETNS = 5;
/** `BPF_LINK_TYPE_XDP`. */
export const LINK_TYPE_XDP = 6;
/** `BPF_LINK_TYPE_PERF_EVENT`: tracepoints, kprobes and uprobes through a perf event. */
export const LINK_TYPE_PERF_EVENT = 7;
/** `BPF_LINK_TYPE_TCX`. */
export const LINK_TYPE_TCX = 11;

/**
 * A link type's name by number, or `"type N"` for a number newer than this
 * table (bpftool prints such types by number too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LINK_TYPE_XDP, linkTypeName } from "./link_types.ts";
 * assert.equal(linkTypeName(LINK_TYPE_XDP), "xdp");
 * assert.equal(linkTypeName(1), "raw_tracepoint");
 * assert.equal(linkTypeName(11), "tcx");
 * assert.equal(linkTypeName(999), "type 999");
 * ```
 */
export function linkTypeName(type: number): string {
  return LINK_TYPE_NAMES[type] ?? `type ${type}`;
}
