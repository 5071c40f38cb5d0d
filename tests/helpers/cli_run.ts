/**
 * Runs the `bpfmap` command, and bpftool beside it, as children of the test:
 * the one runner of the CLI tests (`cli`, `cli_prog`, `cli_streams`).
 *
 * @module
 */

import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../../ffi/live.ts";
import { TRANSCRIPT_ENV } from "../../mod.ts";

/** cli/main.ts's path. */
export const CLI: string = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

/** What a child printed, and how it ended. */
export interface Run {
  stdout: string;
  stderr: string;
  status: number | null;
}

/**
 * bpfmap's command line in this runtime; `ffi: false` runs it as a machine
 * without BPF would. Deno hands a deno child spawned from node:child_process
 * its parent's permissions: "no FFI" must be said with --deny-ffi.
 */
export function bpfmapCommand(ffi = true): [string, ...string[]] {
  const permissions = ffi
    ? ["--allow-ffi", "--allow-read", "--allow-write"]
    : ["--allow-read", "--deny-ffi"];
  return detectRuntime() === "deno"
    ? [process.execPath, "run", ...permissions, CLI]
    : [process.execPath, CLI];
}

/** The environment of a bpfmap child: this run's transcript mode is not the command's. */
export function childEnv(ffi = true): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env[TRANSCRIPT_ENV];
  if (!ffi) env.BPFMAP_FORBID_LIVE = "1";
  return env;
}

/** Runs `bpfmap ARGS` to its end (`ffi: false`: with no FFI, as a replay-only machine). */
export function bpfmap(args: string[], opts: { ffi?: boolean } & SpawnSyncOptions = {}): Run {
  const [command, ...prefix] = bpfmapCommand(opts.ffi);
  const { ffi: _ffi, ...spawnOptions } = opts;
  const run = spawnSync(command, [...prefix, ...args], {
    encoding: "utf8",
    env: childEnv(opts.ffi),
    maxBuffer: 1 << 28,
    ...spawnOptions,
  });
  return { stdout: String(run.stdout), stderr: String(run.stderr), status: run.status };
}

/** Runs `bpftool ARGS` to its end. */
export function bpftool(args: string[]): Run {
  const run = spawnSync("bpftool", args, { encoding: "utf8", maxBuffer: 1 << 28 });
  return { stdout: run.stdout, stderr: run.stderr, status: run.status };
}
