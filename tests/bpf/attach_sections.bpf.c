// SPDX-License-Identifier: GPL-2.0
// Programs that attach where their section names say (Program.attach, as libbpf's
// bpf_program__attach): each counts, in counts[], only what tests/attach_perf.test.ts makes.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/** A pid no process has: the tests' kill() calls target it. */
#define NO_PID 1999999999
/** __NR_kill and offsetof(struct pt_regs, di) on x86_64. */
#define NR_KILL 62
#define PT_REGS_DI 112

__u64 counts[3];

/** syscalls/sys_enter_kill's record: the common header, __syscall_nr, then pid at 16. */
struct sys_enter_kill {
	__u64 common;
	__u64 nr;
	__u64 pid;
	__u64 sig;
};

SEC("tp/syscalls/sys_enter_kill")
int tp_kill(struct sys_enter_kill *ctx)
{
	if ((__u32)ctx->pid == NO_PID)
		__sync_fetch_and_add(&counts[0], 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_kill(__u64 *ctx)
{
	__u64 pid = 0;

	if (ctx[1] != NR_KILL)
		return 0;
	bpf_probe_read_kernel(&pid, sizeof(pid), (void *)(ctx[0] + PT_REGS_DI));
	if ((__u32)pid == NO_PID)
		__sync_fetch_and_add(&counts[1], 1);
	return 0;
}

SEC("uprobe//tmp/bpfmap-attach-perf/probed:bpfmap_probed")
int probed(void *ctx)
{
	__sync_fetch_and_add(&counts[2], 1);
	return 0;
}

SEC("kprobe/do_sys_openat2")
int openat2(void *ctx)
{
	return 0;
}

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
