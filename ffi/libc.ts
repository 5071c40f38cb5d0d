/**
 * What both FFI backends share about the C library: its file names, how to
 * load the first that exists, and whole-file reads over raw `open`/`read`.
 *
 * @module
 */

import { cString, offHeapBytes } from "./memory.ts";

/**
 * Candidate file names of the C library: glibc, then musl.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LIBC_NAMES } from "./libc.ts";
 * assert.equal(LIBC_NAMES[0], "libc.so.6"); // glibc first: loadLibc tries them in order
 * ```
 */
export const LIBC_NAMES: readonly string[] = ["libc.so.6", "libc.so", "libc.musl-x86_64.so.1"];

/**
 * `O_RDONLY | O_CLOEXEC`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { constants } from "node:fs";
 * import { O_RDONLY_CLOEXEC } from "./libc.ts";
 * assert.equal(O_RDONLY_CLOEXEC, constants.O_RDONLY | 0o2000000); // O_CLOEXEC: x86, arm, riscv
 * ```
 */
export const O_RDONLY_CLOEXEC = 0o2000000;

/**
 * Opens the first C library in {@linkcode LIBC_NAMES} that `dlopen` accepts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { loadLibc } from "./libc.ts";
 *
 * const symbols = { getpid: { parameters: [], result: "i32" } } as const;
 * const libc = loadLibc((name) => Deno.dlopen(name, symbols));
 * assert.equal(libc.symbols.getpid(), process.pid);
 * libc.close();
 * assert.throws(() => loadLibc(() => { throw new Error("nope"); }), {
 *   message: "bpfmap: cannot load the C library "
 *     + "(libc.so.6: nope; libc.so: nope; libc.musl-x86_64.so.1: nope)",
 * });
 * ```
 */
export function loadLibc<T>(dlopen: (name: string) => T): T {
  const failures: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      return dlopen(name);
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new Error(`bpfmap: cannot load the C library (${failures.join("; ")})`);
}

/** The raw libc calls {@linkcode readWholeFile} needs, each returning -1 on failure. */
export interface FileCalls {
  open(path: Uint8Array, flags: number): number;
  read(fd: number, chunk: Uint8Array): number;
  close(fd: number): number;
  errno(): number;
}

/**
 * Reads a small file (`/sys`, `/proc`) through libc, so bpfmap needs no
 * runtime permission beyond FFI. Errors name the path and errno.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readWholeFile } from "./libc.ts";
 *
 * const libc = Deno.dlopen("libc.so.6", {
 *   open: { parameters: ["buffer", "i32"], result: "i32" },
 *   read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
 *   close: { parameters: ["i32"], result: "i32" },
 *   __errno_location: { parameters: [], result: "pointer" },
 * });
 * const { open, read, close, __errno_location } = libc.symbols;
 * const calls = {
 *   open,
 *   read: (fd: number, chunk: Uint8Array) => Number(read(fd, chunk, BigInt(chunk.byteLength))),
 *   close,
 *   errno: () => new Deno.UnsafePointerView(__errno_location()!).getInt32(),
 * };
 * assert.equal(readWholeFile("/proc/self/comm", calls), "deno\n");
 * assert.throws(() => readWholeFile("/no/such/file", calls), {
 *   message: "bpfmap: cannot open /no/such/file (errno 2)", // ENOENT
 * });
 * libc.close();
 * ```
 */
export function readWholeFile(path: string, calls: FileCalls): string {
  const fd = calls.open(cString(path), O_RDONLY_CLOEXEC);
  if (fd < 0) throw new Error(`bpfmap: cannot open ${path} (errno ${calls.errno()})`);
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const chunk = offHeapBytes(4096);
      const n = calls.read(fd, chunk);
      if (n < 0) throw new Error(`bpfmap: cannot read ${path} (errno ${calls.errno()})`);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
    }
  } finally {
    calls.close(fd);
  }
  const whole = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(whole);
}
