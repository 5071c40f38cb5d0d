/**
 * How a recording, verifying or replaying backend ends with its system: the
 * system closes its maps, then calls the backend's `finish()`, whatever kind
 * it is. A live backend has nothing to finish and no `finish()`.
 *
 * @module
 */

import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { SyscallBackend } from "../ffi/backend.ts";
import type { TranscriptHost } from "./transcript.ts";

/** What a system knows at its end and hands its backend's `finish()`. */
export interface SessionEnd {
  /** The transcript's path. */
  readonly transcript: string;
  /** The host the transcript describes. */
  readonly host: TranscriptHost;
}

/** A backend that has work to do when its system closes. */
export interface SessionBackend extends SyscallBackend {
  /**
   * Record writes the transcript; verify writes the live run's and fails on
   * any difference; replay fails if calls were left unplayed.
   */
  finish(end: SessionEnd): Promise<void>;
}

/** Writes a file through a temporary one and a rename: a crash never leaves half a transcript. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, path);
}
