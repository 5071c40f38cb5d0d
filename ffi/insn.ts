/**
 * BPF instructions as the kernel's verifier log and bpftool 7.1 print them
 * (`print_bpf_insn` of the kernel's `kernel/bpf/disasm.c`, as bpftool 7.1
 * carries it): `(b7) r0 = 2`, `(85) call bpf_map_lookup_elem#1`,
 * `(18) r1 = map[id:5]`. The one table of instruction classes, operations
 * and helper names in bpfmap.
 *
 * @module
 */

/** Bytes per instruction slot (`sizeof(struct bpf_insn)`). */
export const INSN_SIZE = 8;

/** `BPF_LD | BPF_IMM | BPF_DW`: the 64-bit immediate load that takes two slots. */
export const LD_IMM64 = 0x18;
/** `src_reg` of a call to a subprogram (`BPF_PSEUDO_CALL`). */
export const PSEUDO_CALL = 1;
/** `src_reg` of an `ld_imm64` of a map (`BPF_PSEUDO_MAP_FD`; in a dump, the map's id). */
export const PSEUDO_MAP_FD = 1;
/** `src_reg` of an `ld_imm64` of an address in a map's value (`BPF_PSEUDO_MAP_VALUE`). */
export const PSEUDO_MAP_VALUE = 2;
/** `src_reg` of an `ld_imm64` of a map value by the map's index (`BPF_PSEUDO_MAP_IDX_VALUE`). */
export const PSEUDO_MAP_IDX_VALUE = 6;
/** `src_reg` of an `ld_imm64` of a subprogram's address (`BPF_PSEUDO_FUNC`). */
export const PSEUDO_FUNC = 4;

/**
 * The helpers of `__BPF_FUNC_MAPPER` (`<linux/bpf.h>`, Linux 6.1, the table
 * bpftool 7.1 was built with), without `bpf_`, by number (`enum bpf_func_id`).
 */
export const HELPER_NAMES: readonly string[] = Object.freeze(
  ("unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk "
    + "get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace "
    + "tail_call clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm "
    + "get_cgroup_classid skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key "
    + "perf_event_read redirect get_route_realm perf_event_output skb_load_bytes get_stackid "
    + "csum_diff skb_get_tunnel_opt skb_set_tunnel_opt skb_change_proto skb_change_type "
    + "skb_under_cgroup get_hash_recalc get_current_task probe_write_user "
    + "current_task_under_cgroup skb_change_tail skb_pull_data csum_update set_hash_invalid "
    + "get_numa_node_id skb_change_head xdp_adjust_head probe_read_str get_socket_cookie "
    + "get_socket_uid set_hash setsockopt skb_adjust_room redirect_map sk_redirect_map "
    + "sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt "
    + "override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes "
    + "msg_pull_data bind xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative "
    + "fib_lookup sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap "
    + "lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown "
    + "skb_cgroup_id get_current_cgroup_id get_local_storage sk_select_reuseport "
    + "skb_ancestor_cgroup_id sk_lookup_tcp sk_lookup_udp sk_release map_push_elem map_pop_elem "
    + "map_peek_elem msg_push_data msg_pop_data rc_pointer_rel spin_lock spin_unlock sk_fullsock "
    + "tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp tcp_check_syncookie "
    + "sysctl_get_name sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol "
    + "strtoul sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output "
    + "probe_read_user probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack "
    + "send_signal_thread jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output "
    + "get_netns_cookie get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf "
    + "seq_write sk_cgroup_id sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve "
    + "ringbuf_submit ringbuf_discard ringbuf_query csum_level skc_to_tcp6_sock skc_to_tcp_sock "
    + "skc_to_tcp_timewait_sock skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack "
    + "load_hdr_opt store_hdr_opt reserve_hdr_opt inode_storage_get inode_storage_delete d_path "
    + "copy_from_user snprintf_btf seq_printf_btf skb_cgroup_classid redirect_neigh per_cpu_ptr "
    + "this_cpu_ptr redirect_peer task_storage_get task_storage_delete get_current_task_btf "
    + "bprm_opts_set ktime_get_coarse_ns ima_inode_hash sock_from_file check_mtu "
    + "for_each_map_elem snprintf sys_bpf btf_find_by_name_kind sys_close timer_init "
    + "timer_set_callback timer_start timer_cancel get_func_ip get_attach_cookie task_pt_regs "
    + "get_branch_snapshot trace_vprintk skc_to_unix_sock kallsyms_lookup_name find_vma loop "
    + "strncmp get_func_arg get_func_ret get_func_arg_cnt get_retval set_retval "
    + "xdp_get_buff_len xdp_load_bytes xdp_store_bytes copy_from_user_task skb_set_tstamp "
    + "ima_file_hash kptr_xchg map_lookup_percpu_elem skc_to_mptcp_sock dynptr_from_mem "
    + "ringbuf_reserve_dynptr ringbuf_submit_dynptr ringbuf_discard_dynptr dynptr_read "
    + "dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4 tcp_raw_gen_syncookie_ipv6 "
    + "tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6 ktime_get_tai_ns "
    + "user_ringbuf_drain").split(" "),
);

/** One decoded instruction slot (`struct bpf_insn`). */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  /** Signed 16 bits. */
  off: number;
  /** Signed 32 bits. */
  imm: number;
}

/**
 * Decodes instruction slot `index` of `bytes` (little-endian, as x86_64 and
 * arm64 kernels lay them out).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeInsn } from "./insn.ts";
 * // if r3 > r2 goto pc+13
 * const bytes = new Uint8Array([0x2d, 0x23, 0x0d, 0, 0, 0, 0, 0]);
 * assert.deepEqual(decodeInsn(bytes, 0), { code: 0x2d, dst: 3, src: 2, off: 13, imm: 0 });
 * ```
 */
export function decodeInsn(bytes: Uint8Array, index: number): Insn {
  const view = new DataView(bytes.buffer, bytes.byteOffset + index * INSN_SIZE, INSN_SIZE);
  const regs = view.getUint8(1);
  return {
    code: view.getUint8(0),
    dst: regs & 0xf,
    src: regs >> 4,
    off: view.getInt16(2, true),
    imm: view.getInt32(4, true),
  };
}

/** What a dumper says of calls and 64-bit immediates (disasm.c's `cb_call` and `cb_imm`). */
export interface InsnNames {
  /** The name of a call's target that is not a helper by number (`call %s#%d`, `call pc%s`). */
  call?(insn: Insn): string;
  /** The text of an `ld_imm64`'s value; `next` is its second slot. */
  imm?(insn: Insn, next: Insn, value: bigint): string;
}

// The kernel's tables, by operation >> 4; the holes print as glibc prints a NULL %s.
const ALU = [
  "+=",
  "-=",
  "*=",
  "/=",
  "|=",
  "&=",
  "<<=",
  ">>=",
  "neg",
  "%=",
  "^=",
  "=",
  "s>>=",
  "endian",
];
const ATOMIC_ALU = { 0x00: "add", 0x50: "and", 0x40: "or", 0xa0: "xor" } as Record<number, string>;
const JMP = [
  "jmp",
  "==",
  ">",
  ">=",
  "&",
  "!=",
  "s>",
  "s>=",
  "call",
  "exit",
  "<",
  "<=",
  "s<",
  "s<=",
];
const SIZE = ["u32", "u16", "u8", "u64"];
const FETCH = 0x01;
const XCHG = 0xe0 | FETCH;
const CMPXCHG = 0xf0 | FETCH;

const hex2 = (n: number) => n.toString(16).padStart(2, "0");
/** printf's `%+d`. */
const signed = (n: number) => (n < 0 ? String(n) : `+${n}`);
const table = (names: readonly string[], op: number) => names[op >> 4] ?? "(null)";

/**
 * One instruction as `print_bpf_insn` prints it, without the new line; `next`
 * is the slot after it (an `ld_imm64`'s upper half).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeInsn, formatInsn } from "./insn.ts";
 * const insn = (...b: number[]) => decodeInsn(new Uint8Array(b), 0);
 * assert.equal(formatInsn(insn(0xb7, 0x00, 0, 0, 2, 0, 0, 0)), "(b7) r0 = 2");
 * assert.equal(formatInsn(insn(0x61, 0x21, 4, 0, 0, 0, 0, 0)), "(61) r1 = *(u32 *)(r2 +4)");
 * assert.equal(formatInsn(insn(0x85, 0, 0, 0, 1, 0, 0, 0)), "(85) call bpf_map_lookup_elem#1");
 * assert.equal(formatInsn(insn(0x16, 0x01, 2, 0, 0xff, 0xff, 0xff, 0xff)),
 *   "(16) if w1 == 0xffffffff goto pc+2");
 * assert.equal(formatInsn(insn(0xdb, 0x21, 0, 0, 0x01, 0, 0, 0)),
 *   "(db) r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)");
 * assert.equal(formatInsn(insn(0xdc, 0x01, 0, 0, 16, 0, 0, 0)), "(dc) r1 = be16 r1");
 * const ld = insn(0x18, 0x01, 0, 0, 7, 0, 0, 0);
 * assert.equal(formatInsn(ld, insn(0, 0, 0, 0, 1, 0, 0, 0)), "(18) r1 = 0x100000007");
 * ```
 */
export function formatInsn(insn: Insn, next?: Insn, names: InsnNames = {}): string {
  const { code, dst, src, off, imm } = insn;
  const cls = code & 0x07;
  const op = code & 0xf0;
  const x = (code & 0x08) !== 0;
  const mode = code & 0xe0;
  const size = SIZE[(code & 0x18) >> 3]!;
  const head = `(${hex2(code)})`;
  if (cls === 4 || cls === 7) {
    const r = cls === 4 ? "w" : "r";
    if (op === 0xd0) {
      return cls === 7
        ? `BUG_alu64_${hex2(code)}`
        : `${head} r${dst} = ${x ? "be" : "le"}${imm} r${dst}`;
    }
    if (op === 0x80) return `${head} ${r}${dst} = -${r}${dst}`;
    return `${head} ${r}${dst} ${table(ALU, op)} ${x ? `${r}${src}` : imm}`;
  }
  if (cls === 3) {
    const at = `(${size} *)(r${dst} ${signed(off)})`;
    if (mode === 0x60) return `${head} *${at} = r${src}`;
    if (mode === 0xc0) {
      const bits = (code & 0x18) === 0x18 ? "64" : "";
      const alu = ATOMIC_ALU[imm & ~FETCH];
      if (alu !== undefined && (imm & FETCH) === 0) {
        return `${head} lock *${at} ${table(ALU, imm)} r${src}`;
      }
      if (alu !== undefined) return `${head} r${src} = atomic${bits}_fetch_${alu}(${at}, r${src})`;
      if (imm === CMPXCHG) return `${head} r0 = atomic${bits}_cmpxchg(${at}, r0, r${src})`;
      if (imm === XCHG) return `${head} r${src} = atomic${bits}_xchg(${at}, r${src})`;
    }
    return `BUG_${hex2(code)}`;
  }
  if (cls === 2) {
    if (mode === 0x60) return `${head} *(${size} *)(r${dst} ${signed(off)}) = ${imm}`;
    // BPF_NOSPEC: the verifier's speculation barrier, in no UAPI header.
    if (mode === 0xc0) return `${head} nospec`;
    return `BUG_st_${hex2(code)}`;
  }
  if (cls === 1) {
    if (mode !== 0x60) return `BUG_ldx_${hex2(code)}`;
    return `${head} r${dst} = *(${size} *)(r${src} ${signed(off)})`;
  }
  if (cls === 0) {
    if (mode === 0x20) return `${head} r0 = *(${size} *)skb[${imm}]`;
    if (mode === 0x40) return `${head} r0 = *(${size} *)skb[r${src} + ${imm}]`;
    if (mode === 0x00 && (code & 0x18) === 0x18) {
      const value = (BigInt((next?.imm ?? 0) >>> 0) << 32n) | BigInt(imm >>> 0);
      return `${head} r${dst} = ${names.imm?.(insn, next!, value) ?? `0x${value.toString(16)}`}`;
    }
    return `BUG_ld_${hex2(code)}`;
  }
  // BPF_JMP and BPF_JMP32.
  if (op === 0x80) {
    if (src === PSEUDO_CALL) return `${head} call pc${callName(insn, names)}`;
    return `${head} call ${callName(insn, names)}#${imm}`;
  }
  if (code === 0x05) return `${head} goto pc${signed(off)}`;
  if (code === 0x95) return `${head} exit`;
  const r = cls === 6 ? "w" : "r";
  const rhs = x ? `${r}${src}` : `0x${(imm >>> 0).toString(16)}`;
  return `${head} if ${r}${dst} ${table(JMP, op)} ${rhs} goto pc${signed(off)}`;
}

/** disasm.c's `__func_get_name`: a helper by number, else the dumper's name. */
function callName(insn: Insn, names: InsnNames): string {
  const { src, imm } = insn;
  if (src !== PSEUDO_CALL && imm >= 0 && imm < HELPER_NAMES.length) {
    return `bpf_${HELPER_NAMES[imm]}`;
  }
  if (names.call) return names.call(insn);
  return src === PSEUDO_CALL ? signed(imm) : "unknown";
}
