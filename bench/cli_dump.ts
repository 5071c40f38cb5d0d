// The bpfmap command against bpftool: the same pinned 1,000,000-entry hash
// map (u32 key, u64 value) dumped as JSON by `bpftool -j map dump`, and by
// `bpfmap -j map dump` under Deno and under Bun, in one run; outputs compared
// byte for byte; wall time, ratio and peak RSS of each.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfMap } from "../mod.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = join(ROOT, "cli", "main.ts");

interface Timed {
  seconds: number;
  peakRssMiB: number;
  bytes: number;
  output: string;
}

/** The best of `RUNS` runs of a dump command (see {@linkcode timedOnce}). */
function timed(command: string[], output: string): Timed {
  let best: Timed | undefined;
  for (let run = 0; run < RUNS; run++) {
    const result = timedOnce(command, output);
    if (best === undefined || result.seconds < best.seconds) best = result;
  }
  return best!;
}

const RUNS = 3;

/** Runs a dump command with stdout into `output`; times it, with GNU time's peak RSS where present. */
function timedOnce(command: string[], output: string): Timed {
  const hasTime = spawnSync("/usr/bin/time", ["--version"]).status === 0;
  const rssFile = `${output}.rss`;
  const argv = hasTime ? ["/usr/bin/time", "-f", "%M", "-o", rssFile, ...command] : command;
  const started = performance.now();
  const run = spawnSync("sh", ["-c", `exec "$@" > "${output}"`, "sh", ...argv], {
    stdio: "inherit",
  });
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`${command.join(" ")} exited with ${run.status}`);
  const peakRssMiB = hasTime ? Number(readFileSync(rssFile, "utf8").trim()) / 1024 : NaN;
  return { seconds, peakRssMiB, bytes: statSync(output).size, output };
}

/** Dumps a 1M-entry pinned map with bpftool and both runtimes' bpfmap; prints the comparison. */
export function benchCliDump(entries: number): void {
  if (spawnSync("bpftool", ["version"]).status !== 0) {
    console.error("bench: installing bpftool (Debian)...");
    execFileSync("sh", [
      "-c",
      "apt-get install -y -qq bpftool || (apt-get update -qq && apt-get install -y -qq bpftool)",
    ], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-cli-bench-"));
  const bpffs = join(dir, "bpffs");
  mkdirSync(bpffs);
  execFileSync("mount", ["-t", "bpf", "bpf", bpffs]);
  try {
    const pinned = join(bpffs, "big");
    {
      // An ordinary map (random hash seed): BPF_F_ZERO_SEED packs sequential keys into fuller buckets.
      using map = BpfMap.create({
        type: "hash",
        keySize: 4,
        valueSize: 8,
        maxEntries: entries,
        name: "bench_cli",
      });
      const keys = new Uint32Array(entries).map((_, i) => i);
      const values = new BigUint64Array(entries).map((_, i) => BigInt(i) * 3n);
      for (let done = 0; done < entries; done += 65536) {
        const count = Math.min(65536, entries - done);
        map.updateBatch(
          new Uint8Array(keys.buffer, done * 4, count * 4),
          new Uint8Array(values.buffer, done * 8, count * 8),
        );
      }
      map.pin(pinned);
    }
    const bin = join(ROOT, "node_modules", ".bin");
    const dump = ["-j", "map", "dump", "pinned", pinned];
    const runs: [string, Timed][] = [
      ["bpftool", timed(["bpftool", ...dump], join(dir, "bpftool.json"))],
      [
        "bpfmap (deno)",
        timed([join(bin, "deno"), "run", "--allow-ffi", CLI, ...dump], join(dir, "deno.json")),
      ],
      ["bpfmap (bun)", timed([join(bin, "bun"), CLI, ...dump], join(dir, "bun.json"))],
    ];
    const bpftool = runs[0]![1];
    const reference = readFileSync(bpftool.output);
    for (const [name, run] of runs.slice(1)) {
      if (!readFileSync(run.output).equals(reference)) {
        throw new Error(`${name}'s output differs from bpftool's`);
      }
    }
    console.log(
      `\nbpfmap -j map dump vs bpftool -j map dump: ${entries} entries, ${reference.byteLength} bytes of JSON, identical`,
    );
    for (const [name, run] of runs) {
      const ratio = bpftool.seconds / run.seconds;
      const verdict = name === "bpftool"
        ? ""
        : `  ${ratio.toFixed(1)}x faster than bpftool (target >= 5x: ${
          ratio >= 5 ? "met" : "MISSED"
        })`;
      console.log(
        `  ${name.padEnd(14)} ${run.seconds.toFixed(2)} s  peak RSS ${
          run.peakRssMiB.toFixed(0)
        } MiB${verdict}`,
      );
    }
  } finally {
    execFileSync("umount", [bpffs]);
    rmSync(dir, { recursive: true, force: true });
  }
}
