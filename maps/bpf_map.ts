/**
 * {@linkcode BpfMap}: one eBPF map, reached through `bpf()` with every map
 * command a libbpf user has, including the four batch commands of Linux 5.6.
 *
 * @module
 */

import { unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { Btf } from "../btf/btf.ts";
import type { MapTypes } from "../btf/types.ts";
import { type BatchCall, ELEMENT_ATTRS_SIZE, ElementCalls, mapBatch } from "../ffi/bpf.ts";
import {
  type BatchCommand,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  BPF_MAP_CREATE,
  BPF_MAP_DELETE_BATCH,
  BPF_MAP_DELETE_ELEM,
  BPF_MAP_FREEZE,
  BPF_MAP_GET_FD_BY_ID,
  BPF_MAP_GET_NEXT_KEY,
  BPF_MAP_LOOKUP_AND_DELETE_BATCH,
  BPF_MAP_LOOKUP_AND_DELETE_ELEM,
  BPF_MAP_LOOKUP_BATCH,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_UPDATE_BATCH,
  BPF_MAP_UPDATE_ELEM,
  BPF_OBJ_GET_INFO_BY_FD,
} from "../ffi/commands.ts";
import { ENOENT, EPERM } from "../ffi/errno.ts";
import { BatchError, BpfError } from "../ffi/errors.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import {
  batchCursorSize,
  isPerCpu,
  mapType,
  type MapTypeName,
  mapTypeName,
  mapTypeNumber,
} from "../ffi/map_types.ts";
import { copyInto, offHeapBytes, spanOf } from "../ffi/memory.ts";
import { checkPath, expectObjectKind, openPinnedFd, pinFd } from "../ffi/objects.ts";
import { valueStride as valueStrideOf } from "../ffi/percpu.ts";
import { checkExactBytes, checkInteger, checkKernelBytes, describe } from "../ffi/validate.ts";
import type { BatchLookupOptions, BatchResult, BatchWriteOptions } from "./batch.ts";
import { BPF_FS_TYPE, capabilityHint, fileSystemOf, FROZEN_HINT, notAMapMessage } from "./hints.ts";
import { listMapIds } from "./ids.ts";
import { type MapInfo, readMapInfo } from "./info.ts";
import { walkEntries, type WalkOptions } from "./walk.ts";

/** What {@linkcode BpfMap.create} makes. */
export interface MapSpec {
  /** A type name such as `"hash"`, or a raw `enum bpf_map_type` number. */
  type: MapTypeName | number;
  /** Key size in bytes (0 for queue, stack and bloom_filter). */
  keySize: number;
  /** Value size in bytes, per CPU for per-CPU maps. */
  valueSize: number;
  maxEntries: number;
  /** `map_flags`, e.g. `BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED`. */
  flags?: number | undefined;
  /** At most 15 characters of `[A-Za-z0-9_.]`. */
  name?: string | undefined;
  /** For `array_of_maps` and `hash_of_maps`: a map of the kind the inner maps will be. */
  innerMap?: BpfMap | undefined;
  /** `map_extra`: the hash count of a bloom filter, for instance. */
  mapExtra?: bigint | undefined;
  /**
   * The key and value types, as BTF: a loaded {@linkcode Btf} with the two
   * type ids, or types to load for the occasion (see `btfOfCodecs`). Needed
   * for a value holding a `struct bpf_spin_lock` (`BPF_F_LOCK`), and what
   * lets `bpftool` and `bpfmap map dump` print values field by field.
   */
  btf?: MapBtf | undefined;
  /**
   * The NUMA node to allocate the map on: sets `BPF_F_NUMA_NODE` in
   * `map_flags` and `numa_node`, as libbpf's `numa_node` option.
   */
  numaNode?: number | undefined;
  /** `map_ifindex`: the network device to offload the map to (a driver that can). */
  ifindex?: number | undefined;
  /**
   * Elements to write once the map is created, as cilium/ebpf's
   * `MapSpec.Contents`: one `updateBatch` where the map type has batch
   * updates, else one update (or push, for maps without keys) each. If a
   * write fails, the map is closed and the error thrown.
   */
  contents?: Iterable<readonly [key: Uint8Array, value: Uint8Array]> | undefined;
  /** Freeze the map once `contents` are written (`BPF_MAP_FREEZE`): read-only for user space. */
  freeze?: boolean | undefined;
}

/** Where a map's key and value types are described (see {@linkcode BpfMap.btf}). */
export interface MapBtfIds {
  /** The id of the map's BTF object (`BPF_BTF_GET_FD_BY_ID`), 0 if none. */
  readonly btfId: number;
  /** The key's type id in it, 0 if none. */
  readonly keyTypeId: number;
  /** The value's type id in it, 0 if none. */
  readonly valueTypeId: number;
  /** For struct_ops maps: the value's type id in the kernel's own BTF. */
  readonly vmlinuxValueTypeId: number;
}

/** The BTF of a map being created. */
export type MapBtf = MapTypes | { btf: Btf; keyTypeId: number; valueTypeId: number };

/** Options of {@linkcode BpfMap.openPinned}. */
export interface OpenPinnedOptions {
  /** Open with `BPF_F_RDONLY`: updates fail with EPERM. */
  readOnly?: boolean | undefined;
  /** Open with `BPF_F_WRONLY`: lookups fail with EPERM. */
  writeOnly?: boolean | undefined;
  /**
   * Raw `file_flags` of `BPF_OBJ_GET` (`BPF_F_RDONLY`, `BPF_F_WRONLY`, or
   * bits of a newer kernel: passed through, the kernel judges them), OR-ed
   * with what `readOnly`/`writeOnly` ask.
   */
  flags?: number | undefined;
}

const MAP_NAME = /^[A-Za-z0-9_.]{0,15}$/;
/** Operation not permitted (errno.h): what the hints explain. */
/** `map_flags` bit saying `numa_node` is set. */
export const BPF_F_NUMA_NODE = 1 << 2;
const U64_MAX = (1n << 64n) - 1n;

/** Closes the fd of a map that was dropped without `close()`. */
const unclosed = new FinalizationRegistry<{ kernel: Kernel; fd: number }>(({ kernel, fd }) => {
  kernel.close(fd);
});

/**
 * An eBPF map, open by file descriptor.
 *
 * Keys and values are raw bytes, exactly as the kernel stores them. Values of
 * per-CPU maps hold `valueStride` bytes: one 8-byte-aligned slot per possible
 * CPU (see `splitPerCpu`/`joinPerCpu`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 1024 });
 * const one = new Uint8Array([1, 0, 0, 0]);
 * map.update(one, new Uint8Array(8).fill(7));
 * assert.deepEqual(map.lookup(one), new Uint8Array(8).fill(7));
 * assert.equal(map.lookup(new Uint8Array([2, 0, 0, 0])), undefined);
 * assert.deepEqual(map.nextKey(), one); // the first key
 * assert.equal(map.nextKey(one), undefined); // after the last
 * assert.equal(map.delete(one), true);
 * assert.equal(map.delete(one), false); // no longer there
 * map.close();
 * assert.throws(() => map.lookup(one), {
 *   name: "TypeError",
 *   message: `lookup: hash map (id ${map.id}) is closed`,
 * });
 * ```
 */
// Disposable by its [Symbol.dispose]; see codec/typed_methods.ts for why it does not say `implements`.
export class BpfMap {
  /** The kernel-wide map id. */
  readonly id: number;
  /** The map type number. */
  readonly type: number;
  /** The map type's name, e.g. `"hash"`. */
  readonly typeName: string;
  readonly keySize: number;
  /** The value size the map was created with (per CPU, for per-CPU maps). */
  readonly valueSize: number;
  readonly maxEntries: number;
  /** `map_flags`. */
  readonly flags: number;
  readonly name: string;
  /**
   * Bytes per element in values buffers: `valueSize`, or
   * `roundUp(valueSize, 8) * possibleCpus()` for per-CPU maps.
   */
  readonly valueStride: number;
  /** The map's BTF object and the type ids of its keys and values in it; all 0 for a map without BTF. */
  readonly btfIds: MapBtfIds;

  readonly #kernel: Kernel;
  #fd: number;
  /** The `file_flags` the map was opened with (`BPF_F_RDONLY`, ...), for error messages. */
  readonly #openFlags: number;
  /** Whether this object froze the map (a freeze elsewhere is not known without a call). */
  #frozen = false;
  // Off-heap scratch buffers, so that nothing the kernel sees lives on a moving heap.
  readonly #key: Uint8Array | null;
  readonly #nextKey: Uint8Array | null;
  /** `#nextKey`, or an empty array for maps without keys. */
  readonly #nextKeyView: Uint8Array;
  readonly #value: Uint8Array;
  readonly #valueView: Uint8Array;
  readonly #cursorIn: Uint8Array;
  readonly #cursorOut: Uint8Array;
  /** The element calls, on attrs of this map's own, packed once over the scratch above. */
  readonly #calls: ElementCalls;

  private constructor(kernel: Kernel, fd: number, info: MapInfo, openFlags: number) {
    this.#kernel = kernel;
    this.#fd = fd;
    this.#openFlags = openFlags;
    this.id = info.id;
    this.type = info.type;
    this.typeName = info.typeName;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.name = info.name;
    this.btfIds = Object.freeze({
      btfId: info.btfId,
      keyTypeId: info.btfKeyTypeId,
      valueTypeId: info.btfValueTypeId,
      vmlinuxValueTypeId: info.btfVmlinuxValueTypeId,
    });
    // The possible CPUs are read (once per kernel) only for a per-CPU map.
    const cpus = isPerCpu(info.type) ? kernel.possibleCpus() : 1;
    this.valueStride = valueStrideOf(info.type, info.valueSize, cpus);
    // One off-heap arena for every scratch buffer: one allocation per map, one page for the kernel.
    const cursorSize = Math.max(batchCursorSize(info.type, info.keySize), 1);
    const carve = arenaOf([
      info.keySize,
      info.keySize,
      Math.max(this.valueStride, 1),
      cursorSize,
      cursorSize,
      ELEMENT_ATTRS_SIZE,
    ]);
    const [key, nextKey, value, cursorIn, cursorOut, attrs] = carve as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    this.#key = info.keySize > 0 ? key : null;
    this.#nextKey = info.keySize > 0 ? nextKey : null;
    this.#nextKeyView = nextKey;
    this.#value = value;
    this.#valueView = value.subarray(0, this.valueStride);
    this.#cursorIn = cursorIn;
    this.#cursorOut = cursorOut;
    this.#calls = new ElementCalls(kernel, fd, this.#key, this.#nextKey, this.#valueView, attrs);
    if (kernel.closesLeakedFds) unclosed.register(this, { kernel, fd }, this);
  }

  /**
   * Creates a map (`BPF_MAP_CREATE`).
   *
   * @throws {TypeError | RangeError} for a bad spec, before any syscall.
   * @throws {BpfError} when the kernel refuses.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap, possibleCpus } from "../mod.ts";
   *
   * using counters = BpfMap.create({
   *   type: "percpu_array",
   *   keySize: 4,
   *   valueSize: 8,
   *   maxEntries: 64,
   *   name: "counters",
   * });
   * assert.deepEqual([counters.typeName, counters.name], ["percpu_array", "counters"]);
   * assert.equal(counters.valueStride, 8 * possibleCpus());
   * assert.throws(() => BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 0 }), {
   *   name: "BpfError", // the kernel refuses an empty hash map
   *   code: "EINVAL",
   *   op: "BPF_MAP_CREATE",
   * });
   * ```
   */
  static create(spec: MapSpec, kernel: Kernel = liveKernel()): BpfMap {
    if (spec === null || typeof spec !== "object") {
      throw new TypeError(`spec must be an object, got ${describe(spec)}`);
    }
    const type = mapTypeNumber(spec.type, "spec.type");
    const keySize = checkInteger(spec.keySize, "spec.keySize");
    const valueSize = checkInteger(spec.valueSize, "spec.valueSize");
    const maxEntries = checkInteger(spec.maxEntries, "spec.maxEntries");
    const numaNode = spec.numaNode === undefined
      ? undefined
      : checkInteger(spec.numaNode, "spec.numaNode");
    const flags = (checkInteger(spec.flags ?? 0, "spec.flags")
      | (numaNode === undefined ? 0 : BPF_F_NUMA_NODE)) >>> 0;
    const ifindex = checkInteger(spec.ifindex ?? 0, "spec.ifindex");
    const contents = spec.contents === undefined
      ? undefined
      : checkContents(
        spec.contents,
        keySize,
        () => valueStrideOf(type, valueSize, isPerCpu(type) ? kernel.possibleCpus() : 1),
      );
    const name = spec.name ?? "";
    if (typeof name !== "string" || !MAP_NAME.test(name)) {
      throw new TypeError(
        `spec.name: ${describe(name)} is not a map name (at most 15 of A-Z a-z 0-9 _ .)`,
      );
    }
    const mapExtra = spec.mapExtra ?? 0n;
    if (typeof mapExtra !== "bigint" || mapExtra < 0n || mapExtra > U64_MAX) {
      throw new RangeError(`spec.mapExtra must be a u64 bigint, got ${describe(mapExtra)}`);
    }
    const btf = checkMapBtf(spec.btf);
    let innerMapFd = 0;
    if (spec.innerMap !== undefined) {
      if (!(spec.innerMap instanceof BpfMap)) {
        throw new TypeError(`spec.innerMap must be a BpfMap, got ${describe(spec.innerMap)}`);
      }
      innerMapFd = spec.innerMap.#openFd("spec.innerMap");
    }

    // BTF given as types is loaded for the call only: the map keeps its own reference.
    using loaded = btf !== undefined && "types" in btf
      ? Btf.load(btf.types, {}, kernel)
      : undefined;
    const btfObject = loaded ?? (btf !== undefined && "btf" in btf ? btf.btf : undefined);
    const { fields } = BPF_MAP_CREATE;
    const attr = kernel.attr(BPF_MAP_CREATE);
    attr.clear();
    if (btf !== undefined && btfObject !== undefined) {
      if (btfObject.fd < 0) throw new TypeError("spec.btf.btf is closed");
      attr.setU32(fields.btf_fd, btfObject.fd);
      attr.setU32(fields.btf_key_type_id, btf.keyTypeId);
      attr.setU32(fields.btf_value_type_id, btf.valueTypeId);
    }
    attr.setU32(fields.map_type, type);
    attr.setU32(fields.key_size, keySize);
    attr.setU32(fields.value_size, valueSize);
    attr.setU32(fields.max_entries, maxEntries);
    attr.setU32(fields.map_flags, flags);
    attr.setU32(fields.numa_node, numaNode ?? 0);
    attr.setU32(fields.map_ifindex, ifindex);
    attr.setU32(fields.inner_map_fd, innerMapFd);
    attr.setChars(fields.map_name, name);
    attr.setBigU64(fields.map_extra, mapExtra);
    const fd = kernel.call(attr);
    if (fd < 0) {
      const what = `${mapTypeName(type)} map${name ? ` "${name}"` : ""} (key ${keySize}, `
        + `value ${valueSize}, ${maxEntries} entries, flags 0x${flags.toString(16)})`;
      // EPERM only: the capabilities are read (through the kernel, so a replay reads them too).
      const hint = fd === -EPERM ? capabilityHint(readStatus(kernel)) : undefined;
      throw new BpfError(BPF_MAP_CREATE.name, -fd, hint === undefined ? what : `${what}: ${hint}`);
    }
    const map = BpfMap.#adopt(kernel, fd, undefined, 0);
    if (contents === undefined && !spec.freeze) return map;
    try {
      if (contents !== undefined && contents.length > 0) map.#fill(contents);
      if (spec.freeze) map.freeze();
    } catch (error) {
      map.close();
      throw error;
    }
    return map;
  }

  /** Writes a spec's `contents`: one batch where the type has batch updates, else one by one. */
  #fill(contents: (readonly [Uint8Array, Uint8Array])[]): void {
    const { keySize, valueStride } = this;
    if (keySize === 0) {
      for (const [, value] of contents) this.push(value);
    } else if (mapType(this.type).batch.update) {
      const keys = offHeapBytes(contents.length * keySize);
      const values = offHeapBytes(contents.length * valueStride);
      contents.forEach(([key, value], i) => {
        copyInto(keys.subarray(i * keySize), key, keySize);
        copyInto(values.subarray(i * valueStride), value, valueStride);
      });
      this.updateBatch(keys, values);
    } else {
      for (const [key, value] of contents) this.update(key, value);
    }
  }

  /**
   * Opens a map pinned in bpffs (`BPF_OBJ_GET`). A pin of another kind of
   * object (a program, a link) is refused with a `TypeError` naming the
   * path and the kind, as bpftool's `incorrect object type`, its fd closed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { execFileSync } from "node:child_process";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { BpfMap } from "../mod.ts";
   *
   * // A bpffs of its own, as /sys/fs/bpf usually is (root only).
   * const bpffs = mkdtempSync("/tmp/bpffs-");
   * execFileSync("mount", ["-t", "bpf", "bpf", bpffs]);
   * try {
   *   using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   *   map.pin(`${bpffs}/counts`);
   *   using opened = BpfMap.openPinned(`${bpffs}/counts`, { readOnly: true });
   *   assert.equal(opened.id, map.id);
   *   assert.throws(() => opened.update(new Uint8Array(4), new Uint8Array(4)), {
   *     name: "BpfError",
   *     code: "EPERM", // opened read-only
   *   });
   *   assert.throws(() => BpfMap.openPinned(`${bpffs}/nothing`), { code: "ENOENT" });
   * } finally {
   *   execFileSync("umount", [bpffs]);
   *   rmSync(bpffs, { recursive: true });
   * }
   * ```
   */
  static openPinned(
    path: string,
    opts: OpenPinnedOptions = {},
    kernel: Kernel = liveKernel(),
  ): BpfMap {
    const pathname = checkPath(path);
    if (opts.readOnly && opts.writeOnly) {
      throw new RangeError("opts: readOnly and writeOnly exclude each other");
    }
    const fileFlags = (opts.readOnly ? BPF_F_RDONLY : opts.writeOnly ? BPF_F_WRONLY : 0)
      | checkInteger(opts.flags ?? 0, "opts.flags");
    const fd = openPinnedFd(kernel, pathname, path, fileFlags >>> 0);
    return BpfMap.#adopt(kernel, fd, path, fileFlags >>> 0);
  }

  /**
   * A map from an fd this process already has (one another library or a
   * parent process handed over), as cilium/ebpf's `NewMapFromFD`: the map
   * takes the fd over and closes it on `close()`; keep no other use of it.
   * An fd that is not a map (a program, a link, a file) is refused with a
   * `TypeError` naming its kind, and closed all the same: it was given.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   * import { BPF_MAP_GET_FD_BY_ID } from "../ffi/commands.ts";
   * import { liveKernel } from "../ffi/kernel.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   * // An fd of the map's own, as a raw syscall (or another library) would hand it over.
   * const attr = liveKernel().attr(BPF_MAP_GET_FD_BY_ID);
   * attr.clear();
   * attr.setU32(BPF_MAP_GET_FD_BY_ID.fields.map_id, map.id);
   * const fd = liveKernel().callOrThrow(attr);
   * using adopted = BpfMap.fromFd(fd);
   * assert.equal(adopted.fd, fd); // not a copy: closing the map closes it
   * assert.equal(adopted.id, map.id);
   * ```
   */
  static fromFd(fd: number, kernel: Kernel = liveKernel()): BpfMap {
    checkInteger(fd, "fd", 0, 0x7fff_ffff);
    return BpfMap.#adopt(kernel, fd, `fd ${fd}`, 0);
  }

  /**
   * Opens the map with a kernel-wide id (`BPF_MAP_GET_FD_BY_ID`). Map ids
   * name maps only (programs and links have ids of their own), so the fd
   * needs no look at its kind.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   * using again = BpfMap.fromId(map.id);
   * assert.equal(again.id, map.id);
   * ```
   */
  static fromId(id: number, kernel: Kernel = liveKernel()): BpfMap {
    checkInteger(id, "id", 1);
    const { fields } = BPF_MAP_GET_FD_BY_ID;
    const attr = kernel.attr(BPF_MAP_GET_FD_BY_ID);
    attr.clear();
    attr.setU32(fields.map_id, id);
    return BpfMap.#adopt(kernel, kernel.callOrThrow(attr, `map id ${id}`), undefined, 0);
  }

  /**
   * The one map named `name` (`BPF_MAP_GET_NEXT_ID`, then each map by id, as
   * `bpftool map show name NAME`; needs CAP_SYS_ADMIN).
   *
   * @throws {Error} when no map has the name, or several do (listing their
   * ids: open one with {@linkcode BpfMap.fromId}).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1, name: "only_one_here" });
   * using found = BpfMap.fromName("only_one_here");
   * assert.equal(found.id, map.id);
   * using twin = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1, name: "only_one_here" });
   * assert.throws(() => BpfMap.fromName("only_one_here"), {
   *   message: `2 maps are named "only_one_here" (ids ${map.id}, ${twin.id}): open one by id`,
   * });
   * ```
   */
  static fromName(name: string, kernel: Kernel = liveKernel()): BpfMap {
    const maps = findMapsByName(name, kernel);
    if (maps.length === 1) return maps[0]!;
    for (const map of maps) map.close();
    throw new Error(
      maps.length === 0
        ? `no map is named ${JSON.stringify(name)}`
        : `${maps.length} maps are named ${JSON.stringify(name)} (ids ${
          maps.map((map) => map.id).join(", ")
        }): open one by id`,
    );
  }

  /**
   * A map of `fd`, which it then owns. `source` (a path, "fd N") is where an
   * fd of any kind may have come from: its fdinfo is asked what it is first,
   * since the info call answers for programs and links too, with their info
   * read as a map's (a "percpu_array" with 60426883-byte keys, and a load
   * time no transcript could match). Any failure closes the fd.
   */
  static #adopt(
    kernel: Kernel,
    fd: number,
    source: string | undefined,
    openFlags: number,
  ): BpfMap {
    if (source !== undefined) {
      expectObjectKind(kernel, fd, source, "map", (fields) => notAMapMessage(source, fields));
    }
    const info = readMapInfo(kernel, fd);
    if (typeof info === "number") {
      kernel.close(fd);
      throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -info, source ?? `fd ${fd}`);
    }
    return new BpfMap(kernel, fd, info, openFlags);
  }

  /** The map's file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether {@linkcode BpfMap.close} has run. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * The kernel the map was created or opened on: the live one, or a
   * system's (`openSystem`), which records or replays. What reaches the map
   * beside its own methods (`map.memory()`, `globals(map)`) calls through
   * it, so those calls are recorded and replayed with the map's.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap, openSystem } from "../mod.ts";
   * import { liveKernel } from "../ffi/kernel.ts";
   *
   * await using system = await openSystem({ mode: "live" });
   * const spec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
   * using map = system.createMap(spec);
   * assert.equal(map.kernel, system.kernel);
   * using plain = BpfMap.create(spec);
   * assert.equal(plain.kernel, liveKernel());
   * ```
   */
  get kernel(): Kernel {
    return this.#kernel;
  }

  /**
   * The value stored under `key` (`valueStride` bytes), or `undefined` if
   * there is none. `flags` may be `BPF_F_LOCK`. The result has an
   * `ArrayBuffer` of its own: transfer it, keep it, it affects nothing else.
   * For a loop, {@linkcode BpfMap.lookupInto} writes into a buffer you reuse.
   */
  lookup(key: Uint8Array, flags = 0): Uint8Array | undefined {
    return this.#lookup("lookup", key, flags) ? this.#valueView.slice() : undefined;
  }

  /**
   * Reads the value stored under `key` into `out` (`valueStride` bytes, any
   * `Uint8Array`, on the heap or not), as libbpf's `bpf_map_lookup_elem(fd,
   * key, value)`: `true` if found, `false` (and `out` untouched) if not. The
   * kernel writes into the map's own off-heap scratch, copied into `out`:
   * nothing is allocated, so a loop runs at the syscall's speed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
   * map.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array([9, 9, 9, 9]));
   * const out = new Uint8Array(4);
   * assert.equal(map.lookupInto(new Uint8Array([1, 0, 0, 0]), out), true);
   * assert.deepEqual(out, new Uint8Array([9, 9, 9, 9]));
   * assert.equal(map.lookupInto(new Uint8Array([2, 0, 0, 0]), out), false);
   * ```
   */
  lookupInto(key: Uint8Array, out: Uint8Array, flags = 0): boolean {
    checkExactBytes(out, this.valueStride, "out");
    if (!this.#lookup("lookupInto", key, flags)) return false;
    copyInto(out, this.#valueView, this.valueStride);
    return true;
  }

  #lookup(operation: string, key: Uint8Array, flags: number): boolean {
    this.#openFd(operation);
    this.#loadKey(key, "key");
    if (flags !== 0) checkU32(flags, "flags");
    const result = this.#calls.lookup(flags);
    if (result === -ENOENT) return false;
    if (result < 0) throw this.#error(BPF_MAP_LOOKUP_ELEM.name, result);
    return true;
  }

  /**
   * Stores `value` under `key`. `flags`: `BPF_ANY` (0), `BPF_NOEXIST` (1),
   * `BPF_EXIST` (2), optionally with `BPF_F_LOCK` (4). For map-in-map types,
   * `value` is the inner map's fd as a u32.
   */
  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    this.#openFd("update");
    this.#loadKey(key, "key");
    this.#loadValue(value, "value");
    if (flags !== 0) checkU32(flags, "flags"); // 0, the default, is always right
    const result = this.#calls.update(flags);
    if (result < 0) throw this.#error(BPF_MAP_UPDATE_ELEM.name, result);
  }

  /** Deletes `key`; `false` if it was not there. */
  delete(key: Uint8Array): boolean {
    this.#openFd("delete");
    this.#loadKey(key, "key");
    const result = this.#calls.delete();
    if (result === -ENOENT) return false;
    if (result < 0) throw this.#error(BPF_MAP_DELETE_ELEM.name, result);
    return true;
  }

  /**
   * Removes `key` and returns its value, or `undefined` if it was not there
   * (hash maps: Linux 5.14+). The value has an `ArrayBuffer` of its own.
   * `flags` may be `BPF_F_LOCK` (Linux 5.19+, a value with a spin lock), as
   * libbpf's `bpf_map_lookup_and_delete_elem_flags`.
   */
  lookupAndDelete(key: Uint8Array, flags = 0): Uint8Array | undefined {
    this.#openFd("lookupAndDelete");
    this.#loadKey(key, "key");
    if (flags !== 0) checkU32(flags, "flags");
    return this.#removed(this.#calls.lookupAndDelete(flags));
  }

  /**
   * The key after `key` in the kernel's order, the first key when `key` is
   * absent, `undefined` after the last one. The result has an `ArrayBuffer`
   * of its own; {@linkcode BpfMap.nextKeyInto} writes into yours.
   */
  nextKey(key?: Uint8Array): Uint8Array | undefined {
    return this.#nextKeyCall("nextKey", key) ? this.#nextKeyView.slice() : undefined;
  }

  /**
   * Writes the key after `key` (the first key for `null`/`undefined`) into
   * `out` (`keySize` bytes), as libbpf's `bpf_map_get_next_key`: `false`
   * after the last key, `out` untouched. `out` may be `key` itself, so that
   * a walk needs one buffer and allocates nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 3 });
   * const key = new Uint8Array(4);
   * const value = new Uint8Array(8);
   * const seen: number[] = [];
   * for (let more = map.nextKeyInto(null, key); more; more = map.nextKeyInto(key, key)) {
   *   assert.equal(map.lookupInto(key, value), true);
   *   seen.push(key[0]!);
   * }
   * assert.deepEqual(seen, [0, 1, 2]);
   * ```
   */
  nextKeyInto(key: Uint8Array | null | undefined, out: Uint8Array): boolean {
    checkExactBytes(out, this.keySize, "out");
    if (!this.#nextKeyCall("nextKeyInto", key ?? undefined)) return false;
    if (this.#nextKey !== null) copyInto(out, this.#nextKey, this.keySize);
    return true;
  }

  #nextKeyCall(operation: string, key: Uint8Array | undefined): boolean {
    this.#openFd(operation);
    if (key !== undefined) this.#loadKey(key, "key");
    const result = key === undefined ? this.#calls.firstKey() : this.#calls.nextKey();
    if (result === -ENOENT) return false;
    if (result < 0) throw this.#error(BPF_MAP_GET_NEXT_KEY.name, result);
    return true;
  }

  /**
   * Adds `value` to a queue, stack or bloom filter. `flags` may be `BPF_EXIST` (queue/stack:
   * overwrite the oldest when full).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using queue = BpfMap.create({ type: "queue", keySize: 0, valueSize: 1, maxEntries: 8 });
   * queue.push(new Uint8Array([1]));
   * queue.push(new Uint8Array([2]));
   * assert.deepEqual(queue.peek(), new Uint8Array([1])); // first in, first out
   * assert.deepEqual(queue.pop(), new Uint8Array([1]));
   * assert.deepEqual(queue.pop(), new Uint8Array([2]));
   * assert.equal(queue.pop(), undefined); // empty
   *
   * using seen = BpfMap.create({ type: "bloom_filter", keySize: 0, valueSize: 4, maxEntries: 64 });
   * seen.push(new Uint8Array([10, 0, 0, 1]));
   * assert.equal(seen.contains(new Uint8Array([10, 0, 0, 1])), true);
   * ```
   */
  push(value: Uint8Array, flags = 0): void {
    this.#openFd("push");
    this.#keyless("push");
    this.#loadValue(value, "value");
    if (flags !== 0) checkU32(flags, "flags"); // 0, the default, is always right
    const result = this.#calls.update(flags);
    if (result < 0) throw this.#error(BPF_MAP_UPDATE_ELEM.name, result);
  }

  /**
   * Removes and returns the next value of a queue or stack, `undefined` when
   * empty. The value has an `ArrayBuffer` of its own: an element the kernel
   * removed is always in the caller's hands.
   */
  pop(): Uint8Array | undefined {
    this.#openFd("pop");
    this.#keyless("pop");
    return this.#removed(this.#calls.lookupAndDelete(0));
  }

  /** Returns the next value of a queue or stack without removing it, `undefined` when empty. */
  peek(): Uint8Array | undefined {
    this.#openFd("peek");
    this.#keyless("peek");
    const result = this.#calls.lookup(0);
    if (result === -ENOENT) return undefined;
    if (result < 0) throw this.#error(BPF_MAP_LOOKUP_ELEM.name, result);
    return this.#valueView.slice();
  }

  /** Whether a bloom filter may contain `value` (`false` means certainly not). */
  contains(value: Uint8Array): boolean {
    this.#openFd("contains");
    this.#keyless("contains");
    this.#loadValue(value, "value");
    const result = this.#calls.contains();
    if (result === -ENOENT) return false;
    if (result < 0) throw this.#error(BPF_MAP_LOOKUP_ELEM.name, result);
    return true;
  }
  /**
   * Reads up to `count` elements from where `cursor` left off
   * (`BPF_MAP_LOOKUP_BATCH`). A hash map returns whole buckets, so a result
   * may hold fewer than `count` elements without the map being exhausted:
   * only `cursor: null` ends a walk, and that last result may hold elements.
   *
   * @throws {BatchError} with code `ENOSPC` when `count` cannot hold the next
   * hash bucket, or with the elements read so far on any other failure.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 100 });
   * const keys = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
   * map.updateBatch(keys, keys);
   * const seen: number[] = [];
   * let cursor: Uint8Array | null = null;
   * do {
   *   const batch = map.lookupBatch({ cursor, count: 2 });
   *   // batch.keys and batch.values hold batch.count elements
   *   seen.push(...new Uint32Array(batch.keys.slice().buffer));
   *   cursor = batch.cursor;
   * } while (cursor !== null);
   * assert.deepEqual(seen.sort((a, b) => a - b), [1, 2, 3]);
   * ```
   */
  lookupBatch(opts: BatchLookupOptions): BatchResult {
    return this.#lookupBatch(BPF_MAP_LOOKUP_BATCH, opts);
  }

  /**
   * Like {@linkcode BpfMap.lookupBatch}, deleting what it returns
   * (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`, hash maps only). On failure the
   * thrown {@linkcode BatchError} carries every element already removed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 100 });
   * const keys = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
   * assert.equal(map.updateBatch(keys, keys), 3);
   * const drained = map.lookupAndDeleteBatch({ count: 100 });
   * assert.equal(drained.count, 3);
   * assert.equal(drained.cursor, null); // the whole map in one call
   * assert.equal(map.nextKey(), undefined); // now empty
   * assert.equal(map.updateBatch(keys, keys), 3);
   * assert.equal(map.deleteBatch(keys.subarray(0, 8)), 2); // keys 1 and 2
   * assert.deepEqual([...map.keys()], [keys.subarray(8)]);
   * ```
   */
  lookupAndDeleteBatch(opts: BatchLookupOptions): BatchResult {
    return this.#lookupBatch(BPF_MAP_LOOKUP_AND_DELETE_BATCH, opts);
  }

  /**
   * Writes `count` elements in one call (`BPF_MAP_UPDATE_BATCH`): keys
   * packed back to back, values `valueStride` bytes each. Returns how many
   * were written.
   *
   * @throws {BatchError} with `processed` when an element fails (E2BIG when
   * full, ...): elements before it were written.
   */
  updateBatch(keys: Uint8Array, values: Uint8Array, opts: BatchWriteOptions = {}): number {
    return this.#writeBatch(BPF_MAP_UPDATE_BATCH, keys, values, opts);
  }

  /**
   * Deletes `count` keys in one call (`BPF_MAP_DELETE_BATCH`). Returns how
   * many were deleted.
   *
   * @throws {BatchError} with `processed` when a key fails (ENOENT when
   * missing): keys before it were deleted.
   */
  deleteBatch(keys: Uint8Array, opts: BatchWriteOptions = {}): number {
    return this.#writeBatch(BPF_MAP_DELETE_BATCH, keys, null, opts);
  }

  /**
   * Every element, by lookup batches of `batchSize` (grown on ENOSPC), or by
   * `nextKey` + `lookup` where the map type or kernel has no batch lookup.
   * Each yielded key and value is a view that stays valid.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 3 });
   * const keys = [...map.entries()].map(([key]) => key[0]);
   * assert.deepEqual(keys, [0, 1, 2]);
   * ```
   */
  entries(opts: WalkOptions = {}): IterableIterator<[Uint8Array, Uint8Array]> {
    this.#openFd("entries");
    return walkEntries(this, opts);
  }

  /** Every key, walked as {@linkcode BpfMap.entries} does. */
  *keys(opts: WalkOptions = {}): IterableIterator<Uint8Array> {
    for (const [key] of this.entries(opts)) yield key;
  }

  /** The kernel's current view of the map (`BPF_OBJ_GET_INFO_BY_FD`). */
  info(): MapInfo {
    const fd = this.#openFd("info");
    const info = readMapInfo(this.#kernel, fd);
    if (typeof info === "number") throw this.#error(BPF_OBJ_GET_INFO_BY_FD.name, info);
    return info;
  }

  /**
   * The kernel's fdinfo of the map's fd: `memlock` (bytes charged), `frozen`
   * (`"1"` once frozen), `map_type`, `max_entries`, ... as strings.
   */
  fdInfo(): Record<string, string> {
    return this.#kernel.backend.fdInfo(this.#openFd("fdInfo"));
  }

  /**
   * The BTF object holding the map's key and value types
   * (`BPF_BTF_GET_FD_BY_ID` on `info().btfId`), or `undefined` for a map
   * created without BTF. Close it when done.
   */
  btf(): Btf | undefined {
    this.#openFd("btf");
    const { btfId } = this.btfIds;
    return btfId === 0 ? undefined : Btf.fromId(btfId, this.#kernel);
  }

  /** Pins the map in bpffs at `path` (`BPF_OBJ_PIN`). */
  pin(path: string): void {
    const fd = this.#openFd("pin");
    pinFd(this.#kernel, fd, checkPath(path), `${this.#describe()} at ${path}`);
  }

  /**
   * Removes the pin at `path` (an unlink, as libbpf's `bpf_map__unpin`): the
   * map lives on while an fd or a program holds it. A path not on a bpf file
   * system is refused (a `TypeError`), so that no other file is removed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { execFileSync } from "node:child_process";
   * import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
   * import { BpfMap } from "../mod.ts";
   *
   * const bpffs = mkdtempSync("/tmp/bpffs-");
   * execFileSync("mount", ["-t", "bpf", "bpf", bpffs]);
   * try {
   *   using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   *   map.pin(`${bpffs}/m`);
   *   map.unpin(`${bpffs}/m`);
   *   assert.equal(existsSync(`${bpffs}/m`), false);
   *   writeFileSync("/tmp/not-a-pin", "");
   *   assert.throws(() => map.unpin("/tmp/not-a-pin"), {
   *     name: "TypeError",
   *     message: "unpin: /tmp/not-a-pin is not on a bpf file system",
   *   });
   *   assert.equal(existsSync("/tmp/not-a-pin"), true);
   * } finally {
   *   execFileSync("umount", [bpffs]);
   *   rmSync(bpffs, { recursive: true });
   * }
   * ```
   */
  unpin(path: string): void {
    this.#openFd("unpin");
    checkPath(path);
    // The mounts, read through libc as /sys is: no Deno permission beyond --allow-write.
    const mountinfo = this.#kernel.backend.readTextFile("/proc/self/mountinfo");
    if (fileSystemOf(resolve(path), mountinfo) !== BPF_FS_TYPE) {
      throw new TypeError(`unpin: ${path} is not on a bpf file system`);
    }
    unlinkSync(path);
  }

  /**
   * Makes the map read-only for user space from now on (`BPF_MAP_FREEZE`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using config = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   * config.update(new Uint8Array(4), new Uint8Array([1, 0, 0, 0]));
   * config.freeze();
   * assert.equal(config.fdInfo().frozen, "1");
   * assert.throws(() => config.update(new Uint8Array(4), new Uint8Array(4)), { code: "EPERM" });
   * assert.deepEqual(config.lookup(new Uint8Array(4)), new Uint8Array([1, 0, 0, 0]));
   * assert.equal(config.info().maxEntries, 1);
   * ```
   */
  freeze(): void {
    const fd = this.#openFd("freeze");
    const attr = this.#kernel.attr(BPF_MAP_FREEZE);
    attr.setU32(BPF_MAP_FREEZE.fields.map_fd, fd);
    this.#kernel.callOrThrow(attr, this.#describe());
    this.#frozen = true;
  }

  /** Closes the map's fd. A second call does nothing. */
  close(): void {
    if (this.#fd < 0) return;
    unclosed.unregister(this);
    this.#kernel.close(this.#fd);
    this.#fd = -1;
  }

  /** Closes the map at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  #openFd(operation: string): number {
    if (this.#fd < 0) {
      throw new TypeError(`${operation}: ${this.#describe()} is closed`);
    }
    return this.#fd;
  }

  /**
   * The map as error messages name it: type, name and id, e.g. `hash map "flows" (id 12)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1, name: "m" });
   * assert.equal(String(map), `array map "m" (id ${map.id})`);
   * ```
   */
  toString(): string {
    return this.#describe();
  }

  #describe(): string {
    return `${this.typeName} map${this.name ? ` "${this.name}"` : ""} (id ${this.id})`;
  }

  #keyless(operation: string): void {
    if (this.keySize !== 0) {
      throw new TypeError(
        `${operation}: needs a map without keys (queue, stack, bloom_filter); ${this.#describe()} has ${this.keySize}-byte keys`,
      );
    }
  }

  #loadKey(key: Uint8Array, argument: string): void {
    checkExactBytes(key, this.keySize, argument);
    if (this.#key !== null) copyInto(this.#key, key, this.keySize);
  }

  #loadValue(value: Uint8Array, argument: string): void {
    checkExactBytes(value, this.valueStride, argument);
    copyInto(this.#valueView, value, this.valueStride);
  }

  /**
   * The value of a call that removed an element (`pop`, `lookupAndDelete`):
   * copied out before anything else can run, into a buffer of its own.
   */
  #removed(result: number): Uint8Array | undefined {
    if (result === -ENOENT) return undefined;
    if (result < 0) throw this.#error(BPF_MAP_LOOKUP_AND_DELETE_ELEM.name, result);
    return this.#valueView.slice();
  }

  #error(op: string, result: number): BpfError {
    const hint = result === -EPERM ? this.#permissionHint(op) : undefined;
    return new BpfError(op, -result, `${this.#describe()}${hint === undefined ? "" : `: ${hint}`}`);
  }

  /**
   * Why an element call got EPERM, where the map knows it for certain with no
   * further call: opened or created read-only or write-only, or frozen here.
   */
  #permissionHint(op: string): string | undefined {
    const writes = op === BPF_MAP_UPDATE_ELEM.name || op === BPF_MAP_DELETE_ELEM.name
      || op === BPF_MAP_LOOKUP_AND_DELETE_ELEM.name;
    const reads = op === BPF_MAP_LOOKUP_ELEM.name || op === BPF_MAP_GET_NEXT_KEY.name
      || op === BPF_MAP_LOOKUP_AND_DELETE_ELEM.name;
    if (writes && (this.#openFlags & BPF_F_RDONLY) !== 0) {
      return "the map was opened read-only (BPF_F_RDONLY)";
    }
    if (reads && (this.#openFlags & BPF_F_WRONLY) !== 0) {
      return "the map was opened write-only (BPF_F_WRONLY)";
    }
    if (writes && (this.flags & BPF_F_RDONLY) !== 0) {
      return "the map was created read-only for user space (BPF_F_RDONLY)";
    }
    if (reads && (this.flags & BPF_F_WRONLY) !== 0) {
      return "the map was created write-only for user space (BPF_F_WRONLY)";
    }
    if (writes && this.#frozen) return FROZEN_HINT;
    return undefined;
  }

  #lookupBatch(command: BatchCommand, opts: BatchLookupOptions): BatchResult {
    const operation = command === BPF_MAP_LOOKUP_BATCH ? "lookupBatch" : "lookupAndDeleteBatch";
    const fd = this.#openFd(operation);
    if (opts === null || typeof opts !== "object") {
      throw new TypeError(`${operation}: options must be an object, got ${describe(opts)}`);
    }
    // Every option read once, first: a getter runs here or never, not between a check and the call.
    const { count: countOption, cursor: cursorOption, elemFlags: elemFlagsOption } = opts;
    const { keys: keysOption, values: valuesOption } = opts;
    this.#batchable(operation);
    const count = checkInteger(countOption, "count", 1);
    const { keySize, valueStride } = this;
    const given = {
      keys: keysOption === undefined ? null : kernelSpan(keysOption, count, keySize, "keys"),
      values: valuesOption === undefined
        ? null
        : kernelSpan(valuesOption, count, valueStride, "values"),
    };
    const elemFlags = checkElemFlags(elemFlagsOption ?? 0);
    const cursor = cursorOption ?? null;
    if (cursor !== null) {
      checkExactBytes(cursor, this.#cursorIn.byteLength, "cursor");
      this.#cursorIn.set(cursor);
    }
    // Buffers of their own when not given: a result shares memory with nothing.
    const keys = given.keys ?? offHeapBytes(count * keySize);
    const values = given.values ?? offHeapBytes(count * valueStride);

    const call: BatchCall = {
      inBatch: cursor === null ? null : this.#cursorIn,
      outBatch: this.#cursorOut,
      keys,
      values,
      count,
      elemFlags,
      flags: 0,
    };
    const result = mapBatch(this.#kernel, command, fd, call);
    const written = call.count;
    if (result >= 0 || result === -ENOENT) {
      return {
        count: written,
        keys: keys.subarray(0, written * keySize),
        values: values.subarray(0, written * valueStride),
        cursor: result === -ENOENT ? null : this.#cursorOut.slice(),
      };
    }
    // keys and values are bpfmap's own views: nothing of the caller's runs before the throw.
    const processed = processedBeforeFailure(count, written);
    throw new BatchError(command.name, -result, processed, {
      keys: keys.subarray(0, processed * keySize),
      values: values.subarray(0, processed * valueStride),
    }, this.#describe());
  }

  #writeBatch(
    command: BatchCommand,
    keysArgument: unknown,
    valuesArgument: unknown,
    opts: BatchWriteOptions,
  ): number {
    const operation = command === BPF_MAP_UPDATE_BATCH ? "updateBatch" : "deleteBatch";
    const fd = this.#openFd(operation);
    if (opts === null || typeof opts !== "object") {
      throw new TypeError(`${operation}: options must be an object, got ${describe(opts)}`);
    }
    // Every option read once, first (see #lookupBatch).
    const { count: countOption, elemFlags: elemFlagsOption, flags: flagsOption } = opts;
    this.#batchable(operation);
    const { keySize, valueStride } = this;
    const keysLength = checkKernelBytes(keysArgument, "keys");
    // Update batches always have values (null included, which is refused); delete batches never.
    const hasValues = command === BPF_MAP_UPDATE_BATCH;
    const valuesLength = hasValues ? checkKernelBytes(valuesArgument, "values") : 0;
    let count: number;
    if (countOption === undefined) {
      if (keysLength === 0 || keysLength % keySize !== 0) {
        throw new RangeError(
          `keys: ${keysLength} bytes is not a positive multiple of the ${keySize}-byte key size`,
        );
      }
      count = keysLength / keySize;
      if (hasValues && valuesLength !== count * valueStride) {
        throw new RangeError(
          `values must be ${count} × ${valueStride} = ${
            count * valueStride
          } bytes for ${count} keys, got ${valuesLength}`,
        );
      }
    } else {
      count = checkInteger(countOption, "count", 1);
      checkCapacity(keysLength, count, keySize, "keys");
      if (hasValues) checkCapacity(valuesLength, count, valueStride, "values");
    }
    const elemFlags = checkElemFlags(elemFlagsOption ?? 0);
    const flags = checkU32(flagsOption ?? 0, "flags");

    const call: BatchCall = {
      inBatch: null,
      outBatch: null,
      keys: spanOf(keysArgument as Uint8Array, count * keySize),
      values: hasValues ? spanOf(valuesArgument as Uint8Array, count * valueStride) : null,
      count,
      elemFlags,
      flags,
    };
    const result = mapBatch(this.#kernel, command, fd, call);
    const written = call.count;
    if (result >= 0) return written;
    throw new BatchError(
      command.name,
      -result,
      processedBeforeFailure(count, written),
      undefined,
      this.#describe(),
    );
  }

  #batchable(operation: string): void {
    if (this.keySize === 0) {
      throw new TypeError(`${operation}: ${this.#describe()} has no keys, so no batch operations`);
    }
  }
}

/** Views of `sizes` bytes each, 8-byte aligned, carved from one off-heap buffer. */
function arenaOf(sizes: number[]): Uint8Array[] {
  const offsets: number[] = [];
  let total = 0;
  for (const size of sizes) {
    offsets.push(total);
    total += Math.ceil(size / 8) * 8;
  }
  const arena = offHeapBytes(total);
  return sizes.map((size, i) => arena.subarray(offsets[i]!, offsets[i]! + size));
}

/**
 * How many elements a failed batch handled. The kernel writes `count` back
 * on every failure after its argument checks; a failure in those checks
 * leaves our `count` in place, and no failing call can have handled all
 * `count` elements, so an unchanged count means none.
 */
function processedBeforeFailure(requested: number, written: number): number {
  return written === requested ? 0 : written;
}

/**
 * A caller's buffer the kernel reads or writes in place, checked to hold
 * `count` elements of `size` bytes, as a view of exactly that span.
 */
function kernelSpan(buffer: unknown, count: number, size: number, argument: string): Uint8Array {
  checkCapacity(checkKernelBytes(buffer, argument), count, size, argument);
  return spanOf(buffer as Uint8Array, count * size);
}

function checkCapacity(length: number, count: number, size: number, argument: string): void {
  if (length < count * size) {
    throw new RangeError(
      `${argument} holds ${length} bytes, too small for count ${count} × ${size} = ${count * size}`,
    );
  }
}

/**
 * A flag word: an integer that fits the kernel's u32. Bits bpfmap does not
 * know go through, as cilium/ebpf passes them: the kernel answers EINVAL for
 * bits it does not know either, and takes those of a newer kernel.
 */
function checkU32(value: unknown, argument: string): number {
  return checkInteger(value, argument, 0, 0xffff_ffff);
}

function checkElemFlags(value: unknown): number {
  return checkU32(value, "elemFlags");
}

/**
 * A spec's `contents`, read once into an array of `[key, value]` pairs of
 * `keySize` and `valueStride()` bytes (an empty key for maps without keys),
 * checked before the map is created.
 */
function checkContents(
  contents: Iterable<readonly [Uint8Array, Uint8Array]>,
  keySize: number,
  valueStride: () => number,
): (readonly [Uint8Array, Uint8Array])[] {
  if (contents === null || typeof contents !== "object" || !(Symbol.iterator in contents)) {
    throw new TypeError(
      `spec.contents must be an iterable of [key, value], got ${describe(contents)}`,
    );
  }
  const pairs = Array.from(contents, (entry, i) => {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new TypeError(
        `spec.contents[${i}] must be a [key, value] pair, got ${describe(entry)}`,
      );
    }
    return entry as unknown as readonly [Uint8Array, Uint8Array];
  });
  const stride = pairs.length === 0 ? 0 : valueStride();
  pairs.forEach(([key, value], i) => {
    checkExactBytes(key, keySize, `spec.contents[${i}][0]`);
    checkExactBytes(value, stride, `spec.contents[${i}][1]`);
  });
  return pairs;
}

function checkMapBtf(btf: MapBtf | undefined): MapBtf | undefined {
  if (btf === undefined) return undefined;
  if (btf === null || typeof btf !== "object" || !("types" in btf || "btf" in btf)) {
    throw new TypeError(
      `spec.btf must be { types, keyTypeId, valueTypeId } or { btf, ... }, got ${describe(btf)}`,
    );
  }
  if ("btf" in btf && !(btf.btf instanceof Btf)) {
    throw new TypeError(`spec.btf.btf must be a Btf, got ${describe(btf.btf)}`);
  }
  checkInteger(btf.keyTypeId, "spec.btf.keyTypeId");
  checkInteger(btf.valueTypeId, "spec.btf.valueTypeId", 1);
  return btf;
}

/**
 * Every map named `name`, open (close each when done), in id order: the
 * walk of {@linkcode BpfMap.fromName}, for callers that take several (as
 * `bpfmap map show name NAME`). A map gone between listing and opening is
 * skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap, findMapsByName } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1, name: "findme" });
 * const found = findMapsByName("findme");
 * assert.deepEqual(found.map((m) => m.id), [map.id]);
 * for (const m of found) m.close();
 * ```
 */
export function findMapsByName(name: string, kernel: Kernel = liveKernel()): BpfMap[] {
  if (typeof name !== "string" || !MAP_NAME.test(name)) {
    throw new TypeError(
      `name: ${describe(name)} is not a map name (at most 15 of A-Z a-z 0-9 _ .)`,
    );
  }
  const maps: BpfMap[] = [];
  for (const id of listMapIds(kernel)) {
    let map: BpfMap;
    try {
      map = BpfMap.fromId(id, kernel);
    } catch (error) {
      if (error instanceof BpfError && error.code === "ENOENT") continue; // gone meanwhile
      for (const found of maps) found.close();
      throw error;
    }
    if (map.name === name) maps.push(map);
    else map.close();
  }
  return maps;
}

/** `/proc/self/status` through `kernel`, or "" where it cannot be read. */
function readStatus(kernel: Kernel): string {
  try {
    return kernel.backend.readTextFile("/proc/self/status");
  } catch {
    return "";
  }
}
