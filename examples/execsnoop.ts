// execsnoop: every program started on the machine, as bcc's execsnoop prints them. A raw
// tracepoint on sched_process_exec (examples/bpf/execsnoop.bpf.c) sends one record per exec
// through a ring buffer; this script reads them as they come, typed by a codec, and prints a
// table: the process, its parent, its name and the file it executed. Ctrl-C (or the end of
// --duration, or --count records) stops it.
//
//   clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu \
//     -c examples/bpf/execsnoop.bpf.c -o execsnoop.bpf.o
//   deno run --allow-ffi --allow-read examples/execsnoop.ts execsnoop.bpf.o [--duration 10] \
//     [--count N] [--ppid PID]
//   bun examples/execsnoop.ts execsnoop.bpf.o
//
// As root, or with CAP_BPF and CAP_PERFMON. --ppid shows only the children of one process.
//
// With `--transcript FILE`, the first run records every call (the records the ring held
// included) into FILE, and later runs replay it with no kernel and no FFI, printing the same
// table: a replay reproduces what the reader saw, in order, not when. Stop the recording with
// --count (a replay stops at the same record); one stopped by the clock (--duration, Ctrl-C)
// replays up to where the clock stopped it only by chance. The program reads the kernel's structs
// by CO-RE: load() points each access at the running kernel's layout, read from
// /sys/kernel/btf/vmlinux through the system, so the transcript keeps that BTF too.

import process from "node:process";
import { parseArgs } from "node:util";
import { chars, openSystem, RingBuffer, struct, u32 } from "../mod.ts";

const USAGE =
  "usage: execsnoop.ts OBJECT [--duration SECONDS] [--count N] [--ppid PID] [--transcript FILE]";

/** What the command line asks for; else the usage, and exit status 2. */
function commandLine() {
  try {
    const { values, positionals } = parseArgs({
      options: {
        duration: { type: "string" },
        count: { type: "string" },
        ppid: { type: "string" },
        transcript: { type: "string" },
      },
      allowPositionals: true,
    });
    const number = (text: string | undefined) => text === undefined ? undefined : Number(text);
    const duration = number(values.duration);
    const count = number(values.count);
    const ppid = number(values.ppid);
    if (
      positionals.length === 1 && (duration === undefined || duration > 0)
      && (count === undefined || Number.isInteger(count) && count > 0)
      && (ppid === undefined || Number.isInteger(ppid) && ppid > 0)
    ) {
      return { object: positionals[0]!, duration, count, ppid, transcript: values.transcript };
    }
  } catch { /* an unknown option, or one without its value */ }
  console.error(USAGE);
  process.exit(2);
}
const { object: path, duration, count, ppid, transcript } = commandLine();

/** The record the program sends (struct event), as clang lays it out. */
const event = struct({ pid: u32, ppid: u32, comm: chars(16), filename: chars(128) });

await using system = await openSystem(transcript === undefined ? {} : { transcript });
const object = system.openObject(path, { name: "execsnoop" });
object.load(); // with the program's CO-RE relocations applied against this kernel's BTF

const events = object.map("events");
using ring = new RingBuffer(events); // through the kernel the map was made on: the system's
const column = (text: string | number, width: number) => String(text).padEnd(width);
console.log(`${column("PID", 8)}${column("PPID", 8)}${column("COMM", 17)}FILENAME`);

{
  using link = object.loadedProgram("on_exec").attachRawTracepoint("sched_process_exec");
  console.log(`attached on_exec to sched_process_exec (link id ${link.id}); Ctrl-C to stop`);
  // Ctrl-C and the duration close the ring: the loop below ends at its next wait.
  const stop = () => ring.close();
  process.on("SIGINT", stop);
  const timeout = duration === undefined ? undefined : setTimeout(stop, duration * 1000);
  let printed = 0;
  for await (const exec of ring.typed(event)) {
    if (ppid !== undefined && exec.ppid !== ppid) continue;
    console.log(
      `${column(exec.pid, 8)}${column(exec.ppid, 8)}${column(exec.comm, 17)}${exec.filename}`,
    );
    if (++printed === count) break;
  }
  clearTimeout(timeout);
  process.off("SIGINT", stop);
}
console.log("detached");
