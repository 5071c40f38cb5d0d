/**
 * Turning a call, as the attr and its buffers hold it, into a transcript
 * entry, and writing a recorded call's outputs back into a caller's attr.
 * The recorder, the player and the verifier all go through here, so what is
 * recorded, what is matched and what is replayed cannot drift apart.
 *
 * @module
 */

import type { Attr, NestedPointer } from "../ffi/attr.ts";
import type { PerfEventOpenArgs } from "../ffi/backend.ts";
import {
  BPF_MAP_CREATE,
  BPF_MAP_INFO,
  BPF_OBJ_GET_INFO_BY_FD,
  bytesWritten,
  commandKey,
  countField,
  type Direction,
  type Field,
  holdsField,
  type Layout,
  readU32,
  writesOnFailure,
} from "../ffi/commands.ts";
import { errnoName } from "../ffi/errno.ts";
import { PERF_EVENT_IOC_SET_BPF } from "../ffi/perf_event.ts";
import type { Identities, IdKind } from "./identities.ts";
import {
  type CallEntry,
  decodeBytes,
  encodeBytes,
  type FieldRecord,
  type RegionRecord,
  type ScalarInOut,
} from "./transcript.ts";

const TWO_TO_32 = 0x1_0000_0000;

/** What pointer `field` is bound to in `attr`: its buffer (or `null`), direction, layout and nested pointers. */
export interface PointerBinding {
  readonly bytes: Uint8Array | null;
  readonly direction: Direction;
  readonly layout: Layout | null;
  readonly nested: readonly NestedPointer[];
}

/**
 * The binding of pointer `field` in `attr`: a pointer field of the attr's
 * command has a slot, and the attr has state for every slot.
 */
export function pointerBinding(attr: Attr, field: Field): PointerBinding {
  const slot = field.slot;
  const direction = slot === undefined ? undefined : attr.directions[slot];
  if (slot === undefined || direction === undefined) {
    throw new TypeError(`bpfmap: ${attr.command.name}.${field.name} is not a pointer field`);
  }
  return {
    bytes: attr.pointees[slot] ?? null,
    direction,
    layout: attr.layouts[slot] ?? null,
    nested: attr.nested[slot] ?? [],
  };
}
/**
 * What regions holding map values point to: of maps holding fds, fds in, and
 * ids out where a lookup answers with ids (inner maps, programs). By pointee,
 * not by name: `BPF_MAP_GET_NEXT_KEY`'s `value` is the next key.
 */
const VALUE_POINTEES = new Set(["value", "values"]);

/**
 * What the code asks of the kernel: every field as it goes in (scalars,
 * handles, the bytes of regions the kernel reads). `out` parts are absent.
 */
export function inputEntry(attr: Attr, ids: Identities): CallEntry {
  const command = attr.command;
  const record: Record<string, FieldRecord> = {};
  const mapFd = (command.fields as Record<string, Field | undefined>).map_fd;
  const mapHandle = mapFd !== undefined ? ids.handleOf(attr.getU32(mapFd)) : "foreign";
  for (const field of command.fieldList) {
    record[field.name] = inputField(attr, field, ids, mapHandle);
  }
  return { call: commandKey(command), attr: record };
}

function inputField(
  attr: Attr,
  field: Field,
  ids: Identities,
  mapHandle: number | "foreign",
): FieldRecord {
  switch (field.kind) {
    case "fd": {
      const fd = attr.getU32(field);
      if (fd === 0 && field.optional) return 0;
      return ids.handleOf(fd);
    }
    case "u32": {
      const value = attr.getU32(field);
      const shown = field.id !== undefined ? ids.idIn(value, field.id) : value;
      // A scalar the kernel writes starts as the code left it; `out` is filled by completeEntry.
      return field.direction === "in" ? shown : { in: shown, out: 0 };
    }
    case "u64": {
      const value = attr.getBigU64(field);
      return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value);
    }
    case "chars": {
      const bytes = attr.bytes.subarray(field.offset, field.offset + field.size);
      const end = bytes.indexOf(0);
      return String.fromCharCode(...(end === -1 ? bytes : bytes.subarray(0, end)));
    }
    case "pointer": {
      const { bytes, direction, layout, nested } = pointerBinding(attr, field);
      if (bytes === null) return null;
      const region: RegionRecord = { size: bytes.byteLength };
      if (direction !== "out") {
        let input = bytes;
        if (VALUE_POINTEES.has(field.pointee!) && ids.holdsFds(mapHandle)) {
          // Map, program and perf event fds become handles; an fd bpfmap never got from the
          // kernel (a socket or cgroup the code opened, a constant) is all ones, never a raw
          // number a handle could equal: a stray fd that happens to match one would pass.
          input = mapU32s(bytes, (fd) => handleIn(ids, fd));
        }
        if (layout !== null) input = renameStruct(input, layout, (id, kind) => ids.idIn(id, kind));
        // Fds the code hands the kernel inside memory: map references in instructions, fd arrays.
        if (field.pointee === "insns") input = insnsIn(input, (fd) => handleIn(ids, fd));
        if (field.pointee === "fds") input = mapU32s(input, (fd) => handleIn(ids, fd));
        if (field.pointee === "path") {
          // A run's own folder becomes its placeholder, and the size is the placeholder's.
          input = ids.pathIn(input);
          region.size = input.byteLength;
        }
        region.in = encodeBytes(input);
      }
      for (const pointer of nested) {
        region.pointers ??= {};
        region.pointers[pointer.field.name] = pointer.field.direction === "out"
          ? { size: pointer.bytes.byteLength }
          : { size: pointer.bytes.byteLength, in: encodeBytes(pointer.bytes) };
      }
      return region;
    }
  }
}

/**
 * Completes an input entry with what the kernel answered: scalars and
 * regions it wrote, the result (a new fd becomes a handle through
 * `newHandle`) or the errno.
 */
export function completeEntry(
  entry: CallEntry,
  attr: Attr,
  result: number,
  ids: Identities,
  newHandle: (fd: number) => number,
): CallEntry {
  const command = attr.command;
  if (result < 0) {
    entry.errno = errnoName(-result);
  } else {
    entry.result = command.result === "fd" ? { fd: newHandle(result) } : result;
  }
  const mapHandle = typeof entry.attr.map_fd === "number" ? entry.attr.map_fd : "foreign";
  // Scalars first: a batch's written extent depends on the count the kernel wrote back.
  for (const field of command.fieldList) {
    if (field.kind === "u32" && field.direction !== "in") {
      const value = attr.getU32(field);
      (entry.attr[field.name] as ScalarInOut).out = field.varies === true
        ? 0
        : field.id !== undefined
        ? ids.idOut(value, field.id)
        : value;
    }
  }
  for (const field of command.fieldList) {
    const recorded = entry.attr[field.name];
    if (field.kind !== "pointer" || recorded === null) continue;
    const { bytes, direction, layout, nested } = pointerBinding(attr, field);
    if (direction === "in" || (result < 0 && !writesOnFailure(attr.command, field))) continue;
    // Recorded (not null) means the call had a buffer there.
    let written = bytes!.subarray(0, writtenExtent(attr, field, entry, result, bytes!.byteLength));
    // A lookup answers with the ids of what the slots hold: they differ from run to run.
    const valueIds = VALUE_POINTEES.has(field.pointee!) ? ids.valueIds(mapHandle) : undefined;
    if (valueIds !== undefined) written = mapU32s(written, (id) => ids.idOut(id, valueIds));
    if (layout !== null) written = renameStruct(written, layout, (id, kind) => ids.idOut(id, kind));
    const region = recorded as RegionRecord;
    region.out = encodeBytes(written);
    for (const pointer of nested) {
      // inputEntry recorded every nested pointer of this region; one of ids (map_ids) is renamed.
      const kind = pointer.field.id;
      const out = kind === undefined
        ? pointer.bytes
        : mapU32s(pointer.bytes, (id) => ids.idOut(id, kind));
      region.pointers![pointer.field.name]!.out = encodeBytes(out);
    }
  }
  learn(entry, ids);
  return entry;
}

/**
 * Writes a recorded call's outputs into the caller's attr and buffers,
 * exactly as the kernel did; returns the result (or `-errno`), with fds
 * from `fdFor`.
 */
export function applyOutputs(
  entry: CallEntry,
  attr: Attr,
  errnoOf: (name: string) => number,
  fdFor: (handle: number) => number,
): number {
  for (const field of attr.command.fieldList) {
    const recorded = entry.attr[field.name];
    if (field.kind === "u32" && field.direction !== "in") {
      attr.setU32(field, (recorded as ScalarInOut).out);
    } else if (field.kind === "pointer" && recorded !== null && recorded !== undefined) {
      const region = recorded as RegionRecord;
      const { bytes: target, layout, nested } = pointerBinding(attr, field);
      if (region.out === undefined || target === null) continue;
      // The recording left addresses out of the struct: keep the caller's own.
      const addresses = layout === null
        ? []
        : pointerFields(layout, target.byteLength)
          .map((nested) => ({
            at: nested.offset,
            bytes: target.slice(nested.offset, nested.offset + 8),
          }));
      target.set(decodeBytes(region.out));
      for (const { at, bytes } of addresses) target.set(bytes, at);
      for (const pointer of nested) {
        const out = region.pointers?.[pointer.field.name]?.out;
        if (out !== undefined) pointer.bytes.set(decodeBytes(out));
      }
    }
  }
  return entryResult(entry, errnoOf, fdFor);
}

/** The result a recorded call returns: an fd from `fdFor`, 0, or `-errno`. */
export function entryResult(
  entry: Pick<CallEntry, "result" | "errno">,
  errnoOf: (name: string) => number,
  fdFor: (handle: number) => number,
): number {
  if (entry.errno !== undefined) return -errnoOf(entry.errno);
  if (typeof entry.result === "object") return fdFor(entry.result.fd);
  return entry.result ?? 0;
}

/** ioctl requests whose integer argument is an fd: a transcript names it by its handle. */
const FD_ARGUMENT_REQUESTS: ReadonlySet<number> = new Set([PERF_EVENT_IOC_SET_BPF]);

/** An ioctl's argument as a transcript writes it: a handle where it is an fd. */
export function ioctlArgument(request: number, arg: number, ids: Identities): number | "foreign" {
  return FD_ARGUMENT_REQUESTS.has(request) ? ids.handleOf(arg) : arg;
}

/** A `perf_event_open` as it goes in: the attr's fields, and its other arguments as `args`. */
export function perfEventEntry(ids: Identities, ...call: PerfEventOpenArgs): CallEntry {
  const [attr, pid, cpu, groupFd, flags] = call;
  const entry = inputEntry(attr, ids);
  entry.args = { pid, cpu, group_fd: groupFd === -1 ? -1 : ids.handleOf(groupFd), flags };
  return entry;
}

/** Teaches `ids` the map types a completed entry reveals. */
export function learn(entry: CallEntry, ids: Identities): void {
  if (entry.call === BPF_MAP_CREATE.name && typeof entry.result === "object") {
    ids.learnMapType(entry.result.fd, entry.attr.map_type as number);
  } else if (entry.call === BPF_OBJ_GET_INFO_BY_FD.name && entry.errno === undefined) {
    const info = entry.attr.info as RegionRecord | null;
    const handle = entry.attr.bpf_fd;
    // Only a map's info holds a map type: a program's, a link's or a BTF object's has another size.
    if (info?.out !== undefined && typeof handle === "number" && info.size === BPF_MAP_INFO.size) {
      const bytes = decodeBytes(info.out);
      const { type } = BPF_MAP_INFO.fields;
      if (holdsField(bytes, type)) ids.learnMapType(handle, readU32(bytes, type));
    }
  }
}

/** How many bytes of an output region the kernel wrote, from the entry's scalars. */
function writtenExtent(
  attr: Attr,
  field: Field,
  entry: CallEntry,
  result: number,
  size: number,
): number {
  const countAt = countField(attr.command);
  return bytesWritten(field, size, {
    errno: result < 0 ? -result : 0,
    count: countAt === undefined ? undefined : entry.attr[countAt.name] as ScalarInOut,
    extent: field.extent === undefined ? undefined : (entry.attr[field.extent] as ScalarInOut).out,
  });
}

/** The pointer fields of a struct layout that lie within `size` bytes. */
function pointerFields(layout: Layout, size: number): Field[] {
  return layout.fieldList.filter((f) => f.kind === "pointer" && f.offset + 8 <= size);
}

/**
 * A copy of a struct's bytes as a transcript shows them: its ids renamed
 * (map, program and BTF ids), and its pointers (addresses) and the scalars
 * that vary from run to run (a program's `load_time`) zeroed.
 */
function renameStruct(
  bytes: Uint8Array,
  layout: Layout,
  rename: (id: number, kind: IdKind) => number,
): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  for (const field of layout.fieldList) {
    if (field.offset + field.size > copy.byteLength) continue;
    if (field.kind === "pointer" || field.varies === true) {
      copy.fill(0, field.offset, field.offset + field.size);
    } else if (field.id !== undefined) {
      view.setUint32(field.offset, rename(view.getUint32(field.offset, true), field.id), true);
    }
  }
  return copy;
}

/** The handle of an fd the code put in memory, or all ones for one bpfmap never got. */
function handleIn(ids: Identities, fd: number): number {
  const handle = ids.handleOf(fd);
  return handle === "foreign" ? 0xffff_ffff : handle;
}

/** `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 16-byte `ld_imm64`. */
const LD_IMM64 = 0x18;
/** `ld_imm64` sources whose `imm` is a map fd: `BPF_PSEUDO_MAP_FD` and `BPF_PSEUDO_MAP_VALUE`. */
const MAP_FD_SOURCES = new Set([1, 2]);

/**
 * A copy of BPF instructions with the map fds of their `ld_imm64`s (as
 * `BPF_PSEUDO_MAP_FD` / `_VALUE`, the source register naming which) turned
 * into handles: fds differ from run to run, the maps they name do not.
 */
function insnsIn(bytes: Uint8Array, handle: (fd: number) => number): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  for (let at = 0; at + 16 <= copy.byteLength; at += 8) {
    if (copy[at] !== LD_IMM64) continue;
    if (MAP_FD_SOURCES.has(copy[at + 1]! >> 4)) {
      view.setUint32(at + 4, handle(view.getUint32(at + 4, true)), true);
    }
    at += 8; // the second half is data, never an opcode
  }
  return copy;
}

/** A copy of `bytes` with each u32 mapped. */
function mapU32s(bytes: Uint8Array, map: (value: number) => number): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  for (let offset = 0; offset + 4 <= copy.byteLength; offset += 4) {
    view.setUint32(offset, map(view.getUint32(offset, true)) % TWO_TO_32, true);
  }
  return copy;
}
