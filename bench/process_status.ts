/**
 * This process's memory as the kernel counts it, for the benches' peak RSS
 * lines: a field of `/proc/self/status`, read through libc (Deno opens
 * `/proc` files with --allow-all only).
 *
 * @module
 */

import { liveKernel } from "../ffi/kernel.ts";

/**
 * A `/proc/self/status` field in KiB (`"VmHWM"`: the peak RSS; `"VmRSS"`: now).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { statusKiB } from "./process_status.ts";
 * assert.ok(statusKiB("VmHWM") >= statusKiB("VmRSS"));
 * ```
 */
export function statusKiB(field: "VmHWM" | "VmRSS"): number {
  const status = liveKernel().backend.readTextFile("/proc/self/status");
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
}
