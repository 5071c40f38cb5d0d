// bpfmap's benchmark: a 1,000,000-entry hash map (u32 key, u64 value), five
// phases, best of 3 runs each, against the same phases in C with libbpf run
// as a child process of this one. Prints seconds, the TS/C ratio and the
// target per phase, and the peak RSS of both processes; then the replay of a
// recorded dump against the live one; then the bpfmap command's JSON dump
// against bpftool's (bench/cli_dump.ts).
//
//   deno task bench      bun run bench      (root or CAP_BPF; Linux)

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { liveKernel } from "../ffi/kernel.ts";
import { detectRuntime } from "../ffi/live.ts";
import { BpfMap, type BpfSystem, openSystem, u32, u64 } from "../mod.ts";
import { benchCliDump } from "./cli_dump.ts";

const ENTRIES = Number(process.env.BPFMAP_BENCH_ENTRIES ?? 1_000_000);
const BATCH = 4096;
const RUNS = Number(process.env.BPFMAP_BENCH_RUNS ?? 3);

type Phase =
  | "updateBatch"
  | "lookupBatch"
  | "typedSum"
  | "typedEntries"
  | "nextKeyLookup"
  | "deleteBatch"
  | "updateElem";

/** The C phase a TypeScript phase is measured against (itself, unless said here). */
const C_REFERENCE: Partial<Record<Phase, Phase>> = {
  // C's lookupBatch phase dumps by batches of 4096 and sums every value.
  typedSum: "lookupBatch",
  typedEntries: "lookupBatch",
};
/** Phases with the targets (TS/C at most); deleteBatch has none. */
const PHASES: [Phase, string, number | undefined][] = [
  ["updateBatch", `updateBatch (${BATCH} per call)`, 1.10],
  ["lookupBatch", `lookupBatch dump (${BATCH} per call)`, 1.10],
  ["nextKeyLookup", "nextKey + lookup dump", 1.25],
  ["typedSum", `typed batches() sum over the views (vs C dump+sum)`, 1.10],
  ["typedEntries", `typed entries() sum (vs C dump+sum)`, undefined],
  ["deleteBatch", `deleteBatch (${BATCH} per call)`, undefined],
  ["updateElem", "update per element", 1.25],
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

function runTypeScript(): Record<Phase, number> & { checksum: number } {
  const best = {
    updateBatch: Infinity,
    lookupBatch: Infinity,
    typedSum: Infinity,
    typedEntries: Infinity,
    nextKeyLookup: Infinity,
    deleteBatch: Infinity,
    updateElem: Infinity,
  };
  const keys = new Uint32Array(ENTRIES);
  const values = new BigUint64Array(ENTRIES);
  for (let i = 0; i < ENTRIES; i++) {
    keys[i] = i;
    values[i] = BigInt(i) * 3n;
  }
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
  let checksum = 0;

  for (let run = 0; run < RUNS; run++) {
    using map = BpfMap.create({
      type: "hash",
      keySize: 4,
      valueSize: 8,
      maxEntries: ENTRIES,
      name: "bench_ts",
    });
    let t = performance.now();
    for (let done = 0; done < ENTRIES;) {
      const count = Math.min(BATCH, ENTRIES - done);
      done += map.updateBatch(
        keyBytes.subarray(done * 4, (done + count) * 4),
        valueBytes.subarray(done * 8, (done + count) * 8),
      );
    }
    best.updateBatch = Math.min(best.updateBatch, performance.now() - t);

    t = performance.now();
    let total = 0;
    let cursor: Uint8Array | null = null;
    do {
      const batch = map.lookupBatch({ cursor, count: BATCH, keys: outKeys, values: outValues });
      for (let i = 0; i < batch.count; i++) {
        checksum += outValueWords[2 * i] + outValueWords[2 * i + 1] * 0x1_0000_0000;
      }
      total += batch.count;
      cursor = batch.cursor;
    } while (cursor !== null);
    best.lookupBatch = Math.min(best.lookupBatch, performance.now() - t);
    if (total !== ENTRIES) throw new Error(`lookupBatch dump saw ${total} elements`);

    // Issue 6: the same sum through a typed map's zero-copy batch views, then through entries().
    const typed = map.typed({ key: u32, value: u64 });
    t = performance.now();
    let typedSum = 0;
    for (const batch of typed.batches({ size: BATCH })) {
      const view = batch.valueArray() as BigUint64Array;
      // The same kernel buffer as u32 halves: exact below 2^53, and no BigInt per element.
      const words = new Uint32Array(view.buffer, view.byteOffset, view.length * 2);
      for (let i = 0; i < words.length; i += 2) typedSum += words[i] + words[i + 1] * 0x1_0000_0000;
    }
    best.typedSum = Math.min(best.typedSum, performance.now() - t);
    t = performance.now();
    let entriesSum = 0n;
    for (const [, value] of typed.entries({ batchSize: BATCH })) entriesSum += value;
    best.typedEntries = Math.min(best.typedEntries, performance.now() - t);
    const expectedSum = 3n * BigInt(ENTRIES) * BigInt(ENTRIES - 1) / 2n;
    if (BigInt(typedSum) !== expectedSum || entriesSum !== expectedSum) {
      throw new Error("typed sums are wrong");
    }

    t = performance.now();
    total = 0;
    for (let k = map.nextKey(); k !== undefined; k = map.nextKey(k)) {
      const v = map.lookup(k)!;
      checksum += (v[0] | (v[1] << 8) | (v[2] << 16) | (v[3] << 24)) >>> 0;
      checksum += ((v[4] | (v[5] << 8) | (v[6] << 16) | (v[7] << 24)) >>> 0) * 0x1_0000_0000;
      total++;
    }
    best.nextKeyLookup = Math.min(best.nextKeyLookup, performance.now() - t);
    if (total !== ENTRIES) throw new Error(`nextKey dump saw ${total} elements`);

    t = performance.now();
    for (let done = 0; done < ENTRIES;) {
      const count = Math.min(BATCH, ENTRIES - done);
      done += map.deleteBatch(keyBytes.subarray(done * 4, (done + count) * 4));
    }
    best.deleteBatch = Math.min(best.deleteBatch, performance.now() - t);

    t = performance.now();
    for (let i = 0; i < ENTRIES; i++) {
      keyView.setUint32(0, i, true);
      valueView.setBigUint64(0, values[i], true);
      map.update(key, value);
    }
    best.updateElem = Math.min(best.updateElem, performance.now() - t);
  }
  for (const phase of Object.keys(best) as Phase[]) best[phase] /= 1000;
  return { ...best, checksum };
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

function peakRssKiB(): number {
  const status = liveKernel().backend.readTextFile("/proc/self/status");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
}

const runtime = detectRuntime();
const binary = buildC();
console.log(
  `bpfmap bench: ${ENTRIES} entries, hash u32 -> u64, best of ${RUNS} runs, ${runtime} vs C (libbpf)`,
);
const c = JSON.parse(
  execFileSync(binary, [String(ENTRIES), String(BATCH), String(RUNS)], { encoding: "utf8" }),
);
const ts = runTypeScript();
if (c.checksum !== ts.checksum) {
  throw new Error(`checksums differ: C ${c.checksum}, TS ${ts.checksum}`);
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
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ");
console.log(line(header));
for (const row of rows) console.log(line(row));
console.log(
  `peak RSS: C ${(c.peakRssKiB / 1024).toFixed(1)} MiB, ${runtime} ${
    (peakRssKiB() / 1024).toFixed(1)
  } MiB`,
);

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
