// A test run's context, for the program types that take one but refuse ctx_out (EINVAL): a raw
// tracepoint reads its arguments from it, and a syscall program writes into it, which the kernel
// copies back into ctx_in itself. testRun asked ctx_out of every type, so neither could run.

import assert from "node:assert/strict";
import { BpfError } from "../mod.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** BPF_F_SLEEPABLE: a syscall program must be loaded sleepable. */
const BPF_F_SLEEPABLE = 1 << 4;
const u64s = (...values: bigint[]) => new Uint8Array(new BigUint64Array(values).buffer);

transcriptTest("a raw tracepoint's test run reads its arguments from the context", (sys) => {
  // r0 = *(u64 *)(r1 + 8); exit: the second argument
  const instructions = new Uint8Array([
    ...[0x79, 0x10, 8, 0, 0, 0, 0, 0],
    ...[0x95, 0, 0, 0, 0, 0, 0, 0],
  ]);
  const program = sys.loadProgram({ type: "raw_tracepoint", instructions, license: "GPL" });
  const run = program.testRun({ ctx: u64s(11n, 42n) });
  assert.equal(run.retval, 42);
  assert.equal(run.ctx, undefined); // not given back
  // What the kernel still refuses for this type is its answer, not ours.
  assert.throws(
    () => program.testRun({ ctx: u64s(1n), data: new Uint8Array(8) }),
    (e) => e instanceof BpfError && e.code === "EINVAL",
  );
});

transcriptTest("a syscall program's test run gives back the context it wrote", (sys) => {
  // *(u32 *)(r1 + 4) = 42; r0 = 7; exit
  const instructions = new Uint8Array([
    ...[0x62, 0x01, 4, 0, 42, 0, 0, 0],
    ...[0xb7, 0, 0, 0, 7, 0, 0, 0],
    ...[0x95, 0, 0, 0, 0, 0, 0, 0],
  ]);
  const program = sys.loadProgram({
    type: "syscall",
    instructions,
    license: "GPL",
    flags: BPF_F_SLEEPABLE,
  });
  const ctx = new Uint8Array(8).fill(0xee);
  const run = program.testRun({ ctx });
  assert.equal(run.retval, 7);
  assert.deepEqual(run.ctx, new Uint8Array([0xee, 0xee, 0xee, 0xee, 42, 0, 0, 0]));
  assert.deepEqual(ctx, new Uint8Array(8).fill(0xee)); // the caller's own bytes untouched
});
