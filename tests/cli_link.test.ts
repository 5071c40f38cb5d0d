// `bpfmap link show|list` in a child process of the same runtime, against
// links this file makes and pins (a raw tracepoint, XDP and tcx on loopback, a
// cgroup of its own, a tp_btf program's link, iterators over every map and
// over one map's elements, and a flow dissector on a network namespace of its
// own): every output
// compared with bpftool 7.1's byte for byte, plain, -j and -p (including what
// its libbpf 1.1 does not know, which it prints by number); errors; and a
// recorded `link show` replayed with no BPF.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, describe } from "node:test";
import { LINK_USAGE } from "../cli/link_command.ts";
import { liveKernel } from "../ffi/kernel.ts";
import { attachTypeNumber } from "../ffi/prog_types.ts";
import { BpfMap, Program } from "../mod.ts";
import { createLink } from "../programs/link.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  assertUsageErrors,
  bpftoolTest,
  canUseBpftool,
  recordedRuns,
} from "./helpers/cli_recorded.ts";
import { bpfmap, bpftool } from "./helpers/cli_run.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { liveTest } from "./helpers/live.ts";
import { lockMachine } from "./helpers/machine_lock.ts";
import { compileText } from "./helpers/object_build.ts";

/** The links this file pins under `links/`, by name. */
const LINKS = ["raw_tp", "xdp", "tcx", "cgroup", "tp_btf", "iter_map", "iter_elem", "netns"];
/** Loopback's ifindex: 1 in every network namespace. */
const LOOPBACK = 1;
/** `r0 = imm; exit`. */
const returning = (imm: number) => program(mov64Imm(0, imm), exit());
/**
 * A tp_btf program, whose target libbpf finds in the kernel's BTF (its link
 * is a raw tracepoint's). fentry programs, whose links are tracing links,
 * this machine's kernel refuses (EPERM: no trampolines).
 */
const TRACING_SOURCE = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tp_btf/sys_enter") int on_sys_enter(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
`;
/** An iterator program over `target` (`bpf_map`, `bpf_map_elem`), for `bpftool iter pin`. */
const iterSource = (target: string) =>
  `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("iter/${target}") int walk(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
`;
/** The network namespace of this run, which `ip netns add` pins at /run/netns/NAME. */
const NETNS = `bpfmap-cli-link-${process.pid}`;
const NETNS_PATH = `/run/netns/${NETNS}`;

let unlockLoopback: (() => void) | undefined;
let cgroupMount: string | undefined;
let netnsMade = false;

const bpffs = bpffsForTests("bpfmap-cli-link-", (dir) => {
  if (!canUseBpftool) return;
  // Loopback takes one XDP program: another run on this machine waits its turn.
  unlockLoopback = lockMachine("xdp-lo");
  try {
    makeLinks(dir);
  } catch (error) {
    // A failed before() runs no after() (in Deno): the cgroup and the lock go now.
    cleanUp();
    throw error;
  }
});
after(cleanUp);

/** Makes this file's links, and pins them in `dir/links`. */
function makeLinks(dir: string): void {
  mkdirSync(join(dir, "links"));
  const pin = (name: string, link: { pin(path: string): void; close(): void }) => {
    link.pin(join(dir, "links", name));
    link.close();
  };
  using rawTp = Program.load({
    type: "raw_tracepoint",
    instructions: returning(0),
    license: "GPL",
    name: "cli_link_rawtp",
  });
  pin("raw_tp", rawTp.attachRawTracepoint("sys_enter"));
  using xdp = Program.load({ type: "xdp", instructions: returning(2), license: "GPL" });
  pin("xdp", xdp.attachXdp(LOOPBACK));
  using tcx = Program.load({
    type: "sched_cls",
    instructions: returning(-1), // TCX_NEXT
    license: "GPL",
    expectedAttachType: "tcx_ingress",
  });
  pin("tcx", tcx.attachTcx(LOOPBACK, "ingress"));
  // A cgroup2 hierarchy mounted afresh, and a cgroup of this run in it.
  cgroupMount = mkdtempSync(join(tmpdir(), "bpfmap-cli-link-cgroup-"));
  execFileSync("mount", ["-t", "cgroup2", "none", cgroupMount]);
  const cgroup = join(cgroupMount, `bpfmap-cli-link-${process.pid}`);
  mkdirSync(cgroup);
  using skb = Program.load({
    type: "cgroup_skb",
    instructions: returning(1),
    license: "GPL",
    expectedAttachType: "cgroup_inet_ingress",
  });
  pin("cgroup", skb.attachCgroup(cgroup, "cgroup_inet_ingress"));
  withObject(TRACING_SOURCE, (object) => {
    execFileSync("bpftool", ["prog", "loadall", object, join(dir, "tracing")]);
  });
  using tpBtf = Program.openPinned(join(dir, "tracing", "on_sys_enter"));
  pin("tp_btf", tpBtf.attachTracing({ attachType: "trace_raw_tp" }));
  // Iterators, pinned by bpftool: over every map, and over the elements of one (its map_id).
  withObject(iterSource("bpf_map"), (object) => {
    execFileSync("bpftool", ["iter", "pin", object, join(dir, "links", "iter_map")]);
  });
  using walked = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
  walked.pin(join(dir, "walked"));
  withObject(iterSource("bpf_map_elem"), (object) => {
    const map = ["map", "pinned", join(dir, "walked")];
    execFileSync("bpftool", ["iter", "pin", object, join(dir, "links", "iter_elem"), ...map]);
  });
  // A flow dissector on a namespace of this run's own: the machine's own dissection is untouched.
  execFileSync("ip", ["netns", "add", NETNS]);
  netnsMade = true;
  using dissector = Program.load({
    type: "flow_dissector",
    instructions: returning(0), // BPF_OK
    license: "GPL",
  });
  const netns = openSync(NETNS_PATH, constants.O_RDONLY);
  try {
    const target = { target: netns, attachType: attachTypeNumber("flow_dissector") };
    pin("netns", createLink(liveKernel(), dissector.fd, target, "flow dissector"));
  } finally {
    closeSync(netns);
  }
}

/** Compiles C `source` into an object file, which `use` is given, then removed. */
function withObject(source: string, use: (object: string) => void): void {
  const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
  const object = join(tmpdir(), `bpfmap-cli-link-${process.pid}.o`);
  writeFileSync(object, compileText(source, [`-I/usr/include/${arch}-linux-gnu`]));
  try {
    use(object);
  } finally {
    rmSync(object);
  }
}

/**
 * Removes the cgroup and its hierarchy's mount and the network namespace,
 * and frees loopback, once the links are gone.
 */
function cleanUp(): void {
  if (netnsMade) execFileSync("ip", ["netns", "delete", NETNS]);
  netnsMade = false;
  if (cgroupMount !== undefined) {
    const cgroup = join(cgroupMount, `bpfmap-cli-link-${process.pid}`);
    if (existsSync(cgroup)) rmdirSync(cgroup);
    execFileSync("umount", [cgroupMount]);
    rmdirSync(cgroupMount);
    cgroupMount = undefined;
  }
  unlockLoopback?.();
  unlockLoopback = undefined;
}

/** The blocks (plain) or objects (JSON) of `link list` that are the links `ids`. */
function ownLinks(text: string, ids: Set<number>, json: boolean): unknown[] {
  if (json) return (JSON.parse(text) as { id: number }[]).filter((l) => ids.has(l.id));
  return text.split(/^(?=\d+: )/m).filter((block) => ids.has(Number(block.split(":")[0])));
}

/** The ids of this file's links. */
function ownIds(): Map<string, number> {
  return new Map(LINKS.map((name) => {
    const shown = bpftool(["-j", "link", "show", "pinned", join(bpffs(), "links", name)]);
    assert.equal(shown.status, 0, shown.stderr);
    return [name, (JSON.parse(shown.stdout) as { id: number }).id];
  }));
}

describe("bpfmap link", () => {
  bpftoolTest(
    "link show of each link by pinned path and id: bpftool's output, plain, -j and -p",
    () => {
      for (const [name, id] of ownIds()) {
        for (const ref of [["pinned", join(bpffs(), "links", name)], ["id", String(id)]]) {
          for (const format of [[], ["-j"], ["-p"]]) {
            const args = [...format, "link", "show", ...ref];
            const expected = bpftool(args);
            assert.equal(expected.status, 0, expected.stderr);
            const ours = bpfmap(args);
            assert.deepEqual([ours.stderr, ours.status], ["", 0], args.join(" "));
            assert.equal(ours.stdout, expected.stdout, args.join(" "));
          }
        }
      }
    },
  );

  bpftoolTest(
    "what each shows: its type (tcx by number, as libbpf 1.1), program and target",
    () => {
      const shown = (name: string) =>
        JSON.parse(bpfmap(["-j", "link", "show", "pinned", join(bpffs(), "links", name)]).stdout);
      assert.deepEqual(
        [shown("raw_tp").type, shown("raw_tp").tp_name, shown("xdp").type, shown("tcx").type],
        ["raw_tracepoint", "sys_enter", "xdp", 11],
      );
      // A tp_btf program's link is a raw tracepoint's.
      assert.deepEqual(
        [shown("tp_btf").type, shown("tp_btf").tp_name, shown("cgroup").attach_type],
        ["raw_tracepoint", "sys_enter", "cgroup_inet_ingress"],
      );
      using tpBtf = Program.openPinned(join(bpffs(), "tracing", "on_sys_enter"));
      assert.equal(shown("tp_btf").prog_id, tpBtf.id);
      // Iterators: their target, and the map of one over a map's elements (bpftool 7.1 prints
      // no map_id for bpf_map, which walks every map).
      using walked = BpfMap.openPinned(join(bpffs(), "walked"));
      assert.deepEqual(
        [shown("iter_map").type, shown("iter_map").target_name, "map_id" in shown("iter_map")],
        ["iter", "bpf_map", false],
      );
      assert.deepEqual(
        [shown("iter_elem").target_name, shown("iter_elem").map_id],
        ["bpf_map_elem", walked.id],
      );
      assert.deepEqual(
        [shown("netns").type, shown("netns").netns_ino, shown("netns").attach_type],
        ["netns", statSync(NETNS_PATH).ino, "flow_dissector"],
      );
    },
  );

  bpftoolTest("link list: this file's links as bpftool lists them", () => {
    const ids = new Set(ownIds().values());
    for (const args of [["link", "list"], ["-j", "link", "list"], ["-p", "link", "show"]]) {
      const expected = bpftool(args);
      const ours = bpfmap(args);
      assert.equal(ours.status, 0, ours.stderr);
      const json = args[0] !== "link";
      const mine = ownLinks(ours.stdout, ids, json);
      assert.equal(mine.length, ids.size, "bpfmap lists every link this file made");
      assert.deepEqual(mine, ownLinks(expected.stdout, ids, json));
    }
  });

  bpftoolTest("what is not a link, or no link, is an error that says so", () => {
    using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.pin(join(bpffs(), "a_map"));
    const cases: [string[], string][] = [
      [["link", "show", "id", "4294967295"], "Error: id 4294967295: no such link\n"],
      [
        ["link", "show", "pinned", `${bpffs()}/none`],
        `Error: pinned ${bpffs()}/none: no such pinned object\n`,
      ],
      [
        ["link", "show", "pinned", `${bpffs()}/a_map`],
        `Error: ${bpffs()}/a_map: incorrect object type: map, not a link\n`,
      ],
    ];
    for (const [args, stderr] of cases) {
      const run = bpfmap(args);
      assert.deepEqual([run.status, run.stderr, run.stdout], [1, stderr, ""], args.join(" "));
    }
    const json = bpfmap(["-j", "link", "show", "id", "4294967295"]);
    assert.equal(json.stdout, "{\"error\":\"id 4294967295: no such link\"}\n");
  });

  liveTest("bad usage of link is exit code 2, and help is bpftool's shape", () => {
    const cases: [string[], RegExp][] = [
      [
        ["link", "show", "tag", "0123456789abcdef"],
        /^Error: expected 'id' or 'pinned', got: 'tag'/,
      ],
      [["link", "show", "id"], /^Error: expected a link id after 'id'\n$/],
      [["link", "show", "id", "0"], /^Error: invalid link id: 0\n$/],
      [["link", "show", "id", "1", "2"], /^Error: unexpected argument: 2\n$/],
      [["link", "frob"], /^Error: unknown link command 'frob'\n\nUsage: bpfmap \[OPTIONS\] link /],
      [
        ["frob", "show"],
        /^Error: unknown object 'frob': bpfmap knows 'map', 'prog', 'link' and 'btf'\n$/,
      ],
    ];
    assertUsageErrors(cases);
    assert.deepEqual(bpfmap(["link", "help"]), { stdout: LINK_USAGE, stderr: "", status: 0 });
    assert.equal(bpfmap(["-j", "link", "help"]).stdout, "null\n");
  });

  // A replay numbers links and programs from 1, in the order the transcript meets them.
  recordedRuns({
    file: "cli_link.test.ts",
    runs: [
      ["show raw_tp plain", "link show pinned BPFFS/links/raw_tp"],
      ["show raw_tp json", "-j link show pinned BPFFS/links/raw_tp"],
      ["show tp_btf pretty", "-p link show pinned BPFFS/links/tp_btf"],
      ["show iter_elem plain", "link show pinned BPFFS/links/iter_elem"],
      ["show netns json", "-j link show pinned BPFFS/links/netns"],
    ],
    bpffs,
    liveTest: bpftoolTest,
    asRecorded: (stdout) =>
      stdout
        .replace(/^\d+(?=: )|(?<="id": ?)\d+/m, "1")
        .replace(/(?<=prog |"prog_id": ?)\d+/, "1")
        .replace(/(?<=map_id )\d+/, "1")
        // A transcript writes a namespace's inode as 0: a new namespace has a new one each run.
        .replace(/(?<="netns_ino":)\d+/, "0"),
  });
});
