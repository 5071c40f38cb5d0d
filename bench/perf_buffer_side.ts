// bench/perf_buffer.ts's TypeScript side, run as a child in Deno or Bun: the same rounds as
// bench/perf_buffer_libbpf.c (the object's program test-run to send PER_ROUND samples of 64
// bytes, then one timed PerfBuffer.consume, after SMALL_ROUNDS rounds of one run and WARMUP
// rounds), the same sum of sequence numbers (mod 2^32); prints one JSON line. With `latency`, it measures instead the async wake-up: a timer
// test-runs the program to send one sample while `pollAsync` waits, and the time from the run's
// start to the callback is taken, SAMPLES times.
//
//   deno run --allow-ffi --allow-read bench/perf_buffer_side.ts perfbuf.bpf.o RECORDS
//   bun bench/perf_buffer_side.ts perfbuf.bpf.o latency

import process from "node:process";
import { BpfObject, PerfBuffer, type PerfRecord, possibleCpus } from "../mod.ts";
import { statusKiB } from "./process_status.ts";

const PER_RUN = 500;
const PER_ROUND = 200_000;
/** 16 MiB a CPU: a round's 200,000 records of 80 bytes fit in one CPU's ring. */
const PAGES = 4096;
const SAMPLES = 200;
/**
 * Rounds before the timed ones (C runs as many): V8 compiles the walk fully
 * only after it was called a few times, and until then the rounds run in
 * code compiled for entry mid-loop (OSR) or in the interpreter.
 */
const WARMUP = 10;
/**
 * Before those, rounds of one run (PER_RUN samples), as a consumer that keeps
 * up sees them: the walk is called often, not only entered mid-loop, so V8
 * compiles it whole. C runs as many.
 */
const SMALL_ROUNDS = 1000;

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
const peakRssKiB = () => statusKiB("VmHWM");

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
  // The sum mod 2^32 in an Int32Array, as C sums in a uint32_t: a number a closure writes would
  // box every sum past 2^31 (an allocation a sample: Deno 9 ns a sample more, the callback's
  // cost, not the buffer's).
  const total = new Int32Array(1);
  const onRecord = (record: PerfRecord) => {
    total[0] = (total[0]! + record.view.getUint32(record.offset, true)) | 0;
  };
  for (let round = 0; round < SMALL_ROUNDS; round++) {
    program.testRun({ data });
    if (perf.consume(onRecord) !== PER_RUN || lost > 0) {
      throw new Error(`a small round lost samples`);
    }
  }
  total[0] = 0;
  let seconds = 0;
  let consumed = 0;
  for (let round = -WARMUP; consumed < records; round++) {
    program.testRun({ data, repeat: PER_ROUND / PER_RUN });
    const before: number = total[0]!;
    const start = performance.now();
    const n = perf.consume(onRecord);
    const took = (performance.now() - start) / 1000;
    if (n !== PER_ROUND || lost > 0) {
      throw new Error(`consumed ${n} samples, not ${PER_ROUND} (${lost} lost)`);
    }
    if (round < 0) {
      total[0] = before;
      continue;
    }
    seconds += took;
    consumed += n;
  }
  console.log(
    JSON.stringify({
      seconds,
      records: consumed,
      checksum: total[0]! >>> 0,
      peakRssKiB: peakRssKiB(),
    }),
  );
}
