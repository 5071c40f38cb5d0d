/**
 * Global variables read and written in place: a global data map's
 * (`.bss`, `.data`, `.rodata`, `.data.*`, `.kconfig`) memory mapped with
 * `map.memory()`, seen through codecs built from its DATASEC's BTF, one
 * property per variable, as a libbpf skeleton's `skel->bss->counter`. A read
 * is a load from the memory the programs use, with no syscall; so is a write.
 *
 * `object.globals(".bss")` gives them for a loaded {@linkcode BpfObject}.
 *
 * @module
 */

import { typeAt } from "../btf/types.ts";
import { describe } from "../ffi/validate.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { type MapMemory, type MemoryOptions } from "../maps/memory.ts";
import { BpfObject } from "../programs/object_loader.ts";
import { codecOfType } from "./btf.ts";
import type { Codec } from "./codec.ts";

/**
 * The variables of a global data section as properties (getters and
 * setters over the mapped memory), and `[Symbol.dispose]` to unmap it.
 * A `.rodata` section's setters throw a `TypeError`: it is mapped
 * read-only, as the kernel froze it.
 */
export type Globals = Record<string, unknown> & Disposable;

/** What {@linkcode globalsMemory} finds on a {@linkcode Globals}. */
const MEMORY = Symbol("bpfmap.globalsMemory");

declare module "../programs/object_loader.ts" {
  interface BpfObject {
    // Restated, as codec/typed_methods.ts restates BpfMap's: with this augmentation, Deno 2.9's
    // checker loses the class's computed [Symbol.dispose] member, and `using` refuses the object.
    [Symbol.dispose](): void;
    /**
     * The variables of one of the object's global data sections (`".bss"`,
     * `".data"`, `".rodata"`, `".data.NAME"`), read and written in place:
     * see {@linkcode globals}. Mapped through the kernel the object was
     * loaded on.
     *
     * @example
     * ```ts
     * import assert from "node:assert/strict";
     * import { execFileSync } from "node:child_process";
     * import { BpfObject } from "../mod.ts";
     *
     * const source = `
     *   unsigned long long hits;
     *   const volatile unsigned int step = 5;
     *   __attribute__((section("xdp"), used)) int count(void *ctx) { hits += step; return 2; }
     *   char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
     * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
     * using object = BpfObject.open(new Uint8Array(execFileSync("clang", args, { input: source }))).load();
     * using bss = object.globals(".bss");
     * object.programs.get("count")!.testRun({ data: new Uint8Array(64), repeat: 3 });
     * assert.equal(bss.hits, 15n); // read from the map's memory: no syscall
     * bss.hits = 100n;
     * using rodata = object.globals(".rodata");
     * assert.equal(rodata.step, 5);
     * assert.throws(() => (rodata.step = 6), { name: "TypeError" }); // frozen: mapped read-only
     * ```
     *
     * @throws {TypeError} if the object has no such map, or it has no DATASEC BTF.
     */
    globals(section: string, options?: MemoryOptions): Globals;
  }
}

/**
 * The variables of a global data map (its BTF value type a DATASEC), read
 * and written in place through `map.memory(options)`: each property reads
 * its variable's bytes through the codec its BTF gives (`u64` as a bigint,
 * `char[]` as a string, structs as objects), and assigning one writes them,
 * checked by the codec first. The map's BTF is read once, here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { BpfObject, globals } from "../mod.ts";
 *
 * const source = `
 *   struct point { int x, y; } origin = { 3, 4 };
 *   char banner[8] = "bpfmap";
 *   __attribute__((section("xdp"), used)) int pass(void *ctx) { return origin.x; }
 *   char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * using object = BpfObject.open(new Uint8Array(execFileSync("clang", args, { input: source }))).load();
 * using data = globals(object.maps.get(".data")!);
 * assert.deepEqual({ ...data }, { origin: { x: 3, y: 4 }, banner: "bpfmap" });
 * data.origin = { x: 1, y: 0 };
 * assert.equal(object.programs.get("pass")!.testRun({ data: new Uint8Array(64) }).retval, 1);
 * assert.throws(() => (data.origin = { x: 1 }), { name: "TypeError", message: /origin: missing field y/ });
 * ```
 *
 * @throws {TypeError} for a map that is not a global data map with BTF (before any syscall
 * but the BTF's), or that `map.memory()` refuses.
 */
export function globals(map: BpfMap, options: MemoryOptions = {}): Globals {
  if (!(map instanceof BpfMap)) {
    throw new TypeError(`globals: map must be a BpfMap, got ${describe(map)}`);
  }
  if (map.closed) throw new TypeError(`globals: ${map} is closed`);
  const { valueTypeId } = map.btfIds;
  if (valueTypeId === 0) {
    throw new TypeError(`globals: ${map} has no BTF value type; read it with map.memory()`);
  }
  let codec: Codec<unknown>;
  {
    using btf = map.btf()!;
    const type = typeAt(btf.types, valueTypeId);
    if (type.kind !== "datasec") {
      throw new TypeError(
        `globals: ${map}'s value is a ${type.kind}, not a DATASEC; use map.typed() or map.memory()`,
      );
    }
    codec = codecOfType(btf.types, valueTypeId);
  }
  const memory = map.memory(options);
  const target: Record<string | symbol, unknown> = {};
  for (const variable of membersOf(codec)) {
    Object.defineProperty(target, variable.name, {
      enumerable: true,
      get: () => readVariable(memory, variable),
      set: (value: unknown) => writeVariable(memory, variable, value),
    });
  }
  Object.defineProperty(target, MEMORY, { value: memory });
  Object.defineProperty(target, Symbol.dispose, { value: () => memory.close() });
  return target as Globals;
}

/**
 * The {@linkcode MapMemory} under a {@linkcode Globals} (for `view()` in a
 * hot loop, or `close()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { BpfObject, globalsMemory } from "../mod.ts";
 *
 * const source = `
 *   unsigned int samples[4];
 *   __attribute__((section("xdp"), used)) int pass(void *ctx) { samples[1] = 9; return 2; }
 *   char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
 * const args = ["-g", "-O2", "-target", "bpf", "-c", "-x", "c", "-", "-o", "-"];
 * using object = BpfObject.open(new Uint8Array(execFileSync("clang", args, { input: source }))).load();
 * using bss = object.globals(".bss");
 * object.programs.get("pass")!.testRun({ data: new Uint8Array(64) });
 * assert.equal(globalsMemory(bss).readU32(4), 9);
 * ```
 */
export function globalsMemory(globals: Globals): MapMemory {
  const memory = (globals as unknown as Record<symbol, unknown>)[MEMORY];
  if (memory === undefined) {
    throw new TypeError(`globalsMemory: not the result of globals(), got ${describe(globals)}`);
  }
  return memory as MapMemory;
}

interface Variable {
  readonly name: string;
  readonly codec: Codec<unknown>;
  readonly offset: number;
}

/** A DATASEC codec's variables (`codecOfType` makes it a struct of them). */
function membersOf(codec: Codec<unknown>): readonly Variable[] {
  const shape = codec.shape;
  if (shape === undefined || shape.kind !== "struct") {
    throw new TypeError(`globals: ${codec.name} has no variables`);
  }
  return shape.members;
}

function readVariable(memory: MapMemory, variable: Variable): unknown {
  const size = variable.codec.size;
  if (size === 0) return variable.codec.read(new DataView(new ArrayBuffer(0)), 0);
  // Observed (for replay) when taken, read at once: the live bytes, with no copy.
  const bytes = memory.view(variable.offset, size);
  return variable.codec.read(new DataView(bytes.buffer, bytes.byteOffset, size), 0);
}

function writeVariable(memory: MapMemory, variable: Variable, value: unknown): void {
  // Encoded aside first: a value the codec refuses leaves the memory as it was.
  const bytes = new Uint8Array(variable.codec.size);
  try {
    variable.codec.write(new DataView(bytes.buffer), 0, value);
  } catch (error) {
    if (error instanceof Error) error.message = `${variable.name}: ${error.message}`;
    throw error;
  }
  memory.write(variable.offset, bytes);
}

// A method, as a class would define it: not enumerable.
Object.defineProperty(BpfObject.prototype, "globals", {
  value: function(this: BpfObject, section: string, options?: MemoryOptions): Globals {
    const map = this.maps.get(section);
    if (map === undefined) {
      const sections = [...this.maps.keys()].filter((name) => name.startsWith("."));
      throw new TypeError(
        `globals: the object has no map '${section}' (global data: ${
          sections.join(", ") || "none"
        })`,
      );
    }
    return globals(map, options);
  },
  writable: true,
  configurable: true,
});
