/**
 * `BpfObject`: a clang-built object loaded as libbpf's `bpf_object__open`
 * and `bpf_object__load` load it: its `.BTF` into the kernel, its maps
 * created (global data written, `.rodata` frozen, `.kconfig` filled, maps of
 * maps and prog_arrays given their `.values`), its programs relocated (CO-RE
 * against the kernel's BTF, map fds, global data, `.ksyms` and kfuncs,
 * `.text` subprograms appended) and loaded with their func and line info and
 * their attach target's BTF id.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Btf } from "../btf/btf.ts";
import { kernelBtf } from "../btf/kernel_btf.ts";
import type { BtfType } from "../btf/types.ts";
import { primitivesOf } from "../ffi/backend.ts";
import { BpfError } from "../ffi/errors.ts";
import { type Kernel, liveKernel } from "../ffi/kernel.ts";
import { MAP_TYPES, mapTypeNumber } from "../ffi/map_types.ts";
import { describe } from "../ffi/validate.ts";
import { BpfMap, type MapSpec } from "../maps/bpf_map.ts";
import type { FuncInfo, LineInfo } from "../object/btf_ext.ts";
import { applyCoreRelocations } from "../object/core.ts";
import type { ObjectMap } from "../object/maps.ts";
import { type ExternSpec, objectName, type ObjectSpec, parseObject } from "../object/object.ts";
import type { ObjectProgram } from "../object/programs.ts";
import { rememberSection } from "./attach_section.ts";
import { attachBtfIdOf, type TracingAttachType } from "./attach_tracing.ts";
import { Program } from "./program.ts";

const OSRELEASE_PATH = "/proc/sys/kernel/osrelease";
const PROC_CONFIG_PATH = "/proc/config.gz";
const decoder = new TextDecoder();
/**
 * `BPF_PSEUDO_MAP_FD`, `BPF_PSEUDO_MAP_VALUE`, `BPF_PSEUDO_BTF_ID`, `BPF_PSEUDO_FUNC`: an
 * `ld_imm64`'s `src_reg`.
 */
const PSEUDO_MAP_FD = 1;
const PSEUDO_MAP_VALUE = 2;
const PSEUDO_BTF_ID = 3;
const PSEUDO_FUNC = 4;
/** `BPF_PSEUDO_KFUNC_CALL`: a call's `src_reg` for a kfunc, `imm` its BTF id. */
const PSEUDO_KFUNC_CALL = 2;
const KALLSYMS_PATH = "/proc/kallsyms";
/** `prog_flags` of sections libbpf loads sleepable (`.s`), or as XDP with fragments (`.frags`). */
const BPF_F_SLEEPABLE = 1 << 4;
const BPF_F_XDP_HAS_FRAGS = 1 << 5;
/** The attach types whose target `attachBtfIdOf` finds in vmlinux. */
const TRACING = new Set<string>([
  "trace_fentry",
  "trace_fexit",
  "modify_return",
  "trace_raw_tp",
  "trace_iter",
  "lsm_mac",
]);
/** BTF kinds a type's name passes through to the type it qualifies. */
const MODIFIERS = new Set(["typedef", "const", "volatile", "restrict", "type_tag"]);
const INSN = 8;

/** Overrides of one map's spec before it is created. */
export interface MapOverride {
  /** `max_entries` (a ring buffer's size, a hash's capacity). */
  maxEntries?: number;
}

/** Options of {@linkcode BpfObject.open}. */
export interface BpfObjectOptions {
  /** The object's name, before its global data maps' names; default from the path, else "". */
  name?: string;
  /** The kernel to load into (a system's `kernel` records and replays it). */
  kernel?: Kernel;
  /** Overrides by map name (the variable's or section's name, as in `maps`). */
  maps?: Readonly<Record<string, MapOverride>>;
  /** Where maps declared `pinning: LIBBPF_PIN_BY_NAME` are pinned (or reused), by name. */
  pinFolder?: string;
}

/** One program of an opened object: what `load()` will do with it. */
export class ObjectProgramHandle {
  /** Load it with the object (libbpf's `bpf_program__set_autoload`). */
  autoload = true;
  /** What the object file says of it. */
  readonly spec: ObjectProgram;

  constructor(spec: ObjectProgram) {
    this.spec = spec;
  }
}

/**
 * An object file opened (parsed, nothing in the kernel yet), then loaded:
 * `maps` and `programs` by name (`map(name)` and `loadedProgram(name)` say
 * what exists when a name is not there). Closing it closes them all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { BpfObject } from "./object_loader.ts";
 *
 * const source = `
 *   int hits = 7;
 *   static __attribute__((noinline)) int verdict(void) { return hits > 5 ? 2 : 1; }
 *   __attribute__((section("xdp"), used)) int pass(void *ctx) { return verdict(); }
 *   char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * const bytes = new Uint8Array(execFileSync("clang", args, { input: source }));
 * using object = BpfObject.open(bytes, { name: "demo" }).load();
 * assert.equal(object.loadedProgram("pass").testRun({ data: new Uint8Array(64) }).retval, 2);
 * assert.deepEqual(object.map(".data").lookup(new Uint8Array(4)), new Uint8Array([7, 0, 0, 0]));
 * ```
 */
export class BpfObject {
  /** What the object file holds (its `.rodata` bytes can be set before `load()`). */
  readonly spec: ObjectSpec;
  /** Maps by name (the variable's name, or the data section's: `.data`, `.rodata`). */
  readonly maps: Map<string, BpfMap> = new Map();
  /** Loaded programs by function name. */
  readonly programs: Map<string, Program> = new Map();
  /**
   * Why the object's `.BTF` is not in the kernel (maps then have no BTF
   * ids), or `undefined` if it is, or if the object has none.
   */
  btfRefused: string | undefined;
  /** The object's `.BTF` in the kernel, once loaded. */
  btf: Btf | undefined;
  #kernel: Kernel | undefined;
  readonly #options: BpfObjectOptions;
  readonly #handles: Map<string, ObjectProgramHandle>;
  #isLoaded = false;
  /** The `.ksyms` externs resolved, by name; the kallsyms read for them. */
  readonly #ksyms = new Map<string, number | bigint>();
  #symbols: Map<string, bigint> | undefined;

  private constructor(spec: ObjectSpec, options: BpfObjectOptions) {
    this.spec = spec;
    this.#options = options;
    this.#kernel = options.kernel;
    this.#handles = new Map(spec.programs.map((p) => [p.name, new ObjectProgramHandle(p)]));
  }

  /**
   * Parses an object (its bytes, or the file at a path). Nothing reaches the
   * kernel until {@linkcode BpfObject.load}.
   *
   * @throws {TypeError} for bad arguments; `ObjectFormatError` for a file that is no BPF object.
   */
  static open(source: Uint8Array | string, options: BpfObjectOptions = {}): BpfObject {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    }
    let bytes: Uint8Array;
    let name = options.name;
    if (typeof source === "string") {
      bytes = new Uint8Array(readFileSync(source));
      name ??= objectName(source);
    } else if (source instanceof Uint8Array) {
      bytes = source;
    } else {
      throw new TypeError(`source must be a Uint8Array or a path, got ${describe(source)}`);
    }
    const spec = parseObject(bytes, { name: name ?? "" });
    for (const mapName of Object.keys(options.maps ?? {})) {
      if (!spec.maps.some((m) => m.name === mapName)) {
        throw new TypeError(`options.maps: the object has no map '${mapName}'`);
      }
    }
    return new BpfObject(spec, options);
  }

  /** A program of the object, by function name, to set `autoload` before loading. */
  program(name: string): ObjectProgramHandle {
    const handle = this.#handles.get(name);
    if (handle === undefined) {
      throw new TypeError(
        `the object has no program '${name}' (it has: ${[...this.#handles.keys()].join(", ")})`,
      );
    }
    return handle;
  }

  /**
   * A map of the loaded object, by name (the variable's, or the data
   * section's: `.data`, `.rodata`), as libbpf's `bpf_object__find_map_by_name`
   * and cilium/ebpf's `Collection.Maps[name]` find it; unlike `maps.get`, a
   * name it lacks is an error naming those it has.
   *
   * @throws {TypeError} before `load()`, or for a name the object has no map of.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { execFileSync } from "node:child_process";
   * import { BpfObject } from "./object_loader.ts";
   *
   * const source = `
   *   int hits = 7;
   *   __attribute__((section("xdp"), used)) int pass(void *ctx) { return hits; }
   *   char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
   * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
   * const bytes = new Uint8Array(execFileSync("clang", args, { input: source }));
   * using object = BpfObject.open(bytes, { name: "demo" });
   * assert.throws(() => object.map(".data"), { message: "map '.data': the object is not loaded yet" });
   * object.load();
   * assert.deepEqual(object.map(".data").lookup(new Uint8Array(4)), new Uint8Array([7, 0, 0, 0]));
   * assert.equal(object.loadedProgram("pass").testRun({ data: new Uint8Array(64) }).retval, 7);
   * assert.throws(() => object.map("hit"), { message: "the object has no map 'hit' (it has: .data)" });
   * ```
   */
  map(name: string): BpfMap {
    return this.#loaded("map", name, this.maps, this.spec.maps.map((m) => m.name));
  }

  /**
   * A program of the loaded object, by function name: the `Program` in the
   * kernel, where {@linkcode BpfObject.program} is its handle before the load
   * (`autoload`). A program left out of the load is named as such. See
   * {@linkcode BpfObject.map}'s example.
   *
   * @throws {TypeError} before `load()`, for a program not loaded, or for a name the object has
   *   no program of.
   */
  loadedProgram(name: string): Program {
    return this.#loaded("program", name, this.programs, [...this.#handles.keys()]);
  }

  #loaded<T>(kind: string, name: string, loaded: Map<string, T>, declared: string[]): T {
    const found = loaded.get(name);
    if (found !== undefined) return found;
    if (!declared.includes(name)) {
      throw new TypeError(
        `the object has no ${kind} '${name}' (it has: ${declared.join(", ") || "none"})`,
      );
    }
    if (!this.#isLoaded) throw new TypeError(`${kind} '${name}': the object is not loaded yet`);
    const why = this.#handles.get(name)?.autoload === false ? " (its autoload is false)" : "";
    throw new TypeError(`${kind} '${name}' was not loaded${why}`);
  }

  /**
   * Loads the object: BTF, maps (and the maps their `.values` name), then
   * each program with `autoload` set (and the prog_array slots naming it).
   * On any failure, what was created is closed and the error thrown (a
   * `VerifierError` with the verifier's log for a program it refuses).
   */
  load(): this {
    if (this.#isLoaded) throw new Error("the object is already loaded");
    this.#isLoaded = true;
    // The live kernel only now: opening (parsing, checking) needs none.
    this.#kernel ??= liveKernel();
    try {
      this.#loadBtf();
      const created: ObjectMap[] = [];
      for (const map of this.spec.maps) {
        const [bpfMap, fresh] = this.#createMap(map);
        this.maps.set(map.name, bpfMap);
        if (fresh) created.push(map);
      }
      // As libbpf: a map of maps' slots once every map exists, and only in a map just created (a
      // pinned one keeps what it holds); a prog_array's once the programs are loaded.
      for (const map of created) {
        if (map.inner !== undefined) this.#fillSlots(map, this.maps, "map");
      }
      const code = this.#withCoreRelocations();
      for (const program of code.programs) {
        this.programs.set(program.name, this.#loadProgram(program, code.subprograms));
      }
      for (const map of this.spec.maps) {
        if (map.inner === undefined) this.#fillSlots(map, this.programs, "program");
      }
    } catch (error) {
      this.close();
      throw error;
    }
    return this;
  }

  /** Closes every program, map and the BTF of the object. */
  close(): void {
    for (const program of this.programs.values()) program.close();
    for (const map of this.maps.values()) map.close();
    this.btf?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #loadBtf(): void {
    if (this.spec.btf === undefined) return;
    try {
      this.btf = Btf.load(this.spec.btf.bytes, {}, this.#kernel!);
    } catch (error) {
      if (!(error instanceof BpfError)) throw error;
      // libbpf sanitizes what an old kernel cannot take; we only finalize DATASECs and externs
      // (parseObject), and do without BTF (maps without type ids) if that is not enough.
      this.btfRefused = error.message;
    }
  }

  /** Creates a map (or opens its pin): the map, and whether it was created. */
  #createMap(map: ObjectMap): [BpfMap, boolean] {
    const folder = this.#options.pinFolder;
    if (map.pinning !== "byName" || folder === undefined) return [this.#newMap(map), true];
    const path = `${folder}/${map.name}`;
    try {
      return [BpfMap.openPinned(path, {}, this.#kernel!), false];
    } catch (error) {
      if (!(error instanceof BpfError) || error.code !== "ENOENT") throw error;
    }
    const created = this.#newMap(map);
    try {
      created.pin(path);
    } catch (error) {
      created.close();
      throw error;
    }
    return [created, true];
  }

  /**
   * A new map of `map`'s spec, its overrides applied, with the object's BTF;
   * a map of maps with its inner map's template, created for it and closed
   * after, as libbpf does.
   */
  #newMap(map: ObjectMap): BpfMap {
    const override = this.#options.maps?.[map.name] ?? {};
    let spec: MapSpec = { ...map.spec };
    if (override.maxEntries !== undefined) spec.maxEntries = override.maxEntries;
    // A perf_event_array declared without max_entries gets a slot per possible CPU, as libbpf
    // gives it (map_set_def_max_entries): a perf buffer puts each CPU's event in its slot.
    const perfEvents = mapTypeNumber(spec.type) === MAP_TYPES.perf_event_array;
    if (spec.maxEntries === 0 && perfEvents) spec.maxEntries = this.#kernel!.possibleCpus();
    if (map.kind === "kconfig") spec.contents = [[new Uint8Array(4), this.#kconfig(map)]];
    if (this.btf !== undefined && map.btfValueTypeId > 0) {
      spec = {
        ...spec,
        btf: { btf: this.btf, keyTypeId: map.btfKeyTypeId, valueTypeId: map.btfValueTypeId },
      };
    }
    if (map.inner === undefined) return BpfMap.create(spec, this.#kernel!);
    using template = this.#newMap(map.inner);
    return BpfMap.create({ ...spec, innerMap: template }, this.#kernel!);
  }

  /**
   * Writes `map`'s `values` initializers: slot `index` gets the fd of the
   * map or program named (key and value u32s, as libbpf writes them).
   */
  #fillSlots(
    map: ObjectMap,
    targets: ReadonlyMap<string, BpfMap | Program>,
    kind: "map" | "program",
  ): void {
    const outer = this.maps.get(map.name)!;
    for (const { index, name } of map.initialSlots) {
      const target = targets.get(name);
      if (target === undefined) {
        throw new TypeError(
          `map '${map.name}': slot ${index} holds ${kind} '${name}', which is not loaded (autoload off?)`,
        );
      }
      outer.update(u32(index), u32(target.fd));
    }
  }

  /**
   * The `.kconfig` map's value: `LINUX_KERNEL_VERSION`, the `CONFIG_*`
   * values of the running kernel's config, and zero for weak externs it
   * has no value for, as libbpf fills it.
   */
  #kconfig(map: ObjectMap): Uint8Array {
    const value = new Uint8Array(map.spec.valueSize);
    const view = new DataView(value.buffer);
    let config: Map<string, string> | undefined;
    for (const extern of this.spec.externs) {
      if (extern.kind !== "kconfig") continue;
      if (extern.name === "LINUX_KERNEL_VERSION" && extern.size === 4) {
        const release = this.#kernel!.backend.readTextFile(OSRELEASE_PATH);
        view.setUint32(extern.offset, kernelVersionCode(release), true);
        continue;
      }
      const text = extern.name.startsWith("CONFIG_")
        ? (config ??= this.#kernelConfig()).get(extern.name)
        : undefined;
      if (text !== undefined) {
        const type = kconfigType(this.spec.btf?.types ?? [], extern.typeId);
        value.set(kconfigValue(extern, type, text), extern.offset);
      } else if (!extern.weak) {
        throw new TypeError(
          `extern '${extern.name}': ${
            extern.name.startsWith("CONFIG_")
              ? "the running kernel's config does not set it"
              : "only LINUX_KERNEL_VERSION and CONFIG_* externs are resolved"
          }; declare it __weak to read 0`,
        );
      }
    }
    return value;
  }

  /**
   * The running kernel's config, `CONFIG_*` names to their text as written
   * (`y`, `250`, `"-fc"`): `/boot/config-<release>`, else `/proc/config.gz`,
   * as libbpf looks for it; an option "is not set" is absent.
   */
  #kernelConfig(): Map<string, string> {
    const files = primitivesOf(this.#kernel!.backend);
    const release = this.#kernel!.backend.readTextFile(OSRELEASE_PATH).trim();
    let text: string;
    try {
      text = decoder.decode(files.readFile(`/boot/config-${release}`));
    } catch (bootError) {
      try {
        text = decoder.decode(gunzipSync(files.readFile(PROC_CONFIG_PATH)));
      } catch (procError) {
        // Both reasons: an unreadable /boot file (EACCES) is not the same fix as a missing one.
        throw new TypeError(
          `the kernel's config is in neither /boot/config-${release} nor ${PROC_CONFIG_PATH} `
            + `(CONFIG_IKCONFIG_PROC), for the object's CONFIG_* externs: ${
              (bootError as Error).message
            }; ${(procError as Error).message}`,
          { cause: new AggregateError([bootError, procError]) },
        );
      }
    }
    const config = new Map<string, string>();
    for (const line of text.split("\n")) {
      const match = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
      if (match !== null) config.set(match[1]!, match[2]!);
    }
    return config;
  }

  /**
   * The programs to load (autoload set) and the subprograms, their CO-RE
   * relocations applied against the running kernel's BTF (read only for an
   * object that has some: vmlinux's is megabytes).
   */
  #withCoreRelocations(): Pick<ObjectSpec, "programs" | "subprograms"> {
    const programs = this.spec.programs.filter((p) => this.#handles.get(p.name)!.autoload);
    const code = { ...this.spec, programs };
    const relocated = [...programs, ...this.spec.subprograms].some((p) =>
      p.coreRelocations.length > 0
    );
    return relocated ? applyCoreRelocations(code, kernelBtf(this.#kernel!)) : code;
  }

  #loadProgram(program: ObjectProgram, subprograms: readonly ObjectProgram[]): Program {
    const type = program.type;
    if (type === undefined) {
      throw new TypeError(`program '${program.name}': section '${program.section}' is unknown`);
    }
    if (this.spec.license === "") {
      throw new TypeError(`program '${program.name}': the object has no license section`);
    }
    const linked = this.#relocate(program, subprograms);
    const { def, target } = type;
    const flags = (def.sleepable ? BPF_F_SLEEPABLE : 0) | (def.xdpFrags ? BPF_F_XDP_HAS_FRAGS : 0);
    // fentry/fexit/fmod_ret, lsm, tp_btf and iter name their target in vmlinux's BTF.
    const attachBtfId = def.attachBtf && target?.kind === "btf" && TRACING.has(def.attachType!)
      ? attachBtfIdOf(def.attachType as TracingAttachType, target.name, this.#kernel!)
      : 0;
    const loaded = Program.load({
      type: type.programType,
      expectedAttachType: type.expectedAttachType,
      flags,
      attachBtfId,
      instructions: linked.instructions,
      license: this.spec.license,
      name: program.name.slice(0, 15).replace(/[^A-Za-z0-9_.]/g, "_"),
      ...(this.spec.kernelVersion === undefined ? {} : { kernelVersion: this.spec.kernelVersion }),
      // As libbpf: the object's BTF with every program, and its records where clang wrote them.
      ...(this.btf === undefined ? {} : {
        btf: this.btf,
        ...(linked.funcInfo.length === 0 ? {} : { funcInfo: linked.funcInfo }),
        ...(linked.lineInfo.length === 0 ? {} : { lineInfo: linked.lineInfo }),
      }),
    }, this.#kernel!);
    // program.attach() attaches it where its section says.
    rememberSection(loaded, program.section, type);
    return loaded;
  }

  /**
   * The program's instructions with the `.text` subprograms it calls
   * appended (each once, depth first: a subprogram's own calls are placed
   * before its caller's next one, as libbpf's `bpf_object__reloc_code`
   * recurses, so the instructions are libbpf's) and every relocation
   * applied; with the func and line info of each part, moved to where it
   * was placed (libbpf's `adjust_prog_btf_ext_info`), so ascending as the
   * kernel wants them.
   */
  #relocate(program: ObjectProgram, subprograms: readonly ObjectProgram[]): Linked {
    const parts: { fn: ObjectProgram; at: number }[] = [];
    let length = 0;
    const placed = new Map<string, number>();
    const fixes: (() => void)[] = [];
    const place = (fn: ObjectProgram): number => {
      const at = length;
      parts.push({ fn, at });
      length += fn.instructions.byteLength / INSN;
      for (const r of fn.relocations) {
        const insn = at + r.insn;
        if (r.kind === "call" || r.kind === "functionAddress") {
          const target = placeOf(r.target);
          fixes.push(() => {
            if (r.kind === "functionAddress") setSrc(out, insn, PSEUDO_FUNC);
            view.setInt32(insn * INSN + 4, target - insn - 1, true);
          });
        } else if (r.kind === "map" || r.kind === "data") {
          const map = this.maps.get(r.map)!;
          fixes.push(() => {
            setSrc(out, insn, r.kind === "map" ? PSEUDO_MAP_FD : PSEUDO_MAP_VALUE);
            view.setInt32(insn * INSN + 4, map.fd, true);
            if (r.kind === "data") view.setInt32(insn * INSN + 12, r.offset, true);
          });
        } else if (r.kind === "extern") {
          fixes.push(this.#externFix(r.name, r.call, insn, () => [out, view]));
        }
      }
      return at;
    };
    const placeOf = (target: string): number => {
      const known = placed.get(target);
      if (known !== undefined) return known;
      const fn = subprograms.find((s) => s.name === target);
      if (fn === undefined) throw new TypeError(`no .text function '${target}'`);
      // Known before its calls are followed: a recursive call reaches this copy, not a new one.
      placed.set(target, length);
      return place(fn);
    };
    place(program);
    const out = new Uint8Array(length * INSN);
    const view = new DataView(out.buffer);
    for (const { fn, at } of parts) out.set(fn.instructions, at * INSN);
    for (const fix of fixes) fix();
    const moved = <T extends { insn: number }>(records: (fn: ObjectProgram) => readonly T[]) =>
      parts.flatMap(({ fn, at }) => records(fn).map((r) => ({ ...r, insn: r.insn + at })));
    return {
      instructions: out,
      funcInfo: moved((fn) => fn.funcInfo),
      lineInfo: moved((fn) => fn.lineInfo),
    };
  }

  /**
   * The fix of an extern's instruction: a `.kconfig` variable is a load
   * from the kconfig map; a `.ksyms` one is what the running kernel has
   * (`#ksym`).
   */
  #externFix(
    name: string,
    call: boolean,
    insn: number,
    target: () => [Uint8Array, DataView],
  ): () => void {
    const extern = this.spec.externs.find((e) => e.name === name)!;
    if (extern.kind === "kconfig") {
      const kconfig = this.maps.get(".kconfig")!;
      return () => {
        const [out, view] = target();
        setSrc(out, insn, PSEUDO_MAP_VALUE);
        view.setInt32(insn * INSN + 4, kconfig.fd, true);
        view.setInt32(insn * INSN + 12, extern.offset, true);
      };
    }
    const ksym = this.#ksym(extern);
    return () => {
      const [out, view] = target();
      const at = insn * INSN;
      if (call) {
        // A weak kfunc the kernel lacks stays a call of id 0: the verifier accepts it in dead code.
        setSrc(out, insn, PSEUDO_KFUNC_CALL);
        view.setInt32(at + 4, typeof ksym === "number" ? ksym : 0, true);
        view.setInt16(at + 2, 0, true); // off: an fd_array index for a module's kfunc; vmlinux's
      } else if (typeof ksym === "number") {
        setSrc(out, insn, PSEUDO_BTF_ID);
        view.setInt32(at + 4, ksym, true);
        view.setInt32(at + 12, 0, true); // the BTF object's fd for a module's; vmlinux's
      } else {
        setSrc(out, insn, 0);
        view.setUint32(at + 4, Number(ksym & 0xffff_ffffn), true);
        view.setUint32(at + 12, Number(ksym >> 32n), true);
      }
    };
  }

  /**
   * What a `.ksyms` extern is in the running kernel, as libbpf resolves it:
   * a kfunc or a typed variable, its BTF id in vmlinux (a `number`); a
   * typeless variable (`extern const void x __ksym`), its address in
   * `/proc/kallsyms` (a `bigint`); a `__weak` one the kernel lacks, `0n`.
   *
   * @throws {TypeError} for one the kernel lacks that is not weak.
   */
  #ksym(extern: ExternSpec): number | bigint {
    const known = this.#ksyms.get(extern.name);
    if (known !== undefined) return known;
    const typeless = !extern.function && isVoidVariable(this.spec.btf?.types ?? [], extern.typeId);
    let found: number | bigint | undefined;
    if (typeless) {
      found = this.#kallsyms().get(extern.name);
    } else {
      // vmlinux only: the kfuncs and variables of modules need their BTF fds (not done yet).
      found =
        kernelBtf(this.#kernel!).vmlinux.named(extern.name, extern.function ? "func" : "var")[0];
    }
    if (found === undefined) {
      if (!extern.weak) {
        const where = typeless ? KALLSYMS_PATH : "vmlinux's BTF (modules' are not searched yet)";
        throw new TypeError(
          `extern '${extern.name}': the running kernel has no ${
            extern.function ? "kfunc" : "symbol"
          } of that name in ${where}; declare it __weak to load without it`,
        );
      }
      found = 0n;
    }
    this.#ksyms.set(extern.name, found);
    return found;
  }

  /** The addresses of `/proc/kallsyms` by name (the first of each), read once per load. */
  #kallsyms(): Map<string, bigint> {
    if (this.#symbols !== undefined) return this.#symbols;
    const symbols = new Map<string, bigint>();
    let shown = false;
    for (const line of this.#kernel!.backend.readTextFile(KALLSYMS_PATH).split("\n")) {
      const [address, , name] = line.split(/\s+/);
      if (name === undefined || address === undefined || symbols.has(name)) continue;
      const value = BigInt(`0x${address}`);
      shown ||= value !== 0n;
      symbols.set(name, value);
    }
    // kptr_restrict shows zeros to a process without CAP_SYSLOG: no address is better than 0.
    if (!shown) throw new TypeError(`${KALLSYMS_PATH} shows no addresses: run as root`);
    return this.#symbols = symbols;
  }
}

/** How libbpf stores a kconfig extern, by its C type (`find_kcfg_type`). */
type KconfigType =
  | { kind: "bool" | "char" | "tristate" | "chars" | "unknown" }
  | { kind: "int"; signed: boolean };

/** The kind of kconfig extern `id` (a VAR) is: `bool`, `char`, an integer, `enum libbpf_tristate`, `char[N]`. */
function kconfigType(types: readonly BtfType[], id: number): KconfigType {
  const variable = types[id];
  const type = variable?.kind === "var" ? types[skipModifiers(types, variable.type)] : undefined;
  if (type?.kind === "int") {
    if (type.encoding === "bool") return { kind: "bool" };
    if (type.size === 1) return { kind: "char" };
    if ([2, 4, 8].includes(type.size)) return { kind: "int", signed: type.encoding === "signed" };
  } else if (
    (type?.kind === "enum" || type?.kind === "enum64") && type.name === "libbpf_tristate"
  ) {
    return { kind: "tristate" };
  } else if (type?.kind === "array" && type.length > 0) {
    const element = types[skipModifiers(types, type.type)];
    if (element?.kind === "int" && element.encoding !== "bool" && element.size === 1) {
      return { kind: "chars" };
    }
  }
  return { kind: "unknown" };
}

/**
 * A kconfig extern's bytes from its config text, as libbpf's
 * `set_kcfg_value_tri`, `_str` and `_num` write them: `y`/`n`/`m` into a
 * bool (no `m`), a tristate (1, 0, 2) or a char; a quoted string into a char
 * array (cut to fit with its NUL); a number into an integer it fits.
 *
 * @throws {TypeError} for a value the extern's type cannot hold.
 */
function kconfigValue(extern: ExternSpec, type: KconfigType, text: string): Uint8Array {
  const bytes = new Uint8Array(extern.size);
  const fail = (why: string): never => {
    throw new TypeError(`extern '${extern.name}': the kernel's value ${text} ${why}`);
  };
  if (text.startsWith("\"")) {
    if (type.kind !== "chars" || !text.endsWith("\"") || text.length < 2) {
      return fail("is a string, which only a char array takes");
    }
    bytes.set(new TextEncoder().encode(text.slice(1, -1)).subarray(0, extern.size - 1));
    return bytes;
  }
  if (/^[ynm]$/.test(text)) {
    if (type.kind === "bool" && text !== "m") bytes[0] = text === "y" ? 1 : 0;
    else if (type.kind === "tristate") bytes[0] = { y: 1, n: 0, m: 2 }[text as "y" | "n" | "m"];
    else if (type.kind === "char") bytes[0] = text.charCodeAt(0);
    else fail(`is not one a ${type.kind} extern takes`);
    return bytes;
  }
  if (type.kind !== "int" && type.kind !== "char" && type.kind !== "bool") {
    return fail(`is a number, which a ${type.kind} extern does not take`);
  }
  let number: bigint;
  try {
    number = /^-?0[0-7]+$/.test(text) ? BigInt(text.replace("0", "0o")) : BigInt(text);
  } catch {
    return fail("is not a number");
  }
  const bits = BigInt(8 * extern.size);
  const signed = type.kind === "int" && type.signed;
  const [min, max] = signed
    ? [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n]
    : [0n, (1n << bits) - 1n];
  if (number < min || number > max) fail(`does not fit ${extern.size} byte(s)`);
  const unsigned = BigInt.asUintN(Number(bits), number);
  for (let i = 0; i < extern.size; i++) bytes[i] = Number((unsigned >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** `id` with its typedefs and qualifiers passed through. */
function skipModifiers(types: readonly BtfType[], id: number): number {
  for (let hops = 0; hops < 32; hops++) {
    const t = types[id];
    if (t === undefined || !("type" in t) || !MODIFIERS.has(t.kind)) return id;
    id = t.type;
  }
  return id;
}

/** Whether BTF `id` is a variable of type `void` (after modifiers and typedefs). */
function isVoidVariable(types: readonly BtfType[], id: number): boolean {
  const variable = types[id];
  return variable?.kind === "var" && skipModifiers(types, variable.type) === 0;
}

/** A program linked: its subprograms appended, its relocations applied, its BTF records moved. */
interface Linked {
  readonly instructions: Uint8Array;
  readonly funcInfo: readonly FuncInfo[];
  readonly lineInfo: readonly LineInfo[];
}

/** A u32's 4 little-endian bytes. */
function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

/** Sets instruction `insn`'s `src_reg` (the high nibble of its second byte). */
function setSrc(out: Uint8Array, insn: number, src: number): void {
  out[insn * INSN + 1] = (out[insn * INSN + 1]! & 0x0f) | (src << 4);
}

/** `KERNEL_VERSION(a, b, c)` of a release such as `6.18.44-fc`, as libbpf computes it. */
export function kernelVersionCode(release: string): number {
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (match === null) throw new TypeError(`kernel release '${release.trim()}' is not a.b.c`);
  const [a, b, c] = [1, 2, 3].map((i) => Number(match[i] ?? 0)) as [number, number, number];
  return (a << 16) + (b << 8) + Math.min(c, 255);
}
