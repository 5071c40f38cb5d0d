// The TypeScript side of the object bench, run as a child process as the C
// side is (bench/bench_object_libbpf.c), so each side's RSS is its own:
// BpfObject.open(path).load() and close(), ITERATIONS times after one
// warm-up, then a pass with the verifier's statistics. Prints the same JSON
// as the C side.
//
//   deno run --allow-ffi --allow-read bench/object_load.ts OBJECT ITERATIONS
//   bun bench/object_load.ts OBJECT ITERATIONS

import process from "node:process";
import type { Attr } from "../ffi/attr.ts";
import { forwardingBackend, type SyscallBackend } from "../ffi/backend.ts";
import { BPF_PROG_LOAD } from "../ffi/commands.ts";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import { BpfObject } from "../mod.ts";
import { statusKiB } from "./process_status.ts";

/** One open + load + close: seconds of each step, and of the bpf() calls within. */
export interface Iteration {
  open: number;
  load: number;
  close: number;
  /** Seconds in bpf() calls (the kernel's work, seen from user space), and their number. */
  bpf: number;
  bpfCalls: number;
  /** Seconds in the BPF_PROG_LOAD calls of the object's own programs, and their number. */
  progLoad: number;
  progLoads: number;
}

/** The verifier's own account of one program (log_level 4, BPF_LOG_STATS). */
export interface VerifierStats {
  /** "verification time N usec". */
  usec: number;
  /** "processed N insns". */
  insns: number;
}

/** What one side prints. */
export interface SideRun {
  warmup: Iteration;
  iterations: Iteration[];
  /** CPU seconds of all iterations, in user mode and in the kernel (getrusage). */
  cpu: { user: number; system: number };
  verifier: Record<string, VerifierStats>;
  baseRssKiB: number;
  peakRssKiB: number;
}

const BPF_LOG_STATS = 4;
const LOG_SIZE = 4096;
const fields = BPF_PROG_LOAD.fields;

/** The name a BPF_PROG_LOAD attr carries (`prog_name`, NUL-padded). */
function progName(attr: Attr): string {
  const chars = attr.bytes.subarray(fields.prog_name.offset, fields.prog_name.offset + 16);
  const end = chars.indexOf(0);
  return String.fromCharCode(...chars.subarray(0, end < 0 ? 16 : end));
}

/**
 * The live backend with every bpf() call timed (two clock reads around the
 * kernel's work, as the C side's interposed syscall()), the object's own
 * BPF_PROG_LOADs apart; `stats`, when set, asks the verifier for its
 * statistics on each program load and receives them.
 */
function timedKernel() {
  const live = liveKernel().backend;
  const calls = { bpf: 0, bpfCalls: 0, progLoad: 0, progLoads: 0 };
  const state = {
    programs: new Set<string>(),
    stats: undefined as Record<string, VerifierStats> | undefined,
  };
  const log = new Uint8Array(new ArrayBuffer(LOG_SIZE));
  // forwardingBackend, not a spread: a spread drops the backend's getters (pageSize) and methods.
  const backend: SyscallBackend = Object.assign(forwardingBackend(() => live), {
    bpf(attr: Attr): number {
      const isProgLoad = attr.command === BPF_PROG_LOAD && state.programs.has(progName(attr));
      if (isProgLoad && state.stats !== undefined) return loadWithStats(attr);
      const t = performance.now();
      const result = live.bpf(attr);
      const seconds = (performance.now() - t) / 1000;
      calls.bpf += seconds;
      calls.bpfCalls++;
      if (isProgLoad) {
        calls.progLoad += seconds;
        calls.progLoads++;
      }
      return result;
    },
  });
  const loadWithStats = (attr: Attr): number => {
    log.fill(0);
    attr.setU32(fields.log_level, BPF_LOG_STATS);
    attr.setU32(fields.log_size, LOG_SIZE);
    attr.setPointer(fields.log_buf, log);
    const result = live.bpf(attr);
    const text = new TextDecoder().decode(log.subarray(0, Math.max(0, log.indexOf(0))));
    state.stats![progName(attr)] = {
      usec: Number(/verification time (\d+) usec/.exec(text)?.[1] ?? -1),
      insns: Number(/processed (\d+) insns/.exec(text)?.[1] ?? -1),
    };
    // The attr is reused: the next load must not write into this log.
    attr.setU32(fields.log_level, 0);
    attr.setU32(fields.log_size, 0);
    attr.setPointer(fields.log_buf, null);
    return result;
  };
  return { kernel: new Kernel(backend), calls, state };
}

function iteration(path: string, timed: ReturnType<typeof timedKernel>): Iteration {
  Object.assign(timed.calls, { bpf: 0, bpfCalls: 0, progLoad: 0, progLoads: 0 });
  const t = performance.now();
  const object = BpfObject.open(path, { kernel: timed.kernel });
  const opened = performance.now();
  timed.state.programs = new Set(object.spec.programs.map((p) => p.name.slice(0, 15)));
  object.load();
  const loaded = performance.now();
  object.close();
  const closed = performance.now();
  return {
    open: (opened - t) / 1000,
    load: (loaded - opened) / 1000,
    close: (closed - loaded) / 1000,
    ...timed.calls,
  };
}

/** One side's whole run, as the C side's. */
export function runObjectSide(path: string, iterations: number): SideRun {
  const baseRssKiB = statusKiB("VmRSS");
  const timed = timedKernel();
  const warmup = iteration(path, timed);
  const before = process.cpuUsage();
  const runs = Array.from({ length: iterations }, () => iteration(path, timed));
  const { user, system } = process.cpuUsage(before);
  const cpu = { user: user / 1e6, system: system / 1e6 };
  const verifier: Record<string, VerifierStats> = {};
  timed.state.stats = verifier;
  iteration(path, timed);
  return { warmup, iterations: runs, cpu, verifier, baseRssKiB, peakRssKiB: statusKiB("VmHWM") };
}

if (import.meta.main) {
  const [path, iterations] = process.argv.slice(2);
  if (path === undefined || !(Number(iterations) > 0)) {
    console.error("usage: object_load.ts OBJECT ITERATIONS");
    process.exit(2);
  }
  console.log(JSON.stringify(runObjectSide(path, Number(iterations))));
}
