// bench/perf_buffer.ts's TypeScript side, run as a child in Deno or Bun: the same rounds as
// bench/perf_buffer_libbpf.c (the object's program test-run to send PER_ROUND samples of 64
// bytes, then one timed PerfBuffer.consume, after WARMUP rounds), the same sum of sequence
// numbers; prints one JSON line. With `latency`, it measures instead the async wake-up: a timer
// test-runs the program to send one sample while `pollAsync` waits, and the time from the run's
// start to the callback is taken, SAMPLES times.
//
//   deno run --allow-ffi --allow-read bench/perf_buffer_side.ts perfbuf.bpf.o RECORDS
//   bun bench/perf_buffer_side.ts perfbuf.bpf.o latency

import process from "node:process";
import { liveKernel } from "../ffi/kernel.ts";
import { BpfObject, PerfBuffer, type PerfRecord, possibleCpus } from "../mod.ts";

const PER_RUN = 500;
const PER_ROUND = 200_000;
/** 16 MiB a CPU: a round's 200,000 records of 80 bytes fit in one CPU's ring. */
const PAGES = 4096;
const SAMPLES = 200;
/** Rounds before the timed ones: the JIT compiles the walk (C runs as many). */
const WARMUP = 2;

const [path, what] = process.argv.slice(2);
using object = BpfObject.open(path!, { maps: { events: { maxEntries: possibleCpus() } } }).load();
const program = object.programs.get("produce")!;
let lost = 0;
using perf = new PerfBuffer(object.maps.get("events")!, {
  pages: what === "latency" ? 1 : PAGES,
  onLost: (_cpu, count) => void (lost += count),
});

/** The program's command packet (struct command): `count` samples of 64 bytes. */
function command(count: number): Uint8Array {
  return new Uint8Array(
    new Uint32Array([count, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).buffer,
  );
}

/** VmHWM of this process, in KiB. */
function peakRssKiB(): number {
  const status = liveKernel().backend.readTextFile("/proc/self/status");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
}

if (what === "latency") {
  const data = command(1);
  const latencies: number[] = [];
  let sent = 0;
  for (let i = 0; i < SAMPLES; i++) {
    setTimeout(() => {
      sent = performance.now();
      program.testRun({ data });
    }, 1);
    await perf.pollAsync(-1, () => void latencies.push(performance.now() - sent));
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]!;
  console.log(JSON.stringify({ medianMs: at(0.5), p90Ms: at(0.9), maxMs: at(1) }));
} else {
  const records = Number(what);
  const data = command(PER_RUN);
  let sum = 0;
  const onRecord = (record: PerfRecord) => {
    sum += record.view.getUint32(record.offset, true);
  };
  let seconds = 0;
  let consumed = 0;
  for (let round = -WARMUP; consumed < records; round++) {
    program.testRun({ data, repeat: PER_ROUND / PER_RUN });
    const before = sum;
    const start = performance.now();
    const n = perf.consume(onRecord);
    const took = (performance.now() - start) / 1000;
    if (n !== PER_ROUND || lost > 0) {
      throw new Error(`consumed ${n} samples, not ${PER_ROUND} (${lost} lost)`);
    }
    if (round < 0) {
      sum = before;
      continue;
    }
    seconds += took;
    consumed += n;
  }
  console.log(
    JSON.stringify({ seconds, records: consumed, checksum: sum, peakRssKiB: peakRssKiB() }),
  );
}
