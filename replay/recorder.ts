/**
 * The recorder: a backend that passes every call to the live kernel and
 * writes down, in transcript form, what went in and what came out.
 *
 * @module
 */

import type { Attr } from "../ffi/attr.ts";
import type { PerfEventOpenArgs, SyscallBackend } from "../ffi/backend.ts";
import type { EpollOp, EpollResult } from "../ffi/epoll.ts";
import { errnoName } from "../ffi/errno.ts";
import { checkSpan, type MappedRegion, type MapProtection } from "../ffi/mmap.ts";
import { checkArgs } from "../ffi/primitive_args.ts";
import type { BlobStore } from "./blobs.ts";
import { LiveIdentities, type PathPlaceholders } from "./identities.ts";
import { completeEntry, inputEntry, ioctlArgument, perfEventEntry } from "./normalize.ts";
import { type SessionBackend, type SessionEnd, writeAtomically } from "./session.ts";
import {
  encodeBytes,
  type Entry,
  type EpollEntry,
  type MemoryEntry,
  serializeTranscript,
  type Transcript,
  TRANSCRIPT_FORMAT,
  TRANSCRIPT_VERSION,
  type TranscriptHost,
} from "./transcript.ts";

/**
 * The fdinfo fields a transcript keeps: those that describe the map and do
 * not change from run to run (not `pos`, `mnt_id`, `ino` or `map_id`).
 */
export const STABLE_FDINFO_FIELDS: readonly string[] = [
  "map_type",
  "key_size",
  "value_size",
  "max_entries",
  "map_flags",
  "map_extra",
  "memlock",
  "frozen",
  "owner_prog_type",
  "owner_jited",
  // Not a map's: they say what an fd that should have been a map is (openPinned, fromFd).
  "prog_type",
  "link_type",
  "btf_id",
];

/**
 * Records every call made through it. `transcript()` gives what was recorded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { Kernel, liveKernel } from "../ffi/kernel.ts";
 * import { RecordingBackend } from "./recorder.ts";
 *
 * const recorder = new RecordingBackend(liveKernel().backend);
 * {
 *   using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 }, new Kernel(recorder));
 *   map.lookup(new Uint8Array(4));
 * }
 * assert.deepEqual(recorder.entries.map((e) => "call" in e ? e.call : "close"), [
 *   "BPF_MAP_CREATE", "BPF_OBJ_GET_INFO_BY_FD", "BPF_MAP_LOOKUP_ELEM", "close",
 * ]);
 * ```
 */
export class RecordingBackend implements SessionBackend {
  readonly runtime: string;
  /** The calls recorded so far, in order. */
  readonly entries: Entry[] = [];
  /** The files read so far, by path. */
  readonly files: Record<string, string> = {};
  readonly #live: SyscallBackend;
  readonly #ids: LiveIdentities;
  #pageSize: number | undefined;
  #mappings = 0;

  readonly #blobStore: BlobStore | undefined;

  /**
   * `paths`: a run's own folders, written in the transcript as their
   * placeholders; `blobStore`: where the transcript's blobs go, shared with
   * other transcripts (default: in the transcript).
   */
  constructor(live: SyscallBackend, paths: PathPlaceholders = {}, blobStore?: BlobStore) {
    this.#blobStore = blobStore;
    this.#live = live;
    this.#ids = new LiveIdentities(paths);
    this.runtime = live.runtime;
  }

  /**
   * Called with each entry as it is recorded (a wait that is still pending
   * comes with what it was asked; its answer is filled in later): the
   * verifier compares here.
   */
  protected recorded(_entry: Entry): void {}

  #push(entry: Entry): void {
    this.entries.push(entry);
    this.recorded(entry);
  }

  bpf(attr: Attr): number {
    const entry = inputEntry(attr, this.#ids);
    const result = this.#live.bpf(attr);
    completeEntry(entry, attr, result, this.#ids, (fd) => this.#ids.newHandle(fd));
    this.#push(entry);
    return result;
  }

  close(fd: number): number {
    const handle = this.#ids.closed(fd);
    const result = this.#live.close(fd);
    this.#push(result < 0 ? { close: handle, errno: errnoName(-result) } : { close: handle });
    return result;
  }

  /** The live page size; the transcript's host notes it once the code has asked. */
  get pageSize(): number {
    this.#pageSize = this.#live.pageSize;
    return this.#pageSize;
  }

  readFile(path: string): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = this.#live.readFile(path);
    } catch (error) {
      const { code, syscall } = error as { code?: unknown; syscall?: unknown };
      if (typeof code === "string" && (syscall === "open" || syscall === "read")) {
        this.#push({ readFile: path, errno: code, at: syscall });
      }
      throw error;
    }
    this.#push({ readFile: path, bytes: encodeBytes(bytes) });
    return bytes;
  }

  perfEventOpen(...args: PerfEventOpenArgs): number {
    checkArgs.perfEventOpen(...args); // before the entry is made of them
    const entry = perfEventEntry(this.#ids, ...args);
    const result = this.#live.perfEventOpen(...args);
    this.#push(completeEntry(entry, args[0], result, this.#ids, (fd) => this.#ids.newHandle(fd)));
    return result;
  }

  ioctl(fd: number, request: number, arg: number): number {
    const ids = this.#ids;
    const result = this.#live.ioctl(fd, request, arg);
    const entry = { ioctl: ids.handleOf(fd), request, arg: ioctlArgument(request, arg, ids) };
    this.#push(result < 0 ? { ...entry, errno: errnoName(-result) } : { ...entry, result });
    return result;
  }

  mmap(fd: number, length: number, prot: MapProtection, offset: number): MappedRegion | number {
    const region = this.#live.mmap(fd, length, prot, offset);
    const entry = { mmap: this.#ids.handleOf(fd), length, prot, offset };
    if (typeof region === "number") {
      this.#push({ ...entry, errno: errnoName(-region) });
      return region;
    }
    const mapping = ++this.#mappings;
    this.#push({ ...entry, result: { mapping } });
    // The code reads and writes a private copy, never the live pages: a producer (the kernel,
    // a program) may write between an observe and the read it is for, and the transcript must
    // hold what the code acted on. observe copies a span in, wrote copies it out. The copy is
    // the mapping's size, so offsets are the same; a span of a ring's double-mapped data is
    // copied as the one contiguous span the code reads, as the replay's region serves it.
    const live = region.bytes;
    const copy = new Uint8Array(length);
    const note = (kind: "observe" | "wrote", offset: number, size: number) => {
      checkSpan(kind, copy, offset, size);
      const span = copy.subarray(offset, offset + size);
      if (kind === "observe") {
        region.observe(offset, size);
        span.set(live.subarray(offset, offset + size));
      } else {
        live.set(span, offset);
        region.wrote(offset, size);
      }
      this.#push(
        { [kind]: mapping, offset, size, bytes: encodeBytes(span) } as unknown as MemoryEntry,
      );
    };
    let unmapped = false;
    return {
      length,
      bytes: copy,
      observe: (offset, size) => note("observe", offset, size),
      wrote: (offset, size) => note("wrote", offset, size),
      unmap: () => {
        if (unmapped) return 0;
        unmapped = true;
        const result = region.unmap();
        // As a replay's: views of the mapping read as empty once it is gone.
        if (!copy.buffer.detached) copy.buffer.transfer(0);
        this.#push(
          result < 0 ? { munmap: mapping, errno: errnoName(-result) } : { munmap: mapping },
        );
        return result;
      },
    };
  }

  epollCreate(): number {
    const result = this.#live.epollCreate();
    this.#push(
      result < 0
        ? { epoll: "create", errno: errnoName(-result) }
        : { epoll: "create", result: { fd: this.#ids.newHandle(result) } },
    );
    return result;
  }

  epollCtl(epfd: number, op: EpollOp, fd: number, events: number): number {
    const ids = this.#ids;
    const result = this.#live.epollCtl(epfd, op, fd, events);
    const entry: EpollEntry = {
      epoll: "ctl",
      epfd: ids.handleOf(epfd),
      op,
      fd: ids.handleOf(fd),
      events,
    };
    this.#push(result < 0 ? { ...entry, errno: errnoName(-result) } : { ...entry, result });
    return result;
  }

  epollWait(epfd: number, maxEvents: number, timeoutMs: number): EpollResult {
    const result = this.#live.epollWait(epfd, maxEvents, timeoutMs);
    this.#push(
      this.#waited({ epoll: "wait", epfd: this.#ids.handleOf(epfd), maxEvents, timeoutMs }, result),
    );
    return result;
  }

  async epollWaitAsync(epfd: number, maxEvents: number, timeoutMs: number): Promise<EpollResult> {
    const waiting = this.#live.epollWaitAsync(epfd, maxEvents, timeoutMs);
    // Recorded where it was asked, in call order: calls made while it waits come after it.
    const entry: EpollEntry = {
      epoll: "waitAsync",
      epfd: this.#ids.handleOf(epfd),
      maxEvents,
      timeoutMs,
      ready: [],
    };
    this.#push(entry);
    const result = await waiting;
    this.#waited(entry, result);
    return result;
  }

  /** `entry` completed with what a wait returned: the ready fds as handles, or the errno. */
  #waited(entry: EpollEntry, result: EpollResult): EpollEntry {
    if (typeof result === "number") {
      delete entry.ready;
      entry.errno = errnoName(-result);
    } else {
      entry.ready = result.map(({ fd, events }) => ({ fd: this.#ids.handleOf(fd), events }));
    }
    return entry;
  }

  baseAddress(buffer: ArrayBufferLike): number {
    return this.#live.baseAddress(buffer);
  }

  fdInfo(fd: number): Record<string, string> {
    const fields = this.#live.fdInfo(fd);
    const stable: Record<string, string> = {};
    for (const key of STABLE_FDINFO_FIELDS) {
      const value = fields[key];
      if (value === undefined) continue;
      // A BTF object's id differs from run to run: written as the virtual id its
      // other calls (Btf.fromFd's info, listBtfIds) give it, so a replay hands out the same.
      stable[key] = key === "btf_id" ? String(this.#ids.idOut(Number(value), "btf")) : value;
    }
    this.#push({ fdinfo: this.#ids.handleOf(fd), fields: stable });
    return stable;
  }

  readTextFile(path: string): string {
    const text = this.#live.readTextFile(path);
    this.files[path] = text;
    return text;
  }

  /**
   * Writes the transcript of everything recorded (atomically), unless the
   * session failed: half a run is no reference, and an older transcript
   * stays as it was.
   */
  async finish(end: SessionEnd): Promise<void> {
    if (end.failed) {
      console.warn(
        `bpfmap: ${end.transcript} not recorded: the code run on the system failed. `
          + `Fix it and run again: a missing transcript is recorded in auto mode, `
          + `BPFMAP_TRANSCRIPT=record re-records one.`,
      );
      return;
    }
    const store = this.#blobStore?.for(end.transcript);
    await writeAtomically(end.transcript, serializeTranscript(this.transcript(end.host), store));
  }

  /** The transcript of everything recorded, for a host described by `host`. */
  transcript(host: TranscriptHost): Transcript {
    const files = Object.fromEntries(Object.entries(this.files).sort(([a], [b]) => a < b ? -1 : 1));
    return {
      format: TRANSCRIPT_FORMAT,
      version: TRANSCRIPT_VERSION,
      host: this.#pageSize === undefined ? host : { ...host, pageSize: this.#pageSize },
      files,
      entries: this.entries,
    };
  }
}
