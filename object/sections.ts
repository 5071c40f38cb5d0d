/**
 * Program types from section names: libbpf's table ("Program Types and ELF
 * Sections" in the kernel's libbpf documentation, `section_defs` in
 * `libbpf.c`) as data, with its matching rules and the attach target written
 * after the `/`.
 *
 * @module
 */

import {
  type AttachTypeName,
  attachTypeNumber,
  type ProgTypeName,
  progTypeNumber,
} from "../ffi/prog_types.ts";

/** One row of the table: what a section name means. */
export interface SectionDef {
  /**
   * The name as libbpf writes it: `"xdp"` matches only `xdp`; `"kprobe+"`
   * matches `kprobe` and `kprobe/...`; a name ending in `/` (`"cgroup/"`
   * rows have none) would match any `name/...`.
   */
  readonly section: string;
  readonly programType: ProgTypeName;
  /** The expected attach type handed to `BPF_PROG_LOAD`, if the row has one. */
  readonly attachType?: AttachTypeName;
  /** Loaded with `BPF_F_SLEEPABLE` (`.s` rows, `syscall`). */
  readonly sleepable?: true;
  /** Needs the BTF id of its target at load (`attach_btf_id`): fentry, tp_btf, lsm, iter, ... */
  readonly attachBtf?: true;
  /** Loaded with `BPF_F_XDP_HAS_FRAGS`. */
  readonly xdpFrags?: true;
}

type Flags = Pick<SectionDef, "sleepable" | "attachBtf" | "xdpFrags">;
const SLEEPABLE: Flags = { sleepable: true };
const BTF: Flags = { attachBtf: true };
const BTF_SLEEPABLE: Flags = { attachBtf: true, sleepable: true };
const FRAGS: Flags = { xdpFrags: true };

function row(
  section: string,
  programType: ProgTypeName,
  attachType?: AttachTypeName,
  flags: Flags = {},
): SectionDef {
  return Object.freeze(
    attachType === undefined
      ? { section, programType, ...flags }
      : { section, programType, attachType, ...flags },
  );
}

/**
 * libbpf's section names (libbpf 1.5's `section_defs`), in its order: the
 * first row that matches a name wins, so longer names come before their
 * prefixes (`xdp.frags/devmap` before `xdp.frags`, `tc/ingress` before
 * `tc`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SECTION_DEFS } from "./sections.ts";
 *
 * const fentry = SECTION_DEFS.find((def) => def.section === "fentry+");
 * assert.deepEqual(fentry, {
 *   section: "fentry+",
 *   programType: "tracing",
 *   attachType: "trace_fentry",
 *   attachBtf: true,
 * });
 * ```
 */
export const SECTION_DEFS: readonly SectionDef[] = Object.freeze([
  row("socket", "socket_filter"),
  row("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
  row("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
  row("kprobe+", "kprobe"),
  row("uprobe+", "kprobe"),
  row("uprobe.s+", "kprobe", undefined, SLEEPABLE),
  row("kretprobe+", "kprobe"),
  row("uretprobe+", "kprobe"),
  row("uretprobe.s+", "kprobe", undefined, SLEEPABLE),
  row("kprobe.multi+", "kprobe", "trace_kprobe_multi"),
  row("kretprobe.multi+", "kprobe", "trace_kprobe_multi"),
  row("kprobe.session+", "kprobe", "trace_kprobe_session"),
  row("uprobe.multi+", "kprobe", "trace_uprobe_multi"),
  row("uretprobe.multi+", "kprobe", "trace_uprobe_multi"),
  row("uprobe.session+", "kprobe", "trace_uprobe_session"),
  row("uprobe.multi.s+", "kprobe", "trace_uprobe_multi", SLEEPABLE),
  row("uretprobe.multi.s+", "kprobe", "trace_uprobe_multi", SLEEPABLE),
  row("uprobe.session.s+", "kprobe", "trace_uprobe_session", SLEEPABLE),
  row("ksyscall+", "kprobe"),
  row("kretsyscall+", "kprobe"),
  row("usdt+", "kprobe"),
  row("usdt.s+", "kprobe", undefined, SLEEPABLE),
  row("tc/ingress", "sched_cls", "tcx_ingress"),
  row("tc/egress", "sched_cls", "tcx_egress"),
  row("tcx/ingress", "sched_cls", "tcx_ingress"),
  row("tcx/egress", "sched_cls", "tcx_egress"),
  row("netkit/primary", "sched_cls", "netkit_primary"),
  row("netkit/peer", "sched_cls", "netkit_peer"),
  row("tc", "sched_cls"),
  row("classifier", "sched_cls"),
  row("action", "sched_act"),
  row("tracepoint+", "tracepoint"),
  row("tp+", "tracepoint"),
  row("raw_tracepoint+", "raw_tracepoint"),
  row("raw_tp+", "raw_tracepoint"),
  row("raw_tracepoint.w+", "raw_tracepoint_writable"),
  row("raw_tp.w+", "raw_tracepoint_writable"),
  row("tp_btf+", "tracing", "trace_raw_tp", BTF),
  row("fentry+", "tracing", "trace_fentry", BTF),
  row("fmod_ret+", "tracing", "modify_return", BTF),
  row("fexit+", "tracing", "trace_fexit", BTF),
  row("fentry.s+", "tracing", "trace_fentry", BTF_SLEEPABLE),
  row("fmod_ret.s+", "tracing", "modify_return", BTF_SLEEPABLE),
  row("fexit.s+", "tracing", "trace_fexit", BTF_SLEEPABLE),
  row("freplace+", "ext", undefined, BTF),
  row("lsm+", "lsm", "lsm_mac", BTF),
  row("lsm.s+", "lsm", "lsm_mac", BTF_SLEEPABLE),
  row("lsm_cgroup+", "lsm", "lsm_cgroup", BTF),
  row("iter+", "tracing", "trace_iter", BTF),
  row("iter.s+", "tracing", "trace_iter", BTF_SLEEPABLE),
  row("syscall", "syscall", undefined, SLEEPABLE),
  row("xdp.frags/devmap", "xdp", "xdp_devmap", FRAGS),
  row("xdp/devmap", "xdp", "xdp_devmap"),
  row("xdp.frags/cpumap", "xdp", "xdp_cpumap", FRAGS),
  row("xdp/cpumap", "xdp", "xdp_cpumap"),
  row("xdp.frags", "xdp", "xdp", FRAGS),
  row("xdp", "xdp", "xdp"),
  row("perf_event", "perf_event"),
  row("lwt_in", "lwt_in"),
  row("lwt_out", "lwt_out"),
  row("lwt_xmit", "lwt_xmit"),
  row("lwt_seg6local", "lwt_seg6local"),
  row("sockops", "sock_ops", "cgroup_sock_ops"),
  row("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
  row("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
  row("sk_skb/verdict", "sk_skb", "sk_skb_verdict"),
  row("sk_skb", "sk_skb"),
  row("sk_msg", "sk_msg", "sk_msg_verdict"),
  row("lirc_mode2", "lirc_mode2", "lirc_mode2"),
  row("flow_dissector", "flow_dissector", "flow_dissector"),
  row("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
  row("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
  row("cgroup/skb", "cgroup_skb"),
  row("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
  row("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
  row("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
  row("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
  row("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
  row("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
  row("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
  row("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
  row("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
  row("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect"),
  row("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
  row("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
  row("cgroup/sendmsg_unix", "cgroup_sock_addr", "cgroup_unix_sendmsg"),
  row("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
  row("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
  row("cgroup/recvmsg_unix", "cgroup_sock_addr", "cgroup_unix_recvmsg"),
  row("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
  row("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
  row("cgroup/getpeername_unix", "cgroup_sock_addr", "cgroup_unix_getpeername"),
  row("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
  row("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
  row("cgroup/getsockname_unix", "cgroup_sock_addr", "cgroup_unix_getsockname"),
  row("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
  row("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
  row("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
  row("cgroup/dev", "cgroup_device", "cgroup_device"),
  row("struct_ops+", "struct_ops"),
  row("struct_ops.s+", "struct_ops", undefined, SLEEPABLE),
  row("sk_lookup", "sk_lookup", "sk_lookup"),
  row("netfilter", "netfilter", "netfilter"),
]);

/** Where a program attaches, read from the part of its section name after the `/`. */
export type AttachTarget =
  /** `tracepoint/<category>/<name>`, `tp/<category>/<name>`. */
  | { kind: "tracepoint"; category: string; name: string }
  /** `kprobe/<function>[+<offset>]`, `kretprobe/...`: offset 0 unless written. */
  | { kind: "kprobe"; function: string; offset: number; retprobe: boolean }
  /** `ksyscall/<syscall>`, `kretsyscall/<syscall>`. */
  | { kind: "ksyscall"; syscall: string; retprobe: boolean }
  /** `uprobe/<path>:<function>[+<offset>]`, `uretprobe/...` (`.s` too). */
  | { kind: "uprobe"; path: string; function: string; retprobe: boolean }
  /** `raw_tp/<name>`, `raw_tracepoint/<name>` (`.w` too). */
  | { kind: "raw_tracepoint"; name: string }
  /** `fentry/fexit/fmod_ret/tp_btf/lsm/iter/freplace/lsm_cgroup`: a BTF name to attach to. */
  | { kind: "btf"; name: string }
  /** Anything else after the `/`, as written. */
  | { kind: "other"; text: string };

/** What a section name means for the programs in it. */
export interface ProgramSection {
  /** The table row it matched. */
  readonly def: SectionDef;
  /** `enum bpf_prog_type`. */
  readonly programType: number;
  /** `enum bpf_attach_type` for `BPF_PROG_LOAD`'s `expected_attach_type`, 0 if none. */
  readonly expectedAttachType: number;
  /** The attach target written after the `/` of a `type+` name, if one is. */
  readonly target?: AttachTarget;
}

/**
 * Which row of libbpf's table a section name matches (the first: see
 * {@linkcode SECTION_DEFS}), or `undefined` for a name libbpf does not know.
 * `type` rows match the name exactly; `type+` rows match `type` or
 * `type/extras`, not `typeextras`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { programSection } from "./sections.ts";
 *
 * const tp = programSection("tracepoint/syscalls/sys_enter_execve");
 * assert.equal(tp?.def.programType, "tracepoint");
 * assert.equal(tp?.programType, 5); // BPF_PROG_TYPE_TRACEPOINT
 * assert.deepEqual(tp?.target, { kind: "tracepoint", category: "syscalls", name: "sys_enter_execve" });
 *
 * const kretprobe = programSection("kretprobe/do_unlinkat+0x10");
 * assert.deepEqual(kretprobe?.target, {
 *   kind: "kprobe",
 *   function: "do_unlinkat",
 *   offset: 16,
 *   retprobe: true,
 * });
 * assert.equal(programSection("xdp")?.expectedAttachType, 37); // BPF_XDP
 * assert.equal(programSection("kprobes"), undefined); // "kprobe+" needs "kprobe" or "kprobe/..."
 * assert.equal(programSection("xdp/whatever"), undefined); // "xdp" is exact
 * ```
 */
export function programSection(name: string): ProgramSection | undefined {
  for (const def of SECTION_DEFS) {
    const extras = matches(def.section, name);
    if (extras === undefined) continue;
    const programType = progTypeNumber(def.programType);
    const expectedAttachType = def.attachType === undefined ? 0 : attachTypeNumber(def.attachType);
    const base = { def, programType, expectedAttachType };
    return extras === "" ? base : { ...base, target: attachTarget(def, extras) };
  }
  return undefined;
}

/** The extras of `name` after `section`'s prefix ("" for none), or undefined if it does not match. */
function matches(section: string, name: string): string | undefined {
  if (section.endsWith("/")) {
    return name.startsWith(section)
      ? name.slice(section.length)
      : undefined;
  }
  if (!section.endsWith("+")) return name === section ? "" : undefined;
  const prefix = section.slice(0, -1);
  if (name === prefix) return "";
  return name.startsWith(`${prefix}/`) ? name.slice(prefix.length + 1) : undefined;
}

function attachTarget(def: SectionDef, extras: string): AttachTarget {
  const kind = def.section.slice(0, -1).replace(/\.(s|w)$/, "");
  switch (kind) {
    case "tracepoint":
    case "tp": {
      const slash = extras.indexOf("/");
      if (slash > 0 && slash < extras.length - 1) {
        return {
          kind: "tracepoint",
          category: extras.slice(0, slash),
          name: extras.slice(slash + 1),
        };
      }
      break;
    }
    case "kprobe":
    case "kretprobe": {
      const match = /^([^+]+)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(extras);
      if (match) {
        return {
          kind: "kprobe",
          function: match[1]!,
          offset: match[2] === undefined ? 0 : Number(match[2]),
          retprobe: kind === "kretprobe",
        };
      }
      break;
    }
    case "ksyscall":
    case "kretsyscall":
      return { kind: "ksyscall", syscall: extras, retprobe: kind === "kretsyscall" };
    case "uprobe":
    case "uretprobe": {
      const colon = extras.lastIndexOf(":");
      if (colon > 0) {
        return {
          kind: "uprobe",
          path: extras.slice(0, colon),
          function: extras.slice(colon + 1),
          retprobe: kind === "uretprobe",
        };
      }
      break;
    }
    case "raw_tracepoint":
    case "raw_tp":
      return { kind: "raw_tracepoint", name: extras };
    default:
      if (def.attachBtf) return { kind: "btf", name: extras };
  }
  return { kind: "other", text: extras };
}
