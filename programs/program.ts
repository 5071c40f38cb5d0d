/**
 * BPF programs in the kernel: loading instructions (`BPF_PROG_LOAD`, with
 * the verifier's log when it refuses them), running them on a packet
 * (`BPF_PROG_TEST_RUN`), their info and maps, ids, pins.
 *
 * @module
 */

import type { Btf } from "../btf/btf.ts";
import {
  listObjectIds,
  objGetInfoByFd,
  progGetFdById,
  progLoad,
  progTestRun,
  type TestRunCall,
} from "../ffi/bpf.ts";
import {
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_PROG_GET_FD_BY_ID,
  BPF_PROG_GET_NEXT_ID,
  BPF_PROG_INFO,
  BPF_PROG_LOAD,
  BPF_PROG_TEST_RUN,
  type Field,
  readChars,
  readU32,
  readU64,
} from "../ffi/commands.ts";
import { ENOSPC } from "../ffi/errno.ts";
import { BpfError } from "../ffi/errors.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import { byteLengthOf, cString, offHeapBytes } from "../ffi/memory.ts";
import { adoptFd, checkPath, openPinnedFd, pinFd } from "../ffi/objects.ts";
import {
  type AttachTypeName,
  attachTypeNumber,
  type ProgTypeName,
  progTypeName,
  progTypeNumber,
} from "../ffi/prog_types.ts";
import { checkInteger, describe } from "../ffi/validate.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { attachCgroup, type CgroupAttachType } from "./attach_cgroup.ts";
import {
  attachKprobe,
  attachKsyscall,
  attachTracepoint,
  attachUprobe,
  type KprobeAttachOptions,
  type UprobeAttachOptions,
} from "./attach_perf_link.ts";
import { attachByRememberedSection } from "./attach_section.ts";
import { attachTcx, type TcxAttachOptions, type TcxDirection } from "./attach_tcx.ts";
import { attachTracing, type TracingAttachOptions } from "./attach_tracing.ts";
import {
  type AttachingProgram,
  attachRawTracepointLink,
  attachXdpLink,
  type Link,
} from "./link.ts";
import { checkDevice, ifindex as indexOf } from "./netdev.ts";

/** The first log buffer of a load that failed: most verifier logs fit. */
export const FIRST_LOG_SIZE = 64 * 1024;
/** The largest log buffer a load asks for: libbpf's `BPF_LOG_BUF_SIZE` (16 MiB). */
export const MAX_LOG_SIZE = 16 * 1024 * 1024;
/** How many lines of the verifier's log an error's message shows (all of it is on `log`). */
export const LOG_LINES_SHOWN = 20;
/** The most instructions a program may have (the kernel's `BPF_COMPLEXITY_LIMIT_INSNS`). */
const MAX_INSNS = 1_000_000;
/** Room `testRun` gives the packet to grow beyond its input, by default (XDP's headroom). */
export const DATA_OUT_SLACK = 256;

const decoder = new TextDecoder();
/** The program types whose test run takes a context but no `ctx_out` (see `testRun`). */
const RAW_TRACEPOINT = progTypeNumber("raw_tracepoint");
const SYSCALL = progTypeNumber("syscall");

/** What to load: the instructions and how the kernel should take them. */
export interface ProgramSpec {
  /** `"xdp"`, `"socket_filter"`, ... (`enum bpf_prog_type`), or its number. */
  type: ProgTypeName | number;
  /** The program: 8-byte instructions, as clang emits them (little-endian). */
  instructions: Uint8Array;
  /** `"GPL"`, `"Dual BSD/GPL"`, ...: GPL-only helpers need a GPL-compatible one. */
  license: string;
  /** At most 15 characters of `[A-Za-z0-9_.]`. */
  name?: string;
  /** `expected_attach_type` (`"xdp"`, `"trace_fentry"`, ...), for types that need it. */
  expectedAttachType?: AttachTypeName | number;
  /** `kern_version` (only kprobes of kernels before 5.0 read it). */
  kernelVersion?: number;
  /** `prog_flags` (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`, ...): passed to the kernel as they are. */
  flags?: number;
  /**
   * 0 (the default): load without a log and, if the verifier refuses,
   * load again with level 1 to put its reasons in the error, as libbpf
   * does. 1 or 2 (and 4, stats): always log; `program.log` holds it.
   */
  logLevel?: number;
  /** BTF the program's func and line info refer to (`prog_btf_fd`). */
  btf?: Btf;
  /**
   * `bpf_func_info`: where each function starts (the program first, at 0,
   * then its subprograms), as a `FUNC` of `btf`. Needs `btf`.
   */
  funcInfo?: readonly FuncInfoRecord[];
  /** `bpf_line_info`: the source line of instructions, ascending, the first at 0. Needs `btf`. */
  lineInfo?: readonly LineInfoRecord[];
  /** `attach_btf_id`: the kernel BTF type a tracing program attaches to. */
  attachBtfId?: number;
  /** `ifindex` of the device an offloaded program is for. */
  ifindex?: number;
}

/** A `bpf_func_info`: the function starting at instruction `insn` is BTF `FUNC` `typeId`. */
export interface FuncInfoRecord {
  readonly insn: number;
  readonly typeId: number;
}

/** A `bpf_line_info`: instruction `insn` is from `line`:`column` of a file, named in BTF strings. */
export interface LineInfoRecord {
  readonly insn: number;
  /** Offsets in the strings of the program's `btf`: the file's name, the line's text. */
  readonly fileNameOffset: number;
  readonly lineOffset: number;
  /** Up to 2^22 - 1, and the column up to 1023: they share a u32 (`line << 10 | column`). */
  readonly line: number;
  readonly column: number;
}

/**
 * The verifier refused a program: a {@linkcode BpfError} of `BPF_PROG_LOAD`
 * whose message ends with the last lines of the verifier's log, and `log`
 * holding all of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Program, VerifierError } from "../mod.ts";
 *
 * // r0 = r2; exit: r2 was never written.
 * const instructions = new Uint8Array([0xbf, 0x20, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * assert.throws(() => Program.load({ type: "xdp", instructions, license: "GPL" }), (error) =>
 *   error instanceof VerifierError && error.code === "EACCES" && error.log.includes("R2 !read_ok"));
 * ```
 */
export class VerifierError extends BpfError {
  /** The verifier's whole log. */
  readonly log: string;

  constructor(errno: number, log: string, detail: string) {
    const lines = log.trimEnd().split("\n");
    super(
      BPF_PROG_LOAD.name,
      errno,
      `${detail}; the verifier's log${
        lines.length > LOG_LINES_SHOWN ? ` (last ${LOG_LINES_SHOWN} lines)` : ""
      }:\n${lines.slice(-LOG_LINES_SHOWN).join("\n")}`,
    );
    this.name = "VerifierError";
    this.log = log;
  }
}

/** What the kernel says of a program (`struct bpf_prog_info`). */
export interface ProgramInfo {
  /** The program type number (`enum bpf_prog_type`). */
  type: number;
  /** Its name, e.g. `"xdp"`. */
  typeName: string;
  /** The kernel-wide program id. */
  id: number;
  /** The program's tag: a hash of its instructions, 16 hex digits (as bpftool prints it). */
  tag: string;
  /** The name it was loaded with. */
  name: string;
  /** Bytes of JITed code (0 when not JITed). */
  jitedLength: number;
  /** Bytes of the instructions as the verifier rewrote them. */
  xlatedLength: number;
  /** When it was loaded, in ns since boot (0 in a transcript: it differs each run). */
  loadTime: bigint;
  createdByUid: number;
  /** The ids of the maps it uses. */
  mapIds: number[];
  ifindex: number;
  gplCompatible: boolean;
  netnsDev: bigint;
  netnsIno: bigint;
  /** The id of its BTF object, 0 if none. */
  btfId: number;
  /** How many `bpf_func_info` records it was loaded with: its functions, subprograms included. */
  funcInfoCount: number;
  /** How many `bpf_line_info` records it was loaded with. */
  lineInfoCount: number;
  /** Instructions the verifier processed. */
  verifiedInsns: number;
  attachBtfObjId: number;
  attachBtfId: number;
  /** Run statistics (with `kernel.bpf_stats_enabled`; 0 in a transcript). */
  runTimeNs: bigint;
  runCount: bigint;
  recursionMisses: bigint;
}

/** What a test run feeds the program. */
export interface TestRunOptions {
  /** The packet (at least 14 bytes, an Ethernet header, for network programs). */
  data?: Uint8Array;
  /** The context (`struct __sk_buff`, `struct xdp_md`, ...) for types that take one. */
  ctx?: Uint8Array;
  /** Runs in a row (the kernel's loop; `duration` is their average). 0 and 1 both run once. */
  repeat?: number;
  /** Room for the packet out, by default its size plus 256 (XDP may grow it). */
  dataOutSize?: number;
  /** `flags` (`BPF_F_TEST_RUN_ON_CPU`, `BPF_F_TEST_XDP_LIVE_FRAMES`). */
  flags?: number;
  /** The CPU to run on, with `BPF_F_TEST_RUN_ON_CPU`. */
  cpu?: number;
}

/** What a test run gives back. */
export interface TestRunResult {
  /** The program's return value (`XDP_PASS`, the bytes a socket filter keeps, ...). */
  retval: number;
  /** The packet as the program left it (empty without `data`). */
  data: Uint8Array;
  /** The average run time in ns, as the kernel measured it (0 in a transcript). */
  duration: number;
  /** The context as the program left it, when one was given. */
  ctx?: Uint8Array;
}

/** Options of {@linkcode Program.attachXdp}. */
export interface XdpAttachOptions {
  /**
   * `XDP_FLAGS_SKB_MODE` (2: generic XDP, any device), `XDP_FLAGS_DRV_MODE`
   * (4: the driver's), `XDP_FLAGS_HW_MODE` (8: offloaded); 0 (the default)
   * lets the kernel choose: the driver's if it has XDP, else generic.
   */
  flags?: number;
}

/** The program types that raw tracepoints run. */
const RAW_TRACEPOINT_TYPES = new Set(["raw_tracepoint", "raw_tracepoint_writable"]);

/** Closes fds of programs dropped without `close()` (live kernels only, as maps do). */
const unclosed = new FinalizationRegistry<{ kernel: Kernel; fd: number }>(({ kernel, fd }) => {
  kernel.close(fd);
});

/**
 * A program in the kernel: an fd, its id, type and name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Program } from "../mod.ts";
 *
 * // r0 = 2 (XDP_PASS); exit
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "xdp", instructions, license: "GPL", name: "pass" });
 * const packet = new Uint8Array(64).fill(0xab);
 * const run = program.testRun({ data: packet });
 * assert.equal(run.retval, 2);
 * assert.deepEqual(run.data, packet); // XDP_PASS leaves it as it was
 * assert.equal(program.info().name, "pass");
 * ```
 */
export class Program {
  /** The kernel-wide program id. */
  readonly id: number;
  /** The program type number. */
  readonly type: number;
  /** The program's name. */
  readonly name: string;
  /** The verifier's log of a load asked with `logLevel` above 0; else `""`. */
  readonly log: string;
  readonly #kernel: Kernel;
  #fd: number;
  /** The attach type it was loaded with; unknown for a program opened by id, pin or fd. */
  #expectedAttachType: number | undefined;

  private constructor(kernel: Kernel, fd: number, info: ProgramInfo, log: string) {
    this.#kernel = kernel;
    this.#fd = fd;
    this.id = info.id;
    this.type = info.type;
    this.name = info.name;
    this.log = log;
    if (kernel.closesLeakedFds) unclosed.register(this, { kernel, fd }, this);
  }

  /**
   * Loads a program (`BPF_PROG_LOAD`). Bad input (instructions not whole
   * 8-byte instructions, a license or name the kernel cannot take, an
   * unknown type) is refused before any call.
   *
   * @throws {VerifierError} when the verifier refuses the program, with its log.
   * @throws {BpfError} when the kernel refuses otherwise.
   */
  static load(spec: ProgramSpec, kernel: Kernel = liveKernel()): Program {
    const checked = checkSpec(spec);
    const insns = offHeapBytes(checked.instructions.byteLength);
    insns.set(checked.instructions);
    const call = {
      progType: checked.type,
      insns,
      license: cString(checked.license),
      name: checked.name,
      expectedAttachType: checked.expectedAttachType,
      kernVersion: checked.kernelVersion,
      progFlags: checked.flags,
      progBtfFd: checked.btfFd,
      funcInfo: checked.funcInfo,
      lineInfo: checked.lineInfo,
      attachBtfId: checked.attachBtfId,
      ifindex: checked.ifindex,
    };
    const detail = `${progTypeName(checked.type)} program${
      checked.name ? ` "${checked.name}"` : ""
    } of ${insns.byteLength / 8} instruction(s)`;
    const first = loadLogged(kernel, call, checked.logLevel);
    if (first.fd >= 0) {
      // The program keeps its id, type and name: its map ids wait for info() or maps().
      const program = Program.#adopt(kernel, first.fd, undefined, first.log, false);
      program.#expectedAttachType = checked.expectedAttachType;
      return program;
    }
    if (checked.logLevel !== 0) throw new VerifierError(-first.fd, first.log, detail);
    // Again with a log, for the verifier's reasons; the errno stays the first call's.
    const logged = loadLogged(kernel, call, 1);
    if (logged.fd >= 0) {
      kernel.close(logged.fd);
      throw new BpfError(BPF_PROG_LOAD.name, -first.fd, detail);
    }
    if (logged.log === "") throw new BpfError(BPF_PROG_LOAD.name, -first.fd, detail);
    throw new VerifierError(-first.fd, logged.log, detail);
  }

  /** Opens the program with a kernel-wide id (`BPF_PROG_GET_FD_BY_ID`). */
  static fromId(id: number, kernel: Kernel = liveKernel()): Program {
    checkInteger(id, "id", 1);
    const fd = progGetFdById(kernel, id);
    if (fd < 0) throw new BpfError(BPF_PROG_GET_FD_BY_ID.name, -fd, `program id ${id}`);
    return Program.#adopt(kernel, fd, undefined, "");
  }

  /**
   * A program from an fd this process has, which it then owns (and closes).
   * An fd of another kind (a map, a link) is refused with a `TypeError`
   * naming it, and closed all the same.
   */
  static fromFd(fd: number, kernel: Kernel = liveKernel()): Program {
    checkInteger(fd, "fd", 0, 0x7fff_ffff);
    return Program.#adopt(kernel, fd, `fd ${fd}`, "");
  }

  /**
   * Opens a program pinned in bpffs (`BPF_OBJ_GET`). A pinned map, link or
   * BTF object is refused with a `TypeError` naming the path and its kind
   * (bpftool's `incorrect object type`), its fd closed.
   */
  static openPinned(path: string, kernel: Kernel = liveKernel()): Program {
    const pathname = checkPath(path);
    return Program.#adopt(kernel, openPinnedFd(kernel, pathname, path), path, "");
  }

  /**
   * A program of `fd`, which it then owns. `source` (a path, "fd N") is
   * where an fd of any kind may have come from: its fdinfo says its kind
   * first. Any failure closes the fd.
   */
  static #adopt(
    kernel: Kernel,
    fd: number,
    source: string | undefined,
    log: string,
    withMapIds = true,
  ): Program {
    return adoptFd(
      kernel,
      fd,
      source,
      "prog",
      () => new Program(kernel, fd, readProgramInfo(kernel, fd, withMapIds), log),
    );
  }

  /** The program's file descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether {@linkcode Program.close} has run. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The kernel's view of the program, its map ids included (`BPF_OBJ_GET_INFO_BY_FD`). */
  info(): ProgramInfo {
    return readProgramInfo(this.#kernel, this.#openFd("info"));
  }

  /**
   * The maps the program uses, each opened by id (close them when done).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BpfMap, Program } from "../mod.ts";
   *
   * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
   * // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD); r0 = 0; exit
   * const insns = new Uint8Array(32);
   * insns.set([0x18, 0x11, 0, 0]);
   * new DataView(insns.buffer).setInt32(4, map.fd, true);
   * insns.set([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95], 16);
   * using program = Program.load({ type: "socket_filter", instructions: insns, license: "GPL" });
   * const [used] = program.maps();
   * assert.equal(used?.id, map.id);
   * used?.close();
   * ```
   */
  maps(): BpfMap[] {
    const maps: BpfMap[] = [];
    try {
      for (const id of this.info().mapIds) maps.push(BpfMap.fromId(id, this.#kernel));
    } catch (error) {
      for (const map of maps) map.close();
      throw error;
    }
    return maps;
  }

  /**
   * Runs the program once (or `repeat` times) on `data` and `ctx`
   * (`BPF_PROG_TEST_RUN`), with no attachment: what a test or a CI machine
   * without attach rights can do. A packet that grew beyond `dataOutSize`
   * is a `BpfError` (ENOSPC) saying the size it needed.
   */
  testRun(opts: TestRunOptions = {}): TestRunResult {
    const fd = this.#openFd("testRun");
    const { data, ctx, dataOutSize, repeat, flags, cpu } = checkRun(opts);
    const call: TestRunCall = { repeat, flags, cpu, contextWrittenIn: this.type === SYSCALL };
    if (data !== undefined) {
      call.dataIn = offHeapCopy(data);
      call.dataOut = offHeapBytes(dataOutSize ?? data.byteLength + DATA_OUT_SLACK);
    }
    // Raw tracepoint and syscall programs take a context but refuse ctx_out (EINVAL): a raw
    // tracepoint's is not given back, a syscall program's is written back into ctx_in itself.
    const contextWrittenBack = this.type !== RAW_TRACEPOINT && this.type !== SYSCALL;
    if (ctx !== undefined) {
      call.ctxIn = offHeapCopy(ctx);
      if (contextWrittenBack) call.ctxOut = offHeapBytes(ctx.byteLength);
    }
    const result = progTestRun(this.#kernel, fd, call);
    if (result < 0) {
      const grew = -result === ENOSPC ? `; the packet out needs ${call.dataSizeOut} bytes` : "";
      throw new BpfError(BPF_PROG_TEST_RUN.name, -result, `${this.#describe()}${grew}`);
    }
    const out: TestRunResult = {
      retval: call.retval!,
      // slice(): a result of its own, off the kernel's buffer.
      data: call.dataOut?.slice(0, call.dataSizeOut) ?? new Uint8Array(0),
      duration: call.duration!,
    };
    if (call.ctxOut) out.ctx = call.ctxOut.slice(0, call.ctxSizeOut);
    else if (call.ctxIn && this.type === SYSCALL) out.ctx = call.ctxIn.slice();
    return out;
  }

  /**
   * Attaches this XDP program to a network device, named (`"eth0"`, looked
   * up with `ifindex()`) or by index, through a link (`BPF_LINK_CREATE`): it
   * runs on every packet the device receives until the link's last fd is
   * closed (or {@linkcode Link.detach}). A program of another type, or an
   * index that is not a positive integer, is refused before any call.
   *
   * @throws {BpfError} when the kernel refuses (EBUSY: the device has an XDP program already),
   *   or `ENODEV` (op `if_nametoindex`) when no device has the name.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Program } from "../mod.ts";
   *
   * // r0 = 2 (XDP_PASS); exit
   * const instructions = new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
   * using program = Program.load({ type: "xdp", instructions, license: "GPL" });
   * using link = program.attachXdp("lo"); // loopback, by name: generic XDP
   * assert.deepEqual([link.info().programId, link.info().ifindex], [program.id, 1]);
   * assert.throws(() => program.attachXdp(0), RangeError);
   * ```
   */
  attachXdp(device: string | number, opts: XdpAttachOptions = {}): Link {
    const fd = this.#openFd("attachXdp");
    if (this.type !== progTypeNumber("xdp")) {
      throw new TypeError(`attachXdp: ${this.#describe()} is not an xdp program`);
    }
    checkDevice(device);
    if (opts === null || typeof opts !== "object") {
      throw new TypeError(`opts must be an object, got ${describe(opts)}`);
    }
    const flags = checkInteger(opts.flags ?? 0, "opts.flags");
    const ifindex = typeof device === "string" ? indexOf(device, this.#kernel) : device;
    return attachXdpLink(
      this.#kernel,
      fd,
      ifindex,
      flags,
      `${this.#describe()} on ifindex ${ifindex}`,
    );
  }

  /**
   * Attaches this raw tracepoint program to tracepoint `name` (`"sys_enter"`,
   * `"sched_switch"`, ...: the names under `/sys/kernel/tracing/events/*`)
   * through a link (`BPF_RAW_TRACEPOINT_OPEN`); closing the link's last fd
   * detaches it. A program of another type, or a name that is not one, is
   * refused before any call.
   *
   * @throws {BpfError} when the kernel refuses (ENOENT: no such tracepoint).
   */
  attachRawTracepoint(name: string): Link {
    const fd = this.#openFd("attachRawTracepoint");
    if (!RAW_TRACEPOINT_TYPES.has(progTypeName(this.type))) {
      throw new TypeError(
        `attachRawTracepoint: ${this.#describe()} is not a raw_tracepoint program`,
      );
    }
    // The kernel reads at most 127 bytes of the name.
    if (typeof name !== "string" || !/^[A-Za-z0-9_]{1,127}$/.test(name)) {
      throw new TypeError(
        `name: expected a tracepoint name of 1 to 127 characters of A-Z, a-z, 0-9 and _, got ${
          describe(name)
        }`,
      );
    }
    return attachRawTracepointLink(this.#kernel, fd, name, `${this.#describe()} on ${name}`);
  }

  /**
   * Attaches this `sched_cls` program to a network device's ingress or
   * egress (named, or by index) through a tcx link (see `attachTcx` in `attach_tcx.ts`).
   */
  attachTcx(device: string | number, direction: TcxDirection, opts?: TcxAttachOptions): Link {
    return attachTcx(this.#attaching("attachTcx"), device, direction, opts);
  }

  /**
   * Attaches this program to a cgroup v2 directory (a path or an fd) as
   * `attachType` through a cgroup link (see `attachCgroup` in `attach_cgroup.ts`).
   */
  attachCgroup(cgroup: string | number, attachType: CgroupAttachType | number): Link {
    return attachCgroup(this.#attaching("attachCgroup"), cgroup, attachType);
  }

  /**
   * Attaches this tracing or lsm program to what its `attachBtfId` named
   * (fentry, fexit, fmod_ret, lsm, tp_btf, iter; see `attachTracing` in `attach_tracing.ts`).
   */
  attachTracing(opts?: TracingAttachOptions): Link {
    return attachTracing(this.#attaching("attachTracing"), this.#expectedAttachType, opts);
  }

  /**
   * Attaches this `tracepoint` program to tracepoint `category`/`name`
   * (`"syscalls"`, `"sys_enter_kill"`) through a perf event link (see
   * `attachTracepoint` in `attach_perf_link.ts`).
   */
  attachTracepoint(category: string, name: string): Link {
    return attachTracepoint(this.#attaching("attachTracepoint"), category, name);
  }

  /** Attaches this `kprobe` program to kernel function `fn` (see `attachKprobe`). */
  attachKprobe(fn: string, opts?: KprobeAttachOptions): Link {
    return attachKprobe(this.#attaching("attachKprobe"), fn, opts);
  }

  /** Attaches this `kprobe` program to system call `name`'s entry point (see `attachKsyscall`). */
  attachKsyscall(name: string, opts?: KprobeAttachOptions): Link {
    return attachKsyscall(this.#attaching("attachKsyscall"), name, opts);
  }

  /**
   * Attaches this `kprobe` program to function `symbol` (or a file offset) of
   * the ELF file at `path` as an uprobe (see `attachUprobe`).
   */
  attachUprobe(path: string, symbol: string | number, opts?: UprobeAttachOptions): Link {
    return attachUprobe(this.#attaching("attachUprobe"), path, symbol, opts);
  }

  /**
   * Attaches this program where the object file section it was loaded from
   * says, as libbpf's `bpf_program__attach` (`tp/syscalls/sys_enter_kill`,
   * `kprobe/...`, `uprobe/PATH:FUNCTION`, `raw_tp/...`, `fentry/...`; see
   * `attachBySection` in `attach_section.ts`).
   *
   * @throws {TypeError} for a program not loaded from an object, or whose
   * section names no target (`xdp`, `tcx/ingress`, `cgroup/skb`).
   */
  attach(): Link {
    this.#openFd("attach");
    return attachByRememberedSection(this);
  }

  /** What an attach function needs of this program (refused if it is closed). */
  #attaching(operation: string): AttachingProgram {
    const fd = this.#openFd(operation);
    return { kernel: this.#kernel, fd, type: this.type, description: this.#describe(), operation };
  }

  /** Pins the program in bpffs at `path` (`BPF_OBJ_PIN`). */
  pin(path: string): void {
    const fd = this.#openFd("pin");
    pinFd(this.#kernel, fd, checkPath(path), `${this.#describe()} at ${path}`);
  }

  /** Closes the program's fd: the kernel unloads it once nothing else holds it. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    unclosed.unregister(this);
    this.#kernel.close(this.#fd);
    this.#fd = -1;
  }

  /** Closes the program at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The program as messages name it: `xdp program "pass" (id 12)`. */
  toString(): string {
    return this.#describe();
  }

  #describe(): string {
    return `${progTypeName(this.type)} program${
      this.name ? ` "${this.name}"` : ""
    } (id ${this.id})`;
  }

  #openFd(operation: string): number {
    if (this.#fd < 0) throw new TypeError(`${operation}: ${this.#describe()} is closed`);
    return this.#fd;
  }
}

/**
 * The ids of every program on the system, ascending (`BPF_PROG_GET_NEXT_ID`).
 * Needs CAP_SYS_ADMIN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listProgramIds, Program } from "../mod.ts";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "socket_filter", instructions, license: "GPL" });
 * const ids = listProgramIds();
 * assert.ok(ids.includes(program.id));
 * assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
 * ```
 */
export function listProgramIds(kernel: Kernel = liveKernel()): number[] {
  return listObjectIds(kernel, BPF_PROG_GET_NEXT_ID);
}

/**
 * Reads a program's info, then its map ids with a second call sized by
 * `nr_map_ids` (the kernel copies at most the room it is given); with
 * `withMapIds` false, the first call only, and `mapIds` empty.
 *
 * @throws {BpfError} if the kernel refuses.
 */
export function readProgramInfo(kernel: Kernel, fd: number, withMapIds = true): ProgramInfo {
  const info = offHeapBytes(BPF_PROG_INFO.size);
  const fail = (result: number) => {
    throw new BpfError(BPF_OBJ_GET_INFO_BY_FD.name, -result, `program fd ${fd}`);
  };
  const result = objGetInfoByFd(kernel, fd, info, BPF_PROG_INFO);
  if (result < 0) fail(result);
  const { nr_map_ids, map_ids } = BPF_PROG_INFO.fields;
  const count = readU32(info, nr_map_ids);
  let mapIds: number[] = [];
  if (count > 0 && withMapIds) {
    const ids = offHeapBytes(count * 4);
    info.fill(0);
    new DataView(info.buffer, info.byteOffset).setUint32(nr_map_ids.offset, count, true);
    const again = objGetInfoByFd(kernel, fd, info, BPF_PROG_INFO, [[map_ids, ids]]);
    if (again < 0) fail(again);
    // A map freed in between leaves fewer.
    const view = new DataView(ids.buffer, ids.byteOffset, ids.byteLength);
    mapIds = Array.from(
      { length: Math.min(count, readU32(info, nr_map_ids)) },
      (_, i) => view.getUint32(4 * i, true),
    );
  }
  return decodeProgramInfo(info, mapIds);
}

/** Bit 0 of the u32 after `ifindex`: `gpl_compatible`, a bitfield the layout cannot name. */
const GPL_COMPATIBLE_OFFSET = BPF_PROG_INFO.fields.ifindex.offset + 4;

/**
 * Decodes the bytes of a `struct bpf_prog_info` (and the map ids read beside it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_PROG_INFO } from "../ffi/commands.ts";
 * import { decodeProgramInfo } from "./program.ts";
 *
 * const bytes = new Uint8Array(BPF_PROG_INFO.size);
 * bytes[BPF_PROG_INFO.fields.type.offset] = 6;
 * bytes.set([0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1], BPF_PROG_INFO.fields.tag.offset);
 * bytes.set(new TextEncoder().encode("pass"), BPF_PROG_INFO.fields.name.offset);
 * bytes[BPF_PROG_INFO.fields.ifindex.offset + 4] = 1;
 * const info = decodeProgramInfo(bytes, [7]);
 * assert.deepEqual(
 *   [info.typeName, info.tag, info.name, info.gplCompatible, info.mapIds],
 *   ["xdp", "deadbeef00000001", "pass", true, [7]],
 * );
 * ```
 */
export function decodeProgramInfo(info: Uint8Array, mapIds: number[]): ProgramInfo {
  const { fields } = BPF_PROG_INFO;
  const u32 = (field: Field) => readU32(info, field);
  const u64 = (field: Field) => readU64(info, field);
  const tag = info.subarray(fields.tag.offset, fields.tag.offset + fields.tag.size);
  const type = u32(fields.type);
  return {
    type,
    typeName: progTypeName(type),
    id: u32(fields.id),
    tag: Array.from(tag, (byte) => byte.toString(16).padStart(2, "0")).join(""),
    name: readChars(info, fields.name),
    jitedLength: u32(fields.jited_prog_len),
    xlatedLength: u32(fields.xlated_prog_len),
    loadTime: u64(fields.load_time),
    createdByUid: u32(fields.created_by_uid),
    mapIds,
    ifindex: u32(fields.ifindex),
    gplCompatible: (info[GPL_COMPATIBLE_OFFSET]! & 1) === 1,
    netnsDev: u64(fields.netns_dev),
    netnsIno: u64(fields.netns_ino),
    btfId: u32(fields.btf_id),
    funcInfoCount: u32(fields.nr_func_info),
    lineInfoCount: u32(fields.nr_line_info),
    verifiedInsns: u32(fields.verified_insns),
    attachBtfObjId: u32(fields.attach_btf_obj_id),
    attachBtfId: u32(fields.attach_btf_id),
    runTimeNs: u64(fields.run_time_ns),
    runCount: u64(fields.run_cnt),
    recursionMisses: u64(fields.recursion_misses),
  };
}

/** A load's fields after their checks, all numbers and strings the kernel takes. */
interface CheckedSpec {
  type: number;
  instructions: Uint8Array;
  license: string;
  name: string;
  expectedAttachType: number;
  kernelVersion: number;
  flags: number;
  logLevel: number;
  btfFd: number;
  /** The records as the kernel reads them, off-heap, or `null`. */
  funcInfo: Uint8Array | null;
  lineInfo: Uint8Array | null;
  attachBtfId: number;
  ifindex: number;
}

function checkSpec(spec: ProgramSpec): CheckedSpec {
  if (spec === null || typeof spec !== "object") {
    throw new TypeError(`spec must be an object, got ${describe(spec)}`);
  }
  const instructions = spec.instructions;
  if (!(instructions instanceof Uint8Array)) {
    throw new TypeError(
      `spec.instructions: expected a Uint8Array of 8-byte instructions, got ${
        describe(instructions)
      }`,
    );
  }
  // Read through the engine's own getter: an overridden byteLength cannot lie about the size.
  const length = byteLengthOf(instructions);
  if (length === 0 || length % 8 !== 0 || length > MAX_INSNS * 8) {
    throw new RangeError(
      `spec.instructions: expected 1 to ${MAX_INSNS} whole 8-byte instructions, got ${length} bytes`,
    );
  }
  const license = spec.license;
  if (typeof license !== "string" || license === "" || !/^[\x20-\x7e]{1,127}$/.test(license)) {
    throw new TypeError(
      `spec.license: expected a printable ASCII string such as "GPL", got ${describe(license)}`,
    );
  }
  const name = spec.name ?? "";
  if (typeof name !== "string" || !/^[A-Za-z0-9_.]{0,15}$/.test(name)) {
    throw new TypeError(
      `spec.name: expected at most 15 characters of A-Z, a-z, 0-9, _ and ., got ${describe(name)}`,
    );
  }
  const btf = spec.btf;
  if (btf !== undefined && (btf === null || typeof btf !== "object" || !(btf.fd > 0))) {
    throw new TypeError(`spec.btf: expected an open Btf, got ${describe(btf)}`);
  }
  const count = length / 8;
  return {
    type: progTypeNumber(spec.type, "spec.type"),
    instructions: instructions.slice(0, length),
    license,
    name,
    expectedAttachType: spec.expectedAttachType === undefined
      ? 0
      : attachTypeNumber(spec.expectedAttachType, "spec.expectedAttachType"),
    kernelVersion: checkInteger(spec.kernelVersion ?? 0, "spec.kernelVersion"),
    flags: checkInteger(spec.flags ?? 0, "spec.flags"),
    logLevel: checkInteger(spec.logLevel ?? 0, "spec.logLevel", 0, 7),
    btfFd: btf?.fd ?? 0,
    funcInfo: btfRecords(spec.funcInfo, "spec.funcInfo", btf, count, 8, (view, at, r) => {
      view.setUint32(at + 4, checkInteger(r.typeId, "spec.funcInfo[].typeId", 1), true);
    }),
    lineInfo: btfRecords(spec.lineInfo, "spec.lineInfo", btf, count, 16, (view, at, r) => {
      view.setUint32(
        at + 4,
        checkInteger(r.fileNameOffset, "spec.lineInfo[].fileNameOffset"),
        true,
      );
      view.setUint32(at + 8, checkInteger(r.lineOffset, "spec.lineInfo[].lineOffset"), true);
      const line = checkInteger(r.line, "spec.lineInfo[].line", 0, 0x3f_ffff);
      view.setUint32(
        at + 12,
        line * 1024 + checkInteger(r.column, "spec.lineInfo[].column", 0, 1023),
        true,
      );
    }),
    attachBtfId: checkInteger(spec.attachBtfId ?? 0, "spec.attachBtfId"),
    ifindex: checkInteger(spec.ifindex ?? 0, "spec.ifindex"),
  };
}

/**
 * `records` as the kernel reads them: `size` bytes each, off-heap, their
 * instruction offsets ascending within the program's `count` instructions
 * (`write` fills the rest of each); `null` for none. They need the BTF
 * they refer to.
 */
function btfRecords<T extends { readonly insn: number }>(
  records: readonly T[] | undefined,
  argument: string,
  btf: Btf | undefined,
  count: number,
  size: number,
  write: (view: DataView, at: number, record: T) => void,
): Uint8Array | null {
  if (records === undefined) return null;
  if (!Array.isArray(records)) {
    throw new TypeError(`${argument}: expected an array of records, got ${describe(records)}`);
  }
  if (btf === undefined) throw new TypeError(`${argument}: needs spec.btf, the BTF it refers to`);
  if (records.length === 0) return null;
  const bytes = offHeapBytes(records.length * size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let last = -1;
  records.forEach((record, i) => {
    if (record === null || typeof record !== "object") {
      throw new TypeError(`${argument}[${i}]: expected a record, got ${describe(record)}`);
    }
    // The kernel wants them strictly ascending inside the program, the first at the program's
    // start (EINVAL otherwise).
    const insn = checkInteger(record.insn, `${argument}[${i}].insn`, last + 1, i ? count - 1 : 0);
    view.setUint32(i * size, insn, true); // an index: .BTF.ext's bytes / 8
    write(view, i * size, record);
    last = insn;
  });
  return bytes;
}

/** A load's call, as `progLoad` takes it, before the log fields. */
type LoadCall = Omit<Parameters<typeof progLoad>[1], "log" | "logLevel" | "logTrueSize">;

/**
 * One load at `logLevel`; with a log, grown on ENOSPC (to the size the
 * kernel says it needed, Linux 6.4's `log_true_size`, else twice) up to
 * {@linkcode MAX_LOG_SIZE}. The fd or `-errno`, and the log's text.
 */
function loadLogged(kernel: Kernel, call: LoadCall, logLevel: number): { fd: number; log: string } {
  if (logLevel === 0) return { fd: progLoad(kernel, { ...call, logLevel }), log: "" };
  for (let size = FIRST_LOG_SIZE;;) {
    const log = offHeapBytes(size);
    const full = { ...call, logLevel, log, logTrueSize: 0 };
    const fd = progLoad(kernel, full);
    if (fd === -ENOSPC && size < MAX_LOG_SIZE) {
      size = Math.min(MAX_LOG_SIZE, Math.max(size * 2, full.logTrueSize));
      continue;
    }
    const end = log.indexOf(0);
    return { fd, log: decoder.decode(log.subarray(0, end === -1 ? size : end)) };
  }
}

function checkRun(opts: TestRunOptions) {
  if (opts === null || typeof opts !== "object") {
    throw new TypeError(`opts must be an object, got ${describe(opts)}`);
  }
  const bytes = (value: unknown, argument: string): Uint8Array | undefined => {
    if (value === undefined) return undefined;
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`${argument}: expected a Uint8Array, got ${describe(value)}`);
    }
    return value.slice(0, byteLengthOf(value));
  };
  const data = bytes(opts.data, "opts.data");
  const dataOutSize = opts.dataOutSize === undefined
    ? undefined
    : checkInteger(opts.dataOutSize, "opts.dataOutSize", 0, 0x7fff_ffff);
  if (dataOutSize !== undefined && data === undefined) {
    throw new TypeError("opts.dataOutSize: there is no opts.data to size");
  }
  return {
    data,
    ctx: bytes(opts.ctx, "opts.ctx"),
    dataOutSize,
    repeat: checkInteger(opts.repeat ?? 0, "opts.repeat"),
    flags: checkInteger(opts.flags ?? 0, "opts.flags"),
    cpu: checkInteger(opts.cpu ?? 0, "opts.cpu"),
  };
}

function offHeapCopy(bytes: Uint8Array): Uint8Array {
  const copy = offHeapBytes(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
