/**
 * Moves the fixtures' blobs into the suite's blob store (`fixtures/.blobs/`,
 * each blob once as `<sha-256>.gz`): a transcript recorded before the store,
 * or by code that does not use it, holds its blobs in its own table, so the
 * kernel's BTF (2.3 MB of gzip) was in the repository once per fixture that
 * read it. Run it after such a recording; a transcript already in the store
 * is left as it is, byte for byte.
 *
 * ```sh
 * deno run -A scripts/fixtures_blobs.ts                # every fixture under fixtures/
 * deno run -A scripts/fixtures_blobs.ts fixtures/x/y.json ...   # these only
 * deno run -A scripts/fixtures_blobs.ts --prune        # also delete blobs no fixture names
 * deno run -A scripts/fixtures_blobs.ts --check        # change nothing; exit 1 if anything would
 * ```
 *
 * @module
 */

import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import process from "node:process";
import { BlobStore } from "../replay/blobs.ts";
import { parseTranscript, serializeTranscript, TRANSCRIPT_FORMAT } from "../replay/transcript.ts";
import { BLOB_STORE, FIXTURES } from "../tests/helpers/transcript.ts";

/** Every `.json` file under `dir`, the store's folder left out. */
function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return path === BLOB_STORE ? [] : jsonFiles(path);
    return entry.name.endsWith(".json") ? [path] : [];
  });
}

/** The blob hashes a transcript's text names through the store (`file:`). */
function storedHashes(text: string): string[] {
  return [...text.matchAll(/"([0-9a-f]{64})": "file:/g)].map((match) => match[1]!);
}

const args = process.argv.slice(2);
const check = args.includes("--check");
const prune = args.includes("--prune");
const unknown = args.find((arg) => arg.startsWith("--") && arg !== "--check" && arg !== "--prune");
if (unknown !== undefined) {
  console.error(`${unknown}: expected --check, --prune or fixture paths`);
  process.exit(2);
}
const named = args.filter((arg) => !arg.startsWith("--")).map((arg) => resolve(arg));
const store = new BlobStore(BLOB_STORE);
let changes = 0;
const used = new Set<string>();
for (const path of jsonFiles(FIXTURES)) {
  const text = readFileSync(path, "utf8");
  // A CLI run's output is JSON too, and no transcript: it has no blobs.
  if (!text.startsWith(`{"format":"${TRANSCRIPT_FORMAT}"`)) continue;
  const chosen = named.length === 0 || named.includes(path);
  // Only a transcript with blobs of its own changes: the others stay byte for byte as they are.
  if (!chosen || !text.includes(`": "gzip:`)) {
    for (const hash of storedHashes(text)) used.add(hash);
    continue;
  }
  changes++;
  console.log(`${check ? "would move" : "moved"} the blobs of ${relative(FIXTURES, path)}`);
  if (check) continue;
  const moved = serializeTranscript(parseTranscript(text, path), store.for(path));
  // What it names must read back as what it held.
  const before = JSON.stringify(parseTranscript(text, path));
  if (JSON.stringify(parseTranscript(moved, path)) !== before) {
    throw new Error(`${path}: the moved transcript does not read back the same`);
  }
  writeFileSync(path, moved);
  for (const hash of storedHashes(moved)) used.add(hash);
}
if (prune || check) {
  const files = existsSync(BLOB_STORE) ? readdirSync(BLOB_STORE) : [];
  for (const file of files.filter((name) => !used.has(name.replace(/\.gz$/, "")))) {
    changes++;
    console.log(`${check ? "would delete" : "deleted"} ${file}: no fixture names it`);
    if (!check) unlinkSync(join(BLOB_STORE, file));
  }
}
console.log(`${changes} change(s)${check ? " to make" : ""}`);
if (check && changes > 0) process.exit(1);
