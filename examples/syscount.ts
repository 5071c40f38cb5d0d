// syscount: the system calls each process makes, as bcc's `syscount -P` counts them. A raw
// tracepoint on sys_enter (examples/bpf/syscount.bpf.c) counts each call in a hash map by process
// and syscall number; every interval this script drains the map by lookup-and-delete batches and
// prints the busiest processes. Ctrl-C (or the end of --duration) prints what is left and stops.
//
//   clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu \
//     -c examples/bpf/syscount.bpf.c -o syscount.bpf.o
//   deno run --allow-ffi --allow-read examples/syscount.ts syscount.bpf.o [--interval 1] \
//     [--duration 10] [--top 10]
//   bun examples/syscount.ts syscount.bpf.o
//
// As root, or with CAP_BPF and CAP_PERFMON. Names come from /proc/PID/comm (the main thread's),
// else (the process has exited, or Deno without --allow-all, which alone opens /proc) from what the
// program saw (the calling thread's).

import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { BpfObject, chars, struct, u32, u64 } from "../mod.ts";

/** Seconds, as milliseconds; anything but a positive number is NaN. */
const seconds = (text: string | undefined) => Number(text) > 0 ? Number(text) * 1000 : NaN;

/** What the command line asks for; else the usage, and exit status 2. */
function commandLine() {
  try {
    const { values, positionals } = parseArgs({
      options: {
        interval: { type: "string", default: "1" },
        duration: { type: "string" },
        top: { type: "string", default: "10" },
      },
      allowPositionals: true,
    });
    const interval = seconds(values.interval);
    const duration = values.duration === undefined ? undefined : seconds(values.duration);
    const top = Number(values.top);
    if (positionals.length === 1 && interval > 0 && (duration ?? 1) > 0 && top > 0) {
      return { object: positionals[0]!, interval, duration, top };
    }
  } catch { /* an unknown option, or one without its value */ }
  console.error("usage: syscount.ts OBJECT [--interval SECONDS] [--duration SECONDS] [--top N]");
  process.exit(2);
}
const { object: path, interval, duration, top } = commandLine();

// The program's key and value, as clang lays them out (struct key, struct value).
const key = struct({ tgid: u32, nr: u32 });
const value = struct({ count: u64, last: u64, comm: chars(16) });

using object = BpfObject.open(path).load();
const counts = object.map("counts").typed({ key, value });

/**
 * System call names by number, from the kernel's headers where they are installed (Debian's
 * linux-libc-dev; x86_64 has a table of its own, arm64 and riscv64 the generic one); else none.
 */
function syscallNames(): Map<number, string> {
  const machine = { x64: "x86_64", arm64: "aarch64", riscv64: "riscv64" }[process.arch as string];
  for (const header of [`${machine}-linux-gnu/asm/unistd_64.h`, "asm-generic/unistd.h"]) {
    try {
      const text = readFileSync(`/usr/include/${header}`, "utf8");
      const defines = text.matchAll(/^#define __NR_(\w+) (\d+)$/gm);
      return new Map(Array.from(defines, ([, name, nr]) => [Number(nr), name!]));
    } catch { /* not installed: the next, or numbers only */ }
  }
  return new Map();
}
const names = syscallNames();

/** The process's name now, or the one the program saw if it has exited since. */
function commOf(tgid: number, seen: string): string {
  try {
    return readFileSync(`/proc/${tgid}/comm`, "utf8").trimEnd();
  } catch {
    return seen;
  }
}

/** Drains the counts (what the kernel adds meanwhile waits for the next drain) and prints them. */
function report(): void {
  type Seen = { comm: string; last: bigint; total: bigint; nr: number; most: bigint };
  const processes = new Map<number, Seen>();
  for (const [{ tgid, nr }, { count, last, comm }] of counts.drain()) {
    const seen = processes.get(tgid) ?? { comm, last, total: 0n, nr, most: 0n };
    seen.total += count;
    if (count > seen.most) Object.assign(seen, { nr, most: count });
    if (last > seen.last) Object.assign(seen, { comm, last }); // the name of its latest call
    processes.set(tgid, seen);
  }
  const rows = [...processes].sort(([, a], [, b]) => Number(b.total - a.total));
  const calls = rows.reduce((sum, [, { total }]) => sum + total, 0n);
  const time = new Date().toISOString().slice(11, 19);
  console.log(`\n${time}  ${calls} syscalls by ${rows.length} processes`);
  console.log(`${"PID".padStart(7)} ${"COMM".padEnd(16)} ${"SYSCALLS".padStart(10)}  TOP SYSCALL`);
  for (const [tgid, { comm, total, nr, most }] of rows.slice(0, top)) {
    const name = commOf(tgid, comm).padEnd(16);
    console.log(
      `${String(tgid).padStart(7)} ${name} ${String(total).padStart(10)}  ${
        names.get(nr) ?? nr
      } (${most})`,
    );
  }
}

{
  // Attached for this block: leaving it, by Ctrl-C, the duration or an error, detaches.
  using link = object.loadedProgram("count_syscalls").attachRawTracepoint("sys_enter");
  // Until Ctrl-C or the end of the duration; Ctrl-C is taken before the user is told of it.
  const ticks = setInterval(report, interval);
  let stop = () => {};
  let timeout: ReturnType<typeof setTimeout> | undefined;
  const stopped = new Promise<void>((resolve) => {
    process.on("SIGINT", stop = resolve);
    if (duration !== undefined) timeout = setTimeout(stop, duration);
  });
  console.log(`attached count_syscalls to sys_enter (link id ${link.id}); Ctrl-C to stop`);
  await stopped;
  clearInterval(ticks);
  clearTimeout(timeout);
  process.off("SIGINT", stop);
  report();
}
console.log("detached");
