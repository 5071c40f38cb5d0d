/**
 * `liveTest`: a `node:test` test that needs the real kernel. Where live BPF
 * is unavailable it is skipped, except with `CI=true` on Linux, where it
 * fails: CI must never pass on skipped live tests.
 *
 * @module
 */

import process from "node:process";
import { test } from "node:test";
import type { Attr } from "../../ffi/attr.ts";
import { forwardingBackend, type SyscallBackend } from "../../ffi/backend.ts";
import { Kernel, liveKernel } from "../../ffi/kernel.ts";
import { readEnv } from "../../ffi/live.ts";
import { BpfError, BpfMap, TRANSCRIPT_ENV } from "../../mod.ts";

function probeLive(): string | undefined {
  try {
    using _map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Whether this run replays transcripts only (`BPFMAP_TRANSCRIPT=replay`): live-only tests sit it out. */
export const replayRun = readEnv(TRANSCRIPT_ENV) === "replay";

/** Why live BPF cannot run here, or `undefined` when it can. A replay run does not even try. */
export const liveUnavailable: string | undefined = replayRun
  ? "this run replays transcripts"
  : probeLive();

/** Whether this run must not skip live tests: CI on Linux, except its replay-only pass. */
export const mustRunLive = process.env.CI === "true" && process.platform === "linux" && !replayRun;

/** Registers a test that talks to the real kernel. */
export function liveTest(name: string, fn: () => void | Promise<void>): void {
  if (replayRun) {
    test(name, { skip: "live-only test: this run replays transcripts" }, fn);
  } else if (liveUnavailable === undefined) {
    test(name, fn);
  } else if (mustRunLive) {
    test(name, () => {
      throw new Error(`live BPF is unavailable in CI on Linux: ${liveUnavailable}`);
    });
  } else {
    test(name, { skip: `live BPF unavailable: ${liveUnavailable}` }, fn);
  }
}

/**
 * A kernel that tallies the `bpf()` calls it passes on to `backend` (the live
 * one by default, or a system's recorder or player): by command name, by
 * `"NAME errno"` for failures, and in all. This is how tests prove that bad
 * input is refused before any syscall, or how a walk made its calls.
 */
export function tallyingKernel(
  live: SyscallBackend = liveKernel().backend,
): { kernel: Kernel; tally: Map<string, number>; calls(): number } {
  const tally = new Map<string, number>();
  let calls = 0;
  const tallying = Object.assign(forwardingBackend(() => live), {
    bpf(attr: Attr) {
      calls++;
      const result = live.bpf(attr);
      const name = attr.command.name;
      tally.set(name, (tally.get(name) ?? 0) + 1);
      if (result < 0) tally.set(`${name} ${-result}`, (tally.get(`${name} ${-result}`) ?? 0) + 1);
      return result;
    },
  });
  // Tests close their maps: a close chosen by the garbage collector would upset a transcript.
  return { kernel: new Kernel(tallying, { closesLeakedFds: false }), tally, calls: () => calls };
}

/** Runs the garbage collector where the runtime exposes it (`--expose-gc`, `Bun.gc`). */
export function collectGarbage(): void {
  const globals = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (globals.Bun !== undefined) globals.Bun.gc(true);
  else if (globals.gc !== undefined) globals.gc();
}

/** Whether {@linkcode collectGarbage} really collects here. */
export const canCollectGarbage: boolean = (globalThis as { Bun?: unknown }).Bun !== undefined
  || typeof (globalThis as { gc?: unknown }).gc === "function";

/** What `fn` throws, or `undefined` if it returns. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Asserts `fn` throws a `BpfError` with this code (and op, if given). */
export function throwsBpf(fn: () => unknown, code: string, op?: string): void {
  const error = thrown(fn);
  if (!(error instanceof BpfError)) {
    throw new Error(
      `expected a BpfError ${code}, got ${error === undefined ? "no error" : String(error)}`,
    );
  }
  if (error.code !== code || (op !== undefined && error.op !== op)) {
    throw new Error(
      `expected BpfError ${op ?? ""} ${code}, got ${error.op} ${error.code}: ${error.message}`,
    );
  }
}
