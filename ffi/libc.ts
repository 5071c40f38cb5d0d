/**
 * What both FFI backends share about the C library: its file names, how to
 * load the first that exists, and whole-file reads over raw `open`/`read`.
 *
 * @module
 */

import { errnoName } from "./errno.ts";
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
 * Reads a whole file through libc into one buffer of its own, in chunks
 * until `read` returns 0 (a sysfs file's size is not known beforehand), so
 * bpfmap needs no runtime permission beyond FFI. A failure is an `Error`
 * naming the path and errno, with `code` and `errno` properties.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readWholeBytes } from "./libc.ts";
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
 * assert.deepEqual(readWholeBytes("/proc/self/comm", calls), new TextEncoder().encode("deno\n"));
 * assert.throws(() => readWholeBytes("/no/such/file", calls), {
 *   message: "bpfmap: cannot open /no/such/file: ENOENT (errno 2)",
 *   code: "ENOENT",
 * });
 * libc.close();
 * ```
 */
export function readWholeBytes(path: string, calls: FileCalls): Uint8Array {
  const fd = calls.open(cString(path), O_RDONLY_CLOEXEC);
  if (fd < 0) throw fileError("open", path, calls.errno());
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    // One off-heap chunk, reused: what each read returns is copied out.
    const chunk = offHeapBytes(CHUNK_SIZE);
    for (;;) {
      const n = calls.read(fd, chunk);
      if (n < 0) throw fileError("read", path, calls.errno());
      if (n === 0) break;
      chunks.push(chunk.slice(0, n));
      total += n;
    }
  } finally {
    calls.close(fd);
  }
  if (chunks.length === 1) return chunks[0]!;
  const whole = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return whole;
}

/** How many bytes {@linkcode readWholeBytes} asks for per `read`. */
const CHUNK_SIZE = 64 * 1024;

/**
 * The error {@linkcode readWholeBytes} throws when `open` or `read` fails:
 * `code` (`"ENOENT"`), `errno` and `syscall` say which and why. A player
 * throws the same for a recorded failure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileError } from "./libc.ts";
 * const error = fileError("read", "/sys/x", 5);
 * assert.equal(error.message, "bpfmap: cannot read /sys/x: EIO (errno 5)");
 * assert.deepEqual([error.code, error.errno, error.syscall], ["EIO", 5, "read"]);
 * ```
 */
export function fileError(
  syscall: "open" | "read",
  path: string,
  errno: number,
): Error & { code: string; errno: number; syscall: "open" | "read" } {
  const code = errnoName(errno);
  const message = `bpfmap: cannot ${syscall} ${path}: ${code} (errno ${errno})`;
  return Object.assign(new Error(message), { code, errno, syscall });
}

/**
 * A whole small text file (`/sys`, `/proc`), read as {@linkcode readWholeBytes} does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readWholeFile } from "./libc.ts";
 * const calls = {
 *   open: () => 3,
 *   read: (_fd: number, chunk: Uint8Array) => 0,
 *   close: () => 0,
 *   errno: () => 0,
 * };
 * assert.equal(readWholeFile("/empty", calls), "");
 * ```
 */
export function readWholeFile(path: string, calls: FileCalls): string {
  return new TextDecoder().decode(readWholeBytes(path, calls));
}
