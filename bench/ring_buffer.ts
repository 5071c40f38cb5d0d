// Ring buffer consumption (issue 15's bench): 1,000,000 records of 64 bytes, written by
// tests/bpf/ringbuf.bpf.c's program test-run in rounds of 200,000 (a 16 MiB ring), consumed by
// libbpf's ring_buffer__consume in C (bench/ring_buffer_libbpf.c) and by RingBuffer.consume in
// Deno and in Bun (bench/ring_buffer_side.ts), each side a child process of this one, the sides
// taking turns run by run; best of 3. Prints records per second, each side's ratio to C and its
// peak RSS; then the async wake-up latency in each runtime: a timer writes one record while
// pollAsync waits, from the write's start to the callback.
//
//   deno run -A bench/ring_buffer.ts      bun bench/ring_buffer.ts      (root or CAP_BPF; Linux)
//   import { benchRingBuffer } from "./ring_buffer.ts"               (a section of bench/main.ts)

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const RECORDS = Number(process.env.BPFMAP_BENCH_RECORDS ?? 1_000_000);
const RUNS = Number(process.env.BPFMAP_BENCH_RUNS ?? 3);
/** The issue's goal: records per second at least this share of C's. */
const GOAL = 0.8;

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** Builds the object and the C side into .build/; returns their paths. */
function build(): { object: string; binary: string } {
  mkdirSync(join(root, ".build"), { recursive: true });
  const object = join(root, ".build", "ringbuf.bpf.o");
  const binary = join(root, ".build", "ring_buffer_libbpf");
  // As tests/helpers/object_build.ts builds tests/bpf/ (bench is below tests: no import).
  const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
  const flags = ["-O2", "-g", "-target", "bpf", `-I/usr/include/${arch}-linux-gnu`, "-c"];
  execFileSync("clang", [...flags, join(root, "tests", "bpf", "ringbuf.bpf.c"), "-o", object]);
  execFileSync("cc", ["-O2", "-o", binary, join(root, "bench", "ring_buffer_libbpf.c"), "-lbpf"], {
    stdio: "inherit",
  });
  return { object, binary };
}

type Side = "C (libbpf)" | "deno" | "bun";
const SIDES: Side[] = ["C (libbpf)", "deno", "bun"];

/** What one run of a side measured. */
interface Run {
  seconds: number;
  records: number;
  checksum: number;
  peakRssKiB: number;
}

/** The command line of `side` with `args` after the object's path. */
function command(side: Side, binary: string, object: string, args: string[]): [string, string[]] {
  const script = join(root, "bench", "ring_buffer_side.ts");
  const bin = (name: string) => join(root, "node_modules", ".bin", name);
  if (side === "C (libbpf)") return [binary, [object, ...args]];
  if (side === "deno") {
    return [bin("deno"), ["run", "--allow-ffi", "--allow-read", script, object, ...args]];
  }
  return [bin("bun"), [script, object, ...args]];
}

function run<T>(side: Side, binary: string, object: string, args: string[]): T {
  const [file, argv] = command(side, binary, object, args);
  return JSON.parse(execFileSync(file, argv, { encoding: "utf8" })) as T;
}

/**
 * Runs the section: both sides RUNS times, then the wake-up latency in both
 * runtimes; prints the table. For bench/main.ts (`benchRingBuffer()`), or
 * run alone.
 */
export function benchRingBuffer(): void {
  const { object, binary } = build();
  // Sequence numbers 0 .. warm-up + RECORDS - 1 were written; the timed rounds' sum to check,
  // mod 2^32 as both sides sum (exact in a double: under 2^53).
  const warmup = 1000 * 500 + 10 * 200_000; // SMALL_ROUNDS runs, then WARMUP rounds, both sides
  const expected = ((warmup + RECORDS) * (warmup + RECORDS - 1) / 2 - warmup * (warmup - 1) / 2)
    % 2 ** 32;
  const best = new Map<Side, Run>();
  for (let i = 0; i < RUNS; i++) {
    // Each run starts with another side, so none always runs first on a cold machine.
    for (const side of [...SIDES.slice(i % 3), ...SIDES.slice(0, i % 3)]) {
      const result = run<Run>(side, binary, object, [String(RECORDS)]);
      if (result.records !== RECORDS || result.checksum !== expected) {
        throw new Error(`${side} read ${result.records} records summing to ${result.checksum}`);
      }
      const previous = best.get(side);
      if (previous === undefined || result.seconds < previous.seconds) best.set(side, result);
    }
  }

  const c = best.get("C (libbpf)")!;
  const rate = (r: Run) => r.records / r.seconds;
  console.log(`ring buffer: ${RECORDS.toLocaleString("en")} records of 64 bytes, best of ${RUNS}`);
  console.log(
    `${"side".padEnd(12)}${"records/s".padStart(14)}${"ns/record".padStart(11)}${
      "x C".padStart(8)
    }${"peak RSS".padStart(11)}`,
  );
  for (const side of SIDES) {
    const r = best.get(side)!;
    const ratio = rate(r) / rate(c);
    const mark = side === "C (libbpf)" ? "" : ratio >= GOAL ? "  (goal met)" : `  (goal ${GOAL}x)`;
    console.log(
      `${side.padEnd(12)}${Math.round(rate(r)).toLocaleString("en").padStart(14)}${
        (r.seconds / r.records * 1e9).toFixed(1).padStart(11)
      }${ratio.toFixed(2).padStart(8)}${
        `${Math.round(r.peakRssKiB / 1024)} MiB`.padStart(11)
      }${mark}`,
    );
  }
  console.log("async wake-up latency (a record written while pollAsync waits, to its callback):");
  for (const side of ["deno", "bun"] as const) {
    const l = run<{ medianMs: number; p90Ms: number; maxMs: number; missed: number }>(
      side,
      binary,
      object,
      [
        "latency",
      ],
    );
    console.log(
      `${side.padEnd(12)} median ${l.medianMs.toFixed(3)} ms, p90 ${l.p90Ms.toFixed(3)} ms, max ${
        l.maxMs.toFixed(3)
      } ms${l.missed ? `, ${l.missed} wake-ups missed (waited 1 s)` : ""}`,
    );
  }
}

if ((import.meta as { main?: boolean }).main) benchRingBuffer();
