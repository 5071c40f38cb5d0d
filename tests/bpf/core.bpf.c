/* CO-RE against the running kernel (tests/core.test.ts): two programs compiled against
 * core_layouts.h, whose layouts are not the kernel's, that report what they read into .bss.
 * read_task (raw_tp, test-run) reads the current task through task_struct___mine and beside it
 * what helpers say of the same task; read_skb (socket filter, test-run) reads its context through
 * __sk_buff___mine and through the real __sk_buff. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "core_layouts.h"

/* Only what is the same in every run and runtime (the transcripts compare it byte for byte):
 * whether what was read through task_struct___mine equals what the helpers say, not the values. */
struct task_results {
	__u32 pid_matches;
	__u32 tgid_matches;
	__u32 comm_matches;
	__u32 comm_nonempty;
	__u32 pid_exists;
	__u32 missing_field_exists;
	__u32 pid_size;
	__u32 task_exists;
	__u32 missing_type_exists;
	__u32 list_head_matches;
	__u32 list_head_mismatch_matches;
	__u32 ringbuf_exists;
	__u32 missing_enumerator_exists;
	__u32 task_id_kernel;
	__u64 task_size;
	__u64 ringbuf_value;
	__u32 missing_field;
	__u32 pid_signed;
	__u32 in_iowait_signed;
	__u32 in_execve;
	__u32 fork_class;
	__u32 skb_next_offset;
	__u32 skb_len_offset;
	__u32 comm3_offset;
};

struct skb_results {
	__u32 core_len;
	__u32 core_protocol;
	__u32 core_mark;
	__u32 plain_len;
	__u32 plain_protocol;
	__u32 plain_mark;
	__u32 missing_field;
	__u32 subprogram_len;
};

struct task_results task_results;
struct skb_results skb_results;

SEC("raw_tp/sys_enter")
int read_task(void *ctx)
{
	struct task_struct___mine *task = (void *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	char core_comm[16] = {}, helper_comm[16] = {};
	__u32 pid = BPF_CORE_READ(task, pid);
	__u32 same = 1;

	task_results.pid_matches = pid == (__u32)pid_tgid && pid != 0;
	task_results.tgid_matches = BPF_CORE_READ(task, tgid) == pid_tgid >> 32;
	BPF_CORE_READ_STR_INTO(&core_comm, task, comm);
	bpf_get_current_comm(helper_comm, sizeof(helper_comm));
	for (int i = 0; i < 16; i++)
		if (core_comm[i] != helper_comm[i])
			same = 0;
	task_results.comm_matches = same;
	task_results.comm_nonempty = core_comm[0] != 0;

	task_results.pid_exists = bpf_core_field_exists(task->pid);
	task_results.missing_field_exists = bpf_core_field_exists(task->not_in_any_kernel);
	task_results.pid_size = bpf_core_field_size(task->pid);
	/* Guarded: the read of a field the kernel lacks is poisoned, and dead. */
	if (bpf_core_field_exists(task->not_in_any_kernel))
		task_results.missing_field = BPF_CORE_READ(task, not_in_any_kernel);
	else
		task_results.missing_field = 0xdead;

	task_results.pid_signed = __builtin_preserve_field_info(task->pid, BPF_FIELD_SIGNED);
	task_results.in_iowait_signed = __builtin_preserve_field_info(task->in_iowait, BPF_FIELD_SIGNED);
	task_results.in_execve = BPF_CORE_READ_BITFIELD_PROBED(task, in_execve);
	task_results.fork_class = BPF_CORE_READ_BITFIELD_PROBED(task, init_private_fork_class);

	task_results.skb_next_offset = bpf_core_field_offset(struct sk_buff___mine, next);
	task_results.skb_len_offset = bpf_core_field_offset(struct sk_buff___mine, len);
	task_results.comm3_offset = bpf_core_field_offset(task->comm[3]);

	task_results.task_exists = bpf_core_type_exists(struct task_struct___mine);
	task_results.missing_type_exists = bpf_core_type_exists(struct no_such_struct___mine);
	/* clang 14 has no bpf_core_type_matches: tests/core.test.ts turns these two existence checks
	 * into match relocations (the instruction is the same). */
	task_results.list_head_matches = bpf_core_type_exists(struct list_head___mine);
	task_results.list_head_mismatch_matches = bpf_core_type_exists(struct list_head___mismatch);
	task_results.task_id_kernel = bpf_core_type_id_kernel(struct task_struct___mine);
	task_results.task_size = bpf_core_type_size(struct task_struct___mine);

	task_results.ringbuf_exists =
		bpf_core_enum_value_exists(enum bpf_map_type___mine, BPF_MAP_TYPE_RINGBUF___mine);
	task_results.missing_enumerator_exists = bpf_core_enum_value_exists(
		enum bpf_map_type___mine, BPF_MAP_TYPE_NOT_IN_ANY_KERNEL___mine);
	task_results.ringbuf_value =
		bpf_core_enum_value(enum bpf_map_type___mine, BPF_MAP_TYPE_RINGBUF___mine);
	return 0;
}

/* A .text subprogram: its relocations are applied too, before the loader appends it. */
static __attribute__((noinline)) __u32 length_of(struct __sk_buff___mine *mine)
{
	return mine->len;
}

SEC("socket")
int read_skb(struct __sk_buff *skb)
{
	struct __sk_buff___mine *mine = (void *)skb;

	skb_results.core_len = mine->len;
	skb_results.core_protocol = mine->protocol;
	skb_results.core_mark = mine->mark;
	skb_results.plain_len = skb->len;
	skb_results.plain_protocol = skb->protocol;
	skb_results.plain_mark = skb->mark;
	if (bpf_core_field_exists(mine->not_in_any_kernel))
		skb_results.missing_field = mine->not_in_any_kernel;
	else
		skb_results.missing_field = 0xdead;
	skb_results.subprogram_len = length_of(mine);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
