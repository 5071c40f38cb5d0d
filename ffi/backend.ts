/**
 * The contract every way of reaching the kernel fulfils: the Deno and Bun
 * FFI backends now, the replay player later. Everything above it (maps,
 * systems) is written against this interface only.
 *
 * @module
 */

import type { Attr } from "./attr.ts";
import type { EpollOp, EpollResult } from "./epoll.ts";
import type { AddressSpace } from "./memory.ts";
import type { MappedRegion, MapProtection } from "./mmap.ts";
import type { PerfEventField } from "./perf_event.ts";

/**
 * The kernel beyond `bpf()`: perf events, ioctl, shared mappings, epoll and
 * binary files, for attaching programs and reading ring and perf buffers.
 * Every call goes through the backend, so a recorder writes it into the
 * transcript and a player serves it back with no FFI.
 */
export interface KernelPrimitives {
  /**
   * Reads a whole file (`/sys/kernel/btf/vmlinux`, 5.5 MB) through libc, in
   * chunks until `read` returns 0 (sysfs sizes are not known from `stat`).
   *
   * @returns the file's bytes, in a buffer of their own.
   * @throws {Error} `bpfmap: cannot open PATH: ENOENT (errno 2)` (or `cannot read`), with `code`
   * and `errno` properties.
   */
  readFile(path: string): Uint8Array;
  /**
   * `perf_event_open(attr, pid, cpu, groupFd, flags)`. `attr` is packed with
   * {@linkcode PerfEventField}s (`perfEventAttr()` in `perf_event.ts`): its
   * `config1` string (a kprobe's function, an uprobe's path) is bound with
   * `attr.setPointer`, so it is off-heap and recorded as a region.
   *
   * @returns the new event's fd (closed with {@linkcode SyscallBackend.close}), or `-errno`.
   */
  perfEventOpen(
    attr: Attr<PerfEventField>,
    pid: number,
    cpu: number,
    groupFd: number,
    flags: number,
  ): number;
  /**
   * `ioctl(fd, request, arg)` with an integer argument (`PERF_EVENT_IOC_ENABLE`,
   * `PERF_EVENT_IOC_SET_BPF` with a program fd).
   *
   * @returns the kernel's result (0 for those), or `-errno`.
   */
  ioctl(fd: number, request: number, arg: number): number;
  /**
   * `mmap(NULL, length, prot, MAP_SHARED, fd, offset)`: a BPF map made with
   * `BPF_F_MMAPABLE`, a ring buffer's pages, a perf event's ring.
   *
   * @returns the mapping, or `-errno`.
   * @throws {RangeError} for a length that is not positive or an offset that is not page-aligned.
   */
  mmap(fd: number, length: number, prot: MapProtection, offset: number): MappedRegion | number;
  /** `sysconf(_SC_PAGESIZE)`: the unit of mmap offsets and ring sizes. */
  readonly pageSize: number;
  /**
   * `epoll_create1(EPOLL_CLOEXEC)`.
   *
   * @returns the epoll fd (closed with {@linkcode SyscallBackend.close}), or `-errno`.
   */
  epollCreate(): number;
  /**
   * `epoll_ctl(epfd, op, fd, {events, data: fd})`: a wait reports `fd` itself.
   *
   * @returns 0, or `-errno`.
   */
  epollCtl(epfd: number, op: EpollOp, fd: number, events: number): number;
  /**
   * `epoll_wait(epfd, ..., maxEvents, timeoutMs)`, blocking this thread up
   * to `timeoutMs` (-1: until an fd is ready).
   *
   * @returns the ready fds (`[]` on timeout), or `-errno` (`-EINTR` included).
   */
  epollWait(epfd: number, maxEvents: number, timeoutMs: number): EpollResult;
  /**
   * {@linkcode KernelPrimitives.epollWait} without blocking the event loop:
   * `epoll_wait` runs on another thread (Deno: a `nonblocking` symbol; Bun,
   * whose FFI has none: a Worker, see `bun_epoll_worker.ts`). A wake-up
   * reaches the awaiting code in about 80 µs (Deno) and 50-110 µs (Bun) at
   * the median on this 2-core machine. A pending wait keeps the process
   * alive, as a timer does, until it answers: loops that must end wait with
   * a finite timeout.
   */
  epollWaitAsync(epfd: number, maxEvents: number, timeoutMs: number): Promise<EpollResult>;
}

/** The arguments of {@linkcode KernelPrimitives.perfEventOpen}, for backends that pass them on. */
export type PerfEventOpenArgs = Parameters<KernelPrimitives["perfEventOpen"]>;

/**
 * A way to issue `bpf()` and the libc calls bpfmap needs beside it, the
 * {@linkcode KernelPrimitives} included: a stand-in that changes a few calls
 * starts from {@linkcode forwardingBackend}, which passes the rest on.
 */
export interface SyscallBackend extends AddressSpace, KernelPrimitives {
  /** Which runtime's FFI this is: `"deno"`, `"bun"`, or a stand-in's name. */
  readonly runtime: string;
  /**
   * Issues `bpf(attr.command.number, attr, attr.command.size)`.
   *
   * @returns the kernel's non-negative result, or `-errno` on failure; errno
   * is read from libc's thread-local `errno` immediately after the call.
   */
  bpf(attr: Attr): number;
  /** `close(fd)`: 0, or `-errno`. */
  close(fd: number): number;
  /** Reads a whole small text file (`/sys`, `/proc`) through libc, with no runtime permission. */
  readTextFile(path: string): string;
  /**
   * The kernel's `/proc/self/fdinfo/FD` of a map, as `key -> value`
   * (`memlock`, `frozen`, `map_type`, ...).
   */
  fdInfo(fd: number): Record<string, string>;
}

const PRIMITIVES: readonly (keyof KernelPrimitives)[] = [
  "readFile",
  "perfEventOpen",
  "ioctl",
  "mmap",
  "pageSize",
  "epollCreate",
  "epollCtl",
  "epollWait",
  "epollWaitAsync",
];

/**
 * `backend` as {@linkcode KernelPrimitives}, or an `Error` naming what a
 * stand-in lacks (before any syscall). The type requires them all; this is
 * for what the type does not see: a stand-in written in JavaScript, or one
 * copied by spreading a backend, which leaves its getters (`pageSize`)
 * behind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { primitivesOf, type SyscallBackend } from "./backend.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * const backend = liveKernel().backend;
 * assert.equal(primitivesOf(backend).pageSize, 4096); // x86_64
 * const { mmap: _, ...withoutMmap } = backend;
 * assert.throws(() => primitivesOf(withoutMmap as SyscallBackend), {
 *   message: "bpfmap: this deno backend has no mmap (a stand-in that does not forward it)",
 * });
 * ```
 */
export function primitivesOf(backend: SyscallBackend): KernelPrimitives {
  for (const name of PRIMITIVES) {
    // `in` for pageSize: a recorder's getter notes each read, and this is none.
    if (name === "pageSize" ? !(name in backend) : typeof backend[name] !== "function") {
      throw new Error(
        `bpfmap: this ${backend.runtime} backend has no ${name} (a stand-in that does not forward it)`,
      );
    }
  }
  return backend as KernelPrimitives;
}

/**
 * A backend that passes every call to `target()` (asked at each call, so a
 * live backend can be opened on first use): what a stand-in that changes a
 * few calls starts from, so that it forwards the calls it does not change,
 * those added later included. Override with `Object.assign`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forwardingBackend, primitivesOf } from "./backend.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * const live = liveKernel().backend;
 * let closes = 0;
 * const counting = Object.assign(forwardingBackend(() => live), {
 *   close: (fd: number) => (closes++, live.close(fd)),
 * });
 * assert.equal(counting.close(-1), -9); // EBADF, through the live backend
 * assert.equal(closes, 1);
 * assert.equal(primitivesOf(counting).pageSize, live.pageSize); // the rest forwarded
 * ```
 */
export function forwardingBackend(target: () => SyscallBackend): SyscallBackend & KernelPrimitives {
  const p = () => primitivesOf(target());
  return {
    get runtime() {
      return target().runtime;
    },
    bpf: (attr) => target().bpf(attr),
    close: (fd) => target().close(fd),
    readTextFile: (path) => target().readTextFile(path),
    fdInfo: (fd) => target().fdInfo(fd),
    baseAddress: (buffer) => target().baseAddress(buffer),
    get pageSize() {
      return p().pageSize;
    },
    readFile: (path) => p().readFile(path),
    perfEventOpen: (...args) => p().perfEventOpen(...args),
    ioctl: (fd, request, arg) => p().ioctl(fd, request, arg),
    mmap: (fd, length, prot, offset) => p().mmap(fd, length, prot, offset),
    epollCreate: () => p().epollCreate(),
    epollCtl: (epfd, op, fd, events) => p().epollCtl(epfd, op, fd, events),
    epollWait: (epfd, maxEvents, timeoutMs) => p().epollWait(epfd, maxEvents, timeoutMs),
    epollWaitAsync: (epfd, maxEvents, timeoutMs) => p().epollWaitAsync(epfd, maxEvents, timeoutMs),
  };
}

/**
 * Parses the `key:\tvalue` lines of an fdinfo file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFdInfo } from "./backend.ts";
 * assert.deepEqual(parseFdInfo("map_type:\t1\nmemlock:\t1200\nfrozen:\t0\n"), {
 *   map_type: "1",
 *   memlock: "1200",
 *   frozen: "0",
 * });
 * ```
 */
export function parseFdInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}
