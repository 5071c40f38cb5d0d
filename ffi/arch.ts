/**
 * The `bpf()` system call number of every Linux architecture, and the check
 * that decides whether this process may issue it at all.
 *
 * @module
 */

/**
 * `__NR_bpf` per Linux architecture, keyed by the kernel's own architecture
 * names (what `uname -m` prints, folded to one name per ABI).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_SYSCALL_NUMBERS } from "./arch.ts";
 * assert.equal(BPF_SYSCALL_NUMBERS.x86_64, 321);
 * assert.equal(BPF_SYSCALL_NUMBERS.aarch64, 280); // the generic table: riscv64 and loongarch64 too
 * ```
 */
export const BPF_SYSCALL_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  x86_64: 321,
  i386: 357,
  aarch64: 280,
  arm: 386,
  riscv64: 280,
  loongarch64: 280,
  s390x: 351,
  ppc64: 361,
  ppc64le: 361,
  sparc: 349,
  sparc64: 349,
  mips: 4355,
  mipsn32: 6319,
  mips64: 5315,
});

/** Names Deno (`Deno.build.arch`) and Bun/Node (`process.arch`) give, mapped to the kernel's. */
const RUNTIME_ARCH_ALIASES: Readonly<Record<string, string>> = {
  x64: "x86_64",
  x86_64: "x86_64",
  ia32: "i386",
  arm64: "aarch64",
  aarch64: "aarch64",
  arm: "arm",
  riscv64: "riscv64",
  loong64: "loongarch64",
  loongarch64: "loongarch64",
  s390x: "s390x",
  ppc64: "ppc64le",
  mips: "mips",
  mips64: "mips64",
};

/** What the live backend needs to know about the machine before it issues any syscall. */
export interface Platform {
  /** `Deno.build.os` or `process.platform`, e.g. `"linux"`, `"darwin"`. */
  os: string;
  /** The runtime's architecture name, e.g. `"x86_64"` (Deno) or `"x64"` (Bun). */
  arch: string;
  /** Whether the CPU stores the least significant byte first. */
  littleEndian: boolean;
}

/**
 * The `bpf()` syscall number for a platform, or an `Error` that says why this
 * platform cannot issue it: not Linux, a big-endian CPU (every attr is packed
 * little-endian), or an architecture missing from {@linkcode BPF_SYSCALL_NUMBERS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bpfSyscallNumber } from "./arch.ts";
 * assert.equal(bpfSyscallNumber({ os: "linux", arch: "arm64", littleEndian: true }), 280);
 * assert.throws(() => bpfSyscallNumber({ os: "darwin", arch: "arm64", littleEndian: true }), {
 *   message: "bpfmap: live BPF needs Linux; this is darwin. Replay a recorded transcript instead.",
 * });
 * ```
 */
export function bpfSyscallNumber(platform: Platform): number {
  if (platform.os !== "linux") {
    throw new Error(
      `bpfmap: live BPF needs Linux; this is ${platform.os}. Replay a recorded transcript instead.`,
    );
  }
  if (!platform.littleEndian) {
    throw new Error(
      `bpfmap: live BPF is supported on little-endian CPUs only; ${platform.arch} is big-endian here.`,
    );
  }
  const number = BPF_SYSCALL_NUMBERS[kernelArch(platform.arch)];
  if (number === undefined) {
    throw new Error(`bpfmap: no bpf() syscall number is known for architecture ${platform.arch}.`);
  }
  return number;
}

/**
 * The kernel's name of a runtime's architecture name (`"x64"` → `"x86_64"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelArch } from "./arch.ts";
 * assert.equal(kernelArch("x64"), "x86_64"); // Bun and Node
 * assert.equal(kernelArch("aarch64"), "aarch64"); // Deno already says it
 * ```
 */
export function kernelArch(arch: string): string {
  return RUNTIME_ARCH_ALIASES[arch] ?? arch;
}

/**
 * Whether this JavaScript engine runs on a little-endian CPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isLittleEndian } from "./arch.ts";
 * assert.equal(isLittleEndian(), true); // x86_64 and aarch64 alike: bytes[0] of u16 1 is 1
 * ```
 */
export function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/**
 * `__NR_perf_event_open` per Linux architecture, keyed as {@linkcode BPF_SYSCALL_NUMBERS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_SYSCALL_NUMBERS, PERF_EVENT_OPEN_SYSCALL_NUMBERS } from "./arch.ts";
 * assert.equal(PERF_EVENT_OPEN_SYSCALL_NUMBERS.x86_64, 298);
 * assert.equal(PERF_EVENT_OPEN_SYSCALL_NUMBERS.aarch64, 241); // the generic table
 * assert.deepEqual(
 *   Object.keys(PERF_EVENT_OPEN_SYSCALL_NUMBERS).sort(),
 *   Object.keys(BPF_SYSCALL_NUMBERS).sort(),
 * );
 * ```
 */
export const PERF_EVENT_OPEN_SYSCALL_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  x86_64: 298,
  i386: 336,
  aarch64: 241,
  arm: 364,
  riscv64: 241,
  loongarch64: 241,
  s390x: 331,
  ppc64: 319,
  ppc64le: 319,
  sparc: 327,
  sparc64: 327,
  mips: 4333,
  mipsn32: 6296,
  mips64: 5292,
});

/** The per-architecture facts a live backend needs beside libc's named functions. */
export interface SyscallAbi {
  /** `__NR_bpf`. */
  readonly bpf: number;
  /** `__NR_perf_event_open` (libc has no wrapper for it). */
  readonly perfEventOpen: number;
  /**
   * `sizeof(struct epoll_event)`: 12 on x86_64, where the kernel declares it packed
   * (`EPOLL_PACKED`), 16 elsewhere (the u64 `data` aligned to 8).
   */
  readonly epollEventSize: 12 | 16;
}

/**
 * The {@linkcode SyscallAbi} of a platform; refuses as {@linkcode bpfSyscallNumber} does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { syscallAbi } from "./arch.ts";
 * assert.deepEqual(syscallAbi({ os: "linux", arch: "x64", littleEndian: true }), {
 *   bpf: 321,
 *   perfEventOpen: 298,
 *   epollEventSize: 12,
 * });
 * assert.equal(syscallAbi({ os: "linux", arch: "arm64", littleEndian: true }).epollEventSize, 16);
 * ```
 */
export function syscallAbi(platform: Platform): SyscallAbi {
  const bpf = bpfSyscallNumber(platform);
  const arch = kernelArch(platform.arch);
  return {
    bpf,
    perfEventOpen: PERF_EVENT_OPEN_SYSCALL_NUMBERS[arch]!,
    epollEventSize: arch === "x86_64" ? 12 : 16,
  };
}
