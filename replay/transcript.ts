/**
 * The transcript format: what a recorded run of `bpf()` calls looks like on
 * disk, and how it is read back and checked.
 *
 * A transcript is one JSON document, written with one call per line so that
 * `git diff` shows which call changed. File descriptors appear as stable
 * handles (the first fd the kernel hands out is handle 1 in every run), map,
 * program and BTF ids as stable virtual ids, and addresses not at all (nor
 * values that vary from run to run, such as a test run's `duration`: 0).
 * Instructions are regions too, one per `BPF_PROG_LOAD` (a table of blobs
 * stored once per transcript is yet to come). Memory a pointer leads
 * to is a region: its size and the bytes the kernel read (`in`) and wrote
 * (`out`), as hex up to 64 bytes and as `base64:` beyond, so that a large dump
 * costs 4/3 of the bytes the kernel moved.
 *
 * @module
 */

import {
  BPF_BTF_INFO,
  BPF_LINK_INFO_RAW_TRACEPOINT,
  BPF_MAP_INFO,
  BPF_PROG_INFO,
  bytesWritten,
  COMMANDS,
  type Field,
  writesOnFailure,
} from "../ffi/commands.ts";
import { errnoNumber } from "../ffi/errno.ts";

/** The format's name, first in every transcript. */
export const TRANSCRIPT_FORMAT = "bpfmap-transcript";
/** The format version this module reads and writes. */
export const TRANSCRIPT_VERSION = 1;

/** What the recording machine was. */
export interface TranscriptHost {
  /** Kernel architecture name, e.g. `"x86_64"`. */
  arch: string;
  /** `/proc/sys/kernel/osrelease` of the recording host. */
  kernel: string;
  /** Possible CPUs of the recording host (the per-CPU value slots). */
  possibleCpus: number;
}

/** Memory a pointer leads to: `in` what the kernel read, `out` what it wrote. */
export interface RegionRecord {
  size: number;
  in?: string;
  out?: string;
  /** Regions that pointers inside this one lead to (`bpf_btf_info.btf`), by field name. */
  pointers?: Record<string, RegionRecord>;
}

/** A scalar the kernel writes back (`count`, `next_id`, `info_len`). */
export interface ScalarInOut {
  in: number;
  out: number;
}

/** One attr field as recorded. Fds are handles; `"foreign"` is an fd bpfmap did not get from the kernel. */
export type FieldRecord = number | string | null | ScalarInOut | RegionRecord;

/** One `bpf()` call. */
export interface CallEntry {
  call: string;
  attr: Record<string, FieldRecord>;
  /** The result: 0, or `{ fd: handle }` for a command that returns an fd. */
  result?: number | { fd: number };
  /** The errno name when the call failed. */
  errno?: string;
}

/** One `close()`: of the fd with this handle, or of one bpfmap never got from the kernel. */
export interface CloseEntry {
  close: number | "foreign";
  errno?: string;
}

/** One read of a map's fdinfo: only the fields that do not change from run to run. */
export interface FdInfoEntry {
  fdinfo: number | "foreign";
  fields: Record<string, string>;
}

/** What the transcript holds in call order. */
export type Entry = CallEntry | CloseEntry | FdInfoEntry;

/** A whole transcript. */
export interface Transcript {
  format: typeof TRANSCRIPT_FORMAT;
  version: number;
  host: TranscriptHost;
  /** Files bpfmap read through libc (`/sys/devices/system/cpu/possible`), by path. */
  files: Record<string, string>;
  entries: Entry[];
}

/**
 * A transcript that cannot be read: truncated, corrupt, of another format or
 * version, or holding an entry the kernel could not have written (a count
 * beyond the buffer, bytes where the kernel only reads, an unknown errno).
 * Transcripts are input like any other: nothing in one touches a buffer
 * before it has been checked against the command table.
 */
export class TranscriptError extends Error {
  /** The index of the entry at fault, from 0, if one is. */
  readonly entry: number | undefined;
  /** The field at fault (`"count.out"`, `"keys.out"`, `"errno"`), if one is. */
  readonly field: string | undefined;

  constructor(path: string, message: string, entry?: number, field?: string) {
    super(`${path}: ${message}`);
    this.name = "TranscriptError";
    this.entry = entry;
    this.field = field;
  }
}

const HEX_LIMIT = 64;
const BASE64 = "base64:";

/**
 * Encodes region bytes: hex up to 64 bytes, `base64:` beyond.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeBytes, encodeBytes } from "./transcript.ts";
 *
 * assert.equal(encodeBytes(new Uint8Array([1, 0, 0, 0])), "01000000");
 * assert.deepEqual(decodeBytes(encodeBytes(new Uint8Array(100).fill(7))), new Uint8Array(100).fill(7));
 * ```
 */
export function encodeBytes(bytes: Uint8Array): string {
  if (bytes.byteLength <= HEX_LIMIT) return toHex(bytes);
  return BASE64 + toBase64(bytes);
}

/**
 * How many bytes an encoded region holds, from its text alone (nothing is
 * decoded), or `undefined` if the text is not what {@linkcode encodeBytes}
 * writes: lower-case hex of up to 64 bytes, or canonical `base64:` beyond.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodedLength, encodeBytes } from "./transcript.ts";
 *
 * assert.equal(encodedLength(encodeBytes(new Uint8Array(100))), 100);
 * assert.equal(encodedLength("0100"), 2);
 * assert.equal(encodedLength("01 0"), undefined);
 * assert.equal(encodedLength("base64:AA"), undefined); // unpadded
 * ```
 */
export function encodedLength(text: unknown): number | undefined {
  if (typeof text !== "string") return undefined;
  if (text.startsWith(BASE64)) {
    const body = text.slice(BASE64.length);
    if (body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) return undefined;
    return body.length / 4 * 3 - (body.endsWith("==") ? 2 : body.endsWith("=") ? 1 : 0);
  }
  return text.length % 2 === 0 && /^[0-9a-f]*$/.test(text) ? text.length / 2 : undefined;
}

/** Decodes what {@linkcode encodeBytes} wrote. */
export function decodeBytes(text: string): Uint8Array {
  if (text.startsWith(BASE64)) return fromBase64(text.slice(BASE64.length));
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) {
    throw new TypeError(`not hex bytes: ${text.slice(0, 40)}`);
  }
  return fromHex(text);
}

/** ES2026's native codecs (Deno 2.9 and Bun 1.4 have them), where the engine has them. */
const native = Uint8Array as unknown as {
  fromBase64?: (text: string) => Uint8Array;
  fromHex?: (text: string) => Uint8Array;
  prototype: { toBase64?: () => string; toHex?: () => string };
};

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function toHex(bytes: Uint8Array): string {
  if (native.prototype.toHex !== undefined) {
    return (bytes as unknown as { toHex(): string }).toHex();
  }
  let hex = "";
  for (const byte of bytes) hex += HEX[byte];
  return hex;
}

function fromHex(text: string): Uint8Array {
  if (native.fromHex !== undefined) return native.fromHex(text);
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.byteLength; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  if (native.prototype.toBase64 !== undefined) {
    return (bytes as unknown as { toBase64(): string }).toBase64();
  }
  let binary = "";
  for (let i = 0; i < bytes.byteLength; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  if (native.fromBase64 !== undefined) return native.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The transcript as text: the header fields, then one entry per line.
 * Deterministic: the same transcript always gives the same bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTranscript, serializeTranscript, type Transcript } from "./transcript.ts";
 *
 * const transcript: Transcript = {
 *   format: "bpfmap-transcript",
 *   version: 1,
 *   host: { arch: "x86_64", kernel: "6.18", possibleCpus: 2 },
 *   files: {},
 *   entries: [{ call: "BPF_MAP_FREEZE", attr: { map_fd: 1 }, result: 0 }, { close: 1 }],
 * };
 * const text = serializeTranscript(transcript);
 * assert.equal(text.split("\n")[2], '  {"call":"BPF_MAP_FREEZE","attr":{"map_fd":1},"result":0},');
 * assert.deepEqual(parseTranscript(text, "t.json"), transcript);
 * assert.throws(() => parseTranscript("{}", "t.json"), /t\.json: not a bpfmap-transcript file/);
 * ```
 */
export function serializeTranscript(transcript: Transcript): string {
  const head = JSON.stringify({
    format: transcript.format,
    version: transcript.version,
    host: transcript.host,
    files: transcript.files,
  });
  const entries = transcript.entries.map((entry) => "  " + JSON.stringify(entry)).join(",\n");
  return `${head.slice(0, -1)},\n"entries": [\n${entries}${entries ? "\n" : ""}]}\n`;
}

/**
 * Reads a transcript's text, checking its format, version and the shape of
 * every entry.
 *
 * @throws {TranscriptError} naming the path and what is wrong.
 */
export function parseTranscript(text: string, path: string): Transcript {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TranscriptError(path, `not a transcript (${(error as Error).message})`);
  }
  const t = value as Partial<Transcript>;
  if (t === null || typeof t !== "object" || t.format !== TRANSCRIPT_FORMAT) {
    throw new TranscriptError(path, `not a ${TRANSCRIPT_FORMAT} file`);
  }
  if (t.version !== TRANSCRIPT_VERSION) {
    throw new TranscriptError(
      path,
      typeof t.version === "number"
        ? `transcript version ${t.version}; this bpfmap reads version ${TRANSCRIPT_VERSION}`
        : `version: expected the number ${TRANSCRIPT_VERSION}, got ${show(t.version)}`,
    );
  }
  checkHeader(t, path);
  (t.entries as unknown[]).forEach((entry, index) => checkEntry(entry, index, path));
  return t as Transcript;
}

/** Whether an entry is a `bpf()` call (not a close). */
export function isCall(entry: Entry): entry is CallEntry {
  return "call" in entry;
}

const COMMANDS_BY_NAME = new Map([...COMMANDS.values()].map((command) => [command.name, command]));
const HEADER_KEYS = ["format", "version", "host", "files", "entries"];
/** The largest handle a transcript may name: the player gives handle h the fd 1000 + h. */
const MAX_HANDLE = 0xf_ffff;
/** The largest region a transcript may declare: 1 GiB, beyond any buffer bpfmap binds. */
const MAX_REGION = 2 ** 30;
/** Linux's possible CPUs are at most 8192 (x86_64 `NR_CPUS`). */
const MAX_CPUS = 8192;
/** The highest errno the kernel returns (`MAX_ERRNO`). */
const MAX_ERRNO = 4095;
/** Pointers inside the structs an info call leads to: the only nested regions there are. */
const NESTED_POINTERS = new Set(
  [BPF_MAP_INFO, BPF_PROG_INFO, BPF_BTF_INFO, BPF_LINK_INFO_RAW_TRACEPOINT]
    .flatMap((layout) => layout.fieldList.filter((field) => field.kind === "pointer"))
    .map((field) => field.name),
);

type Json = Record<string, unknown>;

/** How the checks of one entry report: `fail` names the entry and field; `only` refuses unknown keys. */
interface Report {
  fail(field: string, message: string): never;
  only(value: Json, keys: string[], prefix?: string): void;
}

function show(value: unknown): string {
  return typeof value === "string" ? `the string ${JSON.stringify(value).slice(0, 40)}` : String(
    JSON.stringify(value) ?? value,
  ).slice(0, 40);
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isU32(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffff_ffff;
}

function isHandle(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_HANDLE;
}

/** Whether `name` is an errno a transcript may hold: a Linux name, or `E<n>` as `errnoName` writes it. */
export function isKnownErrno(name: unknown): name is string {
  if (typeof name !== "string") return false;
  if (errnoNumber(name) !== undefined) return true;
  const n = /^E([1-9][0-9]{0,3})$/.exec(name)?.[1];
  return n !== undefined && Number(n) <= MAX_ERRNO;
}

function checkHeader(t: Json, path: string): void {
  const bad = (message: string) => new TranscriptError(path, message);
  const extra = Object.keys(t).find((key) => !HEADER_KEYS.includes(key));
  if (extra !== undefined) throw bad(`${extra}: not a field of a transcript`);
  const host = t.host;
  if (!isObject(host) || !isObject(t.files) || !Array.isArray(t.entries)) {
    throw bad("missing host, files or entries");
  }
  const hostExtra = Object.keys(host).find((k) => !["arch", "kernel", "possibleCpus"].includes(k));
  if (hostExtra !== undefined) throw bad(`host.${hostExtra}: not a field of a host`);
  if (typeof host.arch !== "string" || typeof host.kernel !== "string") {
    throw bad("host.arch and host.kernel must be strings");
  }
  const cpus = host.possibleCpus;
  if (!Number.isInteger(cpus) || (cpus as number) < 1 || (cpus as number) > MAX_CPUS) {
    throw bad(`host.possibleCpus: expected an integer from 1 to ${MAX_CPUS}, got ${show(cpus)}`);
  }
  for (const [file, text] of Object.entries(t.files)) {
    if (typeof text !== "string") throw bad(`files[${JSON.stringify(file)}]: not a string`);
  }
}

/** Checks one entry against the command table; throws a TranscriptError naming it and the field. */
function checkEntry(entry: unknown, index: number, path: string): void {
  const what = isObject(entry)
    ? typeof entry.call === "string"
      ? entry.call
      : "close" in entry
      ? "close"
      : "fdinfo" in entry
      ? "fdinfo"
      : undefined
    : undefined;
  if (!isObject(entry) || what === undefined) {
    throw new TranscriptError(path, `entry ${index} is not a call, a close or an fdinfo`, index);
  }
  const fail = (field: string, message: string): never => {
    throw new TranscriptError(path, `entry ${index} (${what}): ${field}: ${message}`, index, field);
  };
  const only = (value: Json, keys: string[], prefix = "") => {
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) {
        fail(prefix + key, `not a field of ${prefix ? "this region" : what}`);
      }
    }
  };
  if ("errno" in entry && !isKnownErrno(entry.errno)) {
    fail("errno", `expected an errno name (ffi/errno.ts), got ${show(entry.errno)}`);
  }
  if (what === "close") {
    only(entry, ["close", "errno"]);
    if (entry.close !== "foreign" && !isHandle(entry.close)) {
      fail("close", `expected a handle or "foreign", got ${show(entry.close)}`);
    }
    return;
  }
  if (what === "fdinfo") {
    only(entry, ["fdinfo", "fields"]);
    if (entry.fdinfo !== "foreign" && !isHandle(entry.fdinfo)) {
      fail("fdinfo", `expected a handle or "foreign", got ${show(entry.fdinfo)}`);
    }
    if (!isObject(entry.fields)) fail("fields", "expected an object");
    for (const [key, text] of Object.entries(entry.fields as Json)) {
      if (typeof text !== "string") fail(`fields.${key}`, `expected a string, got ${show(text)}`);
    }
    return;
  }
  checkCall(entry, what, { fail, only });
}

function checkCall(
  entry: Json,
  name: string,
  { fail, only }: Report,
): void {
  only(entry, ["call", "attr", "result", "errno"]);
  const command = COMMANDS_BY_NAME.get(name) ?? fail("call", `not a command bpfmap issues`);
  const attr = isObject(entry.attr) ? entry.attr : fail("attr", "expected an object");
  const failed = entry.errno !== undefined;
  if (failed === ("result" in entry)) fail("result", "expected either a result or an errno");
  if (!failed) {
    const result = entry.result;
    if (command.result === "zero" && result !== 0) {
      fail("result", `expected 0, got ${show(result)}`);
    }
    if (
      command.result === "fd"
      && !(isObject(result) && Object.keys(result).length === 1 && isHandle(result.fd))
    ) {
      fail("result", `expected { fd: handle }, got ${show(result)}`);
    }
  }
  only(attr, command.fieldList.map((field) => field.name));
  for (const field of command.fieldList) {
    if (!(field.name in attr)) fail(field.name, "missing");
    checkField(field, attr[field.name], { fail, only });
  }
  // Regions the kernel wrote: exactly the bytes the call's scalars say it wrote.
  const count = attr.count as { in: number; out: number } | undefined;
  for (const field of command.fieldList) {
    const region = attr[field.name] as RegionRecord | null;
    if (field.kind !== "pointer" || region === null || region.out === undefined) continue;
    const label = `${field.name}.out`;
    if (field.direction === "in") fail(label, "the kernel only reads this region");
    if (failed && !writesOnFailure(command, field)) {
      fail(label, "the call failed: the kernel wrote nothing here");
    }
    if (field.counted === true && count !== undefined && count.in > 0 && region.size % count.in) {
      fail(`${field.name}.size`, `${region.size} bytes is not ${count.in} whole elements`);
    }
    const extent = bytesWritten(field, region.size, {
      errno: failed ? errnoNumber(String(entry.errno)) ?? -1 : 0,
      count,
      extent: field.extent === undefined ? undefined : (attr[field.extent] as { out: number }).out,
    });
    const length = encodedLength(region.out);
    if (length !== extent) fail(label, `${length} bytes, but the call wrote ${extent}`);
  }
}

function checkField(
  field: Field,
  value: unknown,
  { fail, only }: Report,
): void {
  const name = field.name;
  switch (field.kind) {
    case "fd":
      if (value === "foreign" || isHandle(value) || (field.optional && value === 0)) return;
      return fail(
        name,
        `expected a handle${field.optional ? ", 0" : ""} or "foreign", got ${show(value)}`,
      );
    case "u32": {
      if (field.direction === "in") {
        if (!isU32(value)) fail(name, `expected a u32, got ${show(value)}`);
        return;
      }
      if (!isObject(value)) return fail(name, `expected { in, out }, got ${show(value)}`);
      only(value, ["in", "out"], `${name}.`);
      if (!isU32(value.in)) fail(`${name}.in`, `expected a u32, got ${show(value.in)}`);
      if (!isU32(value.out)) fail(`${name}.out`, `expected a u32, got ${show(value.out)}`);
      // The kernel writes back at most what it was given room for.
      if (
        (name === "count" || name === "info_len") && (value.out as number) > (value.in as number)
      ) {
        fail(`${name}.out`, `${value.out} exceeds ${name}.in ${value.in}`);
      }
      return;
    }
    case "u64":
      if (Number.isSafeInteger(value) && (value as number) >= 0) return;
      if (
        typeof value === "string" && /^[0-9]{16,20}$/.test(value)
        && BigInt(value) > BigInt(Number.MAX_SAFE_INTEGER) && BigInt(value) < 2n ** 64n
      ) return;
      return fail(name, `expected a u64, got ${show(value)}`);
    case "chars":
      if (
        typeof value === "string" && value.length <= field.size
        && [...value].every((c) => c.charCodeAt(0) >= 1 && c.charCodeAt(0) <= 255)
      ) return;
      return fail(name, `expected at most ${field.size} chars, got ${show(value)}`);
    case "pointer":
      if (value === null) return;
      checkRegion(name, value, { fail, only }, name === "info");
  }
}

function checkRegion(
  name: string,
  value: unknown,
  { fail, only }: Report,
  nested: boolean,
): asserts value is RegionRecord {
  if (!isObject(value)) return fail(name, `expected a region or null, got ${show(value)}`);
  only(value, nested ? ["size", "in", "out", "pointers"] : ["size", "in", "out"], `${name}.`);
  const size = value.size;
  if (!Number.isInteger(size) || (size as number) < 0 || (size as number) > MAX_REGION) {
    fail(`${name}.size`, `expected a size from 0 to ${MAX_REGION}, got ${show(size)}`);
  }
  for (const side of ["in", "out"]) {
    if (!(side in value)) continue;
    const length = encodedLength(value[side]);
    if (length === undefined) fail(`${name}.${side}`, `not hex or base64: ${show(value[side])}`);
    if (length! > (size as number) || (side === "in" && length !== size)) {
      fail(`${name}.${side}`, `${length} bytes in a region of ${size}`);
    }
  }
  if (!("pointers" in value)) return;
  if (!isObject(value.pointers)) return fail(`${name}.pointers`, "expected an object");
  for (const [inner, region] of Object.entries(value.pointers)) {
    if (!NESTED_POINTERS.has(inner)) {
      fail(`${name}.pointers.${inner}`, "not a pointer of an info struct");
    }
    checkRegion(`${name}.pointers.${inner}`, region, { fail, only }, false);
    const { size: innerSize, out } = region as RegionRecord;
    if (out !== undefined && encodedLength(out) !== innerSize) {
      fail(
        `${name}.pointers.${inner}.out`,
        `${encodedLength(out)} bytes, but the call wrote ${innerSize}`,
      );
    }
  }
}
