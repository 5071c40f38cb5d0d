// SPDX-License-Identifier: GPL-2.0
// .kconfig externs for the loader's tests (tests/loader_kconfig.test.ts): the
// loader fills them from the running kernel's config as libbpf does: y/n into
// a bool or an enum libbpf_tristate, numbers into integers, strings into char
// arrays, and 0 into a weak one the config does not set.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* enum libbpf_tristate (TRI_NO, TRI_YES, TRI_MODULE) is bpf_helpers.h's. */
extern _Bool CONFIG_BPF __kconfig;
extern enum libbpf_tristate CONFIG_NET __kconfig;
extern int CONFIG_HZ __kconfig;
extern unsigned short CONFIG_NR_CPUS __kconfig;
extern char CONFIG_LOCALVERSION[16] __kconfig;
extern int CONFIG_NO_SUCH_OPTION __kconfig __weak;

/* CONFIG_HZ, if CONFIG_BPF is y, CONFIG_NET y and CONFIG_NO_SUCH_OPTION 0; else 0. */
SEC("tc")
int hz(struct __sk_buff *skb)
{
	if (!CONFIG_BPF || CONFIG_NET != TRI_YES || CONFIG_NO_SUCH_OPTION != 0)
		return 0;
	return CONFIG_HZ;
}

/* CONFIG_NR_CPUS, and the first character of CONFIG_LOCALVERSION above it. */
SEC("tc")
int cpus(struct __sk_buff *skb)
{
	return CONFIG_NR_CPUS | CONFIG_LOCALVERSION[0] << 16;
}

char LICENSE[] SEC("license") = "GPL";
