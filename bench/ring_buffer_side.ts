// bench/ring_buffer.ts's TypeScript side, run as a child in Deno or Bun: the
// same rounds as bench/ring_buffer_libbpf.c (the object's program test-run to
// write PER_ROUND records of 64 bytes, then one timed RingBuffer.consume, after
// SMALL_ROUNDS and WARMUP rounds), the same sum of sequence numbers (mod 2^32); prints one JSON
// line. With `latency`, it
// measures instead the async wake-up: a timer test-runs the program to write
// one record while `pollAsync` waits, and the time from the write's start to
// the callback is taken, SAMPLES times.
//
//   deno run --allow-ffi --allow-read bench/ring_buffer_side.ts ringbuf.bpf.o RECORDS
//   bun bench/ring_buffer_side.ts ringbuf.bpf.o latency

import process from "node:process";
import { BpfObject, RingBuffer } from "../mod.ts";
import { statusKiB } from "./process_status.ts";

const PER_RUN = 500;
const PER_ROUND = 200_000;
const RING_SIZE = 16 << 20;
const SAMPLES = 200;
/**
 * Rounds before the timed ones (C runs as many): the walk's loop is hot from
 * the first round, but V8 compiles the walk itself fully only after it was
 * called a few times; with 2 rounds Deno measured 70 ns a record, with 10,
 * 12 ns.
 */
const WARMUP = 10;
/**
 * Before those, rounds of one run (PER_RUN records), as a consumer that keeps
 * up sees them: V8 compiles a function entered a few times with long loops
 * only for entry mid-loop (OSR), and each call then starts in the interpreter
 * (Deno 4.2 ns a record after these, 4.6-5.4 without). C runs as many.
 */
const SMALL_ROUNDS = 1000;

const [path, what] = process.argv.slice(2);
// Not `using`: Deno's checker loses a BpfObject's [Symbol.dispose] (closed at exit).
const object = BpfObject.open(path!, { maps: { events: { maxEntries: RING_SIZE } } }).load();
const program = object.programs.get("produce")!;
using ring = new RingBuffer(object.maps.get("events")!);

/** The program's command packet (struct command): OUTPUT, `count` records of 64 bytes. */
function command(count: number): Uint8Array {
  return new Uint8Array(
    new Uint32Array([1, count, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).buffer,
  );
}

/** VmHWM of this process, in KiB. */
const peakRssKiB = () => statusKiB("VmHWM");

if (what === "latency") {
  const data = command(1);
  const latencies: number[] = [];
  let written = 0;
  let missed = 0;
  for (let i = 0; i < SAMPLES; i++) {
    setTimeout(() => {
      written = performance.now();
      program.testRun({ data });
    }, 1);
    // Bounded: a wake-up that never comes is counted, not waited for.
    if (await ring.pollAsync(1000, () => void latencies.push(performance.now() - written)) === 0) {
      missed++;
    }
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]!;
  console.log(JSON.stringify({ medianMs: at(0.5), p90Ms: at(0.9), maxMs: at(1), missed }));
} else {
  const records = Number(what);
  const data = command(PER_RUN);
  // The sum mod 2^32 in an Int32Array, as C sums in a uint32_t: a number a closure writes would
  // box every sum past 2^31 (an allocation a record), and a Float64Array's element, read and
  // written back a record, costs Deno 3.5 ns more a record (the callback's cost, not the ring's).
  const total = new Int32Array(1);
  const onRecord = (record: { view: DataView; offset: number }) => {
    total[0] = (total[0]! + record.view.getUint32(record.offset, true)) | 0;
  };
  for (let round = 0; round < SMALL_ROUNDS; round++) {
    program.testRun({ data });
    if (ring.consume(onRecord) !== PER_RUN) throw new Error(`a small round lost records`);
  }
  total[0] = 0;
  let seconds = 0;
  let consumed = 0;
  for (let round = -WARMUP; consumed < records; round++) {
    program.testRun({ data, repeat: PER_ROUND / PER_RUN });
    const before: number = total[0]!;
    const start = performance.now();
    const n = ring.consume(onRecord);
    const took = (performance.now() - start) / 1000;
    if (n !== PER_ROUND) throw new Error(`consumed ${n} records, not ${PER_ROUND}`);
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
