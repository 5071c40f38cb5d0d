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
import { after, before } from "node:test";
import { liveUnavailable, replayRun } from "./live.ts";

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
 * {@linkcode freshBpffs}, then `mounted` on its folder; if `mounted` throws,
 * the bpffs is unmounted and its folder removed before the error goes on:
 * a `before` that throws runs no `after` (in Deno), which would leave it
 * mounted.
 */
export function mountedBpffs(prefix: string, mounted?: (path: string) => void): FreshBpffs {
  const fresh = freshBpffs(prefix);
  try {
    mounted?.(fresh.path);
  } catch (error) {
    try {
      fresh.unmount();
    } catch (cleanup) {
      // Both said: the test's failure, and why its bpffs is still mounted.
      throw new AggregateError([error, cleanup], `${fresh.path} left mounted`);
    }
    throw error;
  }
  return fresh;
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

/**
 * The bpffs of the tests of a file (or of the `describe` block it is called
 * in): mounted fresh before them when they run live, unmounted after;
 * {@linkcode REPLAY_BPFFS} in a replay run. `mounted` runs once it is there
 * (to take a lock, load an object into it). Returns the folder's getter:
 * it is known only once `before` has run.
 */
export function bpffsForTests(prefix: string, mounted?: (path: string) => void): () => string {
  let path = REPLAY_BPFFS;
  let fresh: FreshBpffs | undefined;
  before(() => {
    if (replayRun || liveUnavailable !== undefined) return;
    // The getter gives the folder from the start of `mounted` on, as `mounted`'s argument does.
    fresh = mountedBpffs(prefix, (dir) => {
      path = dir;
      mounted?.(dir);
    });
  });
  after(() => fresh?.unmount());
  return () => path;
}
