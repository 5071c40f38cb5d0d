/**
 * `map.typed()` and `map.typedPerCpu()`: the typed layer adds them to
 * `BpfMap`, so the raw map never imports codecs or BTF decoding. The
 * `declare module` block tells the type checker; importing this module (as
 * `mod.ts` does) puts the methods on every map.
 *
 * @module
 */

import { typeAt } from "../btf/types.ts";
import { isPerCpu } from "../ffi/map_types.ts";
import { cpusInStride } from "../ffi/percpu.ts";
import { describe } from "../ffi/validate.ts";
import { BpfMap } from "../maps/bpf_map.ts";
import { codecOfType } from "./btf.ts";
import { bytes, type Codec, noKey, u32 } from "./codec.ts";
import { perCpu, TypedMap, type TypedSpec } from "./typed_map.ts";

declare module "../maps/bpf_map.ts" {
  interface BpfMap {
    // Restated, and BpfMap no longer says `implements Disposable`: with this
    // augmentation, Deno 2.9's checker (TypeScript 6.0.3) loses the class's
    // computed [Symbol.dispose] member when some files are checked before
    // mod.ts (e.g. `deno check tests/ mod.ts`); tsc is unaffected.
    [Symbol.dispose](): void;
    /**
     * This map seen through codecs (see `codec/`): `get`, `set`, `entries()`,
     * `setMany`, `drain()`, zero-copy `batches()`; `push`, `pop`, `peek` and
     * `contains` for maps without keys, whose spec may leave `key` out.
     *
     * @example
     * ```ts
     * import assert from "node:assert/strict";
     * import { BpfMap, u32, u64 } from "../mod.ts";
     *
     * using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 8 });
     * map.typed({ key: u32, value: u64 }).set(7, 70n);
     * assert.equal(map.typed({ key: u32, value: u64 }).get(7), 70n);
     * ```
     *
     * @throws {TypeError} if a codec's size is not the map's; per-CPU maps take
     * {@linkcode BpfMap.typedPerCpu}.
     */
    typed<K, V>(spec: TypedSpec<K, V>): TypedMap<K, V>;
    /** A queue, stack or bloom filter seen through its value codec. */
    typed<V>(spec: { value: Codec<V> }): TypedMap<undefined, V>;
    /**
     * This map seen through codecs built from its BTF (the types the program
     * that created it described): field names included. A map without a BTF
     * key type gets raw-byte keys.
     *
     * @throws {TypeError} if the map has no BTF value type.
     */
    typed(): TypedMap<unknown, unknown>;
    /** A per-CPU map seen through codecs: each value is an array of one value per possible CPU. */
    typedPerCpu<K, V>(spec: TypedSpec<K, V>): TypedMap<K, V[]>;
    /** A per-CPU map seen through codecs built from its BTF (see {@linkcode BpfMap.typed}). */
    typedPerCpu(): TypedMap<unknown, unknown[]>;
  }
}

function typed(
  this: BpfMap,
  spec?: Partial<TypedSpec<unknown, unknown>>,
): TypedMap<unknown, unknown> {
  checkOpen(this, "typed");
  return new TypedMap(this, codecsOf(this, "typed", spec));
}

function typedPerCpu(
  this: BpfMap,
  spec?: TypedSpec<unknown, unknown>,
): TypedMap<unknown, unknown[]> {
  checkOpen(this, "typedPerCpu");
  if (!isPerCpu(this.type)) throw new TypeError(`typedPerCpu: ${this} is not per-CPU`);
  const { key, value } = codecsOf(this, "typedPerCpu", spec);
  const cpus = cpusInStride(this.valueStride, this.valueSize);
  return new TypedMap(this, { key, value: perCpu(value, cpus) });
}

// Methods, as a class would define them: not enumerable.
Object.defineProperties(BpfMap.prototype, {
  typed: { value: typed, writable: true, configurable: true },
  typedPerCpu: { value: typedPerCpu, writable: true, configurable: true },
});

/** The raw map's own refusal of a closed map, in its words (use after close is a TypeError). */
function checkOpen(map: BpfMap, op: string): void {
  if (map.closed) throw new TypeError(`${op}: ${map} is closed`);
}

/** The codecs of a typed view: the caller's (`noKey` where a keyless map's spec has none), or the BTF's. */
function codecsOf(
  map: BpfMap,
  op: string,
  spec: Partial<TypedSpec<unknown, unknown>> | undefined,
): TypedSpec<unknown, unknown> {
  if (spec === undefined) return btfCodecsOf(map, op);
  if (spec === null || typeof spec !== "object" || spec.value === undefined) {
    throw new TypeError(`${op}: spec must be { key, value }, got ${describe(spec)}`);
  }
  if (spec.key === undefined && map.keySize !== 0) {
    throw new TypeError(`${op}: spec.key is missing; ${map} has ${map.keySize}-byte keys`);
  }
  return { key: spec.key ?? noKey, value: spec.value };
}

/** Key and value codecs from the map's BTF. */
function btfCodecsOf(map: BpfMap, op: string): TypedSpec<unknown, unknown> {
  const { keyTypeId, valueTypeId } = map.btfIds;
  if (valueTypeId === 0) {
    throw new TypeError(`${op}: ${map} has no BTF value type; pass codecs`);
  }
  using btf = map.btf()!;
  const value = codecOfType(btf.types, valueTypeId);
  if (keyTypeId !== 0) return { key: codecOfType(btf.types, keyTypeId), value };
  // Global data (.bss, .data, .rodata): libbpf gives the section's one-element array no key
  // type, and its key is an array index.
  const globalData = typeAt(btf.types, valueTypeId).kind === "datasec" && map.keySize === 4;
  return { key: map.keySize === 0 ? noKey : globalData ? u32 : bytes(map.keySize), value };
}
