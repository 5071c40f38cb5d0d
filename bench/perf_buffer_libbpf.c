// bench/perf_buffer.ts's C side: libbpf's perf_buffer__consume on the samples
// tests/bpf/perfbuf.bpf.c's program sends when test-run (PER_RUN samples of
// 64 bytes a run, `repeat` runs a call, on the CPU the run is on), rounds of
// PER_ROUND samples after SMALL_ROUNDS rounds of one run and WARMUP rounds,
// only the consumption timed. Each sample's sequence number (counted on from
// the warm-up's) is summed mod 2^32, as the TypeScript side sums, so both
// sides prove they read every sample. Prints one JSON line.
//
//   cc -O2 -o perf_buffer_libbpf bench/perf_buffer_libbpf.c -lbpf
//   ./perf_buffer_libbpf perfbuf.bpf.o RECORDS

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#define PER_RUN 500
#define PER_ROUND 200000
#define PAGES 4096 // 16 MiB a CPU: a round's 200,000 records of 80 bytes fit in one CPU's ring
#define WARMUP 10 // rounds before the timed ones, as the TypeScript side warms its JIT
#define SMALL_ROUNDS 1000 // before those, rounds of one run, as the TypeScript side has

struct totals {
	uint32_t sum; // mod 2^32, as the TypeScript side sums
	long samples;
	long lost;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct totals *totals = ctx;
	totals->sum += *(uint32_t *)data;
	totals->samples++;
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
	((struct totals *)ctx)->lost += count;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJECT RECORDS\n", argv[0]);
		return 2;
	}
	long records = atol(argv[2]);
	struct bpf_object *object = bpf_object__open_file(argv[1], NULL);
	if (!object)
		return perror("open"), 1;
	// Left without max_entries, the perf_event_array gets a slot per possible CPU from libbpf.
	if (bpf_object__load(object))
		return perror("load"), 1;
	struct bpf_map *events = bpf_object__find_map_by_name(object, "events");
	int program = bpf_program__fd(bpf_object__find_program_by_name(object, "produce"));
	struct totals totals = { 0 };
	struct perf_buffer *perf =
		perf_buffer__new(bpf_map__fd(events), PAGES, on_sample, on_lost, &totals, NULL);
	if (!perf)
		return perror("perf_buffer__new"), 1;
	// struct command: PER_RUN samples of 64 bytes.
	uint32_t command[16] = { PER_RUN, 64 };
	for (int round = 0; round < SMALL_ROUNDS; round++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = command, .data_size_in = sizeof(command));
		if (bpf_prog_test_run_opts(program, &run))
			return perror("test run"), 1;
		long before = totals.samples;
		if (perf_buffer__consume(perf) || totals.samples - before != PER_RUN || totals.lost)
			return fprintf(stderr, "a small round lost samples\n"), 1;
	}
	totals.sum = 0;
	double seconds = 0;
	long consumed = 0;
	for (int round = -WARMUP; consumed < records; round++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = command, .data_size_in = sizeof(command),
			    .repeat = PER_ROUND / PER_RUN);
		if (bpf_prog_test_run_opts(program, &run))
			return perror("test run"), 1;
		struct totals before = totals;
		double start = now();
		if (perf_buffer__consume(perf))
			return perror("perf_buffer__consume"), 1;
		double took = now() - start;
		long n = totals.samples - before.samples;
		if (n != PER_ROUND || totals.lost)
			return fprintf(stderr, "consumed %ld samples, not %d (%ld lost)\n", n, PER_ROUND,
				       totals.lost), 1;
		if (round < 0) {
			totals = before;
			continue;
		}
		seconds += took;
		consumed += n;
	}
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	printf("{\"seconds\": %.6f, \"records\": %ld, \"checksum\": %u, \"peakRssKiB\": %ld}\n",
	       seconds, consumed, totals.sum, usage.ru_maxrss);
	perf_buffer__free(perf);
	bpf_object__close(object);
	return 0;
}
