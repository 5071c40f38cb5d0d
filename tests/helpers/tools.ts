/**
 * `toolTest`: a `node:test` test that needs programs from the machine (gcc,
 * strace, bpftool, clang) or files (`/usr/include/linux/bpf.h`). `npm test`
 * installs every one of them; where one is still missing the test is skipped
 * with the reason, except with `CI=true` on Linux, where it fails: a test that
 * cannot run is never counted as a pass there.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { mustRunLive } from "./live.ts";

/** What a test needs: commands run with `--version`, and paths that must exist. */
export interface ToolNeeds {
  /** Commands that must answer `COMMAND --version` (or `version`, for bpftool). */
  commands?: readonly string[];
  /** Files or folders that must exist. */
  paths?: readonly string[];
}

const answers = new Map<string, boolean>();

/** Whether `command` runs here (`--version`, or `version` for bpftool); asked once per command. */
export function hasCommand(command: string): boolean {
  let known = answers.get(command);
  if (known === undefined) {
    const args = command === "bpftool" ? ["version"] : ["--version"];
    known = spawnSync(command, args, { stdio: "ignore" }).status === 0;
    answers.set(command, known);
  }
  return known;
}

/** What is missing of `needs`, in words, or `undefined` when everything is here. */
export function missingTools(needs: ToolNeeds): string | undefined {
  const missing = [
    ...(needs.commands ?? []).filter((command) => !hasCommand(command)),
    ...(needs.paths ?? []).filter((path) => !existsSync(path)),
  ];
  return missing.length === 0 ? undefined : `missing: ${missing.join(", ")}`;
}

/**
 * Registers a test that needs `needs`. Missing tools skip it, but fail it in
 * CI on Linux (`npm test` installs them all, so there a missing one is a
 * broken setup, not a reason to pass).
 */
export function toolTest(name: string, needs: ToolNeeds, fn: () => void | Promise<void>): void {
  const missing = missingTools(needs);
  if (missing === undefined) {
    test(name, fn);
  } else if (mustRunLive) {
    test(name, () => {
      throw new Error(`${missing}: npm test installs it; CI must not skip this test`);
    });
  } else {
    test(name, { skip: missing }, fn);
  }
}
