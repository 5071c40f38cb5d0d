// bench/ring_buffer.ts's C side: libbpf's ring_buffer__consume on the records
// tests/bpf/ringbuf.bpf.c's program writes when test-run (OUTPUT: 500
// records of 64 bytes a run, `repeat` runs a call), ROUNDS rounds of PER_ROUND
// records after SMALL_ROUNDS rounds of one run and WARMUP rounds, only the
// consumption timed. Each record's sequence number (counted on from the
// warm-up's) is summed mod 2^32,
// so both sides prove they read every record. Prints one JSON line.
//
//   cc -O2 -o ring_buffer_libbpf bench/ring_buffer_libbpf.c -lbpf
//   ./ring_buffer_libbpf ringbuf.bpf.o RECORDS

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define PER_RUN 500
#define PER_ROUND 200000
#define RING_SIZE (16u << 20)
#define WARMUP 10 // rounds before the timed ones, as the TypeScript side warms its JIT
#define SMALL_ROUNDS 1000 // before those, rounds of one run, as the TypeScript side has

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_record(void *ctx, void *data, size_t size)
{
	*(uint32_t *)ctx += *(uint32_t *)data; // mod 2^32, as the TypeScript side sums
	return 0;
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
	struct bpf_map *events = bpf_object__find_map_by_name(object, "events");
	bpf_map__set_max_entries(events, RING_SIZE);
	if (bpf_object__load(object))
		return perror("load"), 1;
	int program = bpf_program__fd(bpf_object__find_program_by_name(object, "produce"));
	uint32_t sum = 0;
	struct ring_buffer *ring = ring_buffer__new(bpf_map__fd(events), on_record, &sum, NULL);
	if (!ring)
		return perror("ring_buffer__new"), 1;
	// struct command: OUTPUT, PER_RUN records of 64 bytes, into events.
	uint32_t command[16] = { 1, PER_RUN, 64, 0 };
	for (int round = 0; round < SMALL_ROUNDS; round++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = command, .data_size_in = sizeof(command));
		if (bpf_prog_test_run_opts(program, &run))
			return perror("test run"), 1;
		if (ring_buffer__consume(ring) != PER_RUN)
			return fprintf(stderr, "a small round lost records\n"), 1;
	}
	sum = 0;
	double seconds = 0;
	long consumed = 0;
	for (int round = -WARMUP; consumed < records; round++) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = command, .data_size_in = sizeof(command),
			    .repeat = PER_ROUND / PER_RUN);
		if (bpf_prog_test_run_opts(program, &run))
			return perror("test run"), 1;
		uint32_t before = sum;
		double start = now();
		int n = ring_buffer__consume(ring);
		double took = now() - start;
		if (n != PER_ROUND)
			return fprintf(stderr, "consumed %d records, not %d\n", n, PER_ROUND), 1;
		if (round < 0) {
			sum = before;
			continue;
		}
		seconds += took;
		consumed += n;
	}
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	printf("{\"seconds\": %.6f, \"records\": %ld, \"checksum\": %u, \"peakRssKiB\": %ld}\n",
	       seconds, consumed, sum, usage.ru_maxrss);
	ring_buffer__free(ring);
	bpf_object__close(object);
	return 0;
}
