/**
 * The live backend on `bun:ffi`: libc's `syscall()` with `SYS_bpf`.
 *
 * `bun:ffi` is loaded with `import.meta.require` inside
 * {@linkcode openBunBackend}, synchronously and only when Bun is the runtime:
 * Deno never reaches that line. errno is read as in the Deno backend: the
 * address from `__errno_location()` once, the int at it right after a call
 * that returned -1.
 *
 * @module
 */

import type { Attr } from "./attr.ts";
import { parseFdInfo, type SyscallBackend } from "./backend.ts";
import { loadLibc, readWholeFile } from "./libc.ts";

/** The slice of `bun:ffi` this backend uses. */
interface BunFfi {
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: LibcSymbols };
  ptr(value: ArrayBufferLike | ArrayBufferView): number;
  read: { i32(address: number, offset: number): number };
}

interface LibcSymbols {
  syscall(number: number, command: number, attr: number, size: number): number;
  __errno_location(): number;
  close(fd: number): number;
  open(path: Uint8Array, flags: number): number;
  read(fd: number, buffer: Uint8Array, count: number): number;
}

const LIBC_SYMBOLS = {
  // See deno_backend.ts: 64-bit arguments, the `long` result read as i32.
  syscall: { args: ["i64", "i64", "ptr", "i64"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  close: { args: ["i32"], returns: "i32" },
  open: { args: ["ptr", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64_fast" },
} as const;

/**
 * Opens the Bun backend; loads libc once.
 *
 * @example
 * ```ts ignore
 * // Bun only (doc tests run under Deno); ffi/live.ts's example runs this backend under Bun.
 * import assert from "node:assert/strict";
 * import { openBunBackend } from "./bun_backend.ts";
 * const backend = openBunBackend(321); // x86_64; see arch.ts for the others
 * assert.equal(backend.runtime, "bun");
 * assert.match(backend.readTextFile("/sys/devices/system/cpu/possible"), /^0(-\d+)?\n$/);
 * ```
 */
export function openBunBackend(syscallNumber: number): SyscallBackend {
  const ffi = (import.meta as unknown as { require(id: string): BunFfi }).require("bun:ffi");
  const libc = loadLibc((name) => ffi.dlopen(name, LIBC_SYMBOLS).symbols);
  const errnoAddress = libc.__errno_location();
  const readErrno = () => ffi.read.i32(errnoAddress, 0);

  return {
    runtime: "bun",
    bpf(attr: Attr): number {
      const result = libc.syscall(
        syscallNumber,
        attr.command.number,
        attr.address,
        attr.command.size,
      );
      return result === -1 ? -readErrno() : result;
    },
    close(fd: number): number {
      return libc.close(fd) === -1 ? -readErrno() : 0;
    },
    baseAddress(buffer: ArrayBufferLike): number {
      if (buffer.byteLength === 0) return 0;
      return ffi.ptr(buffer);
    },
    fdInfo(fd: number): Record<string, string> {
      return parseFdInfo(this.readTextFile(`/proc/self/fdinfo/${fd}`));
    },
    readTextFile(path: string): string {
      return readWholeFile(path, {
        open: libc.open,
        read: (fd, chunk) => libc.read(fd, chunk, chunk.byteLength),
        close: libc.close,
        errno: readErrno,
      });
    },
  };
}
