// SPDX-License-Identifier: GPL-2.0
// examples/opensnoop.ts's program: on every openat() (the sys_enter raw
// tracepoint, filtered to openat's number) it sends one sample through a
// perf buffer, on the CPU it runs on: the process, its name and the path it
// asked for, as bcc's opensnoop.
//
// The syscall's number and where its second argument sits in the kernel's
// struct pt_regs differ by architecture: user space sets them in .rodata
// before load (the example does it), so the object carries no vmlinux.h.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define NAME_MAX 256

struct event {
	__u32 pid; // the process (its thread group id)
	char comm[TASK_COMM_LEN]; // its name
	char filename[NAME_MAX]; // the path it passed to openat, as it passed it
};

// max_entries left out, as libbpf's users leave it: one slot per possible
// CPU (user space sets it before load).
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

// Set before load (the only variable of .rodata, so it starts the section).
const volatile struct config {
	__u32 openat_nr; // openat's syscall number on this architecture
	__u32 filename_offset; // the byte offset of the syscall's 2nd argument in struct pt_regs
	__u32 pid; // only this process, or 0 for all
} config = {};

// Opens the perf buffer had no room for (also reported to user space as lost samples).
__u64 failures = 0;

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	// TP_PROTO(struct pt_regs *regs, long id)
	void *regs = (void *)ctx->args[0];
	const char *filename = 0;
	struct event event = {};

	if (ctx->args[1] != config.openat_nr)
		return 0;
	event.pid = bpf_get_current_pid_tgid() >> 32;
	if (config.pid != 0 && event.pid != config.pid)
		return 0;
	bpf_get_current_comm(event.comm, sizeof(event.comm));
	bpf_probe_read_kernel(&filename, sizeof(filename), regs + config.filename_offset);
	if (bpf_probe_read_user_str(event.filename, sizeof(event.filename), filename) < 0)
		event.filename[0] = 0;
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &event, sizeof(event)))
		__sync_fetch_and_add(&failures, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
