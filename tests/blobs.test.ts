// The blob table: bytes of more than 4 KiB (files such as the kernel's BTF, large bpf() regions)
// are stored once per transcript, compressed, named by SHA-256; a transcript whose blobs were
// tampered with is refused; a replay that reads another file diverges, named.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { type BpfSystem, openSystem, ReplayDivergenceError } from "../mod.ts";
import { BLOB_THRESHOLD, sha256 } from "../replay/blobs.ts";
import {
  encodeBytes,
  parseTranscript,
  serializeTranscript,
  type Transcript,
  TranscriptError,
} from "../replay/transcript.ts";
import { transcriptTests } from "../testing/mod.ts";
import {
  BLOB_STORE,
  fixturePath,
  FIXTURES,
  transcriptTests as fixtureTests,
} from "./helpers/transcript.ts";

const transcriptTest = fixtureTests(import.meta.url);

const VMLINUX = "/sys/kernel/btf/vmlinux";
const BTF_MAGIC = 0xeb9f;

function readThrice(system: BpfSystem, path: string): Uint8Array[] {
  const backend = system.kernel.backend;
  return [backend.readFile(path), backend.readFile(path), backend.readFile(path)];
}

const VMLINUX_TEST = "the kernel's BTF read three times is one blob";

transcriptTest(VMLINUX_TEST, (system) => {
  const reads = readThrice(system, VMLINUX);
  for (const bytes of reads) {
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint16(0, true), BTF_MAGIC);
    assert.ok(bytes.byteLength > 1 << 20, `${bytes.byteLength} bytes`);
    assert.deepEqual(bytes, reads[0]);
  }
  // Three results, three buffers: none shares memory with another.
  assert.equal(new Set(reads.map((bytes) => bytes.buffer)).size, 3);
});

test("a fixture names the kernel's BTF once, in the suite's store, however many reads name it", () => {
  const path = fixturePath(import.meta.url, VMLINUX_TEST);
  const text = readFileSync(path, "utf8");
  const raw = JSON.parse(text) as { entries: { bytes?: string }[]; blobs: Record<string, string> };
  const hashes = Object.keys(raw.blobs);
  assert.equal(hashes.length, 1);
  const reads = raw.entries.filter((entry) => "readFile" in entry);
  assert.deepEqual(reads.map((entry) => entry.bytes), Array(3).fill(`blob:${hashes[0]}`));
  assert.deepEqual(raw.blobs, { [hashes[0]!]: `file:../.blobs/${hashes[0]}.gz` });
  // gzip: the store's file is far smaller than the BTF; the fixture holds none of it.
  const parsed = parseTranscript(text, path);
  const bytes = Buffer.from((parsed.entries[0] as { bytes: string }).bytes.slice(7), "base64");
  assert.equal(sha256(bytes), hashes[0]);
  const stored = readFileSync(join(BLOB_STORE, `${hashes[0]}.gz`));
  assert.ok(stored.byteLength < bytes.byteLength * 0.6, `${stored.byteLength} for ${bytes.length}`);
  assert.ok(text.length < 4096, `${text.length} bytes`);
});

/** Every transcript under fixtures/, by path, as its raw JSON. */
function fixtureTranscripts(dir = FIXTURES): [string, { blobs?: Record<string, string> }][] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return path === BLOB_STORE ? [] : fixtureTranscripts(path);
    const text = entry.name.endsWith(".json") ? readFileSync(path, "utf8") : "";
    return text.startsWith("{\"format\":\"bpfmap-transcript\"") ? [[path, JSON.parse(text)]] : [];
  });
}

test("the suite's fixtures keep their blobs in one store, which holds only what they name", () => {
  const named = new Set<string>();
  const inline: string[] = [];
  for (const [path, transcript] of fixtureTranscripts()) {
    for (const [hash, ref] of Object.entries(transcript.blobs ?? {})) {
      if (!ref.startsWith("file:")) {
        inline.push(relative(FIXTURES, path));
        continue;
      }
      const file = resolve(dirname(path), ref.slice("file:".length));
      assert.equal(file, join(BLOB_STORE, `${hash}.gz`), path);
      named.add(hash);
    }
  }
  // The kernel's BTF, read by several tests, is then one file in the repository.
  const hint = "run deno run -A scripts/fixtures_blobs.ts --prune";
  assert.deepEqual([...new Set(inline)], [], `fixtures holding their own blobs: ${hint}`);
  const orphans = readdirSync(BLOB_STORE).filter((file) => !named.has(file.replace(/\.gz$/, "")));
  assert.deepEqual(orphans, [], `blobs no fixture names: ${hint}`);
});

test("a replay that reads another file diverges at that read, named", async () => {
  const system = await openSystem({
    transcript: fixturePath(import.meta.url, VMLINUX_TEST),
    mode: "replay",
    modeFromEnvironment: false,
  });
  await assert.rejects(
    system.run((s) => readThrice(s, "/sys/kernel/btf/bpf_testmod")),
    (error) =>
      error instanceof ReplayDivergenceError
      && error.message.includes("call #0 (readFile(/sys/kernel/btf/bpf_testmod)) diverged")
      && error.differences[0]
        === "readFile: expected \"/sys/kernel/btf/vmlinux\", got \"/sys/kernel/btf/bpf_testmod\"",
  );
});

const BATCH_TEST = "a large batch's regions are blobs; small ones stay in their entries";
const COUNT = 2048; // 8 KiB of keys, 16 KiB of values: over the threshold

transcriptTest(BATCH_TEST, (system) => {
  using map = system.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: COUNT });
  const keys = new Uint32Array(COUNT).map((_, i) => i + 1);
  const values = new BigUint64Array(COUNT).map((_, i) => BigInt(i) * 3n);
  assert.equal(map.updateBatch(new Uint8Array(keys.buffer), new Uint8Array(values.buffer)), COUNT);
  // The same keys again, deleted: their region is the one blob the update stored.
  assert.equal(map.deleteBatch(new Uint8Array(keys.buffer)), COUNT);
  map.update(new Uint8Array(4), new Uint8Array(8)); // small: stays hex
});

test("a fixture stores each large bpf() region once, and small ones in place", () => {
  const text = readFileSync(fixturePath(import.meta.url, BATCH_TEST), "utf8");
  const raw = JSON.parse(text) as { blobs: Record<string, string> };
  assert.equal(Object.keys(raw.blobs).length, 2); // keys (twice), values
  const lines = text.split("\n");
  const update = lines.find((line) => line.includes("BPF_MAP_UPDATE_BATCH"))!;
  const remove = lines.find((line) => line.includes("BPF_MAP_DELETE_BATCH"))!;
  const keysOf = (line: string) =>
    /"keys":\{"size":8192,"in":"(blob:[0-9a-f]{64})"/.exec(line)?.[1];
  assert.ok(keysOf(update) !== undefined, update.slice(0, 300));
  assert.equal(keysOf(update), keysOf(remove));
  assert.match(lines.find((line) => line.includes("BPF_MAP_UPDATE_ELEM"))!, /"in":"00000000"/);
});

/** A transcript with one read of `bytes`. */
function transcriptOf(bytes: Uint8Array): Transcript {
  return {
    format: "bpfmap-transcript",
    version: 1,
    host: { arch: "x86_64", kernel: "6.18", possibleCpus: 2 },
    files: {},
    entries: [{ readFile: "/f", bytes: encodeBytes(bytes) }],
  };
}

const big = new Uint8Array(BLOB_THRESHOLD + 1).map((_, i) => i * 7);

test("a transcript without large bytes has no blob table: its text is as before", () => {
  const text = serializeTranscript(transcriptOf(new Uint8Array(BLOB_THRESHOLD)));
  assert.equal(text.includes("blobs"), false);
  assert.deepEqual(parseTranscript(text, "t.json"), transcriptOf(new Uint8Array(BLOB_THRESHOLD)));
});

test("blobs read back as the bytes they were, and serialize to the same text", () => {
  const text = serializeTranscript(transcriptOf(big));
  assert.match(text, /"bytes":"blob:[0-9a-f]{64}"/);
  const parsed = parseTranscript(text, "t.json");
  assert.deepEqual(parsed, transcriptOf(big));
  assert.equal(serializeTranscript(parsed), text);
});

test("a tampered, unknown or unnamed blob is refused, naming it", () => {
  const text = serializeTranscript(transcriptOf(big));
  const hash = /blob:([0-9a-f]{64})/.exec(text)![1]!;
  const other = sha256(new Uint8Array(1));
  const cases: [string, RegExp][] = [
    [text.replace(`"${hash}": "gzip:`, `"${hash}": "gzip:AAAA`), /blobs\.[0-9a-f]{64}: not gzip/],
    [text.replace(`"${hash}":`, `"${other}":`), /blobs\.[0-9a-f]{64}: the bytes have another/],
    [text.replace(`blob:${hash}`, `blob:${other}`), /blob:[0-9a-f]{64}: not in the blob table/],
    [text.replace(`"bytes":"blob:${hash}"`, `"bytes":"00"`), /blobs\.[0-9a-f]{64}: no entry names/],
  ];
  for (const [bad, message] of cases) {
    assert.notEqual(bad, text);
    assert.throws(
      () => parseTranscript(bad, "t.json"),
      (error) =>
        error instanceof TranscriptError && message.test(error.message)
        && error.message.startsWith("t.json: "),
    );
  }
});

// A blob store shared by transcripts: each blob once, as <sha-256>.gz, for all of them.
const STORE = BLOB_STORE;
const storedTest = transcriptTests({
  fixtures: join(FIXTURES, "blobs.test.ts"),
  blobStore: STORE,
});
const STORED = ["a stored batch, first transcript", "a stored batch, second transcript"];

for (const name of STORED) {
  storedTest(name, (system) => {
    using map = system.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: COUNT });
    const keys = new Uint32Array(COUNT).map((_, i) => i);
    assert.equal(map.updateBatch(new Uint8Array(keys.buffer), new Uint8Array(keys.buffer)), COUNT);
  });
}

test("transcripts recorded with a blob store name one shared file, and replay from it", () => {
  const texts = STORED.map((name) => readFileSync(fixturePath(import.meta.url, name), "utf8"));
  const refs = texts.map((text) => JSON.parse(text).blobs as Record<string, string>);
  assert.deepEqual(refs[0], refs[1]); // the same keys and values: one blob, one file
  const [hash, ref] = Object.entries(refs[0]!)[0]!;
  assert.equal(ref, `file:../.blobs/${hash}.gz`);
  const stored = readFileSync(join(STORE, `${hash}.gz`));
  assert.equal(sha256(gunzipSync(stored)), hash);
  for (const text of texts) assert.ok(text.length < 4096, `${text.length} bytes`);
});

test("a store reference to another blob's file, to a file outside the store, or to a missing one is refused", () => {
  const path = fixturePath(import.meta.url, STORED[0]!);
  const text = readFileSync(path, "utf8");
  const hash = /"([0-9a-f]{64})": "file:/.exec(text)![1]!;
  const other = sha256(new Uint8Array(1));
  const refused = (bad: string, message: RegExp, at = path) =>
    assert.throws(
      () => parseTranscript(bad, at),
      (error) => error instanceof TranscriptError && message.test(error.message),
    );
  refused(text.replace(`/${hash}.gz`, `/${other}.gz`), /is another blob's file/);
  refused(text.replace(`../.blobs/${hash}.gz`, "../../../etc/passwd"), /file: and a <sha-256>\.gz/);
});

test("a replay whose store file is missing fails before any call, naming the file", async () => {
  // A fixture copied without its store: the file it names is not there.
  const path = fixturePath(import.meta.url, VMLINUX_TEST);
  const copy = join(mkdtempSync(join(tmpdir(), "bpfmap-")), "t.json");
  writeFileSync(copy, readFileSync(path));
  const hash = /"([0-9a-f]{64})": "file:/.exec(readFileSync(path, "utf8"))![1]!;
  const missing = join(dirname(copy), "..", ".blobs", `${hash}.gz`);
  await assert.rejects(
    openSystem({ transcript: copy, mode: "replay", modeFromEnvironment: false }),
    (error) =>
      error instanceof TranscriptError
      && error.message === `${copy}: blobs.${hash}: cannot read ../.blobs/${hash}.gz (${missing}): `
          + "no such file; the blob store goes with the transcript",
  );
});
