// SPDX-License-Identifier: GPL-2.0
// A BPF object with many program sections, the kinds of map definitions
// libbpf reads from `.maps`, global data in every kind of section, a `.text`
// subprogram two programs call and `.kconfig` externs: what object/'s reader
// must find. tests/object.test.ts builds it with clang, parses it, and
// compares what it finds with readelf and with what bpftool (libbpf) loads.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
};

// Keys and values by type, as most objects write them.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

// Keys and values by size only: no BTF ids for them.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, 4);
	__uint(value_size, 16);
	__uint(map_flags, BPF_F_RDONLY_PROG);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 32);
	__type(key, struct flow_key);
	__type(value, __u32);
#ifdef PIN_BY_NAME
	// Not in the object bpftool loads: libbpf would pin it in /sys/fs/bpf itself.
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} flows_with_a_long_name SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

// A map of maps: the inner map's definition, and slot 1 set to inner_b.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [1] = &inner_b },
};

// Global data: .bss, .data, .rodata, and a .data.* and .rodata.* of their own.
__u64 total;
static __u64 calls; // a static: relocated through the section's symbol plus an offset
__u64 limit = 1000;
const volatile __u32 sample_every = 3;
__u32 tagged SEC(".data.extra") = 7;
const volatile __u8 mode SEC(".rodata.extra") = 2;

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;

// The subprogram two programs call: bpf-to-bpf calls into .text.
static __attribute__((noinline)) __u64 bump(__u32 key)
{
	__u64 one = 1, *n;

	calls++;
	if (total++ % sample_every != 0 || total > limit)
		return 0;
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		return __sync_fetch_and_add(n, 1);
	bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 1;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	bump(1 + tagged + mode);
	return XDP_PASS;
}

SEC("socket")
int socket_count(struct __sk_buff *skb)
{
	return bump(2) ? skb->len : 0;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	__u32 key = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);
	return inner ? 0 : 1;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int execve_enter(void *ctx)
{
	__u32 key = LINUX_KERNEL_VERSION > 0 && CONFIG_BPF_SYSCALL;
	__u64 one = 1;
	bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	return 0;
}

SEC("kprobe/do_unlinkat")
int unlink_enter(void *ctx)
{
	return 0;
}

SEC("kretprobe/do_unlinkat")
int unlink_exit(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_enter(void *ctx)
{
	return 0;
}

// fentry/fexit need BPF trampolines, which this kernel refuses (EPERM):
// tp_btf stands for the BTF-attached kinds.
SEC("tp_btf/sys_enter")
int btf_enter(void *ctx)
{
	return 0;
}

SEC("cgroup_skb/ingress")
int cgroup_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("perf_event")
int on_sample(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
