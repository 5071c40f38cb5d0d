/**
 * Buffered, synchronous output to a file descriptor, formatted straight into
 * one reused byte buffer: a dump of a million elements makes about a hundred
 * `write()` calls, allocates no strings per byte, and holds one megabyte.
 *
 * @module
 */

import { writeSync } from "node:fs";

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

  constructor(fd: number) {
    this.fd = fd;
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
      const byte = bytes[i];
      if (i > start) buffer[used++] = COMMA;
      buffer[used++] = QUOTE;
      buffer[used++] = ZERO;
      buffer[used++] = X;
      buffer[used++] = HIGH[byte];
      buffer[used++] = LOW[byte];
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
      buffer[used++] = HIGH[bytes[i]];
      buffer[used++] = LOW[bytes[i]];
    }
    this.#used = used;
  }

  /** Writes out everything gathered. */
  flush(): void {
    if (this.#used === 0) return;
    this.#writeAll(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  #writeAll(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.byteLength) {
      try {
        offset += writeSync(this.fd, bytes, offset, bytes.byteLength - offset);
      } catch (error) {
        // A non-blocking pipe that is full: try again.
        if ((error as { code?: string }).code !== "EAGAIN") throw error;
      }
    }
  }
}
