/**
 * The live backend on `bun:ffi`: libc's `syscall()` with `SYS_bpf`.
 *
 * `bun:ffi` is loaded with `import.meta.require` inside
 * {@linkcode openBunBackend}, synchronously and only when Bun is the runtime:
 * Deno never reaches that line. errno is read as in the Deno backend: the
 * address from `__errno_location()` once, the int at it right after a call
 * that returned -1.
 *
 * @module
 */

import type { SyscallAbi } from "./arch.ts";
import type { Attr } from "./attr.ts";
import { type KernelPrimitives, parseFdInfo, type SyscallBackend } from "./backend.ts";
import type { WaitAnswer, WaitRequest } from "./bun_epoll_worker.ts";
import { loadLibc, readWholeFile } from "./libc.ts";
import { type LibcCalls, libcPrimitives } from "./libc_primitives.ts";

/** The slice of `bun:ffi` this backend uses. */
interface BunFfi {
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: LibcSymbols };
  dlopen(path: string, symbols: typeof PERF_SYMBOLS): { symbols: PerfSymbols };
  ptr(value: ArrayBufferLike | ArrayBufferView): number;
  read: { i32(address: number, offset: number): number };
  toArrayBuffer(address: number, offset: number, length: number): ArrayBuffer;
}

interface PerfSymbols {
  syscall(
    number: number,
    attr: number,
    pid: number,
    cpu: number,
    group: number,
    flags: number,
  ): number;
}

interface LibcSymbols {
  syscall(number: number, command: number, attr: number, size: number): number;
  __errno_location(): number;
  close(fd: number): number;
  open(path: Uint8Array, flags: number): number;
  read(fd: number, buffer: Uint8Array, count: number): number;
  ioctl(fd: number, request: number, arg: number): number;
  mmap(
    address: null,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
  ): number | bigint;
  munmap(address: number, length: number): number;
  sysconf(name: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  epoll_wait(epfd: number, events: Uint8Array, maxEvents: number, timeoutMs: number): number;
}

const LIBC_SYMBOLS = {
  // See deno_backend.ts: 64-bit arguments, the `long` result read as i32.
  syscall: { args: ["i64", "i64", "ptr", "i64"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  close: { args: ["i32"], returns: "i32" },
  open: { args: ["ptr", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64_fast" },
  ioctl: { args: ["i32", "u64", "i64"], returns: "i32" },
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: "i64_fast" },
  munmap: { args: ["ptr", "u64"], returns: "i32" },
  sysconf: { args: ["i32"], returns: "i64_fast" },
  epoll_create1: { args: ["i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" },
} as const;

/**
 * `syscall(__NR_perf_event_open, attr, pid, cpu, group_fd, flags)` (libc has no wrapper): a
 * second binding of `syscall`, with these arguments, as bun:ffi has no aliases in one dlopen.
 */
const PERF_SYMBOLS = {
  syscall: { args: ["i64", "ptr", "i32", "i32", "i32", "u64"], returns: "i32" },
} as const;

/** `_SC_PAGESIZE`. */
const SC_PAGESIZE = 30;

/**
 * Opens the Bun backend; loads libc once.
 *
 * @example
 * ```ts ignore
 * // Bun only (doc tests run under Deno); ffi/live.ts's example runs this backend under Bun.
 * import assert from "node:assert/strict";
 * import { openBunBackend } from "./bun_backend.ts";
 * import { syscallAbi } from "./arch.ts";
 * const backend = openBunBackend(syscallAbi({ os: "linux", arch: "x64", littleEndian: true }));
 * assert.equal(backend.runtime, "bun");
 * assert.match(backend.readTextFile("/sys/devices/system/cpu/possible"), /^0(-\d+)?\n$/);
 * ```
 */
export function openBunBackend(abi: SyscallAbi): SyscallBackend & KernelPrimitives {
  const ffi = (import.meta as unknown as { require(id: string): BunFfi }).require("bun:ffi");
  let perfName = "";
  const libc = loadLibc((name) => {
    const symbols = ffi.dlopen(name, LIBC_SYMBOLS).symbols;
    perfName = name;
    return symbols;
  });
  const perf = ffi.dlopen(perfName, PERF_SYMBOLS).symbols;
  const errnoAddress = libc.__errno_location();
  const readErrno = () => ffi.read.i32(errnoAddress, 0);
  const syscallNumber = abi.bpf;
  const calls: LibcCalls = {
    open: libc.open,
    read: (fd, chunk) => libc.read(fd, chunk, chunk.byteLength),
    close: libc.close,
    errno: readErrno,
    perfEventOpen: (attr, pid, cpu, groupFd, flags) =>
      perf.syscall(abi.perfEventOpen, attr.address, pid, cpu, groupFd, flags),
    ioctl: libc.ioctl,
    mmap(fd, length, prot, flags, offset) {
      // The address as a signed integer: MAP_FAILED is -1.
      const address = Number(libc.mmap(null, length, prot, flags, fd, offset));
      if (address === -1) return undefined;
      const buffer = ffi.toArrayBuffer(address, 0, length);
      return { buffer, munmap: () => libc.munmap(address, length) };
    },
    epollCreate1: libc.epoll_create1,
    epollCtl: libc.epoll_ctl,
    epollWait: libc.epoll_wait,
    pageSize: libc.sysconf(SC_PAGESIZE),
  };
  const offThread = workerWaits();
  if (offThread !== undefined) calls.epollWaitOffThread = offThread;

  return {
    ...libcPrimitives(calls, abi.epollEventSize),
    runtime: "bun",
    bpf(attr: Attr): number {
      const result = libc.syscall(
        syscallNumber,
        attr.command.number,
        attr.address,
        attr.command.size,
      );
      return result === -1 ? -readErrno() : result;
    },
    close(fd: number): number {
      return libc.close(fd) === -1 ? -readErrno() : 0;
    },
    baseAddress(buffer: ArrayBufferLike): number {
      if (buffer.byteLength === 0) return 0;
      return ffi.ptr(buffer);
    },
    fdInfo(fd: number): Record<string, string> {
      return parseFdInfo(this.readTextFile(`/proc/self/fdinfo/${fd}`));
    },
    readTextFile(path: string): string {
      return readWholeFile(path, calls);
    },
  };
}

/** The slice of Bun's Worker the waits use. */
interface BunWorker {
  onmessage: ((event: { data: WaitAnswer }) => void) | null;
  onerror: ((event: { message?: string }) => void) | null;
  postMessage(message: WaitRequest): void;
  ref(): void;
  unref(): void;
  terminate(): void;
}

/**
 * `epoll_wait` on worker threads (`bun_epoll_worker.ts`), one wait per worker
 * at a time, from a pool that grows to the number of waits pending at once.
 * A worker keeps the process alive only while its wait is pending, as
 * Deno's non-blocking calls do; an idle one does not.
 */
function workerWaits(): LibcCalls["epollWaitOffThread"] | undefined {
  const Worker = (globalThis as unknown as { Worker?: new(url: string) => BunWorker }).Worker;
  if (Worker === undefined) return undefined;
  const url = new URL("./bun_epoll_worker.ts", import.meta.url).href;
  const idle: BunWorker[] = [];
  return (epfd, events, maxEvents, timeoutMs) =>
    new Promise<number>((resolve, reject) => {
      const worker = idle.pop() ?? new Worker(url);
      worker.ref();
      worker.onmessage = ({ data }) => {
        events.set(new Uint8Array(data.events));
        worker.unref();
        idle.push(worker);
        resolve(data.count);
      };
      worker.onerror = (event) => {
        worker.terminate();
        reject(new Error(`bpfmap: the epoll wait thread failed: ${event.message ?? "unknown"}`));
      };
      worker.postMessage({ epfd, maxEvents, timeoutMs, size: events.byteLength });
    });
}
