// What the examples' author asked for: network devices by name (ifindex(), attachXdp and attachTcx
// taking a name), a loaded object's maps and programs by name with errors that say what exists
// (BpfObject.map, loadedProgram), and a per-CPU batch's sums without the CPU count and value size
// passed by hand (TypedBatch.sumPerCpu, valueArray typed by the codec). The veth (tests/helpers/
// veth.ts) is a device with a known index other than loopback's; its datagrams are counted by the
// programs attached by its name.

import assert from "node:assert/strict";
import test from "node:test";
import { forwardingBackend } from "../ffi/backend.ts";
import { BPF_OBJ_GET_INFO_BY_FD } from "../ffi/commands.ts";
import { Kernel } from "../ffi/kernel.ts";
import { BpfError, ifindex, Program, sumPerCpu, u32, u64 } from "../mod.ts";
import { counted, datagramCounter } from "./helpers/counting.ts";
import { exchangeDatagrams } from "./helpers/datagrams.ts";
import { tallyingKernel, thrown } from "./helpers/live.ts";
import { objectFixture } from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";
import { FROM_PEER, VETH, VETH_IFINDEX, vethForTests } from "./helpers/veth.ts";

vethForTests();
const transcriptTest = transcriptTests(import.meta.url);
const valuesObject = objectFixture(import.meta.url, "loader_values.bpf.c");
const NO_DEVICE = "bpfmapnone0";

transcriptTest("ifindex gives a device's index as if_nametoindex does, ENODEV for none", (sys) => {
  assert.equal(ifindex("lo", sys.kernel), 1);
  assert.equal(ifindex(VETH, sys.kernel), VETH_IFINDEX);
  const error = thrown(() => ifindex(NO_DEVICE, sys.kernel));
  assert.ok(error instanceof BpfError, String(error));
  assert.deepEqual([error.op, error.code, error.detail], [
    "if_nametoindex",
    "ENODEV",
    `no network device '${NO_DEVICE}'`,
  ]);
});

test("a name no device can have is refused before anything is read", () => {
  const reads: string[] = [];
  const backend = Object.assign(
    forwardingBackend(() => {
      throw new Error("this test reads through its own readFile only");
    }),
    {
      readFile(path: string) {
        reads.push(path);
        return new TextEncoder().encode("9\n");
      },
    },
  );
  const kernel = new Kernel(backend, { closesLeakedFds: false });
  // The kernel's dev_valid_name: 1 to 15 bytes, not . or .., no '/', ':' or whitespace.
  const bad = [
    "",
    ".",
    "..",
    "../lo",
    "eth0:1",
    "a b",
    "tab\t",
    "nul\0",
    "x".repeat(16),
    "é".repeat(8),
  ];
  for (const name of [...bad, 7, undefined]) {
    assert.throws(() => ifindex(name as string, kernel), TypeError, JSON.stringify(name));
  }
  assert.deepEqual(reads, []);
  // The longest name there can be, and a dot inside one, are read.
  assert.equal(ifindex("x".repeat(15), kernel), 9);
  assert.equal(ifindex("eth0.100", kernel), 9);
  assert.deepEqual(reads, [
    `/sys/class/net/${"x".repeat(15)}/ifindex`,
    "/sys/class/net/eth0.100/ifindex",
  ]);
});

transcriptTest("attachXdp and attachTcx take a device's name: they count the veth's datagrams", (
  sys,
) => {
  const xdp = datagramCounter(sys, "xdp", "count_xdp");
  const tcx = datagramCounter(sys, "sched_cls", "count_tcx");
  using xdpLink = xdp.program.attachXdp(VETH);
  using tcxLink = tcx.program.attachTcx(VETH, "ingress");
  assert.equal(xdpLink.info().ifindex, VETH_IFINDEX);
  assert.equal(tcxLink.info().ifindex, VETH_IFINDEX);
  exchangeDatagrams(3, FROM_PEER);
  assert.deepEqual([counted(xdp.map), counted(tcx.map)], [3n, 3n]);
  assert.throws(() => xdp.program.attachXdp(NO_DEVICE), { code: "ENODEV" });
  assert.throws(() => tcx.program.attachTcx(NO_DEVICE, "egress"), { code: "ENODEV" });
  // An index given as text is not taken for a name: a number says which is meant.
  const asText = {
    name: "TypeError",
    message: `ifindex must be an integer, got "${VETH_IFINDEX}"`,
  };
  assert.throws(() => xdp.program.attachXdp(String(VETH_IFINDEX)), asText);
  assert.throws(() => tcx.program.attachTcx(String(VETH_IFINDEX), "ingress"), asText);
});

transcriptTest("a loaded object's maps and programs by name, or an error saying what exists", (
  sys,
) => {
  const object = sys.openObject(valuesObject(), { name: "values" });
  assert.throws(() => object.map("outer"), {
    name: "TypeError",
    message: "map 'outer': the object is not loaded yet",
  });
  assert.throws(() => object.loadedProgram("read_outer"), {
    message: "program 'read_outer': the object is not loaded yet",
  });
  object.program("read_outer_hash").autoload = false;
  object.load();
  assert.equal(object.map("outer"), object.maps.get("outer"));
  const packet = new Uint8Array(64); // key 0: inner_a, whose slot 0 holds 0
  assert.equal(object.loadedProgram("read_outer").testRun({ data: packet }).retval, 0);
  assert.throws(() => object.map("outer_map"), {
    name: "TypeError",
    message: "the object has no map 'outer_map' (it has: inner_a, inner_b, outer, outer_hash)",
  });
  assert.throws(() => object.loadedProgram("read_inner"), {
    message: "the object has no program 'read_inner' (it has: read_outer, read_outer_hash)",
  });
  assert.throws(() => object.loadedProgram("read_outer_hash"), {
    message: "program 'read_outer_hash' was not loaded (its autoload is false)",
  });
});

transcriptTest("TypedBatch.sumPerCpu sums an element's values over every CPU", (sys) => {
  const cpus = sys.possibleCpus();
  const triangle = (cpus * (cpus + 1)) / 2; // 1 + 2 + ... + cpus
  // u64 values, and u32 ones, which sit in 8-byte slots with padding between them.
  const wide = sys.createMap({ type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 3 })
    .typedPerCpu({ key: u32, value: u64 });
  const narrow = sys.createMap({ type: "percpu_array", keySize: 4, valueSize: 4, maxEntries: 3 })
    .typedPerCpu({ key: u32, value: u32 });
  for (const i of [0, 1, 2]) {
    wide.set(i, Array.from({ length: cpus }, (_, cpu) => BigInt((i + 1) * (cpu + 1))));
    narrow.set(i, Array.from({ length: cpus }, (_, cpu) => (i + 1) * (cpu + 1)));
  }
  const [batch] = [...wide.batches()];
  // Typed by the codec: a bigint array and bigint sums, no casts.
  const values: BigUint64Array | BigInt64Array = batch!.valueArray();
  const sums: bigint[] = [0, 1, 2].map((i) => batch!.sumPerCpu(i));
  assert.deepEqual(sums, [1n, 2n, 3n].map((n) => n * BigInt(triangle)));
  assert.deepEqual(sums, [0, 1, 2].map((i) => sumPerCpu(values, i, cpus, 8)));
  const [narrowBatch] = [...narrow.batches()];
  const narrowSums: number[] = [0, 1, 2].map((i) => narrowBatch!.sumPerCpu(i));
  assert.deepEqual(narrowSums, [1, 2, 3].map((n) => n * triangle));
  for (const i of [3, -1, 0.5]) assert.throws(() => batch!.sumPerCpu(i), RangeError, String(i));
  // A plain map's values are not per CPU: nothing to sum.
  const plain = sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 })
    .typed({ key: u32, value: u64 });
  const [plainBatch] = [...plain.batches()];
  assert.throws(() => plainBatch!.sumPerCpu(0), {
    name: "TypeError",
    message: "sumPerCpu: the values (u64) are not per-CPU numbers: see typedPerCpu",
  });
});

transcriptTest(
  "a load reads the program's info once; info() and maps() read its map ids",
  (sys) => {
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    const { kernel, tally } = tallyingKernel(sys.kernel.backend);
    const infos = () => tally.get(BPF_OBJ_GET_INFO_BY_FD.name) ?? 0;
    // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD); r0 = 0; exit
    const instructions = new Uint8Array(32);
    instructions.set([0x18, 0x11, 0, 0]);
    new DataView(instructions.buffer).setInt32(4, map.fd, true);
    instructions.set([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95], 16);
    using program = Program.load({ type: "socket_filter", instructions, license: "GPL" }, kernel);
    // The program keeps its id, type and name: one call, not a second for the map ids it uses.
    assert.equal(infos(), 1);
    assert.deepEqual(program.info().mapIds, [map.id]);
    assert.equal(infos(), 3); // the info, then the map ids sized by it
    const [used] = program.maps();
    assert.equal(used?.id, map.id);
    used?.close();
  },
);
