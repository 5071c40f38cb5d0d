/**
 * The running kernel's BTF, as CO-RE relocations and ksym externs resolve
 * against it: vmlinux (`/sys/kernel/btf/vmlinux`), and the split BTF of
 * each loaded module (`/sys/kernel/btf/<module>`, on top of vmlinux), read
 * once per kernel through its backend, so a recorded run replays them.
 *
 * @module
 */

import { primitivesOf } from "../ffi/backend.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { type BtfKind, type BtfType, parseBtf, parseSplitBtf } from "./types.ts";

/** Where the kernel exposes its own BTF. */
export const KERNEL_BTF_PATH = "/sys/kernel/btf/vmlinux";
/** The loaded modules, one a line, name first (absent on a kernel without `CONFIG_MODULES`). */
export const MODULES_PATH = "/proc/modules";

/**
 * libbpf's "essential name" of a type, field or enumerator: its name
 * without a `___flavor` suffix (`task_struct___old` is `task_struct`), so
 * one program can carry several local layouts of one kernel type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { essentialName } from "./kernel_btf.ts";
 * assert.equal(essentialName("task_struct___v5_10"), "task_struct");
 * assert.equal(essentialName("a___b___c"), "a___b"); // the last ___ suffix only
 * assert.equal(essentialName("__u32"), "__u32");
 * assert.equal(essentialName("x____y"), "x____y"); // four underscores: no flavor
 * ```
 */
export function essentialName(name: string): string {
  // The separator is X___Y: three underscores, neither end an underscore.
  for (let i = name.length - 5; i >= 0; i--) {
    if (
      name[i] !== "_" && name[i + 1] === "_" && name[i + 2] === "_" && name[i + 3] === "_"
      && name[i + 4] !== "_"
    ) {
      return name.slice(0, i + 1);
    }
  }
  return name;
}

/**
 * One BTF with its types indexed by essential name once (vmlinux holds
 * over 100,000 types): vmlinux, or a module's split BTF, whose own types
 * start at `firstId` (the ids before are vmlinux's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IndexedBtf } from "./kernel_btf.ts";
 * import { VOID } from "./types.ts";
 *
 * const btf = new IndexedBtf("demo", [
 *   VOID,
 *   { kind: "struct", name: "task", size: 0, members: [] },
 *   { kind: "struct", name: "task___old", size: 0, members: [] },
 *   { kind: "typedef", name: "task", type: 1 },
 * ]);
 * assert.deepEqual(btf.withEssentialName("task"), [1, 2, 3]);
 * assert.deepEqual(btf.named("task", "typedef"), [3]);
 * assert.deepEqual(btf.named("nothing"), []);
 * ```
 */
export class IndexedBtf {
  /** `"vmlinux"`, or the module's name. */
  readonly name: string;
  /** Every type by id, vmlinux's included for a module. */
  readonly types: readonly BtfType[];
  /** The first id of this BTF's own types: 1 for vmlinux. */
  readonly firstId: number;
  #byEssentialName: Map<string, number[]> | undefined;

  constructor(name: string, types: readonly BtfType[], firstId = 1) {
    this.name = name;
    this.types = types;
    this.firstId = firstId;
  }

  /** The ids of this BTF's own named types whose essential name is `essential`, in id order. */
  withEssentialName(essential: string): readonly number[] {
    if (this.#byEssentialName === undefined) {
      const index = new Map<string, number[]>();
      for (let id = this.firstId; id < this.types.length; id++) {
        const name = this.types[id]!.name;
        if (name === "") continue;
        const key = essentialName(name);
        const ids = index.get(key);
        if (ids === undefined) index.set(key, [id]);
        else ids.push(id);
      }
      this.#byEssentialName = index;
    }
    return this.#byEssentialName.get(essential) ?? [];
  }

  /** The ids of this BTF's own types named exactly `name` (of `kind`, if given). */
  named(name: string, kind?: BtfKind): number[] {
    return this.withEssentialName(essentialName(name)).filter((id) => {
      const type = this.types[id]!;
      return type.name === name && (kind === undefined || type.kind === kind);
    });
  }
}

/** A type found in the kernel's BTF: which BTF (vmlinux or a module's) and its id there. */
export interface KernelType {
  readonly btf: IndexedBtf;
  readonly id: number;
}

/**
 * The BTF a program is relocated against: vmlinux, and module BTFs read
 * only when first asked for (as libbpf, which looks in modules only for a
 * type vmlinux does not have).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TargetBtf } from "./kernel_btf.ts";
 * import { encodeBtf } from "./types.ts";
 *
 * const vmlinux = encodeBtf([{ kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" }]);
 * const module = encodeBtf([{ kind: "struct", name: "", size: 4, members: [] }]);
 * let reads = 0;
 * const target = TargetBtf.fromBlobs(vmlinux, () => (reads++, { nf_conn: module }));
 * assert.equal(target.find("int", "int")?.id, 1);
 * assert.equal(reads, 0); // vmlinux had it
 * assert.equal(target.find("missing", "struct"), undefined);
 * assert.deepEqual(target.modules().map((m) => [m.name, m.firstId, m.types.length]), [["nf_conn", 2, 3]]);
 * assert.equal(reads, 1);
 * ```
 */
export class TargetBtf {
  readonly vmlinux: IndexedBtf;
  readonly #vmlinuxBlob: Uint8Array;
  #listModules: (() => Readonly<Record<string, Uint8Array>>) | undefined;
  #modules: IndexedBtf[] | undefined;

  private constructor(
    vmlinux: Uint8Array,
    modules: () => Readonly<Record<string, Uint8Array>>,
  ) {
    this.#vmlinuxBlob = vmlinux;
    this.vmlinux = new IndexedBtf("vmlinux", Object.freeze(parseBtf(vmlinux)));
    this.#listModules = modules;
  }

  /**
   * From vmlinux's BTF blob and a function giving module BTF blobs by
   * module name (called at most once, when a type is not in vmlinux).
   *
   * @throws {BtfFormatError} if `vmlinux` is not BTF.
   */
  static fromBlobs(
    vmlinux: Uint8Array,
    modules: () => Readonly<Record<string, Uint8Array>> = () => ({}),
  ): TargetBtf {
    return new TargetBtf(vmlinux, modules);
  }

  /** The module BTFs, read and parsed on first call. */
  modules(): readonly IndexedBtf[] {
    if (this.#modules === undefined) {
      const blobs = this.#listModules!();
      this.#listModules = undefined;
      this.#modules = Object.entries(blobs).map(([name, blob]) => {
        const types = Object.freeze(parseSplitBtf(blob, this.#vmlinuxBlob));
        return new IndexedBtf(name, types, this.vmlinux.types.length);
      });
    }
    return this.#modules;
  }

  /**
   * libbpf's candidate search: the types of vmlinux whose essential name
   * is `essential` and that `accept`s; only if there are none, those of
   * the modules.
   */
  candidates(essential: string, accept: (type: BtfType) => boolean): KernelType[] {
    const from = (btf: IndexedBtf) =>
      btf.withEssentialName(essential)
        .filter((id) => accept(btf.types[id]!))
        .map((id) => ({ btf, id }));
    const found = from(this.vmlinux);
    return found.length > 0 ? found : this.modules().flatMap(from);
  }

  /** The first type named `name` of `kind`: vmlinux's, else a module's. */
  find(name: string, kind: BtfKind): KernelType | undefined {
    const id = this.vmlinux.named(name, kind)[0];
    if (id !== undefined) return { btf: this.vmlinux, id };
    for (const btf of this.modules()) {
      const id = btf.named(name, kind)[0];
      if (id !== undefined) return { btf, id };
    }
    return undefined;
  }
}

const cache = new WeakMap<Kernel, TargetBtf>();

/**
 * The running kernel's BTF, read once per `kernel` (through its backend:
 * recorded and replayed like its `bpf()` calls).
 *
 * @throws {Error} if the kernel has no BTF (`CONFIG_DEBUG_INFO_BTF` off).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liveKernel } from "../ffi/kernel.ts";
 * import { kernelBtf } from "./kernel_btf.ts";
 *
 * const btf = kernelBtf(liveKernel());
 * assert.equal(kernelBtf(liveKernel()), btf); // read once
 * const task = btf.find("task_struct", "struct")!;
 * assert.equal(task.btf.name, "vmlinux");
 * assert.ok(task.btf.types[task.id]!.kind === "struct");
 * ```
 */
export function kernelBtf(kernel: Kernel): TargetBtf {
  let btf = cache.get(kernel);
  if (btf === undefined) {
    const backend = primitivesOf(kernel.backend);
    let vmlinux: Uint8Array;
    try {
      vmlinux = backend.readFile(KERNEL_BTF_PATH);
    } catch (error) {
      throw new Error(
        `the kernel's BTF could not be read from ${KERNEL_BTF_PATH} (a kernel built without `
          + `CONFIG_DEBUG_INFO_BTF has none): ${(error as Error).message}`,
        { cause: error },
      );
    }
    btf = TargetBtf.fromBlobs(vmlinux, () => moduleBlobs(kernel));
    cache.set(kernel, btf);
  }
  return btf;
}

/**
 * The file at `path`, or `undefined` if there is none (ENOENT). Any other
 * failure (EACCES, EIO) is thrown, naming the path: skipped, it would leave
 * a kernel type unfound and its relocations silently poisoned.
 */
function readIfPresent(kernel: Kernel, path: string): Uint8Array | undefined {
  try {
    // readFile, not readTextFile: a transcript keeps a failed readFile, and replays it.
    return primitivesOf(kernel.backend).readFile(path);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    const why = (error as Error).message;
    throw new Error(`module BTF (for a type vmlinux lacks): ${path} unreadable: ${why}`, {
      cause: error,
    });
  }
}

/** The BTF of each loaded module that has one, by module name. */
function moduleBlobs(kernel: Kernel): Record<string, Uint8Array> {
  const list = readIfPresent(kernel, MODULES_PATH);
  // No /proc/modules: a kernel without loadable modules.
  if (list === undefined) return {};
  const blobs: Record<string, Uint8Array> = {};
  for (const line of new TextDecoder().decode(list).split("\n")) {
    const name = line.split(" ")[0];
    if (!name) continue;
    // A module built without BTF has no file there.
    const blob = readIfPresent(kernel, `/sys/kernel/btf/${name}`);
    if (blob !== undefined) blobs[name] = blob;
  }
  return blobs;
}
