// Programs in the kernel (issue 14, parts 3-5, first slice): hand-assembled instructions loaded
// with BPF_PROG_LOAD, run with BPF_PROG_TEST_RUN, refused by the verifier with its log, read back
// through bpf_prog_info, opened by id and by pin; every test but the system-wide id list replays.

import assert from "node:assert/strict";
import { BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_INFO, BPF_PROG_TEST_RUN } from "../ffi/commands.ts";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import {
  BpfError,
  type BpfSystem,
  listProgramIds,
  Program,
  type ProgramSpec,
  VerifierError,
} from "../mod.ts";
import { RecordingBackend } from "../replay/recorder.ts";
import { decodeBytes, type RegionRecord, type ScalarInOut } from "../replay/transcript.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  add64Imm,
  BPF_FUNC_map_lookup_elem,
  BPF_W,
  call,
  exit,
  jeqImm,
  ldMapFd,
  ldxMem,
  mov64Imm,
  mov64Reg,
  program,
  stMem,
  XDP_PASS,
} from "./helpers/insns.ts";
import { liveTest, tallyingKernel, thrown } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const bpffs = bpffsForTests("bpfmap-programs-");
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** r0 = XDP_PASS; exit. */
const XDP_PASS_PROGRAM = program(mov64Imm(0, XDP_PASS), exit());
/** r0 = skb->len (offset 0 of struct __sk_buff); exit: a socket filter that keeps all it sees. */
const KEEP_ALL = program(ldxMem(BPF_W, 0, 1, 0), exit());
/** r0 = r2; exit: r2 is never written, so the verifier refuses the program. */
const UNINITIALIZED = program(mov64Reg(0, 2), exit());

/** Looks up key 0 of the map behind `fd` and returns its u32 value, or 0 if it is missing. */
function readsMap(fd: number): Uint8Array {
  return program(
    stMem(BPF_W, 10, -4, 0), // key = 0, on the stack
    mov64Reg(2, 10),
    add64Imm(2, -4), // r2 = &key
    ldMapFd(1, fd), // r1 = the map
    call(BPF_FUNC_map_lookup_elem),
    jeqImm(0, 0, 2), // no element: return 0
    ldxMem(BPF_W, 0, 0, 0), // r0 = *value
    exit(),
    mov64Imm(0, 0),
    exit(),
  );
}

/** Loads the XDP_PASS program on `sys`, with `spec`'s fields over the defaults. */
function loadPass(sys: BpfSystem, spec: Partial<ProgramSpec> = {}): Program {
  return sys.loadProgram({ type: "xdp", instructions: XDP_PASS_PROGRAM, license: "GPL", ...spec });
}

/** A 64-byte packet whose bytes are their own offsets, so any change shows. */
const packet = () => Uint8Array.from({ length: 64 }, (_, i) => i);

transcriptTest("an XDP program returns XDP_PASS and hands the packet back as it was", (sys) => {
  const xdp = loadPass(sys, { name: "pass" });
  const run = xdp.testRun({ data: packet(), repeat: 3 });
  assert.equal(run.retval, XDP_PASS);
  assert.deepEqual(run.data, packet());
  assert.equal(run.ctx, undefined);
  const info = xdp.info();
  assert.deepEqual(
    [info.typeName, info.name, info.id, info.xlatedLength, info.gplCompatible, info.mapIds],
    ["xdp", "pass", xdp.id, 16, true, []],
  );
  assert.match(info.tag, /^[0-9a-f]{16}$/);
  assert.equal(String(xdp), `xdp program "pass" (id ${xdp.id})`);
});

transcriptTest("a socket filter returns the packet's length past its Ethernet header", (sys) => {
  const filter = sys.loadProgram({ type: "socket_filter", instructions: KEEP_ALL, license: "MIT" });
  // The kernel pulls the 14-byte Ethernet header (eth_type_trans) before the filter sees skb->len.
  assert.equal(filter.testRun({ data: packet() }).retval, 64 - 14);
  assert.equal(filter.testRun({ data: packet().subarray(0, 20) }).retval, 20 - 14);
  // A license that is not GPL-compatible loads all the same: this program calls no GPL helper.
  assert.equal(filter.info().gplCompatible, false);
});

transcriptTest(
  "a program reads the value the test put in its map, through the map fd in its ld_imm64",
  (sys) => {
    const map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    const reader = sys.loadProgram({
      type: "socket_filter",
      instructions: readsMap(map.fd),
      license: "GPL",
      name: "reader",
    });
    assert.equal(reader.testRun({ data: packet() }).retval, 0); // the array's zeroed element
    map.update(new Uint8Array(4), new Uint8Array(new Uint32Array([0x1234_5678]).buffer));
    assert.equal(reader.testRun({ data: packet() }).retval, 0x1234_5678);
    // Its maps are one call away.
    assert.deepEqual(reader.info().mapIds, [map.id]);
    const maps = reader.maps();
    assert.deepEqual(maps.map((m) => m.id), [map.id]);
    for (const m of maps) m.close();
  },
);

transcriptTest("the verifier's refusal is a VerifierError carrying its log", (sys) => {
  const { kernel, tally } = tallyingKernel(sys.kernel.backend);
  const error = thrown(() =>
    Program.load({ type: "xdp", instructions: UNINITIALIZED, license: "GPL", name: "bad" }, kernel)
  );
  assert.ok(error instanceof VerifierError, String(error));
  assert.ok(error instanceof BpfError);
  assert.deepEqual([error.errno, error.code, error.op], [13, "EACCES", "BPF_PROG_LOAD"]);
  assert.match(error.log, /R2 !read_ok/);
  assert.match(error.message, /xdp program "bad" of 2 instruction\(s\); the verifier's log:\n/);
  assert.match(error.message, /R2 !read_ok/);
  // First without a log, as libbpf does, then again with one for the reasons.
  assert.equal(tally.get("BPF_PROG_LOAD 13"), 2);
});

transcriptTest("with logLevel 1 a loaded program keeps the verifier's log", (sys) => {
  const xdp = loadPass(sys, { logLevel: 1 });
  assert.match(xdp.log, /processed 2 insns/);
  const quiet = loadPass(sys);
  assert.equal(quiet.log, "");
});

transcriptTest(
  "a packet out larger than dataOutSize is ENOSPC, saying the size it needs",
  (sys) => {
    const xdp = loadPass(sys);
    const error = thrown(() => xdp.testRun({ data: packet(), dataOutSize: 16 }));
    assert.ok(error instanceof BpfError, String(error));
    assert.deepEqual([error.code, error.op], ["ENOSPC", BPF_PROG_TEST_RUN.name]);
    assert.match(error.message, /the packet out needs 64 bytes/);
  },
);

transcriptTest("fromId and a pin in bpffs open the same program", (sys) => {
  const xdp = loadPass(sys, { name: "pinned" });
  const byId = sys.programFromId(xdp.id);
  assert.deepEqual([byId.id, byId.name, byId.type], [xdp.id, "pinned", 6]);
  xdp.pin(`${bpffs()}/prog`);
  const opened = sys.openPinnedProgram(`${bpffs()}/prog`);
  assert.equal(opened.id, xdp.id);
  assert.equal(opened.testRun({ data: packet() }).retval, XDP_PASS);
  // Each kind refuses the other's pin, as bpftool does.
  const map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
  map.pin(`${bpffs()}/map`);
  assert.throws(() => sys.openPinnedProgram(`${bpffs()}/map`), {
    name: "TypeError",
    message: `${bpffs()}/map: incorrect object type: map, not a program`,
  });
  assert.throws(() => sys.openPinned(`${bpffs()}/prog`), {
    name: "TypeError",
    message: /incorrect object type: prog \(prog_type 6\), not a map/,
  });
  xdp.close();
  xdp.close(); // harmless
  assert.throws(() => xdp.testRun(), { name: "TypeError", message: /^testRun: .* is closed$/ });
});

transcriptTest("bad input is refused before any syscall", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  const load = (spec: Record<string, unknown>) => () =>
    Program.load(
      { type: "xdp", instructions: XDP_PASS_PROGRAM, license: "GPL", ...spec } as never,
      kernel,
    );
  assert.throws(load({ instructions: new Uint8Array(12) }), {
    name: "RangeError",
    message: /whole 8-byte instructions, got 12 bytes/,
  });
  assert.throws(load({ instructions: new Uint8Array(0) }), RangeError);
  assert.throws(load({ instructions: [0x95] }), /expected a Uint8Array/);
  assert.throws(load({ license: "" }), /spec.license/);
  assert.throws(load({ license: "GPL\0" }), /spec.license/);
  assert.throws(load({ name: "sixteen_chars_xx" }), /spec.name/);
  assert.throws(load({ name: "a-b" }), /spec.name/);
  assert.throws(load({ type: "xpd" }), /unknown program type "xpd"/);
  assert.throws(load({ expectedAttachType: "fentry" }), /unknown attach type "fentry"/);
  assert.throws(load({ logLevel: 8 }), /spec.logLevel/);
  assert.throws(() => Program.fromId(0, kernel), /id/);
  assert.throws(() => Program.openPinned("", kernel), /path must be a non-empty string/);
  assert.equal(calls(), 0);
  const xdp = Program.load({ type: "xdp", instructions: XDP_PASS_PROGRAM, license: "GPL" }, kernel);
  const before = calls();
  assert.throws(() => xdp.testRun({ data: [1, 2] as never }), /opts.data: expected a Uint8Array/);
  assert.throws(() => xdp.testRun({ repeat: -1 }), /opts.repeat/);
  assert.throws(() => xdp.testRun({ dataOutSize: 8 }), /no opts.data to size/);
  assert.equal(calls(), before);
  xdp.close();
});

liveTest("listProgramIds lists a loaded program, and a closed one goes", () => {
  const xdp = Program.load({ type: "xdp", instructions: XDP_PASS_PROGRAM, license: "GPL" });
  assert.ok(listProgramIds().includes(xdp.id));
  const id = xdp.id;
  xdp.close();
  // The last fd's close frees the id before close() returns (its fput runs on the way out).
  assert.equal(listProgramIds().includes(id), false);
});

liveTest("a transcript records 0 where runs differ: test-run duration and load_time", () => {
  const recorder = new RecordingBackend(liveKernel().backend);
  const kernel = new Kernel(recorder, { closesLeakedFds: false });
  using xdp = Program.load({ type: "xdp", instructions: XDP_PASS_PROGRAM, license: "GPL" }, kernel);
  const run = xdp.testRun({ data: packet(), repeat: 100_000 });
  assert.ok(run.duration > 0, "the caller sees the kernel's duration");
  assert.ok(xdp.info().loadTime > 0n, "and its load_time");
  const calls = recorder.entries.filter((e) => "call" in e);
  const testRun = calls.find((e) => e.call === BPF_PROG_TEST_RUN.name)!;
  assert.deepEqual(testRun.attr.duration as ScalarInOut, { in: 0, out: 0 });
  const infos = calls.filter((e) => e.call === BPF_OBJ_GET_INFO_BY_FD.name);
  const info = decodeBytes((infos.at(-1)!.attr.info as RegionRecord).out!);
  const { load_time } = BPF_PROG_INFO.fields;
  assert.deepEqual(info.subarray(load_time.offset, load_time.offset + 8), new Uint8Array(8));
});
