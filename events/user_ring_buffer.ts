/**
 * `BPF_MAP_TYPE_USER_RINGBUF` written from user space: records a program
 * reads with `bpf_user_ringbuf_drain`, as libbpf's `user_ring_buffer__reserve`,
 * `__submit` and `__discard` write them. The roles of a `ringbuf` are
 * swapped: user space owns the producer page and the data area (mapped
 * read-write), the kernel the consumer page (read-only here).
 *
 * A record is reserved (its header written busy, the producer position
 * moved past it), filled, then submitted or discarded (the busy bit cleared,
 * the discard bit set for a discard); the kernel drains committed records in
 * order and stops at the first busy one. One writer at a time: like libbpf's,
 * this producer is not safe for several threads on one ring.
 *
 * Replay: the bytes of each record and header are reported as written, so a
 * replay checks that the same records were written, and the kernel's
 * consumer position is observed before each reservation.
 *
 * @module
 */

import type { KernelPrimitives } from "../ffi/backend.ts";
import type { Kernel } from "../ffi/kernel.ts";
import type { BpfMap } from "../maps/bpf_map.ts";
import { EpollWaiter } from "./epoll_waiter.ts";
import { checkTimeout } from "./ring_buffer.ts";
import {
  BPF_RINGBUF_BUSY_BIT,
  BPF_RINGBUF_DISCARD_BIT,
  BPF_RINGBUF_HDR_SZ,
  checkRingMap,
  closedByOwner,
  mapRing,
  readOwnPosition,
  readPeerPosition,
  recordSpan,
  releaseWhenDropped,
  type RingLeftovers,
  type RingMemory,
  storeI32,
  unmapRing,
  writePosition,
} from "./ring_memory.ts";

/**
 * The producer side of a `user_ringbuf` map.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, UserRingBuffer } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "user_ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
 * using ring = new UserRingBuffer(map);
 * const record = ring.reserve(16)!; // the ring's own bytes, to fill in place
 * record.set([1, 2, 3]);
 * ring.submit(record); // a program's bpf_user_ringbuf_drain now sees it
 * assert.equal(ring.pending(), 24); // its header and body, not drained yet
 * assert.equal(ring.reserve(4065), undefined); // 4080 bytes with its header: 4072 are left
 * assert.throws(() => ring.reserve(4096), RangeError); // never fits: the header takes 8
 * ```
 */
export class UserRingBuffer implements Disposable {
  /** The map this ring writes. */
  readonly map: BpfMap;
  /** The data area's size in bytes (the map's `max_entries`). */
  readonly size: number;
  readonly #memory: RingMemory;
  /** The producer position: only this writer moves it. */
  #producer: number;
  /** Records reserved, not yet submitted or discarded: view -> its header's offset in the data. */
  readonly #reserved = new Map<Uint8Array, number>();
  readonly #through: { kernel: Kernel; primitives: KernelPrimitives };
  /** What reserveAsync waits on, made on its first wait. */
  #waiter: EpollWaiter | undefined;
  readonly #leftovers: RingLeftovers;
  #closed = false;

  /**
   * Maps `map`'s ring (two `mmap` calls) on the kernel the map was made on
   * (`map.kernel`), or on `kernel`, a stand-in around it. A map that is not
   * an open `user_ringbuf` is refused before any syscall.
   *
   * @throws {TypeError} for a map that is closed or not a user_ringbuf.
   * @throws {BpfError} when the kernel refuses a mapping (`op` `"mmap"`).
   */
  constructor(map: BpfMap, kernel?: Kernel) {
    const through = checkRingMap("UserRingBuffer", map, "user_ringbuf", kernel);
    this.#through = through;
    this.map = map;
    this.size = map.maxEntries;
    this.#memory = mapRing(through.primitives, map, "producer");
    this.#producer = readOwnPosition(this.#memory.producer, this.#memory.producerWords);
    releaseWhenDropped(this, through.kernel, this.#leftovers = { memory: this.#memory });
  }

  /** Whether {@linkcode UserRingBuffer.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes written (reserved included) that the kernel has not drained yet. */
  pending(): number {
    this.#checkOpen("pending");
    const consumer = readPeerPosition(this.#memory.consumer, this.#memory.consumerWords);
    return (this.#producer - consumer) >>> 0;
  }

  /**
   * Reserves a record of `size` bytes: the ring's own memory, to fill in
   * place, then {@linkcode UserRingBuffer.submit} or
   * {@linkcode UserRingBuffer.discard}. Until then the kernel drains no
   * record after it.
   *
   * @returns the record's bytes, or `undefined` when the ring has no room
   * for it now (the kernel has not drained enough yet).
   * @throws {RangeError} for a size that is not a non-negative integer, or
   * one that can never fit this ring (with its 8-byte header).
   */
  reserve(size: number): Uint8Array | undefined {
    this.#checkOpen("reserve");
    if (!Number.isInteger(size) || size < 0 || recordSpan(size) > this.size) {
      throw new RangeError(
        `reserve: size must be an integer from 0 to ${
          this.size - BPF_RINGBUF_HDR_SZ
        } (the ring's size less a header), got ${size}`,
      );
    }
    const memory = this.#memory;
    const span = recordSpan(size);
    const consumer = readPeerPosition(memory.consumer, memory.consumerWords);
    if (this.size - ((this.#producer - consumer) >>> 0) < span) return undefined;
    const header = this.#producer & memory.mask;
    // Busy first, then the position: the kernel never reads past a busy header.
    memory.dataWords[header >>> 2] = (size | BPF_RINGBUF_BUSY_BIT) | 0;
    memory.dataWords[(header >>> 2) + 1] = 0;
    memory.producer.wrote(memory.pageSize + header, BPF_RINGBUF_HDR_SZ);
    this.#producer += span;
    writePosition(memory.producer, memory.producerWords, this.#producer);
    const start = memory.data.byteOffset + header + BPF_RINGBUF_HDR_SZ;
    const record = new Uint8Array(memory.data.buffer, start, size);
    this.#reserved.set(record, header);
    return record;
  }

  /**
   * {@linkcode UserRingBuffer.reserve}, waiting without blocking the event
   * loop while the ring has no room: each time a program drains some, the
   * reservation is tried again (libbpf's `user_ring_buffer__reserve_blocking`).
   * Each wait lasts up to `timeoutMs` (-1: no limit); the time is not summed
   * over several waits, so that a replay, where waits take no time, makes
   * the same calls.
   *
   * @returns the record, or `undefined` when a wait timed out (or the ring
   * was closed) with still no room for it.
   */
  async reserveAsync(size: number, timeoutMs = -1): Promise<Uint8Array | undefined> {
    checkTimeout("reserveAsync", timeoutMs);
    for (;;) {
      const record = this.reserve(size); // checks the ring is open and the size
      if (record !== undefined) return record;
      // Edge-triggered: the kernel says "room" for any room at all, so a level-triggered
      // wait would return at once while there is too little, for ever.
      const ready = await this.#waiting().waitAsync(1, timeoutMs);
      if (this.#closed) return undefined;
      if (ready.length === 0) return this.reserve(size);
    }
  }

  /** Hands the kernel a reserved record: `bpf_user_ringbuf_drain` now reads it. */
  submit(record: Uint8Array): void {
    this.#commit("submit", record, 0);
  }

  /** Gives a reserved record up: the kernel skips it. */
  discard(record: Uint8Array): void {
    this.#commit("discard", record, BPF_RINGBUF_DISCARD_BIT);
  }

  /** Unmaps the ring; a second call does nothing. Reserved records are left busy. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closedByOwner(this);
    this.#waiter?.close();
    this.#reserved.clear();
    unmapRing(this.#memory);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `user ring buffer of ${this.map}`;
  }

  #commit(op: string, record: Uint8Array, discard: number): void {
    this.#checkOpen(op);
    const header = this.#reserved.get(record);
    if (header === undefined) {
      throw new TypeError(`${op}: not a record reserved on ${this} and not yet committed`);
    }
    this.#reserved.delete(record);
    const memory = this.#memory;
    const length = memory.dataWords[header >>> 2]! & ~BPF_RINGBUF_BUSY_BIT;
    // A record of 0 bytes has no body to report (a span of 0 would be refused, the header left busy).
    if (length > 0) memory.producer.wrote(memory.pageSize + header + BPF_RINGBUF_HDR_SZ, length);
    // Release: the record's bytes are visible before the header says it is committed.
    storeI32(memory.dataWords, header >>> 2, length | discard);
    memory.producer.wrote(memory.pageSize + header, 4);
  }

  /** What waits for room, made on first use: EPOLLOUT, edge-triggered. */
  #waiting(): EpollWaiter {
    if (this.#waiter !== undefined) return this.#waiter;
    const waiter = new EpollWaiter(this.#through.kernel, this.#through.primitives);
    waiter.addWritable(this.map.fd);
    return this.#leftovers.waiter = this.#waiter = waiter;
  }

  #checkOpen(op: string): void {
    if (this.#closed) throw new TypeError(`${op}: ${this} is closed`);
  }
}
