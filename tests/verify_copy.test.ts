// Verify mode's copy of the live run, and the recorder's atomic write, never
// follow a link someone planted: not at the old shared path
// ($TMPDIR/bpfmap-verify/<transcript>), not onto the transcript itself.

import assert from "node:assert/strict";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { openSystem, TranscriptMismatchError } from "../mod.ts";
import { writeAtomically } from "../replay/session.ts";
import { verifyCopyDir, writeVerifyCopy } from "../replay/verifier.ts";
import { liveTest } from "./helpers/live.ts";

/** Opens a system on `transcript` in `mode` and makes one array map of `maxEntries`. */
async function session(transcript: string, mode: "record" | "verify", maxEntries: number) {
  const system = await openSystem({ transcript, mode, modeFromEnvironment: false });
  system.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries });
  return system.close();
}

liveTest("a symlink planted at the old shared verify path is not followed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-verify-copy-"));
  const transcript = join(dir, "session.json");
  const planted = join(tmpdir(), "bpfmap-verify", transcript);
  try {
    await session(transcript, "record", 8);
    const recorded = readFileSync(transcript, "utf8");
    // The attack the old path allowed: a link there to the fixture, which verify then overwrote.
    mkdirSync(dirname(planted), { recursive: true });
    symlinkSync(transcript, planted);
    const error = await session(transcript, "verify", 9).then(() => undefined, (e) => e);
    assert.ok(error instanceof TranscriptMismatchError, String(error));
    const copy = join(verifyCopyDir(), transcript);
    assert.ok(error.message.includes(`its own transcript: ${copy}`), error.message);
    assert.match(readFileSync(copy, "utf8"), /"max_entries":9/);
    assert.equal(readFileSync(transcript, "utf8"), recorded, "verify wrote the fixture");
    assert.equal(readlinkSync(planted), transcript);
    // A verify run that matches writes its copy too, and the fixture stays as it was.
    await session(transcript, "verify", 8);
    assert.equal(readFileSync(transcript, "utf8"), recorded);
  } finally {
    rmSync(dir, { recursive: true });
    rmSync(planted, { force: true });
  }
});

test("the verify folder is this process's own: made by mkdtemp, mode 0700", () => {
  const dir = verifyCopyDir();
  assert.equal(dirname(dir), tmpdir());
  assert.match(dir, /\/bpfmap-verify-[^/]{6,}$/);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.ok(lstatSync(dir).isDirectory());
  assert.equal(verifyCopyDir(), dir);
});

test("a verify copy that leads to the transcript itself is refused, the transcript untouched", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-verify-self-"));
  const transcript = join(dir, "session.json");
  writeFileSync(transcript, "the reference");
  // A link inside the copy folder, where the transcript's folder would be made.
  const inside = join(verifyCopyDir(), dir);
  mkdirSync(dirname(inside), { recursive: true });
  symlinkSync(dir, inside);
  try {
    await assert.rejects(
      writeVerifyCopy(transcript, "the live run"),
      /leads to the transcript itself; not written/,
    );
    assert.equal(readFileSync(transcript, "utf8"), "the reference");
  } finally {
    rmSync(inside);
    rmSync(dir, { recursive: true });
  }
});

test("an atomic write replaces a symlink at its path, never writes through it, leaves no temporary", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-atomic-"));
  try {
    writeFileSync(join(dir, "fixture.json"), "the reference");
    symlinkSync(join(dir, "fixture.json"), join(dir, "t.json"));
    await writeAtomically(join(dir, "t.json"), "new");
    assert.equal(readFileSync(join(dir, "fixture.json"), "utf8"), "the reference");
    assert.equal(lstatSync(join(dir, "t.json")).isSymbolicLink(), false);
    assert.equal(readFileSync(join(dir, "t.json"), "utf8"), "new");
    assert.deepEqual(readdirSync(dir).sort(), ["fixture.json", "t.json"]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
