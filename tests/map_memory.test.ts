// mmap-ed arrays and global data (issue 15, item 4): `map.memory()` maps an array created with
// BPF_F_MMAPABLE, and what the program or bpf() writes reads through it with no syscall, and the
// other way round. tests/bpf/map_memory.bpf.c's `bump`, test-run, writes .bss, .data and an
// mmapable array; the test reads them through the mappings while counting bpf() calls: none.
// Every read is observed and every write reported, so each test replays with no FFI.

import assert from "node:assert/strict";
import {
  BPF_F_MMAPABLE,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BpfMap,
  type BpfSystem,
  globals,
  type MapMemory,
  struct,
  u32,
  u64,
} from "../mod.ts";
import { objectFixture } from "./helpers/loader_object.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const memoryObject = objectFixture(import.meta.url, "map_memory.bpf.c");
const XDP_PASS = 2;
const ZERO = new Uint8Array(4);

const keyOf = (index: number) => new Uint8Array(new Uint32Array([index]).buffer);

/**
 * Runs `fn` with the system's backend counting what reaches the kernel: bpf() commands, mmap
 * and fdinfo reads. The calls still go through (live, recorded or replayed).
 */
function countingCalls<T>(sys: BpfSystem, fn: () => T): { result: T; calls: string[] } {
  const backend = sys.kernel.backend as unknown as Record<string, unknown>;
  const calls: string[] = [];
  const wrapped = ["bpf", "mmap", "fdInfo"] as const;
  for (const name of wrapped) {
    const original = backend[name] as (...args: unknown[]) => unknown;
    backend[name] = (...args: unknown[]) => {
      const first = args[0] as { command?: { name: string } };
      calls.push(name === "bpf" ? first.command!.name : name);
      return original.apply(backend, args);
    };
  }
  try {
    return { result: fn(), calls };
  } finally {
    for (const name of wrapped) delete backend[name];
  }
}

function mmapable(sys: BpfSystem, valueSize: number, maxEntries: number, flags = 0): BpfMap {
  return sys.createMap({
    type: "array",
    keySize: 4,
    valueSize,
    maxEntries,
    flags: BPF_F_MMAPABLE | flags,
  });
}

transcriptTest("an mmapable array's memory is its elements, each at index times stride", (sys) => {
  using map = mmapable(sys, 12, 5);
  using memory = map.memory();
  assert.equal(memory.stride, 16);
  assert.equal(memory.length, 80);
  assert.equal(memory.writable, true);
  // Written through bpf(), read through the mapping.
  map.update(keyOf(3), new Uint8Array(12).map((_, i) => i + 1));
  assert.deepEqual(memory.value(3), new Uint8Array(12).map((_, i) => i + 1));
  assert.equal(memory.readU32(3 * 16 + 4), 0x08070605);
  assert.deepEqual(
    memory.read(3 * 16 + 10, new Uint8Array(6)),
    new Uint8Array([11, 12, 0, 0, 0, 0]),
  );
  // Written through the mapping, read through bpf().
  memory.setValue(1, new Uint8Array(12).fill(0xee));
  memory.setU64(4 * 16, 0x0102030405060708n);
  memory.setI32(4 * 16 + 8, -2);
  memory.setU8(0, 0x7f);
  assert.deepEqual(map.lookup(keyOf(1)), new Uint8Array(12).fill(0xee));
  assert.deepEqual(
    map.lookup(keyOf(4)),
    new Uint8Array([8, 7, 6, 5, 4, 3, 2, 1, 0xfe, 0xff, 0xff, 0xff]),
  );
  assert.deepEqual(map.lookup(keyOf(0)), new Uint8Array([0x7f, ...new Uint8Array(11)]));
  assert.deepEqual(map.lookup(keyOf(2)), new Uint8Array(12)); // untouched between them
  assert.equal(memory.readI64(4 * 16), 0x0102030405060708n);
  assert.equal(memory.readI32(4 * 16 + 8), -2);
  memory.setF64(2 * 16, 1.5);
  assert.equal(memory.readF64(2 * 16), 1.5);
  memory.setU16(2 * 16 + 8, 0xbeef);
  assert.equal(memory.readU16(2 * 16 + 8), 0xbeef);
  // Through a codec of the value's size: read in place, written whole.
  const triple = struct({ lo: u32, mid: u32, hi: u32 });
  memory.set(2, triple, { lo: 1, mid: 0x0200, hi: 0x030000 });
  assert.deepEqual(map.lookup(keyOf(2)), new Uint8Array([1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0]));
  assert.deepEqual(memory.get(3, triple), { lo: 0x04030201, mid: 0x08070605, hi: 0x0c0b0a09 });
  // A view is the memory itself, as it is when taken (replay serves that moment's bytes).
  map.update(keyOf(0), new Uint8Array(12).fill(3));
  const view = memory.view();
  assert.equal(view.byteLength, 80);
  assert.deepEqual(
    view.subarray(0, 16),
    new Uint8Array([...new Uint8Array(12).fill(3), 0, 0, 0, 0]),
  );
  assert.deepEqual(memory.view(4 * 16, 8), new Uint8Array([8, 7, 6, 5, 4, 3, 2, 1]));
});

transcriptTest(
  "frozen and BPF_F_RDONLY_PROG arrays map read-only, and so does one asked to",
  (sys) => {
    const checkReadOnly = (memory: MapMemory, first: number) => {
      assert.equal(memory.writable, false);
      assert.equal(memory.readU8(0), first);
      assert.throws(() => memory.setU8(0, 1), {
        name: "TypeError",
        message: /^setU8: the memory of .* is mapped read-only$/,
      });
      assert.throws(() => memory.write(0, new Uint8Array(1)), { name: "TypeError" });
      assert.equal(memory.readU8(0), first);
    };
    using frozen = mmapable(sys, 8, 2);
    frozen.update(keyOf(0), new Uint8Array(8).fill(9));
    frozen.freeze();
    using frozenMemory = frozen.memory();
    checkReadOnly(frozenMemory, 9);
    // Read-only for programs: the kernel refuses a writable mapping (EACCES), so it is never asked.
    using forPrograms = mmapable(sys, 8, 2, BPF_F_RDONLY_PROG);
    forPrograms.update(keyOf(0), new Uint8Array(8).fill(4));
    using programsMemory = forPrograms.memory();
    checkReadOnly(programsMemory, 4);
    // Asked for: a writable map mapped read-only stays writable through bpf().
    using writable = mmapable(sys, 8, 2);
    using asked = writable.memory({ readOnly: true });
    checkReadOnly(asked, 0);
    writable.update(keyOf(0), new Uint8Array(8).fill(6));
    assert.equal(asked.readU8(0), 6);
    // A writable mapping keeps the map from being frozen, as the kernel has it.
    using open = writable.memory();
    assert.throws(() => writable.freeze(), { name: "BpfError", code: "EBUSY" });
    open.close();
    writable.freeze();
  },
);

transcriptTest("bad input is refused before any syscall", (sys) => {
  using hash = sys.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4 });
  using plain = sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 4 });
  using perCpu = sys.createMap({ type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 4 });
  // Read-only for user space: its fd is read-only, which the kernel does not map shared (EINVAL).
  using forUser = mmapable(sys, 8, 2, BPF_F_RDONLY);
  const closed = mmapable(sys, 8, 4);
  closed.close();
  using map = mmapable(sys, 12, 4);
  const memory = map.memory();
  const { calls } = countingCalls(sys, () => {
    assert.throws(() => hash.memory(), {
      name: "TypeError",
      message: /is a hash map; only arrays can be mapped$/,
    });
    assert.throws(() => plain.memory(), {
      name: "TypeError",
      message: /was not created with BPF_F_MMAPABLE \(flags 0x0\)$/,
    });
    assert.throws(() => perCpu.memory(), {
      name: "TypeError",
      message: /is a percpu_array map: per-CPU memory cannot be mapped/,
    });
    assert.throws(() => closed.memory(), {
      name: "TypeError",
      message: /is closed$/,
    });
    // Offsets past the elements (64 bytes: 4 of 16), even inside the mapping's page.
    assert.throws(() => memory.readU64(60), {
      name: "RangeError",
      message: "readU64: bytes [60, +8) are not inside the map's 64",
    });
    assert.throws(() => memory.readU8(-1), { name: "RangeError" });
    assert.throws(() => memory.readU32(1.5), { name: "RangeError" });
    assert.throws(() => memory.write(60, new Uint8Array(5)), { name: "RangeError" });
    assert.throws(() => memory.read(0, [1, 2] as unknown as Uint8Array), { name: "TypeError" });
    assert.throws(() => memory.setU8(0, 256), {
      name: "RangeError",
      message: "setU8: value must be an integer from 0 to 255, got 256",
    });
    assert.throws(() => memory.setU32(0, -1), { name: "RangeError" });
    assert.throws(() => memory.setU64(0, -1n), { name: "RangeError" });
    assert.throws(() => memory.setU64(0, 2 ** 53), { name: "RangeError" });
    assert.throws(() => memory.setI64(0, 1n << 63n), { name: "RangeError" });
    assert.throws(() => memory.setValue(4, new Uint8Array(12)), {
      name: "RangeError",
      message: "setValue: index must be an integer from 0 to 3, got 4",
    });
    assert.throws(() => memory.get(0, u64), {
      name: "RangeError",
      message: "get: codec u64 is 8 bytes; the map's values are 12",
    });
    const triple = struct({ lo: u32, mid: u32, hi: u32 });
    assert.throws(() => memory.set(0, triple, { lo: 1, mid: 2 } as never), {
      name: "TypeError",
      message: /^value: missing field hi/,
    });
    assert.throws(() => memory.set(0, triple, { lo: 1, mid: 2, hi: -1 }), {
      name: "RangeError",
      message: /^value: hi: /,
    });
    assert.throws(() => memory.setValue(0, new Uint8Array(8)), {
      name: "RangeError",
      message: "setValue: bytes must be 12 bytes, got 8",
    });
  });
  assert.deepEqual(calls, []);
  // The kernel keeps no BPF_F_RDONLY in the map's flags: its answer to the fd, with why.
  assert.throws(() => forUser.memory(), {
    name: "BpfError",
    code: "EACCES",
    op: "mmap",
    message: /\(an fd opened read-only, BPF_F_RDONLY, cannot be mapped: open the map read-write\)$/,
  });
  assert.deepEqual(map.lookup(keyOf(0)), new Uint8Array(12)); // nothing was written
  memory.close();
  memory.close(); // harmless
  assert.throws(() => memory.readU8(0), {
    name: "TypeError",
    message: /^readU8: the memory of .* is unmapped$/,
  });
});

transcriptTest(
  "a test run's writes to global data read through memory with no bpf() call",
  (sys) => {
    using object = sys.loadObject(memoryObject(), { name: "map_memory" });
    const bump = object.programs.get("bump")!;
    const run = () => assert.equal(bump.testRun({ data: new Uint8Array(64) }).retval, XDP_PASS);
    using bss = object.maps.get(".bss")!.memory();
    using data = object.maps.get(".data")!.memory();
    using rodata = object.maps.get(".rodata")!.memory();
    using shared = object.maps.get("shared")!.memory();
    assert.deepEqual([bss.writable, data.writable, rodata.writable], [true, true, false]);
    // Before any run: the object's initial values, through the mappings.
    const before = countingCalls(sys, () => ({
      counter: bss.readU64(0),
      squares: [0, 1, 2, 3].map((i) => data.readU32(4 * i)),
      step: rodata.readU32(0),
    }));
    assert.deepEqual(before.result, { counter: 0n, squares: [1, 2, 3, 0], step: 3 });
    run();
    run();
    const after = countingCalls(sys, () => ({
      counter: bss.readU64(0),
      squares: Array.from({ length: 8 }, (_, i) => data.readU32(4 * i)),
      slot: shared.readU64(5 * 8),
    }));
    assert.deepEqual(after.result, {
      counter: 6n,
      squares: Array.from({ length: 8 }, (_, i) => i * i + 6),
      slot: 2n,
    });
    // The program sees what user space writes into its globals, with no call either.
    const written = countingCalls(sys, () => bss.setU64(0, 100n));
    run();
    assert.equal(bss.readU64(0), 103n);
    assert.equal(data.readU32(4 * 7), 49 + 103);
    assert.deepEqual([...before.calls, ...after.calls, ...written.calls], []);
    // The same values through bpf(), to be sure the mappings are the maps' own memory.
    const counter = object.maps.get(".bss")!.lookup(ZERO)!;
    assert.equal(new DataView(counter.buffer).getBigUint64(0, true), 103n);
  },
);

transcriptTest(
  "globals() reads and writes the variables by their BTF, with no bpf() call",
  (sys) => {
    using object = sys.loadObject(memoryObject(), { name: "map_memory" });
    const bump = object.programs.get("bump")!;
    using bss = object.globals(".bss");
    using data = object.globals(".data");
    using rodata = object.globals(".rodata");
    assert.equal(bump.testRun({ data: new Uint8Array(64) }).retval, XDP_PASS);
    const read = countingCalls(sys, () => ({ ...bss, ...data, ...rodata }));
    assert.deepEqual(read.result, {
      counter: 3n,
      seq: 0n,
      squares: Array.from({ length: 8 }, (_, i) => i * i + 3),
      step: 3,
    });
    const written = countingCalls(sys, () => {
      bss.counter = 40n;
      data.squares = [8, 7, 6, 5, 4, 3, 2, 1];
    });
    assert.deepEqual([...read.calls, ...written.calls], []);
    assert.deepEqual(
      object.maps.get(".data")!.typed().get(0),
      { squares: [8, 7, 6, 5, 4, 3, 2, 1] },
    );
    assert.equal(bump.testRun({ data: new Uint8Array(64) }).retval, XDP_PASS);
    assert.equal(bss.counter, 43n);
    // Refused before the memory is touched: a codec's refusal, a frozen section.
    assert.throws(() => (data.squares = [1, 2]), { name: "RangeError", message: /^squares: / });
    assert.throws(() => (bss.counter = -1n), { name: "RangeError", message: /^counter: / });
    assert.throws(() => (rodata.step = 4), {
      name: "TypeError",
      message: /is mapped read-only$/,
    });
    assert.equal(rodata.step, 3);
    assert.equal(bss.counter, 43n);
    assert.throws(() => object.globals(".bss.missing"), {
      name: "TypeError",
      message: "globals: the object has no map '.bss.missing' (global data: .data, .rodata, .bss)",
    });
    assert.throws(() => globals(object.maps.get("shared")!), {
      name: "TypeError",
      message: /'s value is a typedef, not a DATASEC; use map.typed\(\) or map.memory\(\)$/,
    });
  },
);
