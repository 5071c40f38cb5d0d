// The replay layer itself: what a divergence says, strict order, corrupt
// transcripts (these replay committed fixtures, so they run everywhere), and,
// live, what recording and verifying write.

import assert from "node:assert/strict";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { joinPerCpu } from "../ffi/percpu.ts";
import {
  BPF_F_ZERO_SEED,
  BpfError,
  type BpfSystem,
  openSystem,
  possibleCpus,
  ReplayDivergenceError,
  TRANSCRIPT_ENV,
  TranscriptError,
  TranscriptMismatchError,
} from "../mod.ts";
import { withPossibleCpus } from "../replay/cpus.ts";
import {
  decodeBytes,
  encodeBytes,
  isCall,
  parseTranscript,
  type RegionRecord,
  serializeTranscript,
  type Transcript,
} from "../replay/transcript.ts";
import { readU32, u32, u64 } from "./helpers/bytes.ts";
import { liveTest, thrown } from "./helpers/live.ts";
import { withoutKernelRelease } from "./helpers/transcript.ts";
import { fixturePath, transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const SAMPLE = "a sample session: create, update batch, lookups, a failed update";
const samplePath = fixturePath(import.meta.url, SAMPLE);

/** The session the sample fixture holds; `change` alters one step to make it diverge. */
function sampleSession(
  system: BpfSystem,
  change: "none" | "key" | "lookup key" | "flags" | "stop early" = "none",
): void {
  const map = system.createMap({
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
    flags: BPF_F_ZERO_SEED,
    name: "sample",
  });
  map.updateBatch(u32(1, 2, change === "key" ? 7 : 3, 4), u64(10, 20, 30, 40));
  assert.deepEqual(map.lookup(u32(change === "lookup key" ? 3 : 2)), u64(20));
  if (change === "stop early") return;
  const failed = thrown(() => map.update(u32(1), u64(11), change === "flags" ? 2 : 1));
  if (!(failed instanceof BpfError)) {
    throw failed ?? new Error("update of an existing key with BPF_NOEXIST passed");
  }
  assert.equal(failed.code, "EEXIST");
  assert.equal([...map.keys()].length, 4);
}

/** Replays the sample fixture (or `path`) with a changed session; returns what was thrown. */
async function replayChanged(
  change: Parameters<typeof sampleSession>[1],
  path = samplePath,
): Promise<unknown> {
  const system = await openSystem({ transcript: path, mode: "replay", modeFromEnvironment: false });
  try {
    sampleSession(system, change);
    await system.close();
  } catch (error) {
    await system.close().catch(() => {});
    return error;
  }
  return undefined;
}

transcriptTest(SAMPLE, (system) => sampleSession(system));

test("a changed batch key: the divergence names the call and the element, in hex", async () => {
  const error = await replayChanged("key");
  assert.ok(error instanceof ReplayDivergenceError, String(error));
  assert.equal(error.transcript, samplePath);
  assert.equal(error.index, 2);
  assert.equal(error.command, "BPF_MAP_UPDATE_BATCH");
  assert.deepEqual(error.differences, ["keys[2]: expected 03000000, got 07000000"]);
  assert.equal(
    error.message,
    `${samplePath}: call #2 (BPF_MAP_UPDATE_BATCH) diverged from the transcript:\n`
      + "  - keys[2]: expected 03000000, got 07000000",
  );
});

test("a key changed in its first byte: the player compares every input byte", async () => {
  const error = await replayChanged("lookup key");
  assert.ok(error instanceof ReplayDivergenceError, String(error));
  assert.deepEqual([error.index, error.command, error.differences], [
    3,
    "BPF_MAP_LOOKUP_ELEM",
    ["key: expected 02000000, got 03000000 (first difference at byte 0)"],
  ]);
});

test("a changed flag: the divergence names the field", async () => {
  const error = await replayChanged("flags");
  assert.ok(error instanceof ReplayDivergenceError);
  assert.deepEqual([error.index, error.command, error.differences], [
    4,
    "BPF_MAP_UPDATE_ELEM",
    ["flags: expected 1, got 2"],
  ]);
});

test("stopping early diverges at the first call not made (here: the map's close)", async () => {
  const error = await replayChanged("stop early");
  assert.ok(error instanceof ReplayDivergenceError);
  assert.deepEqual([error.index, error.differences], [4, [
    "expected BPF_MAP_UPDATE_ELEM, got close(handle 1)",
  ]]);
});

test("recorded calls never made, and calls past the end, are divergences", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-order-"));
  const text = readFileSync(samplePath, "utf8");
  try {
    const longer = join(dir, "longer.json");
    writeFileSync(
      longer,
      text.replace(
        "  {\"close\":1}\n]}",
        "  {\"close\":1},\n  {\"call\":\"BPF_MAP_FREEZE\",\"attr\":{\"map_fd\":1},\"result\":0}\n]}",
      ),
    );
    const unplayed = await replayChanged("none", longer);
    assert.ok(unplayed instanceof ReplayDivergenceError, String(unplayed));
    assert.match(
      unplayed.message,
      /1 recorded call\(s\) were never made; the first is BPF_MAP_FREEZE/,
    );
    const shorter = join(dir, "shorter.json");
    writeFileSync(shorter, text.replace(",\n  {\"close\":1}\n]}", "\n]}"));
    const past = await replayChanged("none", shorter);
    assert.ok(past instanceof ReplayDivergenceError, String(past));
    assert.match(
      past.message,
      /the transcript ends after \d+ call\(s\), but the code made close\(handle 1\)/,
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const WIDE = "wide batch elements: 96-byte values in and out";
const widePath = fixturePath(import.meta.url, WIDE);
/** Byte 80 of a 96-byte value: past the 64 bytes a transcript shows as hex. */
const FAR_BYTE = 80;

/** Two 96-byte values, every byte distinct; `changed` flips byte 80 of the second. */
function wideValues(changed = false): Uint8Array {
  const values = Uint8Array.from({ length: 2 * 96 }, (_, i) => i);
  if (changed) values[96 + FAR_BYTE]! ^= 0xff; // within the 2 * 96 bytes
  return values;
}

/** Writes two 96-byte values by batch and reads them back by batch. */
function wideSession(system: BpfSystem, changed = false): void {
  // Not `using`: a close after a divergence would hide it; the system closes the map.
  const map = system.createMap({
    type: "hash",
    keySize: 4,
    valueSize: 96,
    maxEntries: 4,
    flags: BPF_F_ZERO_SEED,
    name: "wide",
  });
  assert.equal(map.updateBatch(u32(1, 2), wideValues(changed)), 2);
  const batch = map.lookupBatch({ count: 4 });
  assert.equal(batch.count, 2);
  const byKey = new Map(
    [0, 1].map((i) => [readU32(batch.keys, i), [...batch.values.subarray(i * 96, (i + 1) * 96)]]),
  );
  const values = wideValues(changed);
  assert.deepEqual(byKey.get(1), [...values.subarray(0, 96)]);
  assert.deepEqual(byKey.get(2), [...values.subarray(96)]);
}

/** 16 bytes of `bytes` from `offset`, as a diff shows them. */
const window16 = (bytes: Uint8Array, offset: number) =>
  encodeBytes(bytes.subarray(offset, offset + 16));

transcriptTest(WIDE, (system) => wideSession(system));

test("the player sees a difference past byte 64 of a batch element", async () => {
  const system = await openSystem({
    transcript: widePath,
    mode: "replay",
    modeFromEnvironment: false,
  });
  const error = thrown(() => wideSession(system, true));
  await system.close().catch(() => {}); // the divergence left the rest unplayed
  assert.ok(error instanceof ReplayDivergenceError, String(error));
  assert.equal(error.command, "BPF_MAP_UPDATE_BATCH");
  const recorded = wideValues().subarray(96);
  const made = wideValues(true).subarray(96);
  assert.deepEqual(error.differences, [
    `values[1]: differs at byte ${FAR_BYTE} of 96: expected ${window16(recorded, FAR_BYTE)}…, got ${
      window16(made, FAR_BYTE)
    }…`,
  ]);
});

liveTest("the verifier sees a difference past byte 64 of what the kernel wrote", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-wide-"));
  try {
    // The fixture, edited as if the kernel had returned byte 80 of the second element changed.
    const transcript = parseTranscript(readFileSync(widePath, "utf8"), widePath);
    const lookup = transcript.entries.find((e) => isCall(e) && e.call === "BPF_MAP_LOOKUP_BATCH");
    assert.ok(lookup !== undefined && isCall(lookup));
    const region = lookup.attr.values as RegionRecord;
    const returned = decodeBytes(region.out!);
    const edited = returned.slice();
    edited[96 + FAR_BYTE]! ^= 0xff; // within the 2 * 96 bytes
    region.out = encodeBytes(edited);
    const path = join(dir, "wide.json");
    writeFileSync(path, serializeTranscript(transcript));
    const system = await openSystem({
      transcript: path,
      mode: "verify",
      modeFromEnvironment: false,
    });
    wideSession(system);
    const error = await system.close().then(() => undefined, (e) => e);
    assert.ok(error instanceof TranscriptMismatchError, String(error));
    const index = transcript.entries.indexOf(lookup);
    assert.deepEqual(error.differences, [
      `call #${index} (BPF_MAP_LOOKUP_BATCH): values (kernel wrote)[1]: differs at byte ${FAR_BYTE} of 96: expected ${
        window16(edited.subarray(96), FAR_BYTE)
      }…, got ${window16(returned.subarray(96), FAR_BYTE)}…`,
    ]);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const PER_CPU = "per-CPU maps: every CPU given the same value";
const perCpuPath = fixturePath(import.meta.url, PER_CPU);

/**
 * Per-CPU element and batch calls, sized by the system's CPU count (the
 * recording host's, in replay), every CPU given the same value.
 */
function perCpuSession(system: BpfSystem): void {
  const cpus = system.possibleCpus();
  const same = (value: Uint8Array) => joinPerCpu(Array.from({ length: cpus }, () => value), 4);
  const map = system.createMap({
    type: "percpu_hash",
    keySize: 4,
    valueSize: 4,
    maxEntries: 8,
    flags: BPF_F_ZERO_SEED,
    name: "percpu",
  });
  assert.equal(map.valueStride, 8 * cpus);
  map.update(u32(1), same(u32(10)));
  assert.deepEqual(map.lookup(u32(1)), same(u32(10)));
  map.updateBatch(u32(2, 3), new Uint8Array([...same(u32(20)), ...same(u32(30))]));
  const batch = map.lookupBatch({ count: 8 });
  const byKey = new Map(
    [0, 1, 2].map((i) => [readU32(batch.keys, i), readU32(batch.values, i * 2 * cpus)]),
  );
  assert.deepEqual([batch.count, byKey], [3, new Map([[1, 10], [2, 20], [3, 30]])]);
  assert.deepEqual(
    batch.values,
    new Uint8Array([...byKey.values()].flatMap((n) => [...same(u32(n))])),
  );
}

transcriptTest(PER_CPU, (system) => perCpuSession(system));

const rewrites = mkdtempSync(join(tmpdir(), "bpfmap-cpus-"));
after(() => rmSync(rewrites, { recursive: true, force: true }));

/**
 * The per-CPU fixture rewritten as if recorded on `cpus` CPUs, in a new
 * folder; `edit` may change it further. Returns its path.
 */
function perCpuRewritten(cpus: number, edit: (t: Transcript) => void = () => {}): string {
  const transcript = withPossibleCpus(
    parseTranscript(readFileSync(perCpuPath, "utf8"), perCpuPath),
    cpus,
  );
  edit(transcript);
  const path = join(rewrites, `${cpus}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, serializeTranscript(transcript));
  return path;
}

for (const cpus of [4, 1]) {
  test(`a per-CPU transcript rewritten as recorded on ${cpus} CPU(s) replays on that count`, async () => {
    const path = perCpuRewritten(cpus);
    const system = await openSystem({
      transcript: path,
      mode: "replay",
      modeFromEnvironment: false,
    });
    assert.equal(system.possibleCpus(), cpus);
    perCpuSession(system);
    await system.close();
  });

  liveTest(
    `a per-CPU transcript rewritten as recorded on ${cpus} CPU(s) verifies here`,
    async () => {
      const system = await openSystem({
        transcript: perCpuRewritten(cpus),
        mode: "verify",
        modeFromEnvironment: false,
      });
      assert.notEqual(system.possibleCpus(), cpus, "this host has another CPU count");
      perCpuSession(system);
      await system.close();
    },
  );
}

liveTest("verifying across CPU counts compares every CPU both hosts have", async () => {
  const here = possibleCpus();
  /** Verifies the 4-CPU rewrite with byte 0 of CPU `cpu`'s slot changed in the first lookup. */
  const verifyWithSlotChanged = async (cpu: number) => {
    const path = perCpuRewritten(4, (transcript) => {
      const lookup = transcript.entries.find((e) => isCall(e) && e.call === "BPF_MAP_LOOKUP_ELEM");
      assert.ok(lookup !== undefined && isCall(lookup));
      const value = lookup.attr.value as RegionRecord;
      const bytes = decodeBytes(value.out!);
      bytes[cpu * 8]! ^= 0xff; // one 8-byte slot per recorded CPU
      value.out = encodeBytes(bytes);
    });
    const system = await openSystem({
      transcript: path,
      mode: "verify",
      modeFromEnvironment: false,
    });
    perCpuSession(system);
    return await system.close().then(() => undefined, (e) => e);
  };
  for (let cpu = 0; cpu < 4; cpu++) {
    const error = await verifyWithSlotChanged(cpu);
    if (cpu < here) {
      assert.ok(error instanceof TranscriptMismatchError, `CPU ${cpu}: ${String(error)}`);
      assert.equal(error.differences.length, 1, error.message);
      assert.match(
        error.differences[0] ?? "",
        /\(BPF_MAP_LOOKUP_ELEM\): value \(kernel wrote\): expected/,
      );
    } else {
      assert.equal(error, undefined, `CPU ${cpu}, which this host does not have`);
    }
  }
});

test("the sample replays cleanly", async () => {
  assert.equal(await replayChanged("none"), undefined);
});

test("corrupt transcripts are refused with the path and the reason", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-corrupt-"));
  const text = readFileSync(samplePath, "utf8");
  const write = (name: string, content: string) => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  };
  try {
    const cases: [string, string, RegExp][] = [
      ["truncated.json", text.slice(0, text.length / 2), /truncated\.json: not a transcript/],
      ["empty.json", "", /not a transcript/],
      [
        "version.json",
        text.replace("\"version\":1", "\"version\":99"),
        /transcript version 99; this bpfmap reads version 1/,
      ],
      ["format.json", text.replace("bpfmap-transcript", "pcap"), /not a bpfmap-transcript file/],
      [
        "version-string.json",
        text.replace("\"version\":1", "\"version\":\"1\""),
        /version: expected the number 1, got the string "1"/,
      ],
      [
        "count.json",
        text.replace(/"count":\{"in":4,"out":4\}/, "\"count\":{\"in\":4,\"out\":4294967295}"),
        /entry 2 \(BPF_MAP_UPDATE_BATCH\): count\.out: 4294967295 exceeds count\.in 4/,
      ],
      [
        "input-only.json",
        text.replace(/("keys":\{"size":16,"in":"[0-9a-f]+")/, "$1,\"out\":\"00\""),
        /entry 2 \(BPF_MAP_UPDATE_BATCH\): keys\.out: the kernel only reads this region/,
      ],
      [
        "errno.json",
        text.replace("\"errno\":\"EEXIST\"", "\"errno\":\"E0\""),
        /\(BPF_MAP_UPDATE_ELEM\): errno: expected an errno name/,
      ],
      [
        "result.json",
        text.replace("\"errno\":\"EEXIST\"", "\"result\":-2"),
        /\(BPF_MAP_UPDATE_ELEM\): result: expected 0, got -2/,
      ],
      [
        "out-type.json",
        text.replace(/"out":"([0-9a-f]{16})"/, "\"out\":16"),
        /: not hex or base64: 16/,
      ],
      [
        "entry.json",
        text.replace("{\"call\":\"BPF_MAP_LOOKUP_ELEM\"", "{\"cal\":\"BPF_MAP_LOOKUP_ELEM\""),
        /entry 3 is not a call, a close or an fdinfo/,
      ],
    ];
    for (const [name, content, message] of cases) {
      const path = write(name, content);
      await assert.rejects(
        openSystem({ transcript: path, mode: "replay", modeFromEnvironment: false }),
        (error: Error) => {
          return error instanceof TranscriptError && message.test(error.message);
        },
        name,
      );
    }
    // Reordered entries and flipped bytes parse, and diverge at the call they changed.
    const lines = text.split("\n");
    const [a, b] = [
      lines.findIndex((l) => l.includes("UPDATE_BATCH")),
      lines.findIndex((l) => l.includes("LOOKUP_ELEM")),
    ];
    const [first, second] = [lines[a], lines[b]];
    assert.ok(first !== undefined && second !== undefined, "the sample has both calls");
    [lines[a], lines[b]] = [second.replace(/,?$/, ","), first.replace(/,?$/, ",")];
    const reordered = await replayChanged("none", write("reordered.json", lines.join("\n")));
    assert.ok(reordered instanceof ReplayDivergenceError);
    assert.match(
      reordered.message,
      /call #2 \(BPF_MAP_UPDATE_BATCH\).*\n  - expected BPF_MAP_LOOKUP_ELEM, got BPF_MAP_UPDATE_BATCH/,
    );
    const flipped = await replayChanged(
      "none",
      write("flipped.json", text.replace("\"in\":\"02000000\"", "\"in\":\"02000001\"")),
    );
    assert.ok(flipped instanceof ReplayDivergenceError);
    assert.match(
      flipped.message,
      /call #3 \(BPF_MAP_LOOKUP_ELEM\).*\n  - key: expected 02000001, got 02000000 \(first difference at byte 3\)/,
    );
    await assert.rejects(
      openSystem({
        transcript: join(dir, "absent.json"),
        mode: "replay",
        modeFromEnvironment: false,
      }),
      /cannot read transcript .*absent\.json/,
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("a divergence in `await using` is thrown as itself, not buried under a SuppressedError", async () => {
  const error = await (async () => {
    await using system = await openSystem({
      transcript: samplePath,
      mode: "replay",
      modeFromEnvironment: false,
    });
    sampleSession(system, "key");
  })().then(() => undefined, (e) => e);
  assert.ok(error instanceof ReplayDivergenceError, String(error));
  assert.deepEqual(error.differences, ["keys[2]: expected 03000000, got 07000000"]);
});

liveTest("a recorded session that fails writes no transcript; one that passes does", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-failed-"));
  const transcript = join(dir, "session.json");
  try {
    const system = await openSystem({ transcript, mode: "auto", modeFromEnvironment: false });
    assert.equal(system.mode, "record");
    await assert.rejects(
      system.run((s) => sampleSession(s, "lookup key")),
      assert.AssertionError,
    );
    assert.equal(existsSync(transcript), false);
    const again = await openSystem({ transcript, mode: "auto", modeFromEnvironment: false });
    await again.run((s) => sampleSession(s));
    assert.ok(parseTranscript(readFileSync(transcript, "utf8"), transcript).entries.length > 4);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("replay serves the recording host's possible CPUs", async () => {
  const transcript = parseTranscript(readFileSync(samplePath, "utf8"), samplePath);
  await using system = await openSystem({
    transcript: samplePath,
    mode: "replay",
    modeFromEnvironment: false,
  });
  assert.equal(system.mode, "replay");
  assert.equal(system.possibleCpus(), transcript.host.possibleCpus);
  sampleSession(system);
});

liveTest(
  "record writes atomically and re-recording a deterministic session is byte-identical",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "bpfmap-record-"));
    try {
      const path = join(dir, "nested", "session.json");
      for (const name of ["first", "second"]) {
        const system = await openSystem({
          transcript: path,
          mode: "auto",
          modeFromEnvironment: false,
        });
        assert.equal(system.mode, name === "first" ? "record" : "replay");
        sampleSession(system);
        await system.close();
      }
      const recorded = readFileSync(path, "utf8");
      const system = await openSystem({
        transcript: path,
        mode: "record",
        modeFromEnvironment: false,
      });
      sampleSession(system);
      await system.close();
      assert.equal(readFileSync(path, "utf8"), recorded);
      assert.deepEqual(
        readdirSync(join(dir, "nested")),
        ["session.json"],
        "no temporary file left",
      );
      assert.equal(
        withoutKernelRelease(recorded),
        withoutKernelRelease(readFileSync(samplePath, "utf8")),
        "and identical to the committed fixture",
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  },
);

liveTest("verify runs live and reports every difference, not just the first", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-verify-"));
  const path = join(dir, "session.json");
  const original = readFileSync(samplePath, "utf8");
  try {
    // The fixture, edited as if the kernel had answered differently twice.
    writeFileSync(
      path,
      original.replace("\"out\":\"1400000000000000\"", "\"out\":\"1500000000000000\"").replace(
        "\"errno\":\"EEXIST\"",
        "\"errno\":\"EPERM\"",
      ),
    );
    let error: unknown;
    const system = await openSystem({
      transcript: path,
      mode: "verify",
      modeFromEnvironment: false,
    });
    assert.equal(system.mode, "verify");
    sampleSession(system);
    error = await system.close().then(() => undefined, (e) => e);
    assert.ok(error instanceof TranscriptMismatchError, String(error));
    assert.deepEqual(error.differences, [
      "call #3 (BPF_MAP_LOOKUP_ELEM): value (kernel wrote): expected 1500000000000000, got 1400000000000000 (first difference at byte 0)",
      "call #4 (BPF_MAP_UPDATE_ELEM): result: expected EPERM, got EEXIST",
    ]);
    const copy = /its own transcript: (.*)\):/.exec(error.message)?.[1];
    assert.ok(copy !== undefined && existsSync(copy));
    assert.equal(withoutKernelRelease(readFileSync(copy, "utf8")), withoutKernelRelease(original));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

liveTest(
  "a 100,000-entry dump's transcript is at most 1.5x the bytes the kernel moved",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "bpfmap-size-"));
    const path = join(dir, "dump.json");
    const entries = 100_000;
    try {
      {
        // The block ends the system: it writes the transcript then.
        await using system = await openSystem({
          transcript: path,
          mode: "record",
          modeFromEnvironment: false,
        });
        using map = system.createMap({
          type: "hash",
          keySize: 4,
          valueSize: 8,
          maxEntries: entries,
          flags: BPF_F_ZERO_SEED,
        });
        const keys = new Uint32Array(entries).map((_, i) => i);
        map.updateBatch(new Uint8Array(keys.buffer), new Uint8Array(entries * 8).fill(1));
        assert.equal([...map.entries({ batchSize: 4096 })].length, entries);
      }
      const transcript = parseTranscript(readFileSync(path, "utf8"), path);
      let moved = 0;
      for (const entry of transcript.entries) {
        if (!("call" in entry)) continue;
        for (const field of Object.values(entry.attr)) {
          const region = field as RegionRecord | null;
          if (region === null || typeof region !== "object" || !("size" in region)) continue;
          if (region.in !== undefined) moved += decodeBytes(region.in).byteLength;
          if (region.out !== undefined) moved += decodeBytes(region.out).byteLength;
        }
      }
      const size = statSync(path).size;
      assert.ok(moved >= entries * 12 * 2, `moved ${moved}`);
      assert.ok(
        size <= 1.5 * moved,
        `transcript ${size} bytes for ${moved} moved: ${(size / moved).toFixed(2)}x`,
      );
      console.log(
        `dump transcript: ${size} bytes for ${moved} bytes moved (${(size / moved).toFixed(2)}x)`,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  },
);
