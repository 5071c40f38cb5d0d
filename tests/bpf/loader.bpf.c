// SPDX-License-Identifier: GPL-2.0
// A small object for the loader's tests (tests/bpf_object.test.ts): an XDP
// program that counts packets in a hash map by their first byte, by a step
// kept in `.data`, through a `.text` subprogram, and returns a verdict kept
// in `.rodata` (a constant the test can set before loading); and a socket
// filter that returns LINUX_KERNEL_VERSION, a `.kconfig` extern.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

__u64 step = 3;
const volatile __u32 verdict = XDP_PASS;

// Not inlined: the loader must append it after the program and fix the call.
static __attribute__((noinline)) int bump(__u32 key)
{
	__u64 *count = bpf_map_lookup_elem(&counts, &key);
	__u64 first = step;

	if (count) {
		__sync_fetch_and_add(count, step);
		return 0;
	}
	return bpf_map_update_elem(&counts, &key, &first, BPF_ANY);
}

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;

	if (data + 1 > end)
		return XDP_ABORTED;
	if (bump(data[0]) != 0)
		return XDP_ABORTED;
	return verdict;
}

extern __u32 LINUX_KERNEL_VERSION __kconfig;

SEC("socket")
int kernel_version(struct __sk_buff *skb)
{
	return LINUX_KERNEL_VERSION;
}

char LICENSE[] SEC("license") = "GPL";
