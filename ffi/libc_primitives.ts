/**
 * The {@linkcode KernelPrimitives} both FFI backends build from libc's raw
 * calls: argument checks, errno, epoll event packing and mapping lifetimes
 * are written here once; a backend brings only its runtime's bindings.
 *
 * @module
 */

import type { KernelPrimitives } from "./backend.ts";
import {
  decodeEpollEvents,
  encodeEpollEvent,
  EPOLL_CLOEXEC,
  type EpollOp,
  epollOpNumber,
  type EpollResult,
  pollUntilReady,
} from "./epoll.ts";
import { type FileCalls, readWholeBytes } from "./libc.ts";
import { offHeapBytes } from "./memory.ts";
import {
  liveRegion,
  MAP_SHARED,
  type MappedRegion,
  type MapProtection,
  protFlags,
} from "./mmap.ts";
import { checkArgs } from "./primitive_args.ts";

/** A runtime's raw bindings: each returns what the C function does (-1 and errno on failure). */
export interface LibcCalls extends FileCalls {
  /** `syscall(__NR_perf_event_open, attr, ...)`, the attr passed as this runtime passes buffers. */
  perfEventOpen: KernelPrimitives["perfEventOpen"];
  ioctl: KernelPrimitives["ioctl"];
  /**
   * `mmap(NULL, length, prot, flags, fd, offset)`: the mapping's memory as
   * an `ArrayBuffer` and its `munmap`, or `undefined` for `MAP_FAILED`.
   */
  mmap(
    fd: number,
    length: number,
    prot: number,
    flags: number,
    offset: number,
  ): { buffer: ArrayBuffer; munmap(): number } | undefined;
  epollCreate1(flags: number): number;
  epollCtl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  epollWait(epfd: number, events: Uint8Array, maxEvents: number, timeoutMs: number): number;
  /**
   * `epoll_wait` on another thread, where the runtime can (Deno's `nonblocking`);
   * its errno is that thread's and is not read.
   */
  epollWaitOffThread?: (
    epfd: number,
    events: Uint8Array,
    maxEvents: number,
    timeoutMs: number,
  ) => Promise<number>;
  /** `sysconf(_SC_PAGESIZE)`. */
  readonly pageSize: number;
}

/**
 * The primitives over `calls`, with `struct epoll_event` of `eventSize` bytes (see `SyscallAbi`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "./kernel.ts";
 * import { libcPrimitives } from "./libc_primitives.ts";
 *
 * const backend = liveKernel().backend; // built with libcPrimitives
 * assert.equal(backend.ioctl!(-1, 0x2400, 0), -9); // EBADF
 * const refused = () => libcPrimitives({} as never, 12).mmap(3, 4096, "read", 1);
 * assert.throws(refused, RangeError); // checked before any call
 * ```
 */
export function libcPrimitives(calls: LibcCalls, eventSize: 12 | 16): KernelPrimitives {
  const orErrno = (result: number) => result === -1 ? -calls.errno() : result;
  const pageSize = calls.pageSize;
  const ctlEvent = offHeapBytes(eventSize);
  const wait = (epfd: number, maxEvents: number, timeoutMs: number): EpollResult => {
    checkArgs.epollWait(epfd, maxEvents, timeoutMs);
    const events = offHeapBytes(maxEvents * eventSize);
    const count = calls.epollWait(epfd, events, maxEvents, timeoutMs);
    return count < 0 ? -calls.errno() : decodeEpollEvents(events, eventSize, count);
  };
  return {
    pageSize,
    readFile(path) {
      checkArgs.readFile(path);
      return readWholeBytes(path, calls);
    },
    perfEventOpen(...args) {
      checkArgs.perfEventOpen(...args);
      // attr.pointees keeps config1's string referenced through the call.
      return orErrno(calls.perfEventOpen(...args));
    },
    ioctl(fd, request, arg) {
      checkArgs.ioctl(fd, request, arg);
      return orErrno(calls.ioctl(fd, request, arg));
    },
    mmap(fd: number, length: number, prot: MapProtection, offset: number): MappedRegion | number {
      checkArgs.mmap(fd, length, prot, offset, pageSize);
      const mapping = calls.mmap(fd, length, protFlags(prot), MAP_SHARED, offset);
      if (mapping === undefined) return -calls.errno();
      return liveRegion(mapping.buffer, () => orErrno(mapping.munmap()));
    },
    epollCreate: () => orErrno(calls.epollCreate1(EPOLL_CLOEXEC)),
    epollCtl(epfd: number, op: EpollOp, fd: number, events: number): number {
      checkArgs.epollCtl(epfd, op, fd, events);
      encodeEpollEvent(ctlEvent, eventSize, events, fd);
      return orErrno(calls.epollCtl(epfd, epollOpNumber(op), fd, ctlEvent));
    },
    epollWait: wait,
    async epollWaitAsync(epfd: number, maxEvents: number, timeoutMs: number) {
      checkArgs.epollWait(epfd, maxEvents, timeoutMs);
      const offThread = calls.epollWaitOffThread;
      if (offThread === undefined) {
        // No blocking call off the event loop (Bun): waits of timeout 0 on timers.
        return pollUntilReady(() => wait(epfd, maxEvents, 0), timeoutMs);
      }
      // Its own buffer: the wait writes it on another thread while this one runs on.
      const events = offHeapBytes(maxEvents * eventSize);
      const count = await offThread(epfd, events, maxEvents, timeoutMs);
      if (count >= 0) return decodeEpollEvents(events, eventSize, count);
      // errno was the other thread's: ask again here, without waiting. A bad fd or argument
      // fails the same way; an interrupted wait answers with what is ready now.
      return wait(epfd, maxEvents, 0);
    },
  };
}
