// Summing a 1,000,000-entry array of u64s (issue 15's bench): through its mmap-ed memory
// (map.memory(): the kernel's pages, no syscall) against lookupBatch on the same map (8,192
// elements a call, copied out by the kernel). Each way sums the same values to the same total,
// checked; the median of ROUNDS runs after a warm-up is reported as ns per entry, and the
// ratio. Standalone, in either runtime:
//
//   deno run --allow-ffi bench/mmap_sum.ts [ENTRIES] [ROUNDS]
//   bun bench/mmap_sum.ts [ENTRIES] [ROUNDS]

import process from "node:process";
import { BPF_F_MMAPABLE, BpfMap } from "../mod.ts";

const entries = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 9);
const BATCH = 8192;
const TWO_TO_32 = 4294967296;

/** Sums `count` little-endian u64s (each below 2^53 in total) from two u32 words each. */
function sumWords(words: Uint32Array, count: number): number {
  let sum = 0;
  for (let i = 0; i < count; i++) sum += words[2 * i]! + words[2 * i + 1]! * TWO_TO_32;
  return sum;
}

/**
 * The median and the fastest of `rounds` runs of `fn` (after one warm-up) in ns per entry, and
 * its result: on a busy machine the median carries the other work, the fastest the least of it.
 */
function measure(fn: () => number): { nsPerEntry: number; fastest: number; sum: number } {
  let sum = fn();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    sum = fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const perEntry = (ms: number) => Number(((ms * 1e6) / entries).toFixed(3));
  return { nsPerEntry: perEntry(times[rounds >> 1]!), fastest: perEntry(times[0]!), sum };
}

using map = BpfMap.create({
  type: "array",
  keySize: 4,
  valueSize: 8,
  maxEntries: entries,
  flags: BPF_F_MMAPABLE,
});
// Values i * 3 + 1: written through the mapping, which is how a program's writes look too.
using memory = map.memory();
const fill = new BigUint64Array(entries).map((_, i) => BigInt(i * 3 + 1));
memory.write(0, new Uint8Array(fill.buffer));
const expected = (3 * entries * (entries - 1)) / 2 + entries;

// The mapping: one observation when the view is taken (none live), then plain loads.
const mapped = measure(() => {
  const view = memory.view();
  return sumWords(new Uint32Array(view.buffer, view.byteOffset, entries * 2), entries);
});
// The same through BigUint64Array (a bigint per element): what the obvious loop costs.
const mappedBig = measure(() => {
  const view = memory.view();
  const values = new BigUint64Array(view.buffer, view.byteOffset, entries);
  let sum = 0n;
  for (let i = 0; i < entries; i++) sum += values[i]!;
  return Number(sum);
});
// lookupBatch into buffers reused across calls: the kernel copies each batch out.
const keys = new Uint8Array(BATCH * 4);
const values = new Uint8Array(BATCH * 8);
const words = new Uint32Array(values.buffer);
const batched = measure(() => {
  let sum = 0;
  let cursor: Uint8Array | null = null;
  do {
    const batch = map.lookupBatch({ cursor, count: BATCH, keys, values });
    sum += sumWords(words, batch.count);
    cursor = batch.cursor;
  } while (cursor !== null);
  return sum;
});

for (const [name, run] of [["mmap", mapped], ["mmap bigint", mappedBig], ["batch", batched]]) {
  const { sum } = run as { sum: number };
  if (sum !== expected) throw new Error(`${name}: summed ${sum}, expected ${expected}`);
}
const runtime = (globalThis as { Bun?: unknown }).Bun === undefined ? "deno" : "bun";
console.log(JSON.stringify({
  runtime,
  entries,
  rounds,
  // ns per entry, median [fastest]
  mmap: [mapped.nsPerEntry, mapped.fastest],
  mmapBigint: [mappedBig.nsPerEntry, mappedBig.fastest],
  lookupBatch: [batched.nsPerEntry, batched.fastest],
  batchOverMmap: Number((batched.nsPerEntry / mapped.nsPerEntry).toFixed(1)),
}));
