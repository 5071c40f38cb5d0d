// SPDX-License-Identifier: GPL-2.0
// Programs whose section names a target in the kernel's BTF, for the loader's
// tests (tests/loader_tracing.test.ts): the loader loads each with the BTF id
// of its target (attach_btf_id), as libbpf does. `count_kills` counts the
// kill() calls aimed at pid 0x3ffffffe (above PID_MAX_LIMIT: no process has
// it), so that a test that makes them knows the count exactly.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define KILL 62 /* x86-64 */
#define NO_PID 0x3ffffffe

/* Only `di`, the first argument, at the kernel's offset once relocated (CO-RE). */
struct pt_regs {
	unsigned long di;
} __attribute__((preserve_access_index));

__u64 kills;

SEC("tp_btf/sys_enter")
int count_kills(unsigned long long *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];

	if (ctx[1] == KILL && regs->di == NO_PID)
		__sync_fetch_and_add(&kills, 1);
	return 0;
}

struct bpf_iter__bpf_map;

SEC("iter/bpf_map")
int list_maps(struct bpf_iter__bpf_map *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
