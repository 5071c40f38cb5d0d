// SPDX-License-Identifier: GPL-2.0
// Initial values of maps of maps, for the loader's tests
// (tests/loader_values.test.ts): the loader creates each inner map template
// first, and fills `outer` and `outer_hash` with the maps their `.values`
// name once the maps exist, as libbpf does. Each program returns what it
// found: test runs show which slots hold what.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [3] = &inner_b },
};

#define NO_MAP 100

/* The packet's first byte: a key. */
static __u32 first_byte(struct __sk_buff *skb)
{
	__u8 *data = (void *)(long)skb->data;
	__u8 *end = (void *)(long)skb->data_end;

	return data + 1 > end ? 0 : data[0];
}

/* The u32 in slot 0 of the inner map at `key` of `map`, NO_MAP if there is none. */
static int read_inner(void *map, __u32 key)
{
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(map, &key);
	__u32 *value;

	if (!inner)
		return NO_MAP;
	value = bpf_map_lookup_elem(inner, &zero);
	return value ? *value : NO_MAP;
}

SEC("tc")
int read_outer(struct __sk_buff *skb)
{
	return read_inner(&outer, first_byte(skb));
}

SEC("tc")
int read_outer_hash(struct __sk_buff *skb)
{
	return read_inner(&outer_hash, first_byte(skb));
}

char LICENSE[] SEC("license") = "GPL";
