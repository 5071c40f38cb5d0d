/**
 * Elements of maps with BTF, printed as bpftool's `btf_dumper` prints them:
 * the `"formatted"` member of `-j` output, and the pretty JSON that replaces
 * the hex lines of a plain dump. Ints in decimal, bitfields and 128-bit ints
 * in hex, `char` arrays holding text as strings, enums by name, structs and
 * unions with their member names.
 *
 * @module
 */

import type { BtfType } from "../btf/types.ts";
import { resolveType, sizeOfType, typeAt } from "../btf/types.ts";
import { isPerCpu } from "../ffi/map_types.ts";
import { cpuSlotAt } from "../ffi/percpu.ts";
import type { MapBtfIds } from "../maps/bpf_map.ts";
import type { JsonWriter } from "./json_writer.ts";

/** What the formatter needs to know of a map (a `BpfMap` has it). */
export interface BtfMapShape {
  type: number;
  valueSize: number;
  btfIds: MapBtfIds;
}

/**
 * Prints one map's elements through its BTF. `plainText` is bpftool's
 * `is_plain_text`: true for the plain dump, false inside `-j` output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import type { BtfType } from "../btf/types.ts";
 * import { BtfFormatter } from "./btf_format.ts";
 * import { JsonWriter } from "./json_writer.ts";
 * import { Output } from "./output.ts";
 *
 * const types: BtfType[] = [
 *   { kind: "void", name: "" },
 *   { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" },
 * ];
 * const btfIds = { btfId: 1, keyTypeId: 1, valueTypeId: 1, vmlinuxValueTypeId: 0 };
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const json = new JsonWriter(out, false);
 * new BtfFormatter(types, { type: 1, valueSize: 4, btfIds }, 1, false)
 *   .entry(json, new Uint8Array([7, 0, 0, 0]), 0, new Uint8Array([255, 255, 255, 255]), 0);
 * json.finish();
 * out.flush();
 * closeSync(out.fd);
 * // A signed int prints in decimal: 0xffffffff is -1.
 * assert.equal(readFileSync(`${dir}/out`, "utf8"), '{"key":7,"value":-1}\n');
 * rmSync(dir, { recursive: true });
 * ```
 */
export class BtfFormatter {
  readonly #types: readonly BtfType[];
  readonly #map: BtfMapShape;
  readonly #cpus: number;
  readonly #plainText: boolean;
  #view: DataView = new DataView(new ArrayBuffer(0));

  constructor(types: readonly BtfType[], map: BtfMapShape, cpus: number, plainText: boolean) {
    this.#types = types;
    this.#map = map;
    this.#cpus = cpus;
    this.#plainText = plainText;
  }

  /** One element, as bpftool's `do_dump_btf`: `{"key": ..., "value": ...}` (or `"values"` per CPU). */
  entry(
    json: JsonWriter,
    keys: Uint8Array,
    keyAt: number,
    values: Uint8Array,
    valueAt: number,
  ): void {
    const { btfIds, type, valueSize } = this.#map;
    json.startObject();
    ok: {
      if (btfIds.keyTypeId !== 0) {
        json.name("key");
        if (!this.#dump(json, keys, btfIds.keyTypeId, keyAt, 0)) break ok;
      }
      const valueType = btfIds.valueTypeId;
      if (!isPerCpu(type)) {
        json.name("value");
        this.#dump(json, values, valueType, valueAt, 0);
        break ok;
      }
      json.name("values");
      json.startArray();
      for (let cpu = 0; cpu < this.#cpus; cpu++) {
        json.startObject();
        json.rawField("cpu", cpu);
        json.name("value");
        const done = this.#dump(json, values, valueType, cpuSlotAt(valueSize, cpu, valueAt), 0);
        json.endObject();
        if (!done) break;
      }
      json.endArray();
    }
    json.endObject();
  }

  /** bpftool's `btf_dumper_do_type`; false where it gives up (it leaves what it wrote). */
  #dump(json: JsonWriter, bytes: Uint8Array, id: number, at: number, bitOffset: number): boolean {
    if (this.#view.buffer !== bytes.buffer || this.#view.byteOffset !== bytes.byteOffset) {
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const type = typeAt(this.#types, id);
    switch (type.kind) {
      case "int":
        this.#int(json, type, at, bitOffset);
        return true;
      case "struct":
      case "union": {
        json.startObject();
        let done = true;
        for (const member of type.members) {
          json.name(member.name);
          const memberAt = at + Math.floor(member.bitOffset / 8);
          if (member.bitSize !== 0) {
            json.raw(this.#bits(memberAt, member.bitOffset % 8, member.bitSize));
          } else if (!this.#dump(json, bytes, member.type, memberAt, member.bitOffset % 8)) {
            done = false;
            break;
          }
        }
        json.endObject();
        return done;
      }
      case "array": {
        const text = this.#text(bytes, type, at);
        if (text !== undefined) {
          json.string(text);
          return true;
        }
        const size = sizeOfType(this.#types, type.type);
        json.startArray();
        let done = true;
        for (let i = 0; i < type.length && done; i++) {
          done = this.#dump(json, bytes, type.type, at + i * size, 0);
        }
        json.endArray();
        return done;
      }
      case "enum":
      case "enum64": {
        const value = this.#signed(at, type.kind === "enum64" ? 8 : type.size);
        // bpftool compares with the enumerator as an s32 (enum) or u64 (enum64).
        const width = type.kind === "enum64" ? 64 : 32;
        const match = type.values.find((e) => BigInt.asIntN(width, e.value) === value);
        if (match !== undefined) json.string(match.name);
        else json.raw(String(value));
        return true;
      }
      case "ptr": {
        const value = this.#view.getBigUint64(at, true);
        json.raw(
          this.#plainText ? (value === 0n ? "(nil)" : `0x${value.toString(16)}`) : String(value),
        );
        return true;
      }
      case "void":
        json.raw("(unknown)");
        return true;
      case "fwd":
        json.raw("(fwd-kind-invalid)");
        return false;
      case "typedef":
      case "volatile":
      case "const":
      case "restrict":
        return this.#dump(json, bytes, resolveType(this.#types, id), at, bitOffset);
      case "var": {
        json.startObject();
        json.name(type.name);
        const done = this.#dump(json, bytes, type.type, at, bitOffset);
        json.endObject();
        return done;
      }
      case "datasec": {
        json.startObject();
        json.name(type.name);
        json.startArray();
        let done = true;
        for (const v of type.vars) {
          if (!(done = this.#dump(json, bytes, v.type, at + v.offset, 0))) break;
        }
        json.endArray();
        json.endObject();
        return done;
      }
      default:
        json.raw("(unsupported-kind");
        return false;
    }
  }

  /** bpftool's `btf_dumper_int`. */
  #int(
    json: JsonWriter,
    type: Extract<BtfType, { kind: "int" }>,
    at: number,
    bitOffset: number,
  ): void {
    const view = this.#view;
    const { bits } = type;
    if (bitOffset !== 0 || type.bitOffset !== 0 || bits % 8 !== 0) {
      const total = bitOffset + type.bitOffset;
      json.raw(this.#bits(at + Math.floor(total / 8), total % 8, bits));
      return;
    }
    if (bits === 128) {
      json.raw(this.#hex128(view.getBigUint64(at + 8, true), view.getBigUint64(at, true)));
      return;
    }
    switch (type.encoding) {
      case "unsigned":
      case "signed": {
        if (bits !== 8 && bits !== 16 && bits !== 32 && bits !== 64) {
          json.raw(this.#bits(at, 0, bits));
          return;
        }
        const value = type.encoding === "signed"
          ? this.#signed(at, bits / 8)
          : BigInt.asUintN(bits, this.#signed(at, bits / 8));
        json.raw(String(value));
        return;
      }
      case "char": {
        const byte = view.getUint8(at);
        if (byte >= 0x20 && byte < 0x7f) json.raw(`"${String.fromCharCode(byte)}"`);
        else if (this.#plainText) json.raw(`0x${byte.toString(16)}`);
        else json.raw(`"\\u00${byte.toString(16).padStart(2, "0")}"`);
        return;
      }
      case "bool":
        json.raw(view.getUint8(at) !== 0 ? "true" : "false");
        return;
    }
  }

  /** A little-endian signed integer of `size` bytes. */
  #signed(at: number, size: number): bigint {
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.#view.getUint8(at + i));
    return BigInt.asIntN(size * 8, value);
  }

  /** bpftool's `btf_dumper_bitfield`: `bits` bits from `bit` bits into `at`, in hex. */
  #bits(at: number, bit: number, bits: number): string {
    const bytes = Math.ceil((bit + bits) / 8);
    let word = 0n;
    for (let i = bytes - 1; i >= 0; i--) {
      const index = at + i;
      word = (word << 8n) | BigInt(index < this.#view.byteLength ? this.#view.getUint8(index) : 0);
    }
    const value = (word >> BigInt(bit)) & ((1n << BigInt(bits)) - 1n);
    return this.#hex128(value >> 64n, value & 0xffff_ffff_ffff_ffffn);
  }

  /** bpftool's `btf_int128_print`. */
  #hex128(upper: bigint, lower: bigint): string {
    const text = upper === 0n
      ? `0x${lower.toString(16)}`
      : `0x${upper.toString(16)}${lower.toString(16).padStart(16, "0")}`;
    return this.#plainText ? text : `"${text}"`;
  }

  /** The text of a `char` array that holds a NUL-terminated printable string (bpftool's `is_str_array`). */
  #text(
    bytes: Uint8Array,
    type: Extract<BtfType, { kind: "array" }>,
    at: number,
  ): string | undefined {
    if (type.length === 0) return undefined;
    let element = typeAt(this.#types, type.type);
    while (
      element.kind === "volatile" || element.kind === "const" || element.kind === "restrict"
      || element.kind === "type_tag"
    ) {
      element = typeAt(this.#types, element.type);
    }
    if (element.kind !== "int" || element.size !== 1) return undefined;
    if (element.encoding !== "char" && element.name !== "char") return undefined;
    for (let i = 0; i < type.length; i++) {
      const byte = bytes[at + i];
      if (byte === undefined) return undefined; // past the buffer: no NUL, so not text
      if (byte === 0) return String.fromCharCode(...bytes.subarray(at, at + i));
      if (byte <= 0x1f || byte >= 0x7f) return undefined;
    }
    return undefined;
  }
}
