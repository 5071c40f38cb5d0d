// Syscall numbers, platform refusal, runtime choice and the errno table.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { BPF_SYSCALL_NUMBERS, bpfSyscallNumber, isLittleEndian } from "../ffi/arch.ts";
import { BPF_MAP_LOOKUP_ELEM } from "../ffi/commands.ts";
import { errnoName, errnoNumber } from "../ffi/errno.ts";
import { liveKernel, POSSIBLE_CPUS_PATH } from "../ffi/kernel.ts";
import { detectRuntime } from "../ffi/live.ts";
import { offHeapBytes } from "../ffi/memory.ts";
import { countCpuList } from "../ffi/percpu.ts";
import { BpfMap, possibleCpus } from "../mod.ts";
import { liveTest } from "./helpers/live.ts";

test("bpf() syscall numbers per architecture", () => {
  assert.equal(BPF_SYSCALL_NUMBERS.x86_64, 321);
  assert.equal(BPF_SYSCALL_NUMBERS.aarch64, 280);
  assert.equal(bpfSyscallNumber({ os: "linux", arch: "x64", littleEndian: true }), 321);
  assert.equal(bpfSyscallNumber({ os: "linux", arch: "x86_64", littleEndian: true }), 321);
  assert.equal(bpfSyscallNumber({ os: "linux", arch: "arm64", littleEndian: true }), 280);
  assert.equal(bpfSyscallNumber({ os: "linux", arch: "riscv64", littleEndian: true }), 280);
  assert.equal(bpfSyscallNumber({ os: "linux", arch: "ia32", littleEndian: true }), 357);
  assert.equal(bpfSyscallNumber({ os: "linux", arch: "loong64", littleEndian: true }), 280);
});

test("the live backend refuses non-Linux, big-endian and unknown architectures", () => {
  assert.throws(
    () => bpfSyscallNumber({ os: "darwin", arch: "aarch64", littleEndian: true }),
    /needs Linux; this is darwin/,
  );
  assert.throws(
    () => bpfSyscallNumber({ os: "windows", arch: "x86_64", littleEndian: true }),
    /needs Linux/,
  );
  assert.throws(
    () => bpfSyscallNumber({ os: "linux", arch: "s390x", littleEndian: false }),
    /little-endian CPUs only/,
  );
  assert.throws(
    () => bpfSyscallNumber({ os: "linux", arch: "vax", littleEndian: true }),
    /no bpf\(\) syscall number is known for architecture vax/,
  );
  assert.equal(isLittleEndian(), true);
});

test("errno names, including the kernel-internal ENOTSUPP", () => {
  assert.equal(errnoName(2), "ENOENT");
  assert.equal(errnoName(524), "ENOTSUPP");
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(28), "ENOSPC");
  assert.equal(errnoName(7), "E2BIG");
  assert.equal(errnoName(9999), "E9999");
  assert.equal(errnoNumber("EPERM"), 1);
});

test("CPU lists count like libbpf_num_possible_cpus", () => {
  assert.equal(countCpuList("0-1\n"), 2);
  assert.equal(countCpuList("0"), 1);
  assert.equal(countCpuList("0-3,8-11"), 8);
  assert.throws(() => countCpuList("zero"), /cannot parse CPU list/);
});

liveTest("the live backend is this runtime's, loaded through the single entry point", () => {
  const runtime = detectRuntime();
  assert.ok(runtime === "deno" || runtime === "bun");
  assert.equal(liveKernel().backend.runtime, runtime);
  if (runtime === "bun") assert.equal((globalThis as { Deno?: unknown }).Deno, undefined);
});

liveTest("possibleCpus() is the kernel's count of per-CPU value slots", () => {
  const cpus = possibleCpus();
  // The file, read by another process (Deno wants --allow-all to read /sys itself), not
  // through bpfmap's libc path.
  assert.equal(cpus, countCpuList(execFileSync("cat", [POSSIBLE_CPUS_PATH], { encoding: "utf8" })));
  // And what the kernel does with it: a per-CPU lookup writes 8 bytes per possible CPU, and
  // not one more, into a buffer one slot larger, handed to it by a raw call.
  using map = BpfMap.create({ type: "percpu_array", keySize: 4, valueSize: 8, maxEntries: 1 });
  const kernel = liveKernel();
  const { fields } = BPF_MAP_LOOKUP_ELEM;
  const key = offHeapBytes(4);
  const value = offHeapBytes(8 * (cpus + 1)).fill(0xaa);
  const attr = kernel.attr(BPF_MAP_LOOKUP_ELEM);
  attr.clear();
  attr.setU32(fields.map_fd, map.fd);
  attr.setPointer(fields.key, key);
  attr.setPointer(fields.value, value);
  assert.equal(kernel.call(attr), 0);
  assert.deepEqual([...value], [...new Uint8Array(8 * cpus), ...new Uint8Array(8).fill(0xaa)]);
});
