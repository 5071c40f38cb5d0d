/**
 * Buffered, synchronous output to a file descriptor: text is gathered and
 * written in large chunks, so that a dump of a million elements makes a few
 * hundred `write()` calls and holds at most one chunk in memory.
 *
 * @module
 */

import { writeSync } from "node:fs";

/** Bytes gathered before a write. */
const CHUNK = 1 << 20;

const encoder = new TextEncoder();

/**
 * A buffered writer on a file descriptor (1 for stdout, 2 for stderr).
 *
 * @example
 * ```ts
 * import { Output } from "./output.ts";
 * const out = new Output(1);
 * out.write("hello\n");
 * out.flush();
 * ```
 */
export class Output {
  readonly fd: number;
  #parts: string[] = [];
  #size = 0;

  constructor(fd: number) {
    this.fd = fd;
  }

  /** Adds text; writes out once a chunk is full. */
  write(text: string): void {
    this.#parts.push(text);
    this.#size += text.length;
    if (this.#size >= CHUNK) this.flush();
  }

  /** Writes out everything gathered. */
  flush(): void {
    if (this.#size === 0) return;
    const bytes = encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#size = 0;
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
