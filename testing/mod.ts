/**
 * `bpfmap/testing`: tests of code that uses bpfmap, run against the kernel
 * where BPF is available and replayed from recorded transcripts anywhere else
 * (CI, a laptop, macOS), with the same assertions.
 *
 * Each `transcriptTest(name, fn)` is a `node:test` test that opens a system
 * (`openSystem`) on `<fixtures>/<name>.json` in auto mode: live BPF records
 * the transcript the first time; later runs replay it with no FFI and no
 * kernel. `BPFMAP_TRANSCRIPT=verify` runs live and fails where the kernel now
 * answers otherwise; `BPFMAP_TRANSCRIPT=record` re-records every transcript.
 *
 * Bytes over 4 KiB (the kernel's BTF, a program's instructions, a large
 * batch) are kept gzip-compressed under their SHA-256, once per transcript.
 * With `blobStore`, once for all of a suite's transcripts, the layout bpfmap's
 * own fixtures use:
 *
 * ```text
 * fixtures/
 *   .blobs/<sha-256>.gz          each blob once (never rewritten: its name says what it holds)
 *   maps.test.ts/<test name>.json   names it as "file:../.blobs/<sha-256>.gz"
 * ```
 *
 * A recording writes the blobs it lacks into the store; commit the store with
 * the transcripts (a transcript whose file is missing fails to open, naming
 * the file). The store is append-only: a blob no transcript names any more
 * stays until it is deleted.
 *
 * @module
 */

import { resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { PathPlaceholders } from "../replay/identities.ts";
import { ReplayDivergenceError } from "../replay/player.ts";
import { type BpfSystem, openSystem, TRANSCRIPT_ENV } from "../replay/system.ts";
import { TranscriptMismatchError } from "../replay/verifier.ts";

/** Options of {@linkcode transcriptTests}. */
export interface TranscriptTestsOptions {
  /**
   * The folder of this file's transcripts: a path, or a `file:` URL such as
   * `new URL("./fixtures/", import.meta.url)`. Give each test file its own.
   */
  fixtures: string | URL;
  /**
   * This run's own folders by placeholder name (see `openSystem`'s `paths`),
   * asked for when each test starts, so that a folder made in `before()`
   * counts.
   */
  paths?: (() => PathPlaceholders) | undefined;
  /**
   * What registers a test (default: `node:test`'s `test`, which Deno and Bun
   * run too); e.g. `Deno.test`, or `bun:test`'s `test`.
   */
  test?: ((name: string, fn: () => Promise<void>) => unknown) | undefined;
  /**
   * A folder (path or `file:` URL) that keeps each blob of the transcripts
   * recorded (bytes over 4 KiB, such as the kernel's BTF) once for all of
   * them, shared by test files, instead of once per transcript (see
   * `openSystem`'s `blobStore`), e.g. `new URL("./fixtures/.blobs/",
   * import.meta.url)` beside `fixtures`. Default: in each transcript.
   * Replays find the blobs through each transcript's own references, so
   * only recording needs this.
   */
  blobStore?: string | URL | undefined;
}

/** The body of a transcript test: it gets the system to create and open maps on. */
export type TranscriptTestBody = (system: BpfSystem) => void | Promise<void>;

/** Registers one transcript test: see {@linkcode transcriptTests}. */
export type TranscriptTest = (name: string, fn: TranscriptTestBody) => void;

/**
 * A test name as a transcript's file name (without `.json`): lower case,
 * words joined by `_`, at most 80 characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixtureName } from "./mod.ts";
 *
 * assert.equal(fixtureName("LRU maps evict the oldest key!"), "lru_maps_evict_the_oldest_key");
 * ```
 */
export function fixtureName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 80);
}

/**
 * The `transcriptTest` of one test file, keeping its transcripts in
 * `opts.fixtures`. Every test runs in `system.run(fn)`: a test that fails
 * records nothing (an older transcript stays), and its own error is the one
 * the runner shows. A replay or verify run that no longer matches its
 * transcript fails with a message that says how to re-record it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { type BpfSystem, openSystem } from "../mod.ts";
 * import { transcriptTests } from "./mod.ts";
 *
 * // Usually `transcriptTests({ fixtures: new URL("./fixtures/", import.meta.url) })`, with
 * // node:test running the tests; here the example runs its test by hand.
 * const fixtures = mkdtempSync(join(tmpdir(), "bpfmap-fixtures-"));
 * const tests: (() => Promise<void>)[] = [];
 * const transcriptTest = transcriptTests({ fixtures, test: (_name, fn) => tests.push(fn) });
 * const body = (system: BpfSystem) => {
 *   const map = system.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
 *   map.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array([7, 0, 0, 0]));
 *   assert.deepEqual(map.lookup(new Uint8Array([1, 0, 0, 0])), new Uint8Array([7, 0, 0, 0]));
 * };
 * transcriptTest("a hash map keeps what it is given", body);
 * // The first run with BPF records the transcript (done here whatever BPFMAP_TRANSCRIPT says) ...
 * const transcript = join(fixtures, "a_hash_map_keeps_what_it_is_given.json");
 * await (await openSystem({ transcript, mode: "record", modeFromEnvironment: false })).run(body);
 * // ... and the test then replays it with no kernel (or verifies it live).
 * assert.equal(tests.length, 1);
 * await tests[0]!();
 * // Two names that give one file name would share a transcript: refused.
 * assert.throws(() => transcriptTest("A hash map keeps what it is given!", () => {}), /share/);
 * ```
 */
export function transcriptTests(opts: TranscriptTestsOptions): TranscriptTest {
  const folder = folderOf(opts?.fixtures);
  if (opts.paths !== undefined && typeof opts.paths !== "function") {
    throw new TypeError("opts.paths: expected a function returning { NAME: folder }");
  }
  const paths = opts.paths;
  if (opts.test !== undefined && typeof opts.test !== "function") {
    throw new TypeError("opts.test: expected a function (name, fn) that registers a test");
  }
  const register = opts.test ?? test;
  const blobStore = opts.blobStore === undefined
    ? undefined
    : folderOf(opts.blobStore, "opts.blobStore");
  const seen = new Set<string>();
  return (name, fn) => {
    if (typeof name !== "string" || fixtureName(name) === "") {
      throw new TypeError(`transcriptTest: the name ${JSON.stringify(name)} gives no file name`);
    }
    if (typeof fn !== "function") {
      throw new TypeError(`transcriptTest ${name}: fn is not a function`);
    }
    const path = resolve(folder, `${fixtureName(name)}.json`);
    if (seen.has(path)) throw new Error(`two transcript tests share the transcript ${path}`);
    seen.add(path);
    register(name, async () => {
      const system = await openSystem({
        transcript: path,
        mode: "auto",
        paths: paths?.() ?? {},
        blobStore,
      });
      try {
        await system.run(fn);
      } catch (error) {
        throw withRecordHint(error, system.mode);
      }
    });
  };
}

function folderOf(fixtures: unknown, option = "opts.fixtures"): string {
  if (typeof fixtures === "string" && fixtures !== "") return fixtures;
  if (fixtures instanceof URL && fixtures.protocol === "file:") return fileURLToPath(fixtures);
  throw new TypeError(
    `${option}: expected a folder path or a file: URL, got ${
      fixtures instanceof URL ? fixtures.href : JSON.stringify(fixtures)
    }`,
  );
}

/**
 * A replay or verify run whose calls differ from its transcript failed because
 * the code changed, or the kernel did: either way the fix may be a new
 * recording, so the error says how to make one. The error stays the same
 * object (its class and fields are what a caller may check).
 */
function withRecordHint(error: unknown, mode: BpfSystem["mode"]): unknown {
  const stale = error instanceof ReplayDivergenceError || error instanceof TranscriptMismatchError;
  if (!stale || (mode !== "replay" && mode !== "verify")) return error;
  const before = error.message;
  error.message += `\nIf the test's calls changed on purpose, re-record its transcript: run it `
    + `with ${TRANSCRIPT_ENV}=record on a machine with BPF, and review the transcript's diff.`;
  if (error.stack?.includes(before)) error.stack = error.stack.replace(before, error.message);
  return error;
}
