/**
 * The player: a backend that answers every call from a transcript, with no
 * FFI at all, and stops at the first call the transcript does not hold.
 *
 * @module
 */

import type { Attr } from "../ffi/attr.ts";
import type { SyscallBackend } from "../ffi/backend.ts";
import { errnoNumber } from "../ffi/errno.ts";
import { describeEntry, diffEntries } from "./diff.ts";
import { ReplayIdentities } from "./identities.ts";
import { applyOutputs, inputEntry, learn } from "./normalize.ts";
import {
  type CloseEntry,
  type Entry,
  type FdInfoEntry,
  isCall,
  type Transcript,
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
 * counting every attempt) fails with `errno` before the kernel does anything;
 * the transcript's call is then still owed, so a retry plays it.
 */
export interface ReplayFault {
  call: number;
  errno: string;
}

/** Serves a transcript's calls in strict order. */
export class ReplayBackend implements SyscallBackend {
  readonly runtime = "replay";
  readonly #transcript: Transcript;
  readonly #path: string;
  readonly #ids = new ReplayIdentities();
  readonly #faults: Map<number, number>;
  #next = 0;
  #attempts = 0;
  /** Set once a fault was injected: cleanup closes the recording never made are then accepted. */
  #faulted = false;

  constructor(transcript: Transcript, path: string, faults: readonly ReplayFault[] = []) {
    this.#transcript = transcript;
    this.#path = path;
    this.#faults = new Map(faults.map((fault) => [fault.call, errnoOf(fault.errno)]));
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
    const fault = this.#faults.get(this.#attempts++);
    if (fault !== undefined) {
      this.#faulted = true;
      return -fault;
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
    if (differences.length > 0 && this.#faulted) return 0;
    if (expected === undefined) this.#expect(actual);
    if (differences.length > 0) throw this.#diverged(actual, differences);
    this.#next++;
    const errno = (expected as CloseEntry).errno;
    return errno === undefined ? 0 : -errnoOf(errno);
  }

  fdInfo(fd: number): Record<string, string> {
    const actual: FdInfoEntry = { fdinfo: this.#ids.handleOf(fd), fields: {} };
    const expected = this.#expect(actual);
    const differences = diffEntries(expected, actual, "inputs");
    if (differences.length > 0) throw this.#diverged(actual, differences);
    this.#next++;
    return { ...(expected as FdInfoEntry).fields };
  }

  baseAddress(): number {
    // Addresses never enter a transcript; the kernel never sees these attrs.
    return 0;
  }

  readTextFile(path: string): string {
    const text = this.#transcript.files[path];
    if (text === undefined) {
      throw new ReplayDivergenceError(this.#path, this.#next, `read ${path}`, [
        `the transcript holds no read of ${path} (it has: ${
          Object.keys(this.#transcript.files).join(", ") || "none"
        })`,
      ]);
    }
    return text;
  }

  /**
   * Checks that every recorded call was played.
   *
   * @throws {ReplayDivergenceError} naming the first call left unplayed.
   */
  finish(): void {
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
    return new ReplayDivergenceError(this.#path, this.#next, describeEntry(actual), differences);
  }
}

function errnoOf(name: string): number {
  const errno = errnoNumber(name) ?? /^E(\d+)$/.exec(name)?.[1];
  if (errno === undefined) throw new Error(`bpfmap: unknown errno ${name} in a transcript`);
  return Number(errno);
}
