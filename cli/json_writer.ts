/**
 * A streaming JSON writer that writes byte for byte what bpftool's
 * `json_writer` writes, compact (`-j`) or pretty (`-p`): commas after
 * members, a new line and four spaces per level before every name and every
 * closing bracket of a non-empty collection, and none between array values.
 *
 * @module
 */

import type { Output } from "./output.ts";

/**
 * Writes JSON to an {@linkcode Output} as bpftool does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { JsonWriter } from "./json_writer.ts";
 * import { Output } from "./output.ts";
 *
 * // What -j (compact) and -p (pretty) write for the same calls.
 * const dir = mkdtempSync(join(tmpdir(), "bpfmap-json-"));
 * for (const pretty of [false, true]) {
 *   const fd = openSync(join(dir, String(pretty)), "w");
 *   const json = new JsonWriter(new Output(fd), pretty);
 *   json.startObject();
 *   json.name("key");
 *   json.hexArray(new Uint8Array([1, 0]), 0, 2);
 *   json.stringField("name", "it's");
 *   json.rawField("frozen", 0);
 *   json.endObject();
 *   json.finish();
 *   json.out.flush();
 *   closeSync(fd);
 * }
 * assert.equal(
 *   readFileSync(join(dir, "false"), "utf8"),
 *   `{"key":["0x01","0x00"],"name":"it\\'s","frozen":0}\n`,
 * );
 * assert.equal(
 *   readFileSync(join(dir, "true"), "utf8"),
 *   `{\n    "key": ["0x01","0x00"\n    ],\n    "name": "it\\'s",\n    "frozen": 0\n}\n`,
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export class JsonWriter {
  readonly out: Output;
  readonly pretty: boolean;
  #depth = 0;
  #separate = false;

  constructor(out: Output, pretty: boolean) {
    this.out = out;
    this.pretty = pretty;
  }

  /** Starts an object: `{`. */
  startObject(): void {
    this.#begin("{");
  }

  /** Ends an object: `}`. */
  endObject(): void {
    this.#end("}");
  }

  /** Starts an array: `[`. */
  startArray(): void {
    this.#begin("[");
  }

  /** Ends an array: `]`. */
  endArray(): void {
    this.#end("]");
  }

  /** A member's name; its value follows. */
  name(name: string): void {
    this.#comma();
    this.#newLine();
    this.#separate = false;
    this.out.write(quote(name) + (this.pretty ? ": " : ":"));
  }

  /** A value written as is: a number, `null`, `true`. */
  raw(value: string): void {
    this.#comma();
    this.out.write(value);
  }

  /** A string value. */
  string(value: string): void {
    this.#comma();
    this.out.write(quote(value));
  }

  /** `"name": value` with a raw value. */
  rawField(name: string, value: string | number): void {
    this.name(name);
    this.raw(String(value));
  }

  /** `"name": "value"`. */
  stringField(name: string, value: string): void {
    this.name(name);
    this.string(value);
  }

  /** `bytes[start..end]` as an array of `"0x.."` strings, as bpftool's `print_hex_data_json`. */
  hexArray(bytes: Uint8Array, start: number, end: number): void {
    this.#comma();
    this.out.write("[");
    this.out.jsonHex(bytes, start, end);
    // A non-empty array ends on a new line, as every non-empty collection.
    if (end > start && this.pretty) this.out.write("\n" + "    ".repeat(this.#depth));
    this.out.write("]");
    this.#separate = true;
  }

  /**
   * `{"key":[...],"value":[...]}` in one go: what the calls startObject,
   * name, hexArray, name, hexArray, endObject write in compact mode (the hot
   * path of a dump). Pretty mode takes those calls.
   */
  keyValue(
    keys: Uint8Array,
    keyAt: number,
    keySize: number,
    values: Uint8Array,
    valueAt: number,
    valueSize: number,
  ): void {
    if (this.pretty) {
      this.startObject();
      this.name("key");
      this.hexArray(keys, keyAt, keyAt + keySize);
      this.name("value");
      this.hexArray(values, valueAt, valueAt + valueSize);
      this.endObject();
      return;
    }
    this.#comma();
    this.out.write("{\"key\":[");
    this.out.jsonHex(keys, keyAt, keyAt + keySize);
    this.out.write("],\"value\":[");
    this.out.jsonHex(values, valueAt, valueAt + valueSize);
    this.out.write("]}");
    this.#separate = true;
  }

  /** Ends the document with a new line, as bpftool's `jsonw_destroy`. */
  finish(): void {
    this.out.write("\n");
  }

  #begin(bracket: string): void {
    this.#comma();
    this.out.write(bracket);
    this.#depth++;
    this.#separate = false;
  }

  #end(bracket: string): void {
    this.#depth--;
    if (this.#separate) this.#newLine();
    this.out.write(bracket);
    this.#separate = true;
  }

  #comma(): void {
    if (this.#separate) this.out.write(",");
    this.#separate = true;
  }

  #newLine(): void {
    if (this.pretty) this.out.write("\n" + "    ".repeat(this.#depth));
  }
}

/** A JSON string as bpftool's `jsonw_puts` writes it (C escapes; a backslash comes out as `\n`, as there). */
function quote(text: string): string {
  let quoted = "\"";
  for (const char of text) {
    switch (char) {
      case "\t":
        quoted += "\\t";
        break;
      case "\n":
      case "\\":
        quoted += "\\n";
        break;
      case "\r":
        quoted += "\\r";
        break;
      case "\f":
        quoted += "\\f";
        break;
      case "\b":
        quoted += "\\b";
        break;
      case "\"":
        quoted += "\\\"";
        break;
      case "'":
        quoted += "\\'";
        break;
      default:
        quoted += char;
    }
  }
  return quoted + "\"";
}
