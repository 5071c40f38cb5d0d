/**
 * The kernel as bpfmap's maps see it: one backend, one reusable attr per
 * command, and the one method through which every `bpf()` call passes. A
 * recorder or player stands in by bringing another backend.
 *
 * @module
 */

import { Attr } from "./attr.ts";
import type { SyscallBackend } from "./backend.ts";
import { BPF_PROG_LOAD, type Command, type Field } from "./commands.ts";
import { EAGAIN, EINTR } from "./errno.ts";
import { BpfError } from "./errors.ts";
import { openLiveBackend } from "./live.ts";
import { addressOf } from "./memory.ts";
import { countCpuList } from "./percpu.ts";

/** How many times an interrupted call is asked again before EINTR is reported. */
export const MAX_EINTR_RETRIES = 16;

/** Where the kernel lists the CPUs a per-CPU value has a slot for. */
export const POSSIBLE_CPUS_PATH = "/sys/devices/system/cpu/possible";

/**
 * A backend with its attrs. Calls are synchronous and JavaScript runs one at
 * a time per thread, so one attr per command serves every map.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { BPF_MAP_FREEZE } from "./commands.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 * const kernel = liveKernel();
 * const attr = kernel.attr(BPF_MAP_FREEZE);
 * attr.setU32(BPF_MAP_FREEZE.fields.map_fd, map.fd);
 * assert.equal(kernel.call(attr), 0);
 * attr.setU32(BPF_MAP_FREEZE.fields.map_fd, map.fd);
 * assert.equal(kernel.call(attr), -1); // -EPERM: frozen already
 * ```
 */
export class Kernel {
  /** How calls reach the kernel. */
  readonly backend: SyscallBackend;
  /**
   * Whether a map dropped without `close()` has its fd closed when collected.
   * Off for recording and replaying kernels: a close at a moment the garbage
   * collector chooses would make a transcript differ from run to run.
   */
  readonly closesLeakedFds: boolean;
  readonly #attrs = new Map<Command, Attr>();
  #possibleCpus: number | undefined;

  constructor(backend: SyscallBackend, opts: { closesLeakedFds?: boolean } = {}) {
    this.backend = backend;
    this.closesLeakedFds = opts.closesLeakedFds ?? true;
  }

  /** The attr of `command`, with whatever the previous call left in it. */
  attr<F extends string>(command: Command<F>): Attr<F> {
    let attr = this.#attrs.get(command);
    if (attr === undefined) {
      attr = new Attr(command, this.backend);
      this.#attrs.set(command, attr);
    }
    return attr as Attr<F>;
  }

  /**
   * Issues the call `attr` describes. Returns the kernel's result, or
   * `-errno`; the pointed-to buffers are released once the call is over.
   */
  call(attr: Attr): number {
    // The count as asked, read before the kernel can write it back.
    const count = attr.countField;
    const requested = count === undefined ? 0 : attr.getU32(count);
    const result = this.#issue(attr, count, requested);
    attr.release();
    return result;
  }

  /**
   * {@linkcode Kernel.call} for an attr packed once (`Attr.packedOnce`: an
   * element command, which has no count and keeps its pointees bound).
   */
  callPacked(attr: Attr): number {
    return this.#issue(attr, undefined, 0);
  }

  #issue(attr: Attr, count: Field | undefined, requested: number): number {
    let result = this.backend.bpf(attr);
    if (result === -EINTR) result = this.#retryInterrupted(attr, result, count, requested);
    // The verifier gives up with EAGAIN when a signal is pending (a profiler's SIGPROF): libbpf's
    // sys_bpf_prog_load asks again, 5 attempts in all (PROG_LOAD_ATTEMPTS).
    for (
      let tries = 1;
      result === -EAGAIN && attr.command === BPF_PROG_LOAD && tries < 5;
      tries++
    ) {
      result = this.backend.bpf(attr);
    }
    return result;
  }

  /**
   * A signal interrupted the call: ask again, as cilium/ebpf's `BPF()`
   * wrapper does, but only while the kernel provably did nothing: a batch
   * call whose count was written back has done part of its work, which the
   * caller must hear about (a `BatchError` with `processed`), not redo.
   */
  #retryInterrupted(
    attr: Attr,
    result: number,
    count: Field | undefined,
    requested: number,
  ): number {
    for (let tries = 1; result === -EINTR && tries <= MAX_EINTR_RETRIES; tries++) {
      if (count !== undefined && attr.getU32(count) !== requested) break;
      result = this.backend.bpf(attr);
    }
    return result;
  }

  /** Like {@linkcode Kernel.call}, but a failure becomes a {@linkcode BpfError}. */
  callOrThrow(attr: Attr, detail?: string): number {
    const result = this.call(attr);
    if (result < 0) throw new BpfError(attr.command.name, -result, detail);
    return result;
  }

  /** The address of `bytes[0]` for this backend (see `addressOf`). */
  addressOf(bytes: Uint8Array): number {
    return addressOf(this.backend, bytes);
  }

  /** Closes a file descriptor the kernel handed out; 0 or `-errno`. */
  close(fd: number): number {
    return this.backend.close(fd);
  }

  /** How many CPUs may ever be online: the number of slots in a per-CPU value. Read once. */
  possibleCpus(): number {
    this.#possibleCpus ??= countCpuList(this.backend.readTextFile(POSSIBLE_CPUS_PATH));
    return this.#possibleCpus;
  }
}

let live: Kernel | undefined;

/**
 * The process's live kernel, opened on first use.
 *
 * @throws {Error} where live BPF is impossible (see `openLiveBackend`).
 */
export function liveKernel(): Kernel {
  live ??= new Kernel(openLiveBackend());
  return live;
}

/**
 * Replaces the process's live kernel with `kernel`, or, with `undefined`,
 * lets the next {@linkcode liveKernel} open the real one again. For tests
 * that stand in for the machine (another CPU count, say): systems opened
 * with `openSystem` never use this kernel, so a replay is unaffected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forwardingBackend } from "./backend.ts";
 * import { Kernel, liveKernel, POSSIBLE_CPUS_PATH, setLiveKernel } from "./kernel.ts";
 *
 * const real = liveKernel().backend;
 * setLiveKernel(new Kernel(Object.assign(forwardingBackend(() => real), {
 *   readTextFile: (path: string) => path === POSSIBLE_CPUS_PATH ? "0-7\n" : real.readTextFile(path),
 * })));
 * assert.equal(liveKernel().possibleCpus(), 8);
 * setLiveKernel(undefined);
 * assert.notEqual(liveKernel().backend, undefined);
 * ```
 */
export function setLiveKernel(kernel: Kernel | undefined): void {
  live = kernel;
}
