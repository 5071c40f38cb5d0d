// SPDX-License-Identifier: GPL-2.0
// The kernel side of the user ring buffer tests (tests/user_ring_buffer.test.ts):
// an XDP program, run with BPF_PROG_TEST_RUN, drains the requests user space
// wrote with bpf_user_ringbuf_drain. A request starts with its own length
// (u32) and a tag (u32) and ends with an 8-byte word; the program keeps, in
// order, each request's tag and last word, so the test sees every byte of a
// request arrive, and where each one ended.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4 * 4096);
} requests SEC(".maps");

#define SEEN 64

struct drained {
	__s64 last_drain; // what bpf_user_ringbuf_drain returned last
	__u64 count; // requests drained, in all
	__u32 tags[SEEN]; // request i's tag at i % SEEN
	__u64 last_words[SEEN]; // and its last 8 bytes
} drained;

static long read_request(struct bpf_dynptr *request, void *unused)
{
	__u32 head[2];
	__u64 last = 0;
	__u32 slot = drained.count % SEEN;

	if (bpf_dynptr_read(head, sizeof(head), request, 0, 0))
		return 1; // too short to be a request: stop
	if (head[0] < 16 || bpf_dynptr_read(&last, sizeof(last), request, head[0] - 8, 0))
		return 1;
	drained.tags[slot] = head[1];
	drained.last_words[slot] = last;
	drained.count++;
	return 0;
}

SEC("xdp")
int drain(struct xdp_md *ctx)
{
	drained.last_drain = bpf_user_ringbuf_drain(&requests, read_request, 0, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
