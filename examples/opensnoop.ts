// opensnoop: every file opened on the machine, as bcc's opensnoop prints them. A raw tracepoint
// on sys_enter (examples/bpf/opensnoop.bpf.c), filtered to openat, sends one sample per open
// through a perf buffer (one ring per CPU); this script reads them as they come, typed by a
// codec, and prints a table: the process, its name and the path it opened. Samples the rings had
// no room for are counted on stderr. Ctrl-C (or the end of --duration, or --count samples) stops
// it.
//
//   clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu \
//     -c examples/bpf/opensnoop.bpf.c -o opensnoop.bpf.o
//   deno run --allow-ffi --allow-read examples/opensnoop.ts opensnoop.bpf.o [--duration 10] \
//     [--count N] [--pid PID]
//   bun examples/opensnoop.ts opensnoop.bpf.o
//
// As root, or with CAP_BPF and CAP_PERFMON. --pid shows only the opens of one process.
//
// With `--transcript FILE`, the first run records every call (the samples the rings held
// included) into FILE, and later runs replay it with no kernel and no FFI, printing the same
// table: a replay reproduces what the reader saw, in order, not when. Stop the recording with
// --count (a replay stops at the same sample).

import process from "node:process";
import { parseArgs } from "node:util";
import { chars, openSystem, PerfBuffer, struct, u32 } from "../mod.ts";

const USAGE =
  "usage: opensnoop.ts OBJECT [--duration SECONDS] [--count N] [--pid PID] [--transcript FILE]";

/**
 * openat's number and the byte offset of a syscall's second argument in the kernel's
 * `struct pt_regs`, by architecture (x86-64: `si`; arm64: `regs[1]`).
 */
const SYSCALLS: Record<string, { openat: number; secondArgument: number }> = {
  x64: { openat: 257, secondArgument: 13 * 8 },
  arm64: { openat: 56, secondArgument: 1 * 8 },
};

/** What the command line asks for; else the usage, and exit status 2. */
function commandLine() {
  try {
    const { values, positionals } = parseArgs({
      options: {
        duration: { type: "string" },
        count: { type: "string" },
        pid: { type: "string" },
        transcript: { type: "string" },
      },
      allowPositionals: true,
    });
    const number = (text: string | undefined) => text === undefined ? undefined : Number(text);
    const duration = number(values.duration);
    const count = number(values.count);
    const pid = number(values.pid);
    if (
      positionals.length === 1 && (duration === undefined || duration > 0)
      && (count === undefined || Number.isInteger(count) && count > 0)
      && (pid === undefined || Number.isInteger(pid) && pid > 0)
    ) {
      return { object: positionals[0]!, duration, count, pid, transcript: values.transcript };
    }
  } catch { /* an unknown option, or one without its value */ }
  console.error(USAGE);
  process.exit(2);
}
const { object: path, duration, count, pid, transcript } = commandLine();
const syscalls = SYSCALLS[process.arch];
if (syscalls === undefined) {
  console.error(`opensnoop: no syscall table for ${process.arch} (x64 and arm64 only)`);
  process.exit(1);
}

/** The sample the program sends (struct event), as clang lays it out. */
const event = struct({ pid: u32, comm: chars(16), filename: chars(256) });

await using system = await openSystem(transcript === undefined ? {} : { transcript });
// A perf_event_array has a slot per possible CPU, as libbpf sizes one left without max_entries.
const object = system.openObject(path, {
  name: "opensnoop",
  maps: { events: { maxEntries: system.kernel.possibleCpus() } },
});
// The configuration, where the program reads it: .rodata, before load freezes it.
object.spec.maps.find((map) => map.name.endsWith(".rodata"))!.data!.set(
  new Uint8Array(new Uint32Array([syscalls.openat, syscalls.secondArgument, pid ?? 0]).buffer),
);
object.load();

using perf = new PerfBuffer(object.maps.get("events")!, {
  onLost: (cpu, lost) => console.error(`lost ${lost} samples on CPU ${cpu}`),
});
const column = (text: string | number, width: number) => String(text).padEnd(width);
console.log(`${column("PID", 8)}${column("COMM", 17)}PATH`);

{
  using link = object.programs.get("on_sys_enter")!.attachRawTracepoint("sys_enter");
  console.log(`attached on_sys_enter to sys_enter (link id ${link.id}); Ctrl-C to stop`);
  // Ctrl-C and the duration close the buffer: the loop below ends at its next wait.
  const stop = () => perf.close();
  process.on("SIGINT", stop);
  const timeout = duration === undefined ? undefined : setTimeout(stop, duration * 1000);
  let printed = 0;
  for await (const open of perf.typed(event)) {
    console.log(`${column(open.pid, 8)}${column(open.comm, 17)}${open.filename}`);
    if (++printed === count) break;
  }
  clearTimeout(timeout);
  process.off("SIGINT", stop);
}
console.log("detached");
