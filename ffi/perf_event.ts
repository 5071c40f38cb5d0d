/**
 * `struct perf_event_attr` and the perf constants bpfmap uses, as the kernel
 * defines them (`include/uapi/linux/perf_event.h`): the one place they are
 * written down. The struct is described with the same {@linkcode Field}s as a
 * `bpf()` attr, so it is packed by an {@linkcode Attr} (off-heap, its pointees
 * kept referenced) and recorded like one: a kprobe's function name or an
 * uprobe's binary path is the region `config1` points to, never an address.
 *
 * @module
 */

import { Attr } from "./attr.ts";
import { type Command, defineCommand, type FieldKind, type FieldShape } from "./commands.ts";
import type { AddressSpace } from "./memory.ts";

/** `PERF_ATTR_SIZE_VER7`: the struct up to `sig_data` (Linux 5.13), what bpfmap passes. */
export const PERF_ATTR_SIZE = 128;

type Shape = readonly [offset: number, kind: FieldKind, pointee?: string];

const SHAPES = {
  type: [0, "u32"],
  size: [4, "u32"],
  config: [8, "u64"],
  /** Or `sample_freq` with {@linkcode PERF_FLAG_BITS}`.freq`. */
  sample_period: [16, "u64"],
  sample_type: [24, "u64"],
  read_format: [32, "u64"],
  /** The bitfield word: see {@linkcode PERF_FLAG_BITS}. */
  flags: [40, "u64"],
  /** Or `wakeup_watermark` with {@linkcode PERF_FLAG_BITS}`.watermark`. */
  wakeup_events: [48, "u32"],
  bp_type: [52, "u32"],
  /**
   * `kprobe_func` / `uprobe_path` (`config1`): a C string the kernel reads, recorded as a path
   * (a run's folder is written as its placeholder).
   */
  config1: [56, "pointer", "path"],
  /** `kprobe_addr` / `probe_offset` (`config2`). */
  config2: [64, "u64"],
  branch_sample_type: [72, "u64"],
  sample_regs_user: [80, "u64"],
  sample_stack_user: [88, "u32"],
  clockid: [92, "u32"],
  sample_regs_intr: [96, "u64"],
  aux_watermark: [104, "u32"],
  /** `sample_max_stack` (u16) and `__reserved_2` (u16). */
  sample_max_stack: [108, "u32"],
  aux_sample_size: [112, "u32"],
  __reserved_3: [116, "u32"],
  sig_data: [120, "u64"],
} as const satisfies Record<string, Shape>;

/** The names of `perf_event_attr`'s fields. */
export type PerfEventField = keyof typeof SHAPES;

/**
 * `struct perf_event_attr` as a command-like struct: `perfEventOpen`'s
 * argument is an {@linkcode Attr} of it (see {@linkcode perfEventAttr}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PERF_EVENT_ATTR } from "./perf_event.ts";
 * assert.equal(PERF_EVENT_ATTR.size, 128);
 * assert.equal(PERF_EVENT_ATTR.fields.config1.offset, 56);
 * assert.equal(PERF_EVENT_ATTR.fields.config1.kind, "pointer"); // kprobe_func, uprobe_path
 * assert.equal(PERF_EVENT_ATTR.fields.wakeup_events.offset, 48);
 * ```
 */
export const PERF_EVENT_ATTR: Command<PerfEventField> = defineCommand(
  "perf_event_open",
  // Not a bpf() command: perfEventOpen issues its own syscall with this struct.
  -1,
  "fd",
  Object.fromEntries(
    Object.entries(SHAPES).map(([name, [offset, kind, pointee]]: [string, Shape]) => [name, {
      offset,
      size: kind === "u32" ? 4 : 8,
      kind,
      direction: "in",
      ...(pointee === undefined ? {} : { pointee }),
    }]),
  ) as Record<PerfEventField, FieldShape>,
);

/**
 * A zeroed `perf_event_attr` whose `size` says {@linkcode PERF_ATTR_SIZE}, off-heap in
 * `space` (a backend).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "./kernel.ts";
 * import { PERF_COUNT_SW_CPU_CLOCK, PERF_EVENT_ATTR, PERF_TYPE_SOFTWARE, perfEventAttr } from "./perf_event.ts";
 *
 * const attr = perfEventAttr(liveKernel().backend);
 * attr.setU32(PERF_EVENT_ATTR.fields.type, PERF_TYPE_SOFTWARE);
 * attr.setU64(PERF_EVENT_ATTR.fields.config, PERF_COUNT_SW_CPU_CLOCK);
 * assert.equal(attr.getU32(PERF_EVENT_ATTR.fields.size), 128);
 * assert.equal(attr.bytes.byteLength, 128);
 * ```
 */
export function perfEventAttr(space: AddressSpace): Attr<PerfEventField> {
  const attr = new Attr(PERF_EVENT_ATTR, space);
  attr.setU32(PERF_EVENT_ATTR.fields.size, PERF_ATTR_SIZE);
  return attr;
}

/**
 * The bits of `perf_event_attr`'s bitfield word (`flags`, offset 40), as a
 * little-endian u64 lays out the C bitfield: `disabled` is bit 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PERF_FLAG_BITS } from "./perf_event.ts";
 * assert.equal(PERF_FLAG_BITS.disabled, 1);
 * assert.equal(PERF_FLAG_BITS.watermark, 1 << 14); // wakeup_watermark instead of wakeup_events
 * ```
 */
export const PERF_FLAG_BITS = Object.freeze(
  {
    disabled: 1 << 0,
    inherit: 1 << 1,
    pinned: 1 << 2,
    exclusive: 1 << 3,
    exclude_user: 1 << 4,
    exclude_kernel: 1 << 5,
    exclude_hv: 1 << 6,
    exclude_idle: 1 << 7,
    mmap: 1 << 8,
    comm: 1 << 9,
    freq: 1 << 10,
    inherit_stat: 1 << 11,
    enable_on_exec: 1 << 12,
    task: 1 << 13,
    watermark: 1 << 14,
    // precise_ip is two bits, 15 and 16.
    mmap_data: 1 << 17,
    sample_id_all: 1 << 18,
  } as const,
);

/** `PERF_TYPE_HARDWARE`. */
export const PERF_TYPE_HARDWARE = 0;
/** `PERF_TYPE_SOFTWARE`: `config` is a `PERF_COUNT_SW_*`. */
export const PERF_TYPE_SOFTWARE = 1;
/** `PERF_TYPE_TRACEPOINT`: `config` is the id in `/sys/kernel/tracing/events/G/N/id`. */
export const PERF_TYPE_TRACEPOINT = 2;
/** `PERF_COUNT_SW_CPU_CLOCK`: a high-resolution per-CPU timer (`sample_period` in ns). */
export const PERF_COUNT_SW_CPU_CLOCK = 0;
/** `PERF_COUNT_SW_TASK_CLOCK`: the task's own CPU time. */
export const PERF_COUNT_SW_TASK_CLOCK = 1;
/** `PERF_COUNT_SW_BPF_OUTPUT`: the event `bpf_perf_event_output` writes samples to. */
export const PERF_COUNT_SW_BPF_OUTPUT = 10;
/** `PERF_SAMPLE_RAW`: samples carry a size-prefixed raw record (BPF output). */
export const PERF_SAMPLE_RAW = 1 << 10;
/** `PERF_FLAG_FD_CLOEXEC`, the `flags` argument bpfmap passes. */
export const PERF_FLAG_FD_CLOEXEC = 1 << 3;
/** Where `/sys/bus/event_source/devices/kprobe/type` holds the `kprobe` PMU's `type`. */
export const KPROBE_TYPE_PATH = "/sys/bus/event_source/devices/kprobe/type";
/** Where `/sys/bus/event_source/devices/uprobe/type` holds the `uprobe` PMU's `type`. */
export const UPROBE_TYPE_PATH = "/sys/bus/event_source/devices/uprobe/type";

/** `PERF_EVENT_IOC_ENABLE` (`_IO('$', 0)`). */
export const PERF_EVENT_IOC_ENABLE = 0x2400;
/** `PERF_EVENT_IOC_DISABLE` (`_IO('$', 1)`). */
export const PERF_EVENT_IOC_DISABLE = 0x2401;
/** `PERF_EVENT_IOC_RESET` (`_IO('$', 3)`). */
export const PERF_EVENT_IOC_RESET = 0x2403;
/** `PERF_EVENT_IOC_SET_BPF` (`_IOW('$', 8, __u32)`): the argument is a program fd. */
export const PERF_EVENT_IOC_SET_BPF = 0x40042408;

/**
 * Offsets in `struct perf_event_mmap_page`, the first page of a perf ring
 * buffer mapping: `data_head` (the kernel's write position; read it with
 * acquire ordering), `data_tail` (the reader's position, written by user
 * space), and where and how large the data area is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PERF_MMAP_PAGE } from "./perf_event.ts";
 * assert.equal(PERF_MMAP_PAGE.data_head, 1024);
 * ```
 */
export const PERF_MMAP_PAGE = Object.freeze(
  {
    data_head: 1024,
    data_tail: 1032,
    data_offset: 1040,
    data_size: 1048,
  } as const,
);

/** `PERF_RECORD_LOST`: records were dropped (`u64 id, u64 lost`). */
export const PERF_RECORD_LOST = 2;
/** `PERF_RECORD_SAMPLE`. */
export const PERF_RECORD_SAMPLE = 9;
