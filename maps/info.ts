/**
 * `struct bpf_map_info`, as `BPF_OBJ_GET_INFO_BY_FD` fills it.
 *
 * @module
 */

import {
  BPF_MAP_INFO,
  BPF_OBJ_GET_INFO_BY_FD,
  type Field,
  readChars,
  readU32,
  readU64,
} from "../ffi/commands.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { mapTypeName } from "../ffi/map_types.ts";
import { offHeapBytes } from "../ffi/memory.ts";

/** What the kernel says of a map. */
export interface MapInfo {
  /** The map type number (`enum bpf_map_type`). */
  type: number;
  /** The type's name, e.g. `"hash"`. */
  typeName: string;
  /** The kernel-wide map id. */
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** `map_flags` as created. */
  flags: number;
  /** The map's name, at most 15 characters. */
  name: string;
  /** The network device of an offloaded map, else 0. */
  ifindex: number;
  btfVmlinuxValueTypeId: number;
  netnsDev: bigint;
  netnsIno: bigint;
  /** The id of the map's BTF object, 0 if none. */
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  btfVmlinuxId: number;
  /** `map_extra` (bloom filter hash count, arena address, ...). */
  mapExtra: bigint;
}

/**
 * The size of `struct bpf_map_info` this module reads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAP_INFO_SIZE } from "./info.ts";
 * assert.equal(MAP_INFO_SIZE, 104); // Linux 6.x's struct, up to hash_size
 * ```
 */
export const MAP_INFO_SIZE = BPF_MAP_INFO.size;

/** One info buffer per kernel: calls are synchronous and the info is decoded at once. */
const infoBuffers = new WeakMap<Kernel, Uint8Array>();

/**
 * Asks the kernel about the map behind `fd`.
 *
 * @returns the info, or `-errno` if the kernel refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { readMapInfo } from "./info.ts";
 *
 * using map = BpfMap.create({
 *   type: "lru_hash",
 *   keySize: 4,
 *   valueSize: 8,
 *   maxEntries: 16,
 *   name: "flows",
 * });
 * const info = readMapInfo(liveKernel(), map.fd);
 * assert.ok(typeof info !== "number");
 * assert.deepEqual(
 *   [info.typeName, info.id, info.maxEntries, info.name],
 *   ["lru_hash", map.id, 16, "flows"],
 * );
 * // No such fd: -EBADFD (77) since Linux 6.x, -EBADF (9) before.
 * assert.ok([-77, -9].includes(readMapInfo(liveKernel(), 0x7fff_ffff) as number));
 * ```
 */
export function readMapInfo(kernel: Kernel, fd: number): MapInfo | number {
  let info = infoBuffers.get(kernel);
  if (info === undefined) {
    info = offHeapBytes(MAP_INFO_SIZE);
    infoBuffers.set(kernel, info);
  }
  // The kernel starts from the caller's struct (some fields are inputs) and
  // leaves what does not apply as it was: a previous map's btf_id, say.
  info.fill(0);
  const { fields } = BPF_OBJ_GET_INFO_BY_FD;
  const attr = kernel.attr(BPF_OBJ_GET_INFO_BY_FD);
  attr.setU32(fields.bpf_fd, fd);
  attr.setU32(fields.info_len, MAP_INFO_SIZE);
  attr.setPointer(fields.info, info, undefined, "out", BPF_MAP_INFO);
  const result = kernel.call(attr);
  if (result < 0) return result;
  return decodeMapInfo(info);
}

/**
 * Decodes the bytes of a `struct bpf_map_info`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_MAP_INFO } from "../ffi/commands.ts";
 * import { decodeMapInfo, MAP_INFO_SIZE } from "./info.ts";
 *
 * const { fields } = BPF_MAP_INFO;
 * const bytes = new Uint8Array(MAP_INFO_SIZE);
 * const view = new DataView(bytes.buffer);
 * view.setUint32(fields.type.offset, 2, true); // array
 * view.setUint32(fields.max_entries.offset, 64, true);
 * bytes.set(new TextEncoder().encode("stats"), fields.name.offset); // NUL-terminated
 * const info = decodeMapInfo(bytes);
 * assert.deepEqual([info.typeName, info.maxEntries, info.name], ["array", 64, "stats"]);
 * ```
 */
export function decodeMapInfo(info: Uint8Array): MapInfo {
  const { fields } = BPF_MAP_INFO;
  const u32 = (field: Field) => readU32(info, field);
  const u64 = (field: Field) => readU64(info, field);
  const type = u32(fields.type);
  return {
    type,
    typeName: mapTypeName(type),
    id: u32(fields.id),
    keySize: u32(fields.key_size),
    valueSize: u32(fields.value_size),
    maxEntries: u32(fields.max_entries),
    flags: u32(fields.map_flags),
    name: readChars(info, fields.name),
    ifindex: u32(fields.ifindex),
    btfVmlinuxValueTypeId: u32(fields.btf_vmlinux_value_type_id),
    netnsDev: u64(fields.netns_dev),
    netnsIno: u64(fields.netns_ino),
    btfId: u32(fields.btf_id),
    btfKeyTypeId: u32(fields.btf_key_type_id),
    btfValueTypeId: u32(fields.btf_value_type_id),
    btfVmlinuxId: u32(fields.btf_vmlinux_id),
    mapExtra: u64(fields.map_extra),
  };
}
