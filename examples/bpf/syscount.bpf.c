// SPDX-License-Identifier: GPL-2.0
// examples/syscount.ts's program: on every system call (the sys_enter raw
// tracepoint) it counts one for the calling process and syscall number, and
// keeps when that was and the name the process had then (`comm`): the
// process may be gone, and /proc with it, by the time the counts are read,
// and its name changes at exec (the latest call has the latest name).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key {
	__u32 tgid; // the process (a thread's pid is its tid)
	__u32 nr; // the syscall number
};

struct value {
	__u64 count;
	__u64 last; // bpf_ktime_get_ns() of the latest call
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key);
	__type(value, struct value);
} counts SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
	// sys_enter's arguments: struct pt_regs *regs, long id.
	struct key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .nr = ctx->args[1] };
	struct value *value = bpf_map_lookup_elem(&counts, &key);

	if (!value) {
		struct value first = {};
		// Another CPU may insert the same key first: then count on its element.
		bpf_map_update_elem(&counts, &key, &first, BPF_NOEXIST);
		value = bpf_map_lookup_elem(&counts, &key);
		if (!value)
			return 0; // the map is full until the reader drains it
	}
	__sync_fetch_and_add(&value->count, 1);
	value->last = bpf_ktime_get_ns();
	bpf_get_current_comm(value->comm, sizeof(value->comm));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
