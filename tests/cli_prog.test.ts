// `bpfmap prog show|list` in a child process of the same runtime, against
// programs this file loads (a clang-built object through `bpftool prog
// loadall`, and hand-assembled instructions through Program.load): every
// output compared with bpftool's, byte for byte; and runs recorded as
// transcripts, replayed with no BPF (Deno without --allow-ffi, Bun with live
// BPF forbidden) into bpftool's output as the transcript records it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PROG_USAGE } from "../cli/prog_command.ts";
import { BpfMap, Program } from "../mod.ts";
import { type FreshBpffs, freshBpffs, REPLAY_BPFFS } from "./helpers/bpffs.ts";
import { clangUnavailable } from "./helpers/clang_object.ts";
import { assertUsageErrors, recordedRuns } from "./helpers/cli_recorded.ts";
import { bpfmap, bpftool } from "./helpers/cli_run.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { liveTest, liveUnavailable, mustRunLive, replayRun } from "./helpers/live.ts";

let BPFFS = REPLAY_BPFFS;
const live = !replayRun && liveUnavailable === undefined;
const missing = live ? clangUnavailable() : undefined;

/**
 * The object bpftool loads: a program with a map, and one whose name the
 * kernel cuts to 15 characters (bpftool prints its BTF name in full).
 */
const SOURCE = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");
SEC("xdp") int xdp_counter(struct xdp_md *ctx) {
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&hits, &key);
	if (value) __sync_fetch_and_add(value, 1);
	return XDP_PASS;
}
SEC("socket") int a_socket_filter_with_a_long_name(struct __sk_buff *skb) { return 0; }
char LICENSE[] SEC("license") = "GPL";
`;

/** A test beside bpftool and clang: skipped with the reason where they are missing, failed in CI. */
function toolTest(name: string, fn: () => void): void {
  if (live && missing !== undefined) {
    if (mustRunLive) test(name, () => assert.fail(missing));
    else test(name, { skip: missing }, fn);
    return;
  }
  liveTest(name, fn);
}

/** The programs this file loaded, by pinned name. */
const own = new Map<string, { id: number; tag: string }>();
let mounted: FreshBpffs | undefined;

before(() => {
  if (!live || missing !== undefined) return;
  mounted = freshBpffs("bpfmap-cli-prog-");
  BPFFS = mounted.path;
  const build = mkdtempSync(join(tmpdir(), "bpfmap-cli-prog-"));
  try {
    const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
    writeFileSync(join(build, "progs.bpf.c"), SOURCE);
    execFileSync("clang", [
      "-O2",
      "-g",
      "-target",
      "bpf",
      `-I/usr/include/${arch}-linux-gnu`,
      // The BTF's line info names the source file: the same name every run, for the transcripts.
      "-fdebug-compilation-dir=.",
      `-fdebug-prefix-map=${build}=tests/cli_prog`,
      "-c",
      join(build, "progs.bpf.c"),
      "-o",
      join(build, "progs.o"),
    ]);
    execFileSync("bpftool", ["prog", "loadall", join(build, "progs.o"), `${BPFFS}/progs`]);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  // No name, no BTF, no maps, a license that is not GPL-compatible: every optional field absent.
  using bare = Program.load({
    type: "socket_filter",
    instructions: program(mov64Imm(0, 0), exit()),
    license: "MIT",
  });
  bare.pin(`${BPFFS}/bare`);
  for (const name of ["progs/xdp_counter", "progs/a_socket_filter_with_a_long_name", "bare"]) {
    using pinned = Program.openPinned(`${BPFFS}/${name}`);
    own.set(name, { id: pinned.id, tag: pinned.info().tag });
  }
});
after(() => mounted?.unmount());

/** `prog show`/`list` output of the programs `ids` only (plain, -j or -p). */
function ownPrograms(text: string, ids: Set<number>, json: boolean): unknown {
  // One program shown is an object, more an array.
  if (json) return ([JSON.parse(text)].flat() as { id: number }[]).filter((p) => ids.has(p.id));
  return text.split(/^(?=\d+: )/m).filter((block) => ids.has(Number(block.split(":")[0])));
}

/**
 * bpftool's output as a transcript records it: program, map and BTF ids
 * numbered in the order they first appear, and no load time (`loaded_at`
 * and `uid` go with it), which differ every run.
 */
function asRecorded(text: string): string {
  const numbering = { prog: new Map<string, number>(), map: new Map(), btf: new Map() };
  const virtual = (kind: keyof typeof numbering, id: string) => {
    const ids = numbering[kind] as Map<string, number>;
    if (!ids.has(id)) ids.set(id, ids.size + 1);
    return String(ids.get(id));
  };
  return text
    .replace(/^\tloaded_at .*\n/m, "")
    .replace(/"loaded_at":\d+,"uid":\d+,/, "")
    .replace(/\n +"loaded_at": \d+,\n +"uid": \d+,/, "")
    .replace(/^\d+(?=: )|(?<="id": ?)\d+/m, (id) => virtual("prog", id))
    .replace(
      /(?<=map_ids |"map_ids": ?\[)[\d,]+/,
      (ids) => ids.split(",").map((id) => virtual("map", id)).join(","),
    )
    .replace(/(?<=btf_id |"btf_id": ?)\d+/, (id) => virtual("btf", id));
}

describe("bpfmap prog", () => {
  toolTest(
    "prog show of each program by id, pinned and name: bpftool's output, plain, -j and -p",
    () => {
      for (const [name, { id }] of own) {
        const refs = [["id", String(id)], ["pinned", `${BPFFS}/${name}`]];
        if (name.startsWith("progs/")) refs.push(["name", name.slice("progs/".length)]);
        for (const ref of refs) {
          for (const format of [[], ["-j"], ["-p"]]) {
            const args = [...format, "prog", "show", ...ref];
            const expected = bpftool(args);
            assert.equal(expected.status, 0, expected.stderr);
            const ours = bpfmap(args);
            assert.equal(ours.stderr, "");
            assert.equal(ours.status, 0);
            assert.equal(ours.stdout, expected.stdout, args.join(" "));
          }
        }
      }
      // The name bpftool prints in full is the BTF name, not the kernel's 15 characters.
      const long = bpfmap([
        "prog",
        "show",
        "pinned",
        `${BPFFS}/progs/a_socket_filter_with_a_long_name`,
      ]);
      assert.match(long.stdout, /name a_socket_filter_with_a_long_name {2}tag/);
      assert.equal(bpfmap(["prog", "show", "name", "a_socket_filter"]).status, 1);
    },
  );

  toolTest("prog list and prog show tag: this file's programs as bpftool lists them", () => {
    const ids = new Set([...own.values()].map(({ id }) => id));
    for (const args of [["prog", "list"], ["-j", "prog", "list"], ["-p", "prog", "show"]]) {
      const expected = bpftool(args);
      const ours = bpfmap(args);
      assert.equal(ours.status, 0, ours.stderr);
      const json = args[0] !== "prog";
      const mine = ownPrograms(ours.stdout, ids, json) as unknown[];
      assert.equal(mine.length, ids.size, `bpfmap lists every program this file loaded`);
      assert.deepEqual(mine, ownPrograms(expected.stdout, ids, json));
    }
    // Programs of other users may share a tag: compare ours only.
    const { tag } = own.get("progs/xdp_counter")!;
    const byTag = bpfmap(["-j", "prog", "show", "tag", tag]);
    assert.equal(byTag.status, 0, byTag.stderr);
    const shown = [JSON.parse(byTag.stdout)].flat() as { id: number; tag: string }[];
    assert.ok(shown.every((p) => p.tag === tag));
    assert.deepEqual(
      ownPrograms(byTag.stdout, ids, true),
      ownPrograms(bpftool(["-j", "prog", "show", "tag", tag]).stdout, ids, true),
    );
    assert.ok(shown.some((p) => p.id === own.get("progs/xdp_counter")!.id));
  });

  toolTest("what is not a program, or no program, is an error that says so", () => {
    using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.pin(`${BPFFS}/a_map`);
    const cases: [string[], number, string][] = [
      [["prog", "show", "id", "4294967295"], 1, "Error: id 4294967295: no such program\n"],
      [
        ["prog", "show", "pinned", `${BPFFS}/none`],
        1,
        `Error: pinned ${BPFFS}/none: no such pinned object\n`,
      ],
      [
        ["prog", "show", "pinned", `${BPFFS}/a_map`],
        1,
        `Error: ${BPFFS}/a_map: incorrect object type: map, not a program\n`,
      ],
      [
        ["prog", "show", "name", "no_such_prog_zz"],
        1,
        "Error: name no_such_prog_zz: no such program\n",
      ],
    ];
    for (const [args, status, stderr] of cases) {
      const run = bpfmap(args);
      assert.deepEqual([run.status, run.stderr, run.stdout], [status, stderr, ""], args.join(" "));
    }
    const json = bpfmap(["-j", "prog", "show", "id", "4294967295"]);
    assert.equal(json.stdout, "{\"error\":\"id 4294967295: no such program\"}\n");
  });

  liveTest("bad usage of prog is exit code 2, and help is bpftool's shape", () => {
    const cases: [string[], RegExp][] = [
      [["prog", "show", "tag", "zz"], /^Error: can't parse tag 'zz': expected 16 hex digits/],
      [
        ["prog", "show", "foo", "1"],
        /^Error: expected 'id', 'pinned', 'tag' or 'name', got: 'foo'/,
      ],
      [["prog", "show", "id"], /^Error: expected a program id after 'id'\n$/],
      [["prog", "show", "id", "0"], /^Error: invalid program id: 0\n$/],
      [["prog", "show", "id", "1", "2"], /^Error: unexpected argument: 2\n$/],
      [["prog", "show", "name", "a".repeat(128)], /^Error: can't parse name: longer than 127/],
      [["prog", "frob"], /^Error: unknown prog command 'frob'\n\nUsage: bpfmap \[OPTIONS\] prog /],
    ];
    assertUsageErrors(cases);
    assert.deepEqual(bpfmap(["prog", "help"]), { stdout: PROG_USAGE, stderr: "", status: 0 });
    assert.equal(bpfmap(["-j", "prog", "help"]).stdout, "null\n");
  });

  toolTest("prog show id N recorded, then replayed with no BPF, as bpftool printed it", () => {
    const dir = mkdtempSync(join(tmpdir(), "bpfmap-cli-prog-"));
    try {
      const { id } = own.get("progs/xdp_counter")!;
      const transcript = join(dir, "run.json");
      const args = ["-j", "prog", "show", "id", String(id)];
      const expected = bpftool(args).stdout;
      assert.equal(bpfmap(["--record", transcript, ...args]).stdout, expected);
      const replayed = bpfmap(["--replay", transcript, ...args], { ffi: false });
      assert.deepEqual([replayed.status, replayed.stderr], [0, ""]);
      assert.equal(replayed.stdout, asRecorded(expected));
      // What the transcript fixes: ids renumbered and the load time gone.
      assert.match(
        replayed.stdout,
        /^\{"id":1,"type":"xdp","name":"xdp_counter",.*"map_ids":\[1\],"btf_id":1\}\n$/,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  // Recorded CLI runs: the transcript and bpftool's output as it records it, replayed in every pass.
  recordedRuns({
    file: "cli_prog.test.ts",
    runs: [
      ["show xdp plain", "prog show pinned BPFFS/progs/xdp_counter"],
      ["show long name pretty", "-p prog show pinned BPFFS/progs/a_socket_filter_with_a_long_name"],
      ["show bare json", "-j prog show pinned BPFFS/bare"],
    ],
    bpffs: () => BPFFS,
    liveTest: toolTest,
    asRecorded,
    check: (stdout: string) =>
      assert.match(stdout, /loaded_at/, "bpftool printed a load time to leave out"),
  });
});
