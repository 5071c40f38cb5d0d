/**
 * BTF objects in the kernel: loading types (`BPF_BTF_LOAD`), opening the BTF
 * of a map another program created (`BPF_BTF_GET_FD_BY_ID`) and reading its
 * types back (`BPF_OBJ_GET_INFO_BY_FD` with a `struct bpf_btf_info`); as
 * kernel objects, listed (`BPF_BTF_GET_NEXT_ID`) and opened by id or fd, as
 * maps, programs and links are. Unlike them, a BTF object cannot be pinned:
 * the kernel's `BPF_OBJ_PIN` takes maps, programs and links only (EINVAL), so
 * there is no `pin()` or `openPinned()`; a map or program that holds it keeps
 * it alive.
 *
 * @module
 */

import { btfGetFdById, listObjectIds, objGetInfoByFd } from "../ffi/bpf.ts";
import {
  BPF_BTF_GET_FD_BY_ID,
  BPF_BTF_GET_NEXT_ID,
  BPF_BTF_INFO,
  BPF_BTF_LOAD,
  BPF_OBJ_GET_INFO_BY_FD,
  type Field,
} from "../ffi/commands.ts";
import { BpfError } from "../ffi/errors.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import { offHeapBytes } from "../ffi/memory.ts";
import { adoptFd } from "../ffi/objects.ts";
import { checkInteger, describe } from "../ffi/validate.ts";
import { type BtfKind, type BtfType, encodeBtf, parseBtf } from "./types.ts";

/**
 * How much of the kernel's BTF verifier log a failed load reports.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Btf, BTF_LOG_SIZE } from "./btf.ts";
 * import type { BtfType } from "./types.ts";
 *
 * assert.equal(BTF_LOG_SIZE, 65536);
 * const u33 = { kind: "int", name: "u33", size: 4, bits: 33, bitOffset: 0, encoding: "unsigned" };
 * assert.throws(() => Btf.load([u33 as BtfType]), {
 *   name: "BpfError",
 *   code: "EINVAL",
 *   message: /nr_bits exceeds type_size$/, // the end of the kernel's log
 * });
 * ```
 */
export const BTF_LOG_SIZE = 64 * 1024;
/** Room for a BTF object's name (the kernel's names are short: "vmlinux", module names). */
const NAME_SIZE = 64;
const decoder = new TextDecoder();

/** Options of {@linkcode Btf.load}. */
export interface BtfLoadOptions {
  /**
   * 0 (the default) loads without a log and, on failure, loads again with
   * log level 1 to put the kernel's reason in the error, as libbpf does.
   */
  logLevel?: number;
}

/**
 * A BTF object the kernel holds: an fd, its id, and its types.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Btf } from "./btf.ts";
 *
 * using btf = Btf.load([
 *   { kind: "int", name: "unsigned int", size: 4, bits: 32, bitOffset: 0, encoding: "unsigned" },
 * ]);
 * using again = Btf.fromId(btf.id);
 * assert.deepEqual(again.types, btf.types);
 * ```
 */
export class Btf {
  /** The types, index 0 being `void` (parsed on first use: a loader never asks). */
  get types(): readonly BtfType[] {
    return this.#types ??= Object.freeze(parseBtf(this.#blob));
  }
  #types: readonly BtfType[] | undefined;
  readonly #blob: Uint8Array;
  /** The kernel-wide BTF id. */
  readonly id: number;
  /** The object's name (empty for BTF a program loaded; `"vmlinux"` for the kernel's). */
  readonly name: string;
  readonly #kernel: Kernel;
  #fd: number;

  private constructor(kernel: Kernel, fd: number, info: BtfInfo) {
    this.#kernel = kernel;
    this.#fd = fd;
    this.id = info.id;
    this.name = info.name;
    this.#blob = info.blob;
  }

  /**
   * Loads types (ids from 1, in order) or a whole BTF blob into the kernel
   * (`BPF_BTF_LOAD`).
   *
   * @throws {BpfError} with the kernel's verifier log when it refuses them.
   */
  static load(
    types: readonly BtfType[] | Uint8Array,
    opts: BtfLoadOptions = {},
    kernel: Kernel = liveKernel(),
  ): Btf {
    const blob = types instanceof Uint8Array ? types : encodeBtf(checkTypes(types));
    const logLevel = checkInteger(opts.logLevel ?? 0, "opts.logLevel", 0, 7);
    try {
      return Btf.#adopt(kernel, loadBlob(kernel, blob, logLevel));
    } catch (refused) {
      if (!(refused instanceof BpfError) || logLevel !== 0) throw refused;
      // Again with a log, for the kernel's reason; the errno stays the first
      // call's (a log too small for its text turns any failure into ENOSPC).
      try {
        kernel.close(loadBlob(kernel, blob, 1));
      } catch (logged) {
        if (!(logged instanceof BpfError)) throw logged;
        throw new BpfError(BPF_BTF_LOAD.name, refused.errno, logged.detail);
      }
      throw refused;
    }
  }

  /**
   * Opens the BTF object with this id (`BPF_BTF_GET_FD_BY_ID`): the types
   * of a map whose `info().btfId` it is.
   */
  static fromId(id: number, kernel: Kernel = liveKernel()): Btf {
    checkInteger(id, "id", 1);
    const fd = btfGetFdById(kernel, id);
    if (fd < 0) throw new BpfError(BPF_BTF_GET_FD_BY_ID.name, -fd, `BTF id ${id}`);
    return Btf.#adopt(kernel, fd);
  }

  /**
   * A BTF object from an fd this process has, which it then owns (and
   * closes), as `Program.fromFd`. An fd of another kind (a map, a program, a
   * link) is refused with a `TypeError` naming it, and closed all the same.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap, Btf } from "../mod.ts";
   *
   * using btf = Btf.load([{ kind: "float", name: "float", size: 4 }]);
   * using again = Btf.fromFd(Btf.fromId(btf.id).fd); // the second object takes the fd over
   * assert.equal(again.id, btf.id);
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   * assert.throws(() => Btf.fromFd(map.fd), {
   *   name: "TypeError",
   *   message: `fd ${map.fd}: incorrect object type: map, not a BTF object`,
   * });
   * ```
   */
  static fromFd(fd: number, kernel: Kernel = liveKernel()): Btf {
    checkInteger(fd, "fd", 0, 0x7fff_ffff);
    return Btf.#adopt(kernel, fd, `fd ${fd}`);
  }

  /**
   * A BTF object of `fd`, which it then owns. `source` (a path, "fd N") is
   * where an fd of any kind may have come from: its fdinfo says its kind
   * first. Any failure closes the fd.
   */
  static #adopt(kernel: Kernel, fd: number, source?: string): Btf {
    return adoptFd(kernel, fd, source, "btf", () => new Btf(kernel, fd, readBtfInfo(kernel, fd)));
  }

  /** The BTF object's file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * What `bpftool btf show` prints of the object: its id, name, size in
   * bytes and whether it is the kernel's (`BPF_OBJ_GET_INFO_BY_FD`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Btf } from "../mod.ts";
   *
   * using btf = Btf.load([{ kind: "float", name: "double", size: 8 }]);
   * // A 24-byte header, one 12-byte type, and the string table "\0double\0".
   * assert.deepEqual(btf.info(), { id: btf.id, name: "", size: 44, kernelBtf: false });
   * ```
   */
  info(): BtfObjectInfo {
    return readBtfObjectInfo(this.#kernel, this.#openFd("info"));
  }

  /** The object as messages name it: `BTF object "vmlinux" (id 1)`. */
  toString(): string {
    return `BTF object${this.name ? ` "${this.name}"` : ""} (id ${this.id})`;
  }

  #openFd(operation: string): number {
    if (this.#fd < 0) throw new TypeError(`${operation}: ${this} is closed`);
    return this.#fd;
  }

  /**
   * The id of the first type named `name` (of `kind`, if given).
   *
   * @throws {RangeError} if there is none.
   */
  typeId(name: string, kind?: BtfKind): number {
    const id = this.types.findIndex((t) =>
      t.name === name && (kind === undefined || t.kind === kind)
    );
    if (id < 1) {
      throw new RangeError(`no BTF type named ${JSON.stringify(name)}${kind ? ` (${kind})` : ""}`);
    }
    return id;
  }

  /** Closes the fd; the kernel frees the object once no map holds it. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#kernel.close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function checkTypes(types: readonly BtfType[]): readonly BtfType[] {
  if (!Array.isArray(types)) throw new TypeError(`types must be an array, got ${describe(types)}`);
  return types;
}

/**
 * One `BPF_BTF_LOAD`: the fd, or a `BpfError` that says what was refused
 * (with the end of the kernel's log when one was asked for).
 */
function loadBlob(kernel: Kernel, blob: Uint8Array, logLevel: number): number {
  const { fields } = BPF_BTF_LOAD;
  const bytes = offHeapBytes(blob.byteLength);
  bytes.set(blob);
  const log = logLevel > 0 ? offHeapBytes(BTF_LOG_SIZE) : null;
  const attr = kernel.attr(BPF_BTF_LOAD);
  attr.clear();
  attr.setPointer(fields.btf, bytes);
  attr.setU32(fields.btf_size, bytes.byteLength);
  attr.setPointer(fields.btf_log_buf, log);
  attr.setU32(fields.btf_log_size, log === null ? 0 : log.byteLength);
  attr.setU32(fields.btf_log_level, logLevel);
  const result = kernel.call(attr);
  if (result >= 0) return result;
  let detail = `${blob.byteLength} bytes of BTF`;
  if (log !== null) {
    const end = log.indexOf(0);
    const text = decoder.decode(log.subarray(0, end === -1 ? log.byteLength : end)).trim();
    if (text) detail += `; the kernel's log:\n${text.split("\n").slice(-40).join("\n")}`;
  }
  throw new BpfError(BPF_BTF_LOAD.name, -result, detail);
}

/** What `struct bpf_btf_info` says of a BTF object, with its blob. */
export interface BtfInfo {
  id: number;
  name: string;
  /** Whether this is the kernel's own BTF (vmlinux or a module). */
  kernelBtf: boolean;
  /** The raw BTF. */
  blob: Uint8Array;
}

/**
 * Reads a BTF object's info and blob: once to learn the blob's size, once
 * with room for it (`bpf_btf_info.btf` is a pointer inside the info).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { Btf, readBtfInfo } from "./btf.ts";
 * import { parseBtf } from "./types.ts";
 *
 * using btf = Btf.load([{ kind: "float", name: "double", size: 8 }]);
 * const info = readBtfInfo(liveKernel(), btf.fd);
 * assert.deepEqual([info.id, info.name, info.kernelBtf], [btf.id, "", false]);
 * assert.deepEqual(parseBtf(info.blob), btf.types); // the blob as loaded
 * ```
 */
export function readBtfInfo(kernel: Kernel, fd: number): BtfInfo {
  const info = offHeapBytes(BPF_BTF_INFO.size);
  const view = new DataView(info.buffer);
  const { btf_size, id, name_len, kernel_btf } = BPF_BTF_INFO.fields;
  const call = (blob: Uint8Array | null, name: Uint8Array | null) => {
    info.fill(0);
    const nested: [Field, Uint8Array][] = [];
    if (blob !== null) {
      nested.push([BPF_BTF_INFO.fields.btf, blob]);
      view.setUint32(btf_size.offset, blob.byteLength, true);
    }
    if (name !== null) {
      nested.push([BPF_BTF_INFO.fields.name, name]);
      view.setUint32(name_len.offset, name.byteLength, true);
    }
    const result = objGetInfoByFd(kernel, fd, info, BPF_BTF_INFO, nested);
    if (result < 0) {
      throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -result, `BTF info of fd ${fd}`);
    }
  };
  call(null, null);
  const blob = offHeapBytes(view.getUint32(btf_size.offset, true));
  const name = offHeapBytes(NAME_SIZE);
  call(blob, name);
  const nameEnd = name.indexOf(0);
  return {
    id: view.getUint32(id.offset, true),
    name: decoder.decode(name.subarray(0, nameEnd === -1 ? name.byteLength : nameEnd)),
    kernelBtf: view.getUint32(kernel_btf.offset, true) !== 0,
    blob,
  };
}

/** What `struct bpf_btf_info` says of a BTF object, without its blob: what `bpftool btf show` prints. */
export interface BtfObjectInfo {
  id: number;
  /** `"vmlinux"` or a module's name for the kernel's BTF; empty for BTF a program loaded. */
  name: string;
  /** The raw BTF's size in bytes. */
  size: number;
  /** Whether this is the kernel's own BTF (vmlinux or a module). */
  kernelBtf: boolean;
}

/**
 * Reads a BTF object's id, name, size and kind in one call, the blob left
 * in the kernel (the kernel's is megabytes): what `bpfmap btf show` prints.
 *
 * @throws {BpfError} if the kernel refuses (an fd that is no BTF object: EINVAL).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { Btf, readBtfObjectInfo } from "./btf.ts";
 *
 * using vmlinux = Btf.fromId(1); // the kernel's BTF is the first BTF object
 * const info = readBtfObjectInfo(liveKernel(), vmlinux.fd);
 * assert.deepEqual([info.id, info.name, info.kernelBtf], [1, "vmlinux", true]);
 * assert.ok(info.size > 1 << 20);
 * ```
 */
export function readBtfObjectInfo(kernel: Kernel, fd: number): BtfObjectInfo {
  const info = offHeapBytes(BPF_BTF_INFO.size);
  const name = offHeapBytes(NAME_SIZE);
  const { fields } = BPF_BTF_INFO;
  new DataView(info.buffer).setUint32(fields.name_len.offset, name.byteLength, true);
  const result = objGetInfoByFd(kernel, fd, info, BPF_BTF_INFO, [[fields.name, name]]);
  if (result < 0) throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -result, `BTF info of fd ${fd}`);
  const view = new DataView(info.buffer);
  const nameEnd = name.indexOf(0);
  return {
    id: view.getUint32(fields.id.offset, true),
    name: decoder.decode(name.subarray(0, nameEnd === -1 ? name.byteLength : nameEnd)),
    size: view.getUint32(fields.btf_size.offset, true),
    kernelBtf: view.getUint32(fields.kernel_btf.offset, true) !== 0,
  };
}

/**
 * The ids of every BTF object on the system, ascending (`BPF_BTF_GET_NEXT_ID`):
 * the kernel's (vmlinux, modules) and those programs and maps loaded. Needs
 * CAP_SYS_ADMIN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Btf, listBtfIds } from "../mod.ts";
 *
 * using btf = Btf.load([{ kind: "float", name: "double", size: 8 }]);
 * const ids = listBtfIds();
 * assert.ok(ids.includes(btf.id));
 * assert.equal(ids[0], 1); // vmlinux
 * assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
 * ```
 */
export function listBtfIds(kernel: Kernel = liveKernel()): number[] {
  return listObjectIds(kernel, BPF_BTF_GET_NEXT_ID);
}
