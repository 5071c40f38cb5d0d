// test_run: an XDP program tested where it cannot be attached (CI machines, containers): the
// kernel runs it on packets this script crafts (BPF_PROG_TEST_RUN), and the script checks what
// came back: the verdict, the packet as the program left it, the counts in its map. The program
// (examples/bpf/test_run.bpf.c) answers pings: an ICMP echo request becomes the reply, in place.
//
//   clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu \
//     -c examples/bpf/test_run.bpf.c -o test_run.bpf.o
//   deno run --allow-ffi --allow-read examples/test_run.ts test_run.bpf.o
//   bun examples/test_run.ts test_run.bpf.o
//
// With `--transcript FILE`, the first run (where BPF runs: root or CAP_BPF) records every bpf()
// call into FILE, and later runs replay it with no kernel and no FFI, on any machine, with the same
// checks: commit FILE (and the object, whose instructions it holds) beside the tests.
//
//   deno run --allow-ffi --allow-read --allow-write examples/test_run.ts test_run.bpf.o \
//     --transcript test_run.json                      # records: test_run.json is missing
//   deno run --allow-read examples/test_run.ts test_run.bpf.o --transcript test_run.json
//
// BPFMAP_TRANSCRIPT=record|replay|verify says which, whatever exists (verify: live, each call
// compared with the transcript; Deno reads it with --allow-env, and verifies with --allow-write:
// the live run's transcript is written in a temporary folder).

import assert from "node:assert/strict";
import process from "node:process";
import { parseArgs } from "node:util";
import { openSystem, u32, u64 } from "../mod.ts";

/** What the command line asks for; else the usage, and exit status 2. */
function commandLine() {
  try {
    const { values, positionals } = parseArgs({
      options: { transcript: { type: "string" } },
      allowPositionals: true,
    });
    if (positionals.length === 1) return { object: positionals[0]!, transcript: values.transcript };
  } catch { /* an unknown option, or one without its value */ }
  console.error("usage: test_run.ts OBJECT [--transcript FILE]");
  process.exit(2);
}
const { object: path, transcript } = commandLine();

const VERDICTS = ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"];
const [XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX] = [0, 1, 2, 3];

/** The Internet checksum (RFC 1071) of `bytes`: 0 over data that carries its own. */
function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Writes `value` big-endian at `offset`. */
const be16 = (bytes: Uint8Array, offset: number, value: number) =>
  bytes.set([value >> 8, value & 0xff], offset);

const CLIENT_MAC = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_IP = [192, 0, 2, 1];
const SERVER_IP = [192, 0, 2, 2];

/** An Ethernet frame from the client to the server. */
function frame(etherType: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(14 + payload.length);
  bytes.set([...SERVER_MAC, ...CLIENT_MAC]);
  be16(bytes, 12, etherType);
  bytes.set(payload, 14);
  return bytes;
}

/** An IPv4 packet (20-byte header, checksummed) from the client to the server. */
function ipv4(protocol: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(20 + payload.length);
  bytes.set([0x45, 0]);
  be16(bytes, 2, bytes.length);
  bytes.set([64, protocol], 8); // TTL, protocol
  bytes.set([...CLIENT_IP, ...SERVER_IP], 12);
  be16(bytes, 10, checksum(bytes.subarray(0, 20)));
  bytes.set(payload, 20);
  return frame(0x0800, bytes);
}

/** An ICMP echo request (type 8), checksummed. */
function echoRequest(id: number, sequence: number, text: string): Uint8Array {
  const data = new TextEncoder().encode(text);
  const bytes = new Uint8Array(8 + data.length);
  bytes[0] = 8;
  be16(bytes, 4, id);
  be16(bytes, 6, sequence);
  bytes.set(data, 8);
  be16(bytes, 2, checksum(bytes));
  return ipv4(1, bytes);
}

/** A UDP datagram to `port` (checksum 0: none, as IPv4 allows). */
function udp(port: number, text: string): Uint8Array {
  const data = new TextEncoder().encode(text);
  const bytes = new Uint8Array(8 + data.length);
  be16(bytes, 0, 40000);
  be16(bytes, 2, port);
  be16(bytes, 4, bytes.length);
  bytes.set(data, 8);
  return ipv4(17, bytes);
}

const ping = echoRequest(0x1234, 1, "bpfmap ping");
/** The reply the program must make of `ping`: addresses swapped, type 0, checksum fixed. */
const pong = ping.slice();
pong.set([...CLIENT_MAC, ...SERVER_MAC]);
pong.set([...SERVER_IP, ...CLIENT_IP], 14 + 12);
pong[34] = 0;
be16(pong, 36, 0);
be16(pong, 36, checksum(pong.subarray(34)));

const cases: { name: string; packet: Uint8Array; verdict: number; out?: Uint8Array }[] = [
  { name: "ICMP echo request", packet: ping, verdict: XDP_TX, out: pong },
  { name: "UDP to port 9", packet: udp(9, "discard me"), verdict: XDP_DROP },
  { name: "UDP to port 53", packet: udp(53, "a query"), verdict: XDP_PASS },
  {
    name: "IPv4 cut short",
    packet: ipv4(1, new Uint8Array(8)).subarray(0, 14 + 10),
    verdict: XDP_ABORTED,
  },
  { name: "ARP", packet: frame(0x0806, new Uint8Array(28)), verdict: XDP_PASS },
];

await using system = await openSystem({ transcript });
console.log(`mode: ${system.mode}${transcript === undefined ? "" : ` (${transcript})`}`);
const object = system.loadObject(path);
const pongProgram = object.loadedProgram("pong");

console.log(`${"PACKET".padEnd(18)} ${"BYTES".padStart(5)}  ${"VERDICT".padEnd(12)} CHANGED`);
for (const { name, packet, verdict, out } of cases) {
  const run = pongProgram.testRun({ data: packet });
  const changed = run.data.filter((byte, i) => byte !== packet[i]).length;
  const shown = VERDICTS[run.retval] ?? String(run.retval);
  console.log(
    `${name.padEnd(18)} ${String(packet.length).padStart(5)}  ${shown.padEnd(12)} ${changed} bytes`,
  );
  assert.equal(run.retval, verdict, `${name}: verdict`);
  assert.deepEqual(run.data, out ?? packet, `${name}: the packet out`);
}
assert.equal(checksum(pong.subarray(34)), 0, "the reply's ICMP checksum");

// The program counted each verdict in its map, as it would on a device.
const counted = new Map(object.map("verdicts").typed({ key: u32, value: u64 }).entries());
console.log(
  `verdicts counted: ${VERDICTS.map((v, i) => `${v} ${counted.get(i)}`).join(", ")}`,
);
assert.deepEqual(
  [...counted.values()],
  VERDICTS.map((_, i) => BigInt(cases.filter((c) => c.verdict === i).length)),
);
console.log(`all ${cases.length} packets gave the verdict and the bytes expected`);
