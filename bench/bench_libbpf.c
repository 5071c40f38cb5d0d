// The C side of bpfmap's benchmark: the same phases on the same map shape,
// through libbpf. Prints one JSON object: seconds per phase (best of N runs)
// and peak RSS in KiB.
//
//   cc -O2 -o bench_libbpf bench/bench_libbpf.c -lbpf && ./bench_libbpf 1000000 4096 3

#include <bpf/bpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "bench_libbpf: %s: %s\n", what, strerror(errno));
  exit(1);
}

// This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries
// that over exec from the process that forked us, so it would count the
// benchmark's own JavaScript heap.
static long peak_rss_kib(void) {
  FILE *status = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (status && fgets(line, sizeof line, status)) {
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  }
  if (status) fclose(status);
  return kib;
}

int main(int argc, char **argv) {
  uint32_t entries = argc > 1 ? atoi(argv[1]) : 1000000;
  uint32_t batch = argc > 2 ? atoi(argv[2]) : 4096;
  int runs = argc > 3 ? atoi(argv[3]) : 3;
  double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
  uint32_t *keys = malloc(entries * sizeof(*keys));
  uint64_t *values = malloc(entries * sizeof(*values));
  uint32_t *out_keys = malloc(batch * sizeof(*out_keys));
  uint64_t *out_values = malloc(batch * sizeof(*out_values));
  for (uint32_t i = 0; i < entries; i++) {
    keys[i] = i;
    values[i] = (uint64_t)i * 3;
  }
  uint64_t checksum = 0;
  for (int run = 0; run < runs; run++) {
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_c", 4, 8, entries, NULL);
    if (fd < 0) die("bpf_map_create");
    LIBBPF_OPTS(bpf_map_batch_opts, opts);

    double t = now();
    for (uint32_t done = 0; done < entries;) {
      uint32_t count = entries - done < batch ? entries - done : batch;
      if (bpf_map_update_batch(fd, keys + done, values + done, &count, &opts)) die("update_batch");
      done += count;
    }
    double t_update_batch = now() - t;

    t = now();
    uint32_t cursor = 0, total = 0;
    for (int first = 1;; first = 0) {
      uint32_t count = batch;
      int err = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &cursor, out_keys, out_values, &count, &opts);
      if (err && errno != ENOENT) die("lookup_batch");
      for (uint32_t i = 0; i < count; i++) checksum += out_values[i];
      total += count;
      if (err) break;
    }
    double t_lookup_batch = now() - t;
    if (total != entries) die("lookup_batch total");

    t = now();
    uint32_t key, next;
    uint64_t value;
    total = 0;
    for (int err = bpf_map_get_next_key(fd, NULL, &next); !err; err = bpf_map_get_next_key(fd, &key, &next)) {
      if (bpf_map_lookup_elem(fd, &next, &value)) die("lookup_elem");
      checksum += value;
      key = next;
      total++;
    }
    double t_next_key = now() - t;
    if (total != entries) die("next_key total");

    t = now();
    for (uint32_t done = 0; done < entries;) {
      uint32_t count = entries - done < batch ? entries - done : batch;
      if (bpf_map_delete_batch(fd, keys + done, &count, &opts)) die("delete_batch");
      done += count;
    }
    double t_delete_batch = now() - t;

    t = now();
    for (uint32_t i = 0; i < entries; i++) {
      if (bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY)) die("update_elem");
    }
    double t_update_elem = now() - t;
    close(fd);

    double phases[5] = {t_update_batch, t_lookup_batch, t_next_key, t_delete_batch, t_update_elem};
    for (int i = 0; i < 5; i++) if (phases[i] < best[i]) best[i] = phases[i];
  }
  printf("{\"updateBatch\":%.6f,\"lookupBatch\":%.6f,\"nextKeyLookup\":%.6f,\"deleteBatch\":%.6f,"
         "\"updateElem\":%.6f,\"peakRssKiB\":%ld,\"checksum\":%llu}\n",
         best[0], best[1], best[2], best[3], best[4], peak_rss_kib(), (unsigned long long)checksum);
  return 0;
}
