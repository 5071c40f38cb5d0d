// SPDX-License-Identifier: GPL-2.0
// examples/test_run.ts's program: an XDP ping responder. It turns an IPv4
// ICMP echo request into the reply in place (MACs and addresses swapped,
// type 0, checksum fixed) and sends it back out (XDP_TX); it drops UDP to
// the discard port (9), passes everything else, and aborts on an IPv4
// header cut short. Each verdict is counted in `verdicts`.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// linux/icmp.h would pull in glibc's headers, which a BPF target lacks: what is needed of it.
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int counted(__u32 verdict)
{
	__u64 *count = bpf_map_lookup_elem(&verdicts, &verdict);

	if (count)
		__sync_fetch_and_add(count, 1);
	return verdict;
}

/* Echo request to reply: type 8 becomes 0, so the checksum is updated as RFC 1624 says. */
static __always_inline void reply(struct icmphdr *icmp)
{
	__u32 sum = (__u16)~bpf_ntohs(icmp->checksum) + (__u16)~(ICMP_ECHO << 8) + (ICMP_ECHOREPLY << 8);

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	icmp->type = ICMP_ECHOREPLY;
	icmp->checksum = bpf_htons(~sum & 0xffff);
}

SEC("xdp")
int pong(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return counted(XDP_PASS);
	if ((void *)(ip + 1) > end || ip->ihl != 5)
		return counted(XDP_ABORTED); // cut short, or options: not for this program
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) <= end && udp->dest == bpf_htons(9))
			return counted(XDP_DROP);
	}
	if (ip->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = (void *)(ip + 1);
		if ((void *)(icmp + 1) <= end && icmp->type == ICMP_ECHO && icmp->code == 0) {
			__u8 mac[ETH_ALEN];
			__be32 addr = ip->saddr;

			__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
			__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
			__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
			// Swapping the addresses leaves the IP checksum as it was.
			ip->saddr = ip->daddr;
			ip->daddr = addr;
			reply(icmp);
			return counted(XDP_TX);
		}
	}
	return counted(XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
