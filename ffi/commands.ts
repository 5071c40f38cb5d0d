/**
 * The kernel's command table: every `bpf()` command bpfmap issues, with the
 * exact layout of its `union bpf_attr` member. This is the one place those
 * layouts are written down; the live backends pack from it, and the recorder,
 * player and pretty-printer read fields back through it.
 *
 * Offsets and sizes are the kernel's (`include/uapi/linux/bpf.h`), checked
 * live against Linux 6.18; all fields are little-endian.
 *
 * @module
 */

import { ENOENT } from "./errno.ts";

/** How a field's bytes are read: plain integers, a file descriptor, a user pointer, or chars. */
export type FieldKind = "u32" | "u64" | "fd" | "pointer" | "chars";

/**
 * Who reads and who writes a field (or, for a pointer, the memory it leads to):
 * `"in"` the kernel reads it, `"out"` the kernel writes it, `"inout"` both.
 */
export type Direction = "in" | "out" | "inout";

/** One field of a command's attr. */
export interface Field {
  /** The kernel's field name, e.g. `"in_batch"`. */
  readonly name: string;
  /** Byte offset inside the attr. */
  readonly offset: number;
  /** Byte size inside the attr (8 for every pointer). */
  readonly size: number;
  readonly kind: FieldKind;
  /** For pointers: what the kernel does with the memory the pointer leads to. */
  readonly direction: Direction;
  /** For pointers: what the memory holds (`"key"`, `"values"`, `"cursor"`, `"path"`, ...). */
  readonly pointee?: string;
  /**
   * For pointers to `count` packed elements (batch keys and values): the
   * bound buffer holds exactly the `count` the call passes, and an `"out"`
   * pointee is written for the `count` the kernel writes back.
   */
  readonly counted?: boolean;
  /**
   * For pointers to text the kernel writes (a verifier log): the u32 field
   * that says how many bytes it wrote, and that it writes them on failure too.
   */
  readonly extent?: string;
  /** For fds: whether 0 means "none" (inner_map_fd, btf_fd, path_fd). */
  readonly optional?: boolean;
  /** For pointers: the field's index among its command's pointer fields. */
  readonly slot?: number;
  /**
   * For u32 fields holding an object id: which kind (ids differ from run to
   * run, so transcripts rename them). On a pointer field inside a struct
   * (`bpf_prog_info.map_ids`): the region it leads to is an array of such ids.
   */
  readonly id?: IdKind;
  /**
   * For scalars the kernel writes that differ from run to run whatever the
   * code does (a test run's `duration`, a program's `load_time`): a
   * transcript records them as 0, so that verify compares what is stable.
   */
  readonly varies?: boolean;
}

/** One `bpf()` command and its attr layout. */
export interface Command<F extends string = string> {
  /** The kernel's name, e.g. `"BPF_MAP_LOOKUP_BATCH"`. */
  readonly name: string;
  /** The `cmd` argument of `bpf()`. */
  readonly number: number;
  /** The attr size passed to `bpf()`: the end of the command's last field. */
  readonly size: number;
  /** What a non-negative return value is: a new file descriptor, or just 0. */
  readonly result: "fd" | "zero";
  /** Fields by name. */
  readonly fields: { readonly [K in F]: Field };
  /** Fields in offset order. */
  readonly fieldList: readonly Field[];
  /**
   * Batch commands only (`BPF_MAP_*_BATCH`): `count`, the number of elements
   * the call asks for, which the kernel writes back as the number it
   * processed, failures included.
   */
  readonly batch?: { readonly count: Field };
  /**
   * A command the kernel reads in several shapes (`BPF_LINK_CREATE`, whose
   * attr ends in a union): which shape this entry is (`"perf_event"`,
   * `"tcx"`, `"iter"`), each with its own fields and size. Absent for the
   * plain shape. Transcripts and tables look commands up by
   * {@linkcode commandKey}.
   */
  readonly variant?: string;
}

/**
 * The name a transcript and the tables give a command: its kernel name, and
 * its variant after a colon (`BPF_LINK_CREATE:tcx`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_LINK_CREATE, BPF_LINK_CREATE_TCX, commandKey } from "./commands.ts";
 * assert.equal(commandKey(BPF_LINK_CREATE), "BPF_LINK_CREATE");
 * assert.equal(commandKey(BPF_LINK_CREATE_TCX), "BPF_LINK_CREATE:tcx");
 * ```
 */
export function commandKey(command: Pick<Command, "name" | "variant">): string {
  return command.variant === undefined ? command.name : `${command.name}:${command.variant}`;
}

/** The kinds of kernel object ids (each kind has its own id space). */
export type IdKind = "map" | "btf" | "prog" | "link";

/** A field as a command's table writes it: the name is its key, the slot is counted. */
export type FieldShape = Omit<Field, "name" | "slot">;

const u32 = (offset: number, direction: Direction = "in"): FieldShape => ({
  offset,
  size: 4,
  kind: "u32",
  direction,
});
const id = (
  offset: number,
  kind: IdKind,
  direction: Direction = "in",
): FieldShape => ({
  ...u32(offset, direction),
  id: kind,
});
const u64 = (offset: number): FieldShape => ({ offset, size: 8, kind: "u64", direction: "in" });
/** A scalar the kernel writes that differs from run to run (see `Field.varies`). */
const varying = (shape: FieldShape): FieldShape => ({ ...shape, varies: true });
const fd = (offset: number, optional = false): FieldShape => ({
  offset,
  size: 4,
  kind: "fd",
  direction: "in",
  optional,
});
const pointer = (
  offset: number,
  direction: Direction,
  pointee: string,
  counted = false,
): FieldShape => ({
  offset,
  size: 8,
  kind: "pointer",
  direction,
  pointee,
  ...(counted ? { counted } : {}),
});
const chars = (offset: number, size: number): FieldShape => ({
  offset,
  size,
  kind: "chars",
  direction: "in",
});

/**
 * A struct that a pointer field leads to and that holds pointers or ids of
 * its own (`struct bpf_map_info`, `struct bpf_btf_info`): the recorder
 * follows its pointers, leaves their addresses out, and renames its ids.
 */
export interface Layout<F extends string = string> {
  /** The C struct's name. */
  readonly name: string;
  /** `sizeof` the struct. */
  readonly size: number;
  readonly fields: { readonly [K in F]: Field };
  readonly fieldList: readonly Field[];
}

function defineLayout<F extends string>(
  name: string,
  size: number,
  shapes: { [K in F]: FieldShape },
): Layout<F> {
  const { fields, fieldList, size: end } = defineFields(shapes);
  return Object.freeze({ name, size: Math.max(size, end), fields, fieldList });
}

/**
 * A command (or a struct packed like one, such as `perf_event_attr`) from its
 * fields' shapes: each field named by its key, pointers numbered in key
 * order, the size the end of the last field, everything frozen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineCommand } from "./commands.ts";
 *
 * const freeze = defineCommand("BPF_MAP_FREEZE", 22, "zero", {
 *   map_fd: { offset: 0, size: 4, kind: "fd", direction: "in" },
 * });
 * assert.equal(freeze.size, 4);
 * assert.equal(freeze.fields.map_fd.name, "map_fd");
 * assert.ok(Object.isFrozen(freeze.fields.map_fd));
 * ```
 */
export function defineCommand<F extends string>(
  name: string,
  number: number,
  result: "fd" | "zero",
  shapes: { [K in F]: FieldShape },
  count?: NoInfer<F>,
): Command<F> {
  const { fields, fieldList, size } = defineFields(shapes);
  const batch = count === undefined ? {} : { batch: Object.freeze({ count: fields[count] }) };
  return Object.freeze({ name, number, size, result, fields, fieldList, ...batch });
}

function defineFields<F extends string>(shapes: { [K in F]: FieldShape }) {
  const fields = {} as { [K in F]: Field };
  let size = 0;
  let slot = 0;
  for (const key of Object.keys(shapes) as F[]) {
    const shape: FieldShape = shapes[key];
    const field: Field = Object.freeze({
      name: key,
      ...shape,
      ...(shape.kind === "pointer" ? { slot: slot++ } : {}),
    });
    fields[key] = field;
    size = Math.max(size, field.offset + field.size);
  }
  const fieldList = Object.freeze(
    Object.values<Field>(fields).sort((a, b) => a.offset - b.offset),
  );
  return { fields: Object.freeze(fields), fieldList, size };
}

/** `BPF_MAP_CREATE` (0): 80 bytes, up to `map_token_fd`. Returns the map's fd. */
export const BPF_MAP_CREATE = defineCommand("BPF_MAP_CREATE", 0, "fd", {
  map_type: u32(0),
  key_size: u32(4),
  value_size: u32(8),
  max_entries: u32(12),
  map_flags: u32(16),
  inner_map_fd: fd(20, true),
  numa_node: u32(24),
  map_name: chars(28, 16),
  map_ifindex: u32(44),
  btf_fd: fd(48, true),
  btf_key_type_id: u32(52),
  btf_value_type_id: u32(56),
  btf_vmlinux_value_type_id: u32(60),
  map_extra: u64(64),
  value_type_btf_obj_fd: fd(72, true),
  map_token_fd: fd(76, true),
});

function elementCommand(name: string, number: number, key: Direction, value: Direction) {
  return defineCommand(name, number, "zero", {
    map_fd: fd(0),
    key: pointer(8, key, "key"),
    value: pointer(16, value, name === "BPF_MAP_GET_NEXT_KEY" ? "next_key" : "value"),
    flags: u64(24),
  });
}

/**
 * `BPF_MAP_LOOKUP_ELEM` (1): 32 bytes. The kernel writes the value, except on
 * a bloom filter, where it reads the value to test: that call binds it with
 * direction `"in"` (see `Attr.setPointer`).
 */
export const BPF_MAP_LOOKUP_ELEM = elementCommand("BPF_MAP_LOOKUP_ELEM", 1, "in", "out");
/** `BPF_MAP_UPDATE_ELEM` (2): 32 bytes. */
export const BPF_MAP_UPDATE_ELEM = elementCommand("BPF_MAP_UPDATE_ELEM", 2, "in", "in");
/** `BPF_MAP_DELETE_ELEM` (3): 32 bytes; `value` and `flags` unused. */
export const BPF_MAP_DELETE_ELEM = elementCommand("BPF_MAP_DELETE_ELEM", 3, "in", "in");
/** `BPF_MAP_GET_NEXT_KEY` (4): 32 bytes; the value slot is `next_key`. */
export const BPF_MAP_GET_NEXT_KEY = elementCommand("BPF_MAP_GET_NEXT_KEY", 4, "in", "out");
/** `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (21): 32 bytes. */
export const BPF_MAP_LOOKUP_AND_DELETE_ELEM = elementCommand(
  "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
  21,
  "in",
  "out",
);

function objectPathCommand(name: string, number: number, result: "fd" | "zero") {
  return defineCommand(name, number, result, {
    pathname: pointer(0, "in", "path"),
    bpf_fd: fd(8, true),
    file_flags: u32(12),
    path_fd: fd(16, true),
  });
}

/** `BPF_OBJ_PIN` (6): 20 bytes. */
export const BPF_OBJ_PIN = objectPathCommand("BPF_OBJ_PIN", 6, "zero");
/** `BPF_OBJ_GET` (7): 20 bytes. Returns the pinned object's fd. */
export const BPF_OBJ_GET = objectPathCommand("BPF_OBJ_GET", 7, "fd");

/** `BPF_MAP_GET_NEXT_ID` (12): 12 bytes; the kernel writes `next_id`. */
export const BPF_MAP_GET_NEXT_ID = defineCommand("BPF_MAP_GET_NEXT_ID", 12, "zero", {
  start_id: id(0, "map"),
  next_id: id(4, "map", "out"),
  open_flags: u32(8),
});

/** `BPF_MAP_GET_FD_BY_ID` (14): 12 bytes. Returns a new fd for the map. */
export const BPF_MAP_GET_FD_BY_ID = defineCommand("BPF_MAP_GET_FD_BY_ID", 14, "fd", {
  map_id: id(0, "map"),
  next_id: u32(4),
  open_flags: u32(8),
});

/**
 * `BPF_OBJ_GET_INFO_BY_FD` (15): 16 bytes; the kernel writes back `info_len`
 * and the info, a {@linkcode BPF_MAP_INFO}, {@linkcode BPF_PROG_INFO} or {@linkcode BPF_BTF_INFO} (the
 * call binds `info` with its layout).
 */
export const BPF_OBJ_GET_INFO_BY_FD = defineCommand("BPF_OBJ_GET_INFO_BY_FD", 15, "zero", {
  bpf_fd: fd(0),
  info_len: u32(4, "inout"),
  info: pointer(8, "out", "info"),
});

/** `struct bpf_map_info`: 104 bytes; `hash` is a pointer bpfmap leaves NULL. */
export const BPF_MAP_INFO = defineLayout("bpf_map_info", 104, {
  type: u32(0),
  id: id(4, "map"),
  key_size: u32(8),
  value_size: u32(12),
  max_entries: u32(16),
  map_flags: u32(20),
  name: chars(24, 16),
  ifindex: u32(40),
  btf_vmlinux_value_type_id: u32(44),
  netns_dev: u64(48),
  netns_ino: u64(56),
  btf_id: id(64, "btf"),
  btf_key_type_id: u32(68),
  btf_value_type_id: u32(72),
  btf_vmlinux_id: id(76, "btf"),
  map_extra: u64(80),
  hash: pointer(88, "out", "hash"),
  hash_size: u32(96),
});

/**
 * `struct bpf_btf_info`: 32 bytes. The kernel reads `btf`/`btf_size` and
 * `name`/`name_len` (where to copy the blob and the name, and how much
 * room there is) and writes the sizes it needed back.
 */
export const BPF_BTF_INFO = defineLayout("bpf_btf_info", 32, {
  btf: pointer(0, "out", "btf"),
  btf_size: u32(8, "inout"),
  id: id(12, "btf", "out"),
  name: pointer(16, "out", "name"),
  name_len: u32(24, "inout"),
  kernel_btf: u32(28, "out"),
});

/**
 * `BPF_BTF_LOAD` (18): 32 bytes, up to `btf_log_true_size`. Returns the BTF
 * object's fd. The kernel writes its verifier log into `btf_log_buf` and the
 * log size it needed into `btf_log_true_size`.
 */
export const BPF_BTF_LOAD = defineCommand("BPF_BTF_LOAD", 18, "fd", {
  btf: pointer(0, "in", "btf"),
  btf_log_buf: { ...pointer(8, "out", "log"), extent: "btf_log_true_size" },
  btf_size: u32(16),
  btf_log_size: u32(20),
  btf_log_level: u32(24),
  btf_log_true_size: u32(28, "out"),
});

/** `BPF_BTF_GET_FD_BY_ID` (19): 12 bytes. Returns a new fd for the BTF object. */
export const BPF_BTF_GET_FD_BY_ID = defineCommand("BPF_BTF_GET_FD_BY_ID", 19, "fd", {
  btf_id: id(0, "btf"),
  next_id: u32(4),
  open_flags: u32(8),
});

/** `BPF_BTF_GET_NEXT_ID` (23): 12 bytes; the kernel writes `next_id`. */
export const BPF_BTF_GET_NEXT_ID = defineCommand("BPF_BTF_GET_NEXT_ID", 23, "zero", {
  start_id: id(0, "btf"),
  next_id: id(4, "btf", "out"),
  open_flags: u32(8),
});

/**
 * `BPF_PROG_LOAD` (5): 148 bytes, up to `prog_token_fd`. Returns the
 * program's fd. The kernel reads `insns` (`insn_cnt` 8-byte instructions)
 * and the `license` string, writes its verifier log into `log_buf` (on
 * failure too) and the size the log needed into `log_true_size` (Linux 6.4).
 * `attach_prog_fd` shares its slot with `attach_btf_obj_fd` (a module's BTF).
 */
export const BPF_PROG_LOAD = defineCommand("BPF_PROG_LOAD", 5, "fd", {
  prog_type: u32(0),
  insn_cnt: u32(4),
  insns: pointer(8, "in", "insns"),
  license: pointer(16, "in", "license"),
  log_level: u32(24),
  log_size: u32(28),
  log_buf: { ...pointer(32, "out", "log"), extent: "log_true_size" },
  kern_version: u32(40),
  prog_flags: u32(44),
  prog_name: chars(48, 16),
  prog_ifindex: u32(64),
  expected_attach_type: u32(68),
  prog_btf_fd: fd(72, true),
  func_info_rec_size: u32(76),
  func_info: pointer(80, "in", "func_info"),
  func_info_cnt: u32(88),
  line_info_rec_size: u32(92),
  line_info: pointer(96, "in", "line_info"),
  line_info_cnt: u32(104),
  attach_btf_id: u32(108),
  attach_prog_fd: fd(112, true),
  core_relo_cnt: u32(116),
  fd_array: pointer(120, "in", "fds"),
  core_relos: pointer(128, "in", "core_relos"),
  core_relo_rec_size: u32(136),
  log_true_size: u32(140, "out"),
  prog_token_fd: fd(144, true),
});

/** The fields of `BPF_PROG_TEST_RUN`, shared by its shapes. */
const TEST_RUN_FIELDS = {
  prog_fd: fd(0),
  retval: u32(4, "out"),
  data_size_in: u32(8),
  data_size_out: u32(12, "inout"),
  data_in: pointer(16, "in", "data"),
  data_out: { ...pointer(24, "out", "data"), extent: "data_size_out" },
  repeat: u32(32),
  duration: varying(u32(36, "out")),
  ctx_size_in: u32(40),
  ctx_size_out: u32(44, "inout"),
  ctx_in: pointer(48, "in", "ctx"),
  ctx_out: { ...pointer(56, "out", "ctx"), extent: "ctx_size_out" },
  flags: u32(64),
  cpu: u32(68),
  batch_size: u32(72),
};

/**
 * `BPF_PROG_TEST_RUN` (10): 76 bytes, up to `batch_size`. The kernel runs
 * the program `repeat` times on `data_in` (and `ctx_in`), and writes back
 * the return value, the average `duration` in ns, and the packet (context)
 * as the program left it: `data_size_out` bytes, of which at most the room
 * the caller gave are copied (ENOSPC then, with the rest written all the same).
 */
export const BPF_PROG_TEST_RUN = defineCommand("BPF_PROG_TEST_RUN", 10, "zero", TEST_RUN_FIELDS);

/**
 * `BPF_PROG_TEST_RUN` of a `syscall` program: the kernel refuses `ctx_out`
 * and writes the context the program left back into `ctx_in` itself, so
 * that region is read back (and recorded) after the call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_PROG_TEST_RUN_SYSCALL, commandKey } from "./commands.ts";
 * assert.equal(commandKey(BPF_PROG_TEST_RUN_SYSCALL), "BPF_PROG_TEST_RUN:syscall");
 * assert.equal(BPF_PROG_TEST_RUN_SYSCALL.fields.ctx_in.direction, "inout");
 * ```
 */
export const BPF_PROG_TEST_RUN_SYSCALL = Object.freeze({
  ...defineCommand("BPF_PROG_TEST_RUN", 10, "zero", {
    ...TEST_RUN_FIELDS,
    ctx_in: pointer(48, "inout", "ctx"),
  }),
  variant: "syscall",
});

/** `BPF_PROG_GET_NEXT_ID` (11): 12 bytes; the kernel writes `next_id`. */
export const BPF_PROG_GET_NEXT_ID = defineCommand("BPF_PROG_GET_NEXT_ID", 11, "zero", {
  start_id: id(0, "prog"),
  next_id: id(4, "prog", "out"),
  open_flags: u32(8),
});

/** `BPF_PROG_GET_FD_BY_ID` (13): 12 bytes. Returns a new fd for the program. */
export const BPF_PROG_GET_FD_BY_ID = defineCommand("BPF_PROG_GET_FD_BY_ID", 13, "fd", {
  prog_id: id(0, "prog"),
  next_id: u32(4),
  open_flags: u32(8),
});

/**
 * `struct bpf_prog_info`: 232 bytes. bpfmap leaves the instruction, symbol,
 * func and line info pointers NULL (the kernel then writes only their
 * counts) and binds `map_ids` for a second call sized by `nr_map_ids`.
 * `gpl_compatible` is bit 0 of the u32 after `ifindex` (a bitfield: it has
 * no offset of its own to check). `load_time` and the run statistics differ
 * from run to run.
 */
export const BPF_PROG_INFO = defineLayout("bpf_prog_info", 232, {
  type: u32(0),
  id: id(4, "prog"),
  tag: chars(8, 8),
  jited_prog_len: u32(16),
  xlated_prog_len: u32(20),
  jited_prog_insns: pointer(24, "out", "jited_insns"),
  xlated_prog_insns: pointer(32, "out", "xlated_insns"),
  load_time: varying(u64(40)),
  created_by_uid: u32(48),
  nr_map_ids: u32(52),
  map_ids: { ...pointer(56, "out", "map_ids"), id: "map" },
  name: chars(64, 16),
  ifindex: u32(80),
  netns_dev: u64(88),
  netns_ino: u64(96),
  nr_jited_ksyms: u32(104),
  nr_jited_func_lens: u32(108),
  jited_ksyms: pointer(112, "out", "jited_ksyms"),
  jited_func_lens: pointer(120, "out", "jited_func_lens"),
  btf_id: id(128, "btf"),
  func_info_rec_size: u32(132),
  func_info: pointer(136, "out", "func_info"),
  nr_func_info: u32(144),
  nr_line_info: u32(148),
  line_info: pointer(152, "out", "line_info"),
  jited_line_info: pointer(160, "out", "jited_line_info"),
  nr_jited_line_info: u32(168),
  line_info_rec_size: u32(172),
  jited_line_info_rec_size: u32(176),
  nr_prog_tags: u32(180),
  prog_tags: pointer(184, "out", "prog_tags"),
  run_time_ns: varying(u64(192)),
  run_cnt: varying(u64(200)),
  recursion_misses: varying(u64(208)),
  verified_insns: u32(216),
  attach_btf_obj_id: id(220, "btf"),
  attach_btf_id: u32(224),
});

/**
 * `BPF_RAW_TRACEPOINT_OPEN` (17): 12 bytes. Attaches raw tracepoint program
 * `prog_fd` to the tracepoint `name` (a NUL-terminated C string, e.g.
 * `"sys_enter"`). Returns the link's fd.
 */
export const BPF_RAW_TRACEPOINT_OPEN = defineCommand("BPF_RAW_TRACEPOINT_OPEN", 17, "fd", {
  name: pointer(0, "in", "name"),
  prog_fd: fd(8),
});

/**
 * `BPF_LINK_CREATE` (28): 20 bytes, up to the union's first u32. Attaches
 * `prog_fd` as `attach_type` to its target, with `flags`:
 * - `target_ifindex` is the kernel's `target_fd`/`target_ifindex` union: a
 *   device's ifindex (XDP, tcx), a cgroup directory's fd (cgroup links), a
 *   perf event's fd (`perf_event` links), 0 (tracing, lsm and iter links,
 *   whose target the program's `attach_btf_id` names). A transcript writes
 *   it as an fd: a perf event's handle, and `"foreign"` for what bpfmap did
 *   not get from the kernel (a cgroup's fd, an ifindex), so that a replay
 *   does not depend on a number only the recording machine had.
 * - `target_btf_id` is the union's first u32: a tracing link's
 *   `target_btf_id` (0: the program's own), tcx's `relative_fd`/`relative_id`
 *   (0 with `BPF_F_BEFORE`/`BPF_F_AFTER`: first or last).
 *
 * Returns the link's fd.
 */
export const BPF_LINK_CREATE = defineCommand("BPF_LINK_CREATE", 28, "fd", {
  prog_fd: fd(0),
  target_ifindex: fd(4, true),
  attach_type: u32(8),
  flags: u32(12),
  target_btf_id: u32(16),
});

/** The fields every shape of `BPF_LINK_CREATE` starts with. */
const LINK_CREATE_HEAD = {
  prog_fd: fd(0),
  target_ifindex: fd(4, true),
  attach_type: u32(8),
  flags: u32(12),
};

/** `BPF_LINK_CREATE` in one of its wider shapes: the plain head, then the union's member. */
function linkCreateShape<F extends string>(variant: string, member: { [K in F]: FieldShape }) {
  const command = defineCommand("BPF_LINK_CREATE", 28, "fd", { ...LINK_CREATE_HEAD, ...member });
  return Object.freeze({ ...command, variant });
}

/**
 * `BPF_LINK_CREATE` of a `perf_event` link with a BPF cookie: 24 bytes, up to
 * `perf_event.bpf_cookie` (u64 at 16), which `bpf_get_attach_cookie()`
 * returns to the program.
 */
export const BPF_LINK_CREATE_PERF_EVENT = linkCreateShape("perf_event", {
  bpf_cookie: u64(16),
});

/**
 * `BPF_LINK_CREATE` of a tcx link placed by another program or link: 32
 * bytes, `tcx.relative_fd` (u32 at 16: a program's fd, or a link's with
 * `BPF_F_LINK`; 0 with `BPF_F_BEFORE`/`BPF_F_AFTER` alone: first or last)
 * and `tcx.expected_revision` (u64 at 24: refused with ESTALE unless the
 * device's tcx programs are at that revision; 0: any).
 */
export const BPF_LINK_CREATE_TCX = linkCreateShape("tcx", {
  relative_fd: fd(16, true),
  expected_revision: u64(24),
});

/**
 * `BPF_LINK_CREATE` of an iterator given what to iterate: 28 bytes,
 * `iter_info` (a pointer at 16 to `union bpf_iter_link_info`, whose first
 * u32 is `map.map_fd` for `iter/bpf_map_elem`) and `iter_info_len` (u32 at
 * 24: the bytes the kernel reads there; bpfmap passes the 4 of `map_fd`, an
 * fd the transcript writes as a handle).
 */
export const BPF_LINK_CREATE_ITER = linkCreateShape("iter", {
  iter_info: pointer(16, "in", "fds"),
  iter_info_len: u32(24),
});

/**
 * `BPF_LINK_UPDATE` (29): 16 bytes. Puts `new_prog_fd` in the place of the
 * link's program; with `BPF_F_REPLACE` in `flags`, only if that is `old_prog_fd`.
 */
export const BPF_LINK_UPDATE = defineCommand("BPF_LINK_UPDATE", 29, "zero", {
  link_fd: fd(0),
  new_prog_fd: fd(4),
  flags: u32(8),
  old_prog_fd: fd(12, true),
});

/** `BPF_LINK_GET_FD_BY_ID` (30): 12 bytes. Returns a new fd for the link. */
export const BPF_LINK_GET_FD_BY_ID = defineCommand("BPF_LINK_GET_FD_BY_ID", 30, "fd", {
  link_id: id(0, "link"),
  next_id: u32(4),
  open_flags: u32(8),
});

/** `BPF_LINK_GET_NEXT_ID` (31): 12 bytes; the kernel writes `next_id`. */
export const BPF_LINK_GET_NEXT_ID = defineCommand("BPF_LINK_GET_NEXT_ID", 31, "zero", {
  start_id: id(0, "link"),
  next_id: id(4, "link", "out"),
  open_flags: u32(8),
});

/**
 * `BPF_LINK_DETACH` (34): 4 bytes. Detaches the link's program while its fd
 * stays open (link types with a `detach` operation only: XDP, tcx, cgroup...;
 * a raw tracepoint link answers EOPNOTSUPP).
 */
export const BPF_LINK_DETACH = defineCommand("BPF_LINK_DETACH", 34, "zero", { link_fd: fd(0) });

/**
 * The head of `struct bpf_link_info` (16 bytes: `type`, `id`, `prog_id` and
 * the union's alignment): what a link's kind is, read before its union,
 * whose layout depends on it (and may hold what differs from run to run).
 */
export const BPF_LINK_INFO_HEAD = defineLayout("bpf_link_info", 16, {
  type: u32(0),
  id: id(4, "link"),
  prog_id: id(8, "prog"),
});

/**
 * A 64-byte `struct bpf_link_info` layout: its head (`type`, `id`,
 * `prog_id`), then the fields of one link type's union member.
 */
function linkInfoLayout<F extends string>(
  union: { [K in F]: FieldShape },
): Layout<"type" | "id" | "prog_id" | F> {
  return defineLayout(
    "bpf_link_info",
    64,
    {
      type: u32(0),
      id: id(4, "link"),
      prog_id: id(8, "prog"),
      ...union,
    } as { [K in "type" | "id" | "prog_id" | F]: FieldShape },
  );
}

/**
 * `struct bpf_link_info`: 64 bytes on Linux 6.18 (48 in older headers; the
 * kernel copies what both know). `ifindex` is the XDP member of the union
 * after `prog_id` (`xdp.ifindex`); a raw tracepoint's name is read with
 * {@linkcode BPF_LINK_INFO_RAW_TRACEPOINT}, whose pointer shares its bytes,
 * and the union of other link types with their own layouts (`_TCX`, ...).
 */
export const BPF_LINK_INFO = linkInfoLayout({
  ifindex: u32(16),
});

/**
 * `struct bpf_link_info` of a raw tracepoint link: the union's
 * `raw_tracepoint.tp_name` (where the kernel copies the name) and
 * `tp_name_len` (the room there; the kernel writes the length it needed,
 * NUL included).
 */
export const BPF_LINK_INFO_RAW_TRACEPOINT = linkInfoLayout({
  tp_name: pointer(16, "out", "name"),
  tp_name_len: u32(24, "inout"),
});

/**
 * `struct bpf_link_info` of a tcx link: the union's `tcx.ifindex` and
 * `tcx.attach_type` (`tcx_ingress`, `tcx_egress`); the ifindex is 0 once the
 * device is gone or the link detached. Read from the bytes a
 * {@linkcode BPF_LINK_INFO} call fills.
 */
export const BPF_LINK_INFO_TCX = linkInfoLayout({
  ifindex: u32(16),
  attach_type: u32(20),
});

/**
 * `struct bpf_link_info` of a cgroup link: the union's `cgroup.cgroup_id`
 * (the cgroup directory's inode number; 0 once detached; a transcript
 * writes 0, as a new cgroup has a new one each run) and `cgroup.attach_type`.
 */
export const BPF_LINK_INFO_CGROUP = linkInfoLayout({
  cgroup_id: varying(u64(16)),
  attach_type: u32(24),
});

/**
 * `struct bpf_link_info` of a tracing link (fentry, fexit, fmod_ret, lsm,
 * tp_btf): the union's `tracing.attach_type`, `target_obj_id` (the BTF
 * object of the target, vmlinux's or a module's) and `target_btf_id`.
 */
export const BPF_LINK_INFO_TRACING = linkInfoLayout({
  attach_type: u32(16),
  target_obj_id: id(20, "btf"),
  target_btf_id: u32(24),
});

/**
 * `struct bpf_link_info` of a `perf_event` link: the union's
 * `perf_event.type` (`enum bpf_perf_event_type`: 1 uprobe, 2 uretprobe,
 * 3 kprobe, 4 kretprobe, 5 tracepoint, 6 event).
 */
export const BPF_LINK_INFO_PERF_EVENT = linkInfoLayout({
  perf_event_type: u32(16),
});

/**
 * `struct bpf_link_info` of an iterator link: the union's `iter.target_name`
 * (`name` here; where the kernel copies the iterator's name, `"bpf_map"`, `"task"`...),
 * `target_name_len` (the room there; the kernel writes the length it needed,
 * NUL included, and wants both 0 or both set) and `map.map_id` (the map an
 * iterator over a map's elements walks; 0 for other iterators).
 */
export const BPF_LINK_INFO_ITER = linkInfoLayout({
  target_name: pointer(16, "out", "name"),
  target_name_len: u32(24, "inout"),
  map_id: id(28, "map"),
});

/**
 * `struct bpf_link_info` of a network namespace link (flow dissector,
 * sk_lookup): the union's `netns.netns_ino` (the namespace's inode number,
 * as `/proc/PID/ns/net` shows it; 0 once the namespace is gone; a transcript
 * writes 0, as a new namespace has a new one each run) and `attach_type`.
 */
export const BPF_LINK_INFO_NETNS = linkInfoLayout({
  netns_ino: varying(u32(16)),
  attach_type: u32(20),
});

/** `BPF_MAP_FREEZE` (22): 4 bytes. */
export const BPF_MAP_FREEZE = defineCommand("BPF_MAP_FREEZE", 22, "zero", { map_fd: fd(0) });

function batchCommand(name: string, number: number, keys: Direction, values: Direction) {
  return defineCommand(name, number, "zero", {
    in_batch: pointer(0, "in", "cursor"),
    out_batch: pointer(8, "out", "cursor"),
    keys: pointer(16, keys, "keys", true),
    values: pointer(24, values, "values", true),
    count: u32(32, "inout"),
    map_fd: fd(36),
    elem_flags: u64(40),
    flags: u64(48),
  }, "count");
}

/** `BPF_MAP_LOOKUP_BATCH` (24): 56 bytes; the kernel writes back `count`, even on failure. */
export const BPF_MAP_LOOKUP_BATCH = batchCommand("BPF_MAP_LOOKUP_BATCH", 24, "out", "out");
/** `BPF_MAP_LOOKUP_AND_DELETE_BATCH` (25): 56 bytes. */
export const BPF_MAP_LOOKUP_AND_DELETE_BATCH = batchCommand(
  "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
  25,
  "out",
  "out",
);
/** `BPF_MAP_UPDATE_BATCH` (26): 56 bytes; cursors unused. */
export const BPF_MAP_UPDATE_BATCH = batchCommand("BPF_MAP_UPDATE_BATCH", 26, "in", "in");
/** `BPF_MAP_DELETE_BATCH` (27): 56 bytes; cursors and values unused. */
export const BPF_MAP_DELETE_BATCH = batchCommand("BPF_MAP_DELETE_BATCH", 27, "in", "in");

/**
 * The field a batch command's count is in, which the kernel writes back; `undefined` for
 * commands that are not batch commands.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_MAP_DELETE_BATCH, BPF_MAP_LOOKUP_ELEM, countField } from "./commands.ts";
 * assert.equal(countField(BPF_MAP_DELETE_BATCH)?.offset, 32);
 * assert.equal(countField(BPF_MAP_LOOKUP_ELEM), undefined); // its "flags" is no count
 * ```
 */
export function countField(command: Command): Field | undefined {
  return command.batch?.count;
}

/**
 * Whether the kernel writes output region `field` of `command` even when the
 * call fails: batch calls write keys, values and the cursor of what they did
 * (ENOENT ends every walk), and a verifier log is written whatever the outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_BTF_LOAD, BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_ELEM, writesOnFailure } from "./commands.ts";
 * assert.equal(writesOnFailure(BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_BATCH.fields.keys), true);
 * assert.equal(writesOnFailure(BPF_BTF_LOAD, BPF_BTF_LOAD.fields.btf_log_buf), true);
 * assert.equal(writesOnFailure(BPF_MAP_LOOKUP_ELEM, BPF_MAP_LOOKUP_ELEM.fields.value), false);
 * ```
 */
export function writesOnFailure(command: Command, field: Field): boolean {
  return countField(command) !== undefined || field.extent !== undefined;
}

/** What a call's scalars say about how much of an output region the kernel wrote. */
export interface CallOutcome {
  /** The errno of a failed call; 0 when it succeeded. */
  readonly errno: number;
  /** A batch call's count: what was asked (`in`) and what the kernel wrote back (`out`). */
  readonly count?: { readonly in: number; readonly out: number } | undefined;
  /** What the kernel wrote into the region's `extent` field (a log's true size). */
  readonly extent?: number | undefined;
}

/**
 * How many bytes of output region `field` (of `size` bytes) the kernel wrote:
 * for a log, its extent; for counted batch buffers, the elements of the count
 * it wrote back, or none when a failure other than ENOENT left the count as
 * asked (it failed before touching an element); otherwise the whole region.
 * The recorder, the transcript checks and the player all read this.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_MAP_LOOKUP_BATCH, bytesWritten } from "./commands.ts";
 * const keys = BPF_MAP_LOOKUP_BATCH.fields.keys; // 4-byte keys, 8 asked
 * assert.equal(bytesWritten(keys, 32, { errno: 0, count: { in: 8, out: 3 } }), 12);
 * assert.equal(bytesWritten(keys, 32, { errno: 2, count: { in: 8, out: 3 } }), 12); // ENOENT: the last batch
 * assert.equal(bytesWritten(keys, 32, { errno: 14, count: { in: 8, out: 8 } }), 0); // EFAULT before any element
 * ```
 */
export function bytesWritten(field: Field, size: number, outcome: CallOutcome): number {
  if (field.extent !== undefined) return Math.min(size, outcome.extent ?? 0);
  const count = outcome.count;
  if (field.counted !== true || count === undefined) return size;
  const untouched = outcome.errno !== 0 && outcome.errno !== ENOENT && count.out === count.in;
  if (count.in === 0 || untouched) return 0;
  return Math.min(count.out, count.in) * (size / count.in);
}

/**
 * A u32 field of a struct `bytes` holds, read through the struct's layout
 * (`BPF_MAP_INFO.fields.type`, ...), little-endian as the kernel writes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_MAP_INFO, readU32, readU64 } from "./commands.ts";
 * const info = new Uint8Array(BPF_MAP_INFO.size);
 * info[BPF_MAP_INFO.fields.value_size.offset] = 12;
 * info[BPF_MAP_INFO.fields.map_extra.offset + 1] = 1;
 * assert.equal(readU32(info, BPF_MAP_INFO.fields.value_size), 12);
 * assert.equal(readU64(info, BPF_MAP_INFO.fields.map_extra), 256n);
 * ```
 */
export function readU32(bytes: Uint8Array, field: Field): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(
    field.offset,
    true,
  );
}

/**
 * A u64 field of a struct, as {@linkcode readU32} reads a u32 one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_MAP_INFO, readU64 } from "./commands.ts";
 * const info = new Uint8Array(BPF_MAP_INFO.size).fill(0xff);
 * assert.equal(readU64(info, BPF_MAP_INFO.fields.netns_ino), 2n ** 64n - 1n);
 * ```
 */
export function readU64(bytes: Uint8Array, field: Field): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(
    field.offset,
    true,
  );
}

/**
 * A NUL-padded char array of a struct (`bpf_prog_info.name`), up to its
 * first NUL, as UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_PROG_INFO, readChars } from "./commands.ts";
 * const info = new Uint8Array(BPF_PROG_INFO.size);
 * info.set(new TextEncoder().encode("pass"), BPF_PROG_INFO.fields.name.offset);
 * assert.equal(readChars(info, BPF_PROG_INFO.fields.name), "pass");
 * ```
 */
export function readChars(bytes: Uint8Array, field: Field): string {
  const chars = bytes.subarray(field.offset, field.offset + field.size);
  const end = chars.indexOf(0);
  return charsDecoder.decode(end === -1 ? chars : chars.subarray(0, end));
}

const charsDecoder = new TextDecoder();

/**
 * Whether `bytes` (a struct the kernel filled, maybe shorter than this
 * layout's) reach to the end of `field`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_MAP_INFO, holdsField } from "./commands.ts";
 * assert.equal(holdsField(new Uint8Array(16), BPF_MAP_INFO.fields.value_size), true);
 * assert.equal(holdsField(new Uint8Array(12), BPF_MAP_INFO.fields.value_size), false);
 * ```
 */
export function holdsField(bytes: Uint8Array, field: Field): boolean {
  return bytes.byteLength >= field.offset + field.size;
}

/** The attr of every element command. */
export type ElementCommand = typeof BPF_MAP_LOOKUP_ELEM;
/** The attr of every batch command. */
export type BatchCommand = typeof BPF_MAP_LOOKUP_BATCH;

/**
 * Every command bpfmap issues, by number: what a transcript reader or a
 * pretty-printer looks a recorded call up in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMMANDS } from "./commands.ts";
 *
 * // Each command's name, number and attr size, as its constant's doc says.
 * assert.deepEqual([...COMMANDS.values()].map((c) => `${c.name} ${c.number} ${c.size}`), [
 *   "BPF_MAP_CREATE 0 80",
 *   "BPF_MAP_LOOKUP_ELEM 1 32",
 *   "BPF_MAP_UPDATE_ELEM 2 32",
 *   "BPF_MAP_DELETE_ELEM 3 32",
 *   "BPF_MAP_GET_NEXT_KEY 4 32",
 *   "BPF_PROG_LOAD 5 148",
 *   "BPF_OBJ_PIN 6 20",
 *   "BPF_OBJ_GET 7 20",
 *   "BPF_PROG_TEST_RUN 10 76",
 *   "BPF_PROG_GET_NEXT_ID 11 12",
 *   "BPF_MAP_GET_NEXT_ID 12 12",
 *   "BPF_PROG_GET_FD_BY_ID 13 12",
 *   "BPF_MAP_GET_FD_BY_ID 14 12",
 *   "BPF_OBJ_GET_INFO_BY_FD 15 16",
 *   "BPF_BTF_LOAD 18 32",
 *   "BPF_RAW_TRACEPOINT_OPEN 17 12",
 *   "BPF_BTF_GET_FD_BY_ID 19 12",
 *   "BPF_MAP_LOOKUP_AND_DELETE_ELEM 21 32",
 *   "BPF_MAP_FREEZE 22 4",
 *   "BPF_BTF_GET_NEXT_ID 23 12",
 *   "BPF_MAP_LOOKUP_BATCH 24 56",
 *   "BPF_MAP_LOOKUP_AND_DELETE_BATCH 25 56",
 *   "BPF_MAP_UPDATE_BATCH 26 56",
 *   "BPF_MAP_DELETE_BATCH 27 56",
 *   "BPF_LINK_CREATE 28 20",
 *   "BPF_LINK_UPDATE 29 16",
 *   "BPF_LINK_GET_FD_BY_ID 30 12",
 *   "BPF_LINK_GET_NEXT_ID 31 12",
 *   "BPF_LINK_DETACH 34 4",
 * ]);
 * assert.equal(COMMANDS.get(24)?.fields.count?.offset, 32);
 * ```
 */
export const COMMANDS: ReadonlyMap<number, Command> = new Map<number, Command>(
  [
    BPF_MAP_CREATE,
    BPF_MAP_LOOKUP_ELEM,
    BPF_MAP_UPDATE_ELEM,
    BPF_MAP_DELETE_ELEM,
    BPF_MAP_GET_NEXT_KEY,
    BPF_PROG_LOAD,
    BPF_OBJ_PIN,
    BPF_OBJ_GET,
    BPF_PROG_TEST_RUN,
    BPF_PROG_GET_NEXT_ID,
    BPF_MAP_GET_NEXT_ID,
    BPF_PROG_GET_FD_BY_ID,
    BPF_MAP_GET_FD_BY_ID,
    BPF_OBJ_GET_INFO_BY_FD,
    BPF_BTF_LOAD,
    BPF_RAW_TRACEPOINT_OPEN,
    BPF_BTF_GET_FD_BY_ID,
    BPF_MAP_LOOKUP_AND_DELETE_ELEM,
    BPF_MAP_FREEZE,
    BPF_BTF_GET_NEXT_ID,
    BPF_MAP_LOOKUP_BATCH,
    BPF_MAP_LOOKUP_AND_DELETE_BATCH,
    BPF_MAP_UPDATE_BATCH,
    BPF_MAP_DELETE_BATCH,
    BPF_LINK_CREATE,
    BPF_LINK_UPDATE,
    BPF_LINK_GET_FD_BY_ID,
    BPF_LINK_GET_NEXT_ID,
    BPF_LINK_DETACH,
  ].map((command): [number, Command] => [command.number, command as Command]),
);

/**
 * Every shape of every command, by {@linkcode commandKey}: the plain ones of
 * {@linkcode COMMANDS} and the wider shapes of `BPF_LINK_CREATE`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { COMMANDS_BY_KEY } from "./commands.ts";
 * const shapes = [...COMMANDS_BY_KEY.values()].filter((c) => c.name === "BPF_LINK_CREATE");
 * assert.deepEqual(shapes.map((c) => c.size), [20, 24, 32, 28]);
 * assert.equal(COMMANDS_BY_KEY.get("BPF_LINK_CREATE:iter")?.fields.iter_info?.offset, 16);
 * ```
 */
export const COMMANDS_BY_KEY: ReadonlyMap<string, Command> = new Map<string, Command>(
  [
    ...COMMANDS.values(),
    BPF_LINK_CREATE_PERF_EVENT,
    BPF_LINK_CREATE_TCX,
    BPF_LINK_CREATE_ITER,
    BPF_PROG_TEST_RUN_SYSCALL,
  ].map((command): [string, Command] => [commandKey(command), command as Command]),
);

/**
 * Element flags of update and lookup calls: create or replace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, BpfMap } from "../mod.ts";
 *
 * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
 * const key = new Uint8Array(4);
 * assert.throws(() => map.update(key, new Uint8Array(4), BPF_EXIST), { code: "ENOENT" });
 * map.update(key, new Uint8Array([1, 0, 0, 0]), BPF_NOEXIST);
 * assert.throws(() => map.update(key, new Uint8Array(4), BPF_NOEXIST), { code: "EEXIST" });
 * map.update(key, new Uint8Array([2, 0, 0, 0]), BPF_EXIST);
 * map.update(key, new Uint8Array([3, 0, 0, 0]), BPF_ANY);
 * assert.deepEqual(map.lookup(key), new Uint8Array([3, 0, 0, 0]));
 * ```
 */
export const BPF_ANY = 0;
/**
 * Create a new element only: EEXIST if the key is there. Not allowed in batch calls. See
 * {@linkcode BPF_ANY}'s example.
 */
export const BPF_NOEXIST = 1;
/**
 * Update an existing element only: ENOENT if the key is missing. Not allowed in batch calls. See
 * {@linkcode BPF_ANY}'s example.
 */
export const BPF_EXIST = 2;
/**
 * Take the value's `struct bpf_spin_lock` while copying.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_LOCK, BpfMap, decode, encode, specOf } from "../mod.ts";
 * import { spinLock, struct, u32, u64 } from "../mod.ts";
 *
 * const value = struct({ lock: spinLock, hits: u64 });
 * using map = BpfMap.create(specOf({ type: "array", key: u32, value, maxEntries: 1, btf: true }));
 * const key = encode(u32, 0);
 * map.update(key, encode(value, { hits: 3n }), BPF_F_LOCK);
 * assert.deepEqual(decode(value, map.lookup(key, BPF_F_LOCK)!), { hits: 3n });
 * using plain = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
 * assert.throws(() => plain.lookup(key, BPF_F_LOCK), { code: "EINVAL" }); // no lock to take
 * ```
 */
export const BPF_F_LOCK = 4;

/**
 * `map_flags` / `file_flags` / `open_flags`: read-only access from user space.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_RDONLY, BpfMap } from "../mod.ts";
 *
 * const spec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
 * using map = BpfMap.create({ ...spec, flags: BPF_F_RDONLY });
 * assert.deepEqual(map.lookup(new Uint8Array(4)), new Uint8Array(4));
 * assert.throws(() => map.update(new Uint8Array(4), new Uint8Array(4)), { code: "EPERM" });
 * ```
 */
export const BPF_F_RDONLY = 1 << 3;
/**
 * `map_flags` / `file_flags` / `open_flags`: write-only access from user space.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_WRONLY, BpfMap } from "../mod.ts";
 *
 * const spec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
 * using map = BpfMap.create({ ...spec, flags: BPF_F_WRONLY });
 * map.update(new Uint8Array(4), new Uint8Array(4));
 * assert.throws(() => map.lookup(new Uint8Array(4)), { code: "EPERM" });
 * ```
 */
export const BPF_F_WRONLY = 1 << 4;
/**
 * `map_flags`: elements are allocated on demand, not preallocated (hash maps).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_NO_PREALLOC, BpfMap } from "../mod.ts";
 *
 * const spec = { type: "lpm_trie", keySize: 8, valueSize: 4, maxEntries: 16 } as const;
 * using trie = BpfMap.create({ ...spec, flags: BPF_F_NO_PREALLOC });
 * assert.equal(trie.flags, BPF_F_NO_PREALLOC);
 * assert.throws(() => BpfMap.create(spec), { code: "EINVAL" }); // an LPM trie requires it
 * ```
 */
export const BPF_F_NO_PREALLOC = 1 << 0;
/**
 * `map_flags`: a zero hash seed, so element order is the same on every run (tests only).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_ZERO_SEED, BpfMap } from "../mod.ts";
 *
 * const keys = new Uint8Array(new Uint32Array([5, 6, 7, 8, 9]).buffer);
 * const order = () => {
 *   const spec = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 64 } as const;
 *   using map = BpfMap.create({ ...spec, flags: BPF_F_ZERO_SEED });
 *   map.updateBatch(keys, keys);
 *   return Array.from(map.keys(), (key) => key[0]);
 * };
 * assert.deepEqual(order(), order()); // two maps, one order
 * ```
 */
export const BPF_F_ZERO_SEED = 1 << 6;
/**
 * `map_flags`: BPF programs may only read the map.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_RDONLY_PROG, BpfMap } from "../mod.ts";
 *
 * const spec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
 * using map = BpfMap.create({ ...spec, flags: BPF_F_RDONLY_PROG });
 * map.update(new Uint8Array(4), new Uint8Array([1, 0, 0, 0])); // user space still writes
 * assert.deepEqual(map.lookup(new Uint8Array(4)), new Uint8Array([1, 0, 0, 0]));
 * ```
 */
export const BPF_F_RDONLY_PROG = 1 << 7;
/**
 * `map_flags`: BPF programs may only write the map.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_WRONLY_PROG, BpfMap } from "../mod.ts";
 *
 * const spec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
 * using map = BpfMap.create({ ...spec, flags: BPF_F_WRONLY_PROG });
 * assert.equal(map.info().flags, BPF_F_WRONLY_PROG);
 * assert.deepEqual(map.lookup(new Uint8Array(4)), new Uint8Array(4)); // user space still reads
 * ```
 */
export const BPF_F_WRONLY_PROG = 1 << 8;
/**
 * `map_flags`: user space can `mmap` the map's memory (an array's values;
 * libbpf's global data, `.bss`/`.data`/`.rodata`): see `map.memory()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_F_MMAPABLE, BpfMap } from "../mod.ts";
 *
 * const spec = { type: "array", keySize: 4, valueSize: 8, maxEntries: 2 } as const;
 * using map = BpfMap.create({ ...spec, flags: BPF_F_MMAPABLE });
 * using memory = map.memory();
 * memory.setU64(8, 5n); // element 1, written in place
 * assert.equal(map.lookup(new Uint8Array([1, 0, 0, 0]))![0], 5);
 * using plain = BpfMap.create(spec);
 * assert.throws(() => plain.memory(), { name: "TypeError" }); // not mmapable
 * ```
 */
export const BPF_F_MMAPABLE = 1 << 10;
