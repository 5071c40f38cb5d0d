// SPDX-License-Identifier: GPL-2.0
// examples/execsnoop.ts's program: on every successful exec (the
// sched_process_exec raw tracepoint: the new program is loaded, the process
// has its new name) it sends one record through a ring buffer: the process,
// its parent, its new name and the file it executed.
//
// The kernel's structs are read at offsets user space finds in the kernel's
// BTF and sets in .rodata before loading (the example does it), as a CO-RE
// relocation would: no vmlinux.h, and the same object runs on any kernel.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 128

struct event {
	__u32 pid; // the process (its thread group id)
	__u32 ppid; // its parent's
	char comm[TASK_COMM_LEN]; // its name after exec
	char filename[FILENAME_LEN]; // the path it executed, as it was given
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// Byte offsets in the running kernel's structs, set before load (the only
// variable of .rodata, so it starts the section).
const volatile struct offsets {
	__u32 task_real_parent; // struct task_struct, real_parent
	__u32 task_tgid; // struct task_struct, tgid
	__u32 binprm_filename; // struct linux_binprm, filename
} offsets = {};

// Execs the ring had no room for: user space fell behind.
__u64 lost = 0;

SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
	void *task = (void *)ctx->args[0];
	void *bprm = (void *)ctx->args[2];
	void *parent = 0;
	const char *filename = 0;
	struct event *event;

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	event->pid = bpf_get_current_pid_tgid() >> 32;
	event->ppid = 0;
	bpf_probe_read_kernel(&parent, sizeof(parent), task + offsets.task_real_parent);
	if (parent)
		bpf_probe_read_kernel(&event->ppid, sizeof(event->ppid), parent + offsets.task_tgid);
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_probe_read_kernel(&filename, sizeof(filename), bprm + offsets.binprm_filename);
	if (bpf_probe_read_kernel_str(event->filename, sizeof(event->filename), filename) < 0)
		event->filename[0] = 0;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
