/**
 * The live backend on `Deno.dlopen`: libc's `syscall()` with `SYS_bpf`.
 *
 * errno: libc's `__errno_location()` gives the address of this thread's
 * `errno` once; after a call that returned -1 we read the int at that
 * address straight away, before any other libc call can run on this thread.
 * A Web Worker is another thread and loads its own copy of this module.
 *
 * @module
 */

import type { Attr } from "./attr.ts";
import { parseFdInfo, type SyscallBackend } from "./backend.ts";
import { loadLibc, readWholeFile } from "./libc.ts";

/** The slice of Deno's FFI API this backend uses (typed here, so Bun's type check passes too). */
interface DenoFfi {
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: LibcSymbols };
  UnsafePointer: {
    of(value: ArrayBufferLike | ArrayBufferView): unknown;
    value(pointer: unknown): number | bigint;
  };
  UnsafePointerView: new(pointer: unknown) => { getInt32(offset?: number): number };
}

interface LibcSymbols {
  syscall(number: number, command: number, attr: Uint8Array, size: number): number;
  __errno_location(): unknown;
  close(fd: number): number;
  open(path: Uint8Array, flags: number): number;
  read(fd: number, buffer: Uint8Array, count: number): number | bigint;
}

const LIBC_SYMBOLS = {
  // syscall(long number, ...). The number, cmd and size go as i32: V8's fast
  // calls take i32 at C speed but convert i64 ~350 ns slower per call
  // (measured here). The kernel reads all three as 32-bit: the syscall number
  // is dispatched as an int, and SYSCALL_DEFINE3(bpf, int cmd, ..., unsigned
  // int size) casts its register arguments down (__SC_CAST), so the upper
  // halves of the registers never matter. The attr goes as a full pointer.
  // The result is `long`; bpf() results fit in its low 32 bits, read as i32.
  syscall: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
} as const;

/**
 * Opens the Deno backend. Needs `--allow-ffi`; loads libc once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDenoBackend } from "./deno_backend.ts";
 *
 * const backend = openDenoBackend(321); // x86_64; see arch.ts for the others
 * assert.match(backend.readTextFile("/sys/devices/system/cpu/possible"), /^\d/);
 * ```
 */
export function openDenoBackend(syscallNumber: number): SyscallBackend {
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const libc = loadLibc((name) => deno.dlopen(name, LIBC_SYMBOLS).symbols);
  const errnoView = new deno.UnsafePointerView(libc.__errno_location());
  const readErrno = () => errnoView.getInt32(0);

  return {
    runtime: "deno",
    bpf(attr: Attr): number {
      const result = libc.syscall(
        syscallNumber,
        attr.command.number,
        attr.bytes,
        attr.command.size,
      );
      return result === -1 ? -readErrno() : result;
    },
    close(fd: number): number {
      return libc.close(fd) === -1 ? -readErrno() : 0;
    },
    baseAddress(buffer: ArrayBufferLike): number {
      if (buffer.byteLength === 0) return 0;
      return Number(deno.UnsafePointer.value(deno.UnsafePointer.of(buffer)));
    },
    fdInfo(fd: number): Record<string, string> {
      return parseFdInfo(this.readTextFile(`/proc/self/fdinfo/${fd}`));
    },
    readTextFile(path: string): string {
      return readWholeFile(path, {
        open: libc.open,
        read: (fd, chunk) => Number(libc.read(fd, chunk, chunk.byteLength)),
        close: libc.close,
        errno: readErrno,
      });
    },
  };
}
