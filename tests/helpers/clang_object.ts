/**
 * Maps another program created, as bpfmap meets them in the field: a BPF
 * object built by clang from `tests/bpf/maps.bpf.c`, loaded by bpftool
 * (libbpf creates the maps with the BTF clang wrote, and pins them), and
 * filled through bpftool.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { BpfSystem } from "../../mod.ts";
import { bpffsForTests } from "./bpffs.ts";
import { liveUnavailable, mustRunLive, replayRun } from "./live.ts";
import { buildObject } from "./object_build.ts";
import { transcriptTests } from "./transcript.ts";

/**
 * Transcript tests on the object's maps, for a test file: live, the object is
 * loaded on a bpffs of the file's own before its tests (transcripts write that
 * folder as `${BPFFS}`, `bpffs()` gives it); where it cannot be built, a test
 * is skipped with the reason, or fails in CI.
 */
export function clangTests(moduleUrl: string, prefix: string): {
  clangTest: (name: string, fn: (system: BpfSystem) => void) => void;
  bpffs: () => string;
} {
  const live = !replayRun && liveUnavailable === undefined;
  const missing = live ? clangUnavailable() : undefined;
  const path = bpffsForTests(prefix, (dir) => {
    if (missing === undefined) loadClangObject(dir);
  });
  const transcriptTest = transcriptTests(moduleUrl, { paths: () => ({ BPFFS: path() }) });
  const clangTest = (name: string, fn: (system: BpfSystem) => void) => {
    if (missing === undefined) transcriptTest(name, fn);
    else if (mustRunLive) test(name, () => assert.fail(`cannot build the BPF object: ${missing}`));
    else test(name, { skip: `cannot build the BPF object: ${missing}` }, () => {});
  };
  return { clangTest, bpffs: path };
}

/** Why the object cannot be built and loaded here, or `undefined` when it can. */
export function clangUnavailable(): string | undefined {
  for (const [tool, args] of [["clang", ["--version"]], ["bpftool", ["version"]]] as const) {
    if (spawnSync(tool, args).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync("/usr/include/bpf/bpf_helpers.h")) {
    return "libbpf's headers (Debian's libbpf-dev) are not installed";
  }
  return undefined;
}

/**
 * Builds the object and loads it with bpftool, pinning its program at
 * `dir/prog` and its maps at `dir/maps/{flows,policies,counters}` (its global
 * data at `dir/maps/maps_{bss,data,rodata}`), then writes one element into
 * each of the first three through bpftool.
 */
export function loadClangObject(dir: string): void {
  const build = mkdtempSync(join(tmpdir(), "bpfmap-clang-"));
  try {
    const object = buildObject("maps.bpf.c", build);
    mkdirSync(dir, { recursive: true }); // a folder inside a mounted bpffs
    run("bpftool", ["prog", "load", object, `${dir}/prog`, "pinmaps", `${dir}/maps`]);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  const update = (map: string, bytes: string) =>
    run("bpftool", ["map", "update", "pinned", `${dir}/maps/${map}`, ...bytes.split(" ")]);
  // 10.0.0.1 -> port 80 (network order), TCP: 5 packets, 100 bytes, "eth0".
  update(
    "flows",
    "key 10 0 0 1 0 80 6 0 value 0 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0 100 0 0 0 0 0 0 0 101 116 104 48 0 0 0 0",
  );
  // REDIRECT, mark 0x123 and prio 5 in 16 bits of bitfields, weight -2.
  update("policies", "key 1 0 0 0 value 2 0 0 0 0x23 0x51 0xfe 0xff");
  // bpftool writes a per-CPU value to every CPU.
  update("counters", "key 1 0 0 0 value 7 0 0 0 0 0 0 0");
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status}):\n${result.stderr}`);
  }
}
