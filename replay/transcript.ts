/**
 * The transcript format: what a recorded run of `bpf()` calls looks like on
 * disk, and how it is read back and checked.
 *
 * A transcript is one JSON document, written with one call per line so that
 * `git diff` shows which call changed. File descriptors appear as stable
 * handles (the first fd the kernel hands out is handle 1 in every run), map,
 * program and BTF ids as stable virtual ids, and addresses not at all (nor
 * values that vary from run to run, such as a test run's `duration`: 0).
 * Memory a pointer leads to is a region: its size and the bytes the kernel
 * read (`in`) and wrote (`out`), as hex up to 64 bytes and as `base64:`
 * beyond. Bytes of more than 4 KiB (instructions, BTF, large batches, files
 * such as the kernel's BTF) are stored once per transcript in its blob table
 * (`blobs.ts`), gzip-compressed, and named by their SHA-256 where they occur.
 *
 * Beside `bpf()` calls, closes and fdinfo reads, a transcript holds the
 * backend's other primitives: `readFile`, `perf_event_open` (a call whose
 * attr is a `perf_event_attr`, with its other arguments in `args`), `ioctl`,
 * `mmap` with what the code `observe`d and `wrote` in the mapping and its
 * `munmap`, and `epoll` (create, ctl, wait).
 *
 * @module
 */

import {
  BPF_BTF_INFO,
  BPF_LINK_INFO_ITER,
  BPF_LINK_INFO_RAW_TRACEPOINT,
  BPF_MAP_INFO,
  BPF_PROG_INFO,
  bytesWritten,
  commandKey,
  COMMANDS_BY_KEY,
  type Field,
  writesOnFailure,
} from "../ffi/commands.ts";
import { errnoNumber } from "../ffi/errno.ts";
import { PERF_EVENT_ATTR } from "../ffi/perf_event.ts";
import { type Blobs, collapseBlobs, expandBlobs } from "./blobs.ts";

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
  /** `sysconf(_SC_PAGESIZE)` of the recording host, present when the code asked for it. */
  pageSize?: number;
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

/** One `bpf()` call, or a `perf_event_open` (`call: "perf_event_open"`, with `args`). */
export interface CallEntry {
  call: string;
  attr: Record<string, FieldRecord>;
  /** `perf_event_open`'s arguments beside the attr (`group_fd`: -1, a handle or `"foreign"`). */
  args?: { pid: number; cpu: number; group_fd: number | "foreign"; flags: number };
  /** The result: 0, or `{ fd: handle }` for a command that returns an fd. */
  result?: number | { fd: number };
  /** The errno name when the call failed. */
  errno?: string;
}

/** A handle, or `"foreign"` for an fd bpfmap did not get from the kernel. */
export type Handle = number | "foreign";

/** One `readFile`: the file's bytes, or where reading it failed. */
export interface ReadFileEntry {
  readFile: string;
  bytes?: string;
  errno?: string;
  /** Which call failed. */
  at?: "open" | "read";
}

/** One `ioctl`; `arg` is a handle for requests whose argument is an fd (`PERF_EVENT_IOC_SET_BPF`). */
export interface IoctlEntry {
  ioctl: Handle;
  request: number;
  arg: number | "foreign";
  result?: number;
  errno?: string;
}

/** One `mmap`: the result names the mapping (1, 2, ... in the order they were made). */
export interface MmapEntry {
  mmap: Handle;
  length: number;
  prot: "read" | "readWrite";
  offset: number;
  result?: { mapping: number };
  errno?: string;
}

/** What the code read (`observe`) or wrote (`wrote`) in a mapping, at `offset`. */
export interface MemoryEntry {
  observe?: number;
  wrote?: number;
  offset: number;
  size: number;
  bytes: string;
}

/** One `munmap` of a mapping. */
export interface MunmapEntry {
  munmap: number;
  errno?: string;
}

/** One epoll call: `create`, `ctl`, or a `wait` (`waitAsync` for `epollWaitAsync`). */
export interface EpollEntry {
  epoll: "create" | "ctl" | "wait" | "waitAsync";
  epfd?: Handle;
  op?: "add" | "del";
  fd?: Handle;
  events?: number;
  maxEvents?: number;
  timeoutMs?: number;
  result?: number | { fd: number };
  /** What a wait returned: the ready fds as handles. */
  ready?: { fd: Handle; events: number }[];
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
export type Entry =
  | CallEntry
  | CloseEntry
  | FdInfoEntry
  | ReadFileEntry
  | IoctlEntry
  | MmapEntry
  | MemoryEntry
  | MunmapEntry
  | EpollEntry;

/** The kinds of entry, by the key that names each. */
export type EntryKind =
  | "call"
  | "close"
  | "fdinfo"
  | "readFile"
  | "ioctl"
  | "mmap"
  | "observe"
  | "wrote"
  | "munmap"
  | "epoll";

const KIND_KEYS: readonly EntryKind[] = [
  "call",
  "close",
  "fdinfo",
  "readFile",
  "ioctl",
  "mmap",
  "observe",
  "wrote",
  "munmap",
  "epoll",
];

/**
 * Which kind an entry is, or `undefined` for something no transcript holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { entryKind } from "./transcript.ts";
 * assert.equal(entryKind({ close: 1 }), "close");
 * assert.equal(entryKind({ observe: 1, offset: 0, size: 1, bytes: "00" }), "observe");
 * assert.equal(entryKind({ nothing: 1 }), undefined);
 * ```
 */
export function entryKind(entry: unknown): EntryKind | undefined {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return undefined;
  return KIND_KEYS.find((key) => key in entry);
}

/** A whole transcript. */
export interface Transcript {
  format: typeof TRANSCRIPT_FORMAT;
  version: number;
  host: TranscriptHost;
  /** Files bpfmap read through libc (`/sys/devices/system/cpu/possible`), by path. */
  files: Record<string, string>;
  entries: Entry[];
  /**
   * On disk only, where entries hold bytes of more than 4 KiB: those bytes by
   * SHA-256 (see `blobs.ts`). A parsed transcript has them back in its entries.
   */
  blobs?: Blobs;
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
 * Deterministic: the same transcript always gives the same bytes. Blobs go
 * into the transcript's own table, or where `store` puts them (a
 * `BlobStore`'s `for(path)`, which returns the reference to write).
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
export function serializeTranscript(
  transcript: Transcript,
  store?: (hash: string, bytes: Uint8Array) => string,
): string {
  const head = JSON.stringify({
    format: transcript.format,
    version: transcript.version,
    host: transcript.host,
    files: transcript.files,
  });
  const { entries: stored, blobs } = collapseBlobs(transcript.entries, store);
  const entries = stored.map((entry) => "  " + JSON.stringify(entry)).join(",\n");
  // One blob a line, after the entries: a diff of the calls stays readable.
  const table = Object.entries(blobs).map(([hash, text]) => `  ${JSON.stringify(hash)}: "${text}"`);
  const tail = table.length === 0 ? "" : `,\n"blobs": {\n${table.join(",\n")}\n}`;
  return `${head.slice(0, -1)},\n"entries": [\n${entries}${entries ? "\n" : ""}]${tail}}\n`;
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
  if (t.blobs !== undefined) {
    if (!isObject(t.blobs)) throw new TranscriptError(path, "blobs: expected an object");
    try {
      t.entries = expandBlobs(t.entries as Entry[], t.blobs as Blobs, path);
    } catch (error) {
      throw new TranscriptError(path, (error as Error).message);
    }
    delete t.blobs;
  }
  (t.entries as unknown[]).forEach((entry, index) => checkEntry(entry, index, path));
  return t as Transcript;
}

/** Whether an entry is a `bpf()` call (not a close). */
export function isCall(entry: Entry): entry is CallEntry {
  return "call" in entry;
}

/** Commands by the name a transcript's `call` gives them: a shape's key (`BPF_LINK_CREATE:tcx`). */
const COMMANDS_BY_NAME = new Map(
  [...COMMANDS_BY_KEY.values(), PERF_EVENT_ATTR].map((command) => [commandKey(command), command]),
);
const HEADER_KEYS = ["format", "version", "host", "files", "entries", "blobs"];
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
  [BPF_MAP_INFO, BPF_PROG_INFO, BPF_BTF_INFO, BPF_LINK_INFO_RAW_TRACEPOINT, BPF_LINK_INFO_ITER]
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
  const hostKeys = ["arch", "kernel", "possibleCpus", "pageSize"];
  const hostExtra = Object.keys(host).find((k) => !hostKeys.includes(k));
  if (hostExtra !== undefined) throw bad(`host.${hostExtra}: not a field of a host`);
  const page = host.pageSize;
  if (page !== undefined && !(isU32(page) && page >= 4096 && (page & (page - 1)) === 0)) {
    throw bad(`host.pageSize: expected a power of two from 4096, got ${show(page)}`);
  }
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
  const kind = entryKind(entry);
  const what = kind === "call"
    ? typeof (entry as Json).call === "string" ? (entry as Json).call as string : undefined
    : kind;
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
  if (kind !== "call") return checkPrimitive(entry, kind!, { fail, only });
  checkCall(entry, what, { fail, only });
}

const isHandleOrForeign = (value: unknown) => value === "foreign" || isHandle(value);
const isInt = (value: unknown) => Number.isSafeInteger(value);

/**
 * The keys each primitive's entry may hold, each with its check; `*` marks
 * the keys every such entry has.
 */
const PRIMITIVE_KEYS: Record<string, Record<string, (value: unknown) => boolean>> = {
  readFile: {
    "readFile*": (v) => typeof v === "string",
    bytes: (v) => encodedLength(v) !== undefined,
    at: (v) => v === "open" || v === "read",
  },
  ioctl: {
    "ioctl*": isHandleOrForeign,
    "request*": isU32,
    "arg*": (v) => v === "foreign" || isInt(v),
    result: (v) => isInt(v) && (v as number) >= 0,
  },
  mmap: {
    "mmap*": isHandleOrForeign,
    "length*": (v) => isInt(v) && (v as number) > 0 && (v as number) <= MAX_REGION,
    "prot*": (v) => v === "read" || v === "readWrite",
    "offset*": (v) => isInt(v) && (v as number) >= 0,
    result: (v) => isObject(v) && Object.keys(v).length === 1 && isHandle(v.mapping),
  },
  observe: memoryKeys("observe"),
  wrote: memoryKeys("wrote"),
  munmap: { "munmap*": isHandle },
  epoll: {
    "epoll*": (v) => ["create", "ctl", "wait", "waitAsync"].includes(v as string),
    epfd: isHandleOrForeign,
    op: (v) => v === "add" || v === "del",
    fd: isHandleOrForeign,
    events: isU32,
    maxEvents: (v) => isInt(v) && (v as number) >= 1 && (v as number) <= 1024,
    timeoutMs: (v) => isInt(v) && (v as number) >= -1,
    result: (v) => v === 0 || (isObject(v) && Object.keys(v).length === 1 && isHandle(v.fd)),
    ready: (v) =>
      Array.isArray(v) && v.length <= 1024
      && v.every((r) =>
        isObject(r) && Object.keys(r).length === 2 && isHandleOrForeign(r.fd) && isU32(r.events)
      ),
  },
};

function memoryKeys(kind: string): Record<string, (value: unknown) => boolean> {
  return {
    [`${kind}*`]: isHandle,
    "offset*": (v) => isInt(v) && (v as number) >= 0 && (v as number) <= MAX_REGION,
    "size*": (v) => isInt(v) && (v as number) > 0 && (v as number) <= MAX_REGION,
    "bytes*": (v) => encodedLength(v) !== undefined,
  };
}

/** What each epoll entry must hold beside `epoll`, and whether it fails or answers. */
const EPOLL_SHAPES: Record<string, string[]> = {
  create: [],
  ctl: ["epfd", "op", "fd", "events"],
  wait: ["epfd", "maxEvents", "timeoutMs"],
  waitAsync: ["epfd", "maxEvents", "timeoutMs"],
};

function checkPrimitive(entry: Json, kind: EntryKind, { fail, only }: Report): void {
  const keys = PRIMITIVE_KEYS[kind]!;
  const names = Object.keys(keys).map((key) => key.replace("*", ""));
  only(entry, [...names, "errno"]);
  for (const [key, check] of Object.entries(keys)) {
    const name = key.replace("*", "");
    if (!(name in entry)) {
      if (key.endsWith("*")) fail(name, "missing");
      continue;
    }
    if (!check(entry[name])) fail(name, `not valid here: ${show(entry[name])}`);
  }
  const failed = entry.errno !== undefined;
  const answer = { readFile: "bytes", ioctl: "result", mmap: "result", epoll: "" }[kind as string];
  if (kind === "epoll") {
    const op = entry.epoll as string;
    const needs = EPOLL_SHAPES[op]!;
    only(entry, ["epoll", ...needs, op.startsWith("wait") ? "ready" : "result", "errno"]);
    for (const name of needs) if (!(name in entry)) fail(name, "missing");
    const out = op.startsWith("wait") ? "ready" : "result";
    if (failed === (out in entry)) fail(out, `expected either ${out} or an errno`);
    if (op === "create" && !failed && !isObject(entry.result)) fail("result", "expected { fd }");
    // The kernel reports at most maxEvents ready fds.
    if (Array.isArray(entry.ready) && entry.ready.length > (entry.maxEvents as number)) {
      fail("ready", `${entry.ready.length} fds for maxEvents ${entry.maxEvents}`);
    }
    if (op === "ctl" && !failed && entry.result !== 0) fail("result", "expected 0");
  } else if (answer !== undefined && failed === (answer in entry)) {
    fail(answer, `expected either ${answer} or an errno`);
  }
  if (kind === "readFile" && failed !== ("at" in entry)) {
    fail("at", "only a failed read says where");
  }
  if ((kind === "observe" || kind === "wrote") && encodedLength(entry.bytes) !== entry.size) {
    fail("bytes", `${encodedLength(entry.bytes)} bytes, but size says ${entry.size}`);
  }
}

function checkCall(
  entry: Json,
  name: string,
  { fail, only }: Report,
): void {
  const perf = name === PERF_EVENT_ATTR.name;
  only(
    entry,
    perf ? ["call", "attr", "args", "result", "errno"] : ["call", "attr", "result", "errno"],
  );
  const command = COMMANDS_BY_NAME.get(name) ?? fail("call", `not a command bpfmap issues`);
  if (perf) checkPerfArgs(entry.args, { fail, only });
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

function checkPerfArgs(args: unknown, { fail, only }: Report): void {
  if (!isObject(args)) {
    return fail("args", `expected { pid, cpu, group_fd, flags }, got ${show(args)}`);
  }
  only(args, ["pid", "cpu", "group_fd", "flags"], "args.");
  for (const name of ["pid", "cpu"]) {
    const value = args[name];
    if (!Number.isInteger(value) || (value as number) < -1 || (value as number) > 0x7fff_ffff) {
      fail(`args.${name}`, `expected -1 or more, got ${show(value)}`);
    }
  }
  if (!(args.group_fd === -1 || isHandleOrForeign(args.group_fd))) {
    fail("args.group_fd", `expected -1, a handle or "foreign", got ${show(args.group_fd)}`);
  }
  if (!isU32(args.flags)) fail("args.flags", `expected a u32, got ${show(args.flags)}`);
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
