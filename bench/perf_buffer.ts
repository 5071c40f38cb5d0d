// Perf buffer consumption (issue 15's bench, for perf_event_array): 1,000,000 samples of 64 bytes
// (80 in a ring), sent by tests/bpf/perfbuf.bpf.c's program test-run in rounds of 200,000 (16 MiB
// rings, one per CPU), consumed by libbpf's perf_buffer__consume in C
// (bench/perf_buffer_libbpf.c) and by PerfBuffer.consume in Deno and in Bun
// (bench/perf_buffer_side.ts), each side a child process of this one, taking turns run by run;
// best of 3. Prints samples per second, each side's ratio to C and its peak RSS; then the async
// wake-up latency in each runtime: a timer sends one sample while pollAsync waits, from the
// run's start to the callback.
//
//   deno run -A bench/perf_buffer.ts      bun bench/perf_buffer.ts      (root or CAP_BPF; Linux)

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const RECORDS = Number(process.env.BPFMAP_BENCH_RECORDS ?? 1_000_000);
const RUNS = Number(process.env.BPFMAP_BENCH_RUNS ?? 3);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const SIDES = ["C (libbpf)", "deno", "bun"] as const;
type Side = (typeof SIDES)[number];
interface Run {
  seconds: number;
  records: number;
  checksum: number;
  peakRssKiB: number;
}

// The object and the C side, built into .build/ (bench sits below tests: it cannot import their
// builder).
mkdirSync(join(root, ".build"), { recursive: true });
const object = join(root, ".build", "perfbuf.bpf.o");
const binary = join(root, ".build", "perf_buffer_libbpf");
const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
execFileSync("clang", [
  ...["-O2", "-g", "-target", "bpf", `-I/usr/include/${arch}-linux-gnu`, "-c"],
  ...[join(root, "tests", "bpf", "perfbuf.bpf.c"), "-o", object],
]);
execFileSync("cc", ["-O2", "-o", binary, join(root, "bench", "perf_buffer_libbpf.c"), "-lbpf"], {
  stdio: "inherit",
});

/** Runs `side` with `arg` (a count of samples, or `latency`); its JSON line. */
function run<T>(side: Side, arg: string): T {
  const script = join(root, "bench", "perf_buffer_side.ts");
  const bin = (name: string) => join(root, "node_modules", ".bin", name);
  const [file, argv] = side === "C (libbpf)"
    ? [binary, [object, arg]]
    : side === "deno"
    ? [bin("deno"), ["run", "--allow-ffi", "--allow-read", script, object, arg]]
    : [bin("bun"), [script, object, arg]];
  return JSON.parse(execFileSync(file, argv, { encoding: "utf8" })) as T;
}

// Sequence numbers 0 .. warm-up + RECORDS - 1 were sent; the timed rounds' sum to check, mod 2^32
// as both sides sum (exact in a double: under 2^53).
const warmup = 1000 * 500 + 10 * 200_000; // SMALL_ROUNDS runs, then WARMUP rounds, both sides
const expected = ((warmup + RECORDS) * (warmup + RECORDS - 1) / 2 - warmup * (warmup - 1) / 2)
  % 2 ** 32;
const best = new Map<Side, Run>();
for (let i = 0; i < RUNS; i++) {
  // Each run starts with another side, so none always runs first on a cold machine.
  for (const side of [...SIDES.slice(i % 3), ...SIDES.slice(0, i % 3)]) {
    const result = run<Run>(side, String(RECORDS));
    if (result.records !== RECORDS || result.checksum !== expected) {
      throw new Error(`${side} read ${result.records} samples summing to ${result.checksum}`);
    }
    const previous = best.get(side);
    if (previous === undefined || result.seconds < previous.seconds) best.set(side, result);
  }
}

const rate = (r: Run) => r.records / r.seconds;
const c = rate(best.get("C (libbpf)")!);
console.log(`perf buffer: ${RECORDS.toLocaleString("en")} samples of 64 bytes, best of ${RUNS}`);
console.log(
  `${"side".padEnd(12)}${"samples/s".padStart(14)}${"ns/sample".padStart(11)}${"x C".padStart(8)}${
    "peak RSS".padStart(11)
  }`,
);
for (const side of SIDES) {
  const r = best.get(side)!;
  console.log(
    `${side.padEnd(12)}${Math.round(rate(r)).toLocaleString("en").padStart(14)}${
      (r.seconds / r.records * 1e9).toFixed(1).padStart(11)
    }${(rate(r) / c).toFixed(2).padStart(8)}${
      `${Math.round(r.peakRssKiB / 1024)} MiB`.padStart(11)
    }`,
  );
}
console.log("async wake-up latency (a sample sent while pollAsync waits, to its callback):");
for (const side of ["deno", "bun"] as const) {
  const l = run<{ medianMs: number; p90Ms: number; maxMs: number }>(side, "latency");
  console.log(
    `${side.padEnd(12)} median ${l.medianMs.toFixed(3)} ms, p90 ${l.p90Ms.toFixed(3)} ms, max ${
      l.maxMs.toFixed(3)
    } ms`,
  );
}
