/**
 * The recorder: a backend that passes every call to the live kernel and
 * writes down, in transcript form, what went in and what came out.
 *
 * @module
 */

import type { Attr } from "../ffi/attr.ts";
import type { SyscallBackend } from "../ffi/backend.ts";
import { errnoName } from "../ffi/errno.ts";
import { LiveIdentities, type PathPlaceholders } from "./identities.ts";
import { completeEntry, inputEntry } from "./normalize.ts";
import { type SessionBackend, type SessionEnd, writeAtomically } from "./session.ts";
import {
  type Entry,
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

  /** `paths`: a run's own folders, written in the transcript as their placeholders. */
  constructor(live: SyscallBackend, paths: PathPlaceholders = {}) {
    this.#live = live;
    this.#ids = new LiveIdentities(paths);
    this.runtime = live.runtime;
  }

  bpf(attr: Attr): number {
    const entry = inputEntry(attr, this.#ids);
    const result = this.#live.bpf(attr);
    completeEntry(entry, attr, result, this.#ids, (fd) => this.#ids.newHandle(fd));
    this.entries.push(entry);
    return result;
  }

  close(fd: number): number {
    const handle = this.#ids.closed(fd);
    const result = this.#live.close(fd);
    this.entries.push(
      result < 0 ? { close: handle, errno: errnoName(-result) } : { close: handle },
    );
    return result;
  }

  baseAddress(buffer: ArrayBufferLike): number {
    return this.#live.baseAddress(buffer);
  }

  fdInfo(fd: number): Record<string, string> {
    const fields = this.#live.fdInfo(fd);
    const stable: Record<string, string> = {};
    for (const key of STABLE_FDINFO_FIELDS) {
      const value = fields[key];
      if (value !== undefined) stable[key] = value;
    }
    this.entries.push({ fdinfo: this.#ids.handleOf(fd), fields: stable });
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
    await writeAtomically(end.transcript, serializeTranscript(this.transcript(end.host)));
  }

  /** The transcript of everything recorded, for a host described by `host`. */
  transcript(host: TranscriptHost): Transcript {
    const files = Object.fromEntries(Object.entries(this.files).sort(([a], [b]) => a < b ? -1 : 1));
    return {
      format: TRANSCRIPT_FORMAT,
      version: TRANSCRIPT_VERSION,
      host,
      files,
      entries: this.entries,
    };
  }
}
