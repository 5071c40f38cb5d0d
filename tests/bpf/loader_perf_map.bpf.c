// A perf_event_array declared without max_entries: libbpf gives it a slot per possible CPU.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("xdp")
int send(struct xdp_md *ctx) {
  __u64 seq = 7;
  bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &seq, sizeof(seq));
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
