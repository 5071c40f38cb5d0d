/**
 * The thread behind Bun's `epollWaitAsync`: bun:ffi has no non-blocking
 * calls, so a Worker makes the blocking `epoll_wait` on its own thread and
 * posts back how many events it found, with their bytes. One wait at a time
 * per worker; the backend keeps a pool (see `bun_backend.ts`). Measured here
 * (Bun 1.4, 2 cores): an eventfd's wake-up reaches the awaiting code in
 * 50-110 µs at the median, where waits of timeout 0 on timers take 1.3-1.5 ms.
 *
 * @module
 */

import { loadLibc } from "./libc.ts";

/** What the backend asks: one `epoll_wait`, into a buffer of `size` bytes. */
export interface WaitRequest {
  epfd: number;
  maxEvents: number;
  timeoutMs: number;
  size: number;
}

/** What the worker answers: `epoll_wait`'s result and the events' bytes. */
export interface WaitAnswer {
  count: number;
  events: ArrayBuffer;
}

interface WorkerScope {
  onmessage: ((event: { data: WaitRequest }) => void) | null;
  postMessage(message: WaitAnswer, transfer: ArrayBuffer[]): void;
}

interface BunFfi {
  dlopen(path: string, symbols: typeof SYMBOLS): { symbols: Symbols };
}

interface Symbols {
  epoll_wait(epfd: number, events: Uint8Array, maxEvents: number, timeoutMs: number): number;
}

const SYMBOLS = { epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" } } as const;

const scope = globalThis as unknown as WorkerScope;
// Imported by Bun's Worker only: elsewhere (a type check, a doc test) this module does nothing.
if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" && "onmessage" in scope) {
  const ffi = (import.meta as unknown as { require(id: string): BunFfi }).require("bun:ffi");
  const libc = loadLibc((name) => ffi.dlopen(name, SYMBOLS).symbols);
  scope.onmessage = ({ data }) => {
    const events = new Uint8Array(new ArrayBuffer(data.size));
    const count = libc.epoll_wait(data.epfd, events, data.maxEvents, data.timeoutMs);
    // The bytes move to the backend's thread; this one allocates anew next time.
    scope.postMessage({ count, events: events.buffer }, [events.buffer]);
  };
}
