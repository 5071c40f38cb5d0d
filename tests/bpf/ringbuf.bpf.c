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

// One variable per data section: with several, BpfObject hands the kernel DATASEC member
// offsets of 0 (clang leaves them so; libbpf sets them from the symbols), which it refuses.
struct counters {
	__u64 failures; // reservations the kernel refused: the ring was full
	__u32 seq; // the next record's sequence number
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
	default:
		return XDP_ABORTED;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
