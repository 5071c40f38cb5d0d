/**
 * The contract every way of reaching the kernel fulfils: the Deno and Bun
 * FFI backends now, the replay player later. Everything above it (maps,
 * systems) is written against this interface only.
 *
 * @module
 */

import type { Attr } from "./attr.ts";

/** A way to issue `bpf()` and the few libc calls bpfmap needs beside it. */
export interface SyscallBackend {
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
  /**
   * The address of a buffer's first byte. The caller makes sure the buffer is
   * off the engine's moving heap (see {@linkcode addressOf}).
   */
  baseAddress(buffer: ArrayBufferLike): number;
  /** Reads a whole small text file (`/sys`, `/proc`) through libc, with no runtime permission. */
  readTextFile(path: string): string;
  /**
   * The kernel's `/proc/self/fdinfo/FD` of a map, as `key -> value`
   * (`memlock`, `frozen`, `map_type`, ...).
   */
  fdInfo(fd: number): Record<string, string>;
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

/** Base addresses by buffer, per backend: a stand-in's addresses must never reach a live one. */
const baseAddresses = new WeakMap<SyscallBackend, WeakMap<ArrayBufferLike, number>>();

/**
 * The address of `bytes[0]`, safe to hand to the kernel while `bytes` stays
 * referenced.
 *
 * Reading `bytes.buffer` first is what makes it safe: V8 keeps typed arrays of
 * 64 bytes or less on its moving heap, and JavaScriptCore keeps small ones in
 * a "fast" form; asking for the buffer moves their bytes into a fixed
 * off-heap backing store for good, whose address never changes afterwards.
 * Addresses are cached per backend and `ArrayBuffer`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressOf } from "./backend.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * const bytes = new Uint8Array(16);
 * const backend = liveKernel().backend;
 * assert.equal(addressOf(backend, bytes.subarray(8)), addressOf(backend, bytes) + 8);
 * ```
 */
export function addressOf(backend: SyscallBackend, bytes: Uint8Array): number {
  const buffer = bytes.buffer;
  let cache = baseAddresses.get(backend);
  if (cache === undefined) {
    cache = new WeakMap();
    baseAddresses.set(backend, cache);
  }
  let base = cache.get(buffer);
  if (base === undefined) {
    base = backend.baseAddress(buffer);
    cache.set(buffer, base);
  }
  return base + bytes.byteOffset;
}

/**
 * A zero-filled buffer that owns an off-heap `ArrayBuffer`: what every buffer
 * bpfmap itself hands the kernel is made with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offHeapBytes } from "./backend.ts";
 *
 * const attr = offHeapBytes(56);
 * assert.deepEqual(attr, new Uint8Array(56)); // zero-filled
 * assert.equal(attr.buffer.byteLength, 56); // its own buffer, shared with nothing
 * ```
 */
export function offHeapBytes(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

const encoder = new TextEncoder();

/**
 * A NUL-terminated UTF-8 copy of `text` in an off-heap buffer, for `const char *` arguments.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cString } from "./backend.ts";
 * assert.deepEqual(cString("/sys/fs/bpf/é"), new TextEncoder().encode("/sys/fs/bpf/é\0"));
 * ```
 */
export function cString(text: string): Uint8Array {
  const encoded = encoder.encode(text);
  const bytes = offHeapBytes(encoded.byteLength + 1);
  bytes.set(encoded);
  return bytes;
}
