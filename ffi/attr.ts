/**
 * One command's `union bpf_attr`, packed in place: an off-heap buffer of
 * exactly the command's size, written field by field through the layout in
 * `commands.ts`, and the buffers its pointer fields lead to, kept referenced
 * until the call has returned.
 *
 * @module
 */

import type { Command, Direction, Field, Layout } from "./commands.ts";
import { addressOf, type AddressSpace, offHeapBytes } from "./memory.ts";

/** A buffer whose address sits inside a struct another pointer field leads to. */
export interface NestedPointer {
  /** The pointer field of the struct's layout. */
  readonly field: Field;
  readonly bytes: Uint8Array;
}

const TWO_TO_32 = 0x1_0000_0000;

/**
 * A reusable attr for one command. A system keeps one per command and every
 * call sets all the fields it uses, so packing allocates nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Attr } from "./attr.ts";
 * import { BPF_MAP_LOOKUP_BATCH } from "./commands.ts";
 * import { liveKernel } from "./kernel.ts";
 *
 * const attr = new Attr(BPF_MAP_LOOKUP_BATCH, liveKernel().backend);
 * attr.setU32(BPF_MAP_LOOKUP_BATCH.fields.count, 4096);
 * assert.equal(attr.bytes.byteLength, 56);
 * assert.equal(attr.getU32(BPF_MAP_LOOKUP_BATCH.fields.count), 4096);
 * assert.deepEqual(attr.bytes.subarray(32, 36), new Uint8Array([0, 0x10, 0, 0])); // offset 32, LE
 * ```
 */
export class Attr<F extends string = string> {
  /** The command this attr belongs to. */
  readonly command: Command<F>;
  /** The attr's bytes: exactly `command.size` long, off-heap. */
  readonly bytes: Uint8Array;
  /** The address of `bytes`. */
  readonly address: number;
  /** The buffer bound to each pointer field, by the field's `slot`; `null` for NULL. */
  readonly pointees: (Uint8Array | null)[];
  /** Each pointer field's direction in the call being made (the layout's unless overridden). */
  readonly directions: Direction[];
  /** The struct layout each pointer field leads to in this call, if it has one (info structs). */
  readonly layouts: (Layout | null)[];
  /** Buffers bound to pointers inside each pointer field's struct, by slot. */
  readonly nested: NestedPointer[][];
  /**
   * The `count` field the kernel writes back (batch commands), read before a
   * call so that an interrupted one is only asked again if it did nothing.
   */
  readonly countField: Field | undefined;
  /**
   * Whether the attr belongs to one map and is packed once (see `ffi/bpf.ts`'s
   * `ElementCalls`): its pointees are that map's own scratch, kept bound
   * across calls instead of released after each.
   */
  readonly packedOnce: boolean;
  readonly #view: DataView;
  readonly #backend: AddressSpace;

  /**
   * `bytes`, when given, is off-heap memory of exactly `command.size` bytes
   * the attr is packed in (carved from a map's arena); else it gets its own.
   */
  constructor(
    command: Command<F>,
    backend: AddressSpace,
    opts: { bytes?: Uint8Array; packedOnce?: boolean } = {},
  ) {
    this.command = command;
    this.#backend = backend;
    this.bytes = opts.bytes ?? offHeapBytes(command.size);
    if (this.bytes.byteLength !== command.size) {
      throw new RangeError(
        `${command.name}: an attr is ${command.size} bytes, got ${this.bytes.byteLength}`,
      );
    }
    this.#view = new DataView(this.bytes.buffer, this.bytes.byteOffset, command.size);
    this.address = addressOf(backend, this.bytes);
    this.countField = (command.fields as Record<string, Field | undefined>).count;
    this.packedOnce = opts.packedOnce ?? false;
    const pointers = command.fieldList.filter((field) => field.kind === "pointer");
    this.pointees = pointers.map(() => null);
    this.directions = pointers.map((field) => field.direction);
    this.layouts = pointers.map(() => null);
    this.nested = pointers.map(() => []);
  }

  /** Writes a u32 or fd field. */
  setU32(field: Field, value: number): void {
    this.#view.setUint32(field.offset, value, true);
  }

  /** Reads a u32 or fd field (what the kernel wrote back, after a call). */
  getU32(field: Field): number {
    return this.#view.getUint32(field.offset, true);
  }

  /** Writes a u64 field from a safe integer, as two u32 halves (no BigInt per call). */
  setU64(field: Field, value: number): void {
    this.#view.setUint32(field.offset, value >>> 0, true);
    this.#view.setUint32(field.offset + 4, Math.floor(value / TWO_TO_32), true);
  }

  /** Writes a u64 field from a bigint. */
  setBigU64(field: Field, value: bigint): void {
    this.#view.setBigUint64(field.offset, value, true);
  }

  /** Reads a u64 field. */
  getBigU64(field: Field): bigint {
    return this.#view.getBigUint64(field.offset, true);
  }

  /**
   * Points a pointer field at `bytes` (or NULL), and keeps `bytes` referenced
   * until {@linkcode Attr.release}. Pass `address` when the caller has it
   * cached, to skip the lookup, and `direction` where this call's kernel use
   * differs from the layout's (a bloom filter's lookup reads its value).
   */
  setPointer(
    field: Field,
    bytes: Uint8Array | null,
    address: number = bytes === null ? 0 : addressOf(this.#backend, bytes),
    direction: Direction = field.direction,
    layout: Layout | null = null,
  ): void {
    this.pointees[field.slot!] = bytes;
    this.directions[field.slot!] = direction;
    this.layouts[field.slot!] = layout;
    this.setU64(field, address);
  }

  /**
   * Points `nested`, a pointer field of the struct `field` leads to (see
   * `setPointer`'s `layout`), at `bytes`, kept referenced until
   * {@linkcode Attr.release} like the attr's own pointees.
   */
  setNestedPointer(field: Field, nested: Field, bytes: Uint8Array): void {
    const slot = field.slot!;
    const struct = this.pointees[slot];
    if (struct == null || this.layouts[slot] == null) {
      throw new Error(`${field.name}: bind the struct with its layout first`);
    }
    new DataView(struct.buffer, struct.byteOffset, struct.byteLength)
      .setBigUint64(nested.offset, BigInt(addressOf(this.#backend, bytes)), true);
    this.nested[slot]!.push({ field: nested, bytes });
  }

  /** Writes a NUL-padded char array field; `text` must fit with its NUL. */
  setChars(field: Field, text: string): void {
    this.bytes.fill(0, field.offset, field.offset + field.size);
    for (let i = 0; i < text.length; i++) {
      this.bytes[field.offset + i] = text.charCodeAt(i);
    }
  }

  /** The buffer a pointer field leads to in the call being made, or `null`. */
  pointee(field: Field): Uint8Array | null {
    return this.pointees[field.slot!] ?? null;
  }

  /** Zeroes every field: for commands whose calls set only some of them. */
  clear(): void {
    this.bytes.fill(0);
    this.release();
  }

  /** Drops the references to pointed-to buffers once the call has returned. */
  release(): void {
    if (this.packedOnce) return;
    for (let slot = 0; slot < this.pointees.length; slot++) {
      this.pointees[slot] = null;
      this.layouts[slot] = null;
      if (this.nested[slot]!.length > 0) this.nested[slot] = [];
    }
  }
}
