// The object loader (issue 14, parts 1 and 3): tests/bpf/loader.bpf.c, built by clang, opened and
// loaded by BpfObject (BTF, maps with their global data, the program with its .text subprogram
// appended and its map and data references relocated), test-run, and read back through its maps;
// what it creates is compared with what libbpf (bpftool prog loadall) creates from the same file.
// Replays read the object clang built as a fixture beside the transcripts (written when recording).

import assert from "node:assert/strict";
import { test } from "node:test";
import { BpfError, BpfObject, kernelVersionCode, type MapInfo, VerifierError } from "../mod.ts";
import { u32, u64 } from "./helpers/bytes.ts";
import { thrown } from "./helpers/live.ts";
import {
  assertLikeLibbpf,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const loaderObject = objectFixture(import.meta.url, "loader.bpf.c");
const XDP_PASS = 2;
const XDP_DROP = 1;

/** A 64-byte packet starting with `first`. */
const packet = (first: number) => {
  const bytes = new Uint8Array(64);
  bytes[0] = first;
  return bytes;
};

transcriptTest(
  "the XDP program counts packets by their first byte, by the .data step, through its subprogram",
  (sys) => {
    const object = sys.loadObject(loaderObject(), { name: "loader" });
    assert.equal(object.btfRefused, undefined);
    assert.deepEqual([...object.maps.keys()], ["counts", ".data", ".rodata", ".kconfig"]);
    assert.deepEqual([...object.programs.keys()], ["count_packets", "kernel_version"]);
    const program = object.programs.get("count_packets")!;
    // The verdict is the .rodata constant as compiled: XDP_PASS.
    assert.equal(program.testRun({ data: packet(9) }).retval, XDP_PASS);
    assert.equal(program.testRun({ data: packet(9) }).retval, XDP_PASS);
    assert.equal(program.testRun({ data: packet(4) }).retval, XDP_PASS);
    const counts = object.maps.get("counts")!;
    // bump() adds `step` (3, from .data): the subprogram ran, with the data map's value.
    assert.deepEqual(counts.lookup(u32(9)), u64(6n));
    assert.deepEqual(counts.lookup(u32(4)), u64(3n));
    assert.equal(counts.lookup(u32(5)), undefined);
    assert.deepEqual(object.maps.get(".data")!.lookup(u32(0)), u64(3n));
    assert.deepEqual(object.maps.get(".rodata")!.lookup(u32(0)), u32(XDP_PASS));
    // The program holds the three maps its relocations named, and nothing else.
    const ids = ["counts", ".data", ".rodata"].map((m) => object.maps.get(m)!.id)
      .sort((a, b) => a - b);
    assert.deepEqual(program.info().mapIds.sort((a, b) => a - b), ids);
    // Maps carry the object's BTF, as libbpf creates them.
    const info: MapInfo = counts.info();
    assert.equal(info.btfId, object.btf!.id);
    assert.deepEqual([info.btfKeyTypeId > 0, info.btfValueTypeId > 0], [true, true]);
  },
);

transcriptTest(".rodata is frozen once written, and .data stays writable", (sys) => {
  const object = sys.loadObject(loaderObject(), { name: "loader" });
  const rodata = object.maps.get(".rodata")!;
  assert.equal(rodata.info().name, "loader.rodata");
  const error = thrown(() => rodata.update(u32(0), u32(XDP_DROP)));
  assert.ok(error instanceof BpfError && error.code === "EPERM", String(error));
  // A .data write is what the program reads next.
  object.maps.get(".data")!.update(u32(0), u64(10n));
  object.programs.get("count_packets")!.testRun({ data: packet(1) });
  assert.deepEqual(object.maps.get("counts")!.lookup(u32(1)), u64(10n));
});

transcriptTest("constants set before load() are the ones the program uses", (sys) => {
  const object = sys.openObject(loaderObject(), { name: "loader" });
  const data = (section: string) => object.spec.maps.find((m) => m.name === section)!.data!;
  data(".rodata").set(u32(XDP_DROP));
  data(".data").set(u64(5n));
  object.load();
  const program = object.programs.get("count_packets")!;
  assert.equal(program.testRun({ data: packet(7) }).retval, XDP_DROP);
  assert.deepEqual(object.maps.get("counts")!.lookup(u32(7)), u64(5n));
});

transcriptTest("autoload off creates the maps and loads no program; maxEntries is overridden", (
  sys,
) => {
  const object = sys.openObject(loaderObject(), {
    name: "loader",
    maps: { counts: { maxEntries: 64 } },
  });
  object.program("count_packets").autoload = false;
  object.program("kernel_version").autoload = false;
  object.load();
  assert.equal(object.programs.size, 0);
  assert.equal(object.maps.get("counts")!.info().maxEntries, 64);
});

transcriptTest(".kconfig holds LINUX_KERNEL_VERSION of the running kernel's release", (sys) => {
  const object = sys.loadObject(loaderObject(), { name: "loader" });
  const release = sys.kernel.backend.readTextFile("/proc/sys/kernel/osrelease");
  const version = kernelVersionCode(release);
  assert.ok(version > 5 << 16, release);
  const filter = object.programs.get("kernel_version")!;
  assert.equal(filter.testRun({ data: packet(0) }).retval, version);
  assert.deepEqual(object.maps.get(".kconfig")!.lookup(u32(0)), u32(version));
});

transcriptTest("a program the verifier refuses throws its log, and the object's maps close", (
  sys,
) => {
  const object = sys.openObject(loaderObject(), { name: "loader" });
  // The second program's exit made r0 = r2: it runs off its end. (Refused before the verifier
  // walks it, so the log prints no kernel address of a map, which differs from run to run.)
  const spec = object.spec.programs.find((p) => p.name === "kernel_version")!;
  spec.instructions.set([0xbf, 0x20, 0, 0, 0, 0, 0, 0], spec.instructions.byteLength - 8);
  const error = thrown(() => object.load());
  assert.ok(error instanceof VerifierError, String(error));
  assert.match(error.log, /last insn is not an exit or jmp/);
  // The first program loaded before the second failed: it is closed, as the maps are.
  assert.equal(object.programs.get("count_packets")!.closed, true);
  assert.equal(object.maps.get("counts")!.closed, true);
});

test("bad input is refused before any call", () => {
  assert.throws(() => BpfObject.open(42 as unknown as Uint8Array), TypeError);
  assert.throws(
    () => BpfObject.open(loaderObject(), { maps: { nothing: { maxEntries: 1 } } }),
    /no map 'nothing'/,
  );
  assert.throws(() => BpfObject.open(loaderObject()).program("nothing"), /count_packets/);
  assert.equal(kernelVersionCode("6.18.44-fc-v595\n"), (6 << 16) + (18 << 8) + 44);
  assert.equal(kernelVersionCode("5.4.300"), (5 << 16) + (4 << 8) + 255);
});

kernelToolTest("the maps and program are the ones libbpf creates and loads from the file", () => {
  withLibbpfLoaded("loader.bpf.c", (path, bpffs) => {
    using object = BpfObject.open(path).load();
    assertLikeLibbpf(object, bpffs);
  });
});
