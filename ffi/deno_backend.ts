/**
 * The live backend on `Deno.dlopen`: libc's `syscall()` with `SYS_bpf`.
 *
 * errno: libc's `__errno_location()` gives the address of this thread's
 * `errno` once; after a call that returned -1 we read the int at that
 * address straight away, before any other libc call can run on this thread.
 * A Web Worker is another thread and loads its own copy of this module.
 *
 * @module
 */

import type { SyscallAbi } from "./arch.ts";
import type { Attr } from "./attr.ts";
import { type KernelPrimitives, parseFdInfo, type SyscallBackend } from "./backend.ts";
import { loadLibc, readWholeFile } from "./libc.ts";
import { type LibcCalls, libcPrimitives } from "./libc_primitives.ts";

/** The slice of Deno's FFI API this backend uses (typed here, so Bun's type check passes too). */
interface DenoFfi {
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: LibcSymbols };
  UnsafePointer: {
    of(value: ArrayBufferLike | ArrayBufferView): unknown;
    value(pointer: unknown): number | bigint;
  };
  UnsafePointerView: {
    new(pointer: unknown): { getInt32(offset?: number): number };
    getArrayBuffer(pointer: unknown, byteLength: number): ArrayBuffer;
  };
}

interface LibcSymbols {
  syscall(number: number, command: number, attr: Uint8Array, size: number): number;
  __errno_location(): unknown;
  close(fd: number): number;
  open(path: Uint8Array, flags: number): number;
  read(fd: number, buffer: Uint8Array, count: number): number | bigint;
  perf_event_open(
    number: number,
    attr: Uint8Array,
    pid: number,
    cpu: number,
    groupFd: number,
    flags: number,
  ): number;
  ioctl(fd: number, request: number, arg: number): number;
  mmap(
    address: null,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
  ): unknown;
  munmap(address: unknown, length: number): number;
  sysconf(name: number): number | bigint;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  epoll_wait(epfd: number, events: Uint8Array, maxEvents: number, timeoutMs: number): number;
  epoll_wait_nonblocking(
    epfd: number,
    events: Uint8Array,
    maxEvents: number,
    timeoutMs: number,
  ): Promise<number>;
}

const LIBC_SYMBOLS = {
  // syscall(long number, ...). The number, cmd and size go as i32: V8's fast
  // calls take i32 at C speed but convert i64 ~350 ns slower per call
  // (measured here). The kernel reads all three as 32-bit: the syscall number
  // is dispatched as an int, and SYSCALL_DEFINE3(bpf, int cmd, ..., unsigned
  // int size) casts its register arguments down (__SC_CAST), so the upper
  // halves of the registers never matter. The attr goes as a full pointer.
  // The result is `long`; bpf() results fit in its low 32 bits, read as i32.
  syscall: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // syscall(__NR_perf_event_open, attr, pid, cpu, group_fd, flags): libc has no wrapper.
  perf_event_open: {
    name: "syscall",
    parameters: ["i64", "buffer", "i32", "i32", "i32", "u64"],
    result: "i32",
  },
  // ioctl(int, unsigned long, ...): the request zero-extended, the integer argument as a long.
  ioctl: { parameters: ["i32", "u64", "i64"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  sysconf: { parameters: ["i32"], result: "i64" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The same function on Deno's blocking-call thread pool: the event loop runs meanwhile.
  epoll_wait_nonblocking: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const;

/** `_SC_PAGESIZE`. */
const SC_PAGESIZE = 30;
/** `MAP_FAILED`, `(void *)-1`, as Deno reads a pointer's value. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/**
 * Opens the Deno backend. Needs `--allow-ffi`; loads libc once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDenoBackend } from "./deno_backend.ts";
 *
 * import { syscallAbi } from "./arch.ts";
 * const backend = openDenoBackend(syscallAbi({ os: "linux", arch: "x86_64", littleEndian: true }));
 * assert.match(backend.readTextFile("/sys/devices/system/cpu/possible"), /^\d/);
 * ```
 */
export function openDenoBackend(abi: SyscallAbi): SyscallBackend & KernelPrimitives {
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const libc = loadLibc((name) => deno.dlopen(name, LIBC_SYMBOLS).symbols);
  const errnoView = new deno.UnsafePointerView(libc.__errno_location());
  const readErrno = () => errnoView.getInt32(0);
  const syscallNumber = abi.bpf;
  const calls: LibcCalls = {
    open: libc.open,
    read: (fd, chunk) => Number(libc.read(fd, chunk, chunk.byteLength)),
    close: libc.close,
    errno: readErrno,
    perfEventOpen: (attr, pid, cpu, groupFd, flags) =>
      libc.perf_event_open(abi.perfEventOpen, attr.bytes, pid, cpu, groupFd, flags),
    ioctl: libc.ioctl,
    mmap(fd, length, prot, flags, offset) {
      const address = libc.mmap(null, length, prot, flags, fd, offset);
      if (BigInt(deno.UnsafePointer.value(address)) === MAP_FAILED) return undefined;
      const buffer = deno.UnsafePointerView.getArrayBuffer(address, length);
      return { buffer, munmap: () => libc.munmap(address, length) };
    },
    epollCreate1: libc.epoll_create1,
    epollCtl: libc.epoll_ctl,
    epollWait: libc.epoll_wait,
    epollWaitOffThread: libc.epoll_wait_nonblocking,
    pageSize: Number(libc.sysconf(SC_PAGESIZE)),
  };

  return {
    ...libcPrimitives(calls, abi.epollEventSize),
    runtime: "deno",
    bpf(attr: Attr): number {
      const result = libc.syscall(
        syscallNumber,
        attr.command.number,
        attr.bytes,
        attr.command.size,
      );
      return result === -1 ? -readErrno() : result;
    },
    close(fd: number): number {
      return libc.close(fd) === -1 ? -readErrno() : 0;
    },
    baseAddress(buffer: ArrayBufferLike): number {
      if (buffer.byteLength === 0) return 0;
      return Number(deno.UnsafePointer.value(deno.UnsafePointer.of(buffer)));
    },
    fdInfo(fd: number): Record<string, string> {
      return parseFdInfo(this.readTextFile(`/proc/self/fdinfo/${fd}`));
    },
    readTextFile(path: string): string {
      return readWholeFile(path, calls);
    },
  };
}
