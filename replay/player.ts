/**
 * The player: a backend that answers every call from a transcript, with no
 * FFI at all, and stops at the first call the transcript does not hold.
 *
 * @module
 */

import type { Attr } from "../ffi/attr.ts";
import type { PerfEventOpenArgs } from "../ffi/backend.ts";
import { type Field, writesOnFailure } from "../ffi/commands.ts";
import type { EpollOp, EpollResult } from "../ffi/epoll.ts";
import { errnoNumber } from "../ffi/errno.ts";
import { fileError } from "../ffi/libc.ts";
import { checkSpan, type MappedRegion, type MapProtection } from "../ffi/mmap.ts";
import { checkArgs } from "../ffi/primitive_args.ts";
import { describeEntry, diffEntries } from "./diff.ts";
import { type PathPlaceholders, REPLAY_FD_BASE, ReplayIdentities } from "./identities.ts";
import {
  applyOutputs,
  entryResult,
  inputEntry,
  ioctlArgument,
  learn,
  perfEventEntry,
  pointerBinding,
} from "./normalize.ts";
import type { SessionBackend, SessionEnd } from "./session.ts";
import {
  type CallEntry,
  type CloseEntry,
  decodeBytes,
  encodeBytes,
  encodedLength,
  type Entry,
  type EpollEntry,
  type FdInfoEntry,
  type IoctlEntry,
  isCall,
  type MemoryEntry,
  type MmapEntry,
  type MunmapEntry,
  type ReadFileEntry,
  type RegionRecord,
  type Transcript,
  TranscriptError,
} from "./transcript.ts";

/**
 * The code under test asked the kernel something the transcript does not
 * hold. The message names the transcript, the call's index and command, and
 * says field by field (for batch buffers, element by element) what differs.
 */
export class ReplayDivergenceError extends Error {
  /** The transcript's path. */
  readonly transcript: string;
  /** The index of the call that diverged, from 0. */
  readonly index: number;
  /** The command the code made, e.g. `"BPF_MAP_UPDATE_BATCH"`. */
  readonly command: string;
  /** One line per difference. */
  readonly differences: string[];

  constructor(transcript: string, index: number, command: string, differences: string[]) {
    super(
      `${transcript}: call #${index} (${command}) diverged from the transcript:\n`
        + differences.map((line) => `  - ${line}`).join("\n"),
    );
    this.name = "ReplayDivergenceError";
    this.transcript = transcript;
    this.index = index;
    this.command = command;
    this.differences = differences;
  }
}

/**
 * A fault to inject: the `call`-th `bpf()` call the code makes (from 0,
 * counting every attempt) fails with `errno`.
 *
 * Without `processed`, the kernel did nothing: `count` is left as the code
 * passed it, and the transcript's call is still owed, so a retry plays it.
 * With `processed` (batch commands only), the kernel did that much of the
 * call before failing, as it does when a signal or a fault stops a batch
 * midway: it writes `processed` back into `count`, and a lookup batch has
 * filled that many keys and values (the first ones the recording returned).
 * Work was done, so the call cannot be asked again as recorded.
 */
export interface ReplayFault {
  call: number;
  errno: string;
  processed?: number;
}

/**
 * Serves a transcript's calls in strict order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchError, BpfMap } from "../mod.ts";
 * import { Kernel, liveKernel } from "../ffi/kernel.ts";
 * import { RecordingBackend } from "./recorder.ts";
 * import { ReplayBackend, ReplayDivergenceError } from "./player.ts";
 *
 * const spec = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 } as const;
 * const keys = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
 * const recorder = new RecordingBackend(liveKernel().backend);
 * {
 *   using map = BpfMap.create(spec, new Kernel(recorder));
 *   map.updateBatch(keys, keys);
 * }
 * const transcript = recorder.transcript({ arch: "x86_64", kernel: "", possibleCpus: 2 });
 *
 * // The same calls replay with no kernel; every recorded call must be made.
 * const player = new ReplayBackend(transcript, "example.json");
 * {
 *   using map = BpfMap.create(spec, new Kernel(player));
 *   assert.equal(map.updateBatch(keys, keys), 3);
 * }
 * player.finish();
 *
 * // Another key is a divergence, named element by element.
 * assert.throws(() => {
 *   const map = BpfMap.create(spec, new Kernel(new ReplayBackend(transcript, "example.json")));
 *   map.updateBatch(new Uint8Array(new Uint32Array([1, 2, 4]).buffer), keys);
 * }, (error) => error instanceof ReplayDivergenceError
 *   && error.differences[0] === "keys[2]: expected 03000000, got 04000000");
 *
 * // A fault: the update batch (call 2) stops with EINTR after 2 of its 3 elements.
 * const faulty = new ReplayBackend(transcript, "example.json", [
 *   { call: 2, errno: "EINTR", processed: 2 },
 * ]);
 * using map = BpfMap.create(spec, new Kernel(faulty));
 * assert.throws(() => map.updateBatch(keys, keys), (error) =>
 *   error instanceof BatchError && error.code === "EINTR" && error.processed === 2);
 * ```
 */
export class ReplayBackend implements SessionBackend {
  readonly runtime = "replay";
  readonly #transcript: Transcript;
  readonly #path: string;
  readonly #ids: ReplayIdentities;
  readonly #faults: Map<number, { errno: number; processed?: number | undefined }>;
  #next = 0;
  #attempts = 0;
  #mappings = 0;
  /** Set once a fault was injected: cleanup closes the recording never made are then accepted. */
  #faulted = false;
  /**
   * Set once a divergence was thrown to the code: the code's own error (or
   * that divergence) is what its runner must show, so closes after it are
   * let through and `finish()` keeps quiet about the calls it left unplayed.
   */
  #divergedOnce = false;

  /**
   * `faults`: calls to fail; `paths`: this run's own folders, which stand
   * for the placeholders in the transcript's paths.
   */
  constructor(
    transcript: Transcript,
    path: string,
    faults: readonly ReplayFault[] = [],
    paths: PathPlaceholders = {},
  ) {
    this.#transcript = transcript;
    this.#ids = new ReplayIdentities(paths);
    this.#path = path;
    this.#faults = new Map(
      faults.map((
        fault,
      ) => [fault.call, { errno: errnoOf(fault.errno), processed: fault.processed }]),
    );
  }

  /** How many entries have been played. */
  get played(): number {
    return this.#next;
  }

  bpf(attr: Attr): number {
    const actual = inputEntry(attr, this.#ids);
    const expected = this.#expect(actual);
    if (!isCall(expected)) {
      throw this.#diverged(actual, [`expected ${describeEntry(expected)}, got ${actual.call}`]);
    }
    const differences = diffEntries(expected, actual, "inputs");
    if (differences.length > 0) throw this.#diverged(actual, differences);
    checkOutputs(expected, attr, this.#path, this.#next);
    const call = this.#attempts++;
    const fault = this.#faults.get(call);
    if (fault !== undefined) {
      this.#faulted = true;
      if (fault.processed !== undefined) writePartial(expected, attr, fault.processed, call);
      return -fault.errno;
    }
    this.#next++;
    const result = applyOutputs(expected, attr, errnoOf, (handle) => this.#ids.fdFor(handle));
    learn(expected, this.#ids);
    return result;
  }

  close(fd: number): number {
    const actual: CloseEntry = { close: this.#ids.closed(fd) };
    const expected = this.#transcript.entries[this.#next];
    const differences = expected === undefined
      ? ["(end)"]
      : diffEntries(expected, actual, "inputs");
    // After an injected fault the code cleans up in ways the recording never did: let it close.
    // After a divergence, the maps the system or `using` closes were never expected: let them close.
    if (differences.length > 0 && (this.#faulted || this.#divergedOnce)) return 0;
    if (expected === undefined) this.#expect(actual);
    if (differences.length > 0) throw this.#diverged(actual, differences);
    this.#next++;
    const errno = (expected as CloseEntry).errno;
    return errno === undefined ? 0 : -errnoOf(errno);
  }

  fdInfo(fd: number): Record<string, string> {
    const actual: FdInfoEntry = { fdinfo: this.#ids.handleOf(fd), fields: {} };
    return { ...this.#take<FdInfoEntry>(actual).fields };
  }

  /** The next entry, if the code asked what it holds (else a divergence); played. */
  #take<T extends Entry>(actual: Entry): T {
    const expected = this.#expect(actual);
    const differences = diffEntries(expected, actual, "inputs");
    if (differences.length > 0) throw this.#diverged(actual, differences);
    this.#next++;
    return expected as T;
  }

  /** The recording host's page size. */
  get pageSize(): number {
    const size = this.#transcript.host.pageSize;
    if (size === undefined) {
      this.#divergedOnce = true;
      throw new ReplayDivergenceError(this.#path, this.#next, "pageSize", [
        "the transcript holds no page size: the recorded code never asked for it",
      ]);
    }
    return size;
  }

  readFile(path: string): Uint8Array {
    checkArgs.readFile(path);
    const expected = this.#take<ReadFileEntry>({ readFile: path });
    if (expected.errno !== undefined) {
      throw fileError(expected.at ?? "open", path, errnoOf(expected.errno));
    }
    return decodeBytes(expected.bytes ?? "");
  }

  perfEventOpen(...args: PerfEventOpenArgs): number {
    checkArgs.perfEventOpen(...args);
    const expected = this.#take<CallEntry>(perfEventEntry(this.#ids, ...args));
    return entryResult(expected, errnoOf, (handle) => this.#ids.fdFor(handle));
  }

  ioctl(fd: number, request: number, arg: number): number {
    checkArgs.ioctl(fd, request, arg);
    const ids = this.#ids;
    const actual: IoctlEntry = {
      ioctl: ids.handleOf(fd),
      request,
      arg: ioctlArgument(request, arg, ids),
    };
    const expected = this.#take<IoctlEntry>(actual);
    return expected.errno !== undefined ? -errnoOf(expected.errno) : expected.result ?? 0;
  }

  mmap(fd: number, length: number, prot: MapProtection, offset: number): MappedRegion | number {
    checkArgs.mmap(fd, length, prot, offset, this.#transcript.host.pageSize ?? 4096);
    const actual: MmapEntry = { mmap: this.#ids.handleOf(fd), length, prot, offset };
    const expected = this.#take<MmapEntry>(actual);
    if (expected.errno !== undefined) return -errnoOf(expected.errno);
    const mapping = ++this.#mappings;
    if (expected.result?.mapping !== mapping) {
      throw new TranscriptError(
        this.#path,
        `entry ${this.#next - 1} (mmap): result: expected mapping ${mapping}, got ${
          JSON.stringify(expected.result)
        }`,
        this.#next - 1,
        "result",
      );
    }
    return this.#region(mapping, length);
  }

  /** A mapping of `length` bytes whose contents the transcript's `observe` entries give. */
  #region(mapping: number, length: number): MappedRegion {
    const buffer = new ArrayBuffer(length);
    const bytes = new Uint8Array(buffer);
    let unmapped = false;
    return {
      length,
      bytes,
      observe: (offset, size) => {
        checkSpan("observe", bytes, offset, size);
        const actual = { observe: mapping, offset, size } as MemoryEntry;
        bytes.set(decodeBytes(this.#take<MemoryEntry>(actual).bytes), offset);
      },
      wrote: (offset, size) => {
        checkSpan("wrote", bytes, offset, size);
        const written = encodeBytes(bytes.subarray(offset, offset + size));
        this.#take({ wrote: mapping, offset, size, bytes: written });
      },
      unmap: () => {
        if (unmapped) return 0;
        unmapped = true;
        buffer.transfer(0);
        const actual: MunmapEntry = { munmap: mapping };
        // As with close: cleanup after a fault or a divergence is let through.
        const next = this.#transcript.entries[this.#next];
        const matches = next !== undefined && diffEntries(next, actual, "inputs").length === 0;
        if (!matches && (this.#faulted || this.#divergedOnce)) return 0;
        const expected = this.#take<MunmapEntry>(actual);
        return expected.errno === undefined ? 0 : -errnoOf(expected.errno);
      },
    };
  }

  epollCreate(): number {
    const expected = this.#take<EpollEntry>({ epoll: "create" });
    return entryResult(expected, errnoOf, (handle) => this.#ids.fdFor(handle));
  }

  epollCtl(epfd: number, op: EpollOp, fd: number, events: number): number {
    checkArgs.epollCtl(epfd, op, fd, events);
    const ids = this.#ids;
    const actual: EpollEntry = {
      epoll: "ctl",
      epfd: ids.handleOf(epfd),
      op,
      fd: ids.handleOf(fd),
      events,
    };
    const expected = this.#take<EpollEntry>(actual);
    return expected.errno === undefined ? 0 : -errnoOf(expected.errno);
  }

  epollWait(epfd: number, maxEvents: number, timeoutMs: number): EpollResult {
    return this.#wait("wait", epfd, maxEvents, timeoutMs);
  }

  /** Answers with what the recorded wait returned, after a turn of the event loop. */
  async epollWaitAsync(epfd: number, maxEvents: number, timeoutMs: number): Promise<EpollResult> {
    const result = this.#wait("waitAsync", epfd, maxEvents, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, 0));
    return result;
  }

  #wait(
    kind: "wait" | "waitAsync",
    epfd: number,
    maxEvents: number,
    timeoutMs: number,
  ): EpollResult {
    checkArgs.epollWait(epfd, maxEvents, timeoutMs);
    const actual: EpollEntry = {
      epoll: kind,
      epfd: this.#ids.handleOf(epfd),
      maxEvents,
      timeoutMs,
    };
    const expected = this.#take<EpollEntry>(actual);
    if (expected.errno !== undefined) return -errnoOf(expected.errno);
    // A fd bpfmap did not get from the kernel has no handle to give back: -1.
    return (expected.ready ?? []).map(({ fd, events }) => ({
      fd: fd === "foreign" ? -1 : REPLAY_FD_BASE + fd,
      events,
    }));
  }

  baseAddress(): number {
    // Addresses never enter a transcript; the kernel never sees these attrs.
    return 0;
  }

  readTextFile(path: string): string {
    const text = this.#transcript.files[path];
    if (text === undefined) {
      this.#divergedOnce = true;
      throw new ReplayDivergenceError(this.#path, this.#next, `read ${path}`, [
        `the transcript holds no read of ${path} (it has: ${
          Object.keys(this.#transcript.files).join(", ") || "none"
        })`,
      ]);
    }
    return text;
  }

  /**
   * Checks that every recorded call was played, unless the session failed
   * (`end.failed`) or a divergence was already thrown: then the calls left
   * unplayed are that failure's consequence, and an error thrown here would
   * bury the real one (`SuppressedError` in `await using`).
   *
   * @throws {ReplayDivergenceError} naming the first call left unplayed.
   */
  async finish(end?: SessionEnd): Promise<void> {
    if (end?.failed || this.#divergedOnce) return;
    const left = this.#transcript.entries.length - this.#next;
    if (left > 0) {
      const entry = this.#transcript.entries[this.#next];
      throw new ReplayDivergenceError(this.#path, this.#next, describeEntry(entry), [
        `${left} recorded call(s) were never made; the first is ${describeEntry(entry)}`,
      ]);
    }
  }

  #expect(actual: Entry): Entry {
    const expected = this.#transcript.entries[this.#next];
    if (expected === undefined) {
      throw this.#diverged(actual, [
        `the transcript ends after ${this.#next} call(s), but the code made ${
          describeEntry(actual)
        }`,
      ]);
    }
    return expected;
  }

  #diverged(actual: Entry, differences: string[]): ReplayDivergenceError {
    this.#divergedOnce = true;
    return new ReplayDivergenceError(this.#path, this.#next, describeEntry(actual), differences);
  }
}

/**
 * Checks, before a byte is written, that what the transcript says the kernel
 * wrote fits this call: parsing checked each entry against the command
 * table, but which regions the kernel writes, and how large the caller's
 * buffers are, is known only now (a bloom filter's lookup reads its value;
 * a BTF info call reads and writes its struct). The kernel writes every
 * region it does not only read, unless the call failed before touching it.
 *
 * @throws {TranscriptError} naming the entry and the region.
 */
function checkOutputs(expected: CallEntry, attr: Attr, path: string, index: number): void {
  const fail = (field: string, message: string): never => {
    throw new TranscriptError(
      path,
      `entry ${index} (${expected.call}): ${field}: ${message}`,
      index,
      field,
    );
  };
  for (const field of attr.command.fieldList) {
    const region = expected.attr[field.name] as RegionRecord | null;
    if (field.kind !== "pointer" || region === null) continue;
    const { bytes: target, direction, nested } = pointerBinding(attr, field);
    const reads = direction === "in";
    if (reads && region.out !== undefined) {
      fail(`${field.name}.out`, "this call's kernel only reads this region");
    }
    if (target === null) continue;
    const writes = !reads && (expected.errno === undefined || writesOnFailure(attr.command, field));
    if (writes && region.out === undefined) {
      fail(`${field.name}.out`, "missing: the kernel writes this region");
    }
    if (region.out !== undefined && encodedLength(region.out)! > target.byteLength) {
      fail(
        `${field.name}.out`,
        `${encodedLength(region.out)} bytes for a buffer of ${target.byteLength}`,
      );
    }
    for (const pointer of nested) {
      const out = region.pointers?.[pointer.field.name]?.out;
      const label = `${field.name}.pointers.${pointer.field.name}.out`;
      if (writes && out === undefined) fail(label, "missing: the kernel writes this region");
      if (out !== undefined && encodedLength(out) !== pointer.bytes.byteLength) {
        fail(label, `${encodedLength(out)} bytes for a buffer of ${pointer.bytes.byteLength}`);
      }
    }
  }
}

/**
 * What a batch call that did `processed` elements before failing leaves
 * behind: `count` written back and, for lookups, the first `processed` keys
 * and values, taken from what the recorded call returned.
 */
function writePartial(expected: CallEntry, attr: Attr, processed: number, call: number): void {
  const count = (attr.command.fields as Record<string, Field | undefined>).count;
  if (count === undefined) {
    throw new TypeError(
      `fault at call ${call}: processed needs a batch command, not ${attr.command.name}`,
    );
  }
  const requested = attr.getU32(count);
  if (!Number.isInteger(processed) || processed < 0 || processed >= requested) {
    throw new RangeError(
      `fault at call ${call}: processed must be an integer from 0 to ${
        requested - 1
      } (count ${requested}), got ${processed}`,
    );
  }
  for (const field of attr.command.fieldList) {
    if (field.counted !== true) continue;
    const { bytes: target, direction } = pointerBinding(attr, field);
    if (target === null || direction === "in") continue;
    const elementSize = target.byteLength / requested;
    const out = (expected.attr[field.name] as RegionRecord).out;
    const returned = out === undefined ? new Uint8Array(0) : decodeBytes(out);
    if (returned.byteLength < processed * elementSize) {
      throw new RangeError(
        `fault at call ${call}: the recorded ${attr.command.name} returned ${
          returned.byteLength / elementSize
        } element(s), fewer than processed ${processed}`,
      );
    }
    target.set(returned.subarray(0, processed * elementSize));
  }
  attr.setU32(count, processed);
}

function errnoOf(name: string): number {
  const errno = errnoNumber(name) ?? /^E(\d+)$/.exec(name)?.[1];
  if (errno === undefined) throw new Error(`bpfmap: unknown errno ${name} in a transcript`);
  return Number(errno);
}
