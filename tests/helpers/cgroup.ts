/**
 * A cgroup v2 directory of the test file's own, made in `before()` and
 * removed in `after()` (its processes have all exited by then). The cgroup2
 * hierarchy is mounted afresh under the temporary directory (every cgroup2
 * mount shows the one hierarchy): Deno grants paths under `/sys` to
 * `--allow-all` only, and the tests run with `--allow-read`. A replay run
 * makes none: the tests' cgroup is then a stand-in folder, which the attach
 * calls open as they would the cgroup (its fd is `"foreign"` to a
 * transcript either way).
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before } from "node:test";
import { replayRun } from "./live.ts";

/** Registers the cgroup's making and removal; returns the getter of its path. */
export function cgroupForTests(prefix: string): () => string {
  if (replayRun) return () => tmpdir();
  let mount: string | undefined;
  let path: string | undefined;
  before(() => {
    mount = mkdtempSync(join(tmpdir(), "bpfmap-cgroup2-"));
    execFileSync("mount", ["-t", "cgroup2", "none", mount]);
    path = join(mount, `${prefix}${process.pid}`);
    mkdirSync(path);
  });
  after(() => {
    if (path !== undefined) rmdirSync(path);
    if (mount !== undefined) {
      execFileSync("umount", [mount]);
      rmdirSync(mount);
    }
  });
  return () => path ?? notYet();
}

function notYet(): never {
  throw new Error("the test file's cgroup is made in before(): ask for it inside a test");
}
