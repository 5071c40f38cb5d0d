/**
 * How bpftool prints maps and their elements, plain and as JSON (values of
 * maps with BTF go through `btf_format.ts`): `map show`, the entries of `map dump` and `map lookup`, and
 * lookup errors inside a dump.
 *
 * @module
 */

import { ENOENT, errnoDescription } from "../ffi/errno.ts";
import { isPerCpu, mapType } from "../ffi/map_types.ts";
import { cpuSlotAt } from "../ffi/percpu.ts";
import type { BpfMap } from "../maps/bpf_map.ts";
import type { BtfFormatter } from "./btf_format.ts";
import type { JsonWriter } from "./json_writer.ts";
import type { Output } from "./output.ts";

/** What a map's element printers need to know. */
export interface MapShape {
  type: number;
  keySize: number;
  valueSize: number;
  cpus: number;
}

/**
 * The shape of an open map.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { shapeOf } from "./format.ts";
 *
 * using map = BpfMap.create({ type: "percpu_hash", keySize: 4, valueSize: 8, maxEntries: 16 });
 * assert.deepEqual(shapeOf(map, 2), { type: 5, keySize: 4, valueSize: 8, cpus: 2 });
 * ```
 */
export function shapeOf(map: BpfMap, cpus: number): MapShape {
  return { type: map.type, keySize: map.keySize, valueSize: map.valueSize, cpus };
}

/**
 * One element as bpftool's `print_entry_plain` prints it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { plainEntry } from "./format.ts";
 *
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const key = new Uint8Array([1, 0, 0, 0]);
 * const shape = { keySize: 4, valueSize: 4, cpus: 2 };
 * plainEntry(out, { ...shape, type: 1 }, key, 0, key, 0); // hash
 * const perCpu = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
 * plainEntry(out, { ...shape, type: 5 }, key, 0, perCpu, 0); // percpu_hash
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"),
 *   "key: 01 00 00 00  value: 01 00 00 00\n"
 *     + "key:\n01 00 00 00\nvalue (CPU 00): 01 00 00 00\nvalue (CPU 01): 02 00 00 00\n",
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export function plainEntry(
  out: Output,
  shape: MapShape,
  keys: Uint8Array,
  keyAt: number,
  values: Uint8Array,
  valueAt: number,
): void {
  const { keySize, valueSize } = shape;
  if (!isPerCpu(shape.type)) {
    const breakNames = keySize > 16 || valueSize > 16;
    const singleLine = keySize + valueSize <= 24 && !breakNames;
    if (keySize > 0) {
      out.write(breakNames ? "key:\n" : "key: ");
      out.plainHex(keys, keyAt, keyAt + keySize);
      out.write(singleLine ? "  " : "\n");
    }
    if (valueSize > 0) {
      out.write(breakNames ? "value:\n" : "value: ");
      out.plainHex(values, valueAt, valueAt + valueSize);
    }
    out.write("\n");
    return;
  }
  if (keySize > 0) {
    out.write("key:\n");
    out.plainHex(keys, keyAt, keyAt + keySize);
    out.write("\n");
  }
  if (valueSize > 0) {
    for (let cpu = 0; cpu < shape.cpus; cpu++) {
      const at = cpuSlotAt(valueSize, cpu, valueAt);
      out.write(`value (CPU ${String(cpu).padStart(2, "0")}):${valueSize > 16 ? "\n" : " "}`);
      out.plainHex(values, at, at + valueSize);
      out.write("\n");
    }
  }
}

/**
 * One element as bpftool's `print_entry_json` writes it, with `"formatted"` values for a map
 * with BTF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { jsonEntry } from "./format.ts";
 * import { JsonWriter } from "./json_writer.ts";
 *
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const json = new JsonWriter(out, false);
 * const shape = { type: 1, keySize: 2, valueSize: 1, cpus: 2 }; // a hash map
 * jsonEntry(json, shape, new Uint8Array([1, 0]), 0, new Uint8Array([255]), 0);
 * json.finish();
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"), '{"key":["0x01","0x00"],"value":["0xff"]}\n');
 * rmSync(dir, { recursive: true });
 * ```
 */
export function jsonEntry(
  json: JsonWriter,
  shape: MapShape,
  keys: Uint8Array,
  keyAt: number,
  values: Uint8Array,
  valueAt: number,
  formatter?: BtfFormatter,
): void {
  if (!isPerCpu(shape.type) && formatter === undefined) {
    json.keyValue(keys, keyAt, shape.keySize, values, valueAt, shape.valueSize);
    return;
  }
  json.startObject();
  json.name("key");
  json.hexArray(keys, keyAt, keyAt + shape.keySize);
  if (!isPerCpu(shape.type)) {
    json.name("value");
    json.hexArray(values, valueAt, valueAt + shape.valueSize);
  } else {
    json.name("values");
    json.startArray();
    for (let cpu = 0; cpu < shape.cpus; cpu++) {
      const at = cpuSlotAt(shape.valueSize, cpu, valueAt);
      json.startObject();
      json.rawField("cpu", cpu);
      json.name("value");
      json.hexArray(values, at, at + shape.valueSize);
      json.endObject();
    }
    json.endArray();
  }
  if (formatter !== undefined) {
    json.name("formatted");
    formatter.entry(json, keys, keyAt, values, valueAt);
  }
  json.endObject();
}

/**
 * A failed lookup inside a dump, as bpftool's `print_entry_error` prints it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { errorEntry } from "./format.ts";
 *
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const shape = { type: 1, keySize: 4, valueSize: 8, cpus: 2 }; // a hash map
 * errorEntry(out, undefined, shape, new Uint8Array([1, 0, 0, 0]), 2); // ENOENT: deleted meanwhile
 * errorEntry(out, undefined, shape, new Uint8Array([2, 0, 0, 0]), 1); // EPERM
 * errorEntry(out, undefined, shape, new Uint8Array([3, 0, 0, 0]), 524); // kernel-internal ENOTSUPP
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"),
 *   "key: 01 00 00 00  value: <no entry>\n"
 *     + "key:\n02 00 00 00\nvalue:\nOperation not permitted\n"
 *     + "key:\n03 00 00 00\nvalue:\nUnknown error 524\n",
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export function errorEntry(
  out: Output,
  json: JsonWriter | undefined,
  shape: MapShape,
  key: Uint8Array,
  errno: number,
): void {
  const type = mapType(shape.type);
  if (type.emptySlotsUnlisted && errno === ENOENT) return;
  if (json !== undefined) {
    json.startObject();
    json.name("key");
    json.hexArray(key, 0, shape.keySize);
    json.name("value");
    json.startObject();
    json.stringField("error", strerror(errno));
    json.endObject();
    json.endObject();
    return;
  }
  const message = errno === ENOENT
    ? "<no entry>"
    : errno === type.unreadableErrno
    ? "<cannot read>"
    : strerror(errno);
  const breakNames = shape.keySize > 16 || message.length > 16;
  const singleLine = shape.keySize + message.length <= 24 && !breakNames;
  out.write(breakNames ? "key:\n" : "key: ");
  out.plainHex(key, 0, shape.keySize);
  out.write((singleLine ? "  " : "\n") + (breakNames ? "value:\n" : "value: ") + message + "\n");
}

/**
 * An errno in glibc's `strerror` words, as bpftool prints it: the kernel's
 * own errnos (512 and up, never meant to reach user space, such as
 * `ENOTSUPP`, 524, from a perf_event_array's lookup) are `Unknown error N`.
 */
function strerror(errno: number): string {
  return errno >= 512 ? `Unknown error ${errno}` : errnoDescription(errno);
}

/**
 * The header line bpftool prints for a map in `show` and multi-map `dump`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BpfMap } from "../mod.ts";
 * import { plainHeader } from "./format.ts";
 *
 * const spec = { type: "hash", keySize: 4, valueSize: 8, maxEntries: 16, name: "flows" } as const;
 * using map = BpfMap.create(spec);
 * assert.equal(plainHeader(map), `${map.id}: hash  name flows  flags 0x0\n`);
 * ```
 */
export function plainHeader(map: BpfMap): string {
  return `${map.id}: ${map.typeName}  ${map.name ? `name ${map.name}  ` : ""}flags 0x${
    map.flags.toString(16)
  }\n`;
}

/**
 * The header members bpftool writes for a map in JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { BpfMap } from "../mod.ts";
 * import { jsonHeader } from "./format.ts";
 * import { JsonWriter } from "./json_writer.ts";
 *
 * using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 16 });
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const json = new JsonWriter(out, false);
 * json.startObject();
 * jsonHeader(json, map); // no name: no "name" member
 * json.endObject();
 * json.finish();
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"), `{"id":${map.id},"type":"array","flags":0}\n`);
 * rmSync(dir, { recursive: true });
 * ```
 */
export function jsonHeader(json: JsonWriter, map: BpfMap): void {
  json.rawField("id", map.id);
  json.stringField("type", map.typeName);
  if (map.name) json.stringField("name", map.name);
  json.rawField("flags", map.flags | 0);
}

/**
 * `map show` of one map, as bpftool's `show_map_close_plain`/`_json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { BpfMap } from "../mod.ts";
 * import { showMap } from "./format.ts";
 *
 * const spec = { type: "hash", keySize: 4, valueSize: 8, maxEntries: 16, name: "flows" } as const;
 * using map = BpfMap.create(spec);
 * map.freeze();
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * showMap(out, undefined, map);
 * const { memlock } = map.fdInfo();
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(readFileSync(`${dir}/out`, "utf8"),
 *   `${map.id}: hash  name flows  flags 0x0\n`
 *     + `\tkey 4B  value 8B  max_entries 16  memlock ${memlock}B\n\tfrozen\n`,
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export function showMap(out: Output, json: JsonWriter | undefined, map: BpfMap): void {
  const fdinfo = map.fdInfo();
  const frozen = Number(fdinfo.frozen ?? 0);
  const btfId = map.info().btfId;
  if (json !== undefined) {
    json.startObject();
    jsonHeader(json, map);
    json.rawField("bytes_key", map.keySize);
    json.rawField("bytes_value", map.valueSize);
    json.rawField("max_entries", map.maxEntries);
    if (fdinfo.memlock !== undefined) json.rawField("bytes_memlock", Number(fdinfo.memlock));
    json.rawField("frozen", frozen);
    if (btfId) json.rawField("btf_id", btfId);
    json.endObject();
    return;
  }
  let text = plainHeader(map)
    + `\tkey ${map.keySize}B  value ${map.valueSize}B  max_entries ${map.maxEntries}`;
  if (fdinfo.memlock !== undefined) text += `  memlock ${fdinfo.memlock}B`;
  if (btfId || frozen) text += "\n\t";
  if (btfId) text += `btf_id ${btfId}`;
  if (frozen) text += `${btfId ? "  " : ""}frozen`;
  out.write(text + "\n");
}
