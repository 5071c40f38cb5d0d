/**
 * The transcript format: what a recorded run of `bpf()` calls looks like on
 * disk, and how it is read back and checked.
 *
 * A transcript is one JSON document, written with one call per line so that
 * `git diff` shows which call changed. File descriptors appear as stable
 * handles (the first fd the kernel hands out is handle 1 in every run), map
 * ids as stable virtual ids, and addresses not at all. Memory a pointer leads
 * to is a region: its size and the bytes the kernel read (`in`) and wrote
 * (`out`), as hex up to 64 bytes and as `base64:` beyond, so that a large dump
 * costs 4/3 of the bytes the kernel moved.
 *
 * @module
 */

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

/** A transcript that cannot be read: truncated, corrupt, or of another format or version. */
export class TranscriptError extends Error {
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "TranscriptError";
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
  for (let i = 0; i < bytes.byteLength; i++) hex += HEX[bytes[i]];
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
      `transcript version ${String(t.version)}; this bpfmap reads version ${TRANSCRIPT_VERSION}`,
    );
  }
  if (
    typeof t.host !== "object" || t.host === null || typeof t.host.possibleCpus !== "number"
    || typeof t.files !== "object" || t.files === null || !Array.isArray(t.entries)
  ) {
    throw new TranscriptError(path, "missing host, files or entries");
  }
  t.entries.forEach((entry, index) => {
    const ok = entry !== null && typeof entry === "object"
      && (("call" in entry && typeof entry.call === "string" && typeof entry.attr === "object")
        || ("close" in entry && (typeof entry.close === "number" || entry.close === "foreign"))
        || ("fdinfo" in entry && typeof entry.fields === "object" && entry.fields !== null));
    if (!ok) throw new TranscriptError(path, `entry ${index} is not a call, a close or an fdinfo`);
  });
  return t as Transcript;
}

/** Whether an entry is a `bpf()` call (not a close). */
export function isCall(entry: Entry): entry is CallEntry {
  return "call" in entry;
}
