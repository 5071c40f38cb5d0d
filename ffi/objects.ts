/**
 * What maps, programs and links share as kernel objects behind an fd: a
 * bpffs path checked before it reaches the kernel, and the kind of object an
 * fd really is (its fdinfo says), checked before anything reads it as one.
 *
 * @module
 */

import { BPF_OBJ_GET, BPF_OBJ_PIN } from "./commands.ts";
import type { Kernel } from "./kernel.ts";
import { cString } from "./memory.ts";
import { describe } from "./validate.ts";

/** The kinds of BPF object an fd can be. */
export type ObjectKind = "map" | "prog" | "link" | "btf";

/** Each kind as a message names it. */
const NOUNS: Readonly<Record<ObjectKind, string>> = {
  map: "map",
  prog: "program",
  link: "link",
  btf: "BTF object",
};

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
 * says bpftool's `incorrect object type` (`wrong(fields)` where the caller
 * has words of its own). An fd that is not open at all is a `TypeError` too.
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
  wrong: (fields: Record<string, string>) => string = (fields) =>
    `${source}: incorrect object type: ${objectKind(fields) ?? "not a BPF object"}, not a ${
      NOUNS[want]
    }`,
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
 * Takes `fd` over as an object of kind `want`: its kind checked first when
 * the fd came from the caller (`source` names where: {@linkcode expectObjectKind}),
 * then the object built by `make`. Either failing closes the fd, so an fd
 * handed over is never left open.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { mapGetFdById } from "./bpf.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { adoptFd } from "./objects.ts";
 *
 * const kernel = liveKernel();
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 * assert.equal(adoptFd(kernel, map.fd, undefined, "map", () => "made"), "made");
 * const fd = mapGetFdById(kernel, map.id); // a second fd of the map, handed over below
 * assert.throws(() => adoptFd(kernel, fd, "fd", "prog", () => "never"), {
 *   message: "fd: incorrect object type: map, not a program",
 * });
 * assert.equal(kernel.close(fd), -9); // EBADF: adoptFd closed it
 * ```
 */
export function adoptFd<T>(
  kernel: Kernel,
  fd: number,
  source: string | undefined,
  want: ObjectKind,
  make: () => T,
): T {
  if (source !== undefined) expectObjectKind(kernel, fd, source, want);
  try {
    return make();
  } catch (error) {
    kernel.close(fd);
    throw error;
  }
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

/**
 * `BPF_OBJ_GET` of `pathname` (a path {@linkcode checkPath} made): a new fd
 * for the object pinned there, of whatever kind; a `BpfError` naming `path`
 * if the kernel refuses. What the fd is, the caller checks
 * ({@linkcode expectObjectKind}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "./kernel.ts";
 * import { checkPath, openPinnedFd } from "./objects.ts";
 *
 * assert.throws(() => openPinnedFd(liveKernel(), checkPath("/sys/fs/bpf/none"), "/sys/fs/bpf/none"), {
 *   name: "BpfError",
 *   code: "ENOENT",
 *   op: "BPF_OBJ_GET",
 * });
 * ```
 */
export function openPinnedFd(
  kernel: Kernel,
  pathname: Uint8Array,
  path: string,
  fileFlags = 0,
): number {
  const { fields } = BPF_OBJ_GET;
  const attr = kernel.attr(BPF_OBJ_GET);
  attr.clear();
  attr.setPointer(fields.pathname, pathname);
  attr.setU32(fields.file_flags, fileFlags);
  return kernel.callOrThrow(attr, path);
}

/**
 * `BPF_OBJ_PIN` of `fd` at `pathname` (a path {@linkcode checkPath} made):
 * the object then outlives its fds. A `BpfError` naming `what` if the kernel
 * refuses (EEXIST, a path outside bpffs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { liveKernel } from "./kernel.ts";
 * import { checkPath, pinFd } from "./objects.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 * assert.throws(() => pinFd(liveKernel(), map.fd, checkPath("/no/bpffs/here"), "a map"), {
 *   name: "BpfError",
 *   op: "BPF_OBJ_PIN",
 * });
 * ```
 */
export function pinFd(kernel: Kernel, fd: number, pathname: Uint8Array, what: string): void {
  const { fields } = BPF_OBJ_PIN;
  const attr = kernel.attr(BPF_OBJ_PIN);
  attr.clear();
  attr.setPointer(fields.pathname, pathname);
  attr.setU32(fields.bpf_fd, fd);
  kernel.callOrThrow(attr, what);
}
