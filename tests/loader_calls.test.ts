// Calls between .text functions that clang leaves without a relocation (tests/bpf/loader_calls.bpf.c):
// a static function calling another of .text is resolved by clang itself, the call's imm counted
// from the call in the section. The loader read only relocated calls, so it appended no callee and
// the kernel refused the programs ("call to invalid destination"). Now each loads and runs; its
// subprograms are placed depth first, as libbpf places them: the same instructions (tag, xlated
// dump) as bpftool's load of the file.

import assert from "node:assert/strict";
import test from "node:test";
import { BpfObject, ObjectFormatError } from "../mod.ts";
import { ElfFile, SHT_REL } from "../object/elf.ts";
import { parseObject } from "../object/object.ts";
import {
  assertLikeLibbpf,
  bpftool,
  bpftoolShow,
  kernelToolTest,
  objectFixture,
  withLibbpfLoaded,
} from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const callsObject = objectFixture(import.meta.url, "loader_calls.bpf.c");

/** A packet whose first byte, the programs' x, is `x`. */
const packet = (x: number) => {
  const bytes = new Uint8Array(64);
  bytes[0] = x;
  return bytes;
};

test("clang leaves the calls between .text functions unrelocated; the reader finds their callees", () => {
  const bytes = callsObject();
  const elf = new ElfFile(bytes);
  const text = elf.sectionByName(".text")!;
  // What the test is about: no relocation at all in .text, though its functions call triple.
  assert.equal(elf.sections.some((s) => s.type === SHT_REL && s.info === text.index), false);
  const spec = parseObject(bytes);
  const calls = (name: string) =>
    spec.subprograms.find((s) => s.name === name)!.relocations.map((r) =>
      r.kind === "call" ? [r.insn, r.target, r.targetInsn] : r.kind
    );
  // triple is instruction 3 of .text: twice calls it forwards of nothing, add_triple backwards.
  assert.deepEqual(calls("twice"), [[1, "triple", 3], [5, "triple", 3]]);
  assert.deepEqual(calls("add_triple"), [[1, "triple", 3]]);
  assert.deepEqual(calls("global_triple"), [[0, "triple", 3]]);
  assert.deepEqual(calls("triple"), []);
});

transcriptTest("programs calling .text functions that call each other load and run", (sys) => {
  using object = sys.loadObject(callsObject(), { name: "calls" });
  const run = (name: string) =>
    [0, 2, 9].map((x) => object.programs.get(name)!.testRun({ data: packet(x) }).retval);
  // twice(x) + square(x) = 6x + 5 + x * x: twice's two calls of triple reached it.
  assert.deepEqual(run("calls"), [5, 21, 140]);
  // x + triple(0) + ... + triple(3): the bpf_loop callback's call of triple reached it.
  assert.deepEqual(run("loop"), [22, 24, 31]);
  // global_triple(x) = 3x + 101, the global function's call of the static triple.
  assert.deepEqual(run("global"), [101, 107, 128]);
});

test("an unrelocated call outside .text, or to no function's start, is refused at open", () => {
  const bytes = () => callsObject().slice();
  const offsetOf = (file: Uint8Array, section: string) =>
    new ElfFile(file).sectionByName(section)!.offset;
  // `calls`' first instruction (r6 = 0) made a bpf-to-bpf call: a program section's calls are all
  // relocated by clang, so one without is no call the loader can place.
  const xdp = bytes();
  xdp.set([0x85, 0x10, 0, 0, 0, 0, 0, 0], offsetOf(xdp, "xdp"));
  assert.throws(() => BpfObject.open(xdp), (error) =>
    error instanceof ObjectFormatError
    && error.message.includes(
      "xdp: instruction 0 of 'calls' is a bpf-to-bpf call with no relocation",
    ));
  // twice's first call (instruction 8 of .text, imm -6 to triple at 3) aimed at 4, inside triple.
  const inside = bytes();
  new DataView(inside.buffer).setInt32(offsetOf(inside, ".text") + 8 * 8 + 4, -5, true);
  assert.throws(() => BpfObject.open(inside), (error) =>
    error instanceof ObjectFormatError
    && error.message.includes("a call of 'twice' to instruction 4 reaches no .text function"));
});

kernelToolTest("loader_calls.bpf.c: the instructions are the ones libbpf loads from it", () => {
  withLibbpfLoaded("loader_calls.bpf.c", (path, bpffs) => {
    using object = BpfObject.open(path).load();
    assertLikeLibbpf(object, bpffs);
    assert.deepEqual([...object.programs.keys()], ["calls", "loop", "global"]);
    for (const [name, program] of object.programs) {
      const pin = `${bpffs}/progs/${name}`;
      // The tag hashes the instructions loaded: calls' subprograms in libbpf's order (twice,
      // triple, square; breadth first would place square before triple).
      assert.equal(program.info().tag, bpftoolShow("prog", pin).tag, name);
      assert.equal(
        bpftool("prog", "dump", "xlated", "id", String(program.id)),
        bpftool("prog", "dump", "xlated", "pinned", pin),
        name,
      );
    }
  });
});
