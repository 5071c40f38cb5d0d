// The object loader hands the kernel `.BTF.ext`'s func_info and line_info with each program (issue
// 14, part 1): the records of the program and of each `.text` subprogram appended to it, moved to
// where the subprogram was placed, as libbpf's reloc_prog_func_and_line_info does; checked in
// bpf_prog_info and against what bpftool shows of the same object loaded by libbpf.

import assert from "node:assert/strict";
import type { Btf } from "../btf/btf.ts";
import { BpfObject, Program } from "../mod.ts";
import { tallyingKernel } from "./helpers/live.ts";
import {
  bpftool,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const loaderObject = objectFixture(import.meta.url, "loader.bpf.c");
const XDP_PASS = 2;

transcriptTest(
  "each program carries the object's BTF, and the func and line info of its subprograms too",
  (sys) => {
    const object = sys.loadObject(loaderObject(), { name: "loader" });
    const spec = (name: string) =>
      [...object.spec.programs, ...object.spec.subprograms].find((p) => p.name === name)!;
    const counted = (
      names: string[],
    ) => [names.length, names.reduce((sum, name) => sum + spec(name).lineInfo.length, 0)];
    // count_packets calls bump(), appended after it: two functions, the lines of both.
    const counter = object.programs.get("count_packets")!.info();
    assert.equal(counter.btfId, object.btf!.id);
    assert.deepEqual(
      [counter.funcInfoCount, counter.lineInfoCount],
      counted(["count_packets", "bump"]),
    );
    assert.ok(spec("bump").lineInfo.length > 1);
    const filter = object.programs.get("kernel_version")!.info();
    assert.equal(filter.btfId, object.btf!.id);
    assert.deepEqual([filter.funcInfoCount, filter.lineInfoCount], counted(["kernel_version"]));
    assert.equal(
      object.programs.get("count_packets")!.testRun({ data: new Uint8Array(64) }).retval,
      XDP_PASS,
    );
  },
);

transcriptTest("an object whose BTF the kernel refuses loads its programs without it", (sys) => {
  const object = sys.openObject(loaderObject(), { name: "loader" });
  // A flag no kernel knows in the header: BPF_BTF_LOAD fails ("Unsupported flags").
  object.spec.btf!.bytes[3] = 0x80;
  object.load();
  assert.match(object.btfRefused ?? "", /BPF_BTF_LOAD failed.*Unsupported flags/s);
  assert.equal(object.btf, undefined);
  const info = object.programs.get("count_packets")!.info();
  assert.deepEqual([info.btfId, info.funcInfoCount, info.lineInfoCount], [0, 0, 0]);
  assert.equal(
    object.programs.get("count_packets")!.testRun({ data: new Uint8Array(64) }).retval,
    XDP_PASS,
  );
});

kernelToolTest("each instruction has the source line libbpf gives it (bpftool's linum)", () => {
  withLibbpfLoaded("loader.bpf.c", (path, bpffs) => {
    using object = BpfObject.open(path).load();
    // bpftool prints each instruction's function and line from the program's func and line info;
    // the instructions themselves differ by the maps' addresses only.
    const lines = (...program: string[]) =>
      (JSON.parse(bpftool("-j", "prog", "dump", "xlated", ...program, "linum")) as {
        disasm?: string;
      }[]).map(({ disasm: _, ...line }) => line);
    for (const [name, program] of object.programs) {
      const ours = lines("id", String(program.id));
      assert.deepEqual(ours, lines("pinned", `${bpffs}/progs/${name}`), name);
      assert.ok(ours.filter((line) => "proto" in line).length >= 1, name);
    }
    const counter = lines("id", String(object.programs.get("count_packets")!.id));
    assert.deepEqual(
      counter.filter((line) => "proto" in line).map((line) => line.proto),
      ["int count_packets(struct xdp_md * ctx)", "int bump(__u32 key)"],
    );
  });
});

transcriptTest(
  "func and line info without BTF, out of order or past the end: refused before any call",
  (
    sys,
  ) => {
    const { kernel, calls } = tallyingKernel(sys.kernel.backend);
    const btf = { fd: 99 } as unknown as Btf; // never reaches the kernel
    // r0 = 2; exit; r0 = 1; exit (two instructions a record may point at after the first)
    const instructions = new Uint8Array(32);
    instructions.set([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95], 0);
    instructions.set([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95], 16);
    const load = (extra: object) =>
      Program.load({ type: "xdp", instructions, license: "GPL", ...extra }, kernel);
    const line = { fileNameOffset: 1, lineOffset: 1, line: 1, column: 0 };
    assert.throws(() => load({ funcInfo: [{ insn: 0, typeId: 1 }] }), /funcInfo: needs spec\.btf/);
    assert.throws(() => load({ lineInfo: [{ insn: 0, ...line }] }), /lineInfo: needs spec\.btf/);
    assert.throws(() => load({ btf, funcInfo: [{ insn: 2, typeId: 1 }] }), RangeError); // not 0
    assert.throws(
      () => load({ btf, funcInfo: [{ insn: 0, typeId: 1 }, { insn: 0, typeId: 2 }] }),
      /funcInfo\[1\]\.insn must be between 1 and 3, got 0/,
    );
    assert.throws(
      () => load({ btf, lineInfo: [{ insn: 0, ...line }, { insn: 4, ...line }] }),
      /lineInfo\[1\]\.insn must be between 1 and 3, got 4/,
    );
    assert.throws(() => load({ btf, lineInfo: [{ insn: 0, ...line, column: 1024 }] }), RangeError);
    assert.throws(() => load({ btf, funcInfo: [{ insn: 0, typeId: 0 }] }), /typeId/);
    assert.throws(() => load({ btf, funcInfo: "records" }), /expected an array of records/);
    assert.equal(calls(), 0);
  },
);
