// `bpfmap prog loadall OBJ PATH pinmaps DIR` and `prog load` in a child
// process of the same runtime, beside `bpftool prog loadall` and `prog load`
// on the same clang-built objects (tests/bpf/loader.bpf.c and maps.bpf.c):
// the same pins, by the same names; programs of the same type, name and tag
// (the same instructions, map references aside); maps of the same shape; and
// `bpfmap prog show pinned` of what bpfmap pinned is `bpftool prog show
// pinned`'s. Errors leave nothing pinned. Live only: a replay has no object
// file to read.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe } from "node:test";
import { PROG_USAGE } from "../cli/prog_command.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import { assertUsageErrors, bpftoolTest, canUseBpftool } from "./helpers/cli_recorded.ts";
import { bpfmap, bpftool } from "./helpers/cli_run.ts";
import { liveTest } from "./helpers/live.ts";
import { buildObject } from "./helpers/object_build.ts";

/** The objects, built once for the file. */
let objects = { loader: "", maps: "" };
let build: string | undefined;

const bpffs = bpffsForTests("bpfmap-cli-loadall-", () => {
  if (!canUseBpftool) return;
  build = mkdtempSync(join(tmpdir(), "bpfmap-cli-loadall-"));
  objects = { loader: buildObject("loader.bpf.c", build), maps: buildObject("maps.bpf.c", build) };
});
after(() => {
  if (build !== undefined) rmSync(build, { recursive: true });
});

/** `-j` output of bpftool for a pinned object, without what differs between two loads. */
function shape(kind: "prog" | "map", path: string): Record<string, unknown> {
  const shown = bpftool(["-j", kind, "show", "pinned", path]);
  assert.equal(shown.status, 0, shown.stderr);
  const {
    id: _id,
    loaded_at: _loadedAt,
    map_ids: _mapIds,
    btf_id: _btfId,
    bytes_memlock: _memlock,
    ...rest
  } = JSON.parse(shown.stdout);
  return rest;
}

/** `prog COMMAND OBJ PATH [pinmaps MAPS]`. */
const loading = (command: "load" | "loadall", object: string, path: string, maps?: string) => [
  "prog",
  command,
  object,
  path,
  ...(maps === undefined ? [] : ["pinmaps", maps]),
];

/** The names in a folder, sorted. */
const names = (dir: string) => readdirSync(dir).sort();

describe("bpfmap prog loadall", () => {
  bpftoolTest(
    "loadall pins what bpftool pins, by the same names, the same programs and maps",
    () => {
      const dir = bpffs();
      const tool = bpftool(loading("loadall", objects.loader, `${dir}/tool`, `${dir}/tool_maps`));
      assert.equal(tool.status, 0, tool.stderr);
      const ours = bpfmap(loading("loadall", objects.loader, `${dir}/ours`, `${dir}/ours_maps`));
      assert.deepEqual([ours.stdout, ours.stderr, ours.status], ["", "", 0]);
      const programs = names(`${dir}/tool`);
      assert.ok(programs.length >= 2, programs.join(" "));
      assert.deepEqual(names(`${dir}/ours`), programs);
      // Global data included: a name with its dots made underscores (loader_rodata).
      const maps = names(`${dir}/tool_maps`);
      assert.ok(maps.some((name) => name.startsWith("loader_")), maps.join(" "));
      assert.deepEqual(names(`${dir}/ours_maps`), maps);
      // libbpf makes the folders 0700.
      assert.equal(statSync(`${dir}/ours`).mode & 0o777, statSync(`${dir}/tool`).mode & 0o777);
      for (const name of programs) {
        assert.deepEqual(
          shape("prog", `${dir}/ours/${name}`),
          shape("prog", `${dir}/tool/${name}`),
        );
        for (const format of [[], ["-j"]]) {
          const args = [...format, "prog", "show", "pinned", `${dir}/ours/${name}`];
          assert.equal(bpfmap(args).stdout, bpftool(args).stdout, args.join(" "));
        }
      }
      for (const name of maps) {
        assert.deepEqual(
          shape("map", `${dir}/ours_maps/${name}`),
          shape("map", `${dir}/tool_maps/${name}`),
        );
      }
    },
  );

  bpftoolTest(
    "load pins the first program at PATH itself, as bpftool's prog load; -j says null",
    () => {
      const dir = bpffs();
      assert.equal(bpftool(["prog", "load", objects.maps, `${dir}/one_tool`]).status, 0);
      const ours = bpfmap([
        "-j",
        ...loading("load", objects.maps, `${dir}/one`, `${dir}/one_maps`),
      ]);
      assert.deepEqual([ours.stdout, ours.stderr, ours.status], ["null\n", "", 0]);
      assert.deepEqual(shape("prog", `${dir}/one`), shape("prog", `${dir}/one_tool`));
      assert.ok(names(`${dir}/one_maps`).length > 0);
    },
  );

  bpftoolTest(
    "failures: a pin already there, a folder outside bpffs, no object; nothing left pinned",
    () => {
      const dir = bpffs();
      const first = loading("loadall", objects.loader, `${dir}/first`, `${dir}/maps`);
      assert.equal(bpfmap(first).status, 0);
      const maps = names(`${dir}/maps`);
      // Its programs pin, then its maps meet the first run's pins: refused, and its programs unpinned.
      const second = bpfmap(loading("loadall", objects.loader, `${dir}/second`, `${dir}/maps`));
      assert.equal(second.status, 1);
      assert.match(
        second.stderr,
        /^Error: BPF_OBJ_PIN failed: EEXIST \(File exists\): .* map .* at .*\/maps\//,
      );
      assert.deepEqual(names(`${dir}/second`), [], "the programs it pinned are unpinned");
      assert.deepEqual(names(`${dir}/maps`), maps);
      const outside = mkdtempSync(join(tmpdir(), "bpfmap-cli-loadall-"));
      try {
        const run = bpfmap(["prog", "loadall", objects.loader, `${outside}/progs`]);
        assert.deepEqual(
          [run.status, run.stderr],
          [1, `Error: ${outside}/progs: directory not in bpf file system (bpffs)\n`],
        );
        assert.deepEqual(readdirSync(outside), [], "no folder made");
        const notElf = join(outside, "not.o");
        writeFileSync(notElf, "not an object");
        const bad = bpfmap(["prog", "loadall", notElf, `${dir}/bad`]);
        assert.equal(bad.status, 1);
        assert.match(bad.stderr, /^Error: /);
      } finally {
        rmSync(outside, { recursive: true });
      }
      const none = bpfmap(["prog", "loadall", `${dir}/no_such.o`, `${dir}/none`]);
      assert.deepEqual([none.status, none.stderr], [
        1,
        `Error: ${dir}/no_such.o: no such object file\n`,
      ]);
      assert.ok(!names(dir).includes("none") && !names(dir).includes("bad"));
    },
  );

  liveTest("bad usage of loadall is exit code 2", () => {
    assertUsageErrors([
      [["prog", "loadall"], /^Error: expected an object file \(OBJ\)\n$/],
      [["prog", "loadall", "x.o"], /^Error: expected a folder to pin the programs in \(PATH\)\n$/],
      [["prog", "loadall", "x.o", "/sys/fs/bpf/x", "type", "xdp"], /^Error: 'type' is bpftool's/],
      [["prog", "loadall", "x.o", "/sys/fs/bpf/x", "dev", "lo"], /^Error: 'dev' is bpftool's/],
      [
        ["prog", "loadall", "x.o", "/sys/fs/bpf/x", "map", "idx", "0"],
        /^Error: 'map' is bpftool's/,
      ],
      [
        ["prog", "loadall", "x.o", "/sys/fs/bpf/x", "pinmaps"],
        /^Error: expected a folder after 'pinmaps'\n$/,
      ],
      [
        ["prog", "loadall", "x.o", "/sys/fs/bpf/x", "frob"],
        /^Error: expected 'pinmaps', got: 'frob'\n$/,
      ],
    ]);
    assert.match(PROG_USAGE, /prog \{ load \| loadall \} OBJ PATH \[pinmaps MAP_DIR\]/);
  });
});
