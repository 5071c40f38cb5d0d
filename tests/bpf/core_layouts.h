/* Local layouts of kernel types for tests/bpf/core.bpf.c, on purpose unlike the kernel's: fields
 * reordered, fields the kernel does not have, ___mine flavors, as the kernel's own CO-RE selftests
 * (tools/testing/selftests/bpf/progs/core_reloc_types.h) declare them. Compiled as is, every
 * access lands at the wrong offset; only CO-RE relocations make the program read the kernel's
 * fields. */
#ifndef CORE_LAYOUTS_H
#define CORE_LAYOUTS_H

#include <linux/types.h>

#define CORE __attribute__((preserve_access_index))

/* task_struct: pid and tgid at 0 and 4 (the kernel's are thousands of bytes in), comm after
 * them, a field no kernel has, and bitfields. */
struct task_struct___mine {
	int tgid;
	int pid;
	char comm[16];
	int not_in_any_kernel;
	/* Bitfields in another order, at other bits: the kernel's in_iowait follows a 4-bit field. */
	unsigned int in_iowait : 1;
	unsigned int init_private_fork_class : 4;
	unsigned int in_execve : 1;
} CORE;

/* sk_buff: the kernel's next is in an anonymous struct of an anonymous union at its start; len
 * is further in. */
struct sk_buff___mine {
	unsigned int len;
	struct sk_buff___mine *next;
} CORE;

/* A type no kernel has: bpf_core_type_exists() is 0. */
struct no_such_struct___mine {
	int x;
} CORE;

/* list_head matches the kernel's (bpf_core_type_matches is 1); the mismatched one names a member
 * the kernel's has not. */
struct list_head___mine {
	struct list_head___mine *next;
	struct list_head___mine *prev;
} CORE;

struct list_head___mismatch {
	struct list_head___mismatch *next;
	struct list_head___mismatch *previous;
} CORE;

/* __sk_buff as a socket filter sees it, reordered, with a field it has not: the verifier
 * rewrites context loads by their offset, so only relocated offsets read the right fields. */
struct __sk_buff___mine {
	__u32 mark;
	__u32 not_in_any_kernel;
	__u32 protocol;
	__u32 len;
} CORE;

/* Enumerators with flavors and other values than the kernel's (BPF_MAP_TYPE_RINGBUF is 27). */
enum bpf_map_type___mine {
	BPF_MAP_TYPE_RINGBUF___mine = 1,
	BPF_MAP_TYPE_NOT_IN_ANY_KERNEL___mine = 2,
};

#endif
