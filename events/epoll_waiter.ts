/**
 * The epoll fd a ring reader waits on: made on first use, waited on from the
 * thread (blocking) or without blocking the event loop, and closed once no
 * wait holds it.
 *
 * @module
 */

import type { KernelPrimitives } from "../ffi/backend.ts";
import { EPOLLET, EPOLLIN, EPOLLOUT, type EpollReady } from "../ffi/epoll.ts";
import { EINTR } from "../ffi/errno.ts";
import { BpfError } from "../ffi/errors.ts";
import type { Kernel } from "../ffi/kernel.ts";

/** An epoll fd watching some fds (for `EPOLLIN` by default: a ring with data to read). */
export class EpollWaiter {
  readonly #kernel: Kernel;
  readonly #primitives: KernelPrimitives;
  #fd = -1;
  #waits = 0;
  #closed = false;

  constructor(kernel: Kernel, primitives: KernelPrimitives) {
    this.#kernel = kernel;
    this.#primitives = primitives;
  }

  /**
   * Watches `fd` for `events` (the epoll fd is made on the first call).
   *
   * @throws {BpfError} (`op` `"epoll_create1"` or `"epoll_ctl"`) when the kernel refuses.
   */
  add(fd: number, events: number = EPOLLIN): void {
    if (this.#fd < 0) {
      const epollFd = this.#primitives.epollCreate();
      if (epollFd < 0) throw new BpfError("epoll_create1", -epollFd);
      this.#fd = epollFd;
    }
    const result = this.#primitives.epollCtl(this.#fd, "add", fd, events);
    if (result < 0) throw new BpfError("epoll_ctl", -result, `fd ${fd}`);
  }

  /**
   * Watches `fd` for room to write, edge-triggered (`EPOLLOUT | EPOLLET`): a
   * user ring buffer reports any room at all as writable, so a level-triggered
   * wait would return at once for as long as any byte is free.
   */
  addWritable(fd: number): void {
    this.add(fd, (EPOLLOUT | EPOLLET) >>> 0); // | makes an i32: the top bit is negative
  }

  /**
   * Waits, blocking the thread, up to `timeoutMs`; the ready fds (none after a timeout).
   *
   * @throws {BpfError} (`op` `"epoll_wait"`) when the wait fails, EINTR (a signal) included, as
   * libbpf's `ring_buffer__poll` returns it; {@linkcode EpollWaiter.waitAsync} answers none then,
   * as a cut-short wait (`bpfmap map watch`'s Ctrl-C) is how an async reader is stopped.
   */
  wait(maxEvents: number, timeoutMs: number): EpollReady[] {
    return ready(this.#primitives.epollWait(this.#fd, maxEvents, timeoutMs));
  }

  /** {@linkcode EpollWaiter.wait}, not blocking the event loop; none if interrupted or closed. */
  async waitAsync(maxEvents: number, timeoutMs: number): Promise<EpollReady[]> {
    this.#waits++;
    let result;
    try {
      result = await this.#primitives.epollWaitAsync(this.#fd, maxEvents, timeoutMs);
    } finally {
      // A close during the wait left the fd to the last wait in flight: this one, maybe.
      if (--this.#waits === 0 && this.#closed) this.#closeFd();
    }
    return this.#closed || result === -EINTR ? [] : ready(result);
  }

  /** Closes the epoll fd, or leaves it to the wait in flight (on another thread) that holds it. */
  close(): void {
    this.#closed = true;
    if (this.#waits === 0) this.#closeFd();
  }

  #closeFd(): void {
    if (this.#fd < 0) return;
    this.#kernel.close(this.#fd);
    this.#fd = -1;
  }
}

function ready(result: EpollReady[] | number): EpollReady[] {
  if (typeof result === "number") throw new BpfError("epoll_wait", -result);
  return result;
}
