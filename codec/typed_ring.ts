/**
 * `ring.typed(codec)`: ring buffer records decoded through a codec. The
 * typed layer adds the method to `RingBuffer`, as `typed_methods.ts` adds
 * `map.typed()` to `BpfMap`, so events/ never imports codecs; importing this
 * module (as `mod.ts` does) puts it on every ring.
 *
 * @module
 */

import {
  checkCallback,
  type RecordCallback,
  RingBuffer,
  type RingRecord,
} from "../events/ring_buffer.ts";
import { describe } from "../ffi/validate.ts";
import type { Codec } from "./codec.ts";

declare module "../events/ring_buffer.ts" {
  interface RingBuffer {
    // Restated: with an augmentation, Deno 2.9's checker loses the class's computed members
    // when some files are checked before mod.ts (as typed_methods.ts says of BpfMap).
    [Symbol.dispose](): void;
    [Symbol.asyncIterator](): AsyncGenerator<RingRecord, void, undefined>;
    /**
     * This ring's records decoded through `codec`: each record is read as
     * one value (a record shorter than the codec is a `RangeError`; bytes
     * past its size are left out, as C's `struct` of a variable-length
     * event reads its fixed part).
     *
     * @example
     * ```ts
     * import assert from "node:assert/strict";
     * import { BpfMap, Program, RingBuffer, struct, u32 } from "../mod.ts";
     *
     * using map = BpfMap.create({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
     * // XDP: struct { u32 pid, uid } e = { 7, 1000 }; bpf_ringbuf_output(&map, &e, 8, 0); pass
     * const fd = [...new Uint8Array(new Uint32Array([map.fd]).buffer)];
     * // deno-fmt-ignore
     * const instructions = new Uint8Array([
     *   0x62, 0x0a, 0xf8, 0xff, 7, 0, 0, 0, // *(u32 *)(r10 - 8) = 7
     *   0x62, 0x0a, 0xfc, 0xff, 0xe8, 3, 0, 0, // *(u32 *)(r10 - 4) = 1000
     *   0x18, 0x11, 0, 0, ...fd, 0, 0, 0, 0, 0, 0, 0, 0, // r1 = the map
     *   0xbf, 0xa2, 0, 0, 0, 0, 0, 0, 0x07, 0x02, 0, 0, 0xf8, 0xff, 0xff, 0xff, // r2 = r10 - 8
     *   0xb7, 0x03, 0, 0, 8, 0, 0, 0, 0xb7, 0x04, 0, 0, 0, 0, 0, 0, // r3 = 8; r4 = 0
     *   0x85, 0, 0, 0, 130, 0, 0, 0, // call bpf_ringbuf_output
     *   0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0, // return XDP_PASS
     * ]);
     * using program = Program.load({ type: "xdp", instructions, license: "GPL" });
     * using ring = new RingBuffer(map);
     * program.testRun({ data: new Uint8Array(64), repeat: 2 });
     * const events: unknown[] = [];
     * assert.equal(ring.typed(struct({ pid: u32, uid: u32 })).consume((e) => events.push(e)), 2);
     * assert.deepEqual(events, [{ pid: 7, uid: 1000 }, { pid: 7, uid: 1000 }]);
     * ```
     */
    typed<T>(codec: Codec<T>): TypedRing<T>;
  }
}

/** What is called with each decoded record; `false` stops after it, as with raw records. */
export type ValueCallback<T> = (value: T) => unknown;

/**
 * A {@linkcode RecordCallback} that decodes each record through `codec` and
 * hands `onValue` the value: for a `RingBufferSet`'s rings.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeRecords, u32 } from "../mod.ts";
 *
 * const seen: number[] = [];
 * const onRecord = decodeRecords(u32, (value) => seen.push(value));
 * assert.equal(typeof onRecord, "function"); // rings.add(map, onRecord)
 * ```
 */
export function decodeRecords<T>(codec: Codec<T>, onValue: ValueCallback<T>): RecordCallback {
  checkCodec("decodeRecords", codec);
  checkCallback("decodeRecords", onValue);
  return (record) => onValue(decodeRecord(codec, record));
}

/**
 * Records of a ring, decoded: what `ring.typed(codec)` returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, RingBuffer, TypedRing, u32 } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
 * using ring = new RingBuffer(map);
 * const typed = ring.typed(u32);
 * assert.ok(typed instanceof TypedRing);
 * assert.equal(typed.ring, ring);
 * assert.equal(typed.poll(0, (value) => console.log(value)), 0); // nothing written
 * assert.throws(() => new TypedRing(ring, {} as never), /codec must be a codec/);
 * ```
 */
export class TypedRing<T> {
  /** The raw ring. */
  readonly ring: RingBuffer;
  /** What each record is decoded with. */
  readonly codec: Codec<T>;

  constructor(ring: RingBuffer, codec: Codec<T>) {
    checkCodec("typed", codec);
    this.ring = ring;
    this.codec = codec;
  }

  /** {@linkcode RingBuffer.consume}, with values. */
  consume(onValue: ValueCallback<T>, limit?: number): number {
    return this.ring.consume(this.#decoding("consume", onValue), limit);
  }

  /** {@linkcode RingBuffer.poll}, with values. */
  poll(timeoutMs: number, onValue: ValueCallback<T>): number {
    return this.ring.poll(timeoutMs, this.#decoding("poll", onValue));
  }

  /** {@linkcode RingBuffer.pollAsync}, with values. */
  pollAsync(timeoutMs: number, onValue: ValueCallback<T>): Promise<number> {
    return this.ring.pollAsync(timeoutMs, this.#decoding("pollAsync", onValue));
  }

  /** The values as they come, for ever: see the ring's own async iterator. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const record of this.ring) yield decodeRecord(this.codec, record);
  }

  #decoding(op: string, onValue: ValueCallback<T>): RecordCallback {
    checkCallback(op, onValue);
    const codec = this.codec;
    return (record) => onValue(decodeRecord(codec, record));
  }
}

function decodeRecord<T>(codec: Codec<T>, record: RingRecord): T {
  if (record.length < codec.size) {
    throw new RangeError(
      `a record of ${record.length} bytes is shorter than ${codec.name} (${codec.size} bytes)`,
    );
  }
  return codec.read(record.view, record.offset);
}

function checkCodec(op: string, codec: unknown): void {
  const candidate = codec as Partial<Codec<unknown>> | null;
  if (
    candidate === null || typeof candidate !== "object" || typeof candidate.read !== "function"
    || typeof candidate.size !== "number"
  ) {
    throw new TypeError(
      `${op}: codec must be a codec (u32, struct({...}), ...), got ${describe(codec)}`,
    );
  }
}

function typed<T>(this: RingBuffer, codec: Codec<T>): TypedRing<T> {
  return new TypedRing(this, codec);
}

// A method, as a class would define it: not enumerable.
Object.defineProperty(RingBuffer.prototype, "typed", {
  value: typed,
  writable: true,
  configurable: true,
});
