/**
 * Buffered, synchronous output to a file descriptor, formatted straight into
 * one reused byte buffer: a dump of a million elements makes about a hundred
 * `write()` calls, allocates no strings per byte, and holds one megabyte.
 *
 * @module
 */

import { writeSync } from "node:fs";
import { errnoDescription, errnoNumber } from "../ffi/errno.ts";

/** The buffer's size: what one `write()` carries. */
const CHUNK = 1 << 20;

const encoder = new TextEncoder();
const DIGITS = "0123456789abcdef";
/** The two ASCII hex digits of each byte value. */
const HIGH = Uint8Array.from({ length: 256 }, (_, i) => DIGITS.charCodeAt(i >> 4));
const LOW = Uint8Array.from({ length: 256 }, (_, i) => DIGITS.charCodeAt(i & 15));

const QUOTE = 0x22;
const COMMA = 0x2c;
const SPACE = 0x20;
const NEWLINE = 0x0a;
const ZERO = 0x30;
const X = 0x78;

/**
 * A buffered writer on a file descriptor (1 for stdout, 2 for stderr).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { Output } from "./output.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "bpfmap-output-"));
 * const fd = openSync(join(dir, "out"), "w");
 * const out = new Output(fd);
 * out.write("bytes: ");
 * out.plainHex(new Uint8Array([1, 255]), 0, 2);
 * out.write("\n");
 * out.plainHex(Uint8Array.from({ length: 17 }, (_, i) => i), 0, 17);
 * out.write("\n");
 * out.jsonHex(new Uint8Array([10, 0]), 0, 2);
 * assert.equal(readFileSync(join(dir, "out"), "utf8"), ""); // nothing written before flush()
 * out.flush();
 * closeSync(fd);
 * assert.equal(
 *   readFileSync(join(dir, "out"), "utf8"),
 *   "bytes: 01 ff\n"
 *     + "00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f\n10\n"
 *     + '"0x0a","0x00"',
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export class Output {
  readonly fd: number;
  readonly #buffer = new Uint8Array(CHUNK);
  #used = 0;
  #failure: WriteError | undefined;

  constructor(fd: number) {
    this.fd = fd;
  }

  /**
   * The error the first failed `write()` threw, if one did. From then on the
   * output drops what it is given: the reader is gone or the disk is full, and
   * a second error (from a `finally` that flushes, say) would hide the first.
   */
  get failure(): WriteError | undefined {
    return this.#failure;
  }

  /** Adds text. */
  write(text: string): void {
    const length = text.length;
    if (length > CHUNK / 4) {
      this.flush();
      this.#writeAll(encoder.encode(text));
      return;
    }
    if (this.#used + length * 3 > CHUNK) this.flush();
    const buffer = this.#buffer;
    let used = this.#used;
    for (let i = 0; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) {
        // Not ASCII: let the encoder do the rest of the text.
        used += encoder.encodeInto(text.slice(i), buffer.subarray(used)).written;
        break;
      }
      buffer[used++] = code;
    }
    this.#used = used;
  }

  /** `bytes[start..end]` as JSON array members: `"0x0a","0x00"` (bpftool's print_hex_data_json). */
  jsonHex(bytes: Uint8Array, start: number, end: number): void {
    if (this.#used + (end - start) * 7 > CHUNK) this.flush();
    const buffer = this.#buffer;
    let used = this.#used;
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!; // callers pass start <= end <= bytes.length
      if (i > start) buffer[used++] = COMMA;
      buffer[used++] = QUOTE;
      buffer[used++] = ZERO;
      buffer[used++] = X;
      buffer[used++] = HIGH[byte]!; // 256 entries: any byte
      buffer[used++] = LOW[byte]!;
      buffer[used++] = QUOTE;
    }
    this.#used = used;
  }

  /**
   * `bytes[start..end]` as bpftool's `fprint_hex` prints them: `0a 00 ...`,
   * two spaces after every 8th byte, a new line after every 16th.
   */
  plainHex(bytes: Uint8Array, start: number, end: number): void {
    if (this.#used + (end - start) * 4 > CHUNK) this.flush();
    const buffer = this.#buffer;
    let used = this.#used;
    for (let i = start; i < end; i++) {
      const n = i - start;
      if (n > 0) {
        if (n % 16 === 0) buffer[used++] = NEWLINE;
        else if (n % 8 === 0) {
          buffer[used++] = SPACE;
          buffer[used++] = SPACE;
        } else buffer[used++] = SPACE;
      }
      const byte = bytes[i]!; // callers pass start <= end <= bytes.length
      buffer[used++] = HIGH[byte]!; // 256 entries: any byte
      buffer[used++] = LOW[byte]!;
    }
    this.#used = used;
  }

  /**
   * Writes out everything gathered.
   *
   * @throws {WriteError} the first time a write fails; after that, nothing.
   */
  flush(): void {
    if (this.#used === 0) return;
    const used = this.#used;
    this.#used = 0;
    this.#writeAll(this.#buffer.subarray(0, used));
  }

  #writeAll(bytes: Uint8Array): void {
    if (this.#failure !== undefined) return;
    let offset = 0;
    while (offset < bytes.byteLength) {
      try {
        offset += writeSync(this.fd, bytes, offset, bytes.byteLength - offset);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        // A non-blocking pipe that is full: try again.
        if (code === "EAGAIN") continue;
        this.#failure = new WriteError(this.fd, typeof code === "string" ? code : undefined, error);
        throw this.#failure;
      }
    }
  }
}

/**
 * A `write()` to an {@linkcode Output} that failed: `code` is the errno's
 * name, `"EPIPE"` when the reader has gone (`bpfmap map dump ... | head`),
 * `"ENOSPC"` on a full disk; the runtime's own error is the `cause`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { Output, WriteError } from "./output.ts";
 *
 * // A descriptor open for reading only: every write fails (a full disk fails the same way,
 * // with ENOSPC; tests/cli_streams.test.ts writes to /dev/full).
 * const path = join(mkdtempSync(join(tmpdir(), "bpfmap-")), "read-only");
 * writeFileSync(path, "");
 * const out = new Output(openSync(path, "r"));
 * out.write("lost\n");
 * assert.throws(() => out.flush(), {
 *   name: "WriteError",
 *   code: "EBADF",
 *   message: `write to fd ${out.fd}: Bad file descriptor (EBADF)`,
 * });
 * assert.ok(out.failure instanceof WriteError);
 * out.write("dropped\n");
 * out.flush(); // the failure was reported once: nothing is written, nothing thrown
 * closeSync(out.fd);
 * ```
 */
export class WriteError extends Error {
  /** The file descriptor written to. */
  readonly fd: number;
  /** The errno's name, e.g. `"EPIPE"`, or `undefined` if the runtime gave none. */
  readonly code: string | undefined;

  constructor(fd: number, code: string | undefined, cause: unknown) {
    const what = fd === 1 ? "standard output" : fd === 2 ? "standard error" : `fd ${fd}`;
    super(`write to ${what}: ${systemErrorWords(cause)}`, { cause });
    this.name = "WriteError";
    this.fd = fd;
    this.code = code;
  }
}

/**
 * The words of a failed file system call, the same in Deno and Bun:
 * `No space left on device (ENOSPC)`, from the `code` both runtimes set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFileSync } from "node:fs";
 * import { systemErrorWords } from "./output.ts";
 *
 * let error: unknown;
 * try {
 *   readFileSync("/nonexistent/bpfmap");
 * } catch (caught) {
 *   error = caught;
 * }
 * assert.equal(systemErrorWords(error), "No such file or directory (ENOENT)");
 * assert.equal(systemErrorWords(new Error("odd")), "odd");
 * ```
 */
export function systemErrorWords(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  const errno = typeof code === "string" ? errnoNumber(code) : undefined;
  if (errno !== undefined) return `${errnoDescription(errno)} (${code})`;
  return (error as Error)?.message ?? String(error);
}
