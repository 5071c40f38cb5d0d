/**
 * The verifier: records a live run and compares it, call by call, with a
 * transcript recorded earlier, collecting every difference (kernel drift,
 * stale fixtures) instead of stopping at the first.
 *
 * @module
 */

import type { Attr } from "../ffi/attr.ts";
import type { SyscallBackend } from "../ffi/backend.ts";
import { describeEntry, diffEntries } from "./diff.ts";
import type { PathPlaceholders } from "./identities.ts";
import { RecordingBackend } from "./recorder.ts";
import type { Transcript } from "./transcript.ts";

/**
 * Runs live, like the recorder, and compares each call with the transcript's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { Kernel, liveKernel } from "../kernel.ts";
 * import { RecordingBackend } from "./recorder.ts";
 * import { VerifyingBackend } from "./verifier.ts";
 *
 * const session = (kernel: Kernel, maxEntries: number) => {
 *   using _map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries }, kernel);
 * };
 * const recorder = new RecordingBackend(liveKernel().backend);
 * session(new Kernel(recorder), 4);
 * const transcript = recorder.transcript({ arch: "x86_64", kernel: "", possibleCpus: 2 });
 *
 * const same = new VerifyingBackend(liveKernel().backend, transcript);
 * session(new Kernel(same), 4);
 * assert.deepEqual(same.finish(), []);
 * const other = new VerifyingBackend(liveKernel().backend, transcript);
 * session(new Kernel(other), 5);
 * assert.equal(other.finish()[0], "call #0 (BPF_MAP_CREATE): max_entries: expected 4, got 5");
 * ```
 */
export class VerifyingBackend extends RecordingBackend {
  /** Every difference found so far, one line each, prefixed by the call. */
  readonly differences: string[] = [];
  readonly #expected: Transcript;

  /** `paths`: this run's own folders, for the placeholders the transcript holds. */
  constructor(live: SyscallBackend, expected: Transcript, paths: PathPlaceholders = {}) {
    super(live, paths);
    this.#expected = expected;
  }

  override bpf(attr: Attr): number {
    const result = super.bpf(attr);
    this.#compareLast();
    return result;
  }

  override close(fd: number): number {
    const result = super.close(fd);
    this.#compareLast();
    return result;
  }

  override fdInfo(fd: number): Record<string, string> {
    const fields = super.fdInfo(fd);
    this.#compareLast();
    return fields;
  }

  /** Every difference, including calls one side made and the other did not. */
  finish(): string[] {
    const made = this.entries.length;
    const recorded = this.#expected.entries.length;
    if (recorded > made) {
      this.differences.push(
        `the transcript holds ${recorded - made} more call(s), from #${made} (${
          describeEntry(this.#expected.entries[made])
        })`,
      );
    }
    return this.differences;
  }

  #compareLast(): void {
    const index = this.entries.length - 1;
    const actual = this.entries[index];
    const expected = this.#expected.entries[index];
    if (expected === undefined) {
      this.differences.push(`call #${index} (${describeEntry(actual)}): not in the transcript`);
      return;
    }
    for (const line of diffEntries(expected, actual, "all")) {
      this.differences.push(`call #${index} (${describeEntry(actual)}): ${line}`);
    }
  }
}
