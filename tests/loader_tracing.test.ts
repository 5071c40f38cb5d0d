// Programs whose section names a target in the kernel's BTF (issue 14, part 3): tp_btf/sys_enter
// and iter/bpf_map in tests/bpf/loader_tracing.bpf.c load with the BTF id of their target
// (attach_btf_id), as libbpf loads them; the tp_btf program counts the test's own kill() calls
// while attached. (fentry, fexit and lsm take the same path, but this kernel refuses every
// trampoline program at load: tests/attach_tracing.test.ts.)

import assert from "node:assert/strict";
import { attachBtfIdOf, BpfObject, Program } from "../mod.ts";
import {
  assertLikeLibbpf,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const tracingObject = objectFixture(import.meta.url, "loader_tracing.bpf.c");
/** The pid count_kills watches kill() calls aimed at: above PID_MAX_LIMIT, no process has it. */
const NO_PID = 0x3ffffffe;

/** kill(NO_PID, 0): ESRCH, after the sys_enter tracepoint saw it. */
function killNoOne(): void {
  assert.throws(() => process.kill(NO_PID, 0), { code: "ESRCH" });
}

transcriptTest("tp_btf and iter programs load with their target's BTF id; tp_btf counts", (
  sys,
) => {
  const object = sys.loadObject(tracingObject(), { name: "tracing" });
  const attachBtfId = (name: string) => object.programs.get(name)!.info().attachBtfId;
  assert.equal(attachBtfId("count_kills"), attachBtfIdOf("trace_raw_tp", "sys_enter", sys.kernel));
  assert.equal(attachBtfId("list_maps"), attachBtfIdOf("trace_iter", "bpf_map", sys.kernel));
  assert.notEqual(attachBtfId("count_kills"), attachBtfId("list_maps"));
  // Attached where its section says (tp_btf/sys_enter): the loader told the program its section.
  const link = object.programs.get("count_kills")!.attach();
  for (let i = 0; i < 3; i++) killNoOne();
  link.close();
  killNoOne(); // not counted: detached
  const kills = object.maps.get(".bss")!.lookup(new Uint8Array(4))!;
  assert.equal(new DataView(kills.buffer, kills.byteOffset).getBigUint64(0, true), 3n);
});

kernelToolTest("the programs, their targets and maps are the ones libbpf loads", () => {
  withLibbpfLoaded("loader_tracing.bpf.c", (path, bpffs) => {
    using object = BpfObject.open(path).load();
    assertLikeLibbpf(object, bpffs);
    for (const [name, program] of object.programs) {
      using theirs = Program.openPinned(`${bpffs}/progs/${name}`);
      const ours = program.info();
      assert.ok(ours.attachBtfId > 0, name);
      assert.equal(ours.attachBtfId, theirs.info().attachBtfId, name);
    }
  });
});
