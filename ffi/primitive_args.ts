/**
 * The checks every backend makes of the kernel primitives' arguments before
 * any syscall (live, recording and replaying alike, so that bad input fails
 * the same way everywhere): a `TypeError` or `RangeError` naming the argument.
 *
 * @module
 */

import { Attr } from "./attr.ts";
import { checkEpollWait } from "./epoll.ts";
import { checkMmap } from "./mmap.ts";
import { PERF_EVENT_ATTR } from "./perf_event.ts";
import { checkInteger, describe } from "./validate.ts";

const INT_MIN = -0x8000_0000;
const INT_MAX = 0x7fff_ffff;

/** An `int` fd argument: any, a negative one included (the kernel answers `-EBADF`). */
function checkFd(value: unknown, argument: string): void {
  checkInteger(value, argument, INT_MIN, INT_MAX);
}

/**
 * Argument checks by primitive (`readFile`, `perfEventOpen`, `ioctl`, `mmap`, `epollCtl`,
 * `epollWait`); each throws before any syscall.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkArgs } from "./primitive_args.ts";
 * assert.throws(() => checkArgs.ioctl(3, -1, 0), { name: "RangeError", message: /request/ });
 * assert.throws(() => checkArgs.epollCtl(3, "mod" as "add", 4, 1), { name: "TypeError", message: /op/ });
 * assert.throws(() => checkArgs.readFile("/a\0b"), { name: "TypeError", message: /path/ });
 * checkArgs.mmap(-1, 4096, "read", 0, 4096); // a bad fd is the kernel's to refuse
 * ```
 */
export const checkArgs = Object.freeze({
  readFile(path: unknown): void {
    if (typeof path !== "string" || path === "" || path.includes("\0")) {
      throw new TypeError(
        `readFile: path must be a non-empty string without NUL, got ${describe(path)}`,
      );
    }
  },
  perfEventOpen(attr: unknown, pid: unknown, cpu: unknown, groupFd: unknown, flags: unknown): void {
    if (!(attr instanceof Attr) || attr.command !== PERF_EVENT_ATTR) {
      throw new TypeError(
        `perfEventOpen: attr must be a perf_event_attr (perfEventAttr()), got ${describe(attr)}`,
      );
    }
    checkInteger(pid, "perfEventOpen: pid", -1, INT_MAX);
    checkInteger(cpu, "perfEventOpen: cpu", -1, INT_MAX);
    checkFd(groupFd, "perfEventOpen: groupFd");
    checkInteger(flags, "perfEventOpen: flags");
  },
  ioctl(fd: unknown, request: unknown, arg: unknown): void {
    checkFd(fd, "ioctl: fd");
    checkInteger(request, "ioctl: request");
    checkInteger(arg, "ioctl: arg", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  },
  mmap(fd: unknown, length: number, prot: unknown, offset: number, pageSize: number): void {
    checkFd(fd, "mmap: fd");
    if (prot !== "read" && prot !== "readWrite") {
      throw new TypeError(`mmap: prot must be "read" or "readWrite", got ${describe(prot)}`);
    }
    checkMmap(length, offset, pageSize);
  },
  epollCtl(epfd: unknown, op: unknown, fd: unknown, events: unknown): void {
    checkFd(epfd, "epollCtl: epfd");
    if (op !== "add" && op !== "del") {
      throw new TypeError(`epollCtl: op must be "add" or "del", got ${describe(op)}`);
    }
    checkFd(fd, "epollCtl: fd");
    checkInteger(events, "epollCtl: events");
  },
  epollWait(epfd: unknown, maxEvents: number, timeoutMs: number): void {
    checkFd(epfd, "epollWait: epfd");
    checkEpollWait(maxEvents, timeoutMs);
  },
});
