// SPDX-License-Identifier: GPL-2.0
// The initial value of a prog_array, for the loader's tests
// (tests/loader_values.test.ts): the loader fills `jumps` with the program
// its `.values` name once the programs are loaded, as libbpf does. `jump`
// tail-calls the slot its packet's first byte names: a test run returns 51
// from `tail_one`, or 50 where the slot is empty.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int tail_one(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&tail_one },
};

SEC("tc")
int jump(struct __sk_buff *skb)
{
	__u8 *data = (void *)(long)skb->data;
	__u8 *end = (void *)(long)skb->data_end;

	if (data + 1 <= end)
		bpf_tail_call(skb, &jumps, data[0]);
	return 50;
}

SEC("tc")
int tail_one(struct __sk_buff *skb)
{
	return 51;
}

char LICENSE[] SEC("license") = "GPL";
