/**
 * `BPF_MAP_TYPE_RINGBUF` read from user space: the records programs write
 * with `bpf_ringbuf_output` or `bpf_ringbuf_reserve` + `submit`, in the order
 * they were committed, across all CPUs, as libbpf's `ring_buffer__consume`
 * and `__poll` and cilium/ebpf's `ringbuf.Reader` read them.
 *
 * Replay: every read of the ring's memory is observed and every move of the
 * consumer position reported to the backend (a `consume` walk observes the
 * span the producer position covers once, and reports its position once, at
 * its end, though it stores it after each record), so a recorded stream replays
 * exactly as the consumer saw it: the same records, discards and busy stops,
 * in the same order, split across the same `consume` calls and wake-ups,
 * with no FFI. What a replay cannot reproduce is time: a wait returns at
 * once with what the recording's wait returned, however long that took, and
 * a recorded timeout is a timeout again. A replayed consumer must make the
 * same calls in the same order as the recorded one (stop it by a count of
 * records, not by the clock).
 *
 * Waiting without blocking: Deno runs `epoll_wait` on another thread (a
 * `nonblocking` FFI symbol); Bun, which has none, polls with timeout 0 on
 * timers backing off to 4 ms. Measured by bench/ring_buffer.ts (a record
 * written while `pollAsync` waits, to its callback, on a busy 2-core
 * machine): median 0.08-0.11 ms in Deno, 0.06-0.08 ms in Bun.
 *
 * @module
 */

import type { KernelPrimitives } from "../ffi/backend.ts";
import type { Kernel } from "../ffi/kernel.ts";
import type { BpfMap } from "../maps/bpf_map.ts";
import { EpollWaiter } from "./epoll_waiter.ts";
import { RecordBytes } from "./record_bytes.ts";
import {
  BPF_RINGBUF_BUSY_BIT,
  BPF_RINGBUF_DISCARD_BIT,
  BPF_RINGBUF_HDR_SZ,
  checkRingMap,
  closedByOwner,
  loadI32,
  mapRing,
  readOwnPosition,
  readPeerPosition,
  RECORD_LENGTH_MASK,
  recordSpan,
  releaseWhenDropped,
  type RingLeftovers,
  type RingMemory,
  storeI32,
  unmapRing,
  writePosition,
} from "./ring_memory.ts";

/**
 * The longest an async wait of the iterator lasts before it looks again: a
 * ring closed while the loop waits stops it within this time (the wait
 * itself runs on and holds the epoll fd until then).
 */
export const WAIT_SLICE_MS = 1000;

/** 2^32: a position's high word counts these. */
const TWO_TO_32 = 4294967296;
/** Where a walk stores the position's low word record by record when it must not (a wrap). */
const NOWHERE = new Int32Array(2);

/**
 * One record, in place in the ring: `data[offset .. offset + length)`. The
 * same object is handed out for every record of a ring, so it allocates
 * nothing; its bytes are the kernel's and are valid until the next record
 * is consumed (the callback returns, or the loop asks for the next one):
 * {@linkcode RingRecord.copy} keeps them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RingRecord } from "../mod.ts";
 *
 * // A ring's reader makes one and points it at each record; here, by hand.
 * const record = new RingRecord(new Uint8Array([0, 0, 1, 2, 3, 0]));
 * record.offset = 2;
 * record.length = 3;
 * assert.deepEqual(record.bytes(), new Uint8Array([1, 2, 3]));
 * assert.equal(record.bytes().buffer, record.data.buffer); // a view of the ring
 * assert.notEqual(record.copy().buffer, record.data.buffer); // bytes of its own
 * assert.equal(record.view.getUint16(record.offset, true), 0x0201);
 * ```
 */
export class RingRecord extends RecordBytes {
  /** The ring's data area, mapped twice in a row: a record that wraps is contiguous here. */
  declare readonly data: Uint8Array;
  /** A DataView of {@linkcode RingRecord.data} (codecs read through it at `offset`). */
  declare readonly view: DataView;
}

/**
 * What is called for each record. Return `false` to stop after this record
 * (it is consumed); anything else goes on. A callback that throws stops the
 * walk too, its record consumed, and the error propagates.
 */
export type RecordCallback = (record: RingRecord) => unknown;

/**
 * A `ringbuf` map's records, read in place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, Program, RingBuffer, type RingRecord } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
 * // An XDP program: u64 n = 42; bpf_ringbuf_output(&map, &n, 8, 0); return XDP_PASS;
 * const fd = new Uint8Array(new Uint32Array([map.fd]).buffer);
 * // deno-fmt-ignore
 * const instructions = new Uint8Array([
 *   0x7a, 0x0a, 0xf8, 0xff, 42, 0, 0, 0, // *(u64 *)(r10 - 8) = 42
 *   0x18, 0x11, 0, 0, ...fd, 0, 0, 0, 0, 0, 0, 0, 0, // r1 = the map (ld_imm64, BPF_PSEUDO_MAP_FD)
 *   0xbf, 0xa2, 0, 0, 0, 0, 0, 0, // r2 = r10
 *   0x07, 0x02, 0, 0, 0xf8, 0xff, 0xff, 0xff, // r2 += -8
 *   0xb7, 0x03, 0, 0, 8, 0, 0, 0, // r3 = 8
 *   0xb7, 0x04, 0, 0, 0, 0, 0, 0, // r4 = 0
 *   0x85, 0, 0, 0, 130, 0, 0, 0, // call bpf_ringbuf_output
 *   0xb7, 0, 0, 0, 2, 0, 0, 0, // r0 = XDP_PASS
 *   0x95, 0, 0, 0, 0, 0, 0, 0, // exit
 * ]);
 * using program = Program.load({ type: "xdp", instructions, license: "GPL" });
 * using ring = new RingBuffer(map);
 * assert.equal(ring.poll(0, () => {}), 0); // nothing written yet: a wait of 0 ms says so
 * program.testRun({ data: new Uint8Array(64), repeat: 3 }); // three records
 * const seen: bigint[] = [];
 * const read = (record: RingRecord) => seen.push(record.view.getBigUint64(record.offset, true));
 * assert.equal(ring.consume(read), 3);
 * assert.deepEqual(seen, [42n, 42n, 42n]);
 * assert.equal(ring.consume(() => {}), 0); // each record is consumed once
 * ```
 */
export class RingBuffer {
  /** The map this ring reads. */
  readonly map: BpfMap;
  /** The data area's size in bytes (the map's `max_entries`). */
  readonly size: number;
  readonly #kernel: Kernel;
  readonly #primitives: KernelPrimitives;
  readonly #memory: RingMemory;
  readonly #record: RingRecord;
  /** The consumer position: only this reader writes it, so it is kept here and stored. */
  #consumer: number;
  /** The consumer position as last reported (`wrote`): a walk reports it once, at its end. */
  #stored: number;
  /** The producer position's low word, as last read. */
  #producer: number;
  /** Where the record handed out last ends: the consumer position once it is consumed. */
  #pendingEnd = -1;
  /** Made on the first wait: a ring read only by `consume` (or by a set) needs none. */
  #waiter: EpollWaiter | undefined;
  /** What the garbage collector releases if this ring is dropped without close(). */
  readonly #leftovers: RingLeftovers;
  #closed = false;

  /**
   * Maps `map`'s ring (two `mmap` calls) on the kernel the map was made on
   * (`map.kernel`: a system's, for a map of that system), or on `kernel`, a
   * stand-in around it (one that cuts waits short, say). A map that is not
   * an open `ringbuf` is refused before any syscall.
   *
   * @throws {TypeError} for a map that is closed or not a ringbuf.
   * @throws {BpfError} when the kernel refuses a mapping (`op` `"mmap"`).
   */
  constructor(map: BpfMap, kernel?: Kernel) {
    const through = checkRingMap("RingBuffer", map, "ringbuf", kernel);
    this.#primitives = through.primitives;
    this.#kernel = through.kernel;
    this.map = map;
    this.size = map.maxEntries;
    this.#memory = mapRing(this.#primitives, map, "consumer");
    this.#record = new RingRecord(this.#memory.data);
    this.#consumer = readOwnPosition(this.#memory.consumer, this.#memory.consumerWords);
    this.#stored = this.#consumer;
    this.#producer = this.#consumer >>> 0;
    releaseWhenDropped(this, this.#kernel, this.#leftovers = { memory: this.#memory });
  }

  /** Whether {@linkcode RingBuffer.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Bytes the producers have committed or reserved that this reader has not
   * consumed yet (libbpf's `ring__avail_data_size`).
   */
  available(): number {
    this.#checkOpen("available");
    this.#producer = readPeerPosition(this.#memory.producer, this.#memory.producerWords);
    return (this.#producer - this.#consumer) >>> 0;
  }

  /**
   * Calls `onRecord` for each record committed now, in order, up to `limit`
   * records, skipping discarded ones and stopping at the first record still
   * being written (its producer has not committed it: later records wait for
   * it). A record is consumed when its callback is called (one that throws
   * leaves it consumed) and stays in place until the callback returns; the
   * space goes back to the producers as each callback returns.
   *
   * @returns how many records `onRecord` was called with.
   */
  consume(onRecord: RecordCallback, limit = Infinity): number {
    this.#checkOpen("consume");
    checkCallback("consume", onRecord);
    if (!(limit > 0)) throw new RangeError(`consume: limit must be positive, got ${limit}`);
    return this.#walk(onRecord, limit);
  }

  /**
   * Waits up to `timeoutMs` (-1: for ever; 0: not at all) until the ring has
   * data, then {@linkcode RingBuffer.consume}s it. Blocks the thread while it
   * waits: {@linkcode RingBuffer.pollAsync} and `for await` do not.
   *
   * @returns how many records were handed to `onRecord`: 0 after a timeout.
   * @throws {BpfError} (`op` `"epoll_wait"`) when the wait fails.
   */
  poll(timeoutMs: number, onRecord: RecordCallback): number {
    this.#checkOpen("poll");
    checkTimeout("poll", timeoutMs);
    checkCallback("poll", onRecord);
    const ready = this.#waiting().wait(1, timeoutMs);
    return ready.length === 0 ? 0 : this.#walk(onRecord, Infinity);
  }

  /**
   * {@linkcode RingBuffer.poll} without blocking the event loop: timers,
   * I/O and other promises run while it waits.
   */
  async pollAsync(timeoutMs: number, onRecord: RecordCallback): Promise<number> {
    this.#checkOpen("pollAsync");
    checkTimeout("pollAsync", timeoutMs);
    checkCallback("pollAsync", onRecord);
    const ready = await this.#waiting().waitAsync(1, timeoutMs);
    return ready.length === 0 || this.#closed ? 0 : this.#walk(onRecord, Infinity);
  }

  /**
   * The records as they come, for ever (until the loop breaks or the ring is
   * closed), waiting without blocking the event loop. A record is valid
   * until the loop asks for the next one; leaving the loop consumes the last
   * record it saw.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<RingRecord, void, undefined> {
    while (!this.#closed) {
      // Closed in the loop's body: the memory is gone, stop before touching it.
      while (!this.#closed && this.#next()) {
        try {
          yield this.#record;
        } finally {
          this.#commit();
        }
      }
      this.#storeAt(this.#consumer); // the discarded records passed on the way to an empty ring
      if (!this.#closed) await this.#waiting().waitAsync(1, WAIT_SLICE_MS);
    }
  }

  /** Unmaps the ring and closes its epoll fd; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closedByOwner(this);
    this.#waiter?.close();
    unmapRing(this.#memory);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `ring buffer of ${this.map}`;
  }

  /**
   * Hands `onRecord` up to `limit` records, as libbpf's
   * `ringbuf_process_ring`: reads the producer position, then walks every
   * record up to it, and reads it again once there (records committed in the
   * meantime) until it has not moved. Each record is consumed once its
   * callback returns, the position stored then (a plain store of its low
   * word, as libbpf's `smp_store_release` is on x86-64), so producers get
   * space back record by record.
   *
   * Replay, in one observe per span and one `wrote` per walk: what the
   * producer position says was written, `[consumer, producer)` (contiguous:
   * the data area is mapped twice), is observed once before its first header
   * is read, and the position, stored as the walk goes, is reported once at
   * its end; so a recorded walk is the same few entries whatever its records
   * (a callback that throws included: the end is reported in `finally`).
   */
  #walk(onRecord: RecordCallback, limit: number): number {
    this.#commit(); // a record an async loop holds: consumed, so it is not handed out again
    const { producer, producerWords, consumerWords, dataWords, mask, pageSize } = this.#memory;
    const record = this.#record;
    // Another module's constants and functions in locals: V8 folds neither, and would load them
    // (and check a call's target) record by record, which took Deno from 3.5 to 8 ns a record.
    const discardBit = BPF_RINGBUF_DISCARD_BIT, lengthMask = RECORD_LENGTH_MASK;
    const headerSize = BPF_RINGBUF_HDR_SZ, load = loadI32, store = storeI32;
    // An int to compare the count with (a double limit costs a conversion a record).
    const last = limit < 0x7fffffff ? Math.ceil(limit) : -1;
    let count = 0;
    // The walk's place: `offset` in the data area, from `start` where the span began at `base`.
    let base = this.#consumer;
    let start = 0;
    let offset = 0;
    try {
      for (;;) {
        const low = base >>> 0;
        const produced = readPeerPosition(producer, producerWords);
        this.#producer = produced;
        const available = (produced - low) >>> 0;
        if (available === 0) break;
        start = offset = base & mask;
        const end = start + available;
        producer.observe(pageSize + start, available);
        // Record by record only the low word is stored: in the one span in 4 GiB where it wraps,
        // a producer would read a position 4 GiB behind (a full ring) until the walk's end
        // stores both words, so those stores go nowhere and the space goes back at the end.
        // (Testing for the wrap at each record cost Deno 0.7 ns a record.)
        const positionWords = TWO_TO_32 - low > available ? consumerWords : NOWHERE;
        let stopped = false;
        // A callback that closes the ring detaches the mapping: the length check (the bounds
        // check the header's read needs anyway) then ends the walk.
        while (offset < end && offset >>> 2 < dataWords.length) {
          // Acquire: the record's bytes are read after its header says it is committed.
          const header = load(dataWords, offset >>> 2);
          // The busy bit is the i32's sign: its producer has not committed it, nor (in order)
          // the records after it.
          if (header < 0) {
            stopped = true;
            break;
          }
          const length = header & lengthMask;
          const next = offset + ((length + headerSize + 7) & ~7); // recordSpan, inlined
          if ((header & discardBit) === 0) {
            record.offset = offset + headerSize;
            record.length = length;
            count++;
            // Consumed before its callback runs, so that one that throws leaves it consumed;
            // the position is stored only after a callback returns, so its record stays put.
            offset = next;
            if (onRecord(record) === false || count === last) stopped = true;
          } else {
            offset = next;
          }
          const walked = offset - start;
          store(positionWords, 0, (low + walked) | 0);
          if (stopped) break;
        }
        base += offset - start;
        start = offset = 0;
        // After a wrap the memory's high word is behind: the walk ends, storing both.
        if (stopped || this.#closed || positionWords === NOWHERE) break;
      }
    } finally {
      // Stored already as the walk went (but for a record whose callback threw): reported.
      this.#storeAt(base + (offset - start));
    }
    return count;
  }

  /**
   * Finds the next committed record and points {@linkcode RingRecord} at it
   * (not consumed yet: {@linkcode RingBuffer.#commit} does that), consuming
   * discarded ones on the way. False when none is committed: the ring is
   * empty, or its next record is still being written.
   */
  #next(): boolean {
    const memory = this.#memory;
    const producer = memory.producer;
    for (;;) {
      if (this.#producer === this.#consumer >>> 0) {
        // Caught up with what was read of the producer: read it again.
        this.#producer = readPeerPosition(producer, memory.producerWords);
        if (this.#producer === this.#consumer >>> 0) return false;
      }
      const offset = this.#consumer & memory.mask;
      producer.observe(memory.pageSize + offset, BPF_RINGBUF_HDR_SZ);
      // Acquire: the record's bytes are read after its header says it is committed.
      const header = loadI32(memory.dataWords, offset >>> 2);
      if ((header & BPF_RINGBUF_BUSY_BIT) !== 0) return false;
      const length = header & RECORD_LENGTH_MASK;
      const end = this.#consumer + recordSpan(length);
      if ((header & BPF_RINGBUF_DISCARD_BIT) === 0) {
        if (length > 0) producer.observe(memory.pageSize + offset + BPF_RINGBUF_HDR_SZ, length);
        this.#record.offset = offset + BPF_RINGBUF_HDR_SZ;
        this.#record.length = length;
        this.#pendingEnd = end;
        return true;
      }
      this.#consumer = end; // stored with the next record consumed, or when the walk ends
    }
  }

  /** Consumes the record `#next` found: its space goes back to the producers. */
  #commit(): void {
    if (this.#pendingEnd < 0) return;
    const end = this.#pendingEnd;
    this.#pendingEnd = -1;
    // Forward only: a consume() run while the loop held this record has gone past it already.
    if (end > this.#consumer) this.#storeAt(end);
  }

  /** Moves the consumer position to `position`; stores it if it moved since last stored. */
  #storeAt(position: number): void {
    this.#consumer = position;
    if (this.#stored === position || this.#closed) return;
    this.#stored = position;
    writePosition(this.#memory.consumer, this.#memory.consumerWords, position);
  }

  /** What waits for this ring, made on first use. */
  #waiting(): EpollWaiter {
    if (this.#waiter !== undefined) return this.#waiter;
    const waiter = new EpollWaiter(this.#kernel, this.#primitives);
    waiter.add(this.map.fd);
    return this.#leftovers.waiter = this.#waiter = waiter;
  }

  #checkOpen(op: string): void {
    if (this.#closed) throw new TypeError(`${op}: ${this} is closed`);
  }
}

/** Refuses a timeout that is not -1 or a non-negative integer that fits an int. */
export function checkTimeout(op: string, timeoutMs: unknown): void {
  if (
    !Number.isInteger(timeoutMs) || (timeoutMs as number) < -1
    || (timeoutMs as number) > 0x7fffffff
  ) {
    throw new RangeError(
      `${op}: timeoutMs must be -1 (no limit) or an integer from 0 to 2147483647, got ${
        String(timeoutMs)
      }`,
    );
  }
}

/** Refuses a callback that is not a function. */
export function checkCallback(op: string, onRecord: unknown): void {
  if (typeof onRecord !== "function") {
    throw new TypeError(`${op}: onRecord must be a function, got ${typeof onRecord}`);
  }
}
