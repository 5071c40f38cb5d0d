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
 *   json.stringField("name", "it's \\ \x07");
 *   json.rawField("frozen", 0);
 *   json.endObject();
 *   json.finish();
 *   json.out.flush();
 *   closeSync(fd);
 * }
 * assert.equal(
 *   readFileSync(join(dir, "false"), "utf8"),
 *   `{"key":["0x01","0x00"],"name":"it's \\\\ \\u0007","frozen":0}\n`,
 * );
 * assert.equal(
 *   readFileSync(join(dir, "true"), "utf8"),
 *   `{\n    "key": ["0x01","0x00"\n    ],\n    "name": "it's \\\\ \\u0007",\n    "frozen": 0\n}\n`,
 * );
 * // Unlike bpftool's (which writes \' and a raw \x07), it parses:
 * assert.equal(JSON.parse(readFileSync(join(dir, "true"), "utf8")).name, "it's \\ \x07");
 * rmSync(dir, { recursive: true });
 * ```
 */
export class JsonWriter {
  readonly out: Output;
  readonly pretty: boolean;
  #depth = 0;
  #separate = false;
  /** The closing brackets of the collections open now, innermost last. */
  readonly #open: string[] = [];
  /** A member's name was written and its value was not yet. */
  #named = false;
  /** Something was written at the top level: a second document there would not be JSON. */
  #started = false;

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
    this.#named = true;
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

  /**
   * Writes an error where the document stands and closes every collection
   * still open, so that what was written stays one JSON document, as bpftool's
   * `p_err` does inside the array of a `map show`: `{"error":...}` at the top
   * level or as an element of an open array, an `"error"` member of an open
   * object, or the value of a member whose name was written.
   *
   * @returns false, writing nothing, when a whole document was written
   * already: the error must go elsewhere (stderr).
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
   * const dir = mkdtempSync(join(tmpdir(), "bpfmap-json-"));
   * const fd = openSync(join(dir, "out"), "w");
   * const json = new JsonWriter(new Output(fd), false);
   * json.startArray(); // a dump that fails after its first element
   * json.keyValue(new Uint8Array([1]), 0, 1, new Uint8Array([2]), 0, 1);
   * assert.equal(json.fail("lookup batch failed"), true);
   * assert.equal(json.fail("a second error"), false); // the document is whole: not here
   * json.finish();
   * json.out.flush();
   * closeSync(fd);
   * const text = readFileSync(join(dir, "out"), "utf8");
   * assert.equal(text, `[{"key":["0x01"],"value":["0x02"]},{"error":"lookup batch failed"}]\n`);
   * assert.deepEqual(JSON.parse(text)[1], { error: "lookup batch failed" });
   * rmSync(dir, { recursive: true });
   * ```
   */
  fail(message: string): boolean {
    if (this.#named) this.#errorObject(message);
    else if (this.#open.at(-1) === "}") this.stringField("error", message);
    else if (this.#open.length > 0 || !this.#started) this.#errorObject(message);
    else return false;
    while (this.#open.length > 0) this.#end(this.#open.at(-1)!);
    return true;
  }

  /** Ends the document with a new line, as bpftool's `jsonw_destroy`. */
  finish(): void {
    this.out.write("\n");
  }

  #errorObject(message: string): void {
    this.startObject();
    this.stringField("error", message);
    this.endObject();
  }

  #begin(bracket: string): void {
    this.#comma();
    this.out.write(bracket);
    this.#depth++;
    this.#separate = false;
    this.#open.push(bracket === "{" ? "}" : "]");
  }

  #end(bracket: string): void {
    this.#depth--;
    this.#open.pop();
    if (this.#separate) this.#newLine();
    this.out.write(bracket);
    this.#separate = true;
  }

  #comma(): void {
    if (this.#separate) this.out.write(",");
    this.#separate = true;
    // A value follows: whatever name was pending has it now.
    this.#named = false;
    this.#started = true;
  }

  #newLine(): void {
    if (this.pretty) this.out.write("\n" + "    ".repeat(this.#depth));
  }
}

/**
 * A JSON string as bpftool's `jsonw_puts` writes it, except where that is not
 * JSON: bpftool writes `'` as `\'`, a backslash as `\n` and other control
 * characters raw; here they are `'`, `\\` and `\u00XX`, so that `-j` output
 * always parses.
 */
function quote(text: string): string {
  let quoted = "\"";
  for (const char of text) {
    switch (char) {
      case "\t":
        quoted += "\\t";
        break;
      case "\n":
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
      case "\\":
        quoted += "\\\\";
        break;
      case "\"":
        quoted += "\\\"";
        break;
      default:
        quoted += char < " " ? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}` : char;
    }
  }
  return quoted + "\"";
}
