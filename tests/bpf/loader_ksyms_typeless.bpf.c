// SPDX-License-Identifier: GPL-2.0
// A typeless .ksyms extern for the loader's tests (tests/loader_ksyms.test.ts):
// its address comes from /proc/kallsyms, as libbpf takes it.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const void bpf_prog_put __ksym;
extern const void no_such_symbol __ksym __weak;

/* The low 32 bits of bpf_prog_put's address, or 1 if a missing weak symbol is not 0. */
SEC("tc")
int address_of(struct __sk_buff *skb)
{
	if (&no_such_symbol)
		return 1;
	return (__u32)(unsigned long)&bpf_prog_put;
}

char LICENSE[] SEC("license") = "GPL";
