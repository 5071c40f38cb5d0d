/**
 * Several ring buffers behind one epoll fd, as libbpf's `ring_buffer__add`
 * puts them: one wait serves them all, and each ready ring's records go to
 * its own callback.
 *
 * @module
 */

import { primitivesOf } from "../ffi/backend.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { EpollWaiter } from "./epoll_waiter.ts";
import { checkCallback, checkTimeout, type RecordCallback, RingBuffer } from "./ring_buffer.ts";

/**
 * Ring buffers read together.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, RingBufferSet } from "../mod.ts";
 *
 * const spec = { type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 } as const;
 * using a = BpfMap.create(spec);
 * using b = BpfMap.create(spec);
 * using rings = new RingBufferSet();
 * const seen: string[] = [];
 * rings.add(a, (record) => seen.push(`a: ${record.length} bytes`));
 * rings.add(b, (record) => seen.push(`b: ${record.length} bytes`));
 * assert.equal(rings.size, 2);
 * assert.equal(rings.poll(0), 0); // neither has data: one epoll_wait said so for both
 * assert.deepEqual(seen, []);
 * assert.throws(() => rings.add(a, () => {}), /is in this set already/);
 * ```
 */
export class RingBufferSet implements Disposable {
  /** The rings and their callbacks, by map fd: what a wait reports. */
  readonly #rings = new Map<number, { ring: RingBuffer; onRecord: RecordCallback }>();
  /** The kernel the set's rings are reached through (the first map's, by default). */
  #kernel: Kernel | undefined;
  /** The set's epoll fd, made by the first add. */
  #waiter: EpollWaiter | undefined;

  /**
   * An empty set; no syscall yet. Its rings are reached through `kernel`
   * (a stand-in around their maps' kernel), or through the kernel the first
   * map added was made on.
   */
  constructor(kernel?: Kernel) {
    this.#kernel = kernel;
  }
  #closed = false;

  /** How many rings the set reads. */
  get size(): number {
    return this.#rings.size;
  }

  /**
   * Maps `map`'s ring and adds it to the set's epoll fd: its records go to
   * `onRecord`. A map that is not an open ringbuf, or one already in the set,
   * is refused before any syscall.
   *
   * @returns the ring (closed with the set).
   */
  add(map: BpfMap, onRecord: RecordCallback): RingBuffer {
    this.#checkOpen("add");
    checkCallback("add", onRecord);
    if (map instanceof BpfMap && !map.closed) {
      if (this.#rings.has(map.fd)) throw new TypeError(`add: ${map} is in this set already`);
      if (this.#kernel === undefined && this.#rings.size > 0) {
        const first = this.#rings.values().next().value!.ring.map;
        if (map.kernel !== first.kernel) {
          throw new TypeError(`add: ${map} is on another kernel (system) than ${first}`);
        }
      }
    }
    const ring = new RingBuffer(map, this.#kernel);
    try {
      const kernel = this.#kernel ?? map.kernel;
      this.#waiter ??= new EpollWaiter(kernel, primitivesOf(kernel.backend));
      this.#waiter.add(map.fd);
    } catch (error) {
      ring.close();
      throw error;
    }
    this.#rings.set(map.fd, { ring, onRecord });
    return ring;
  }

  /** Consumes every ring's committed records, ring by ring in the order added. */
  consume(): number {
    this.#checkOpen("consume");
    let count = 0;
    for (const { ring, onRecord } of this.#rings.values()) count += ring.consume(onRecord);
    return count;
  }

  /**
   * Waits up to `timeoutMs` (-1: for ever) until a ring has data, then
   * consumes the rings the wait reported. Blocks the thread while it waits.
   *
   * @returns how many records were handed to callbacks: 0 after a timeout.
   */
  poll(timeoutMs: number): number {
    this.#checkOpen("poll");
    checkTimeout("poll", timeoutMs);
    if (this.#rings.size === 0) throw new TypeError(`poll: ${this} has no ring to wait for`);
    return this.#consumeReady(this.#waiter!.wait(this.#rings.size, timeoutMs));
  }

  /** {@linkcode RingBufferSet.poll} without blocking the event loop. */
  async pollAsync(timeoutMs: number): Promise<number> {
    this.#checkOpen("pollAsync");
    checkTimeout("pollAsync", timeoutMs);
    if (this.#rings.size === 0) throw new TypeError(`pollAsync: ${this} has no ring to wait for`);
    const ready = await this.#waiter!.waitAsync(this.#rings.size, timeoutMs);
    return this.#closed ? 0 : this.#consumeReady(ready);
  }

  /** Closes every ring and the epoll fd; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter?.close();
    for (const { ring } of this.#rings.values()) ring.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `set of ${this.#rings.size} ring buffer(s)`;
  }

  #consumeReady(ready: readonly { fd: number }[]): number {
    let count = 0;
    for (const { fd } of ready) {
      const entry = this.#rings.get(fd);
      if (entry !== undefined) count += entry.ring.consume(entry.onRecord);
    }
    return count;
  }

  #checkOpen(op: string): void {
    if (this.#closed) throw new TypeError(`${op}: ${this} is closed`);
  }
}
