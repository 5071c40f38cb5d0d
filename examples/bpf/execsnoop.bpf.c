// SPDX-License-Identifier: GPL-2.0
// examples/execsnoop.ts's program: on every successful exec (the
// sched_process_exec raw tracepoint: the new program is loaded, the process
// has its new name) it sends one record through a ring buffer: the process,
// its parent, its new name and the file it executed.
//
// The kernel's structs are read by CO-RE, as libbpf-tools' execsnoop reads
// them: the local definitions below hold only the members read, and
// preserve_access_index makes clang record each access as a relocation that
// the loader (BpfObject.load) points at the running kernel's layout, from its
// BTF. No vmlinux.h, and the same object runs on any kernel with BTF.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 128

// The kernel's own types, cut down to what is read: member names and types
// must match the kernel's, order and offsets need not.
struct task_struct {
	int tgid;
	struct task_struct *real_parent;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

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

// Execs the ring had no room for: user space fell behind.
__u64 lost = 0;

SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	// TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	const char *filename;
	struct event *event;

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	event->pid = BPF_CORE_READ(task, tgid);
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	if (BPF_CORE_READ_STR_INTO(&event->comm, task, comm) < 0)
		event->comm[0] = 0;
	filename = BPF_CORE_READ(bprm, filename);
	if (bpf_probe_read_kernel_str(event->filename, sizeof(event->filename), filename) < 0)
		event->filename[0] = 0;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
