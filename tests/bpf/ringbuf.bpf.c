// SPDX-License-Identifier: GPL-2.0
// Event producers for the ring buffer tests (tests/ring_buffer.test.ts): an
// XDP program run with BPF_PROG_TEST_RUN, told what to write by the test
// packet, so every stream is deterministic. Each record starts with a
// sequence number (`counters.seq`, in .bss), so a test can
// tell which records it saw, in which order; a reservation the kernel
// refuses (the ring is full) is counted in `counters.failures` instead.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 4096);
} events SEC(".maps");

// One page: the smallest ring, filled by a few records.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} small SEC(".maps");

// The counters the test reads back from .bss, in one struct: one lookup reads them all.
#define MAX_CPUS 8

struct counters {
	__u64 failures; // reservations the kernel refused: the ring was full
	__u32 seq; // the next record's sequence number
	__u32 per_cpu[MAX_CPUS]; // ON_CPU records written, by CPU
} counters;
// The bytes records are made of past their sequence number: the test writes them.
__u8 payload[16384] SEC(".data.payload");

// What the packet asks for.
struct command {
	__u32 op;
	__u32 count;
	__u32 size;
	__u32 ring; // 0: events, 1: small
};

enum {
	OUTPUT = 1, // count records of size bytes, with bpf_ringbuf_output
	RESERVE = 2, // count 16-byte records, reserved and submitted; every third discarded
	ON_CPU = 3, // count 8-byte records: the CPU, and how many it wrote before
};

// Records per run at most: the verifier walks each turn of a loop.
#define MAX_COUNT 512

struct reserved {
	__u32 seq;
	__u32 index;
	__u64 tag;
};

static __always_inline void output_one(struct command *command)
{
	// Masked, not compared: the verifier keeps a mask's bound through the loop.
	__u32 size = command->size & (sizeof(payload) - 1);
	long err;

	*(__u32 *)payload = counters.seq++;
	if (command->ring == 1)
		err = bpf_ringbuf_output(&small, payload, size, 0);
	else
		err = bpf_ringbuf_output(&events, payload, size, 0);
	if (err)
		counters.failures++;
}

static __always_inline void reserve_one(__u32 index, struct command *command)
{
	struct reserved *record = command->ring == 1
		? bpf_ringbuf_reserve(&small, sizeof(*record), 0)
		: bpf_ringbuf_reserve(&events, sizeof(*record), 0);

	if (!record) {
		counters.failures++;
		return;
	}
	record->seq = counters.seq++;
	record->index = index;
	record->tag = 0x5eedull << 32 | index;
	if (index % 3 == 2)
		bpf_ringbuf_discard(record, 0);
	else
		bpf_ringbuf_submit(record, 0);
}

// For producers on several CPUs at once: each CPU numbers its own records
// (a slot of its own: no other CPU writes it), so one CPU's numbers are 0,
// 1, 2, ... in the order the ring holds them, whatever the others did.
static __always_inline void on_cpu_one(void)
{
	__u32 cpu = bpf_get_smp_processor_id() & (MAX_CPUS - 1);
	__u32 *record = bpf_ringbuf_reserve(&events, 8, 0);

	if (!record) {
		__sync_fetch_and_add(&counters.failures, 1);
		return;
	}
	record[0] = cpu;
	record[1] = counters.per_cpu[cpu]++;
	bpf_ringbuf_submit(record, 0);
}

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
	switch (command.op) {
	case OUTPUT:
#pragma clang loop unroll(disable)
		for (i = 0; i < MAX_COUNT && i < command.count; i++)
			output_one(&command);
		break;
	case RESERVE:
#pragma clang loop unroll(disable)
		for (i = 0; i < MAX_COUNT && i < command.count; i++)
			reserve_one(i, &command);
		break;
	case ON_CPU:
#pragma clang loop unroll(disable)
		for (i = 0; i < MAX_COUNT && i < command.count; i++)
			on_cpu_one();
		break;
	default:
		return XDP_ABORTED;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
