/**
 * Recorded CLI runs, for the test files of `bpfmap prog` and `bpfmap link`:
 * live, a command is run beside bpftool, recorded as a transcript and
 * replayed with no BPF; its fixtures (the transcript, and bpftool's output
 * as the replay must print it) then replay in every pass.
 *
 * @module
 */

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { readEnv } from "../../ffi/live.ts";
import { TRANSCRIPT_ENV } from "../../mod.ts";
import { bpfmap, bpftool } from "./cli_run.ts";
import { liveTest, liveUnavailable, replayRun } from "./live.ts";
import { CLANG_NEEDS } from "./object_build.ts";
import { missingTools, type ToolNeeds, toolTest } from "./tools.ts";
import { fixtureName, FIXTURES, withoutKernelRelease } from "./transcript.ts";

/** How a test file's recorded runs are set up. */
export interface RecordedRuns {
  /** The test file's name: its fixtures' folder under fixtures/. */
  file: string;
  /** The runs: a fixture name, and a command line whose `BPFFS` is the bpffs of the run. */
  runs: readonly (readonly [string, string])[];
  /** The bpffs folder, live (fixtures write it as `${BPFFS}`). */
  bpffs: () => string;
  /** Registers a live test beside bpftool (skipped or failed as the file's others are). */
  liveTest: (name: string, fn: () => void) => void;
  /** bpftool's output as a replay prints it (ids renumbered, times left out); default: as is. */
  asRecorded?: (stdout: string) => string;
  /** Checks of bpftool's output before it is compared (that it has what a replay leaves out). */
  check?: (stdout: string) => void;
}

/** Registers each run: replayed from its fixtures, or run live to record or verify them. */
export function recordedRuns(options: RecordedRuns): void {
  const mode = readEnv(TRANSCRIPT_ENV);
  const asRecorded = options.asRecorded ?? ((stdout: string) => stdout);
  for (const [name, line] of options.runs) {
    const args = () => {
      const bpffs = options.bpffs();
      return ["--path", `BPFFS=${bpffs}`, ...line.replaceAll("BPFFS", bpffs).split(" ")];
    };
    const transcript = join(FIXTURES, options.file, `${fixtureName(name)}.json`);
    const expectedPath = transcript.replace(/\.json$/, ".out");
    const title = `recorded run: bpfmap ${line.replace("BPFFS", "…")}`;
    if (replayRun || (mode === undefined && existsSync(transcript))) {
      test(title, () => {
        const replayed = bpfmap(["--replay", transcript, ...args()], { ffi: false });
        assert.deepEqual([replayed.stderr, replayed.status], ["", 0]);
        assert.equal(replayed.stdout, readFileSync(expectedPath, "utf8"));
      });
      continue;
    }
    options.liveTest(title, () => {
      const expected = bpftool(args().slice(2));
      assert.equal(expected.status, 0, expected.stderr);
      options.check?.(expected.stdout);
      const recording = mode !== "verify";
      const dir = recording ? undefined : mkdtempSync(join(tmpdir(), "bpfmap-recorded-"));
      try {
        const target = dir === undefined ? transcript : join(dir, "run.json");
        mkdirSync(dirname(target), { recursive: true });
        const live = bpfmap(["--record", target, ...args()]);
        assert.equal(live.stdout, expected.stdout, "bpfmap and bpftool differ");
        const replayed = bpfmap(["--replay", target, ...args()], { ffi: false });
        assert.equal(replayed.stdout, asRecorded(expected.stdout), "the replay differs");
        if (recording) {
          writeFileSync(expectedPath, replayed.stdout);
          return;
        }
        assert.equal(
          withoutKernelRelease(readFileSync(target, "utf8")),
          withoutKernelRelease(readFileSync(transcript, "utf8")),
          "the transcript changed",
        );
        assert.equal(
          readFileSync(expectedPath, "utf8"),
          replayed.stdout,
          "bpftool's output changed",
        );
      } finally {
        if (dir !== undefined) rmSync(dir, { recursive: true });
      }
    });
  }
}

/**
 * Runs each command line and checks that it is bad usage: exit code 2, and
 * stderr matching its pattern.
 */
export function assertUsageErrors(cases: readonly (readonly [string[], RegExp])[]): void {
  for (const [args, stderr] of cases) {
    const run = bpfmap(args);
    assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, stderr, args.join(" "));
  }
}

/** What the CLI tests beside bpftool need: bpftool, and clang with libbpf's headers. */
export const BPFTOOL_NEEDS: ToolNeeds = {
  commands: ["bpftool", ...CLANG_NEEDS.commands],
  paths: CLANG_NEEDS.paths,
};

/** Whether this run can load programs beside bpftool: live, with every tool of BPFTOOL_NEEDS. */
export const canUseBpftool: boolean = !replayRun && liveUnavailable === undefined
  && missingTools(BPFTOOL_NEEDS) === undefined;

/** A test beside bpftool and clang: live only (skipped in replay), failed in CI where one is missing. */
export function bpftoolTest(name: string, fn: () => void): void {
  if (replayRun || liveUnavailable !== undefined) liveTest(name, fn);
  else toolTest(name, BPFTOOL_NEEDS, fn);
}
