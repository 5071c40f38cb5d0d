// Syscall numbers, platform refusal, runtime choice and the errno table.

import assert from "node:assert/strict";
import { test } from "node:test";
import { BPF_SYSCALL_NUMBERS, bpfSyscallNumber, isLittleEndian } from "../ffi/arch.ts";
import { errnoName, errnoNumber } from "../ffi/errno.ts";
import { detectRuntime } from "../ffi/live.ts";
import { liveKernel } from "../kernel.ts";
import { possibleCpus } from "../mod.ts";
import { countCpuList } from "../percpu.ts";
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

liveTest("possibleCpus() reads /sys/devices/system/cpu/possible through libc", () => {
  const cpus = possibleCpus();
  assert.ok(Number.isInteger(cpus) && cpus >= 1);
  assert.equal(
    cpus,
    countCpuList(liveKernel().backend.readTextFile("/sys/devices/system/cpu/possible")),
  );
});
