/**
 * Perf event links: a tracepoint, kprobe or uprobe opened with
 * `perf_event_open` (through the kernel's backend, so a recorded run
 * replays it), then a program attached to the event with `BPF_LINK_CREATE`
 * (attach type `perf_event`), as libbpf does on kernels since 5.15. The link
 * holds the event: the event's own fd is closed once the link exists, and
 * closing the link detaches the program and frees the event.
 *
 * @module
 */

import { kernelArch } from "../ffi/arch.ts";
import type { Attr } from "../ffi/attr.ts";
import { primitivesOf } from "../ffi/backend.ts";
import { BPF_LINK_CREATE_PERF_EVENT, type Command } from "../ffi/commands.ts";
import { BpfError } from "../ffi/errors.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { currentPlatform } from "../ffi/live.ts";
import { cString } from "../ffi/memory.ts";
import {
  KPROBE_TYPE_PATH,
  PERF_EVENT_ATTR,
  PERF_FLAG_FD_CLOEXEC,
  PERF_TYPE_TRACEPOINT,
  perfEventAttr,
  UPROBE_TYPE_PATH,
} from "../ffi/perf_event.ts";
import { attachTypeNumber } from "../ffi/prog_types.ts";
import { checkInteger, describe } from "../ffi/validate.ts";
import { uprobeOffset } from "./attach_uprobe_target.ts";
import {
  type AttachingProgram,
  checkOptions,
  createLink,
  expectProgramType,
  Link,
  type LinkTarget,
} from "./link.ts";

/** Where tracefs lists each tracepoint's id (`<category>/<name>/id`), mounted or automounted. */
export const TRACEFS_EVENTS = ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"];

/** Options of every perf event link: `attachTracepoint`, `attachKprobe`, `attachUprobe`. */
export interface PerfLinkOptions {
  /**
   * A BPF cookie: a u64 the link hands the program, which
   * `bpf_get_attach_cookie(ctx)` returns, so one program attached at many
   * places tells them apart (`BPF_LINK_CREATE`'s `perf_event.bpf_cookie`).
   * Default: none (0).
   */
  cookie?: bigint | number;
}

/** Options of `Program.attachTracepoint`. */
export type TracepointAttachOptions = PerfLinkOptions;

/** Options of `Program.attachKprobe` and `attachKsyscall`. */
export interface KprobeAttachOptions extends PerfLinkOptions {
  /** A kretprobe: the program runs when the function returns. */
  retprobe?: boolean;
  /** Bytes into the function (`kprobe/fn+0x10`), for a kprobe. */
  offset?: number;
}

/** Options of `Program.attachUprobe`. */
export interface UprobeAttachOptions extends PerfLinkOptions {
  /** An uretprobe: the program runs when the function returns. */
  retprobe?: boolean;
  /** Only in this process (default: every process that runs the file). */
  pid?: number;
}

/** A name the kernel reads as a path segment or symbol: no `/`, no NUL, no `..`. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.]{0,254}$/;

function checkName(value: unknown, argument: string): string {
  if (typeof value !== "string" || !NAME.test(value)) {
    throw new TypeError(
      `${argument}: expected a name of A-Z, a-z, 0-9, _ and . (not starting with .), got ${
        describe(value)
      }`,
    );
  }
  return value;
}

/** A file's text through the backend; `undefined` if it cannot be read (ENOENT: not there). */
function readText(kernel: Kernel, path: string): string | undefined {
  try {
    return new TextDecoder().decode(primitivesOf(kernel.backend).readFile(path));
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * A dynamic PMU's type and its `retprobe` config bit, from sysfs.
 *
 * @throws {Error} when the kernel has no such PMU (a kernel without `CONFIG_KPROBES` has no kprobe).
 */
function probePmu(kernel: Kernel, path: string, what: string): { type: number; retprobe: number } {
  const type = readText(kernel, path);
  if (type === undefined) {
    throw new Error(
      `${what}: this kernel has no ${path.split("/").at(-2)} PMU (${path} is missing: `
        + `a kernel built without CONFIG_${path.includes("kprobe") ? "KPROBES" : "UPROBE_EVENTS"})`,
    );
  }
  const format = readText(kernel, path.replace(/type$/, "format/retprobe")) ?? "config:0";
  const bit = /^config:(\d+)/.exec(format.trim());
  return { type: Number(type.trim()), retprobe: Number(bit?.[1] ?? 0) };
}

/**
 * What a dynamic probe PMU (kprobe, uprobe) is opened with: its type, the
 * retprobe bit of its config, the function's name or the binary's path
 * (config1, a pointer) and the offset into it (config2), as libbpf's
 * `perf_event_open_probe` fills them.
 */
function probeAttr(
  pmu: { type: number; retprobe: number },
  retprobe: boolean | undefined,
  target: string,
  offset: number,
): (attr: ReturnType<typeof perfEventAttr>) => void {
  return (attr) => {
    attr.setU32(PERF_EVENT_ATTR.fields.type, pmu.type);
    attr.setU64(PERF_EVENT_ATTR.fields.config, retprobe ? 2 ** pmu.retprobe : 0);
    attr.setPointer(PERF_EVENT_ATTR.fields.config1, cString(target));
    attr.setU64(PERF_EVENT_ATTR.fields.config2, offset);
  };
}

/** The plain head of every `BPF_LINK_CREATE` shape. */
type LinkCreateHead = "prog_fd" | "target_ifindex" | "attach_type" | "flags";

/**
 * Attaches `progFd` with `BPF_LINK_CREATE` in one of its wider shapes
 * (`shape`: `BPF_LINK_CREATE_PERF_EVENT`, `_TCX`, `_ITER`), `fill` writing
 * the fields past the plain head, and takes the new link's fd over as
 * `Link.fromFd` does. A call that needs none of those fields makes the plain
 * `createLink`, whose 20 bytes every kernel since 5.7 reads.
 *
 * @throws {BpfError} when the kernel refuses, named by `what`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_LINK_CREATE_TCX } from "../ffi/commands.ts";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { attachTypeNumber } from "../ffi/prog_types.ts";
 * import { Program } from "../mod.ts";
 * import { createShapedLink } from "./attach_perf_link.ts";
 *
 * // r0 = TCX_NEXT; exit, on loopback's tcx ingress, last (BPF_F_AFTER), at any revision.
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "sched_cls", instructions, license: "GPL" });
 * const target = { target: 1, attachType: attachTypeNumber("tcx_ingress"), flags: 1 << 4 };
 * const { relative_fd, expected_revision } = BPF_LINK_CREATE_TCX.fields;
 * using link = createShapedLink(liveKernel(), program.fd, BPF_LINK_CREATE_TCX, target, (attr) => {
 *   attr.setU32(relative_fd, 0);
 *   attr.setBigU64(expected_revision, 0n);
 * }, "pass on lo");
 * assert.equal(link.info().attachType, "tcx_ingress");
 * ```
 */
export function createShapedLink<F extends string>(
  kernel: Kernel,
  progFd: number,
  shape: Command<F | LinkCreateHead>,
  link: LinkTarget,
  fill: (attr: Attr<F | LinkCreateHead>) => void,
  what: string,
): Link {
  const { fields } = shape;
  const attr = kernel.attr(shape);
  attr.clear();
  attr.setU32(fields.prog_fd, progFd);
  attr.setU32(fields.target_ifindex, link.target);
  attr.setU32(fields.attach_type, link.attachType);
  attr.setU32(fields.flags, link.flags ?? 0);
  fill(attr);
  const fd = kernel.call(attr);
  if (fd < 0) throw new BpfError(shape.name, -fd, what);
  return Link.fromFd(fd, kernel);
}

/** `opts.cookie` as a u64, or `undefined` for none (checked before any call). */
function checkCookie(cookie: unknown): bigint | undefined {
  if (cookie === undefined) return undefined;
  const value = typeof cookie === "number" && Number.isSafeInteger(cookie)
    ? BigInt(cookie)
    : cookie;
  if (typeof value !== "bigint" || value < 0n || value >= 1n << 64n) {
    throw new RangeError(
      `opts.cookie: expected a u64 (a bigint or safe integer), got ${describe(cookie)}`,
    );
  }
  return value;
}

/**
 * Opens a perf event with the attr `fill` writes (pid -1 and CPU 0 for a
 * tracepoint or probe: the program runs on every CPU all the same), attaches
 * the program to it with a link (with `cookie`, the wider shape that carries
 * it), and closes the event's fd (the link holds it).
 */
function attachToPerfEvent(
  program: AttachingProgram,
  fill: (attr: ReturnType<typeof perfEventAttr>) => void,
  pid: number,
  what: string,
  cookie: bigint | undefined,
): Link {
  const { kernel } = program;
  const primitives = primitivesOf(kernel.backend);
  const attr = perfEventAttr(kernel.backend);
  fill(attr);
  const cpu = pid === -1 ? 0 : -1;
  const event = primitives.perfEventOpen(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  attr.release();
  if (event < 0) throw new BpfError("perf_event_open", -event, what);
  try {
    const link = { target: event, attachType: attachTypeNumber("perf_event") };
    if (cookie === undefined) return createLink(kernel, program.fd, link, what);
    const { bpf_cookie } = BPF_LINK_CREATE_PERF_EVENT.fields;
    return createShapedLink(kernel, program.fd, BPF_LINK_CREATE_PERF_EVENT, link, (attr) => {
      attr.setBigU64(bpf_cookie, cookie);
    }, what);
  } finally {
    kernel.close(event);
  }
}

/**
 * Attaches a `tracepoint` program to tracepoint `category`/`name`
 * (`"syscalls"`, `"sys_enter_kill"`): its id read from tracefs, a perf
 * event opened on it, a link made.
 *
 * @throws {TypeError} for bad names or program types (before any call), or a
 * tracepoint tracefs does not list.
 * @throws {BpfError} when the kernel refuses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Program } from "../mod.ts";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "tracepoint", instructions, license: "GPL" });
 * // Refused before any call: a name is never a path.
 * assert.throws(() => program.attachTracepoint("syscalls", "../../x"), TypeError);
 * ```
 */
export function attachTracepoint(
  program: AttachingProgram,
  category: string,
  name: string,
  opts?: TracepointAttachOptions,
): Link {
  expectProgramType(program, ["tracepoint"]);
  checkName(category, "category");
  checkName(name, "name");
  const cookie = checkCookie(checkOptions(opts).cookie);
  const what = `${program.description} on tracepoint ${category}/${name}`;
  let id: string | undefined;
  for (const events of TRACEFS_EVENTS) {
    id = readText(program.kernel, `${events}/${category}/${name}/id`);
    if (id !== undefined) break;
  }
  if (id === undefined) {
    throw new TypeError(
      `${what}: no such tracepoint in ${TRACEFS_EVENTS.join(" or ")} `
        + `(is tracefs mounted? mount -t tracefs nodev /sys/kernel/tracing)`,
    );
  }
  return attachToPerfEvent(
    program,
    (attr) => {
      attr.setU32(PERF_EVENT_ATTR.fields.type, PERF_TYPE_TRACEPOINT);
      attr.setU64(PERF_EVENT_ATTR.fields.config, Number(id!.trim()));
    },
    -1,
    what,
    cookie,
  );
}

/**
 * Attaches a `kprobe` program to kernel function `fn` (its entry, or its
 * return with `retprobe`) through the kprobe PMU.
 *
 * @throws {Error} when the kernel has no kprobe PMU (`CONFIG_KPROBES` off).
 * @throws {BpfError} when the kernel refuses (ENOENT: no such function).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { KPROBE_TYPE_PATH } from "../ffi/perf_event.ts";
 * import { Program } from "../mod.ts";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "kprobe", instructions, license: "GPL" });
 * const hasKprobes = (() => {
 *   try {
 *     return liveKernel().backend.readTextFile(KPROBE_TYPE_PATH) !== "";
 *   } catch {
 *     return false;
 *   }
 * })();
 * if (hasKprobes) {
 *   using link = program.attachKprobe("do_sys_openat2", { retprobe: true });
 *   assert.equal(link.info().perfEventType, "kretprobe");
 * } else {
 *   // A kernel built without CONFIG_KPROBES, this one among them.
 *   assert.throws(() => program.attachKprobe("do_sys_openat2"), /this kernel has no kprobe PMU/);
 * }
 * ```
 */
export function attachKprobe(
  program: AttachingProgram,
  fn: string,
  opts?: KprobeAttachOptions,
): Link {
  expectProgramType(program, ["kprobe"]);
  checkName(fn, "fn");
  const { retprobe: asked, offset = 0, cookie: given } = checkOptions(opts);
  const retprobe = checkFlag(asked, "opts.retprobe");
  const cookie = checkCookie(given);
  checkInteger(offset, "opts.offset", 0, 0xffff_ffff);
  // The kernel takes a kretprobe at a function's entry only (it would refuse at the attach).
  if (retprobe && offset > 0) {
    throw new RangeError(`opts.offset: a kretprobe is placed at ${fn}'s entry, not at +${offset}`);
  }
  const what = `${program.description} on ${retprobe ? "kretprobe" : "kprobe"} ${fn}`;
  const pmu = probePmu(program.kernel, KPROBE_TYPE_PATH, what);
  return attachToPerfEvent(
    program,
    probeAttr(pmu, retprobe, fn, offset),
    -1,
    what,
    cookie,
  );
}

/** The prefix of syscall entry points by kernel architecture (libbpf's `arch_specific_syscall_pfx`). */
const SYSCALL_PREFIXES: Readonly<Record<string, string>> = {
  x86_64: "__x64_sys_",
  aarch64: "__arm64_sys_",
  s390x: "__s390x_sys_",
  riscv64: "__riscv_sys_",
  ppc64le: "sys_",
};

/**
 * Attaches a `kprobe` program to system call `name` (`"openat"`): a kprobe
 * on its entry point, `__x64_sys_openat` on x86_64, as libbpf's ksyscall.
 */
export function attachKsyscall(
  program: AttachingProgram,
  name: string,
  opts?: KprobeAttachOptions,
): Link {
  checkName(name, "name");
  const arch = kernelArch(currentPlatform().arch);
  return attachKprobe(program, `${SYSCALL_PREFIXES[arch] ?? "sys_"}${name}`, opts);
}

/**
 * Attaches a `kprobe` program to function `symbol` of the ELF file at `path`
 * (an executable or shared library; a number is a file offset): it runs
 * each time a process (or only `opts.pid`) calls it, or returns from it with
 * `retprobe`. The symbol's offset is read from the file through the backend.
 *
 * @throws {TypeError} for bad input (before any call), or a symbol the file lacks.
 * @throws {BpfError} when the kernel refuses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { Program } from "../mod.ts";
 *
 * // The C library this process runs with (its maps read through libc: Deno grants /proc to
 * // --allow-all only); r0 = 0; exit.
 * const maps = liveKernel().backend.readTextFile("/proc/self/maps");
 * const libc = /\s(\/\S*libc\.so\.6)$/m.exec(maps)![1]!;
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using program = Program.load({ type: "kprobe", instructions, license: "GPL" });
 * using link = program.attachUprobe(libc, "getpid", { retprobe: true, pid: 1 });
 * assert.equal(link.info().perfEventType, "uretprobe");
 * assert.throws(() => program.attachUprobe("libc.so.6", "getpid"), /expected an absolute path/);
 * ```
 */
export function attachUprobe(
  program: AttachingProgram,
  path: string,
  symbol: string | number,
  opts?: UprobeAttachOptions,
): Link {
  expectProgramType(program, ["kprobe"]);
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
    throw new TypeError(`path: expected an absolute path to an ELF file, got ${describe(path)}`);
  }
  const { retprobe, pid = -1, cookie: given } = checkOptions(opts);
  checkFlag(retprobe, "opts.retprobe");
  const cookie = checkCookie(given);
  if (pid !== -1) checkInteger(pid, "opts.pid", 1, 0x7fff_ffff);
  if (typeof symbol === "number") checkInteger(symbol, "symbol", 0, Number.MAX_SAFE_INTEGER);
  else checkName(symbol, "symbol");
  const what = `${program.description} on ${retprobe ? "uretprobe" : "uprobe"} ${path}:${symbol}`;
  const pmu = probePmu(program.kernel, UPROBE_TYPE_PATH, what);
  const offset = typeof symbol === "number"
    ? symbol
    : uprobeOffset(primitivesOf(program.kernel.backend).readFile(path), symbol, path);
  return attachToPerfEvent(
    program,
    probeAttr(pmu, retprobe, path, offset),
    pid,
    what,
    cookie,
  );
}

function checkFlag(value: unknown, argument: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(`${argument}: expected a boolean, got ${describe(value)}`);
  }
  return value;
}
