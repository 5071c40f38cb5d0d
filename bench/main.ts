// bpfmap's benchmark: a 1,000,000-entry hash map (u32 key, u64 value), five
// phases, best of 3 runs each, against the same phases in C with libbpf run
// as a child process of this one. Prints seconds, the TS/C ratio and the
// target per phase, and the peak RSS of both processes; then the replay of a
// recorded dump against the live one; then the bpfmap command's JSON dump
// against bpftool's (bench/cli_dump.ts); then opening and loading an object
// against libbpf's bpf_object__open + __load (bench/object_bench.ts); then, from
// Deno, ring buffer consumption against libbpf's in C, Deno and Bun (bench/ring_buffer.ts).
//
//   deno task bench      bun run bench      (root or CAP_BPF; Linux)
//   BPFMAP_BENCH_SECTION=object deno task bench     (the object section alone)
//   BPFMAP_BENCH_SECTION=ring deno task bench       (the ring buffer section alone)

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Attr } from "../ffi/attr.ts";
import { BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM } from "../ffi/commands.ts";
import { liveKernel } from "../ffi/kernel.ts";
import { detectRuntime } from "../ffi/live.ts";
import { BpfMap, type BpfSystem, openSystem, u32, u64 } from "../mod.ts";
import { benchCliDump } from "./cli_dump.ts";
import { benchObjectLoad } from "./object_bench.ts";
import { statusKiB } from "./process_status.ts";
import { benchRingBuffer } from "./ring_buffer.ts";

const ENTRIES = Number(process.env.BPFMAP_BENCH_ENTRIES ?? 1_000_000);
const BATCH = 4096;
const RUNS = Number(process.env.BPFMAP_BENCH_RUNS ?? 3);

type Phase =
  | "updateBatch"
  | "lookupBatch"
  | "typedSum"
  | "typedEntries"
  | "nextKeyLookup"
  | "nextKeyLookupInto"
  | "nextKeyLookupBare"
  | "deleteBatch"
  | "updateElem"
  | "updateElemBare";

/** The C phase a TypeScript phase is measured against (itself, unless said here). */
const C_REFERENCE: Partial<Record<Phase, Phase>> = {
  // C's lookupBatch phase dumps by batches of 4096 and sums every value.
  typedSum: "lookupBatch",
  typedEntries: "lookupBatch",
  nextKeyLookupInto: "nextKeyLookup",
  nextKeyLookupBare: "nextKeyLookup",
  updateElemBare: "updateElem",
};
/**
 * Phases with the issues' targets (TS/C at most). The element phases come
 * three ways: into the caller's buffers (`nextKeyInto`/`lookupInto`, as
 * libbpf's calls, the 1.20x target), with fresh results (`nextKey`/`lookup`,
 * a new buffer per result), and as bare FFI on attrs packed once, which is
 * no library at all: the floor, to split the time into kernel, FFI and JS.
 */
const PHASES: [Phase, string, number | undefined][] = [
  ["updateBatch", `updateBatch (${BATCH} per call)`, 1.10],
  ["lookupBatch", `lookupBatch dump (${BATCH} per call)`, 1.10],
  ["nextKeyLookupInto", "nextKeyInto + lookupInto dump", 1.20],
  ["nextKeyLookup", "nextKey + lookup dump (fresh results)", undefined],
  ["nextKeyLookupBare", "nextKey + lookup dump, bare FFI", undefined],
  ["typedSum", `typed batches() sum over the views (vs C dump+sum)`, 1.10],
  ["typedEntries", `typed entries() sum (vs C dump+sum)`, undefined],
  ["deleteBatch", `deleteBatch (${BATCH} per call)`, undefined],
  ["updateElem", "update per element", 1.20],
  ["updateElemBare", "update per element, bare FFI", undefined],
];

function buildC(): string {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const binary = `${root}/.build/bench_libbpf`;
  if (!existsSync("/usr/include/bpf/bpf.h")) {
    console.error("bench: installing libbpf-dev (Debian) for the C side...");
    execFileSync("sh", ["-c", "apt-get update -qq && apt-get install -y -qq libbpf-dev"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  mkdirSync(`${root}/.build`, { recursive: true });
  execFileSync("cc", ["-O2", "-o", binary, `${root}/bench/bench_libbpf.c`, "-lbpf"], {
    stdio: "inherit",
  });
  return binary;
}

/** What one run of either side measured: seconds per phase, and the sum of what it read. */
type Run = Record<Phase, number> & { checksum: number };

const keys = new Uint32Array(ENTRIES).map((_, i) => i);
const values = new BigUint64Array(ENTRIES).map((_, i) => BigInt(i) * 3n);
/** The sum of every value: what each dump must read. */
const VALUE_SUM = 3 * ENTRIES * (ENTRIES - 1) / 2;

/** One run of every phase on a fresh map; `checksum` sums C's two dumps, as C does. */
function runTypeScript(): Run {
  const times = {} as Record<Phase, number>;
  const time = (phase: Phase, fn: () => void) => {
    const t = performance.now();
    fn();
    times[phase] = (performance.now() - t) / 1000;
  };
  const keyBytes = new Uint8Array(keys.buffer);
  const valueBytes = new Uint8Array(values.buffer);
  const outKeys = new Uint8Array(BATCH * 4);
  const outValues = new Uint8Array(BATCH * 8);
  const outValueWords = new Uint32Array(outValues.buffer);
  const key = new Uint8Array(new ArrayBuffer(4));
  const value = new Uint8Array(new ArrayBuffer(8));
  const keyView = new DataView(key.buffer);
  const valueView = new DataView(value.buffer);
  // A u64 read as two u32 halves: plain number arithmetic, as cheap as C's;
  // every sum here stays below 2^53.
  const u64At = (v: Uint8Array) =>
    ((v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24)) >>> 0)
    + ((v[4]! | (v[5]! << 8) | (v[6]! << 16) | (v[7]! << 24)) >>> 0) * 0x1_0000_0000;
  let checksum = 0;
  const expect = (what: string, sum: number) => {
    if (sum !== VALUE_SUM) throw new Error(`${what} read a sum of ${sum}, not ${VALUE_SUM}`);
  };

  using map = BpfMap.create({
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: ENTRIES,
    name: "bench_ts",
  });
  time("updateBatch", () => fill(map, keyBytes, valueBytes));

  time("lookupBatch", () => {
    let sum = 0;
    let cursor: Uint8Array | null = null;
    do {
      const batch = map.lookupBatch({ cursor, count: BATCH, keys: outKeys, values: outValues });
      for (let i = 0; i < batch.count; i++) {
        sum += outValueWords[2 * i]! + outValueWords[2 * i + 1]! * 0x1_0000_0000;
      }
      cursor = batch.cursor;
    } while (cursor !== null);
    expect("lookupBatch dump", sum);
    checksum += sum;
  });

  // Issue 6: the same sum through a typed map's zero-copy batch views, then through entries().
  const typed = map.typed({ key: u32, value: u64 });
  time("typedSum", () => {
    let sum = 0;
    for (const batch of typed.batches({ size: BATCH })) {
      const view = batch.valueArray() as BigUint64Array;
      // The same kernel buffer as u32 halves: exact below 2^53, and no BigInt per element.
      const words = new Uint32Array(view.buffer, view.byteOffset, view.length * 2);
      for (let i = 0; i < words.length; i += 2) sum += words[i]! + words[i + 1]! * 0x1_0000_0000;
    }
    expect("typed batches()", sum);
  });
  time("typedEntries", () => {
    let sum = 0n;
    for (const [, value] of typed.entries({ batchSize: BATCH })) sum += value;
    expect("typed entries()", Number(sum));
  });

  time("nextKeyLookupInto", () => {
    let sum = 0;
    for (let more = map.nextKeyInto(null, key); more; more = map.nextKeyInto(key, key)) {
      map.lookupInto(key, value);
      sum += u64At(value);
    }
    expect("nextKeyInto + lookupInto dump", sum);
  });

  time("nextKeyLookup", () => {
    let sum = 0;
    for (let k = map.nextKey(); k !== undefined; k = map.nextKey(k)) sum += u64At(map.lookup(k)!);
    expect("nextKey + lookup dump", sum);
    checksum += sum;
  });

  time("nextKeyLookupBare", () => expect("bare nextKey + lookup dump", bareDump(map)));

  time("deleteBatch", () => {
    for (let done = 0; done < ENTRIES;) {
      const count = Math.min(BATCH, ENTRIES - done);
      done += map.deleteBatch(keyBytes.subarray(done * 4, (done + count) * 4));
    }
  });

  time("updateElem", () => {
    for (let i = 0; i < ENTRIES; i++) {
      keyView.setUint32(0, i, true);
      valueView.setBigUint64(0, values[i]!, true);
      map.update(key, value);
    }
  });
  map.deleteBatch(keyBytes);
  time("updateElemBare", () => bareUpdates(map));
  return { ...times, checksum };
}

/**
 * The attr of an element command on `fd`, packed once, and a bare call of
 * it: no checks, no copies, the FFI call itself. Keys and values are
 * off-heap; the caller writes them in place.
 */
function bareCall(
  command: typeof BPF_MAP_LOOKUP_ELEM,
  fd: number,
  key: Uint8Array,
  value: Uint8Array,
): () => number {
  const backend = liveKernel().backend;
  const attr = new Attr(command, backend);
  attr.setU32(command.fields.map_fd, fd);
  attr.setPointer(command.fields.key, key);
  attr.setPointer(command.fields.value, value);
  return () => backend.bpf(attr);
}

/** The nextKey + lookup dump in bare calls; returns the sum of the values. */
function bareDump(map: BpfMap): number {
  const offHeap = (size: number) => new Uint8Array(new ArrayBuffer(size));
  const [first, key, next, value] = [offHeap(4), offHeap(4), offHeap(4), offHeap(8)];
  const firstKey = bareCall(BPF_MAP_GET_NEXT_KEY, map.fd, null as unknown as Uint8Array, first);
  const nextKey = bareCall(BPF_MAP_GET_NEXT_KEY, map.fd, key, next);
  const lookup = bareCall(BPF_MAP_LOOKUP_ELEM, map.fd, next, value);
  const words = new Uint32Array(value.buffer);
  let sum = 0;
  if (firstKey() !== 0) return sum;
  next.set(first);
  do {
    if (lookup() !== 0) throw new Error("bare lookup failed");
    sum += words[0]! + words[1]! * 0x1_0000_0000;
    key.set(next);
  } while (nextKey() === 0);
  return sum;
}

/** Every element written in bare update calls. */
function bareUpdates(map: BpfMap): void {
  const key = new Uint8Array(new ArrayBuffer(4));
  const value = new Uint8Array(new ArrayBuffer(8));
  const keyView = new DataView(key.buffer);
  const valueView = new DataView(value.buffer);
  const update = bareCall(BPF_MAP_UPDATE_ELEM, map.fd, key, value);
  for (let i = 0; i < ENTRIES; i++) {
    keyView.setUint32(0, i, true);
    valueView.setBigUint64(0, values[i]!, true);
    if (update() !== 0) throw new Error("bare update failed");
  }
}

/** Fills `map` with ENTRIES elements, 4096 per updateBatch call. */
function fill(map: BpfMap, keyBytes: Uint8Array, valueBytes: Uint8Array): void {
  for (let done = 0; done < ENTRIES;) {
    const count = Math.min(BATCH, ENTRIES - done);
    done += map.updateBatch(
      keyBytes.subarray(done * 4, (done + count) * 4),
      valueBytes.subarray(done * 8, (done + count) * 8),
    );
  }
}

/** Dumps `map` by lookup batches of 4096; returns the elements seen. */
function dump(map: BpfMap): number {
  const keys = new Uint8Array(BATCH * 4);
  const values = new Uint8Array(BATCH * 8);
  let total = 0;
  let cursor: Uint8Array | null = null;
  do {
    const batch = map.lookupBatch({ cursor, count: BATCH, keys, values });
    total += batch.count;
    cursor = batch.cursor;
  } while (cursor !== null);
  return total;
}

/**
 * Records a fill and a dump of the map into a transcript, then replays it
 * RUNS times: the dump's replay time (best), the whole replay's (open and
 * parse included), and the transcript's size.
 */
async function runReplay(): Promise<{ dump: number; whole: number; bytes: number }> {
  const path = `${tmpdir()}/bpfmap-bench-${process.pid}.json`;
  const keyBytes = new Uint8Array(new Uint32Array(ENTRIES).map((_, i) => i).buffer);
  const valueBytes = new Uint8Array(
    new BigUint64Array(ENTRIES).map((_, i) => BigInt(i) * 3n).buffer,
  );
  const session = (system: BpfSystem, timed: (seconds: number) => void) => {
    using map = system.createMap({
      type: "hash",
      keySize: 4,
      valueSize: 8,
      maxEntries: ENTRIES,
      name: "bench_replay",
    });
    fill(map, keyBytes, valueBytes);
    const t = performance.now();
    if (dump(map) !== ENTRIES) throw new Error("the dump lost elements");
    timed((performance.now() - t) / 1000);
  };
  try {
    const recording = await openSystem({ transcript: path, mode: "record" });
    session(recording, () => {});
    await recording.close();
    let best = { dump: Infinity, whole: Infinity };
    for (let run = 0; run < RUNS; run++) {
      const t = performance.now();
      const replay = await openSystem({ transcript: path, mode: "replay" });
      let dumpSeconds = Infinity;
      session(replay, (seconds) => (dumpSeconds = seconds));
      await replay.close();
      const whole = (performance.now() - t) / 1000;
      best = { dump: Math.min(best.dump, dumpSeconds), whole: Math.min(best.whole, whole) };
    }
    return { ...best, bytes: statSync(path).size };
  } finally {
    rmSync(path, { force: true });
  }
}

function loadAverage(): string {
  return liveKernel().backend.readTextFile("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

/**
 * Per element call, where the time goes: the kernel (C's call, libbpf's
 * wrapper being a few ns), the FFI transition (bare FFI minus C), and
 * bpfmap's JavaScript (the library minus bare FFI).
 */
function printBreakdown(): void {
  const perCall = (seconds: number, calls: number) => (seconds / calls) * 1e9;
  const rows: [string, number, number, number, number][] = [
    ["nextKey + lookup (2 calls)", c.nextKeyLookup, ts.nextKeyLookupBare, ts.nextKeyLookupInto, 2],
    ["update (1 call)", c.updateElem, ts.updateElemBare, ts.updateElem, 1],
  ];
  for (const [label, cSeconds, bare, library, calls] of rows) {
    const kernel = perCall(cSeconds, ENTRIES * calls);
    const ffi = perCall(bare, ENTRIES * calls) - kernel;
    const js = perCall(library, ENTRIES * calls) - perCall(bare, ENTRIES * calls);
    console.log(
      `${label}, ns per call: kernel (C) ${kernel.toFixed(0)}, FFI ${ffi.toFixed(0)}, `
        + `bpfmap's JS ${js.toFixed(0)}`,
    );
  }
}

/** VmHWM of this process, in KiB. */
const peakRssKiB = () => statusKiB("VmHWM");

const runtime = detectRuntime();
if (process.env.BPFMAP_BENCH_SECTION === "object") {
  benchObjectLoad(runtime);
  process.exit(0);
}
if (process.env.BPFMAP_BENCH_SECTION === "ring") {
  benchRingBuffer();
  process.exit(0);
}
const binary = buildC();
console.log(
  `bpfmap bench: ${ENTRIES} entries, hash u32 -> u64, best of ${RUNS} runs, `
    + `${runtime} vs C (libbpf), `
    + `the sides alternating run by run; load average before: ${loadAverage()}`,
);
// One run of each side at a time, C then TypeScript, RUNS times: a burst of load from
// elsewhere falls on both sides rather than on all of one side's runs.
const c = {} as Record<Phase, number> & { peakRssKiB: number };
const ts = {} as Record<Phase, number>;
for (let run = 0; run < RUNS; run++) {
  const cRun = JSON.parse(
    execFileSync(binary, [String(ENTRIES), String(BATCH), "1"], { encoding: "utf8" }),
  );
  const { checksum, ...tsRun } = runTypeScript();
  if (cRun.checksum !== checksum) {
    throw new Error(`checksums differ: C ${cRun.checksum}, TS ${checksum}`);
  }
  for (const phase of Object.keys(tsRun) as Phase[]) {
    ts[phase] = Math.min(ts[phase] ?? Infinity, tsRun[phase]);
    if (phase in cRun) c[phase] = Math.min(c[phase] ?? Infinity, cRun[phase]);
  }
  c.peakRssKiB = Math.max(c.peakRssKiB ?? 0, cRun.peakRssKiB);
}

const rows = PHASES.map(([phase, label, target]) => {
  const reference = c[C_REFERENCE[phase] ?? phase];
  const ratio = ts[phase] / reference;
  return [
    label,
    reference.toFixed(3),
    ts[phase].toFixed(3),
    ratio.toFixed(2) + "x",
    target === undefined ? "-" : `<= ${target.toFixed(2)}x`,
    target === undefined ? "" : ratio <= target ? "met" : "MISSED",
  ];
});
const header = ["phase", "C s", `${runtime} s`, "TS/C", "target", ""];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(
    "  ",
  );
console.log(line(header));
for (const row of rows) console.log(line(row));
console.log(
  `peak RSS: C ${(c.peakRssKiB / 1024).toFixed(1)} MiB, ${runtime} ${
    (peakRssKiB() / 1024).toFixed(1)
  } MiB`,
);

console.log(`load average after: ${loadAverage()}`);
printBreakdown();

if (process.env.BPFMAP_BENCH_ELEMENTS_ONLY === "1") process.exit(0);
const replay = await runReplay();
const speedup = ts.lookupBatch / replay.dump;
console.log(
  `replay of the ${ENTRIES}-entry dump: ${replay.dump.toFixed(3)} s against ${
    ts.lookupBatch.toFixed(3)
  } s live (${speedup.toFixed(1)}x faster, target >= 2x: ${speedup >= 2 ? "met" : "MISSED"}); `
    + `whole replay with parsing and the fill ${replay.whole.toFixed(3)} s; `
    + `transcript ${(replay.bytes / 2 ** 20).toFixed(1)} MiB`,
);

benchCliDump(ENTRIES);
benchObjectLoad(runtime);
// It runs C, Deno and Bun as children itself: once, from the Deno bench (`deno task bench`).
if (runtime === "deno") benchRingBuffer();
else console.log("ring buffer: see deno task bench (it runs C, Deno and Bun)");
