// `bpfmap btf show|list` in a child process of the same runtime, against BTF objects this file
// makes (a clang-built object's .BTF, held by its four maps and two programs; a BTF no object
// holds): every output compared with bpftool 7.1's byte for byte, plain, -j and -p, the order of
// prog_ids and map_ids included (bpftool's hashmap order); errors; and recorded runs replayed
// with no BPF.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BTF_USAGE, holders } from "../cli/btf_command.ts";
import { readEnv } from "../ffi/live.ts";
import { BpfObject, Btf, TRANSCRIPT_ENV } from "../mod.ts";
import { assertUsageErrors, bpftoolTest, canUseBpftool } from "./helpers/cli_recorded.ts";
import { bpfmap, bpftool, type Run } from "./helpers/cli_run.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { compileText } from "./helpers/object_build.ts";
import { fixtureName, FIXTURES } from "./helpers/transcript.ts";

/** Four maps and two programs, all with the object's one .BTF. */
const SOURCE = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64);
         __uint(max_entries, 1); } first SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u32);
         __uint(max_entries, 4); } second SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u32);
         __uint(max_entries, 2); } third SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u64); __type(value, __u64);
         __uint(max_entries, 8); } fourth SEC(".maps");
SEC("xdp") int pass(void *ctx) {
  __u32 key = 0;
  __u64 *value = bpf_map_lookup_elem(&first, &key);
  if (value) __sync_fetch_and_add(value, 1);
  return bpf_map_lookup_elem(&second, &key) ? XDP_PASS : XDP_DROP;
}
SEC("xdp") int drop(void *ctx) {
  __u32 key = 0;
  __u64 big = 0;
  return bpf_map_lookup_elem(&third, &key) || bpf_map_lookup_elem(&fourth, &big) ? 1 : 2;
}
char LICENSE[] SEC("license") = "GPL";
`;

let object: ReturnType<BpfObject["load"]> | undefined;
let lone: Btf | undefined;
before(() => {
  if (!canUseBpftool) return;
  const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
  const bytes = compileText(SOURCE, [`-I/usr/include/${arch}-linux-gnu`]);
  object = BpfObject.open(bytes, { name: "cli_btf" }).load();
  lone = Btf.load([{ kind: "float", name: "double", size: 8 }]);
});
after(() => {
  object?.close();
  lone?.close();
});

/** The BTF id of this file's object, and that of its lone BTF. */
function ownBtfIds(): { shared: number; lone: number } {
  const shared = object!.loadedProgram("pass").info().btfId;
  assert.ok(shared > 0, "the object's programs hold its BTF");
  return { shared, lone: lone!.id };
}

/**
 * bpfmap's output and bpftool's, run until bpftool says the same twice around bpfmap's run:
 * prog_ids and map_ids come in the order of a hashmap of every map and program with BTF on the
 * machine, which another run's may change in between.
 */
function beside(args: string[]): { ours: Run; expected: Run } {
  for (let attempt = 1;; attempt++) {
    const first = bpftool(args);
    const ours = bpfmap(args);
    const expected = bpftool(args);
    assert.equal(expected.status, 0, expected.stderr);
    if (first.stdout === expected.stdout || attempt === 5) return { ours, expected };
  }
}

describe("bpfmap btf", () => {
  bpftoolTest("btf show id N of a shared and a lone BTF: bpftool's output, plain, -j, -p", () => {
    const { shared, lone } = ownBtfIds();
    for (const id of [shared, lone, 1]) {
      for (const format of [[], ["-j"], ["-p"]]) {
        const args = [...format, "btf", "show", "id", String(id)];
        const { ours, expected } = beside(args);
        assert.deepEqual([ours.stderr, ours.status], ["", 0], args.join(" "));
        assert.equal(ours.stdout, expected.stdout, args.join(" "));
      }
    }
  });

  bpftoolTest("what btf show prints: the object's maps and programs, kernel BTF by name", () => {
    const { shared, lone } = ownBtfIds();
    const shown = (id: number) =>
      JSON.parse(bpfmap(["-j", "btf", "show", "id", String(id)]).stdout);
    const maps = ["first", "second", "third", "fourth"].map((name) => object!.map(name).id);
    const programs = ["pass", "drop"].map((name) => object!.loadedProgram(name).id);
    const own = shown(shared);
    assert.deepEqual(own.map_ids.toSorted(), maps.toSorted());
    assert.deepEqual(own.prog_ids.toSorted(), programs.toSorted());
    assert.deepEqual([own.kernel, "name" in own], [false, false]);
    assert.deepEqual(shown(lone), { id: lone, size: 44, prog_ids: [], map_ids: [], kernel: false });
    const vmlinux = shown(1);
    assert.deepEqual([vmlinux.name, vmlinux.kernel], ["vmlinux", true]);
    assert.match(bpfmap(["btf", "show", "id", "1"]).stdout, /^1: name \[vmlinux\] {2}size \d+B\n$/);
    assert.equal(
      bpfmap(["btf", "show", "id", String(lone)]).stdout,
      `${lone}: name <anon>  size 44B\n`,
    );
  });

  bpftoolTest("btf list: this file's BTF objects and vmlinux as bpftool lists them", () => {
    const { shared, lone } = ownBtfIds();
    const ids = new Set([1, shared, lone]);
    for (const args of [["btf", "list"], ["-j", "btf", "list"], ["-p", "btf", "show"]]) {
      const { ours, expected } = beside(args);
      assert.equal(ours.status, 0, ours.stderr);
      const json = args[0] !== "btf";
      const mine = ownObjects(ours.stdout, ids, json);
      assert.equal(mine.length, ids.size, `bpfmap lists every BTF this file made: ${ours.stdout}`);
      assert.deepEqual(mine, ownObjects(expected.stdout, ids, json));
    }
  });

  liveTest("no such BTF object is an error that says so; bad usage is exit code 2", () => {
    const missing = bpfmap(["btf", "show", "id", "4294967295"]);
    assert.deepEqual(
      [missing.status, missing.stderr, missing.stdout],
      [1, "Error: id 4294967295: no such BTF object\n", ""],
    );
    const json = bpfmap(["-j", "btf", "show", "id", "4294967295"]);
    assert.equal(json.stdout, "{\"error\":\"id 4294967295: no such BTF object\"}\n");
    assertUsageErrors([
      // bpftool 7.1 opens BTF by id only; and the kernel pins no BTF object.
      [["btf", "show", "pinned", "/sys/fs/bpf/x"], /^Error: expected 'id', got: 'pinned'\n$/],
      [["btf", "show", "id"], /^Error: expected a BTF id after 'id'\n$/],
      [["btf", "show", "id", "0"], /^Error: invalid BTF id: 0\n$/],
      [["btf", "show", "id", "x1"], /^Error: can't parse BTF id: "x1"\n$/],
      [["btf", "show", "id", "1", "2"], /^Error: unexpected argument: 2\n$/],
      [["btf", "frob"], /^Error: unknown btf command 'frob'\n\nUsage: bpfmap \[OPTIONS\] btf /],
      [
        ["frob", "show"],
        /^Error: unknown object 'frob': bpfmap knows 'map', 'prog', 'link' and 'btf'\n$/,
      ],
    ]);
    assert.deepEqual(bpfmap(["btf", "help"]), { stdout: BTF_USAGE, stderr: "", status: 0 });
    assert.equal(bpfmap(["-j", "btf", "help"]).stdout, "null\n");
  });

  test("prog_ids and map_ids in bpftool 7.1's order: its hashmap's, reversed as it grows", () => {
    // Two listings bpftool 7.1 printed on this machine, of maps 11-17 (14 has no BTF) of BTF 3740:
    // alone, "map_ids 17,16,15,11,12,13"; with two more maps of another BTF after them (a growth
    // at the seventh entry), "13,12,11,15,16,17" and "map_ids 30,29".
    const btfIds = new Map([[11, 3740], [12, 3740], [13, 3740], [14, 0], [15, 3740], [16, 3740]]);
    btfIds.set(17, 3740);
    assert.deepEqual(holders([...btfIds.keys()], (id) => btfIds.get(id)!).get(3740), [
      17,
      16,
      15,
      11,
      12,
      13,
    ]);
    btfIds.set(29, 58480).set(30, 58480);
    const grown = holders([...btfIds.keys()], (id) => btfIds.get(id)!);
    assert.deepEqual([...grown], [[3740, [13, 12, 11, 15, 16, 17]], [58480, [30, 29]]]);
    assert.deepEqual(holders([], () => 1), new Map());
  });

  // vmlinux is BTF id 1 on every machine, and no map or program holds it: the one BTF object a
  // recorded run can name on its command line. The run still walks every program and map.
  recordedRuns([
    ["show vmlinux plain", ["btf", "show", "id", "1"]],
    ["show vmlinux json", ["-j", "btf", "show", "id", "1"]],
    ["show vmlinux pretty", ["-p", "btf", "show", "id", "1"]],
  ]);
});

/** The lines (plain) or objects (JSON) of `btf list` that are the BTF objects `ids`. */
function ownObjects(text: string, ids: Set<number>, json: boolean): unknown[] {
  if (json) return (JSON.parse(text) as { id: number }[]).filter((b) => ids.has(b.id));
  return text.split("\n").filter((line) => ids.has(Number(line.split(":")[0])));
}

/**
 * Recorded runs of `bpfmap ARGS`: replayed from `<name>.json` with no BPF in every pass, and
 * printing the `<name>.out` bpftool printed. Live, the run is recorded beside bpftool (into the
 * fixture when recording; into a folder of its own when verifying, where the transcript is not
 * compared with the fixture: it holds every program and map of the machine, which differ from
 * run to run).
 */
function recordedRuns(runs: [string, string[]][]): void {
  const mode = readEnv(TRANSCRIPT_ENV);
  for (const [name, args] of runs) {
    const transcript = join(FIXTURES, "cli_btf.test.ts", `${fixtureName(name)}.json`);
    const expectedPath = transcript.replace(/\.json$/, ".out");
    const title = `recorded run: bpfmap ${args.join(" ")}`;
    if (replayRun || (mode === undefined && existsSync(transcript))) {
      test(title, () => {
        const replayed = bpfmap(["--replay", transcript, ...args], { ffi: false });
        assert.deepEqual([replayed.stderr, replayed.status], ["", 0]);
        assert.equal(replayed.stdout, readFileSync(expectedPath, "utf8"));
      });
      continue;
    }
    bpftoolTest(title, () => {
      const expected = bpftool(args);
      assert.equal(expected.status, 0, expected.stderr);
      const recording = mode !== "verify";
      const dir = recording ? undefined : mkdtempSync(join(tmpdir(), "bpfmap-recorded-"));
      try {
        const target = dir === undefined ? transcript : join(dir, "run.json");
        mkdirSync(dirname(target), { recursive: true });
        const live = bpfmap(["--record", target, ...args]);
        assert.deepEqual([live.stderr, live.stdout], ["", expected.stdout], "bpfmap and bpftool");
        const replayed = bpfmap(["--replay", target, ...args], { ffi: false });
        assert.equal(replayed.stdout, expected.stdout, "the replay differs");
        if (recording) writeFileSync(expectedPath, replayed.stdout);
        else assert.equal(readFileSync(expectedPath, "utf8"), replayed.stdout, "bpftool changed");
        // The replay's walk met the machine's programs and maps, each by its own call.
        assert.match(readFileSync(target, "utf8"), /BPF_PROG_GET_NEXT_ID/);
        assert.match(readFileSync(target, "utf8"), /BPF_MAP_GET_NEXT_ID/);
      } finally {
        if (dir !== undefined) rmSync(dir, { recursive: true });
      }
    });
  }
}
