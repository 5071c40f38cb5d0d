// A tiny BPF assembler for tests: enough instructions to write by hand the programs that
// tests/programs.test.ts and tests/links.test.ts load (no clang, so the kernel side is tested on its own). Each
// function returns the instruction's bytes, little-endian as the kernel reads them.

/** BPF registers r0-r10. */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

/** `BPF_PSEUDO_MAP_FD`: an `ld_imm64` whose immediate is a map fd the kernel turns into the map. */
export const BPF_PSEUDO_MAP_FD = 1;
/** Helpers by number (`enum bpf_func_id`). */
export const BPF_FUNC_map_lookup_elem = 1;
/** `bpf_probe_read_kernel(dst, size, src)`: GPL-only, for tracing programs. */
export const BPF_FUNC_probe_read_kernel = 113;
/** XDP verdicts. */
export const XDP_PASS = 2;
/** Sizes of loads and stores: `BPF_W` (4 bytes), `BPF_H` (2), `BPF_B` (1), `BPF_DW` (8). */
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;

function insn(code: number, dst: number, src: number, off: number, imm: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  bytes[0] = code;
  bytes[1] = (src << 4) | dst;
  view.setInt16(2, off, true);
  view.setInt32(4, imm, true);
  return bytes;
}

/** `dst = imm` (`BPF_ALU64 | BPF_MOV | BPF_K`). */
export const mov64Imm = (dst: Reg, imm: number) => insn(0xb7, dst, 0, 0, imm);
/** `dst = src` (`BPF_ALU64 | BPF_MOV | BPF_X`). */
export const mov64Reg = (dst: Reg, src: Reg) => insn(0xbf, dst, src, 0, 0);
/** `dst += imm` (`BPF_ALU64 | BPF_ADD | BPF_K`). */
export const add64Imm = (dst: Reg, imm: number) => insn(0x07, dst, 0, 0, imm);
/** `dst = *(size *)(src + off)` (`BPF_LDX | BPF_MEM`). */
export const ldxMem = (size: number, dst: Reg, src: Reg, off: number) =>
  insn(0x61 | size, dst, src, off, 0);
/** `*(size *)(dst + off) = imm` (`BPF_ST | BPF_MEM`). */
export const stMem = (size: number, dst: Reg, off: number, imm: number) =>
  insn(0x62 | size, dst, 0, off, imm);
/** `*(size *)(dst + off) = src` (`BPF_STX | BPF_MEM`). */
export const stxMem = (size: number, dst: Reg, src: Reg, off: number) =>
  insn(0x63 | size, dst, src, off, 0);
/** `if dst == imm goto +off` (`BPF_JMP | BPF_JEQ | BPF_K`). */
export const jeqImm = (dst: Reg, imm: number, off: number) => insn(0x15, dst, 0, off, imm);
/** `if dst != imm goto +off` (`BPF_JMP | BPF_JNE | BPF_K`; `imm` is sign-extended to 64 bits). */
export const jneImm = (dst: Reg, imm: number, off: number) => insn(0x55, dst, 0, off, imm);
/** `if dst > src goto +off`, unsigned (`BPF_JMP | BPF_JGT | BPF_X`). */
export const jgtReg = (dst: Reg, src: Reg, off: number) => insn(0x2d, dst, src, off, 0);
/** `lock *(u64 *)(dst + off) += src` (`BPF_STX | BPF_ATOMIC | BPF_DW`, `BPF_ADD`). */
export const atomicAdd64 = (dst: Reg, src: Reg, off: number) => insn(0xdb, dst, src, off, 0);
/** `call helper` (`BPF_JMP | BPF_CALL`). */
export const call = (helper: number) => insn(0x85, 0, 0, 0, helper);
/** `exit` (`BPF_JMP | BPF_EXIT`). */
export const exit = () => insn(0x95, 0, 0, 0, 0);
/** `dst = map` by fd: `ld_imm64` with `BPF_PSEUDO_MAP_FD`, two instruction slots. */
export const ldMapFd = (dst: Reg, fd: number) =>
  program(insn(0x18, dst, BPF_PSEUDO_MAP_FD, 0, fd), insn(0, 0, 0, 0, 0));

/** Instructions back to back: the `instructions` of a `Program.load`. */
export function program(...insns: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(insns.reduce((sum, i) => sum + i.byteLength, 0));
  let at = 0;
  for (const i of insns) {
    bytes.set(i, at);
    at += i.byteLength;
  }
  return bytes;
}
