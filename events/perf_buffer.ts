/**
 * A `perf_event_array` map read from user space: the samples programs send
 * with `bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, data, size)`,
 * and the counts of samples the kernel had no room for, as libbpf's
 * `perf_buffer__poll`/`__consume` and cilium/ebpf's `perf.Reader` read them.
 *
 * Each CPU has a ring of its own: one `perf_event_open` of
 * `PERF_COUNT_SW_BPF_OUTPUT` on that CPU, its fd stored in the map's slot for
 * the CPU, and one `mmap` of the event: a metadata page
 * (`struct perf_event_mmap_page`: `data_head`, the kernel's write position,
 * and `data_tail`, the reader's), then `2^n` data pages mapped once. A record
 * is a `struct perf_event_header` (u32 type, u16 misc, u16 size) and its
 * body, 8-byte aligned, so a header never straddles the end of the data area
 * but a body may: such a record is copied out whole before it is handed on.
 *
 * Replay: what the kernel wrote is observed before it is read (the bytes
 * the head moved over, each time it is read) and every store of `data_tail`
 * is reported to the backend, so a recorded stream replays as the reader saw
 * it (records, lost counts, wake-ups, in order) with no FFI; a wait returns
 * at once with what the recording's wait returned. Time is not reproduced.
 *
 * @module
 */

import { type KernelPrimitives, primitivesOf } from "../ffi/backend.ts";
import { BpfError } from "../ffi/errors.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { MAP_TYPES } from "../ffi/map_types.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import {
  PERF_COUNT_SW_BPF_OUTPUT,
  PERF_EVENT_ATTR,
  PERF_EVENT_IOC_DISABLE,
  PERF_EVENT_IOC_ENABLE,
  PERF_FLAG_BITS,
  PERF_FLAG_FD_CLOEXEC,
  PERF_MMAP_PAGE,
  PERF_RECORD_LOST,
  PERF_RECORD_SAMPLE,
  PERF_SAMPLE_RAW,
  PERF_TYPE_SOFTWARE,
  perfEventAttr,
} from "../ffi/perf_event.ts";
import { describe } from "../ffi/validate.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { EpollWaiter } from "./epoll_waiter.ts";
import { RecordBytes } from "./record_bytes.ts";
import { checkCallback, checkTimeout, WAIT_SLICE_MS } from "./ring_buffer.ts";
import { loadI32, storeI32 } from "./ring_memory.ts";

/** Where the kernel lists the CPUs that are online now (libbpf opens rings on those only). */
export const ONLINE_CPUS_PATH = "/sys/devices/system/cpu/online";

/** `sizeof(struct perf_event_header)`. */
const HEADER_SIZE = 8;
/** The largest record: a header's `size` is a u16. */
const MAX_RECORD = 0xffff;
/** 2^32, to split the 64-bit tail into the two u32 words it is stored as. */
const TWO_TO_32 = 4294967296;

/** Options of {@linkcode PerfBuffer}. */
export interface PerfBufferOptions {
  /** The kernel to reach the map through: the one it was created or opened on by default. */
  kernel?: Kernel | undefined;
  /** Data pages per CPU: a power of 2 (default 8, libbpf's examples' size). */
  pages?: number | undefined;
  /**
   * Wake a waiting reader after this many samples (default 1: every
   * sample, as libbpf does). Ignored with `wakeupBytes`.
   */
  wakeupEvents?: number | undefined;
  /**
   * Wake a waiting reader once this many bytes are in a CPU's ring (the
   * kernel's `wakeup_watermark`) instead of counting samples: fewer wake-ups
   * for a busy stream, later ones for a quiet one.
   */
  wakeupBytes?: number | undefined;
  /**
   * Called with the count of samples a CPU's ring had no room for, when
   * the kernel reports them (`PERF_RECORD_LOST`, written once the reader
   * freed room): they are also summed in {@linkcode PerfBuffer.lost}.
   */
  onLost?: ((cpu: number, count: number) => void) | undefined;
}

/**
 * One sample, as the program sent it: `data[offset .. offset + length)` on
 * CPU `cpu`. The same object is handed out for every sample of a buffer, so
 * it allocates nothing; its bytes are the kernel's (or, for a sample that
 * ran past the end of its ring, a copy in a scratch buffer) and are valid
 * until the next sample is consumed: {@linkcode PerfRecord.copy} keeps them.
 *
 * `length` is the kernel's raw size: the program's bytes, then the zeros the
 * kernel adds so that the 4-byte size and the bytes fill whole 8-byte words
 * (as libbpf and cilium/ebpf hand them out).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, PerfBuffer, possibleCpus, Program } from "../mod.ts";
 *
 * using events = BpfMap.create({
 *   type: "perf_event_array",
 *   keySize: 4,
 *   valueSize: 4,
 *   maxEntries: possibleCpus(),
 * });
 * using perf = new PerfBuffer(events, { pages: 1 });
 * // XDP: u64 value = 42; bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &value, 8)
 * const fd = new Uint8Array(new Uint32Array([events.fd]).buffer);
 * const instructions = new Uint8Array([
 *   0xbf, 0x16, 0, 0, 0, 0, 0, 0, // r6 = r1 (ctx)
 *   0x7a, 0x0a, 0xf8, 0xff, 42, 0, 0, 0, // *(u64 *)(r10 - 8) = 42
 *   0xbf, 0x61, 0, 0, 0, 0, 0, 0, // r1 = r6
 *   0x18, 0x12, 0, 0, ...fd, 0, 0, 0, 0, 0, 0, 0, 0, // r2 = &events (its fd)
 *   0xb4, 0x03, 0, 0, 0xff, 0xff, 0xff, 0xff, // w3 = BPF_F_CURRENT_CPU
 *   0xbf, 0xa4, 0, 0, 0, 0, 0, 0, // r4 = r10
 *   0x07, 0x04, 0, 0, 0xf8, 0xff, 0xff, 0xff, // r4 += -8
 *   0xb7, 0x05, 0, 0, 8, 0, 0, 0, // r5 = 8
 *   0x85, 0, 0, 0, 25, 0, 0, 0, // call bpf_perf_event_output
 *   0xb7, 0, 0, 0, 2, 0, 0, 0, // r0 = XDP_PASS
 *   0x95, 0, 0, 0, 0, 0, 0, 0, // exit
 * ]);
 * using program = Program.load({ type: "xdp", instructions, license: "GPL" });
 * program.testRun({ data: new Uint8Array(64) });
 * const values: bigint[] = [];
 * perf.consume((record) => {
 *   assert.ok(perf.cpus.includes(record.cpu)); // the CPU the program ran on
 *   assert.equal(record.length, 12); // 8 bytes, and 4 of the kernel's padding
 *   values.push(record.view.getBigUint64(record.offset, true));
 * });
 * assert.deepEqual(values, [42n]);
 * ```
 */
export class PerfRecord extends RecordBytes {
  /** The CPU whose ring held the sample: the CPU the program ran on. */
  cpu = 0;
  /**
   * Whether the sample ran past the end of its CPU's data area (mapped
   * once, unlike a ring buffer's): `data` is then a copy of it, made whole
   * in a scratch buffer, not the CPU's data area.
   */
  wrapped = false;
}

/**
 * What is called for each sample. Return `false` to stop after this one (it
 * is consumed); anything else goes on. A callback that throws stops the
 * walk too, its sample consumed, and the error propagates.
 */
export type PerfRecordCallback = (record: PerfRecord) => unknown;

/** A structural codec (`u32`, `struct({...})`): what {@linkcode PerfBuffer.typed} reads with. */
export interface PerfDecoder<T> {
  readonly name?: string;
  readonly size: number;
  read(view: DataView, offset: number): T;
}

/** One CPU's event and ring. */
interface CpuRing {
  readonly cpu: number;
  readonly fd: number;
  readonly region: MappedRegion;
  /** The data area, in place. */
  readonly data: Uint8Array;
  readonly view: DataView;
  /** The data area as i32s: a record's header words (8-byte aligned, little-endian). */
  readonly dataWords: Int32Array;
  /** The data area's size less one (a power of 2): a position's offset in it. */
  readonly mask: number;
  /** `data`'s offset in the mapping (`data_offset`), for observe. */
  readonly dataOffset: number;
  /** `data_head` and `data_tail` as i32 words: `[head low, head high, tail low, tail high]`. */
  readonly words: Int32Array;
  /** The reader's position (only this reader writes it). */
  tail: number;
  /** The tail as last stored. */
  stored: number;
  /** `data_head`'s low word as last read. */
  head: number;
}

/**
 * A `perf_event_array` map's samples, one ring per online CPU.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, PerfBuffer, possibleCpus } from "../mod.ts";
 *
 * using map = BpfMap.create({
 *   type: "perf_event_array",
 *   keySize: 4,
 *   valueSize: 4,
 *   maxEntries: possibleCpus(),
 * });
 * const lost: number[] = [];
 * using perf = new PerfBuffer(map, { pages: 2, onLost: (cpu, count) => lost.push(count) });
 * assert.equal(perf.size, 8192); // per CPU
 * assert.equal(perf.cpus.length, possibleCpus()); // all online here
 * assert.equal(perf.consume(() => {}), 0); // nothing sent yet
 * assert.equal(perf.poll(0, () => {}), 0);
 * assert.equal(perf.lost, 0);
 * ```
 */
export class PerfBuffer {
  /** The map whose slots hold this buffer's events. */
  readonly map: BpfMap;
  /** Each CPU's data area in bytes. */
  readonly size: number;
  /** The CPUs with a ring, in the order they are read. */
  readonly cpus: readonly number[];
  readonly #kernel: Kernel;
  readonly #primitives: KernelPrimitives;
  readonly #rings: CpuRing[] = [];
  readonly #onLost: ((cpu: number, count: number) => void) | undefined;
  readonly #record: PerfRecord;
  /** Where a sample that runs past the end of its ring is copied whole. */
  readonly #scratch = new Uint8Array(MAX_RECORD + 1);
  readonly #scratchView = new DataView(this.#scratch.buffer);
  readonly #scratchWords = new Int32Array(this.#scratch.buffer);
  /** The ring of the sample handed out last, not consumed yet; and where it ends. */
  #pending: CpuRing | undefined;
  #pendingEnd = 0;
  #lost = 0;
  #waiter: EpollWaiter | undefined;
  #closed = false;
  /** A walk is handing samples out: a callback may not start another. */
  #walking = false;

  /**
   * Opens one `PERF_COUNT_SW_BPF_OUTPUT` event per online CPU (those below
   * the map's `max_entries`), maps its ring, enables it and stores its fd in
   * the map's slot for the CPU. Bad input is refused before any syscall.
   *
   * @throws {TypeError} for a map that is closed or not a `perf_event_array`, or bad options.
   * @throws {BpfError} when the kernel refuses (`op` `"perf_event_open"`, `"mmap"`,
   * `"ioctl"`, `"map_update_elem"`); what was opened before is closed.
   */
  constructor(map: BpfMap, options: PerfBufferOptions = {}) {
    const { kernel = map.kernel, pages = 8, wakeupEvents = 1, wakeupBytes, onLost } = checkOptions(
      map,
      options,
    );
    this.#kernel = kernel;
    this.#primitives = primitivesOf(kernel.backend);
    this.map = map;
    this.size = pages * this.#primitives.pageSize;
    this.#onLost = onLost;
    const online = onlineCpus(kernel.backend.readTextFile(ONLINE_CPUS_PATH));
    this.cpus = Object.freeze(online.filter((cpu) => cpu < map.maxEntries));
    try {
      for (const cpu of this.cpus) {
        this.#rings.push(this.#openRing(cpu, pages, wakeupEvents, wakeupBytes));
      }
    } catch (error) {
      this.#closeRings();
      throw error;
    }
    this.#record = new PerfRecord(this.#scratch);
  }

  /** Whether {@linkcode PerfBuffer.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Samples the kernel had no room for, summed over the CPUs, as reported so far. */
  get lost(): number {
    return this.#lost;
  }

  /** Bytes written into the CPUs' rings and not consumed yet (records' headers included). */
  available(): number {
    this.#checkOpen("available");
    let bytes = 0;
    for (const ring of this.#rings) bytes += (this.#readHead(ring) - ring.tail) >>> 0;
    return bytes;
  }

  /**
   * Calls `onRecord` for each sample in the rings now, CPU by CPU (each
   * CPU's in order), up to `limit` samples; lost counts on the way go to
   * `onLost`. Each sample is consumed once its callback returns. Inside a
   * `for await` loop over this buffer, the loop's sample is consumed first.
   *
   * @returns how many samples `onRecord` was called with.
   * @throws {TypeError} when called from one of this buffer's callbacks (so is `poll`).
   */
  consume(onRecord: PerfRecordCallback, limit = Infinity): number {
    this.#checkOpen("consume");
    this.#checkNotWalking("consume");
    checkCallback("consume", onRecord);
    if (!(limit > 0)) throw new RangeError(`consume: limit must be positive, got ${limit}`);
    return this.#walk(this.#rings, onRecord, limit);
  }

  /**
   * Waits up to `timeoutMs` (-1: for ever; 0: not at all) until a CPU's ring
   * wakes the reader, then consumes the rings that did. Blocks the thread
   * while it waits: {@linkcode PerfBuffer.pollAsync} and `for await` do not.
   *
   * @returns how many samples were handed to `onRecord`: 0 after a timeout.
   * @throws {BpfError} (`op` `"epoll_wait"`) when the wait fails.
   */
  poll(timeoutMs: number, onRecord: PerfRecordCallback): number {
    this.#checkOpen("poll");
    this.#checkNotWalking("poll");
    checkTimeout("poll", timeoutMs);
    checkCallback("poll", onRecord);
    const ready = this.#waiting().wait(this.#rings.length, timeoutMs);
    return this.#walk(this.#ringsOf(ready), onRecord, Infinity);
  }

  /** {@linkcode PerfBuffer.poll} without blocking the event loop. */
  async pollAsync(timeoutMs: number, onRecord: PerfRecordCallback): Promise<number> {
    this.#checkOpen("pollAsync");
    checkTimeout("pollAsync", timeoutMs);
    checkCallback("pollAsync", onRecord);
    const ready = await this.#waiting().waitAsync(this.#rings.length, timeoutMs);
    return this.#closed ? 0 : this.#walk(this.#ringsOf(ready), onRecord, Infinity);
  }

  /**
   * The samples as they come, for ever (until the loop breaks or the buffer
   * is closed), waiting without blocking the event loop. A sample is valid
   * until the loop asks for the next one; leaving the loop consumes the last
   * sample it saw.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<PerfRecord, void, undefined> {
    while (!this.#closed) {
      for (const ring of this.#rings) {
        while (!this.#closed && this.#next(ring)) {
          try {
            yield this.#record;
          } finally {
            this.#commit();
          }
        }
        if (!this.#closed) this.#store(ring); // the lost counts passed on the way
      }
      if (!this.#closed) await this.#waiting().waitAsync(this.#rings.length, WAIT_SLICE_MS);
    }
  }

  /**
   * This buffer's samples decoded through `codec` (a sample shorter than
   * the codec is a `RangeError`; bytes past its size, the kernel's padding
   * included, are left out).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap, PerfBuffer, possibleCpus, struct, u32 } from "../mod.ts";
   *
   * using map = BpfMap.create({
   *   type: "perf_event_array",
   *   keySize: 4,
   *   valueSize: 4,
   *   maxEntries: possibleCpus(),
   * });
   * using perf = new PerfBuffer(map, { pages: 1 });
   * const events = perf.typed(struct({ pid: u32, uid: u32 }));
   * assert.equal(events.consume((event) => console.log(event.pid)), 0); // none yet
   * ```
   */
  typed<T>(codec: PerfDecoder<T>): TypedPerfBuffer<T> {
    return new TypedPerfBuffer(this, codec);
  }

  /** Disables the events, empties the map's slots, unmaps the rings, closes the fds; once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter?.close();
    this.#closeRings();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `perf buffer of ${this.map}`;
  }

  #openRing(
    cpu: number,
    pages: number,
    wakeupEvents: number,
    wakeupBytes: number | undefined,
  ): CpuRing {
    const primitives = this.#primitives;
    const attr = perfEventAttr(this.#kernel.backend);
    const f = PERF_EVENT_ATTR.fields;
    attr.setU32(f.type, PERF_TYPE_SOFTWARE);
    attr.setU64(f.config, PERF_COUNT_SW_BPF_OUTPUT);
    attr.setU64(f.sample_type, PERF_SAMPLE_RAW);
    attr.setU64(f.sample_period, 1);
    if (wakeupBytes === undefined) {
      attr.setU32(f.wakeup_events, wakeupEvents);
    } else {
      attr.setU64(f.flags, PERF_FLAG_BITS.watermark);
      attr.setU32(f.wakeup_events, wakeupBytes);
    }
    const fd = primitives.perfEventOpen(attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) throw new BpfError("perf_event_open", -fd, `BPF output on CPU ${cpu}`);
    const pageSize = primitives.pageSize;
    const region = primitives.mmap(fd, (pages + 1) * pageSize, "readWrite", 0);
    if (typeof region === "number") {
      this.#kernel.close(fd);
      throw new BpfError("mmap", -region, `perf event of CPU ${cpu}: ${pages + 1} pages`);
    }
    const bytes = region.bytes;
    const meta = new DataView(bytes.buffer, bytes.byteOffset, pageSize);
    // Linux 4.1's data_offset and data_size; before it, 0 (the data starts one page in).
    region.observe(PERF_MMAP_PAGE.data_offset, 16);
    const dataOffset = Number(meta.getBigUint64(PERF_MMAP_PAGE.data_offset, true)) || pageSize;
    const dataSize = Number(meta.getBigUint64(PERF_MMAP_PAGE.data_size, true)) || pages * pageSize;
    const words = new Int32Array(bytes.buffer, bytes.byteOffset + PERF_MMAP_PAGE.data_head, 4);
    region.observe(PERF_MMAP_PAGE.data_tail, 8);
    const tail = (loadI32(words, 3) >>> 0) * TWO_TO_32 + (loadI32(words, 2) >>> 0);
    const data = bytes.subarray(dataOffset, dataOffset + dataSize);
    const ring: CpuRing = {
      cpu,
      fd,
      region,
      data,
      view: new DataView(data.buffer, data.byteOffset, data.byteLength),
      dataWords: new Int32Array(data.buffer, data.byteOffset, data.byteLength >>> 2),
      mask: dataSize - 1,
      dataOffset,
      words,
      tail,
      stored: tail,
      head: tail >>> 0,
    };
    // In the list of what close() undoes from here on.
    try {
      const enabled = primitives.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
      if (enabled < 0) throw new BpfError("ioctl", -enabled, `PERF_EVENT_IOC_ENABLE, CPU ${cpu}`);
      this.map.update(u32Bytes(cpu), u32Bytes(fd));
    } catch (error) {
      region.unmap();
      this.#kernel.close(fd);
      throw error;
    }
    return ring;
  }

  /**
   * Hands `onRecord` up to `limit` samples of `rings`, ring after ring, as
   * libbpf's `perf_buffer__consume`: reads a ring's head, walks every record
   * up to it, and reads it again once there until it has not moved. Each
   * sample is consumed once its callback returns (or throws); the ring's
   * tail is stored once, when the walk leaves the ring, as libbpf's
   * `perf_event_read_simple` stores it, so a callback's sample stays in place
   * while it runs and a walk reports one `wrote` a ring.
   */
  #walk(rings: CpuRing[], onRecord: PerfRecordCallback, limit: number): number {
    this.#commit(); // the sample a for await loop holds: consumed, so it is not handed out again
    this.#walking = true;
    try {
      return this.#walkRings(rings, onRecord, limit);
    } finally {
      this.#walking = false;
    }
  }

  /** {@linkcode PerfBuffer.#walk}'s loop: a ring's tail is local to it until it leaves the ring. */
  #walkRings(rings: CpuRing[], onRecord: PerfRecordCallback, limit: number): number {
    const record = this.#record;
    // Module constants in locals: V8 would load them (from their cells) sample by sample.
    const sampleType = PERF_RECORD_SAMPLE, sampleStart = HEADER_SIZE + 4; // header, u32 size
    // An int to compare the count with (a double limit costs a conversion a sample).
    const last = limit < 0x7fffffff ? Math.ceil(limit) : -1;
    let count = 0;
    let stopped = false;
    for (const ring of rings) {
      if (this.#closed) break;
      const { cpu, data, view, dataWords, mask } = ring;
      const size = mask + 1;
      // The walk's place: `walked` bytes on from the tail it found, at `offset` in the data area.
      let walked = 0;
      try {
        for (;;) {
          const low = (ring.tail + walked) >>> 0;
          // The head is read when the walk has caught up with it, as last read.
          const available = ((ring.head === low ? this.#readHead(ring) : ring.head) - low) >>> 0;
          if (available === 0) break;
          const end = walked + available;
          let offset = low & mask;
          // A callback that closes the buffer unmaps the rings: their words are detached then
          // (length 0), which ends the loop with no field read a sample.
          while (walked < end && offset >>> 2 < dataWords.length) {
            const at = offset >>> 2;
            const recordSize = dataWords[at + 1]! >>> 16; // above the u16 misc
            let span = recordSize;
            if (dataWords[at] === sampleType && offset + recordSize <= size) {
              // The common case, inline: a sample in place.
              // struct { header; u32 size; char data[size]; }
              const rawSize = dataWords[at + 2]!;
              if (recordSize > end - walked || rawSize < 0 || rawSize + sampleStart > recordSize) {
                this.#badRecord(ring, offset, recordSize, end - walked);
              }
              if (record.data !== data) {
                record.data = data;
                record.view = view;
                record.wrapped = false;
              }
              record.cpu = cpu;
              record.offset = offset + sampleStart;
              record.length = rawSize;
            } else {
              span = this.#other(ring, offset, end - walked);
            }
            // Consumed before its callback runs, so that one that throws leaves it consumed.
            walked += recordSize;
            offset = (offset + recordSize) & mask;
            if (span < 0) continue; // lost counts and other records: passed
            count++;
            if (onRecord(record) === false || count === last) {
              stopped = true;
              break;
            }
          }
          if (stopped || this.#closed) break;
        }
      } finally {
        if (walked > 0) ring.tail += walked;
        this.#store(ring);
      }
      if (stopped) break;
    }
    return count;
  }

  /**
   * Finds `ring`'s next sample and points the record at it (not consumed
   * yet: {@linkcode PerfBuffer.#commit} does that), passing lost counts and
   * records of other types on the way. False when the ring is empty.
   */
  #next(ring: CpuRing): boolean {
    for (;;) {
      if (ring.head === ring.tail >>> 0) {
        this.#readHead(ring);
        if (ring.head === ring.tail >>> 0) return false;
      }
      const span = this.#other(ring, ring.tail & ring.mask, (ring.head - ring.tail) >>> 0);
      if (span < 0) {
        ring.tail -= span;
        continue;
      }
      this.#pending = ring;
      this.#pendingEnd = ring.tail + span;
      return true;
    }
  }

  /**
   * Reads the record at `offset` of `ring`, with `available` bytes written
   * from there: a sample (its size returned) points the record at it, copied
   * whole if it runs past the end of the data area; a lost count (reported)
   * or a record of another type returns its size negated, to be passed.
   */
  #other(ring: CpuRing, offset: number, available: number): number {
    const size = ring.mask + 1;
    const type = ring.dataWords[offset >>> 2]!;
    const recordSize = ring.dataWords[(offset >>> 2) + 1]! >>> 16;
    if (recordSize < HEADER_SIZE || recordSize > available) {
      this.#badRecord(ring, offset, recordSize, available);
    }
    if (type !== PERF_RECORD_SAMPLE && type !== PERF_RECORD_LOST) {
      return -recordSize; // mmap, comm, ... records: none for a BPF output event; skipped
    }
    const record = this.#record;
    let words = ring.dataWords;
    if (offset + recordSize <= size) {
      if (record.data !== ring.data) {
        record.data = ring.data;
        record.view = ring.view;
      }
      record.offset = offset;
      record.wrapped = false;
    } else {
      // Runs past the end of the data area, mapped once: copied whole, in two parts.
      const first = size - offset;
      this.#scratch.set(ring.data.subarray(offset, size), 0);
      this.#scratch.set(ring.data.subarray(0, recordSize - first), first);
      if (record.data !== this.#scratch) {
        record.data = this.#scratch;
        record.view = this.#scratchView;
      }
      words = this.#scratchWords;
      record.offset = 0;
      record.wrapped = true;
    }
    const at = record.offset >>> 2;
    if (type === PERF_RECORD_LOST) {
      // struct { header; u64 id; u64 lost; }
      const count = (words[at + 5]! >>> 0) * TWO_TO_32 + (words[at + 4]! >>> 0);
      this.#lost += count;
      this.#onLost?.(ring.cpu, count);
      return -recordSize;
    }
    // struct { header; u32 size; char data[size]; }
    const rawSize = words[at + 2]! >>> 0;
    if (rawSize + 4 > recordSize - HEADER_SIZE) {
      this.#badRecord(ring, offset, recordSize, available);
    }
    record.cpu = ring.cpu;
    record.offset += HEADER_SIZE + 4;
    record.length = rawSize;
    return recordSize;
  }

  /** Throws for a record whose header cannot be one of a perf ring's. */
  #badRecord(ring: CpuRing, offset: number, recordSize: number, available: number): never {
    throw new Error(
      `bpfmap: ${this}: CPU ${ring.cpu}'s ring holds a record of ${recordSize} bytes at ${offset}, with ${available} written: not a perf ring`,
    );
  }

  /** Consumes the sample {@linkcode PerfBuffer.#next} found (its ring's tail is stored later). */
  #commit(): void {
    const ring = this.#pending;
    if (ring === undefined || this.#closed) return;
    ring.tail = this.#pendingEnd;
    this.#pending = undefined;
  }

  /**
   * Stores `ring`'s tail, if it moved: the low word, then the high one (the
   * kernel computes free space from the difference of head and tail masked
   * to the ring's size, so a store between the two is never read wrong);
   * both after every read of the records they free, which x86-64 keeps in order.
   */
  #store(ring: CpuRing): void {
    if (ring.stored === ring.tail || this.#closed) return;
    ring.stored = ring.tail;
    const low = ring.tail >>> 0;
    storeI32(ring.words, 2, low | 0);
    storeI32(ring.words, 3, ((ring.tail - low) / TWO_TO_32) | 0);
    ring.region.wrote(PERF_MMAP_PAGE.data_tail, 8);
  }

  /**
   * Reads `data_head`'s low word (positions are compared by differences
   * smaller than the ring), and observes the bytes the kernel wrote since
   * the head was read last: once for all the records they hold (an observe
   * per record would cost as much as the rest of the walk), which stay as
   * they are until the tail passes them.
   */
  #readHead(ring: CpuRing): number {
    const before = ring.head;
    ring.region.observe(PERF_MMAP_PAGE.data_head, 4);
    // Acquire: the records are read after the head that says they are there.
    const head = ring.head = loadI32(ring.words, 0) >>> 0;
    const written = (head - before) >>> 0;
    if (written === 0) return head;
    const size = ring.mask + 1;
    // Where the old head was (the size divides 2^32: the low word's offset is the position's).
    const from = before & ring.mask;
    const first = Math.min(written, size - from);
    ring.region.observe(ring.dataOffset + from, first);
    if (first < written) ring.region.observe(ring.dataOffset, written - first);
    return head;
  }

  /** The rings of the fds a wait reported, in CPU order. */
  #ringsOf(ready: readonly { fd: number }[]): CpuRing[] {
    if (ready.length === 0) return [];
    const fds = new Set(ready.map((event) => event.fd));
    return this.#rings.filter((ring) => fds.has(ring.fd));
  }

  /** What waits for the rings, made on first use. */
  #waiting(): EpollWaiter {
    if (this.#waiter !== undefined) return this.#waiter;
    const waiter = new EpollWaiter(this.#kernel, this.#primitives);
    try {
      for (const ring of this.#rings) waiter.add(ring.fd);
    } catch (error) {
      waiter.close();
      throw error;
    }
    return this.#waiter = waiter;
  }

  /** Undoes what the constructor did, ring by ring; the first failure is thrown at the end. */
  #closeRings(): void {
    let failure: unknown;
    const mapOpen = !this.map.closed;
    for (const ring of this.#rings.splice(0)) {
      this.#primitives.ioctl(ring.fd, PERF_EVENT_IOC_DISABLE, 0);
      if (mapOpen) {
        try {
          this.map.delete(u32Bytes(ring.cpu));
        } catch (error) {
          failure ??= error;
        }
      }
      const unmapped = ring.region.unmap();
      if (unmapped < 0) failure ??= new BpfError("munmap", -unmapped, `CPU ${ring.cpu}`);
      this.#kernel.close(ring.fd);
    }
    if (failure !== undefined) throw failure;
  }

  #checkOpen(op: string): void {
    if (this.#closed) throw new TypeError(`${op}: ${this} is closed`);
  }

  /**
   * Refuses a walk started from a callback of a walk: the outer one keeps
   * its rings' tails to itself until it leaves them, so the inner one would
   * hand the same samples out again.
   */
  #checkNotWalking(op: string): void {
    if (this.#walking) {
      throw new TypeError(
        `${op}: called from a callback of ${this}: return false to stop its walk, then call ${op}`,
      );
    }
  }
}

/** Samples of a perf buffer, decoded. */
export class TypedPerfBuffer<T> {
  /** The raw buffer. */
  readonly perf: PerfBuffer;
  /** What each sample is decoded with. */
  readonly codec: PerfDecoder<T>;

  constructor(perf: PerfBuffer, codec: PerfDecoder<T>) {
    const candidate = codec as Partial<PerfDecoder<T>> | null;
    if (
      candidate === null || typeof candidate !== "object" || typeof candidate.read !== "function"
      || typeof candidate.size !== "number"
    ) {
      throw new TypeError(
        `typed: codec must be a codec (u32, struct({...}), ...), got ${describe(codec)}`,
      );
    }
    this.perf = perf;
    this.codec = codec;
  }

  /** {@linkcode PerfBuffer.consume}, with values and the CPU each came from. */
  consume(onValue: (value: T, cpu: number) => unknown, limit?: number): number {
    return this.perf.consume(this.#decoding("consume", onValue), limit);
  }

  /** {@linkcode PerfBuffer.poll}, with values. */
  poll(timeoutMs: number, onValue: (value: T, cpu: number) => unknown): number {
    return this.perf.poll(timeoutMs, this.#decoding("poll", onValue));
  }

  /** {@linkcode PerfBuffer.pollAsync}, with values. */
  pollAsync(timeoutMs: number, onValue: (value: T, cpu: number) => unknown): Promise<number> {
    return this.perf.pollAsync(timeoutMs, this.#decoding("pollAsync", onValue));
  }

  /** The values as they come, for ever: see the buffer's own async iterator. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const record of this.perf) yield this.#decode(record);
  }

  #decoding(op: string, onValue: (value: T, cpu: number) => unknown): PerfRecordCallback {
    checkCallback(op, onValue);
    return (record) => onValue(this.#decode(record), record.cpu);
  }

  #decode(record: PerfRecord): T {
    if (record.length < this.codec.size) {
      throw new RangeError(
        `a sample of ${record.length} bytes is shorter than ${
          this.codec.name ?? "the codec"
        } (${this.codec.size} bytes)`,
      );
    }
    return this.codec.read(record.view, record.offset);
  }
}

/** The CPUs of a kernel CPU list (`0-3,5`), in order. */
function onlineCpus(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(",")) {
    if (part === "") continue;
    const [first, last = first] = part.split("-").map(Number) as [number, number?];
    for (let cpu = first; cpu <= last!; cpu++) cpus.push(cpu);
  }
  if (cpus.length === 0 || cpus.some((cpu) => !Number.isInteger(cpu))) {
    throw new Error(`bpfmap: ${ONLINE_CPUS_PATH}: not a CPU list: ${JSON.stringify(list)}`);
  }
  return cpus;
}

/** A little-endian u32, in a buffer of its own. */
function u32Bytes(value: number): Uint8Array {
  return new Uint8Array(new Uint32Array([value]).buffer);
}

/** Checks the map and options before any syscall. */
function checkOptions(map: unknown, options: PerfBufferOptions): PerfBufferOptions {
  if (!(map instanceof BpfMap)) {
    throw new TypeError(`PerfBuffer: map must be a BpfMap, got ${describe(map)}`);
  }
  if (map.closed) throw new TypeError(`PerfBuffer: ${map} is closed`);
  if (map.type !== MAP_TYPES.perf_event_array) {
    const hint = map.type === MAP_TYPES.ringbuf ? " (a ringbuf is read with RingBuffer)" : "";
    throw new TypeError(
      `PerfBuffer: ${map} is a ${map.typeName} map, not a perf_event_array${hint}`,
    );
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError(`PerfBuffer: options must be an object, got ${describe(options)}`);
  }
  const { pages, wakeupEvents, wakeupBytes, onLost } = options;
  if (
    pages !== undefined
    && (!Number.isInteger(pages) || pages < 1 || pages > 1 << 20 || (pages & (pages - 1)) !== 0)
  ) {
    throw new RangeError(`PerfBuffer: pages must be a power of 2, got ${String(pages)}`);
  }
  for (const [name, value] of [["wakeupEvents", wakeupEvents], ["wakeupBytes", wakeupBytes]]) {
    if (
      value !== undefined
      && (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 0xffffffff)
    ) {
      throw new RangeError(
        `PerfBuffer: ${name} must be a positive integer, got ${String(value)}`,
      );
    }
  }
  if (onLost !== undefined && typeof onLost !== "function") {
    throw new TypeError(`PerfBuffer: onLost must be a function, got ${typeof onLost}`);
  }
  return options;
}
