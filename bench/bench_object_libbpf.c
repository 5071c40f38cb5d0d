// The C side of the object bench: libbpf's bpf_object__open_file, then
// bpf_object__load, then bpf_object__close of one object, ITERATIONS times
// after one warm-up (libbpf probes the kernel's features once per process).
// Prints one JSON object: the warm-up's and each iteration's seconds (open,
// load, close), the time its bpf() calls spent in the kernel (all of them,
// and the object's BPF_PROG_LOADs alone), the CPU time of all iterations
// (user, kernel), then a pass with the verifier's statistics (log_level 4:
// the kernel's own "verification time" per program), and this process's RSS.
//
//   cc -O2 -o bench_object_libbpf bench/bench_object_libbpf.c -lbpf
//   ./bench_object_libbpf .build/bench_object.bpf.o 20

#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err) {
  fprintf(stderr, "bench_object_libbpf: %s: %s\n", what, strerror(err < 0 ? -err : err));
  exit(1);
}

// What the bpf() calls of the current iteration cost, as seen from here.
static struct {
  double bpf_seconds, prog_load_seconds;
  int bpf_calls, prog_loads;
} calls;
// The object being loaded: a BPF_PROG_LOAD of one of its programs counts as
// the object's, one of libbpf's own probes (its "does BPF work" program on
// every load) does not.
static struct bpf_object *current;

// libbpf makes every bpf() call through libc's syscall(); defining it here
// interposes on it (the executable comes first in symbol lookup), so each
// call is timed around the kernel's work alone: two clock reads (vDSO, tens
// of ns) next to calls of microseconds to milliseconds.
long syscall(long number, ...) {
  static long (*real)(long, ...);
  if (real == NULL) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (number != __NR_bpf) return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  double t = now();
  long result = real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  double seconds = now() - t;
  calls.bpf_seconds += seconds;
  calls.bpf_calls++;
  const union bpf_attr *attr = (const union bpf_attr *)a[1];
  if (a[0] == BPF_PROG_LOAD && current != NULL
      && bpf_object__find_program_by_name(current, attr->prog_name) != NULL) {
    calls.prog_load_seconds += seconds;
    calls.prog_loads++;
  }
  return result;
}

// VmHWM (peak) or VmRSS (now) of this process, in KiB.
static long status_kib(const char *field) {
  FILE *status = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  size_t length = strlen(field);
  while (status && fgets(line, sizeof line, status)) {
    if (strncmp(line, field, length) == 0 && line[length] == ':') {
      kib = atol(line + length + 1);
      break;
    }
  }
  if (status) fclose(status);
  return kib;
}

// CPU seconds this process has run in user mode and in the kernel: unlike
// wall time, they do not grow while other work holds the CPU.
static void cpu_seconds(double *user, double *system) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  *user = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
  *system = usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

static int quiet(enum libbpf_print_level level, const char *format, va_list args) {
  return level == LIBBPF_WARN ? vfprintf(stderr, format, args) : 0;
}

// One open + load + close, printed as a JSON object.
static void iteration(const char *path) {
  memset(&calls, 0, sizeof calls);
  double t = now();
  struct bpf_object *object = bpf_object__open_file(path, NULL);
  double opened = now();
  if (object == NULL) die("bpf_object__open_file", errno);
  current = object;
  int err = bpf_object__load(object);
  double loaded = now();
  if (err) die("bpf_object__load", err);
  current = NULL;
  bpf_object__close(object);
  double closed = now();
  printf("{\"open\":%.9f,\"load\":%.9f,\"close\":%.9f,\"bpf\":%.9f,\"bpfCalls\":%d,"
         "\"progLoad\":%.9f,\"progLoads\":%d}",
         opened - t, loaded - opened, closed - loaded, calls.bpf_seconds, calls.bpf_calls,
         calls.prog_load_seconds, calls.prog_loads);
}

// The verifier's own account of each program (BPF_LOG_STATS): "processed N
// insns ..." and "verification time N usec". One more load, not timed.
static void verifier_stats(const char *path) {
  static char logs[16][4096];
  struct bpf_object *object = bpf_object__open_file(path, NULL);
  if (object == NULL) die("bpf_object__open_file", errno);
  struct bpf_program *program;
  int n = 0;
  bpf_object__for_each_program(program, object) {
    if (n == 16) die("more than 16 programs", E2BIG);
    bpf_program__set_log_level(program, 4);
    bpf_program__set_log_buf(program, logs[n++], sizeof logs[0]);
  }
  int err = bpf_object__load(object);
  if (err) die("bpf_object__load (log_level 4)", err);
  printf("\"verifier\":{");
  n = 0;
  bpf_object__for_each_program(program, object) {
    const char *log = logs[n];
    const char *processed = strstr(log, "processed ");
    const char *time = strstr(log, "verification time ");
    printf("%s\"%s\":{\"usec\":%ld,\"insns\":%ld}", n++ ? "," : "", bpf_program__name(program),
           time ? atol(time + strlen("verification time ")) : -1L,
           processed ? atol(processed + strlen("processed ")) : -1L);
  }
  printf("}");
  bpf_object__close(object);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OBJECT ITERATIONS\n", argv[0]);
    return 2;
  }
  const char *path = argv[1];
  int iterations = atoi(argv[2]);
  libbpf_set_print(quiet);
  long base = status_kib("VmRSS");
  printf("{\"warmup\":");
  iteration(path);
  printf(",\"iterations\":[");
  double user0, system0, user1, system1;
  cpu_seconds(&user0, &system0);
  for (int i = 0; i < iterations; i++) {
    if (i > 0) printf(",");
    iteration(path);
  }
  cpu_seconds(&user1, &system1);
  printf("],\"cpu\":{\"user\":%.6f,\"system\":%.6f},", user1 - user0, system1 - system0);
  verifier_stats(path);
  printf(",\"baseRssKiB\":%ld,\"peakRssKiB\":%ld}\n", base, status_kib("VmHWM"));
  return 0;
}
