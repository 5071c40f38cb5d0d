/**
 * The verifier: records a live run and compares it, call by call, with a
 * transcript recorded earlier, collecting every difference (kernel drift,
 * stale fixtures) instead of stopping at the first. A transcript recorded on
 * a host with another CPU count is compared per-CPU slot by slot for the
 * CPUs both hosts have (see `cpus.ts`).
 *
 * @module
 */

import { chmodSync, mkdirSync, mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { SyscallBackend } from "../ffi/backend.ts";
import { POSSIBLE_CPUS_PATH } from "../ffi/kernel.ts";
import { countCpuList } from "../ffi/percpu.ts";
import { PerCpuMaps } from "./cpus.ts";
import { describeEntry, diffEntries } from "./diff.ts";
import type { PathPlaceholders } from "./identities.ts";
import { RecordingBackend } from "./recorder.ts";
import { type SessionEnd, writeAtomically } from "./session.ts";
import { serializeTranscript, type Transcript } from "./transcript.ts";

let copyDir: string | undefined;

/**
 * Where verify mode writes the live run's transcripts, for a look when they
 * differ: a folder of this process's own, made on first use with `mkdtemp`
 * (mode 0700, an unguessable name), so that no other user can plant a
 * symlink where a copy will be written. A function: `tmpdir()` reads the
 * environment, which Deno allows only with --allow-env, and importing
 * bpfmap must need nothing but FFI.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { statSync } from "node:fs";
 * import { verifyCopyDir } from "./verifier.ts";
 *
 * assert.equal(statSync(verifyCopyDir()).mode & 0o777, 0o700);
 * assert.equal(verifyCopyDir(), verifyCopyDir()); // one per process
 * ```
 */
export function verifyCopyDir(): string {
  if (copyDir === undefined) {
    copyDir = mkdtempSync(join(tmpdir(), "bpfmap-verify-"));
    chmodSync(copyDir, 0o700);
  }
  return copyDir;
}

/**
 * Writes the live run's transcript of `transcript` under
 * {@linkcode verifyCopyDir} (at the transcript's absolute path inside it)
 * and returns where. Never onto the transcript itself: a copy path that
 * resolves to it (a link inside the folder) is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFileSync } from "node:fs";
 * import { verifyCopyDir, writeVerifyCopy } from "./verifier.ts";
 *
 * const copy = await writeVerifyCopy("/fixtures/t.json", "live run");
 * assert.equal(copy, `${verifyCopyDir()}/fixtures/t.json`);
 * assert.equal(readFileSync(copy, "utf8"), "live run");
 * ```
 */
export async function writeVerifyCopy(transcript: string, text: string): Promise<string> {
  const absolute = resolve(transcript);
  const copy = join(verifyCopyDir(), absolute.replace(/^\//, ""));
  mkdirSync(dirname(copy), { recursive: true, mode: 0o700 });
  if (join(realpathSync(dirname(copy)), basename(copy)) === realpathOrSelf(absolute)) {
    throw new Error(`bpfmap: the verify copy ${copy} leads to the transcript itself; not written`);
  }
  await writeAtomically(copy, text, 0o600);
  return copy;
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * A live run differed from the transcript it was verified against.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { openSystem, TranscriptMismatchError } from "../mod.ts";
 *
 * const transcript = join(mkdtempSync(join(tmpdir(), "bpfmap-")), "session.json");
 * const session = async (mode: "record" | "verify") => {
 *   const system = await openSystem({ transcript, mode, modeFromEnvironment: false });
 *   system.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 8 });
 *   return system.close();
 * };
 * await session("record");
 * // As if the kernel had once answered another map size.
 * writeFileSync(transcript, readFileSync(transcript, "utf8").replace('"max_entries":8', '"max_entries":9'));
 * await assert.rejects(session("verify"), (error) =>
 *   error instanceof TranscriptMismatchError
 *   && error.differences[0] === "call #0 (BPF_MAP_CREATE): max_entries: expected 9, got 8");
 * ```
 */
export class TranscriptMismatchError extends Error {
  /** Every difference, one per line. */
  readonly differences: string[];

  constructor(transcript: string, copy: string, differences: string[]) {
    super(
      `${transcript}: the live run differs from the transcript in ${differences.length} place(s) `
        + `(its own transcript: ${copy}):\n` + differences.map((line) => `  - ${line}`).join("\n"),
    );
    this.name = "TranscriptMismatchError";
    this.differences = differences;
  }
}

/**
 * Runs live, like the recorder, and compares each call with the transcript's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { Kernel, liveKernel } from "../ffi/kernel.ts";
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
 * assert.deepEqual(same.differences, []); // compared call by call, as they are made
 * const other = new VerifyingBackend(liveKernel().backend, transcript);
 * session(new Kernel(other), 5);
 * assert.equal(other.differences[0], "call #0 (BPF_MAP_CREATE): max_entries: expected 4, got 5");
 * ```
 */
export class VerifyingBackend extends RecordingBackend {
  /** Every difference found so far, one line each, prefixed by the call. */
  readonly differences: string[] = [];
  readonly #expected: Transcript;
  readonly #perCpu = new PerCpuMaps();
  #liveCpus: number | undefined;

  /** `paths`: this run's own folders, for the placeholders the transcript holds. */
  constructor(live: SyscallBackend, expected: Transcript, paths: PathPlaceholders = {}) {
    super(live, paths);
    this.#expected = expected;
  }

  /**
   * Compares each entry as it is recorded. What depends on timing is not
   * compared (see `diff.ts`): the bytes a mapping held when the code looked
   * and what it wrote back, and which fds a wait found ready; the calls,
   * their inputs and the kernel's other answers are.
   */
  protected override recorded(): void {
    this.#compareLast();
  }

  /**
   * Writes the live run's transcript under {@linkcode verifyCopyDir}, and
   * fails with every difference, calls one side made and the other did not
   * included.
   *
   * @throws {TranscriptMismatchError} if the run differs from the transcript.
   */
  override async finish(end: SessionEnd): Promise<void> {
    const differences = this.#finalDifferences();
    const copy = await writeVerifyCopy(
      end.transcript,
      serializeTranscript(this.transcript(end.host)),
    );
    // A failed session: its own error is the one to show; the copy says the rest.
    if (differences.length > 0 && !end.failed) {
      throw new TranscriptMismatchError(end.transcript, copy, differences);
    }
  }

  /** Every difference, including calls one side made and the other did not. */
  #finalDifferences(): string[] {
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
    // Called after each call is pushed: there is a last entry.
    let actual = this.entries[index]!;
    let expected = this.#expected.entries[index];
    this.#perCpu.learn(actual);
    if (expected === undefined) {
      this.differences.push(`call #${index} (${describeEntry(actual)}): not in the transcript`);
      return;
    }
    // Recorded on a host with another CPU count: per-CPU values compare for the CPUs both have.
    this.#liveCpus ??= countCpuList(this.readTextFile(POSSIBLE_CPUS_PATH));
    const recordedCpus = this.#expected.host.possibleCpus;
    const common = Math.min(recordedCpus, this.#liveCpus);
    expected = this.#perCpu.project(expected, recordedCpus, common);
    actual = this.#perCpu.project(actual, this.#liveCpus, common);
    for (const line of diffEntries(expected, actual, "all")) {
      this.differences.push(`call #${index} (${describeEntry(actual)}): ${line}`);
    }
  }
}
