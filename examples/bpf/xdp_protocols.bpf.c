// SPDX-License-Identifier: GPL-2.0
// examples/xdp_protocols.ts's program: counts the packets a device receives
// by IP version and protocol, in a per-CPU array (each CPU adds to its own
// slot, no atomics), and passes every packet on.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// The index of a count: family * 4 + protocol, and one slot for what is not IP.
enum { TCP, UDP, ICMP, OTHER, PROTOCOLS };
enum { IPV4, IPV6, FAMILIES };
#define NOT_IP (FAMILIES * PROTOCOLS)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NOT_IP + 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

static __always_inline __u32 protocol(__u8 number)
{
	switch (number) {
	case IPPROTO_TCP:
		return TCP;
	case IPPROTO_UDP:
		return UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return ICMP;
	default:
		return OTHER;
	}
}

SEC("xdp")
int count_protocols(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 index = NOT_IP;

	if ((void *)(eth + 1) <= end) {
		if (eth->h_proto == bpf_htons(ETH_P_IP)) {
			struct iphdr *ip = (void *)(eth + 1);
			if ((void *)(ip + 1) <= end)
				index = IPV4 * PROTOCOLS + protocol(ip->protocol);
		} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr *ip6 = (void *)(eth + 1);
			// The next header, not followed through extension headers: those count as other.
			if ((void *)(ip6 + 1) <= end)
				index = IPV6 * PROTOCOLS + protocol(ip6->nexthdr);
		}
	}
	__u64 *count = bpf_map_lookup_elem(&packets, &index);
	if (count)
		*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
