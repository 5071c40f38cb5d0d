/**
 * epoll as bpfmap's backends expose it: interest is one fd with an event
 * mask, and a wait reports which fds were ready. The u64 `data` of each
 * `struct epoll_event` always carries the fd itself, so what a wait returns
 * names fds, which a transcript can rename like any other.
 *
 * @module
 */

/** `EPOLLIN`: readable (a perf or ring buffer has data, an eventfd a count). */
export const EPOLLIN = 0x001;
/** `EPOLLOUT`: writable (a user ring buffer has room). */
export const EPOLLOUT = 0x004;
/** `EPOLLERR`. */
export const EPOLLERR = 0x008;
/** `EPOLLHUP`. */
export const EPOLLHUP = 0x010;
/**
 * `EPOLLET`: edge-triggered, a readiness reported once per change, not for
 * as long as it lasts. Its bit is the sign bit of an i32: `EPOLLOUT | EPOLLET`
 * is negative, so a mask with it is passed through `>>> 0`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EPOLLET, EPOLLOUT } from "./epoll.ts";
 * assert.equal(EPOLLOUT | EPOLLET, -2147483644); // what `|` makes of it
 * assert.equal((EPOLLOUT | EPOLLET) >>> 0, 0x80000004); // the mask epoll_ctl takes
 * ```
 */
export const EPOLLET = 0x80000000;
/** `EPOLL_CTL_ADD`. */
export const EPOLL_CTL_ADD = 1;
/** `EPOLL_CTL_DEL`. */
export const EPOLL_CTL_DEL = 2;
/** `EPOLL_CLOEXEC` (`O_CLOEXEC`), the flag of `epoll_create1`. */
export const EPOLL_CLOEXEC = 0o2000000;

/** One ready fd of an epoll wait. */
export interface EpollReady {
  /** The fd registered with `epollCtl`. */
  readonly fd: number;
  /** The `EPOLL*` bits that were ready. */
  readonly events: number;
}

/** What an epoll wait returns: the ready fds (empty on timeout), or `-errno`. */
export type EpollResult = EpollReady[] | number;

/** The `epollCtl` operations. */
export type EpollOp = "add" | "del";

/**
 * The `op` argument of `epoll_ctl`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { epollOpNumber } from "./epoll.ts";
 * assert.equal(epollOpNumber("add"), 1);
 * assert.equal(epollOpNumber("del"), 2);
 * ```
 */
export function epollOpNumber(op: EpollOp): number {
  return op === "add" ? EPOLL_CTL_ADD : EPOLL_CTL_DEL;
}

/**
 * Writes one `struct epoll_event` (`events`, then `data` = `fd`) at the start of `into`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeEpollEvent } from "./epoll.ts";
 * const event = new Uint8Array(12);
 * encodeEpollEvent(event, 12, 1, 7);
 * assert.deepEqual([...event], [1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]); // x86_64: packed
 * ```
 */
export function encodeEpollEvent(
  into: Uint8Array,
  eventSize: 12 | 16,
  events: number,
  fd: number,
): void {
  const view = new DataView(into.buffer, into.byteOffset, eventSize);
  view.setUint32(0, events, true);
  view.setBigUint64(eventSize - 8, BigInt(fd), true);
}

/**
 * Reads the first `count` events a wait wrote into `from`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEpollEvents, encodeEpollEvent } from "./epoll.ts";
 * const events = new Uint8Array(32);
 * encodeEpollEvent(events.subarray(16), 16, 1, 9);
 * assert.deepEqual(decodeEpollEvents(events, 16, 2), [{ fd: 0, events: 0 }, { fd: 9, events: 1 }]);
 * ```
 */
export function decodeEpollEvents(
  from: Uint8Array,
  eventSize: 12 | 16,
  count: number,
): EpollReady[] {
  const view = new DataView(from.buffer, from.byteOffset, from.byteLength);
  const ready: EpollReady[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * eventSize;
    ready.push({
      fd: Number(view.getBigUint64(at + eventSize - 8, true)),
      events: view.getUint32(at, true),
    });
  }
  return ready;
}

/**
 * Checks a wait's arguments before any syscall.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkEpollWait } from "./epoll.ts";
 * checkEpollWait(8, -1);
 * assert.throws(() => checkEpollWait(0, 0), { name: "RangeError", message: /maxEvents/ });
 * assert.throws(() => checkEpollWait(1, 1.5), { name: "RangeError", message: /timeoutMs/ });
 * ```
 */
export function checkEpollWait(maxEvents: number, timeoutMs: number): void {
  if (!Number.isInteger(maxEvents) || maxEvents < 1 || maxEvents > 1024) {
    throw new RangeError(`epoll wait: maxEvents must be an integer in 1..1024, got ${maxEvents}`);
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < -1 || timeoutMs > 0x7fff_ffff) {
    throw new RangeError(
      `epoll wait: timeoutMs must be -1 or a non-negative integer, got ${timeoutMs}`,
    );
  }
}

/**
 * An asynchronous wait made of non-blocking ones (timeout 0), for a runtime
 * whose FFI cannot block off the event loop (Bun): polls at once, then after
 * timers growing from 0 to `maxDelayMs` (so a busy source is seen at once
 * and an idle one costs a few wake-ups a second), until something is ready,
 * the wait fails, or `timeoutMs` (-1: never) has passed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pollUntilReady } from "./epoll.ts";
 * let polls = 0;
 * const ready = await pollUntilReady(() => ++polls < 3 ? [] : [{ fd: 5, events: 1 }], -1);
 * assert.deepEqual(ready, [{ fd: 5, events: 1 }]);
 * assert.deepEqual(await pollUntilReady(() => [], 5), []); // timed out
 * ```
 */
export async function pollUntilReady(
  poll: () => EpollResult,
  timeoutMs: number,
  maxDelayMs = 4,
): Promise<EpollResult> {
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
  let delay = 0;
  for (;;) {
    const result = poll();
    if (typeof result === "number" || result.length > 0) return result;
    const left = deadline - performance.now();
    if (left <= 0) return result;
    await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
    delay = Math.min(maxDelayMs, delay === 0 ? 0.25 : delay * 2);
  }
}
