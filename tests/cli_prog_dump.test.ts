// `bpfmap prog dump xlated` in a child process of the same runtime, against
// bpftool 7.1 on programs this file loads: a clang-built object with every
// instruction class clang emits at -O2 -mcpu=v3 (alu64 and alu32, jmp and
// jmp32, loads and stores, atomics, byte swaps, ld_imm64 of a map, a map
// value and a subprogram, calls to helpers and subprograms, the verifier's
// own rewrites), loaded by bpftool; tests/bpf/loader.bpf.c, loaded by
// BpfObject; and hand-assembled programs with what clang does not emit.
// Every output is compared with bpftool's byte for byte, plain, -j and -p,
// with `opcodes` and `linum`; a recorded dump replays with no BPF.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe } from "node:test";
import { PROG_USAGE } from "../cli/prog_command.ts";
import { decodeInsn, formatInsn, HELPER_NAMES } from "../ffi/insn.ts";
import { BpfMap, BpfObject, Program } from "../mod.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  assertUsageErrors,
  bpftoolTest,
  canUseBpftool,
  recordedRuns,
} from "./helpers/cli_recorded.ts";
import { bpfmap, bpftool } from "./helpers/cli_run.ts";
import {
  atomicAdd64,
  BPF_DW,
  BPF_H,
  BPF_W,
  call,
  exit,
  jgtReg,
  ldMapFd,
  mov64Imm,
  program,
  stMem,
} from "./helpers/insns.ts";
import { liveTest } from "./helpers/live.ts";
import { buildObject } from "./helpers/object_build.ts";
import { toolTest } from "./helpers/tools.ts";

/**
 * Every instruction class clang emits for BPF at -O2 with -mcpu=v3, and what
 * the verifier turns some into: a hash map lookup into a direct call, an
 * array's into loads, bpf_loop into a loop calling its callback, LD_ABS
 * into helper calls.
 */
const ZOO = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");
__u64 total;
__u32 small;
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
static __attribute__((noinline)) int atomics(__u32 k) {
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (!v) return 1;
	__sync_fetch_and_add(v, 1);
	__u64 r = __sync_fetch_and_add(v, 2);
	r += __sync_fetch_and_or(v, 4) + __sync_fetch_and_and(v, ~8ull) + __sync_fetch_and_xor(v, 16);
	__sync_fetch_and_or(&small, 1);
	__sync_fetch_and_and(&small, 3);
	__sync_fetch_and_xor(&small, 5);
	r += __sync_fetch_and_add(&small, 7);
	__u64 old = __sync_lock_test_and_set(v, r);
	__sync_val_compare_and_swap(v, old, 7);
	__sync_val_compare_and_swap(&small, 3, 9);
	return r & 1;
}
static int step(__u32 i, void *ctx) { total += i; return i > 5; }
SEC("xdp") int xdp_zoo(struct xdp_md *ctx) {
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (data + 8 > end) return XDP_DROP;
	__u32 x = bpf_ntohl(*(__u32 *)data);
	__u16 p = bpf_ntohs(*(__u16 *)(data + 4));
	__s32 s = (__s32)x >> 3;
	__u32 y = x * 3 / 7 % 5 - p;
	__s64 n = -(__s64)s;
	if (s < -4 || (y & 0x10) || n >= 100) total += atomics(y ^ p);
	if ((__s64)x <= n && p != 9) total <<= 2;
	bpf_loop(4, step, 0, 0);
	return XDP_PASS;
}
SEC("socket") int socket_bytes(struct __sk_buff *skb) {
	return load_byte(skb, 12) << 8 | load_byte(skb, 13);
}
/* No map, no call: its dump is the same every load, for a recorded run. */
SEC("xdp") int xdp_len(struct xdp_md *ctx) {
	return ctx->data_end - ctx->data > 64 ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
`;

/** What clang does not emit: stores of immediates, 64-bit negation, le, jmp32 on registers, ld_imm64 constants. */
function handAssembled(): Uint8Array {
  const raw = (code: number, regs: number, off: number, imm: number) => {
    const bytes = new Uint8Array(8);
    const view = new DataView(bytes.buffer);
    view.setUint8(0, code);
    view.setUint8(1, regs);
    view.setInt16(2, off, true);
    view.setInt32(4, imm, true);
    return bytes;
  };
  return program(
    stMem(BPF_W, 10, -4, 0),
    stMem(BPF_H, 10, -6, -1),
    stMem(BPF_DW, 10, -16, 7),
    mov64Imm(6, 5),
    raw(0x87, 0x06, 0, 0), // r6 = -r6
    raw(0xd4, 0x06, 0, 16), // r6 = le16 r6
    raw(0xd4, 0x06, 0, 64), // r6 = le64 r6
    raw(0x9f, 0x66, 0, 0), // r6 %= r6
    raw(0x2e, 0x16, 1, 0), // if w6 > w1 goto +1
    raw(0xa6, 0x06, 0, -2), // if w6 < 0xfffffffe goto +0
    raw(0x18, 0x07, 0, 0x89abcdef), // r7 = 0x1234567_89abcdef
    raw(0x00, 0x00, 0, 0x01234567),
    mov64Imm(1, 0),
    jgtReg(1, 6, 0),
    raw(0x05, 0, 0, 0), // goto +0
    mov64Imm(0, 0),
    exit(),
  );
}

/** The programs this file pinned, by path under its bpffs. */
function pinned(): string[] {
  const inside = (folder: string) =>
    readdirSync(join(bpffs(), folder)).map((name) => `${folder}/${name}`);
  return [...inside("zoo"), ...inside("objects"), "hand", "map"];
}

const bpffs = bpffsForTests("bpfmap-cli-prog-dump-", (dir) => {
  if (!canUseBpftool) return;
  const build = mkdtempSync(join(tmpdir(), "bpfmap-cli-prog-dump-"));
  try {
    const arch = execFileSync("uname", ["-m"], { encoding: "utf8" }).trim();
    // Compiled where the path it names exists (clang reads the source lines of the BTF there),
    // under a name that is the same every run, for the transcripts.
    mkdirSync(join(build, "tests/cli_prog_dump"), { recursive: true });
    writeFileSync(join(build, "tests/cli_prog_dump/zoo.bpf.c"), ZOO);
    execFileSync("clang", [
      "-O2",
      "-g",
      "-target",
      "bpf",
      "-mcpu=v3",
      `-I/usr/include/${arch}-linux-gnu`,
      "-fdebug-compilation-dir=.",
      "-c",
      "tests/cli_prog_dump/zoo.bpf.c",
      "-o",
      "zoo.o",
    ], { cwd: build });
    mkdirSync(join(dir, "objects"));
    // By libbpf, the loader bpftool's dumps are usually of (loader.bpf.c goes through BpfObject).
    execFileSync("bpftool", ["prog", "loadall", join(build, "zoo.o"), join(dir, "zoo")]);
    using objects = BpfObject.open(buildObject("loader.bpf.c", build)).load();
    for (const [name, loaded] of objects.programs) loaded.pin(join(dir, "objects", name));
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  using hand = Program.load({
    type: "socket_filter",
    instructions: handAssembled(),
    license: "MIT",
  });
  hand.pin(join(dir, "hand"));
  using array = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
  // r1 = map; r2 = fp - 4 (key 0); call lookup (inlined by the verifier); lock add; exit
  using withMap = Program.load({
    type: "xdp",
    name: "with_map",
    license: "GPL",
    instructions: program(
      stMem(BPF_W, 10, -4, 0),
      ldMapFd(1, array.fd),
      new Uint8Array([0xbf, 0xa2, 0, 0, 0, 0, 0, 0, 0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff]),
      call(1),
      new Uint8Array([0x15, 0x00, 2, 0, 0, 0, 0, 0]), // if r0 == 0 goto +2
      mov64Imm(1, 1),
      atomicAdd64(0, 1, 0),
      mov64Imm(0, 2),
      exit(),
    ),
  });
  withMap.pin(join(dir, "map"));
});

describe("bpfmap prog dump xlated", () => {
  bpftoolTest("each program, plain, -j and -p, with opcodes and linum: bpftool's output", () => {
    const names = pinned();
    assert.ok(names.length > 3 + 2, names.join(" "));
    for (const name of names) {
      // Every form for the programs written for this test, two for the others.
      const every = ["zoo/xdp_zoo", "hand", "map"].includes(name);
      const forms = every
        ? [[], ["-j"], ["-p"]].flatMap((format) =>
          [[], ["opcodes"], ["linum"]].map((option) => [format, option])
        )
        : [[[], ["linum"]], [["-j"], ["opcodes"]]];
      for (const [format, option] of forms) {
        {
          const args = [
            ...format!,
            "prog",
            "dump",
            "xlated",
            "pinned",
            `${bpffs()}/${name}`,
            ...option!,
          ];
          const expected = bpftool(args);
          assert.equal(expected.status, 0, expected.stderr);
          const ours = bpfmap(args);
          assert.deepEqual([ours.stderr, ours.status], ["", 0], args.join(" "));
          assert.equal(ours.stdout, expected.stdout, args.join(" "));
        }
      }
    }
  });

  bpftoolTest("what the dumps show: signatures, source lines, calls by name, maps by id", () => {
    const zoo = bpfmap(["prog", "dump", "xlated", "pinned", `${bpffs()}/zoo/xdp_zoo`]).stdout;
    for (
      const shown of [
        /^int xdp_zoo\(struct xdp_md \* ctx\):\n; SEC\("xdp"\) int xdp_zoo/,
        /^int atomics\(__u32 k\):$/m,
        /^int step\(__u32 i, void \* ctx\):$/m,
        /\(85\) call pc[+-]\d+#bpf_prog_[0-9a-f]{16}_atomics$/m,
        /\(85\) call __htab_map_lookup_elem#-?\d+$/m,
        /\(18\) r1 = map\[id:\d+\]$/m,
        /\(18\) r\d = map\[id:\d+\]\[0\]\+8$/m,
        /\(18\) r2 = subprog\[\+\d+\]$/m,
        /\(db\) r\d = atomic64_cmpxchg\(\(u64 \*\)\(r\d \+0\), r0, r\d\)$/m,
        /\(c3\) lock \*\(u32 \*\)\(r\d \+0\) \^= r\d$/m,
        /\(dc\) r\d = be16 r\d$/m,
        /\(c6\) if w\d s< 0x[0-9a-f]+ goto pc\+\d+$/m,
      ]
    ) assert.match(zoo, shown);
    const hand = bpfmap(["prog", "dump", "xlated", "pinned", `${bpffs()}/hand`]).stdout;
    assert.match(hand, /^ {3}0: \(62\) \*\(u32 \*\)\(r10 -4\) = 0\n/);
    assert.match(hand, /\(18\) r7 = 0x123456789abcdef\n/);
    assert.match(hand, /\(87\) r6 = -r6\n.*\(d4\) r6 = le16 r6\n/s);
  });

  bpftoolTest("several programs by name: each with its header, as bpftool", () => {
    // A name of this process's own: another run's programs are not these.
    const twin = `twin_${process.pid}`;
    using first = Program.load({
      type: "socket_filter",
      name: twin,
      license: "GPL",
      instructions: program(mov64Imm(0, 1), exit()),
    });
    using second = Program.load({
      type: "socket_filter",
      name: twin,
      license: "GPL",
      instructions: program(mov64Imm(0, 2), exit()),
    });
    for (const format of [[], ["-j"], ["-p"]]) {
      const args = [...format, "prog", "dump", "xlated", "name", twin, "opcodes"];
      const ours = bpfmap(args);
      assert.equal(ours.status, 0, ours.stderr);
      assert.equal(ours.stdout, bpftool(args).stdout, args.join(" "));
    }
    const plain = bpfmap(["prog", "dump", "xlated", "name", twin]).stdout;
    assert.equal(
      plain,
      `${first.id}: socket_filter  name ${twin}  tag ${first.info().tag}  gpl\n`
        + "   0: (b7) r0 = 1\n   1: (95) exit\n\n"
        + `${second.id}: socket_filter  name ${twin}  tag ${second.info().tag}  gpl\n`
        + "   0: (b7) r0 = 2\n   1: (95) exit\n",
    );
  });

  liveTest("errors: no such program, and bad usage with exit code 2", () => {
    const none = bpfmap(["prog", "dump", "xlated", "id", "4294967295"]);
    assert.deepEqual([none.status, none.stderr, none.stdout], [
      1,
      "Error: id 4294967295: no such program\n",
      "",
    ]);
    const json = bpfmap(["-j", "prog", "dump", "xlated", "id", "4294967295"]);
    assert.equal(json.stdout, "{\"error\":\"id 4294967295: no such program\"}\n");
    const cases: [string[], RegExp][] = [
      [["prog", "dump"], /^Error: expected 'xlated' after 'dump'\n$/],
      [["prog", "dump", "jited", "id", "1"], /^Error: bpfmap dumps xlated instructions only/],
      [["prog", "dump", "frob", "id", "1"], /^Error: expected 'xlated', got: frob\n$/],
      [["prog", "dump", "xlated"], /^Error: expected PROG/],
      [["prog", "dump", "xlated", "id", "1", "visual"], /^Error: 'visual' is bpftool's/],
      [["prog", "dump", "xlated", "id", "1", "file", "x"], /^Error: 'file' is bpftool's/],
      // bpftool 7.1 takes one word after PROG.
      [
        ["prog", "dump", "xlated", "id", "1", "opcodes", "linum"],
        /^Error: unexpected argument: linum\n$/,
      ],
      [
        ["prog", "dump", "xlated", "id", "1", "frob"],
        /^Error: expected 'opcodes' or 'linum', got: frob\n\nUsage: /,
      ],
    ];
    assertUsageErrors(cases);
    assert.match(PROG_USAGE, /prog dump xlated PROG \[\{ opcodes \| linum \}\]/);
  });

  toolTest("the helper names are <linux/bpf.h>'s __BPF_FUNC_MAPPER, in order", {
    paths: ["/usr/include/linux/bpf.h"],
  }, () => {
    const header = readFileSync("/usr/include/linux/bpf.h", "utf8");
    const mapper = /#define ___?BPF_FUNC_MAPPER\(FN[^)]*\)([^]*?)\n\n/.exec(header);
    assert.ok(mapper, "the header defines __BPF_FUNC_MAPPER");
    const names = [...mapper[1]!.matchAll(/FN\((\w+)/g)].map((m) => m[1]);
    assert.ok(names.length > 200);
    // bpftool 7.1's table is Linux 6.1's: a newer header may add helpers at the end.
    assert.deepEqual(names.slice(0, HELPER_NAMES.length), HELPER_NAMES);
    // A call by helper number, as in a dump the kernel made without raw addresses.
    const insn = (...bytes: number[]) => decodeInsn(new Uint8Array(bytes), 0);
    assert.equal(formatInsn(insn(0x85, 0, 0, 0, 0, 0, 0, 0)), "(85) call bpf_unspec#0");
    const last = HELPER_NAMES.length - 1;
    assert.equal(
      formatInsn(insn(0x85, 0, 0, 0, last, 0, 0, 0)),
      `(85) call bpf_${names[last]}#${last}`,
    );
    assert.equal(
      formatInsn(insn(0x85, 0, 0, 0, last + 1, 0, 0, 0)),
      `(85) call unknown#${last + 1}`,
    );
  });

  // A dump of one program names no id: the replay prints what bpftool printed.
  recordedRuns({
    file: "cli_prog_dump.test.ts",
    runs: [
      ["dump xdp_len linum", "prog dump xlated pinned BPFFS/zoo/xdp_len linum"],
      ["dump xdp_len pretty opcodes", "-p prog dump xlated pinned BPFFS/zoo/xdp_len opcodes"],
    ],
    bpffs,
    liveTest: bpftoolTest,
  });
});
