// `bpfmap map watch` (issue 15, item 7): the records of a ringbuf and the samples of a
// perf_event_array, written by tests/bpf/map_memory.bpf.c's `emit` (test-run: three records of
// 8, 3 and 12 bytes into each), printed by a bpfmap child as hex or JSON lines, until it is
// interrupted or has printed `count`; a recorded watch replays with no BPF. And `map dump` of
// such maps prints what bpftool prints on stdout, with a note on stderr that says where the
// records are.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { readEnv } from "../ffi/live.ts";
import { BpfMap, BpfObject, TRANSCRIPT_ENV } from "../mod.ts";
import { bpfmap, bpfmapCommand, bpftool, childEnv } from "./helpers/cli_run.ts";
import { liveTest } from "./helpers/live.ts";
import { withBuiltObject } from "./helpers/loader_object.ts";
import { FIXTURES } from "./helpers/transcript.ts";

/** The object clang builds (every test here runs live: no fixture to replay it from). */
let built: Uint8Array | undefined;
const watchObject = () =>
  built ??= withBuiltObject("map_memory.bpf.c", (path) => new Uint8Array(readFileSync(path)));
const XDP_PASS = 2;
/** A recorded `-j map watch ... count 4`, and its command line and output, replayed in every pass. */
const RECORDED = join(FIXTURES, "cli_watch.test.ts", "watch_ringbuf.json");
/** A recorded `map watch ...` with no count, ended by SIGINT, replayed in every pass. */
const INTERRUPTED = join(FIXTURES, "cli_watch.test.ts", "watch_interrupted.json");
const runOf = (transcript: string) => transcript.replace(/\.json$/, ".run.json");

/** Keeps a live run's transcript and command line as fixtures (recording, or when missing). */
function keepFixture(transcript: string, fixture: string, args: string[], stdout: string): void {
  if (readEnv(TRANSCRIPT_ENV) !== "record" && existsSync(fixture)) return;
  mkdirSync(dirname(fixture), { recursive: true });
  copyFileSync(transcript, fixture);
  writeFileSync(runOf(fixture), JSON.stringify({ args, stdout }, null, 2) + "\n");
}

/** The object loaded, and `emit` run `runs` times (3 records per run into each map). */
function emitter(runs: number): { object: BpfObject; emit(): void } & Disposable {
  const object = BpfObject.open(watchObject(), { name: "watch" }).load();
  const emit = () => {
    const program = object.programs.get("emit")!;
    assert.equal(program.testRun({ data: new Uint8Array(64) }).retval, XDP_PASS);
  };
  for (let i = 0; i < runs; i++) emit();
  return { object, emit, [Symbol.dispose]: () => object.close() };
}

/** The three records of run `seq` (1-based), as `emit` writes them. */
function recordsOf(seq: number): Uint8Array[] {
  return [
    new Uint8Array(new BigUint64Array([BigInt(seq)]).buffer),
    new Uint8Array([0xab, 0xcd, 0xef]),
    new Uint8Array(new Uint32Array([0x11223344, 0x55667788, 0x99aabbcc]).buffer),
  ];
}

/** How `map watch` prints records in plain text: a numbered line, then bpftool's hex rows. */
function plainRecord(number: number, bytes: Uint8Array): string {
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0"));
  const rows: string[] = [];
  for (let i = 0; i < hex.length; i += 16) {
    rows.push(
      hex.slice(i, i + 8).join(" ") + (i + 8 < hex.length ? "  " : "")
        + hex.slice(i + 8, i + 16).join(" "),
    );
  }
  return `record ${number}: ${bytes.byteLength} bytes\n${rows.join("\n")}\n`;
}

/**
 * Runs `bpfmap ARGS` until it has printed `expected` (or ended: no timing check), then sends
 * it SIGINT; how it ended (code, signal) and what it printed. By pid: Deno's
 * `ChildProcess.kill()` reports the signal it sent as the cause of the child's exit, whatever
 * the child did with it.
 */
async function interrupted(
  args: string[],
  expected: string,
): Promise<{ status: [number | null, string | null]; stdout: string; stderr: string }> {
  const [command, ...prefix] = bpfmapCommand();
  const child = spawn(command, [...prefix, ...args], { env: childEnv() });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<[number | null, string | null]>((resolve) =>
    child.on("exit", (code, signal) => resolve([code, signal]))
  );
  for (let waited = 0; stdout.length < expected.length && child.exitCode === null; waited++) {
    if (waited > 600) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  process.kill(child.pid!, "SIGINT");
  const status = await exited;
  return { status, stdout, stderr };
}

const jsonBytes = (bytes: Uint8Array) =>
  [...bytes].map((b) => `0x${b.toString(16).padStart(2, "0")}`);

liveTest("map watch prints records until SIGINT, exits 0, and its recording replays", async () => {
  using loaded = emitter(1);
  const { object, emit } = loaded;
  const id = object.maps.get("events")!.id;
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-watch-"));
  try {
    const transcript = join(folder, "watch.json");
    const args = ["map", "watch", "id", `${id}`];
    const expected = [1, 2].flatMap((seq) => recordsOf(seq))
      .map((bytes, i) => plainRecord(i + 1, bytes)).join("");
    // The first run's records wait in the ring for the child; the second's wake it. All six
    // printed (flushed at each wake-up), the child waits for more until SIGINT.
    emit();
    const { status, stdout, stderr } = await interrupted(
      ["--record", transcript, ...args],
      expected,
    );
    // Handled, not fatal: the watch stops waiting, flushes, writes its recording and exits 0.
    assert.equal(stderr, "");
    assert.deepEqual(status, [0, null]);
    assert.equal(stdout, expected);
    // The wait the signal cut short ends the replay where it ended the recording.
    const replayed = bpfmap(["--replay", transcript, ...args], { ffi: false });
    assert.deepEqual([replayed.stdout, replayed.stderr, replayed.status], [expected, "", 0]);
    keepFixture(transcript, INTERRUPTED, args, stdout);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

liveTest("map watch -j ends at SIGINT with whole lines and no empty one", async () => {
  using loaded = emitter(1);
  const { object } = loaded;
  const id = object.maps.get("events")!.id;
  const expected = recordsOf(1).map((bytes, i) =>
    JSON.stringify({ record: i + 1, size: bytes.byteLength, data: jsonBytes(bytes) }) + "\n"
  ).join("");
  // The run's three records, each line whole as flushed; then the watch waits for more.
  const { status, stdout, stderr } = await interrupted(
    ["-j", "map", "watch", "id", `${id}`],
    expected,
  );
  assert.equal(stderr, "");
  assert.deepEqual(status, [0, null]);
  assert.equal(stdout, expected);
});

liveTest("map watch -j prints JSON lines, count N ends it, and a recorded watch replays", () => {
  using loaded = emitter(2);
  const { object } = loaded;
  const id = object.maps.get("events")!.id;
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-watch-"));
  try {
    const transcript = join(folder, "watch.json");
    const live = bpfmap([
      "--record",
      transcript,
      "-j",
      "map",
      "watch",
      "id",
      `${id}`,
      "count",
      "4",
    ]);
    assert.deepEqual([live.stderr, live.status], ["", 0]);
    // One object per line, each line ended, nothing else.
    const lines = live.stdout.split("\n");
    assert.equal(lines.pop(), "");
    const records = [...recordsOf(1), recordsOf(2)[0]!];
    assert.deepEqual(
      lines.map((line) => JSON.parse(line)),
      records.map((bytes, i) => ({
        record: i + 1,
        size: bytes.byteLength,
        data: jsonBytes(bytes),
      })),
    );
    // The rest stay in the ring for the next reader.
    const rest = bpfmap(["map", "watch", "id", `${id}`, "count", "2"]);
    assert.equal(rest.stdout, plainRecord(1, recordsOf(2)[1]!) + plainRecord(2, recordsOf(2)[2]!));
    const replayed = bpfmap(
      ["--replay", transcript, "-j", "map", "watch", "id", `${id}`, "count", "4"],
      { ffi: false },
    );
    assert.deepEqual([replayed.stderr, replayed.status], ["", 0]);
    assert.equal(replayed.stdout, live.stdout);
    keepFixture(
      transcript,
      RECORDED,
      ["-j", "map", "watch", "id", `${id}`, "count", "4"],
      live.stdout,
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test("recorded map watches replay with no BPF, record for record: counted and interrupted", () => {
  for (const [fixture, lines] of [[RECORDED, 4], [INTERRUPTED, 12]] as const) {
    const { args, stdout } = JSON.parse(readFileSync(runOf(fixture), "utf8"));
    const replayed = bpfmap(["--replay", fixture, ...args], { ffi: false });
    assert.deepEqual([replayed.stderr, replayed.status], ["", 0]);
    assert.equal(replayed.stdout, stdout);
    assert.equal(stdout.split("\n").filter((line: string) => line !== "").length, lines);
  }
});

liveTest("map watch prints a perf_event_array's samples with their CPU", async () => {
  using loaded = emitter(0);
  const { object, emit } = loaded;
  const id = object.maps.get("samples")!.id;
  // Samples sent while no reader has put its events in the map are dropped by the kernel
  // (ENOENT): this run's go nowhere, and the child's wait ends with the next run's.
  emit();
  const [command, ...prefix] = bpfmapCommand();
  const child = spawn(command, [...prefix, "-j", "map", "watch", "id", `${id}`, "count", "3"], {
    env: childEnv(),
  });
  let stdout = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  // Emit until the child has opened its events and printed what a run sent.
  for (let tries = 0; stdout === "" && child.exitCode === null && tries < 600; tries++) {
    emit();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(await exited, 0);
  const samples = stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
  assert.equal(samples.length, 3);
  // One run's three samples, on the CPU it ran on; the kernel pads each to 8-byte words with
  // its 4-byte size: 8 bytes take 12, 3 take 4, 12 take 12.
  const seq = new DataView(new Uint8Array(samples[0].data.map(Number)).buffer).getBigUint64(
    0,
    true,
  );
  const expected = recordsOf(Number(seq));
  assert.deepEqual(samples.map((s) => s.record), [1, 2, 3]);
  assert.deepEqual(samples.map((s) => s.size), [12, 4, 12]);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(samples[i].data.slice(0, expected[i]!.byteLength), jsonBytes(expected[i]!));
    assert.equal(samples[i].cpu, samples[0].cpu);
  }
});

liveTest(
  "map dump of a ringbuf prints what bpftool prints, fails as it fails, and a note on stderr",
  () => {
    using loaded = emitter(1);
    const { object } = loaded;
    using user = BpfMap.create({
      type: "user_ringbuf",
      keySize: 0,
      valueSize: 0,
      maxEntries: 4096,
    });
    for (const map of [object.maps.get("events")!, object.maps.get("samples")!, user]) {
      const note = map === user
        ? `Note: map ${map.id} is a user_ringbuf: user space writes its records and programs read `
          + `them (bpfmap map watch reads ringbuf and perf_event_array maps)\n`
        : `Note: map ${map.id} is a ${map.typeName}: its records are not elements, and a dump finds `
          + `none; print them as they come with: bpfmap map watch id ${map.id}\n`;
      for (const json of [[], ["-j"]]) {
        const args = [...json, "map", "dump", "id", `${map.id}`];
        const ours = bpfmap(args);
        const theirs = bpftool(args);
        // A perf_event_array's slots print their lookup error as bpftool does: `Unknown error 524`.
        assert.equal(ours.stdout, theirs.stdout);
        assert.equal(ours.stderr, note);
        // bpftool's walk of a ring fails at once (ENOTSUPP): it exits 244, its -524 cut to a
        // byte; bpfmap exits 1, its code for a failed operation.
        const walked = map.typeName === "perf_event_array";
        assert.deepEqual([theirs.status, ours.status], walked ? [0, 0] : [244, 1]);
      }
    }
    // Two maps of one name, the ring first (ids grow): bpftool's dump stops at the ring.
    const name = `wdup${process.pid}`.slice(0, 15);
    const spec = { keySize: 0, valueSize: 0, maxEntries: 4096, name } as const;
    using ring = BpfMap.create({ type: "ringbuf", ...spec });
    using hash = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, name });
    hash.update(new Uint8Array(4), new Uint8Array(4));
    for (const json of [[], ["-j"]]) {
      const args = [...json, "map", "dump", "name", name];
      const [ours, theirs] = [bpfmap(args), bpftool(args)];
      assert.match(theirs.stdout, new RegExp(`\\b${ring.id}\\b`));
      assert.doesNotMatch(theirs.stdout, new RegExp(`\\b${hash.id}\\b`));
      assert.equal(ours.stdout, theirs.stdout);
      assert.deepEqual([theirs.status, ours.status], [244, 1]);
    }
  },
);

liveTest("map watch refuses maps without records to watch", () => {
  using loaded = emitter(0);
  const { object } = loaded;
  const shared = object.maps.get("shared")!;
  const run = bpfmap(["map", "watch", "id", `${shared.id}`]);
  assert.deepEqual([run.stdout, run.stderr, run.status], [
    "",
    `Error: map ${shared.id} (array) has no records to watch: watch reads ringbuf and `
    + `perf_event_array maps\n`,
    1,
  ]);
  const zero = bpfmap(["map", "watch", "id", `${shared.id}`, "count", "0"]);
  assert.equal(zero.status, 2);
  assert.match(zero.stderr, /count must be at least 1/);
});
