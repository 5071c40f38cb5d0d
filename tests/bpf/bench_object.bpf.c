// SPDX-License-Identifier: GPL-2.0
// The object bench/main.ts opens and loads, with libbpf in C
// (bench/bench_object_libbpf.c) and with BpfObject (bench/object_load.ts):
// ten programs of six kinds (xdp, socket filter, tc, tracepoint, kprobe and
// kretprobe, raw tracepoint, cgroup_skb, perf_event), three `.text`
// subprograms, ten `.maps` maps of ten types, and global data in `.data`,
// `.bss` and `.rodata`. The programs do what small real tools do (parse
// headers, count, sample, emit events) so the verifier has real work, as it
// has on a real object; none needs CO-RE, kfuncs or BTF-attached targets,
// which BpfObject does not load yet.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow {
	__u32 saddr;
	__u32 daddr;
	__u8 proto;
	__u8 pad[3];
};

struct stats {
	__u64 packets;
	__u64 bytes;
};

struct event {
	__u32 pid;
	__u32 kind;
	__u64 at;
};

struct lpm_v4 {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow);
	__type(value, struct stats);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct stats);
} by_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} per_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct stats);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} last_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u32);
} cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, __u32);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 64);
	__type(value, __u32);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 256);
	__type(value, __u32);
	__uint(map_extra, 3);
} seen SEC(".maps");

// Global data: .data, .bss and .rodata (constants a loader could set first).
__u64 sample_rate = 16;
__u32 drop_proto = 0;
__u64 packets_seen;
__u64 events_lost;
const volatile __u32 min_len = 14;
const volatile __u32 emit_every = 8;

// Three subprograms: the verifier checks each call, the loader appends them.
// None calls another: BpfObject does not yet follow a call between two .text
// functions (clang leaves it without a relocation; libbpf reads its imm).
static __attribute__((noinline)) int account(struct flow *flow, __u32 len)
{
	struct stats *s = bpf_map_lookup_elem(&flows, flow);
	struct stats fresh = { .packets = 1, .bytes = len };
	__u32 proto = flow->proto;

	if (s) {
		__sync_fetch_and_add(&s->packets, 1);
		__sync_fetch_and_add(&s->bytes, len);
	} else {
		bpf_map_update_elem(&flows, flow, &fresh, BPF_NOEXIST);
	}
	s = bpf_map_lookup_elem(&by_proto, &proto);
	if (s)
		__sync_fetch_and_add(&s->packets, 1);
	__sync_fetch_and_add(&packets_seen, 1);
	return 0;
}

static __attribute__((noinline)) int emit(__u32 kind)
{
	struct event *e;

	if (packets_seen % emit_every)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return -1;
	}
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->kind = kind;
	e->at = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __attribute__((noinline)) int count_pid(__u32 kind)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, now = bpf_ktime_get_ns(), *n;

	n = bpf_map_lookup_elem(&per_pid, &pid);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&per_pid, &pid, &one, BPF_ANY);
	bpf_map_update_elem(&last_seen, &pid, &now, BPF_ANY);
	if (kind == 0)
		bpf_map_push_elem(&pending, &pid, BPF_EXIST);
	return 0;
}

SEC("xdp")
int xdp_flows(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct lpm_v4 key = { .prefixlen = 32 };
	struct flow flow = {};

	if (data + min_len > end || (void *)(ip + 1) > end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	key.addr = ip->saddr;
	if (bpf_map_lookup_elem(&blocked, &key))
		return XDP_DROP;
	flow.saddr = ip->saddr;
	flow.daddr = ip->daddr;
	flow.proto = ip->protocol;
	if (flow.proto == drop_proto && drop_proto != 0)
		return XDP_DROP;
	account(&flow, end - data);
	return XDP_PASS;
}

SEC("xdp")
int xdp_sample(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 key = 0, i, sum = 0;
	struct stats *s;

	// A bounded loop over the first bytes: the verifier walks each iteration.
	for (i = 0; i < 32; i++) {
		__u8 *byte = data + i;

		if ((void *)(byte + 1) > end)
			break;
		sum += *byte;
	}
	if (bpf_map_push_elem(&seen, &sum, 0) == 0 && sum % sample_rate == 0)
		emit(1);
	s = bpf_map_lookup_elem(&totals, &key);
	if (s) {
		s->packets++;
		s->bytes += end - data;
	}
	return XDP_PASS;
}

SEC("socket")
int socket_len(struct __sk_buff *skb)
{
	struct flow flow = {};
	struct iphdr ip;

	// A socket filter reads the packet through a helper, from the network header.
	if (skb->len < min_len || bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		return 0;
	flow.saddr = ip.saddr;
	flow.daddr = ip.daddr;
	flow.proto = ip.protocol;
	account(&flow, skb->len);
	return skb->len;
}

SEC("tc")
int tc_mark(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 *mark = bpf_map_lookup_elem(&cookies, &cookie);
	__u32 key = 1;
	struct stats *s;

	if (mark)
		skb->mark = *mark;
	s = bpf_map_lookup_elem(&totals, &key);
	if (s)
		s->packets++;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int execve_enter(void *ctx)
{
	count_pid(0);
	return emit(0);
}

SEC("kprobe/do_unlinkat")
int unlink_enter(void *ctx)
{
	count_pid(2);
	return emit(2);
}

SEC("kretprobe/do_unlinkat")
int unlink_exit(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *at = bpf_map_lookup_elem(&last_seen, &pid);

	if (at && bpf_ktime_get_ns() - *at > sample_rate)
		return emit(3);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_enter(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (bpf_map_peek_elem(&seen, &pid) == 0)
		count_pid(4);
		return emit(4);
	return 0;
}

SEC("cgroup_skb/ingress")
int cgroup_ingress(struct __sk_buff *skb)
{
	__u32 key = 2;
	struct stats *s = bpf_map_lookup_elem(&totals, &key);

	if (s) {
		s->packets++;
		s->bytes += skb->len;
	}
	return 1;
}

SEC("perf_event")
int on_sample(void *ctx)
{
	__u32 pid;

	if (bpf_map_pop_elem(&pending, &pid) == 0)
		bpf_map_update_elem(&last_seen, &pid, &sample_rate, BPF_ANY);
	count_pid(5);
	return emit(5);
}

char LICENSE[] SEC("license") = "GPL";
