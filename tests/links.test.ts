// Links (issue 14, part 4, first slice): hand-assembled programs attached with BPF_LINK_CREATE (XDP
// on loopback) and BPF_RAW_TRACEPOINT_OPEN (sys_enter), each counting only what the test itself
// makes (datagrams carrying a cookie, kill() of a pid no process has), so that the counts are
// exact and the same on every run: recorded, verified and replayed in both runtimes.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import {
  BPF_LINK_INFO_CGROUP,
  BPF_LINK_INFO_ITER,
  BPF_LINK_INFO_NETNS,
  BPF_LINK_INFO_PERF_EVENT,
  BPF_LINK_INFO_TCX,
  BPF_LINK_INFO_TRACING,
  type Layout,
} from "../ffi/commands.ts";
import { LINK_TYPE_XDP } from "../ffi/link_types.ts";
import { BpfError, type BpfSystem, Link, listLinkIds, Program, type ProgramSpec } from "../mod.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  counted,
  counterMap,
  countsKills,
  datagramCounter,
  killNoPid,
  sysEnterInfo,
  talliedPrograms,
} from "./helpers/counting.ts";
import { exchangeDatagrams } from "./helpers/datagrams.ts";
import { exit, mov64Imm, program } from "./helpers/insns.ts";
import { liveTest, replayRun, tallyingKernel } from "./helpers/live.ts";
import { lockMachine } from "./helpers/machine_lock.ts";
import { toolTest } from "./helpers/tools.ts";
import { transcriptTests } from "./helpers/transcript.ts";

let unlockLoopback: (() => void) | undefined;
// Loopback takes one XDP program: another run on this machine waits its turn.
const bpffs = bpffsForTests("bpfmap-links-", () => (unlockLoopback = lockMachine("xdp-lo")));
after(() => unlockLoopback?.());
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** Loopback's ifindex: 1 in every network namespace. */
const LOOPBACK = 1;
const load = (sys: BpfSystem, spec: Omit<ProgramSpec, "license">) =>
  sys.loadProgram({ license: "GPL", ...spec });

transcriptTest(
  "an XDP link on loopback counts the test's datagrams, and none once detached",
  (sys) => {
    const { map, program: xdp } = datagramCounter(sys, "xdp", "count_udp");
    const link = xdp.attachXdp(LOOPBACK);
    exchangeDatagrams(3);
    assert.equal(counted(map), 3n);
    assert.deepEqual(link.info(), {
      type: LINK_TYPE_XDP,
      typeName: "xdp",
      id: link.id,
      programId: xdp.id,
      ifindex: LOOPBACK,
    });
    assert.equal(String(link), `xdp link (id ${link.id})`);
    link.detach();
    // Detached for good while the fd stays open: the device has no program, the link no target.
    assert.deepEqual([link.info().programId, link.info().ifindex], [xdp.id, 0]);
    exchangeDatagrams(2);
    assert.equal(counted(map), 3n);
    link.close();
  },
);

transcriptTest("closing an XDP link's last fd detaches its program", (sys) => {
  const { map, program: xdp } = datagramCounter(sys, "xdp", "");
  const link = xdp.attachXdp(LOOPBACK, { flags: 2 }); // XDP_FLAGS_SKB_MODE: generic, as lo has it
  // A second fd of the same link, by id: the link lives until both are closed.
  const again = sys.linkFromId(link.id);
  assert.equal(again.id, link.id);
  link.close();
  exchangeDatagrams(2);
  assert.equal(counted(map), 2n);
  // One XDP program a device (and mode): a second attachment is refused while the first holds.
  assert.throws(
    () => xdp.attachXdp(LOOPBACK),
    (error) =>
      error instanceof BpfError && error.code === "EBUSY" && error.op === "BPF_LINK_CREATE",
  );
  again.close();
  exchangeDatagrams(4);
  assert.equal(counted(map), 2n);
  // Now the device is free again.
  xdp.attachXdp(LOOPBACK).close();
});

transcriptTest(
  "a raw tracepoint link on sys_enter counts the test's kill() calls until closed",
  (sys) => {
    const map = counterMap(sys);
    const tracer = load(sys, {
      type: "raw_tracepoint",
      instructions: countsKills(map.fd),
      name: "count_kill",
    });
    const link = tracer.attachRawTracepoint("sys_enter");
    killNoPid(5);
    assert.equal(counted(map), 5n);
    assert.deepEqual(link.info(), sysEnterInfo(link, tracer));
    // Raw tracepoint links have no detach operation: closing is how they end.
    assert.throws(
      () => link.detach(),
      (error) =>
        error instanceof BpfError && error.code === "EOPNOTSUPP" && error.op === "BPF_LINK_DETACH",
    );
    link.close();
    killNoPid(3);
    assert.equal(counted(map), 5n);
    assert.throws(
      () => tracer.attachRawTracepoint("no_such_tracepoint"),
      (error) =>
        error instanceof BpfError && error.code === "ENOENT"
        && error.op === "BPF_RAW_TRACEPOINT_OPEN",
    );
  },
);

transcriptTest("a pinned link outlives its fds, and reopens as a link only", (sys) => {
  const map = counterMap(sys);
  const tracer = load(sys, { type: "raw_tracepoint", instructions: countsKills(map.fd) });
  const link = tracer.attachRawTracepoint("sys_enter");
  const path = `${bpffs()}/link`;
  link.pin(path);
  map.pin(`${bpffs()}/map`);
  const reopened = sys.openPinnedLink(path);
  assert.deepEqual([reopened.id, reopened.info().programId], [link.id, tracer.id]);
  link.close();
  reopened.close();
  killNoPid(2); // the pin holds the link: still attached
  assert.equal(counted(map), 2n);
  assert.throws(() => sys.openPinnedLink(`${bpffs()}/map`), {
    name: "TypeError",
    message: `${bpffs()}/map: incorrect object type: map, not a link`,
  });
  assert.throws(() => sys.openPinnedProgram(path), {
    name: "TypeError",
    message: `${path}: incorrect object type: link, not a program`,
  });
  assert.throws(() => sys.openPinned(path), {
    name: "TypeError",
    message: /incorrect object type/,
  });
  // The kernel lets go of an unpinned link after an RCU grace period, not at once: nothing to count.
  if (!replayRun) rmSync(path);
});

transcriptTest("bad input is refused before any syscall", (sys) => {
  const { kernel, programs: [filter, xdp], calls } = talliedPrograms(sys, [
    { type: "socket_filter", name: "filter" },
    { type: "xdp" },
  ]);
  const before = calls();
  assert.throws(() => filter.attachXdp(LOOPBACK), {
    name: "TypeError",
    message: `attachXdp: socket_filter program "filter" (id ${filter.id}) is not an xdp program`,
  });
  assert.throws(() => xdp.attachXdp("1" as never), {
    name: "TypeError",
    message: "ifindex must be an integer, got \"1\"",
  });
  assert.throws(() => xdp.attachXdp(0), RangeError);
  assert.throws(() => xdp.attachXdp(1.5), TypeError);
  assert.throws(() => xdp.attachXdp(LOOPBACK, { flags: -1 }), /opts.flags/);
  assert.throws(() => xdp.attachXdp(LOOPBACK, null as never), /opts must be an object/);
  assert.throws(() => xdp.attachRawTracepoint("sys_enter"), /is not a raw_tracepoint program/);
  assert.throws(() => Link.fromId(0, kernel), /id must be between 1/);
  assert.throws(() => Link.openPinned("", kernel), /path must be a non-empty string/);
  assert.equal(calls(), before);
  filter.close();
  assert.throws(() => filter.attachXdp(LOOPBACK), /^TypeError: attachXdp: .* is closed$/);
  xdp.close();
});

transcriptTest("a raw tracepoint name is checked before any syscall", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  const instructions = program(mov64Imm(0, 0), exit());
  const tracer = Program.load({ type: "raw_tracepoint", instructions, license: "GPL" }, kernel);
  const before = calls();
  for (const name of ["", "sys enter", "sys_enter\0", "x".repeat(128), 7]) {
    assert.throws(() => tracer.attachRawTracepoint(name as never), {
      name: "TypeError",
      message: /^name: expected a tracepoint name of 1 to 127 characters/,
    });
  }
  assert.equal(calls(), before);
  tracer.close();
});

liveTest("listLinkIds lists an attached link, and a closed one goes", () => {
  const instructions = program(mov64Imm(0, 0), exit());
  using tracer = Program.load({ type: "raw_tracepoint", instructions, license: "GPL" });
  const link = tracer.attachRawTracepoint("sys_exit");
  const ids = listLinkIds();
  assert.ok(ids.includes(link.id));
  assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
  using byId = Link.fromId(link.id);
  assert.equal(byId.info().tracepoint, "sys_exit");
  byId.close();
  link.close();
  assert.ok(!listLinkIds().includes(link.id));
});

/** Each link type's union member in `struct bpf_link_info`, as the layouts name its fields. */
const UNION_LAYOUTS: [Layout, string, Record<string, string>][] = [
  [BPF_LINK_INFO_TCX, "tcx", { ifindex: "ifindex", attach_type: "attach_type" }],
  [BPF_LINK_INFO_CGROUP, "cgroup", { cgroup_id: "cgroup_id", attach_type: "attach_type" }],
  [BPF_LINK_INFO_TRACING, "tracing", {
    attach_type: "attach_type",
    target_obj_id: "target_obj_id",
    target_btf_id: "target_btf_id",
  }],
  [BPF_LINK_INFO_PERF_EVENT, "perf_event", { perf_event_type: "type" }],
  [BPF_LINK_INFO_ITER, "iter", {
    target_name: "target_name",
    target_name_len: "target_name_len",
    map_id: "map.map_id",
  }],
  [BPF_LINK_INFO_NETNS, "netns", { netns_ino: "netns_ino", attach_type: "attach_type" }],
];

toolTest("the link info unions sit where this kernel's struct bpf_link_info puts them", {
  commands: ["bpftool", "cc"],
}, () => {
  // The installed <linux/bpf.h> may predate tcx: the kernel's own BTF has every member.
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-link-info-"));
  try {
    const vmlinux = execFileSync("bpftool", [
      "btf",
      "dump",
      "file",
      "/sys/kernel/btf/vmlinux",
      "format",
      "c",
    ], {
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    const checks = UNION_LAYOUTS.flatMap(([layout, member, fields]) =>
      Object.entries(fields).map(([field, name]) => ({
        field: layout.fields[field]!,
        path: `${member}.${name}`,
      }))
    );
    const lines = checks.map(({ path }) =>
      `printf("%lu %lu\\n", (unsigned long)__builtin_offsetof(struct bpf_link_info, ${path}), `
      + `(unsigned long)sizeof(((struct bpf_link_info *)0)->${path}));`
    );
    writeFileSync(
      join(dir, "info.c"),
      `${vmlinux}\nextern int printf(const char *, ...);\nint main(void) {\n${
        lines.join("\n")
      }\nreturn 0;\n}\n`,
    );
    execFileSync("cc", ["-w", "-o", join(dir, "info"), join(dir, "info.c")]);
    const compiled = execFileSync(join(dir, "info"), { encoding: "utf8" }).trim().split("\n");
    assert.deepEqual(
      compiled,
      checks.map(({ field }) => `${field.offset} ${field.size}`),
      checks.map(({ path }) => path).join(", "),
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});
