// SPDX-License-Identifier: GPL-2.0
// .ksyms externs for the loader's tests (tests/loader_ksyms.test.ts): kfunc
// calls (BPF_PSEUDO_KFUNC_CALL with the kernel's BTF id of the FUNC), typed
// ksyms (ld_imm64 BPF_PSEUDO_BTF_ID with the id of the kernel's FUNC or VAR),
// and weak externs the kernel does not have, which read as 0 so that the code
// using them is dead, as libbpf resolves them.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct;
extern struct task_struct *bpf_task_from_pid(int pid) __ksym;
/* Weak, so that its address is no constant: `&bpf_task_release` asks the kernel. */
extern void bpf_task_release(struct task_struct *task) __ksym __weak;
extern void bpf_no_such_kfunc(void) __ksym __weak;

/* Only `cpu`, at the kernel's offset once relocated (CO-RE). */
struct rq {
	int cpu;
} __attribute__((preserve_access_index));
extern const struct rq runqueues __ksym;
extern const struct rq no_such_variable __ksym __weak;

/* Whether a task with `pid` exists: a reference taken and given back. */
static int task_exists(int pid)
{
	struct task_struct *task = bpf_task_from_pid(pid);

	if (!task)
		return 0;
	bpf_task_release(task);
	return 1;
}

/*
 * 10: the calling process (the test run's) exists, pid 0x3fffffff (above
 * PID_MAX_LIMIT) does not; 97
 * if bpf_task_release has no address, 96 if bpf_no_such_kfunc has one.
 */
SEC("tc")
int call_kfuncs(struct __sk_buff *skb)
{
	if (!&bpf_task_release)
		return 97;
	if (&bpf_no_such_kfunc) {
		bpf_no_such_kfunc();
		return 96;
	}
	return task_exists(bpf_get_current_pid_tgid() >> 32) * 10 + task_exists(0x3fffffff);
}

/*
 * 1: each CPU's runqueue knows its CPU; 99 where a pointer is null, 98 if
 * no_such_variable has an address. (The kernel finds a variable's address in
 * kallsyms: one built without CONFIG_KALLSYMS_ALL refuses the program.)
 */
SEC("tc")
int read_runqueues(struct __sk_buff *skb)
{
	const struct rq *first = bpf_per_cpu_ptr(&runqueues, 0);
	const struct rq *second = bpf_per_cpu_ptr(&runqueues, 1);

	if (&no_such_variable)
		return 98;
	if (!first || !second)
		return 99;
	return first->cpu * 10 + second->cpu;
}

char LICENSE[] SEC("license") = "GPL";
