// SPDX-License-Identifier: GPL-2.0
// Global data and an mmapable array for tests/map_memory.test.ts and
// tests/cli_watch.test.ts: `bump`, test-run, adds .rodata's `step` to the
// .bss `counter`, writes the .data `squares` from it and counts in `shared`
// (an mmapable array), so the test reads what the program wrote through the
// mapped memory with no bpf() call; `emit` writes numbered records into the
// `events` ring and `samples` perf buffer for `bpfmap map watch`.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
} shared SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 8); // one slot per CPU, up to 8
} samples SEC(".maps");

__u64 counter;
__u32 squares[8] = { 1, 2, 3 };
const volatile __u32 step = 3;

SEC("xdp")
int bump(struct xdp_md *ctx)
{
	__u32 key = 5;
	__u64 *slot;

	counter += step;
	for (__u32 i = 0; i < 8; i++)
		squares[i] = i * i + (__u32)counter;
	slot = bpf_map_lookup_elem(&shared, &key);
	if (slot)
		*slot += 1;
	return XDP_PASS;
}

// Three records per run into each of `events` and `samples`: 8 bytes (a sequence number),
// 3 bytes, then 12.
__u64 seq;

SEC("xdp")
int emit(struct xdp_md *ctx)
{
	__u8 small[3] = { 0xab, 0xcd, 0xef };
	__u32 wide[3] = { 0x11223344, 0x55667788, 0x99aabbcc };

	seq++;
	bpf_ringbuf_output(&events, &seq, sizeof(seq), 0);
	bpf_ringbuf_output(&events, small, sizeof(small), 0);
	bpf_ringbuf_output(&events, wide, sizeof(wide), 0);
	bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, &seq, sizeof(seq));
	bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, small, sizeof(small));
	bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, wide, sizeof(wide));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
