/**
 * A transcript's blob table: bytes too large to sit in an entry (a file such
 * as `/sys/kernel/btf/vmlinux`, a program's instructions, BTF, a big batch
 * buffer), stored once per transcript, however many entries hold them, under
 * their SHA-256, gzip-compressed as `gzip:` and base64.
 *
 * On disk an entry names a blob as `blob:<sha-256 hex>` wherever it would
 * hold bytes of more than {@linkcode BLOB_THRESHOLD}; in memory (after
 * {@linkcode expandBlobs}) it holds the bytes as `base64:` like any region, so
 * that the player, the verifier and the diff never see a reference. A
 * transcript with no such bytes has no `blobs` field and reads as before.
 *
 * A blob store (a folder shared by many transcripts, such as a test suite's
 * fixtures) holds each blob once for all of them, as `<sha-256>.gz`; a
 * transcript's table then says `file:` and the file's path relative to the
 * transcript (see {@linkcode BlobStore}).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";

/** Bytes beyond this many are a blob on disk (4 KiB: a page, a small batch, a short program). */
export const BLOB_THRESHOLD = 4096;

const BLOB = "blob:";
const BASE64 = "base64:";
const GZIP = "gzip:";
const FILE = "file:";
const BLOB_REF = /^blob:[0-9a-f]{64}$/;

/** The blob table of a transcript, by SHA-256 (hex): `gzip:` and the base64 of the gzip. */
export type Blobs = Record<string, string>;

/**
 * The SHA-256 of `bytes`, in hex.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256 } from "./blobs.ts";
 * assert.equal(sha256(new Uint8Array(0)).slice(0, 16), "e3b0c44298fc1c14");
 * ```
 */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** gzip at level 9: the same bytes give the same gzip (Deno and Bun alike), so re-recording changes nothing. */
function gzip(bytes: Uint8Array): Uint8Array {
  return gzipSync(bytes, { level: 9 });
}

/** A blob's stored text in a transcript's own table: `gzip:` and base64. */
function compress(bytes: Uint8Array): string {
  return GZIP + Buffer.from(gzip(bytes)).toString("base64");
}

/** Bytes from gzip, or `undefined` if they are not gzip. */
function gunzip(gzipped: Uint8Array): Uint8Array | undefined {
  try {
    return new Uint8Array(gunzipSync(gzipped));
  } catch {
    return undefined;
  }
}

/**
 * A folder that holds blobs for many transcripts, each once, as
 * `<sha-256>.gz` (written atomically, never rewritten: its name says what it
 * holds). A transcript written with it names each blob by its path from the
 * transcript's folder, so the pair can move together.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, readdirSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { BlobStore } from "./blobs.ts";
 * import { encodeBytes, parseTranscript, serializeTranscript } from "./transcript.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "bpfmap-"));
 * const store = new BlobStore(join(dir, "blobs"));
 * const big = encodeBytes(new Uint8Array(10_000).fill(1));
 * const transcript = {
 *   format: "bpfmap-transcript" as const,
 *   version: 1,
 *   host: { arch: "x86_64", kernel: "6.18", possibleCpus: 2 },
 *   files: {},
 *   entries: [{ readFile: "/a", bytes: big }],
 * };
 * for (const name of ["one.json", "two.json"]) {
 *   const text = serializeTranscript(transcript, store.for(join(dir, "t", name)));
 *   assert.match(text, /"file:\.\.\/blobs\/[0-9a-f]{64}\.gz"/);
 *   assert.deepEqual(parseTranscript(text, join(dir, "t", name)), transcript);
 * }
 * assert.equal(readdirSync(join(dir, "blobs")).length, 1); // one file for both
 * ```
 */
export class BlobStore {
  /** The folder. */
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** How a transcript at `transcript` names the blobs it puts here. */
  for(transcript: string): (hash: string, bytes: Uint8Array) => string {
    return (hash, bytes) => {
      const file = join(this.dir, `${hash}.gz`);
      if (!existsSync(file)) {
        mkdirSync(this.dir, { recursive: true });
        const temporary = `${file}.${randomBytes(8).toString("hex")}.tmp`;
        writeFileSync(temporary, gzip(bytes), { flag: "wx" });
        renameSync(temporary, file);
      }
      return FILE + relative(dirname(resolve(transcript)), file);
    };
  }
}

/**
 * A blob's bytes from its table entry: `gzip:` and base64 in the transcript,
 * or `file:` and a path from the transcript's folder to `<hash>.gz` in a
 * {@linkcode BlobStore} (no other file is read).
 */
function readBlob(hash: string, stored: string, path: string): Uint8Array {
  if (stored.startsWith(GZIP)) {
    const bytes = gunzip(Buffer.from(stored.slice(GZIP.length), "base64"));
    if (bytes === undefined) throw new Error(`blobs.${hash}: not gzip: and base64`);
    return bytes;
  }
  const file = stored.slice(FILE.length);
  if (!stored.startsWith(FILE) || !/^([A-Za-z0-9._-]+\/)*[0-9a-f]{64}\.gz$/.test(file)) {
    throw new Error(`blobs.${hash}: neither gzip: and base64 nor file: and a <sha-256>.gz`);
  }
  if (!file.endsWith(`${hash}.gz`)) {
    throw new Error(`blobs.${hash}: ${file} is another blob's file`);
  }
  let gzipped: Uint8Array;
  const at = join(dirname(resolve(path)), file);
  try {
    gzipped = readFileSync(at);
  } catch (error) {
    // The store is a folder of its own: a copy of the transcript without it finds nothing.
    const missing = (error as { code?: string }).code === "ENOENT";
    throw new Error(
      `blobs.${hash}: cannot read ${file} (${at}): ${
        missing ? "no such file; the blob store goes with the transcript" : (error as Error).message
      }`,
    );
  }
  const bytes = gunzip(gzipped);
  if (bytes === undefined) throw new Error(`blobs.${hash}: ${file} is not gzip`);
  return bytes;
}

/** How many bytes a `base64:` string holds. */
function base64Length(text: string): number {
  const body = text.length - BASE64.length;
  return body / 4 * 3 - (text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0);
}

/** Every string in `value` (entries: objects and arrays of them), rewritten by `rewrite`. */
function mapStrings(value: unknown, rewrite: (text: string) => string): unknown {
  if (typeof value === "string") return rewrite(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, rewrite));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = mapStrings(item, rewrite);
    return out;
  }
  return value;
}

/**
 * The entries as written to disk: each `base64:` string of more than
 * {@linkcode BLOB_THRESHOLD} bytes becomes `blob:<sha-256>`, and the table
 * holds each of those once (sorted by hash, so the text is deterministic).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collapseBlobs, expandBlobs } from "./blobs.ts";
 * import { encodeBytes } from "./transcript.ts";
 *
 * const big = encodeBytes(new Uint8Array(5000).fill(7));
 * const entries = [{ readFile: "/a", bytes: big }, { readFile: "/b", bytes: big }];
 * const { entries: stored, blobs } = collapseBlobs(entries);
 * assert.equal(Object.keys(blobs).length, 1); // stored once
 * assert.match((stored[0] as { bytes: string }).bytes, /^blob:[0-9a-f]{64}$/);
 * assert.ok(blobs[Object.keys(blobs)[0]!]!.length < 100); // compressed
 * assert.deepEqual(expandBlobs(stored, blobs, "t.json"), entries);
 * ```
 */
export function collapseBlobs<T>(
  entries: readonly T[],
  store: (hash: string, bytes: Uint8Array) => string = (_, bytes) => compress(bytes),
): { entries: T[]; blobs: Blobs } {
  const blobs: Blobs = {};
  const hashes = new Map<string, string>();
  const collapsed = entries.map((entry) =>
    mapStrings(entry, (text) => {
      if (!text.startsWith(BASE64) || base64Length(text) <= BLOB_THRESHOLD) return text;
      let hash = hashes.get(text);
      if (hash === undefined) {
        const bytes = new Uint8Array(Buffer.from(text.slice(BASE64.length), "base64"));
        hash = sha256(bytes);
        hashes.set(text, hash);
        blobs[hash] ??= store(hash, bytes);
      }
      return BLOB + hash;
    }) as T
  );
  const sorted: Blobs = {};
  for (const hash of Object.keys(blobs).sort()) sorted[hash] = blobs[hash]!;
  return { entries: collapsed, blobs: sorted };
}

/**
 * The entries as held in memory: each `blob:<sha-256>` replaced by its bytes
 * as `base64:` (one string per blob, shared by every entry naming it). Every
 * blob is checked: its text decompresses, its bytes have its hash, and some
 * entry names it.
 *
 * @throws {Error} naming the blob at fault; the caller adds the path.
 */
export function expandBlobs<T>(entries: readonly T[], blobs: Blobs, path: string): T[] {
  const texts = new Map<string, string>();
  for (const [hash, stored] of Object.entries(blobs)) {
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`blobs: ${hash.slice(0, 70)}: not a SHA-256`);
    if (typeof stored !== "string") throw new Error(`blobs.${hash}: not a string`);
    const bytes = readBlob(hash, stored, path);
    if (sha256(bytes) !== hash) throw new Error(`blobs.${hash}: the bytes have another SHA-256`);
    // Bytes below the threshold stay in their entries: a blob of them was not written by bpfmap.
    if (bytes.byteLength <= BLOB_THRESHOLD) {
      throw new Error(`blobs.${hash}: ${bytes.byteLength} bytes belong in the entry`);
    }
    texts.set(hash, BASE64 + Buffer.from(bytes).toString("base64"));
  }
  const named = new Set<string>();
  const expanded = entries.map((entry) =>
    mapStrings(entry, (text) => {
      if (!BLOB_REF.test(text)) return text;
      const hash = text.slice(BLOB.length);
      const bytes = texts.get(hash);
      if (bytes === undefined) throw new Error(`${text}: not in the blob table (${path})`);
      named.add(hash);
      return bytes;
    }) as T
  );
  const unnamed = [...texts.keys()].find((hash) => !named.has(hash));
  if (unnamed !== undefined) throw new Error(`blobs.${unnamed}: no entry names it`);
  return expanded;
}
