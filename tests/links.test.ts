// Links (issue 14, part 4, first slice): hand-assembled programs attached with BPF_LINK_CREATE (XDP
// on loopback) and BPF_RAW_TRACEPOINT_OPEN (sys_enter), each counting only what the test itself
// makes (datagrams carrying a cookie, kill() of a pid no process has), so that the counts are
// exact and the same on every run: recorded, verified and replayed in both runtimes.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { after } from "node:test";
import { LINK_TYPE_RAW_TRACEPOINT, LINK_TYPE_XDP } from "../ffi/link_types.ts";
import {
  BpfError,
  type BpfMap,
  type BpfSystem,
  Link,
  listLinkIds,
  Program,
  type ProgramSpec,
} from "../mod.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  add64Imm,
  atomicAdd64,
  BPF_B,
  BPF_DW,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_probe_read_kernel,
  BPF_H,
  BPF_W,
  call,
  exit,
  jeqImm,
  jgtReg,
  jneImm,
  ldMapFd,
  ldxMem,
  mov64Imm,
  mov64Reg,
  program,
  stMem,
  XDP_PASS,
} from "./helpers/insns.ts";
import { liveTest, replayRun, tallyingKernel } from "./helpers/live.ts";
import { lockMachine } from "./helpers/machine_lock.ts";
import { transcriptTests } from "./helpers/transcript.ts";

let unlockLoopback: (() => void) | undefined;
// Loopback takes one XDP program: another run on this machine waits its turn.
const bpffs = bpffsForTests("bpfmap-links-", () => (unlockLoopback = lockMachine("xdp-lo")));
after(() => unlockLoopback?.());
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** Loopback's ifindex: 1 in every network namespace. */
const LOOPBACK = 1;
/** The first 4 bytes of the test's datagrams ("LINK"), as a little-endian u32. */
const COOKIE = 0x4b4e_494c;
/** A pid no process has (pid_max is at most 2^22): kill() of it is the test's own syscall. */
const NO_PID = 1_999_999_999;
/** `__NR_kill` on x86_64, where the transcripts are recorded. */
const NR_KILL = 62;
/** `offsetof(struct pt_regs, di)` on x86_64: the first syscall argument. */
const PT_REGS_DI = 112;

/** A jump to the program's last two instructions (`r0 = verdict; exit`), placed by `counting`. */
type Jump = (off: number) => Uint8Array;

/**
 * A program that runs `filter` (which jumps out on anything that is not the test's), then adds 1
 * to the u64 at key 0 of the map behind `mapFd`, and returns `verdict`.
 */
function counting(mapFd: number, verdict: number, filter: (Uint8Array | Jump)[]): Uint8Array {
  const steps: (Uint8Array | Jump)[] = [
    ...filter,
    stMem(BPF_W, 10, -4, 0), // key = 0, on the stack
    mov64Reg(2, 10),
    add64Imm(2, -4),
    ldMapFd(1, mapFd),
    call(BPF_FUNC_map_lookup_elem),
    (off) => jeqImm(0, 0, off), // no element: out
    mov64Imm(1, 1),
    atomicAdd64(0, 1, 0), // two CPUs may count at once
  ];
  const slots = (step: Uint8Array | Jump) => step instanceof Uint8Array ? step.byteLength / 8 : 1;
  const out = steps.reduce((sum, step) => sum + slots(step), 0);
  let at = 0;
  const insns = steps.map((step) => {
    const bytes = step instanceof Uint8Array ? step : step(out - at - 1);
    at += slots(step);
    return bytes;
  });
  return program(...insns, mov64Imm(0, verdict), exit());
}

/** XDP: counts IPv4 UDP packets whose payload starts with the cookie, and passes every packet. */
function countsDatagrams(mapFd: number): Uint8Array {
  return counting(mapFd, XDP_PASS, [
    ldxMem(BPF_W, 2, 1, 0), // r2 = ctx->data
    ldxMem(BPF_W, 3, 1, 4), // r3 = ctx->data_end
    mov64Reg(4, 2),
    add64Imm(4, 14 + 20 + 8 + 4), // Ethernet, IPv4 without options, UDP, the cookie
    (off) => jgtReg(4, 3, off),
    ldxMem(BPF_H, 5, 2, 12),
    (off) => jneImm(5, 0x0008, off), // ETH_P_IP, big-endian
    ldxMem(BPF_B, 5, 2, 14),
    (off) => jneImm(5, 0x45, off), // IPv4, a 20-byte header
    ldxMem(BPF_B, 5, 2, 14 + 9),
    (off) => jneImm(5, 17, off), // IPPROTO_UDP
    ldxMem(BPF_W, 5, 2, 14 + 20 + 8),
    (off) => jneImm(5, COOKIE, off),
  ]);
}

/** Raw tracepoint sys_enter: counts kill() calls whose pid is NO_PID. */
function countsKills(mapFd: number): Uint8Array {
  return counting(mapFd, 0, [
    mov64Reg(6, 1), // ctx: u64 args[2] = { struct pt_regs *regs, long id }
    ldxMem(BPF_DW, 2, 6, 8),
    (off) => jneImm(2, NR_KILL, off),
    ldxMem(BPF_DW, 3, 6, 0),
    add64Imm(3, PT_REGS_DI), // r3 = &regs->di
    mov64Reg(1, 10),
    add64Imm(1, -16), // r1 = a stack slot
    mov64Imm(2, 8),
    call(BPF_FUNC_probe_read_kernel),
    (off) => jneImm(0, 0, off),
    ldxMem(BPF_W, 2, 10, -16), // pid_t: the low half
    (off) => jneImm(2, NO_PID, off),
  ]);
}

/**
 * Sends `count` datagrams carrying the cookie over loopback and returns once a socket received
 * them all: by then XDP has seen each. A node child, so that Deno needs no --allow-net.
 */
function sendDatagrams(count: number): void {
  const script = `
    const dgram = require("node:dgram");
    const count = Number(process.argv[1]);
    const rx = dgram.createSocket("udp4");
    const tx = dgram.createSocket("udp4");
    let got = 0;
    rx.on("message", () => { if (++got === count) { rx.close(); tx.close(); } });
    rx.bind(0, "127.0.0.1", () => {
      for (let i = 0; i < count; i++) tx.send("LINK datagram", rx.address().port, "127.0.0.1");
    });`;
  execFileSync("node", ["-e", script, String(count)], { stdio: "inherit" });
}

/** Makes `count` kill() syscalls of NO_PID (each fails with ESRCH). */
function killNoPid(count: number): void {
  for (let i = 0; i < count; i++) {
    assert.throws(() => process.kill(NO_PID, 0), { code: "ESRCH" });
  }
}

/** A one-element array map of one u64 counter. */
const counterMap = (sys: BpfSystem) =>
  sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });

/** The counter's value. */
const counted = (map: BpfMap) =>
  new DataView(map.lookup(new Uint8Array(4))!.buffer).getBigUint64(0, true);

const load = (sys: BpfSystem, spec: Omit<ProgramSpec, "license">) =>
  sys.loadProgram({ license: "GPL", ...spec });

transcriptTest(
  "an XDP link on loopback counts the test's datagrams, and none once detached",
  (sys) => {
    const map = counterMap(sys);
    const xdp = load(sys, {
      type: "xdp",
      instructions: countsDatagrams(map.fd),
      name: "count_udp",
    });
    const link = xdp.attachXdp(LOOPBACK);
    sendDatagrams(3);
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
    sendDatagrams(2);
    assert.equal(counted(map), 3n);
    link.close();
  },
);

transcriptTest("closing an XDP link's last fd detaches its program", (sys) => {
  const map = counterMap(sys);
  const xdp = load(sys, { type: "xdp", instructions: countsDatagrams(map.fd) });
  const link = xdp.attachXdp(LOOPBACK, { flags: 2 }); // XDP_FLAGS_SKB_MODE: generic, as lo has it
  // A second fd of the same link, by id: the link lives until both are closed.
  const again = sys.linkFromId(link.id);
  assert.equal(again.id, link.id);
  link.close();
  sendDatagrams(2);
  assert.equal(counted(map), 2n);
  // One XDP program a device (and mode): a second attachment is refused while the first holds.
  assert.throws(
    () => xdp.attachXdp(LOOPBACK),
    (error) =>
      error instanceof BpfError && error.code === "EBUSY" && error.op === "BPF_LINK_CREATE",
  );
  again.close();
  sendDatagrams(4);
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
    assert.deepEqual(link.info(), {
      type: LINK_TYPE_RAW_TRACEPOINT,
      typeName: "raw_tracepoint",
      id: link.id,
      programId: tracer.id,
      tracepoint: "sys_enter",
    });
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
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  const exitZero = program(mov64Imm(0, 0), exit());
  const filter = Program.load(
    { type: "socket_filter", instructions: exitZero, license: "GPL", name: "filter" },
    kernel,
  );
  const xdp = Program.load({ type: "xdp", instructions: exitZero, license: "GPL" }, kernel);
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
