/**
 * What a ring buffer's record and a perf buffer's sample share: bytes in
 * place in a larger buffer (the mapped ring, or a scratch copy), a DataView
 * for codecs, and the two ways to take them out.
 *
 * @module
 */

/**
 * Bytes `data[offset .. offset + length)` of a buffer a reader owns, handed
 * out record after record through the same object: {@linkcode RecordBytes.bytes}
 * is a view, valid until the reader moves on; {@linkcode RecordBytes.copy}
 * is the caller's to keep.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecordBytes } from "./record_bytes.ts";
 *
 * const record = new RecordBytes(new Uint8Array([9, 1, 2, 3, 9]));
 * record.offset = 1;
 * record.length = 3;
 * const view = record.bytes();
 * const copy = record.copy();
 * assert.deepEqual(view, new Uint8Array([1, 2, 3]));
 * assert.deepEqual(copy, new Uint8Array([1, 2, 3]));
 * assert.equal(record.view.getUint8(record.offset), 1);
 * record.data[1] = 7; // the reader reuses its buffer: the view sees it, the copy does not
 * assert.equal(view[0], 7);
 * assert.equal(copy[0], 1);
 * assert.notEqual(copy.buffer, record.data.buffer);
 * ```
 */
export class RecordBytes {
  /** The bytes the record is in. */
  data: Uint8Array;
  /** A DataView of {@linkcode RecordBytes.data} (codecs read through it at `offset`). */
  view: DataView;
  /** Where the record's bytes start in `data` and `view`. */
  offset = 0;
  /** The record's length in bytes. */
  length = 0;

  /** A record over `data`, empty until `offset` and `length` are set. */
  constructor(data: Uint8Array) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  /** A view of this record's bytes (one small allocation, no copy), valid as the record is. */
  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset + this.offset, this.length);
  }

  /** A copy of this record's bytes in an `ArrayBuffer` of its own. */
  copy(): Uint8Array {
    return this.data.slice(this.offset, this.offset + this.length);
  }
}
