/**
 * The contract every way of reaching the kernel fulfils: the Deno and Bun
 * FFI backends now, the replay player later. Everything above it (maps,
 * systems) is written against this interface only.
 *
 * @module
 */

import type { Attr } from "./attr.ts";
import type { AddressSpace } from "./memory.ts";

/** A way to issue `bpf()` and the few libc calls bpfmap needs beside it. */
export interface SyscallBackend extends AddressSpace {
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
