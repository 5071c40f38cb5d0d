// SPDX-License-Identifier: GPL-2.0
// Event producers for the perf buffer tests (tests/perf_buffer.test.ts): an
// XDP program run with BPF_PROG_TEST_RUN, told by the test packet what to
// send with bpf_perf_event_output(BPF_F_CURRENT_CPU), so every stream is
// deterministic (the test pins itself to the CPU whose ring it reads). Each
// sample starts with a sequence number (`counters.seq`, in .bss); a sample
// the kernel had no room for is counted in `counters.failures`. And a raw
// tracepoint on sys_enter that numbers, per CPU, the syscalls of one process.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// max_entries left out, as libbpf's users leave it: one slot per possible
// CPU (user space sets it before load).
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

#define MAX_CPUS 8

struct counters {
	__u64 failures; // samples the kernel refused: the CPU's ring was full
	__u32 seq; // the next sample's sequence number
	__u32 target_tgid; // the process whose syscalls on_sys_enter numbers
	__u32 per_cpu[MAX_CPUS]; // on_sys_enter samples sent, by CPU
} counters;
// The bytes samples are made of past their sequence number: the test writes them.
__u8 payload[16384] SEC(".data.payload");

// What the packet asks for: count samples of size bytes.
struct command {
	__u32 count;
	__u32 size;
};

// Samples per run at most: the verifier walks each turn of a loop.
#define MAX_COUNT 512

SEC("xdp")
int produce(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct command command;
	__u32 i;

	if (data + sizeof(command) > end)
		return XDP_ABORTED;
	__builtin_memcpy(&command, data, sizeof(command));
#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_COUNT && i < command.count; i++) {
		// Masked, not compared: the verifier keeps a mask's bound through the loop.
		__u32 size = command.size & (sizeof(payload) - 1);

		*(__u32 *)payload = counters.seq++;
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, payload, size))
			counters.failures++;
	}
	return XDP_PASS;
}

// Producers on every CPU: each CPU numbers its own samples (a slot of its
// own), so one CPU's numbers are 0, 1, 2, ... in the order its ring holds them.
SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 record[2];
	__u32 cpu;

	if (bpf_get_current_pid_tgid() >> 32 != counters.target_tgid)
		return 0;
	cpu = bpf_get_smp_processor_id() & (MAX_CPUS - 1);
	record[0] = cpu;
	record[1] = counters.per_cpu[cpu]++;
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, record, sizeof(record)))
		__sync_fetch_and_add(&counters.failures, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
