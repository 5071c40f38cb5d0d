/**
 * bpfmap: Linux eBPF maps from Deno and Bun, through the `bpf()` system call.
 *
 * Every map command a libbpf user has, including the batch commands of
 * Linux 5.6, on raw bytes exactly as the kernel stores them. Run Deno with
 * `--allow-ffi`; the kernel wants root or CAP_BPF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "./mod.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 1 << 16 });
 * const keys = new Uint8Array(new Uint32Array([1, 2, 3]).buffer);
 * const values = new Uint8Array(new BigUint64Array([10n, 20n, 30n]).buffer);
 * assert.equal(map.updateBatch(keys, values), 3); // one syscall
 * // A hash map walks in bucket order: sort to compare.
 * const read = Array.from(map.entries(), ([key, value]): [number, number] => [key[0]!, value[0]!]);
 * assert.deepEqual(read.sort((a, b) => a[0] - b[0]), [[1, 10], [2, 20], [3, 30]]);
 * ```
 *
 * @module
 */

export { Btf, BTF_LOG_SIZE, listBtfIds, readBtfObjectInfo } from "./btf/btf.ts";
export type { BtfInfo, BtfLoadOptions, BtfObjectInfo } from "./btf/btf.ts";
export {
  essentialName,
  IndexedBtf,
  KERNEL_BTF_PATH,
  kernelBtf,
  type KernelType,
  TargetBtf,
} from "./btf/kernel_btf.ts";
export { BtfFormatError, encodeBtf, parseBtf, parseSplitBtf } from "./btf/types.ts";
export type {
  BtfEnumValue,
  BtfKind,
  BtfMember,
  BtfType,
  IntEncoding,
  MapTypes,
} from "./btf/types.ts";
export { btfOfCodecs, codecOfType } from "./codec/btf.ts";
export * from "./codec/codec.ts";
export { globals, globalsMemory } from "./codec/datasec_memory.ts";
export type { Globals } from "./codec/datasec_memory.ts";
export {
  DrainError,
  maxPerCpu,
  perCpu,
  specOf,
  sumPerCpu,
  TypedBatch,
  TypedMap,
} from "./codec/typed_map.ts";
export type { TypedMapSpec, TypedSpec } from "./codec/typed_map.ts";
export { decodeRecords, TypedRing } from "./codec/typed_ring.ts";
export type { ValueCallback } from "./codec/typed_ring.ts";
export { ONLINE_CPUS_PATH, PerfBuffer, PerfRecord, TypedPerfBuffer } from "./events/perf_buffer.ts";
export type { PerfBufferOptions, PerfDecoder, PerfRecordCallback } from "./events/perf_buffer.ts";
export { RecordBytes } from "./events/record_bytes.ts";
export { RingBuffer, RingRecord, WAIT_SLICE_MS } from "./events/ring_buffer.ts";
export type { RecordCallback } from "./events/ring_buffer.ts";
export { RingBufferSet } from "./events/ring_buffer_set.ts";
export {
  BPF_RINGBUF_BUSY_BIT,
  BPF_RINGBUF_DISCARD_BIT,
  BPF_RINGBUF_HDR_SZ,
} from "./events/ring_memory.ts";
export { UserRingBuffer } from "./events/user_ring_buffer.ts";
export {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY,
  BPF_F_WRONLY_PROG,
  BPF_F_ZERO_SEED,
  BPF_NOEXIST,
} from "./ffi/commands.ts";
export { errnoName } from "./ffi/errno.ts";
export { BatchError, BpfError } from "./ffi/errors.ts";
export { Kernel } from "./ffi/kernel.ts";
export { linkTypeName } from "./ffi/link_types.ts";
export type { LinkTypeName } from "./ffi/link_types.ts";
export { isPerCpu, MAP_TYPES, mapTypeName } from "./ffi/map_types.ts";
export type { MapTypeName } from "./ffi/map_types.ts";
export { joinPerCpu, perCpuSlotSize, splitPerCpu } from "./ffi/percpu.ts";
export {
  attachTypeName,
  attachTypeNumber,
  progTypeName,
  progTypeNumber,
} from "./ffi/prog_types.ts";
export type { AttachTypeName, ProgTypeName } from "./ffi/prog_types.ts";
export type { BatchLookupOptions, BatchResult, BatchWriteOptions } from "./maps/batch.ts";
export { BPF_F_NUMA_NODE, BpfMap, findMapsByName } from "./maps/bpf_map.ts";
export type { MapBtf, MapBtfIds, MapSpec, OpenPinnedOptions } from "./maps/bpf_map.ts";
export { listMapIds, possibleCpus } from "./maps/ids.ts";
export type { MapInfo } from "./maps/info.ts";
export { MapMemory } from "./maps/memory.ts";
export type { ElementCodec, MemoryOptions } from "./maps/memory.ts";
export { DEFAULT_BATCH_SIZE, drainBatches, walkBatches } from "./maps/walk.ts";
export type { BatchWalkOptions, WalkableMap, WalkOptions } from "./maps/walk.ts";
export { CORE_RELO_KINDS } from "./object/btf_ext.ts";
export type {
  BtfExt,
  BtfExtSection,
  CoreRelocation,
  FuncInfo,
  LineInfo,
} from "./object/btf_ext.ts";
export { applyCoreRelocations, CORE_POISON, CoreRelocationError } from "./object/core.ts";
export { ObjectFormatError } from "./object/errors.ts";
export { BPF_F_MMAPABLE } from "./object/maps.ts";
export type { ObjectMap, ObjectMapKind } from "./object/maps.ts";
export { objectName, parseObject } from "./object/object.ts";
export type { ExternSpec, ObjectSpec, ParseObjectOptions } from "./object/object.ts";
export type { ObjectProgram, ProgramRelocation } from "./object/programs.ts";
export { programSection, SECTION_DEFS } from "./object/sections.ts";
export type { AttachTarget, ProgramSection, SectionDef } from "./object/sections.ts";
export type { CgroupAttachType } from "./programs/attach_cgroup.ts";
export type {
  KprobeAttachOptions,
  PerfLinkOptions,
  TracepointAttachOptions,
  UprobeAttachOptions,
} from "./programs/attach_perf_link.ts";
export { attachBySection, rememberSection } from "./programs/attach_section.ts";
export type { SectionAttachable } from "./programs/attach_section.ts";
export { BPF_F_AFTER, BPF_F_BEFORE, BPF_F_LINK, TCX_NEXT } from "./programs/attach_tcx.ts";
export type { TcxAttachOptions, TcxDirection, TcxRelative } from "./programs/attach_tcx.ts";
export { attachBtfIdOf } from "./programs/attach_tracing.ts";
export type { TracingAttachOptions, TracingAttachType } from "./programs/attach_tracing.ts";
export { Link, listLinkIds } from "./programs/link.ts";
export type { LinkInfo } from "./programs/link.ts";
export { ifindex } from "./programs/netdev.ts";
export { BpfObject, kernelVersionCode, ObjectProgramHandle } from "./programs/object_loader.ts";
export type { BpfObjectOptions, MapOverride } from "./programs/object_loader.ts";
export { listProgramIds, Program, VerifierError } from "./programs/program.ts";
export type {
  FuncInfoRecord,
  LineInfoRecord,
  ProgramInfo,
  ProgramSpec,
  TestRunOptions,
  TestRunResult,
  XdpAttachOptions,
} from "./programs/program.ts";
export { withPossibleCpus } from "./replay/cpus.ts";
export type { PathPlaceholders } from "./replay/identities.ts";
export { ReplayDivergenceError } from "./replay/player.ts";
export type { ReplayFault } from "./replay/player.ts";
export { BpfSystem, openSystem, TRANSCRIPT_ENV } from "./replay/system.ts";
export type { SystemOptions, TranscriptMode } from "./replay/system.ts";
export { TranscriptError } from "./replay/transcript.ts";
export { TranscriptMismatchError } from "./replay/verifier.ts";

// Puts typed() and typedPerCpu() on BpfMap: the raw map does not import the typed layer.
import "./codec/typed_methods.ts";
