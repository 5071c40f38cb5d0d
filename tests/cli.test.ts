// The bpfmap command in a child process of the same runtime, against real
// pinned maps: every output compared with bpftool's for the same map, the
// write commands checked through bpftool, errors and exit codes; and CLI runs
// recorded as transcripts with bpftool's output beside them, so that they
// replay with no BPF (Deno without --allow-ffi, Bun with live BPF forbidden).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import { detectRuntime } from "../ffi/live.ts";
import { joinPerCpu } from "../ffi/percpu.ts";
import {
  BPF_F_LOCK,
  BPF_F_ZERO_SEED,
  BpfMap,
  chars,
  specOf,
  spinLock,
  struct,
  u32 as u32Codec,
  u64 as u64Codec,
} from "../mod.ts";
import { type FreshBpffs, freshBpffs, REPLAY_BPFFS } from "./helpers/bpffs.ts";
import { RICH_KEY, RICH_TYPES, RICH_VALUE, richValue } from "./helpers/btf_types.ts";
import { u32, u64 } from "./helpers/bytes.ts";
import { clangUnavailable, loadClangObject } from "./helpers/clang_object.ts";
import { recordedRuns } from "./helpers/cli_recorded.ts";
import { bpfmap, bpftool, CLI } from "./helpers/cli_run.ts";
import { liveTest, liveUnavailable, mustRunLive, replayRun } from "./helpers/live.ts";

/** This run's own bpffs (transcripts write it as ${BPFFS}, given with --path); replays mount none. */
let BPFFS = REPLAY_BPFFS;
const hasBpftool = !replayRun && spawnSync("bpftool", ["version"]).status === 0;

/** `map list` output with every btf_id left out (plain, -j and -p). */
function withoutBtfIds(text: string): string {
  return text
    .replace(/\n\tbtf_id \d+(?=\n)/g, "")
    .replace(/btf_id \d+ {2}/g, "")
    .replace(/,"btf_id":\d+/g, "")
    .replace(/,\n +"btf_id": \d+/g, "");
}

/** A command line's words: `cmd(\`map dump pinned ${path}\`)`. */
function cmd(line: string): string[] {
  return line.split(" ");
}

/** A test that needs bpftool beside the kernel. */
/** Why the maps a clang-built program created cannot be made here (see clang_object.ts). */
const clangMissing = hasBpftool ? clangUnavailable() : undefined;

/** What a live comparison with bpftool lacks here: bpftool, or (`needsClang`) the clang-built maps. */
function missingTool(needsClang: boolean): string | undefined {
  if (replayRun || liveUnavailable !== undefined) return undefined;
  if (!hasBpftool) return "bpftool is not installed (apt-get install bpftool)";
  return needsClang ? clangMissing : undefined;
}

function bpftoolTest(name: string, fn: () => void, needsClang = false): void {
  const missing = missingTool(needsClang);
  if (missing !== undefined) {
    if (mustRunLive) test(name, () => assert.fail(missing));
    else test(name, { skip: missing }, fn);
    return;
  }
  liveTest(name, fn);
}

/** The ids of the maps this file created, by pinned name (`hash`, `clang/maps/flows`). */
const ownIds = new Map<string, number>();

/** The maps every test here reads, pinned under BPFFS; deterministic contents and order. */
function createMaps(): void {
  const pin = (name: string, map: BpfMap) => {
    map.pin(`${BPFFS}/${name}`);
    ownIds.set(name, map.id);
    map.close();
  };
  const hash = BpfMap.create({
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 64,
    flags: BPF_F_ZERO_SEED,
    name: "cli_hash",
  });
  hash.updateBatch(u32(1, 2, 3, 40, 500), u64(10, 20, 30, 0x4040, 5000));
  pin("hash", hash);
  const percpu = BpfMap.create({
    type: "percpu_array",
    keySize: 4,
    valueSize: 4,
    maxEntries: 3,
    name: "cli_percpu",
  });
  const cpus = percpu.valueStride / 8;
  percpu.update(u32(1), joinPerCpu(Array.from({ length: cpus }, (_, cpu) => u32(7 + cpu)), 4));
  pin("percpu", percpu);
  const wide = BpfMap.create({
    type: "hash",
    keySize: 20,
    valueSize: 40,
    maxEntries: 4,
    flags: BPF_F_ZERO_SEED,
    name: "cli_wide",
  });
  wide.update(
    Uint8Array.from({ length: 20 }, (_, i) => i + 1),
    Uint8Array.from({ length: 40 }, (_, i) => i + 1),
  );
  pin("wide", wide);
  const queue = BpfMap.create({
    type: "queue",
    keySize: 0,
    valueSize: 4,
    maxEntries: 4,
    name: "cli_queue",
  });
  queue.push(u32(5));
  pin("queue", queue);
  const frozen = BpfMap.create({
    type: "array",
    keySize: 4,
    valueSize: 2,
    maxEntries: 2,
    name: "cli_frozen",
  });
  frozen.update(u32(1), new Uint8Array([0xbe, 0xef]));
  frozen.freeze();
  pin("frozen", frozen);
  const devmap = BpfMap.create({
    type: "devmap",
    keySize: 4,
    valueSize: 4,
    maxEntries: 3,
    name: "cli_devmap",
  });
  devmap.update(u32(1), u32(1));
  pin("devmap", devmap);
  // Maps with BTF: bpftool prints their values field by field.
  const btf = { types: RICH_TYPES, keyTypeId: RICH_KEY, valueTypeId: RICH_VALUE };
  const rich = BpfMap.create({
    type: "hash",
    keySize: 4,
    valueSize: 96,
    maxEntries: 8,
    flags: BPF_F_ZERO_SEED,
    name: "cli_btf",
    btf,
  });
  for (let n = 0; n < 4; n++) rich.update(u32(n), richValue(n));
  pin("btf", rich);
  const richPerCpu = BpfMap.create({
    type: "percpu_array",
    keySize: 4,
    valueSize: 96,
    maxEntries: 2,
    name: "cli_btf_percpu",
    btf,
  });
  const slots = richPerCpu.valueStride / 96;
  richPerCpu.update(
    u32(1),
    joinPerCpu(Array.from({ length: slots }, (_, cpu) => richValue(cpu + 5)), 96),
  );
  pin("btf_percpu", richPerCpu);
  const lockValue = struct({ lock: spinLock, packets: u64Codec, name: chars(6) });
  const locked = BpfMap.create(
    specOf({
      type: "array",
      key: u32Codec,
      value: lockValue,
      maxEntries: 2,
      name: "cli_lock",
      btf: true,
    }),
  );
  locked.typed({ key: u32Codec, value: lockValue }).set(1, { packets: 9n, name: "lo" }, BPF_F_LOCK);
  pin("lock", locked);
  // Maps a clang-built program created, with clang's BTF.
  if (clangMissing === undefined) {
    loadClangObject(`${BPFFS}/clang`);
    for (const name of ["flows", "policies", "counters"]) {
      const path = `${BPFFS}/clang/maps/${name}`;
      ownIds.set(
        `clang/maps/${name}`,
        JSON.parse(bpftool(["-j", "map", "show", "pinned", path]).stdout).id,
      );
    }
  }
}

/**
 * The maps with ids in `ids` out of a `map list` output, in its order, with
 * the text around and between them as the output has it: every other BPF
 * user on the machine may create or drop maps between two listings. Plain
 * text is one block per map (`ID: type ...` and its tab-indented lines);
 * JSON (-j, -p) is an array of objects, cut at top-level braces.
 */
function onlyMaps(text: string, ids: ReadonlySet<number>): string {
  if (!text.startsWith("[")) {
    return text.split(/^(?=\d+: )/m).filter((block) => ids.has(parseInt(block))).join("");
  }
  const objects: [number, number][] = [];
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i++;
      else if (char === "\"") inString = false;
    } else if (char === "\"") inString = true;
    else if (char === "{" || char === "[") {
      if (depth++ === 1 && char === "{") objects.push([i, -1]);
    } else if (char === "}" || char === "]") {
      if (--depth === 1 && char === "}") objects.at(-1)![1] = i + 1;
    }
  }
  const [first, second] = objects;
  const last = objects.at(-1);
  if (first === undefined || last === undefined) return text;
  const spans = objects.map(([start, end]) => text.slice(start, end));
  // bpftool writes the same separator between every two maps; keep it between ours.
  const separator = second !== undefined ? text.slice(first[1], second[0]) : ",";
  const own = spans.filter((span) => ids.has(Number(/"id": ?(\d+)/.exec(span)![1])));
  return text.slice(0, first[0]) + own.join(separator) + text.slice(last[1]);
}

describe("bpfmap map", () => {
  let bpffs: FreshBpffs | undefined;
  before(() => {
    if (replayRun || liveUnavailable !== undefined) return;
    bpffs = freshBpffs("bpfmap-cli-");
    BPFFS = bpffs.path;
    createMaps();
  });
  after(() => bpffs?.unmount());

  const READS = [
    "map show pinned BPFFS/hash",
    "map show pinned BPFFS/frozen",
    "map dump pinned BPFFS/hash",
    "map dump pinned BPFFS/percpu",
    "map dump pinned BPFFS/wide",
    "map dump pinned BPFFS/frozen",
    "map dump pinned BPFFS/devmap",
    "map dump name cli_hash",
    "map lookup pinned BPFFS/hash key 2 0 0 0",
    "map lookup pinned BPFFS/hash key hex 28 00 00 00",
    "map lookup pinned BPFFS/percpu key 1 0 0 0",
    "map lookup pinned BPFFS/wide key 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "map dump pinned BPFFS/btf",
    "map dump pinned BPFFS/btf_percpu",
    "map dump pinned BPFFS/lock",
    "map dump name cli_btf",
    "map lookup pinned BPFFS/btf key 2 0 0 0",
    "map lookup pinned BPFFS/btf_percpu key 1 0 0 0",
    "map lookup pinned BPFFS/lock key 1 0 0 0",
    "map show pinned BPFFS/btf",
    "map getnext pinned BPFFS/hash",
    "map getnext pinned BPFFS/hash key 0x28 0 0 0",
    "map list",
  ];
  const CLANG_READS = [
    "map dump pinned BPFFS/clang/maps/flows",
    "map dump pinned BPFFS/clang/maps/policies",
    "map dump pinned BPFFS/clang/maps/counters",
    "map lookup pinned BPFFS/clang/maps/flows key 10 0 0 1 0 80 6 0",
  ];
  for (const read of [...READS, ...CLANG_READS]) {
    for (const format of [[], ["-j"], ["-p"]]) {
      const name = [...format, read.replace("BPFFS", "…")].join(" ");
      bpftoolTest(`same output as bpftool: ${name}`, () => {
        // The folder is this run's, known once before() has mounted it.
        const args = [...format, ...read.replaceAll("BPFFS", BPFFS).split(" ")];
        const expected = bpftool(args);
        const actual = bpfmap(args);
        assert.equal(expected.status, 0, expected.stderr);
        assert.notEqual(expected.stdout, "", "bpftool printed nothing to compare with");
        assert.equal(actual.stderr, "");
        assert.equal(actual.status, 0);
        if (read === "map list") {
          // Only this file's maps: other BPF users come and go between the two listings.
          const ids = new Set(ownIds.values());
          const ours = onlyMaps(expected.stdout, ids);
          const count = format.length === 0
            ? ours.match(/^\d+: /gm)?.length
            : ours.match(/"id": ?\d+/g)?.length;
          assert.equal(count, ids.size, `bpftool lists every map this file made:\n${ours}`);
          // bpftool 7.1 reuses one bpf_map_info across the maps it lists without
          // clearing it, so a map without BTF listed after one with BTF shows that
          // map's btf_id; bpfmap shows each map's own. Compare without btf_ids.
          assert.equal(withoutBtfIds(onlyMaps(actual.stdout, ids)), withoutBtfIds(ours));
          return;
        }
        assert.equal(actual.stdout, expected.stdout);
      }, CLANG_READS.includes(read));
    }
  }

  bpftoolTest("update, delete, create, pin and freeze act as bpftool's, as bpftool sees it", () => {
    const hash = `${BPFFS}/hash`;
    assert.deepEqual(
      bpfmap(cmd(`map update pinned ${hash} key 9 0 0 0 value hex 01 02 0 0 0 0 0 0 noexist`)),
      {
        stdout: "",
        stderr: "",
        status: 0,
      },
    );
    assert.equal(
      bpftool(["-j", "map", "lookup", "pinned", hash, "key", "9", "0", "0", "0"]).stdout,
      "{\"key\":[\"0x09\",\"0x00\",\"0x00\",\"0x00\"],\"value\":[\"0x01\",\"0x02\",\"0x00\",\"0x00\",\"0x00\",\"0x00\",\"0x00\",\"0x00\"]}\n",
    );
    const exists = bpfmap(
      cmd(`map update pinned ${hash} key 9 0 0 0 value 0 0 0 0 0 0 0 0 noexist`),
    );
    assert.equal(exists.status, 1);
    assert.equal(
      exists.stderr,
      `Error: BPF_MAP_UPDATE_ELEM failed: EEXIST (File exists): hash map "cli_hash" (id ${
        ownIds.get("hash")
      })\n`,
    );
    assert.equal(
      bpfmap(["-j", "map", "delete", "pinned", hash, "key", "9", "0", "0", "0"]).stdout,
      "null\n",
    );
    assert.equal(bpftool(["map", "lookup", "pinned", hash, "key", "9", "0", "0", "0"]).status, 254);
    const created = `${BPFFS}/created`;
    assert.equal(
      bpfmap(
        cmd(
          `-j map create ${created} type lru_hash key 8 value 16 entries 32 name made_here flags 0`,
        ),
      ).stdout,
      "null\n",
    );
    const shown = JSON.parse(bpftool(["-j", "map", "show", "pinned", created]).stdout);
    assert.deepEqual([
      shown.type,
      shown.name,
      shown.bytes_key,
      shown.bytes_value,
      shown.max_entries,
    ], ["lru_hash", "made_here", 8, 16, 32]);
    assert.equal(bpfmap(["map", "pin", "pinned", created, `${BPFFS}/again`]).status, 0);
    assert.equal(
      JSON.parse(bpftool(["-j", "map", "show", "pinned", `${BPFFS}/again`]).stdout).id,
      shown.id,
    );
    assert.equal(bpfmap(["map", "freeze", "pinned", created]).status, 0);
    assert.equal(JSON.parse(bpftool(["-j", "map", "show", "pinned", created]).stdout).frozen, 1);
    assert.equal(
      bpfmap(["map", "show", "pinned", created]).stdout,
      bpftool(["map", "show", "pinned", created]).stdout,
    );
    const percpu = `${BPFFS}/percpu`;
    assert.equal(
      bpfmap(cmd(`map update pinned ${percpu} key 2 0 0 0 value 3 0 0 0`)).status,
      0,
    );
    assert.equal(
      bpfmap(["map", "lookup", "pinned", percpu, "key", "2", "0", "0", "0"]).stdout,
      bpftool(["map", "lookup", "pinned", percpu, "key", "2", "0", "0", "0"]).stdout,
    );
    rmSync(created);
    rmSync(`${BPFFS}/again`);
  });

  liveTest("errors say what to do; exit codes are 0 ok, 1 failed, 2 usage", () => {
    const bytes = "(bytes are 0-255: decimal, 0x hex, 0 octal, or pairs of hex digits after 'hex')";
    const cases: [string[], number, RegExp | string][] = [
      [["map", "show", "id", "99999999"], 1, /^Error: id 99999999: no such map\n$/],
      [["map", "dump", "name", "no_such_map_x"], 1, /^Error: name no_such_map_x: no such map\n$/],
      [
        ["map", "dump", "pinned", `${BPFFS}/absent`],
        1,
        `Error: pinned ${BPFFS}/absent: no such pinned object\n`,
      ],
      [
        ["map", "lookup", "pinned", `${BPFFS}/hash`, "key", "1", "0", "0"],
        2,
        /^Error: key: expected 4 bytes, got 3\n$/,
      ],
      [
        ["map", "lookup", "pinned", `${BPFFS}/hash`, "key", "1", "0x1zz", "0", "0"],
        2,
        `Error: key: can't parse byte 2 of 4: '0x1zz' ${bytes}\n`,
      ],
      [
        ["map", "lookup", "pinned", `${BPFFS}/hash`, "key", "1", "300", "0", "0"],
        2,
        `Error: key: can't parse byte 2 of 4: '300' ${bytes}\n`,
      ],
      [
        ["map", "update", "pinned", `${BPFFS}/hash`, "key", "1", "0", "0", "0", "value", "1"],
        2,
        /^Error: value: expected 8 bytes, got 1\n$/,
      ],
      // Usage errors end with the usage text, which only its own first line is pinned to.
      [["map", "frobnicate"], 2, /^Error: unknown map command 'frobnicate'\n\nUsage: bpfmap /],
      [
        ["frob", "show"],
        2,
        "Error: unknown object 'frob': bpfmap knows 'map', 'prog', 'link' and 'btf'\n",
      ],
      [["--frob", "map", "list"], 2, /^Error: unknown option --frob\n$/],
      [["map", "lookup", "pinned", `${BPFFS}/hash`, "key", "77", "0", "0", "0"], 1, ""],
    ];
    for (const [args, status, stderr] of cases) {
      const run = bpfmap(args);
      assert.equal(run.status, status, `${args.join(" ")}: ${run.stderr}`);
      if (typeof stderr === "string") assert.equal(run.stderr, stderr, args.join(" "));
      else assert.match(run.stderr, stderr, args.join(" "));
    }
    assert.equal(
      bpfmap(["-j", "map", "show", "id", "99999999"]).stdout,
      "{\"error\":\"id 99999999: no such map\"}\n",
    );
    if (detectRuntime() === "deno") {
      const run = spawnSync(process.execPath, ["run", "--deny-ffi", CLI, "map", "list"], {
        encoding: "utf8",
      });
      assert.equal(run.status, 1);
      assert.equal(
        run.stderr,
        "Error: bpfmap needs FFI to reach the kernel: run Deno with --allow-ffi "
          + "(deno run --allow-ffi cli/main.ts ...), as root or with CAP_BPF\n",
      );
    }
  });

  bpftoolTest("--record then --replay reproduces a dump with no BPF", () => {
    const dir = mkdtempSync(join(tmpdir(), "bpfmap-cli-"));
    try {
      const transcript = join(dir, "dump.json");
      const live = bpfmap(["-j", "--record", transcript, "map", "dump", "pinned", `${BPFFS}/hash`]);
      assert.equal(live.status, 0, live.stderr);
      assert.equal(live.stdout, bpftool(["-j", "map", "dump", "pinned", `${BPFFS}/hash`]).stdout);
      const replayed = bpfmap([
        "-j",
        "--replay",
        transcript,
        "map",
        "dump",
        "pinned",
        `${BPFFS}/hash`,
      ], { ffi: false });
      assert.equal(replayed.stderr, "");
      assert.equal(replayed.stdout, live.stdout);
      const diverged = bpfmap([
        "-j",
        "--replay",
        transcript,
        "map",
        "dump",
        "pinned",
        `${BPFFS}/other`,
      ], { ffi: false });
      assert.equal(diverged.status, 1);
      assert.match(diverged.stdout, /diverged from the transcript/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  // Recorded CLI runs: the transcript and bpftool's output, replayed in every pass.
  const RECORDED: [string, string][] = [
    ["dump hash json", "-j map dump pinned BPFFS/hash"],
    ["dump percpu pretty", "-p map dump pinned BPFFS/percpu"],
    ["dump wide plain", "map dump pinned BPFFS/wide"],
    ["dump devmap json", "-j map dump pinned BPFFS/devmap"],
    ["lookup hash plain", "map lookup pinned BPFFS/hash key 3 0 0 0"],
    ["getnext hash json", "-j map getnext pinned BPFFS/hash key 2 0 0 0"],
    ["dump btf plain", "map dump pinned BPFFS/btf"],
    ["dump btf percpu json", "-j map dump pinned BPFFS/btf_percpu"],
    ["dump clang btf json", "-j map dump pinned BPFFS/clang/maps/policies"],
    ["dump clang btf locked plain", "map dump pinned BPFFS/clang/maps/flows"],
  ];
  recordedRuns({
    file: "cli.test.ts",
    runs: RECORDED,
    bpffs: () => BPFFS,
    liveTest: (name, fn) => bpftoolTest(name, fn, name.includes("/clang/")),
    check: (stdout) => assert.notEqual(stdout, "", "bpftool printed nothing to compare with"),
  });
});
