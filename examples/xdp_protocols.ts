// xdp_protocols: the packets a network device receives, by IP version and protocol (TCP, UDP,
// ICMP, other), counted by an XDP program (examples/bpf/xdp_protocols.bpf.c) in a per-CPU array:
// each CPU counts in its own slot, and this script sums the slots every interval. Ctrl-C (or the
// end of --duration) prints the totals once more and detaches the program.
//
//   clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu \
//     -c examples/bpf/xdp_protocols.bpf.c -o xdp_protocols.bpf.o
//   deno run --allow-ffi --allow-read examples/xdp_protocols.ts xdp_protocols.bpf.o \
//     [--interface lo] [--interval 1] [--duration 10]
//   bun examples/xdp_protocols.ts xdp_protocols.bpf.o --interface eth0
//
// A device is named (ifindex() finds its index, as if_nametoindex does), or given by its index
// (`ip link`).
//
// As root, or with CAP_BPF and CAP_NET_ADMIN. Generic XDP (any device; loopback has no other)
// unless the driver has its own; one XDP program a device, so a busy one answers EBUSY.

import process from "node:process";
import { parseArgs } from "node:util";
import { BpfObject, ifindex, u32, u64 } from "../mod.ts";

/** Seconds, as milliseconds; anything but a positive number is NaN. */
const seconds = (text: string | undefined) => Number(text) > 0 ? Number(text) * 1000 : NaN;

/** What the command line asks for; else the usage, and exit status 2. */
function commandLine() {
  try {
    const { values, positionals } = parseArgs({
      options: {
        interface: { type: "string", default: "lo" },
        interval: { type: "string", default: "1" },
        duration: { type: "string" },
      },
      allowPositionals: true,
    });
    const { interface: device } = values;
    const interval = seconds(values.interval);
    const duration = values.duration === undefined ? undefined : seconds(values.duration);
    if (
      positionals.length === 1 && interval > 0 && (duration ?? 1) > 0 && /^[\w.-]+$/.test(device)
    ) {
      return { object: positionals[0]!, device, interval, duration };
    }
  } catch { /* an unknown option, or one without its value */ }
  console.error(
    "usage: xdp_protocols.ts OBJECT [--interface NAME|INDEX] [--interval SECONDS] [--duration SECONDS]",
  );
  process.exit(2);
}
const { object: path, device, interval, duration } = commandLine();

/** The device's index, given or looked up by its name; else the reason, and exit status 1. */
function deviceIndex(device: string): number {
  if (/^\d+$/.test(device)) return Number(device);
  try {
    return ifindex(device);
  } catch (error) {
    console.error(`cannot find network device '${device}': ${(error as Error).message}`);
    process.exit(1);
  }
}

// The program's array: index family * 4 + protocol, then one slot for what is not IP.
const PROTOCOLS = ["TCP", "UDP", "ICMP", "other"];
const FAMILIES = ["IPv4", "IPv6"];
const NOT_IP = FAMILIES.length * PROTOCOLS.length;

/** Prints each protocol's packets per family, each count summed over the CPUs. */
function report(): void {
  const totals = new Array<bigint>(NOT_IP + 1).fill(0n);
  for (const batch of packets.batches()) {
    for (let i = 0; i < batch.count; i++) totals[batch.key(i)] = batch.sumPerCpu(i);
  }
  const time = new Date().toISOString().slice(11, 19);
  console.log(`\n${time}  ${device}: ${totals.reduce((a, b) => a + b)} packets`);
  console.log(`${"PROTOCOL".padEnd(8)} ${FAMILIES.map((f) => f.padStart(10)).join(" ")}`);
  PROTOCOLS.forEach((protocol, p) => {
    const row = FAMILIES.map((_, f) => String(totals[f * PROTOCOLS.length + p]).padStart(10));
    console.log(`${protocol.padEnd(8)} ${row.join(" ")}`);
  });
  console.log(`${"not IP".padEnd(8)} ${String(totals[NOT_IP]).padStart(10)}`);
}

const index = deviceIndex(device); // a device that is not there is said before anything is loaded
using object = BpfObject.open(path).load();
const packets = object.map("packets").typedPerCpu({ key: u32, value: u64 });
{
  // Attached for this block: leaving it, by Ctrl-C, the duration or an error, detaches.
  using link = object.loadedProgram("count_protocols").attachXdp(index);
  // Until Ctrl-C or the end of the duration; Ctrl-C is taken before the user is told of it.
  const ticks = setInterval(report, interval);
  let stop = () => {};
  let timeout: ReturnType<typeof setTimeout> | undefined;
  const stopped = new Promise<void>((resolve) => {
    process.on("SIGINT", stop = resolve);
    if (duration !== undefined) timeout = setTimeout(stop, duration);
  });
  console.log(`attached count_protocols to ${device} (link id ${link.id}); Ctrl-C to stop`);
  await stopped;
  clearInterval(ticks);
  clearTimeout(timeout);
  process.off("SIGINT", stop);
  report();
}
console.log(`detached from ${device}`);
