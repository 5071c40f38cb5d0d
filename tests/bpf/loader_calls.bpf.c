// SPDX-License-Identifier: GPL-2.0
// Calls between .text functions, for the loader's tests (tests/loader_calls.test.ts). clang
// resolves a call from one static .text function to another itself and writes no relocation for
// it (twice -> triple, add_triple -> triple, global_triple -> triple): the loader must find the
// callee from the call's imm, as libbpf does. Each program returns what its packet's first byte,
// x, makes of it:
//   calls:  twice(x) + square(x) = 6x + 5 + x * x   (subprograms placed twice, triple, square)
//   loop:   x + the sum of triple(i) for i < 4 = x + 22   (a bpf_loop callback)
//   global: global_triple(x) = 3x + 101   (a global .text function, verified on its own)

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __noinline int triple(int x)
{
	return 3 * x + 1;
}

static __noinline int twice(int x)
{
	return triple(x) + triple(x + 1);
}

static __noinline int square(int x)
{
	return x * x;
}

__noinline int global_triple(int x)
{
	return triple(x) + 100;
}

static __noinline int add_triple(__u32 i, void *sum)
{
	*(int *)sum += triple(i);
	return 0;
}

static __always_inline int first_byte(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;

	return data + 1 <= end ? data[0] : 0;
}

SEC("xdp")
int calls(struct xdp_md *ctx)
{
	int x = first_byte(ctx);

	return twice(x) + square(x);
}

SEC("xdp")
int loop(struct xdp_md *ctx)
{
	int sum = first_byte(ctx);

	bpf_loop(4, add_triple, &sum, 0);
	return sum;
}

SEC("xdp")
int global(struct xdp_md *ctx)
{
	return global_triple(first_byte(ctx));
}

char LICENSE[] SEC("license") = "GPL";
