// SPDX-License-Identifier: GPL-2.0
// A BPF object whose maps carry the BTF clang writes: what bpfmap meets in
// maps other programs created. tests/helpers/clang_object.ts builds it with
// clang, loads it with bpftool and fills the maps through bpftool.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;
	__be16 dport;
	__u8 proto;
};

// The kernel refuses a struct holding a bpf_spin_lock that also has
// bitfields (it scans such structs for special fields byte by byte), so the
// locked value has none; `struct policy` has them.
struct flow_stats {
	struct bpf_spin_lock lock;
	__u64 packets;
	__u64 bytes;
	char ifname[8];
};

enum verdict { PASS = 0, DROP = 1, REDIRECT = 2 };

struct policy {
	enum verdict verdict;
	unsigned int mark : 12, prio : 4;
	__s16 weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, 64 /* BPF_F_ZERO_SEED: the same order in every run */);
	__type(key, struct flow_key);
	__type(value, struct flow_stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Global data: libbpf makes a map of each section (.bss, .data, .rodata,
// frozen once loaded), an array of one element whose value type is the
// section's DATASEC.
__u64 packets_seen;
struct flow_key last_flow;
__u32 sample_rate = 100;
char banner[8] = "bpfmap";
const volatile __u16 http_port = 80;
const volatile enum verdict default_verdict = DROP;

SEC("tc")
int count(struct __sk_buff *skb)
{
	__u32 zero = 0;
	packets_seen++;
	if (skb->len % sample_rate == 0)
		last_flow.dport = http_port;
	__u64 *n = bpf_map_lookup_elem(&counters, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	struct flow_key key = {};
	struct flow_stats *stats = bpf_map_lookup_elem(&flows, &key);
	if (stats) {
		bpf_spin_lock(&stats->lock);
		stats->packets++;
		bpf_spin_unlock(&stats->lock);
	}
	struct policy *policy = bpf_map_lookup_elem(&policies, &zero);
	return policy ? policy->verdict : default_verdict;
}

char LICENSE[] SEC("license") = "GPL";
