/**
 * Links: a program attached to a hook (an XDP or tcx device, a cgroup, a
 * raw tracepoint, a kernel function, a perf event), held by a file
 * descriptor. The program stays attached while the link's last fd is open
 * or it is pinned, as the kernel does: closing the last one detaches it.
 * `Program.attachXdp`, `attachTcx`, `attachCgroup`, `attachTracing`,
 * `attachRawTracepoint` ... make them.
 *
 * @module
 */

import {
  linkCreate,
  linkDetach,
  linkGetFdById,
  linkUpdate,
  listObjectIds,
  objGetInfoByFd,
  rawTracepointOpen,
} from "../ffi/bpf.ts";
import {
  BPF_LINK_CREATE,
  BPF_LINK_DETACH,
  BPF_LINK_GET_FD_BY_ID,
  BPF_LINK_GET_NEXT_ID,
  BPF_LINK_INFO,
  BPF_LINK_INFO_CGROUP,
  BPF_LINK_INFO_HEAD,
  BPF_LINK_INFO_ITER,
  BPF_LINK_INFO_NETNS,
  BPF_LINK_INFO_PERF_EVENT,
  BPF_LINK_INFO_RAW_TRACEPOINT,
  BPF_LINK_INFO_TCX,
  BPF_LINK_INFO_TRACING,
  BPF_LINK_UPDATE,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_RAW_TRACEPOINT_OPEN,
  type Field,
  type Layout,
  readU32,
  readU64,
} from "../ffi/commands.ts";
import { BpfError } from "../ffi/errors.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import {
  LINK_TYPE_CGROUP,
  LINK_TYPE_ITER,
  LINK_TYPE_NETNS,
  LINK_TYPE_PERF_EVENT,
  LINK_TYPE_RAW_TRACEPOINT,
  LINK_TYPE_TCX,
  LINK_TYPE_TRACING,
  LINK_TYPE_XDP,
  linkTypeName,
} from "../ffi/link_types.ts";
import { cString, offHeapBytes } from "../ffi/memory.ts";
import { adoptFd, checkPath, openPinnedFd, pinFd } from "../ffi/objects.ts";
import { attachTypeName, progTypeName } from "../ffi/prog_types.ts";
import { checkInteger, describe } from "../ffi/validate.ts";

/** `enum bpf_attach_type`'s `BPF_XDP`. */
const ATTACH_XDP = 37;

/** What the kernel says of a link (`struct bpf_link_info`). */
export interface LinkInfo {
  /** The link type number (`enum bpf_link_type`). */
  type: number;
  /** Its name: `"xdp"`, `"raw_tracepoint"`, ... */
  typeName: string;
  /** The kernel-wide link id. */
  id: number;
  /** The id of the program it attaches (0 once detached). */
  programId: number;
  /** XDP and tcx links: the device's ifindex (0 once detached). */
  ifindex?: number;
  /** Raw tracepoint links: the tracepoint's name. */
  tracepoint?: string;
  /**
   * tcx, cgroup, tracing and netns links: how the program is attached
   * (`"tcx_ingress"`, `"flow_dissector"`, ...).
   */
  attachType?: string;
  /**
   * Cgroup links: the cgroup's id, its directory's inode number (0 once
   * detached, and in a transcript: a new cgroup has a new id each run).
   */
  cgroupId?: bigint;
  /** Tracing links: the id of the BTF object the target is in (vmlinux's, a module's). */
  targetObjId?: number;
  /** Tracing links: the target's BTF type id in that object. */
  targetBtfId?: number;
  /** `perf_event` links: what the event is (`"tracepoint"`, `"kprobe"`, `"uprobe"`, ...). */
  perfEventType?: string;
  /** Iterator links: the iterator's name (`"bpf_map"`, `"bpf_map_elem"`, `"task"`, ...). */
  targetName?: string;
  /**
   * Iterator links over a map's elements (`bpf_map_elem`, `bpf_sk_storage_map`,
   * `sockmap`): the id of the map they walk. Left out for other iterators.
   */
  mapId?: number;
  /**
   * Network namespace links: the namespace's inode number (`/proc/PID/ns/net`'s;
   * 0 once it is gone, and in a transcript: a new namespace has a new one each run).
   */
  netnsIno?: number;
}

/** `enum bpf_perf_event_type`, by number. */
const PERF_EVENT_TYPES = [
  "unspec",
  "uprobe",
  "uretprobe",
  "kprobe",
  "kretprobe",
  "tracepoint",
  "event",
] as const;

/** What `BPF_LINK_CREATE` attaches, after the caller's checks. */
export interface LinkTarget {
  /** An ifindex (XDP, tcx), a cgroup's or perf event's fd, or 0 (tracing, iter). */
  target: number;
  /** `enum bpf_attach_type`. */
  attachType: number;
  /** `link_create.flags` (XDP's mode, tcx's `BPF_F_BEFORE`/`BPF_F_AFTER`, ...). */
  flags?: number;
  /** The union's first u32: a tracing link's `target_btf_id`, tcx's `relative_fd`/`relative_id`. */
  targetBtfId?: number;
}

/** Closes fds of links dropped without `close()` (live kernels only, as maps do). */
const unclosed = new FinalizationRegistry<{ kernel: Kernel; fd: number }>(({ kernel, fd }) => {
  kernel.close(fd);
});

/** Who is told of each link opened on a kernel: a system, to close it with itself. */
const trackers = new WeakMap<Kernel, (link: Link) => void>();

/**
 * Tells `track` of every link opened from now on through `kernel` (attached,
 * opened by id, fd or pin): what a system closes when it closes.
 */
export function trackLinks(kernel: Kernel, track: (link: Link) => void): void {
  trackers.set(kernel, track);
}

/** A Link of an fd the kernel just returned for an attachment (set by the class). */
let adoptNew: (kernel: Kernel, fd: number) => Link;

/**
 * A program attached to a hook, as long as its fd is open (or it is pinned).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Program } from "../mod.ts";
 *
 * // r0 = 0; exit: a raw tracepoint program that does nothing, on every syscall's entry.
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "raw_tracepoint", instructions, license: "GPL" });
 * using link = program.attachRawTracepoint("sys_enter");
 * assert.deepEqual(link.info(), {
 *   type: 1,
 *   typeName: "raw_tracepoint",
 *   id: link.id,
 *   programId: program.id,
 *   tracepoint: "sys_enter",
 * });
 * ```
 */
export class Link {
  /** The kernel-wide link id. */
  readonly id: number;
  /** The link type number (`enum bpf_link_type`). */
  readonly type: number;
  readonly #kernel: Kernel;
  #fd: number;

  static {
    adoptNew = (kernel, fd) => Link.#adopt(kernel, fd, undefined);
  }

  private constructor(kernel: Kernel, fd: number, info: LinkInfo) {
    this.#kernel = kernel;
    this.#fd = fd;
    this.id = info.id;
    this.type = info.type;
    if (kernel.closesLeakedFds) unclosed.register(this, { kernel, fd }, this);
    trackers.get(kernel)?.(this);
  }

  /** Opens the link with a kernel-wide id (`BPF_LINK_GET_FD_BY_ID`). */
  static fromId(id: number, kernel: Kernel = liveKernel()): Link {
    checkInteger(id, "id", 1);
    const fd = linkGetFdById(kernel, id);
    if (fd < 0) throw new BpfError(BPF_LINK_GET_FD_BY_ID.name, -fd, `link id ${id}`);
    return Link.#adopt(kernel, fd, undefined);
  }

  /**
   * A link from an fd this process has, which it then owns (and closes).
   * An fd of another kind (a map, a program) is refused with a `TypeError`
   * naming it, and closed all the same.
   */
  static fromFd(fd: number, kernel: Kernel = liveKernel()): Link {
    checkInteger(fd, "fd", 0, 0x7fff_ffff);
    return Link.#adopt(kernel, fd, `fd ${fd}`);
  }

  /**
   * Opens a link pinned in bpffs (`BPF_OBJ_GET`). A pinned map, program or
   * BTF object is refused with a `TypeError` naming the path and its kind
   * (bpftool's `incorrect object type`), its fd closed.
   */
  static openPinned(path: string, kernel: Kernel = liveKernel()): Link {
    const pathname = checkPath(path);
    return Link.#adopt(kernel, openPinnedFd(kernel, pathname, path), path);
  }

  /**
   * A link of `fd`, which it then owns. `source` (a path, "fd N") is where
   * an fd of any kind may have come from: its fdinfo says its kind first.
   * Any failure closes the fd.
   */
  static #adopt(kernel: Kernel, fd: number, source: string | undefined): Link {
    return adoptFd(
      kernel,
      fd,
      source,
      "link",
      () => new Link(kernel, fd, readLinkHead(kernel, fd)),
    );
  }

  /** The link's file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether {@linkcode Link.close} has run. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The kernel's view of the link (`BPF_OBJ_GET_INFO_BY_FD`). */
  info(): LinkInfo {
    return readLinkInfo(this.#kernel, this.#openFd("info"));
  }

  /** Pins the link in bpffs at `path` (`BPF_OBJ_PIN`): it then outlives its fds. */
  pin(path: string): void {
    const fd = this.#openFd("pin");
    pinFd(this.#kernel, fd, checkPath(path), `${this.#describe()} at ${path}`);
  }

  /**
   * Detaches the program while the fd stays open (`BPF_LINK_DETACH`), for
   * every holder of the link, pins included. Link types without a detach
   * operation (raw tracepoints) answer EOPNOTSUPP: close them instead.
   *
   * @throws {BpfError} when the kernel refuses.
   */
  detach(): void {
    const result = linkDetach(this.#kernel, this.#openFd("detach"));
    if (result < 0) throw new BpfError(BPF_LINK_DETACH.name, -result, this.#describe());
  }

  /**
   * Runs `program` in the place of the link's program, atomically
   * (`BPF_LINK_UPDATE`): it must suit the hook (an XDP link takes XDP programs).
   *
   * @throws {BpfError} when the kernel refuses.
   */
  update(program: { readonly fd: number }): void {
    const fd = this.#openFd("update");
    if (program === null || typeof program !== "object" || !(program.fd > 0)) {
      throw new TypeError(`update: expected an open Program, got ${describe(program)}`);
    }
    const result = linkUpdate(this.#kernel, fd, program.fd);
    if (result < 0) throw new BpfError(BPF_LINK_UPDATE.name, -result, this.#describe());
  }

  /** Closes the link's fd: the last one closed (with no pin left) detaches the program. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    unclosed.unregister(this);
    this.#kernel.close(this.#fd);
    this.#fd = -1;
  }

  /** Closes the link at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The link as messages name it: `xdp link (id 4)`. */
  toString(): string {
    return this.#describe();
  }

  #describe(): string {
    return `${linkTypeName(this.type)} link (id ${this.id})`;
  }

  #openFd(operation: string): number {
    if (this.#fd < 0) throw new TypeError(`${operation}: ${this.#describe()} is closed`);
    return this.#fd;
  }
}

/**
 * A program an attach function attaches (`Program` hands it over): its
 * kernel, open fd, type and name in messages, and the method called.
 */
export interface AttachingProgram {
  readonly kernel: Kernel;
  readonly fd: number;
  /** `enum bpf_prog_type`. */
  readonly type: number;
  /** The program as messages name it: `sched_cls program "count" (id 12)`. */
  readonly description: string;
  /** The method attaching it, for messages: `"attachTcx"`. */
  readonly operation: string;
}

/**
 * Refuses, before any call, a program whose type is none of `types`
 * (names as `progTypeName` gives them).
 *
 * @throws {TypeError} naming the method, the program and the types it takes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { expectProgramType } from "./link.ts";
 *
 * const program = { kernel: liveKernel(), fd: 0, type: 6, description: "xdp program (id 1)", operation: "attachTcx" };
 * expectProgramType(program, ["xdp"]);
 * assert.throws(() => expectProgramType(program, ["sched_cls"]), {
 *   message: "attachTcx: xdp program (id 1) is not a sched_cls program",
 * });
 * ```
 */
export function expectProgramType(program: AttachingProgram, types: readonly string[]): void {
  if (types.includes(progTypeName(program.type))) return;
  const wanted = types.length === 1
    ? `a ${types[0]}`
    : `a ${types.slice(0, -1).join(", ")} or ${types.at(-1)}`;
  throw new TypeError(`${program.operation}: ${program.description} is not ${wanted} program`);
}

/** `opts` as an object, or a `TypeError` naming what it is. *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOptions } from "./link.ts";
 * assert.deepEqual(checkOptions(undefined), {});
 * assert.throws(() => checkOptions(7 as never), /opts must be an object, got number 7/);
 * ```
 */
export function checkOptions<T extends object>(opts: T | undefined): Partial<T> {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`opts must be an object, got ${describe(opts)}`);
  }
  return opts;
}

/**
 * Attaches program `progFd` with a link (`BPF_LINK_CREATE`), as `link`
 * says. Arguments are checked by the caller (`Program.attachTcx`, ...);
 * `what` names the attachment in errors.
 *
 * @throws {BpfError} when the kernel refuses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { attachTypeNumber } from "../ffi/prog_types.ts";
 * import { Program } from "../mod.ts";
 * import { createLink } from "./link.ts";
 *
 * // r0 = 2 (XDP_PASS); exit, on loopback's XDP hook in generic mode (XDP_FLAGS_SKB_MODE).
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "xdp", instructions, license: "GPL" });
 * const target = { target: 1, attachType: attachTypeNumber("xdp"), flags: 2 };
 * using link = createLink(liveKernel(), program.fd, target, "pass on lo");
 * assert.equal(link.info().ifindex, 1);
 * ```
 */
export function createLink(kernel: Kernel, progFd: number, link: LinkTarget, what: string): Link {
  const fd = linkCreate(kernel, {
    progFd,
    target: link.target,
    attachType: link.attachType,
    flags: link.flags ?? 0,
    targetBtfId: link.targetBtfId ?? 0,
  });
  if (fd < 0) throw new BpfError(BPF_LINK_CREATE.name, -fd, what);
  return adoptNew(kernel, fd);
}

/**
 * Attaches XDP program `progFd` to device `ifindex` with a link
 * (`BPF_LINK_CREATE`, attach type `BPF_XDP`); `flags` choose the mode
 * (`XDP_FLAGS_SKB_MODE`, ...; 0 lets the kernel pick). Arguments are
 * checked by the caller (`Program.attachXdp`); `what` names the attachment
 * in errors.
 *
 * @throws {BpfError} when the kernel refuses (EBUSY: the device has an XDP program already).
 */
export function attachXdpLink(
  kernel: Kernel,
  progFd: number,
  ifindex: number,
  flags: number,
  what: string,
): Link {
  return createLink(kernel, progFd, { target: ifindex, attachType: ATTACH_XDP, flags }, what);
}

/**
 * Attaches raw tracepoint program `progFd` to tracepoint `name`
 * (`BPF_RAW_TRACEPOINT_OPEN`). Checked by the caller
 * (`Program.attachRawTracepoint`).
 *
 * @throws {BpfError} when the kernel refuses (ENOENT: no such tracepoint).
 */
export function attachRawTracepointLink(
  kernel: Kernel,
  progFd: number,
  name: string,
  what: string,
): Link {
  const fd = rawTracepointOpen(kernel, cString(name), progFd);
  if (fd < 0) throw new BpfError(BPF_RAW_TRACEPOINT_OPEN.name, -fd, what);
  return adoptNew(kernel, fd);
}

/**
 * The ids of every link on the system, ascending (`BPF_LINK_GET_NEXT_ID`).
 * Needs CAP_SYS_ADMIN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listLinkIds, Program } from "../mod.ts";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "raw_tracepoint", instructions, license: "GPL" });
 * using link = program.attachRawTracepoint("sys_exit");
 * const ids = listLinkIds();
 * assert.ok(ids.includes(link.id));
 * assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
 * ```
 */
export function listLinkIds(kernel: Kernel = liveKernel()): number[] {
  return listObjectIds(kernel, BPF_LINK_GET_NEXT_ID);
}

/** The layout of each link type's union, by link type (XDP's and raw tracepoints': the plain one). */
const INFO_LAYOUTS: ReadonlyMap<number, Layout> = new Map<number, Layout>([
  [LINK_TYPE_TCX, BPF_LINK_INFO_TCX],
  [LINK_TYPE_CGROUP, BPF_LINK_INFO_CGROUP],
  [LINK_TYPE_TRACING, BPF_LINK_INFO_TRACING],
  [LINK_TYPE_PERF_EVENT, BPF_LINK_INFO_PERF_EVENT],
  [LINK_TYPE_ITER, BPF_LINK_INFO_ITER],
  [LINK_TYPE_NETNS, BPF_LINK_INFO_NETNS],
]);

/**
 * Reads the head of a link's info (type, id, program id): all a `Link`
 * needs to exist.
 *
 * @throws {BpfError} if the kernel refuses.
 */
function readLinkHead(kernel: Kernel, fd: number): LinkInfo {
  const head = offHeapBytes(BPF_LINK_INFO_HEAD.size);
  const result = objGetInfoByFd(kernel, fd, head, BPF_LINK_INFO_HEAD);
  if (result < 0) throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -result, `link fd ${fd}`);
  const { fields } = BPF_LINK_INFO_HEAD;
  const type = readU32(head, fields.type);
  return {
    type,
    typeName: linkTypeName(type),
    id: readU32(head, fields.id),
    programId: readU32(head, fields.prog_id),
  };
}

/**
 * Reads a link's info: its head, then the whole struct with the layout of
 * its type's union (so that what differs from run to run, a cgroup's id, is
 * marked so for transcripts); a raw tracepoint's or iterator's name with a
 * third call, sized by the length the second wrote (the kernel copies at
 * most the room given).
 *
 * @throws {BpfError} if the kernel refuses.
 */
export function readLinkInfo(kernel: Kernel, fd: number): LinkInfo {
  const out = readLinkHead(kernel, fd);
  const type = out.type;
  const layout = INFO_LAYOUTS.get(type) ?? BPF_LINK_INFO;
  const info = offHeapBytes(layout.size);
  const result = objGetInfoByFd(kernel, fd, info, layout);
  if (result < 0) throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -result, `link fd ${fd}`);
  out.programId = readU32(info, BPF_LINK_INFO.fields.prog_id);
  if (type === LINK_TYPE_XDP) out.ifindex = readU32(info, BPF_LINK_INFO.fields.ifindex);
  if (type === LINK_TYPE_TCX) {
    out.ifindex = readU32(info, BPF_LINK_INFO_TCX.fields.ifindex);
    out.attachType = attachTypeName(readU32(info, BPF_LINK_INFO_TCX.fields.attach_type));
  }
  if (type === LINK_TYPE_CGROUP) {
    const { cgroup_id, attach_type } = BPF_LINK_INFO_CGROUP.fields;
    out.cgroupId = readU64(info, cgroup_id);
    out.attachType = attachTypeName(readU32(info, attach_type));
  }
  if (type === LINK_TYPE_TRACING) {
    const { attach_type, target_obj_id, target_btf_id } = BPF_LINK_INFO_TRACING.fields;
    out.attachType = attachTypeName(readU32(info, attach_type));
    out.targetObjId = readU32(info, target_obj_id);
    out.targetBtfId = readU32(info, target_btf_id);
  }
  if (type === LINK_TYPE_PERF_EVENT) {
    const number = readU32(info, BPF_LINK_INFO_PERF_EVENT.fields.perf_event_type);
    out.perfEventType = PERF_EVENT_TYPES[number] ?? `type ${number}`;
  }
  if (type === LINK_TYPE_NETNS) {
    const { netns_ino, attach_type } = BPF_LINK_INFO_NETNS.fields;
    out.netnsIno = readU32(info, netns_ino);
    out.attachType = attachTypeName(readU32(info, attach_type));
  }
  if (type === LINK_TYPE_RAW_TRACEPOINT) {
    const { tp_name, tp_name_len } = BPF_LINK_INFO_RAW_TRACEPOINT.fields;
    out.tracepoint = readName(kernel, fd, info, BPF_LINK_INFO_RAW_TRACEPOINT, tp_name, tp_name_len);
  }
  if (type === LINK_TYPE_ITER) {
    const { target_name, target_name_len, map_id } = BPF_LINK_INFO_ITER.fields;
    out.targetName = readName(kernel, fd, info, BPF_LINK_INFO_ITER, target_name, target_name_len);
    // Read from the call that also copied the name: the one a transcript marks the id in.
    const mapId = readU32(info, map_id);
    if (mapId !== 0) out.mapId = mapId;
  }
  return out;
}

/**
 * A name `info` points at: asked for again with room for the `length` the
 * last call wrote, through `layout`'s `pointer` into off-heap memory (the
 * kernel writes it, the recorder records it). `info` then holds that call's
 * struct.
 *
 * @throws {BpfError} if the kernel refuses.
 */
function readName(
  kernel: Kernel,
  fd: number,
  info: Uint8Array,
  layout: Layout,
  pointer: Field,
  length: Field,
): string {
  const name = offHeapBytes(Math.max(readU32(info, length), 1));
  info.fill(0);
  new DataView(info.buffer, info.byteOffset).setUint32(length.offset, name.byteLength, true);
  const result = objGetInfoByFd(kernel, fd, info, layout, [[pointer, name]]);
  if (result < 0) throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -result, `link fd ${fd}`);
  const end = name.indexOf(0);
  return decoder.decode(name.subarray(0, end === -1 ? name.byteLength : end));
}

const decoder = new TextDecoder();
