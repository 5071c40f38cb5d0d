/**
 * The one error of object parsing.
 *
 * @module
 */

/**
 * A BPF object file that cannot be read: not ELF, not for BPF, truncated, or
 * with a table, name or reference that points outside the file or at nothing.
 * `offset` is the file offset where the reader found the fault.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ObjectFormatError } from "./errors.ts";
 *
 * const error = new ObjectFormatError("section 3: runs past the end of the file", 0x40);
 * assert.equal(error.message, "at offset 0x40: section 3: runs past the end of the file");
 * assert.equal(error.offset, 0x40);
 * assert.ok(error instanceof Error);
 * ```
 */
export class ObjectFormatError extends Error {
  /** Where in the file the fault is, in bytes from its start. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`at offset 0x${offset.toString(16)}: ${message}`);
    this.name = "ObjectFormatError";
    this.offset = offset;
  }
}
