/**
 * What maps, programs and links share as kernel objects behind an fd: a
 * bpffs path checked before it reaches the kernel, and the kind of object an
 * fd really is (its fdinfo says), checked before anything reads it as one.
 *
 * @module
 */

import type { Kernel } from "./kernel.ts";
import { cString } from "./memory.ts";
import { describe } from "./validate.ts";

/** The kinds of BPF object an fd can be. */
export type ObjectKind = "map" | "prog" | "link" | "btf";

/**
 * The kind of BPF object an fd is, from its fdinfo's fields (what bpftool
 * reads from `/proc/self/fdinfo`), or `undefined` for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { objectKind } from "./objects.ts";
 *
 * assert.equal(objectKind({ map_type: "1", memlock: "4096" }), "map");
 * assert.equal(objectKind({ prog_type: "3", prog_tag: "28aaeba449446e06" }), "prog");
 * assert.equal(objectKind({ link_type: "tracing", prog_id: "7" }), "link");
 * assert.equal(objectKind({ memlock: "4096" }), undefined);
 * ```
 */
export function objectKind(fdInfo: Record<string, string>): ObjectKind | undefined {
  if (fdInfo.map_type !== undefined) return "map";
  if (fdInfo.prog_type !== undefined) return "prog";
  if (fdInfo.link_type !== undefined) return "link";
  if (fdInfo.btf_id !== undefined) return "btf";
  return undefined;
}

/**
 * Asks the fd `source` handed over (a pinned path, "fd N") what it is, and
 * refuses it unless it is a `want`: the fd is closed and the `TypeError`
 * says `wrong(fields)`, bpftool's `incorrect object type` in the caller's
 * words. An fd that is not open at all is a `TypeError` too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { expectObjectKind } from "./objects.ts";
 *
 * const kernel = liveKernel();
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 * expectObjectKind(kernel, map.fd, "fd", "map", () => "not a map"); // a map: nothing happens
 * assert.throws(() => expectObjectKind(kernel, 1_000_000, "fd 1000000", "map", () => ""), {
 *   name: "TypeError",
 *   message: "fd 1000000: not an open file descriptor",
 * });
 * ```
 */
export function expectObjectKind(
  kernel: Kernel,
  fd: number,
  source: string,
  want: ObjectKind,
  wrong: (fields: Record<string, string>) => string,
): void {
  let fields: Record<string, string>;
  try {
    fields = kernel.backend.fdInfo(fd);
  } catch (error) {
    throw new TypeError(`${source}: not an open file descriptor`, { cause: error });
  }
  if (objectKind(fields) === want) return;
  kernel.close(fd);
  throw new TypeError(wrong(fields));
}

/**
 * A bpffs path as the kernel takes it (a NUL-terminated copy, off the heap),
 * refused before any syscall if it is no path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPath } from "./objects.ts";
 *
 * assert.deepEqual(checkPath("/sys/fs/bpf/m"), new TextEncoder().encode("/sys/fs/bpf/m\0"));
 * assert.throws(() => checkPath("a\0b"), {
 *   name: "TypeError",
 *   message: 'path must be a non-empty string without NUL, got "a\\u0000b"',
 * });
 * ```
 */
export function checkPath(path: unknown): Uint8Array {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new TypeError(`path must be a non-empty string without NUL, got ${describe(path)}`);
  }
  return cString(path);
}
