// bpfmap/testing's transcriptTests as its users meet it: the error a failing
// test shows, what a stale transcript says, and the input it refuses. The
// tests it registers are kept (its `test` option) and run here by hand, each
// under the BPFMAP_TRANSCRIPT a run of the user's suite would have.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { type BpfSystem, ReplayDivergenceError, TRANSCRIPT_ENV } from "../mod.ts";
import { TranscriptMismatchError } from "../replay/verifier.ts";
import { transcriptTests } from "../testing/mod.ts";
import { liveTest } from "./helpers/live.ts";

const HINT = /re-record its transcript: run it with BPFMAP_TRANSCRIPT=record/;

/** A transcriptTest on `fixtures` (a fresh folder) whose tests run when `run(name, mode)` says. */
function suite(fixtures = mkdtempSync(join(tmpdir(), "bpfmap-testing-"))) {
  const registered = new Map<string, () => Promise<void>>();
  const transcriptTest = transcriptTests({
    fixtures,
    test: (name, fn) => registered.set(name, fn),
  });
  const run = async (name: string, mode: string): Promise<void> => {
    const before = process.env[TRANSCRIPT_ENV];
    process.env[TRANSCRIPT_ENV] = mode;
    try {
      const fn = registered.get(name);
      assert.ok(fn, `no test ${name}`);
      await fn();
    } finally {
      if (before === undefined) delete process.env[TRANSCRIPT_ENV];
      else process.env[TRANSCRIPT_ENV] = before;
    }
  };
  return { fixtures, transcriptTest, run };
}

/** Creates a hash map of `maxEntries` and checks an update reads back. */
function hashOf(maxEntries: number) {
  return (system: BpfSystem) => {
    const map = system.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries });
    map.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array([7, 0, 0, 0]));
    assert.deepEqual(map.lookup(new Uint8Array([1, 0, 0, 0])), new Uint8Array([7, 0, 0, 0]));
  };
}

liveTest("a failing recorded test shows its own error and records nothing", async () => {
  const { fixtures, transcriptTest, run } = suite();
  const boom = new Error("the test's own failure");
  transcriptTest("fails half-way", (system) => {
    system.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    throw boom;
  });
  await assert.rejects(run("fails half-way", "record"), (error) => error === boom);
  assert.equal(existsSync(join(fixtures, "fails_half_way.json")), false);
});

liveTest(
  "a test failing against its transcript shows its own error, not the transcript's complaint",
  async () => {
    const { fixtures, transcriptTest, run } = suite();
    transcriptTest("a hash map", hashOf(8));
    await run("a hash map", "record");
    // The same calls up to a failure: the complaints of replay (calls left
    // unplayed) and verify (calls missing) must not bury it, as a
    // SuppressedError of `await using` would.
    const { transcriptTest: again, run: runAgain } = suite(fixtures);
    const boom = new Error("the test's own failure");
    again("a hash map", (system) => {
      system.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
      throw boom;
    });
    for (const mode of ["replay", "verify"]) {
      await assert.rejects(runAgain("a hash map", mode), (error) => error === boom, mode);
      assert.doesNotMatch(boom.message, HINT);
    }
  },
);

liveTest("a test whose calls no longer match its transcript says how to re-record it", async () => {
  const { fixtures, transcriptTest, run } = suite();
  transcriptTest("a hash map", hashOf(8));
  await run("a hash map", "record");
  await run("a hash map", "replay");
  await run("a hash map", "verify");
  const { transcriptTest: changed, run: runChanged } = suite(fixtures);
  changed("a hash map", hashOf(9));
  await assert.rejects(runChanged("a hash map", "replay"), (error) => {
    assert.ok(error instanceof ReplayDivergenceError);
    assert.match(error.message, /max_entries/);
    assert.match(error.message, HINT);
    // What runners print: the stack's first lines carry the message.
    assert.match(String(error.stack), HINT);
    return true;
  });
  await assert.rejects(runChanged("a hash map", "verify"), (error) => {
    assert.ok(error instanceof TranscriptMismatchError);
    assert.match(error.message, HINT);
    assert.match(String(error.stack), HINT);
    return true;
  });
});

test("transcriptTests refuses what would give no transcript path, before any test runs", () => {
  const fixtures = mkdtempSync(join(tmpdir(), "bpfmap-testing-"));
  const register = () => assert.fail("nothing may be registered");
  assert.throws(
    () => transcriptTests({ fixtures: new URL("https://example.com/fixtures/") }),
    /opts\.fixtures: expected a folder path or a file: URL, got https:\/\/example\.com\/fixtures\//,
  );
  assert.throws(() => transcriptTests({ fixtures: "" }), /opts\.fixtures/);
  assert.throws(() => transcriptTests(undefined as never), /opts\.fixtures/);
  const transcriptTest = transcriptTests({ fixtures, test: register });
  assert.throws(() => transcriptTest("!!!", () => {}), /the name "!!!" gives no file name/);
  assert.throws(() => transcriptTest("fine", "body" as never), /fn is not a function/);
  const kept: string[] = [];
  const keeping = transcriptTests({ fixtures, test: (name) => kept.push(name) });
  keeping("Counts packets", () => {});
  assert.throws(() => keeping("counts packets!", () => {}), /share the transcript/);
  assert.deepEqual(kept, ["Counts packets"]);
});
