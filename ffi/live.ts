/**
 * The single entry point to live BPF: finds out which runtime this is and
 * opens that runtime's FFI backend, touching no other runtime's API. It
 * refuses, before any syscall, on a platform where `bpf()` cannot be issued.
 *
 * @module
 */

import { isLittleEndian, type Platform, syscallAbi } from "./arch.ts";
import type { SyscallBackend } from "./backend.ts";
import { openBunBackend } from "./bun_backend.ts";
import { openDenoBackend } from "./deno_backend.ts";

/**
 * Set to `1` to make any attempt to open the live backend throw (replay-only test runs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { FORBID_LIVE_ENV, openLiveBackend } from "./live.ts";
 *
 * const before = process.env[FORBID_LIVE_ENV];
 * process.env[FORBID_LIVE_ENV] = "1";
 * try {
 *   assert.throws(openLiveBackend, {
 *     message: "bpfmap: live BPF is forbidden here (BPFMAP_FORBID_LIVE=1): "
 *       + "a replay must not load FFI.",
 *   });
 * } finally {
 *   if (before === undefined) delete process.env[FORBID_LIVE_ENV];
 *   else process.env[FORBID_LIVE_ENV] = before;
 * }
 * ```
 */
export const FORBID_LIVE_ENV = "BPFMAP_FORBID_LIVE";

/**
 * An environment variable, or `undefined` where it is unset or may not be read (Deno without
 * --allow-env). Deno's permission is asked without a prompt: on a terminal, `Deno.env.get`
 * without --allow-env stops to ask the user, and bpfmap needs only --allow-ffi.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { readEnv } from "./live.ts";
 *
 * process.env.BPFMAP_EXAMPLE = "yes";
 * assert.equal(readEnv("BPFMAP_EXAMPLE"), "yes");
 * delete process.env.BPFMAP_EXAMPLE;
 * assert.equal(readEnv("BPFMAP_EXAMPLE"), undefined);
 * ```
 */
export function readEnv(name: string): string | undefined {
  try {
    const globals = globalThis as RuntimeGlobals & {
      process?: { env: Record<string, string | undefined> };
    };
    const deno = (globalThis as { Deno?: DenoEnv }).Deno;
    if (deno?.env !== undefined) {
      const { state } = deno.permissions.querySync({ name: "env", variable: name });
      return state === "granted" ? deno.env.get(name) : undefined;
    }
    return globals.process?.env[name];
  } catch {
    return undefined;
  }
}

/** The slice of Deno's API {@linkcode readEnv} uses. */
interface DenoEnv {
  env?: { get(name: string): string | undefined };
  permissions: {
    querySync(descriptor: { name: "env"; variable: string }): { state: string };
  };
}

/** The JavaScript runtime this module is running in. */
export type Runtime = "deno" | "bun" | "other";

interface RuntimeGlobals {
  Deno?: { build?: { os: string; arch: string }; dlopen?: unknown };
  Bun?: unknown;
  process?: { platform: string; arch: string };
}

/**
 * Which runtime this is: Deno if `Deno.dlopen` exists, Bun if `Bun` does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectRuntime } from "./live.ts";
 * assert.equal(detectRuntime(), "deno"); // doc tests run under Deno
 * ```
 */
export function detectRuntime(): Runtime {
  const globals = globalThis as RuntimeGlobals;
  if (typeof globals.Deno?.dlopen === "function") return "deno";
  if (globals.Bun !== undefined) return "bun";
  return "other";
}

/**
 * The OS, architecture and byte order this process runs on, read without any permission.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import process from "node:process";
 * import { currentPlatform } from "./live.ts";
 * assert.deepEqual(currentPlatform(), { os: "linux", arch: Deno.build.arch, littleEndian: true });
 * assert.equal(currentPlatform().os, process.platform);
 * ```
 */
export function currentPlatform(): Platform {
  const globals = globalThis as RuntimeGlobals;
  const build = globals.Deno?.build;
  const os = build?.os ?? globals.process?.platform ?? "unknown";
  const arch = build?.arch ?? globals.process?.arch ?? "unknown";
  return { os, arch, littleEndian: isLittleEndian() };
}

/**
 * Opens the live backend of the running runtime.
 *
 * @throws {Error} on a non-Linux OS, a big-endian CPU, an unknown
 * architecture, a runtime without FFI, or when libc cannot be loaded; no
 * syscall has been issued then.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLiveBackend } from "./live.ts";
 *
 * const backend = openLiveBackend();
 * assert.equal(backend.runtime, "deno"); // "bun" under Bun
 * ```
 */
export function openLiveBackend(): SyscallBackend {
  if (readEnv(FORBID_LIVE_ENV) === "1") {
    throw new Error(
      `bpfmap: live BPF is forbidden here (${FORBID_LIVE_ENV}=1): a replay must not load FFI.`,
    );
  }
  const abi = syscallAbi(currentPlatform());
  const runtime = detectRuntime();
  if (runtime === "deno") {
    // Without the permission, dlopen's own error ("cannot load the C library (libc.so.6:
    // Requires ffi access...)") reads as if libc were missing: say what to do instead.
    if (!denoMayUseFfi()) {
      throw new Error(
        "bpfmap: live BPF needs FFI: run Deno with --allow-ffi (deno run --allow-ffi ...)",
      );
    }
    return openDenoBackend(abi);
  }
  if (runtime === "bun") return openBunBackend(abi);
  throw new Error("bpfmap: live BPF needs Deno (with --allow-ffi) or Bun.");
}

/** Whether Deno has granted FFI, asked without a prompt; `true` where it cannot be asked. */
function denoMayUseFfi(): boolean {
  const deno = (globalThis as {
    Deno?: { permissions?: { querySync?(descriptor: { name: "ffi" }): { state: string } } };
  }).Deno;
  const query = deno?.permissions?.querySync;
  if (query === undefined) return true;
  try {
    return query.call(deno!.permissions, { name: "ffi" }).state === "granted";
  } catch {
    return true;
  }
}
