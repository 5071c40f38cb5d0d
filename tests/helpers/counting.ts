/**
 * Hand-assembled programs that count what a test itself makes (datagrams
 * carrying a cookie), into the u64 at key 0 of a one-element array map:
 * the attach tests prove a program ran by its count, exact on every run.
 *
 * @module
 */

import assert from "node:assert/strict";
import process from "node:process";
import type { Kernel } from "../../ffi/kernel.ts";
import { LINK_TYPE_RAW_TRACEPOINT } from "../../ffi/link_types.ts";
import {
  type BpfMap,
  type BpfSystem,
  type Link,
  type LinkInfo,
  Program,
  type ProgramSpec,
} from "../../mod.ts";
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
} from "./insns.ts";
import { tallyingKernel } from "./live.ts";

/** The first 4 bytes of the tests' datagrams ("LINK"), as a little-endian u32. */
export const COOKIE = 0x4b4e_494c;
/** What the tests' datagrams carry. */
export const PAYLOAD = "LINK datagram";

/** A jump to the program's last two instructions (`r0 = verdict; exit`), placed by `counting`. */
export type Jump = (off: number) => Uint8Array;

/**
 * A program of `steps`, then `r0 = verdict; exit`: each `Jump` in the steps jumps to that end.
 */
export function assemble(steps: (Uint8Array | Jump)[], verdict: number): Uint8Array {
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

/**
 * A program that runs `filter` (which jumps out on anything that is not the test's), then adds 1
 * to the u64 at key 0 of the map behind `mapFd`, and returns `verdict`.
 */
export function counting(
  mapFd: number,
  verdict: number,
  filter: (Uint8Array | Jump)[],
): Uint8Array {
  return assemble([
    ...filter,
    stMem(BPF_W, 10, -4, 0), // key = 0, on the stack
    mov64Reg(2, 10),
    add64Imm(2, -4),
    ldMapFd(1, mapFd),
    call(BPF_FUNC_map_lookup_elem),
    (off) => jeqImm(0, 0, off), // no element: out
    mov64Imm(1, 1),
    atomicAdd64(0, 1, 0), // two CPUs may count at once
  ], verdict);
}

/** A pid no process has (pid_max is at most 2^22): kill() of it is the test's own syscall. */
export const NO_PID = 1_999_999_999;
/** `__NR_kill` on x86_64, where the transcripts are recorded. */
const NR_KILL = 62;
/** `offsetof(struct pt_regs, di)` on x86_64: the first syscall argument. */
const PT_REGS_DI = 112;

/**
 * At sys_enter (a raw tracepoint, or tp_btf): counts kill() calls whose pid is NO_PID. The
 * context is the tracepoint's arguments, `{ struct pt_regs *regs, long id }`.
 */
export function countsKills(mapFd: number): Uint8Array {
  return counting(mapFd, 0, [
    mov64Reg(6, 1),
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

/** What `link.info()` says of a raw tracepoint (or tp_btf) link of `program` on sys_enter. */
export const sysEnterInfo = (link: Link, program: Program): LinkInfo => ({
  type: LINK_TYPE_RAW_TRACEPOINT,
  typeName: "raw_tracepoint",
  id: link.id,
  programId: program.id,
  tracepoint: "sys_enter",
});

/** Makes `count` kill() syscalls of NO_PID (each fails with ESRCH). */
export function killNoPid(count: number): void {
  for (let i = 0; i < count; i++) {
    assert.throws(() => process.kill(NO_PID, 0), { code: "ESRCH" });
  }
}

/** Where a program type's context says the packet starts and ends, and what comes before IPv4. */
export interface PacketContext {
  /** Offsets in the context of the u32s `data` and `data_end`. */
  data: number;
  dataEnd: number;
  /** Bytes before the IPv4 header: 14 (Ethernet) for XDP and tc, 0 for cgroup_skb. */
  link: number;
}

/** `struct xdp_md`: data, data_end; frames start with Ethernet. */
export const XDP_CONTEXT: PacketContext = { data: 0, dataEnd: 4, link: 14 };
/** `struct __sk_buff` at tc (tcx): data, data_end; Ethernet first. */
export const TC_CONTEXT: PacketContext = { data: 76, dataEnd: 80, link: 14 };
/** `struct __sk_buff` at a cgroup: data, data_end; the IPv4 header first. */
export const CGROUP_SKB_CONTEXT: PacketContext = { data: 76, dataEnd: 80, link: 0 };

/**
 * Counts IPv4 UDP packets whose payload starts with the cookie, and returns `verdict` for every
 * packet.
 */
export function countsDatagrams(mapFd: number, verdict: number, at: PacketContext): Uint8Array {
  const ip = at.link;
  const ethernet = ip === 14
    ? [
      ldxMem(BPF_H, 5, 2, 12),
      (off: number) => jneImm(5, 0x0008, off), // ETH_P_IP, big-endian
    ]
    : [];
  return counting(mapFd, verdict, [
    ldxMem(BPF_W, 2, 1, at.data), // r2 = ctx->data
    ldxMem(BPF_W, 3, 1, at.dataEnd), // r3 = ctx->data_end
    mov64Reg(4, 2),
    add64Imm(4, ip + 20 + 8 + 4), // IPv4 without options, UDP, the cookie
    (off) => jgtReg(4, 3, off),
    ...ethernet,
    ldxMem(BPF_B, 5, 2, ip),
    (off) => jneImm(5, 0x45, off), // IPv4, a 20-byte header
    ldxMem(BPF_B, 5, 2, ip + 9),
    (off) => jneImm(5, 17, off), // IPPROTO_UDP
    ldxMem(BPF_W, 5, 2, ip + 20 + 8),
    (off) => jneImm(5, COOKIE, off),
  ]);
}

/** A one-element array map of one u64 counter. */
export const counterMap = (sys: BpfSystem): BpfMap =>
  sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });

/** The context and the verdict that lets every packet go on, of each packet-counting program type. */
const COUNTERS = {
  xdp: { at: XDP_CONTEXT, verdict: XDP_PASS },
  sched_cls: { at: TC_CONTEXT, verdict: -1 }, // TCX_NEXT
  cgroup_skb: { at: CGROUP_SKB_CONTEXT, verdict: 1 }, // allow
} as const;

/**
 * A program of `type` named `name` that counts the test's datagrams into `map` (by default a
 * fresh counter, created before the program is loaded), and lets every packet go on.
 */
export function datagramCounter(
  sys: BpfSystem,
  type: keyof typeof COUNTERS,
  name: string,
  map: BpfMap = counterMap(sys),
): { map: BpfMap; program: Program } {
  const { at, verdict } = COUNTERS[type];
  const instructions = countsDatagrams(map.fd, verdict, at);
  return { map, program: sys.loadProgram({ type, instructions, license: "GPL", name }) };
}

/** The counter's value. */
export const counted = (map: BpfMap): bigint =>
  new DataView(map.lookup(new Uint8Array(4))!.buffer).getBigUint64(0, true);

/**
 * Programs that only return 0, one per spec, loaded through a kernel that counts the calls made
 * through it (`calls()`; use `kernel` for more): bad-input tests assert that a refusal made none.
 */
export function talliedPrograms<
  const S extends readonly Pick<
    ProgramSpec,
    "type" | "name" | "expectedAttachType" | "attachBtfId"
  >[],
>(
  sys: BpfSystem,
  specs: S,
): { kernel: Kernel; programs: { [K in keyof S]: Program }; calls: () => number } {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  const instructions = program(mov64Imm(0, 0), exit());
  const programs = specs.map((spec) =>
    Program.load({ instructions, license: "GPL", ...spec }, kernel)
  );
  return { kernel, programs: programs as { [K in keyof S]: Program }, calls };
}
