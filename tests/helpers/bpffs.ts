/**
 * A bpffs of a test file's own, at a fixed path (pinned paths appear in
 * transcripts): mounted fresh before its tests, unmounted and removed after.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";

/** Mounts a fresh bpffs at `dir`, replacing whatever was there; returns the unmount. */
export function mountBpffs(dir: string): () => void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "bpf", "bpf", dir]);
  return () => {
    execFileSync("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  };
}
