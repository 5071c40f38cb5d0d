/**
 * `transcriptTests(import.meta.url)` gives a test file its `transcriptTest`:
 * a `node:test` test that runs on a system opened on
 * `fixtures/<test file>/<test name>.json` in auto mode, so that the same
 * assertions run live on Linux (recording the transcript the first time,
 * verifying it when `BPFMAP_TRANSCRIPT=verify`) and replay anywhere else.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { forwardingBackend, type SyscallBackend } from "../../ffi/backend.ts";
import { Kernel, POSSIBLE_CPUS_PATH, setLiveKernel } from "../../ffi/kernel.ts";
import { openLiveBackend, readEnv } from "../../ffi/live.ts";
import type { PathPlaceholders } from "../../replay/identities.ts";
import {
  fixtureName,
  type TranscriptTest,
  transcriptTests as shippedTranscriptTests,
} from "../../testing/mod.ts";

/**
 * Fakes this machine's possible-CPU count for a whole run (e.g.
 * `BPFMAP_TEST_MACHINE_CPUS=4`): the process's live kernel then answers that
 * count, as a machine with that many CPUs would. Replays must not care:
 * they serve the recording host's count, and a test must ask its system
 * (`system.possibleCpus()`), never the machine.
 */
export const MACHINE_CPUS_ENV = "BPFMAP_TEST_MACHINE_CPUS";

const machineCpus = readEnv(MACHINE_CPUS_ENV);
if (machineCpus) setLiveKernel(new Kernel(machineWithCpus(Number(machineCpus))));

/**
 * The live backend, opened when first needed (a replay run may have no FFI),
 * with `/sys/devices/system/cpu/possible` listing `cpus` CPUs.
 */
function machineWithCpus(cpus: number): SyscallBackend {
  if (!Number.isInteger(cpus) || cpus < 1) {
    throw new RangeError(`${MACHINE_CPUS_ENV}=${machineCpus}: expected a positive integer`);
  }
  let real: SyscallBackend | undefined;
  const live = () => (real ??= openLiveBackend());
  return Object.assign(forwardingBackend(live), {
    readTextFile: (path: string) =>
      path === POSSIBLE_CPUS_PATH
        ? `0-${cpus - 1}\n`.replace(/^0-0/, "0")
        : live().readTextFile(path),
  });
}

/** The fixtures folder at the repository's root. */
export const FIXTURES = join(dirname(dirname(dirname(fileURLToPath(import.meta.url)))), "fixtures");

/**
 * The suite's blob store: each blob of the fixtures (bytes over 4 KiB, such
 * as the kernel's BTF) once, as `<sha-256>.gz`, named by every fixture that
 * holds it (`scripts/fixtures_blobs.ts` moves the blobs of a transcript
 * recorded without it).
 */
export const BLOB_STORE = join(FIXTURES, ".blobs");

export { fixtureName };

/** The transcript path of test `name` in the test file at `moduleUrl`. */
export function fixturePath(moduleUrl: string, name: string): string {
  return join(FIXTURES, basename(fileURLToPath(moduleUrl)), `${fixtureName(name)}.json`);
}

/** Options of {@linkcode transcriptTests}. */
export interface TranscriptTestOptions {
  /**
   * This run's own folders by placeholder name (see `openSystem`'s `paths`),
   * asked for when each test starts: a folder made in `before()` counts.
   */
  paths?: () => PathPlaceholders;
}

/**
 * The `transcriptTest` of one test file: the one `bpfmap/testing` ships
 * (so the project runs the helper its users get), on
 * `fixtures/<test file>/`, its blobs in {@linkcode BLOB_STORE}.
 *
 * @example
 * ```ts ignore
 * const transcriptTest = transcriptTests(import.meta.url);
 * transcriptTest("queues are FIFO", (system) => {
 *   using queue = system.createMap({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 2 });
 * });
 * ```
 */
export function transcriptTests(
  moduleUrl: string,
  opts: TranscriptTestOptions = {},
): TranscriptTest {
  const fixtures = join(FIXTURES, basename(fileURLToPath(moduleUrl)));
  return shippedTranscriptTests({ fixtures, paths: opts.paths, blobStore: BLOB_STORE });
}

/**
 * A transcript's text with the recording kernel's release set aside: the
 * machines here get new kernel builds (`6.18.44-fc-v595`, then `-v657`)
 * that answer every call alike, so a test comparing a fresh recording with
 * a committed fixture compares this. Everything else, the architecture and
 * the possible CPUs included, must match byte for byte.
 */
export function withoutKernelRelease(text: string): string {
  const end = text.indexOf("\n");
  return text.slice(0, end).replace(/"kernel":"[^"]*"/, "\"kernel\":\"*\"") + text.slice(end);
}
