/**
 * `struct bpf_map_info`, as `BPF_OBJ_GET_INFO_BY_FD` fills it.
 *
 * @module
 */

import { offHeapBytes } from "./ffi/backend.ts";
import { BPF_MAP_INFO, BPF_OBJ_GET_INFO_BY_FD } from "./ffi/commands.ts";
import type { Kernel } from "./kernel.ts";
import { mapTypeName } from "./map_types.ts";

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

/** The size of `struct bpf_map_info` this module reads. */
export const MAP_INFO_SIZE = BPF_MAP_INFO.size;

const decoder = new TextDecoder();

/** One info buffer per kernel: calls are synchronous and the info is decoded at once. */
const infoBuffers = new WeakMap<Kernel, Uint8Array>();

/**
 * Asks the kernel about the map behind `fd`.
 *
 * @returns the info, or `-errno` if the kernel refused.
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

/** Decodes the bytes of a `struct bpf_map_info`. */
export function decodeMapInfo(info: Uint8Array): MapInfo {
  const view = new DataView(info.buffer, info.byteOffset, info.byteLength);
  const u32 = (offset: number) => view.getUint32(offset, true);
  const nameBytes = info.subarray(24, 40);
  const nul = nameBytes.indexOf(0);
  const type = u32(0);
  return {
    type,
    typeName: mapTypeName(type),
    id: u32(4),
    keySize: u32(8),
    valueSize: u32(12),
    maxEntries: u32(16),
    flags: u32(20),
    name: decoder.decode(nul === -1 ? nameBytes : nameBytes.subarray(0, nul)),
    ifindex: u32(40),
    btfVmlinuxValueTypeId: u32(44),
    netnsDev: view.getBigUint64(48, true),
    netnsIno: view.getBigUint64(56, true),
    btfId: u32(64),
    btfKeyTypeId: u32(68),
    btfValueTypeId: u32(72),
    btfVmlinuxId: u32(76),
    mapExtra: view.getBigUint64(80, true),
  };
}
