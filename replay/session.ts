/**
 * How a recording, verifying or replaying backend ends with its system: the
 * system closes its maps, then calls the backend's `finish()`, whatever kind
 * it is. A live backend has nothing to finish and no `finish()`.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { closeSync, constants, openSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { SyscallBackend } from "../ffi/backend.ts";
import type { TranscriptHost } from "./transcript.ts";

/** What a system knows at its end and hands its backend's `finish()`. */
export interface SessionEnd {
  /** The transcript's path. */
  readonly transcript: string;
  /** The host the transcript describes. */
  readonly host: TranscriptHost;
  /**
   * The code run on the system threw (see `BpfSystem.run`): record writes
   * nothing, and replay and verify keep their own complaints to themselves,
   * so that the code's error is the one its runner shows.
   */
  readonly failed?: boolean;
}

/** A backend that has work to do when its system closes. */
export interface SessionBackend extends SyscallBackend {
  /**
   * Record writes the transcript; verify writes the live run's and fails on
   * any difference; replay fails if calls were left unplayed.
   */
  finish(end: SessionEnd): Promise<void>;
}

/**
 * Writes a file through a temporary one and a rename: a crash never leaves
 * half a transcript. The temporary file is created new (`O_EXCL`, never
 * through a symlink: `O_NOFOLLOW`) under an unguessable name in the target's
 * own folder, so no one can plant a link there and redirect the write; the
 * rename then replaces `path` itself, a symlink at `path` included, never
 * what such a link leads to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { writeAtomically } from "./session.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "bpfmap-"));
 * writeFileSync(join(dir, "precious"), "keep");
 * symlinkSync(join(dir, "precious"), join(dir, "t.json"));
 * await writeAtomically(join(dir, "t.json"), "new");
 * assert.equal(readFileSync(join(dir, "t.json"), "utf8"), "new");
 * assert.equal(readFileSync(join(dir, "precious"), "utf8"), "keep"); // the link was replaced
 * ```
 */
export async function writeAtomically(path: string, text: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${randomBytes(12).toString("hex")}.tmp`;
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  const fd = openSync(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    try {
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    await rename(temporary, path);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch { /* already renamed, or never written */ }
    throw error;
  }
}
