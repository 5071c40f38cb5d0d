/**
 * A bpffs of a test file's own. `freshBpffs()` mounts one in a new folder
 * for each run, so that two runs on one machine never share pins; the
 * transcripts write that folder as a placeholder (`${BPFFS}`, see
 * `openSystem`'s `paths`), so the folder's name never reaches a fixture.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A bpffs mounted for this run: its folder, and how to unmount and remove it. */
export interface FreshBpffs {
  readonly path: string;
  unmount(): void;
}

/**
 * Mounts a bpffs in a new folder under the temporary directory
 * (`mkdtempSync`), named after `prefix`.
 */
export function freshBpffs(prefix = "bpfmap-bpffs-"): FreshBpffs {
  const path = mkdtempSync(join(tmpdir(), prefix));
  execFileSync("mount", ["-t", "bpf", "bpf", path]);
  return { path, unmount: unmountAndRemove(path) };
}

/**
 * The folder a replay run gives as its bpffs: replays reach no file system,
 * so any absolute folder stands for the recorded `${BPFFS}`; this one makes
 * plain that nothing is mounted there.
 */
export const REPLAY_BPFFS = "/nonexistent/bpfmap-replay-bpffs";

function unmountAndRemove(dir: string): () => void {
  return () => {
    execFileSync("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  };
}
