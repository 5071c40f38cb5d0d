// .ksyms externs (issue 14, part 1): tests/bpf/loader_ksyms.bpf.c calls kfuncs and reads a typed
// ksym, loader_ksyms_typeless.bpf.c takes the address of a typeless one. The loader resolves them
// as libbpf does: a kfunc call is BPF_PSEUDO_KFUNC_CALL with the FUNC's BTF id in vmlinux, a typed
// ksym an ld_imm64 BPF_PSEUDO_BTF_ID with the VAR's (or FUNC's), a typeless one the address in
// /proc/kallsyms, and a __weak one the kernel lacks 0. Test runs show the calls made and the
// addresses read; bpftool names the kfuncs the instructions carry.
//
// The typeless ksym's tests run live only: they read /proc/kallsyms, 5 MB a transcript would keep.

import assert from "node:assert/strict";
import { liveKernel } from "../ffi/kernel.ts";
import { BpfObject, VerifierError } from "../mod.ts";
import { liveTest, thrown } from "./helpers/live.ts";
import {
  bpftool,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { compileText } from "./helpers/object_build.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const ksymsObject = objectFixture(import.meta.url, "loader_ksyms.bpf.c");
const typelessObject = objectFixture(import.meta.url, "loader_ksyms_typeless.bpf.c");
const packet = new Uint8Array(64);

transcriptTest("kfuncs are called by their BTF ids, typed ksyms are the kernel's, weak ones 0", (
  sys,
) => {
  const kfuncs = sys.openObject(ksymsObject(), { name: "ksyms" });
  kfuncs.program("read_runqueues").autoload = false;
  kfuncs.load();
  // The kernel took the object's BTF: .ksyms as libbpf finalizes it (kfuncs replaced by a VAR).
  assert.equal(kfuncs.btfRefused, undefined);
  // bpf_task_from_pid found this process and gave its reference back through bpf_task_release
  // (the verifier refuses a reference not given back), and found no pid above PID_MAX_LIMIT;
  // &bpf_task_release (typed) is an address, &bpf_no_such_kfunc (weak, missing) is 0.
  assert.equal(kfuncs.programs.get("call_kfuncs")!.testRun({ data: packet }).retval, 10);

  // runqueues, a per-CPU VAR: the kernel finds its address by the name of the BTF id we give it,
  // in its kallsyms, which has no variables where CONFIG_KALLSYMS_ALL is off (as on this
  // machine); where it has them, each CPU's runqueue names its CPU.
  const variables = sys.openObject(ksymsObject(), { name: "ksyms" });
  variables.program("call_kfuncs").autoload = false;
  const error = thrown(() => variables.load());
  if (error === undefined) {
    assert.equal(variables.programs.get("read_runqueues")!.testRun({ data: packet }).retval, 1);
  } else {
    assert.ok(error instanceof VerifierError, String(error));
    assert.match(error.log, /failed to find the address for kernel symbol 'runqueues'/);
  }
});

liveTest("a typeless ksym is its address in /proc/kallsyms, a weak one it lacks 0", () => {
  using object = BpfObject.open(typelessObject(), { name: "typeless" }).load();
  // Through the backend, as the loader reads it (Deno asks --allow-all of a file in /proc).
  const line = liveKernel().backend.readTextFile("/proc/kallsyms").split("\n")
    .find((l) => l.split(" ")[2] === "bpf_prog_put")!;
  const address = BigInt(`0x${line.split(" ")[0]}`);
  assert.ok(address > 0n);
  // The program returns the address's low 32 bits, or 1 if no_such_symbol were not 0.
  const retval = object.programs.get("address_of")!.testRun({ data: packet }).retval >>> 0;
  assert.equal(retval, Number(address & 0xffff_ffffn));
});

kernelToolTest("a ksym the kernel lacks, not weak, fails the load with its name", () => {
  const source = (declaration: string, use: string) => `
    ${declaration} __attribute__((section(".ksyms")));
    __attribute__((section("tc"), used)) int f(void *ctx) { ${use} }
    char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
  const cases = [
    [
      source("extern void bpf_no_such_kfunc(void)", "bpf_no_such_kfunc(); return 0;"),
      /extern 'bpf_no_such_kfunc': the running kernel has no kfunc of that name in vmlinux's BTF/,
    ],
    [
      source("extern const int no_such_variable", "return no_such_variable;"),
      /extern 'no_such_variable': the running kernel has no symbol of that name in vmlinux's BTF/,
    ],
    [
      source("extern const void no_such_symbol", "return (long)&no_such_symbol;"),
      /extern 'no_such_symbol': the running kernel has no symbol of that name in \/proc\/kallsyms/,
    ],
  ] as const;
  for (const [text, message] of cases) {
    const object = BpfObject.open(compileText(text));
    assert.throws(() => object.load(), message);
    // What was created before (the BTF) is closed again.
    assert.equal(object.programs.size, 0);
  }
});

kernelToolTest(
  "bpftool names the kfuncs the calls carry, and libbpf takes the same address",
  () => {
    using object = BpfObject.open(ksymsObject(), { name: "ksyms" });
    object.program("read_runqueues").autoload = false;
    object.load();
    const xlated = bpftool(
      "prog",
      "dump",
      "xlated",
      "id",
      String(object.programs.get("call_kfuncs")!.id),
    );
    assert.equal(xlated.match(/call bpf_task_from_pid#/g)?.length, 2);
    assert.equal(xlated.match(/call bpf_task_release#/g)?.length, 2);
    withLibbpfLoaded("loader_ksyms_typeless.bpf.c", (path, bpffs) => {
      using ours = BpfObject.open(path).load();
      const dump = (...program: string[]) => bpftool("prog", "dump", "xlated", ...program);
      assert.equal(
        dump("id", String(ours.programs.get("address_of")!.id)),
        dump("pinned", `${bpffs}/progs/address_of`),
      );
    });
  },
);
