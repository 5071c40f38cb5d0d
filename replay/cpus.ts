/**
 * Transcripts across CPU counts. A per-CPU map's value holds one slot per
 * possible CPU, so a call recorded on a 2-CPU host moves other bytes than the
 * same call on a 4-CPU one. Replay serves the recording host's count, so the
 * code replays as it was recorded; a verify run on another host compares
 * per-CPU values slot by slot for the CPUs both hosts have
 * ({@linkcode PerCpuMaps.project}); {@linkcode withPossibleCpus} rewrites a
 * transcript as if recorded on another count.
 *
 * @module
 */

import {
  BPF_MAP_CREATE,
  BPF_MAP_INFO,
  BPF_OBJ_GET_INFO_BY_FD,
  holdsField,
  readU32,
} from "../ffi/commands.ts";
import { POSSIBLE_CPUS_PATH } from "../ffi/kernel.ts";
import { isPerCpu } from "../ffi/map_types.ts";
import { countCpuList, perCpuSlotSize } from "../ffi/percpu.ts";
import {
  type CallEntry,
  decodeBytes,
  encodeBytes,
  type Entry,
  isCall,
  type RegionRecord,
  type Transcript,
} from "./transcript.ts";

/** The fields of a map's calls that hold its values: a per-CPU map's slots are in these. */
const VALUE_FIELDS = new Set(["value", "values"]);

/** fdinfo fields that depend on the CPU count (preallocated per-CPU memory). */
const CPU_DEPENDENT_FDINFO = ["memlock"];

/**
 * The per-CPU maps of a run, as its calls reveal them (`BPF_MAP_CREATE` and
 * `bpf_map_info`), by handle: each one's slot size.
 */
export class PerCpuMaps {
  readonly #slots = new Map<number, number>();

  /** Learns from a completed call which handles are per-CPU maps, and their value size. */
  learn(entry: Entry): void {
    if (!isCall(entry) || entry.errno !== undefined) return;
    if (entry.call === BPF_MAP_CREATE.name && typeof entry.result === "object") {
      this.#note(entry.result.fd, entry.attr.map_type as number, entry.attr.value_size as number);
    } else if (entry.call === BPF_OBJ_GET_INFO_BY_FD.name) {
      const info = entry.attr.info as RegionRecord | null;
      const handle = entry.attr.bpf_fd;
      if (info?.out === undefined || typeof handle !== "number") return;
      // A program's or a BTF object's info: its type is no map type.
      if (info.size !== BPF_MAP_INFO.size) return;
      const bytes = decodeBytes(info.out);
      const { type, value_size } = BPF_MAP_INFO.fields;
      if (!holdsField(bytes, value_size)) return;
      this.#note(handle, readU32(bytes, type), readU32(bytes, value_size));
    }
  }

  /** The slot size of the per-CPU map behind `handle`, if it is one. */
  slotOf(handle: unknown): number | undefined {
    return typeof handle === "number" ? this.#slots.get(handle) : undefined;
  }

  /**
   * `entry` as if its host had `to` possible CPUs where it had `from`: each
   * per-CPU element keeps its first `to` slots, or, with `to` above `from`,
   * gets copies of its last slot (what a host with more CPUs returns for a
   * value every CPU was given alike). Other entries come back as they are;
   * fdinfo loses `memlock`, which counts per-CPU memory.
   */
  project(entry: Entry, from: number, to: number): Entry {
    if (from === to) return entry;
    if ("fdinfo" in entry) {
      const fields = { ...entry.fields };
      for (const name of CPU_DEPENDENT_FDINFO) delete fields[name];
      return { ...entry, fields };
    }
    if (!isCall(entry)) return entry;
    const slot = this.slotOf(entry.attr.map_fd);
    if (slot === undefined) return entry;
    const attr = { ...entry.attr };
    for (const name of VALUE_FIELDS) {
      const region = attr[name] as RegionRecord | null | undefined;
      if (region === null || region === undefined || typeof region !== "object") continue;
      attr[name] = resizeRegion(region, slot, from, to);
    }
    return { ...entry, attr } as CallEntry;
  }

  #note(handle: number, type: number, valueSize: number): void {
    if (isPerCpu(type)) this.#slots.set(handle, perCpuSlotSize(valueSize));
  }
}

function resizeRegion(region: RegionRecord, slot: number, from: number, to: number): RegionRecord {
  const resize = (encoded: string) =>
    encodeBytes(resizeSlots(decodeBytes(encoded), slot, from, to));
  const resized: RegionRecord = { ...region, size: (region.size / (slot * from)) * slot * to };
  if (region.in !== undefined) resized.in = resize(region.in);
  if (region.out !== undefined) resized.out = resize(region.out);
  return resized;
}

function resizeSlots(bytes: Uint8Array, slot: number, from: number, to: number): Uint8Array {
  const elements = Math.floor(bytes.byteLength / (slot * from));
  const out = new Uint8Array(elements * slot * to);
  for (let e = 0; e < elements; e++) {
    const element = bytes.subarray(e * slot * from, (e + 1) * slot * from);
    for (let cpu = 0; cpu < to; cpu++) {
      const source = Math.min(cpu, from - 1);
      out.set(element.subarray(source * slot, (source + 1) * slot), (e * to + cpu) * slot);
    }
  }
  return out;
}

/**
 * A transcript rewritten as if recorded on a host with `cpus` possible CPUs:
 * the host, the CPU list read, and every per-CPU value (see
 * {@linkcode PerCpuMaps.project}). For sessions that give every CPU the same
 * value; what a test that tells CPUs apart wrote cannot be made up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Transcript } from "./transcript.ts";
 * import { withPossibleCpus } from "./cpus.ts";
 *
 * const twoCpus: Transcript = {
 *   format: "bpfmap-transcript",
 *   version: 1,
 *   host: { arch: "x86_64", kernel: "6.18", possibleCpus: 2 },
 *   files: { "/sys/devices/system/cpu/possible": "0-1\n" },
 *   entries: [
 *     { call: "BPF_MAP_CREATE", attr: { map_type: 6, value_size: 4 }, result: { fd: 1 } },
 *     {
 *       call: "BPF_MAP_LOOKUP_ELEM",
 *       attr: { map_fd: 1, key: { size: 4, in: "00000000" }, value: { size: 16, out: "0700000000000000".repeat(2) } },
 *       result: 0,
 *     },
 *   ],
 * };
 * const four = withPossibleCpus(twoCpus, 4);
 * assert.equal(four.host.possibleCpus, 4);
 * assert.equal(four.files["/sys/devices/system/cpu/possible"], "0-3\n");
 * assert.deepEqual(four.entries[1], {
 *   call: "BPF_MAP_LOOKUP_ELEM",
 *   attr: { map_fd: 1, key: { size: 4, in: "00000000" }, value: { size: 32, out: "0700000000000000".repeat(4) } },
 *   result: 0,
 * });
 * ```
 */
export function withPossibleCpus(transcript: Transcript, cpus: number): Transcript {
  if (!Number.isInteger(cpus) || cpus < 1) {
    throw new RangeError(`cpus must be a positive integer, got ${cpus}`);
  }
  const from = transcript.host.possibleCpus;
  const files = { ...transcript.files };
  if (POSSIBLE_CPUS_PATH in files) {
    if (countCpuList(files[POSSIBLE_CPUS_PATH]) !== from) {
      throw new RangeError(`the transcript's ${POSSIBLE_CPUS_PATH} does not list ${from} CPUs`);
    }
    files[POSSIBLE_CPUS_PATH] = cpus === 1 ? "0\n" : `0-${cpus - 1}\n`;
  }
  const maps = new PerCpuMaps();
  const entries = transcript.entries.map((entry) => {
    maps.learn(entry);
    return "fdinfo" in entry ? entry : maps.project(entry, from, cpus);
  });
  return { ...transcript, host: { ...transcript.host, possibleCpus: cpus }, files, entries };
}
