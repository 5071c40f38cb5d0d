// Tracing links (issue 14, part 4): programs loaded against a kernel BTF id (attachBtfIdOf reads
// vmlinux's BTF through the backend, so the ids replay) and attached with BPF_LINK_CREATE. tp_btf
// on sys_enter counts the test's own kill() calls until its link is closed; iter/bpf_map prints a
// byte per map of the test's own (picked by a max_entries no other map has), read through a pin
// of the link, so the output is exact. fentry, fexit, fmod_ret and lsm: this kernel (6.18,
// lockdown "integrity") refuses every trampoline program at BPF_PROG_LOAD with EPERM and an empty
// verifier log, root with every capability or not, libbpf (bpftool prog load) alike; the test
// asserts that refusal, and the attach on a kernel that loads them.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmdirSync } from "node:fs";
import { after, before } from "node:test";
import { kernelBtf } from "../btf/kernel_btf.ts";
import { primitivesOf } from "../ffi/backend.ts";
import { liveKernel } from "../ffi/kernel.ts";
import { LINK_TYPE_ITER, LINK_TYPE_TRACING } from "../ffi/link_types.ts";
import {
  attachBtfIdOf,
  BpfError,
  type BpfSystem,
  Program,
  type TracingAttachType,
} from "../mod.ts";
import {
  assemble,
  counted,
  counterMap,
  countsKills,
  killNoPid,
  sysEnterInfo,
  talliedPrograms,
} from "./helpers/counting.ts";
import {
  add64Imm,
  BPF_B,
  BPF_DW,
  BPF_W,
  call,
  exit,
  jeqImm,
  jneImm,
  ldxMem,
  mov64Imm,
  mov64Reg,
  program,
  stMem,
} from "./helpers/insns.ts";
import { liveTest, replayRun, tallyingKernel, thrown } from "./helpers/live.ts";
import { lockMachine } from "./helpers/machine_lock.ts";
import { transcriptTests } from "./helpers/transcript.ts";

/**
 * A bpffs at a fixed path, for the iterator's pin: reading it is a readFile whose path a
 * transcript keeps as it is, so it must be the same on every run (hence the machine lock).
 */
const ITER_BPFFS = "/tmp/bpfmap-attach-tracing-bpffs";
if (!replayRun) {
  let unlock: (() => void) | undefined;
  before(() => {
    unlock = lockMachine("attach-tracing-bpffs");
    execFileSync("sh", ["-c", `umount ${ITER_BPFFS} 2>/dev/null; true`]);
    mkdirSync(ITER_BPFFS, { recursive: true });
    execFileSync("mount", ["-t", "bpf", "bpf", ITER_BPFFS]);
  });
  after(() => {
    execFileSync("umount", [ITER_BPFFS]);
    rmdirSync(ITER_BPFFS);
    unlock?.();
  });
}
const transcriptTest = transcriptTests(import.meta.url);

/** `bpf_seq_write(seq, data, len)`. */
const BPF_FUNC_seq_write = 127;
/** The max_entries of the maps the iterator prints: no other map has it. */
const MARKED_ENTRIES = 424_243;

/**
 * iter/bpf_map: for each map whose max_entries is MARKED_ENTRIES, writes "M" to the iterator's
 * output. The context is `{ struct bpf_iter_meta *meta; struct bpf_map *map }` (map NULL at the
 * end); `max_entries`' offset in `struct bpf_map` comes from the kernel's BTF.
 */
function printsMarkedMaps(maxEntriesOffset: number): Uint8Array {
  return assemble([
    mov64Reg(6, 1),
    ldxMem(BPF_DW, 7, 6, 8), // ctx->map
    (off) => jeqImm(7, 0, off),
    ldxMem(BPF_W, 2, 7, maxEntriesOffset),
    (off) => jneImm(2, MARKED_ENTRIES, off),
    ldxMem(BPF_DW, 1, 6, 0), // ctx->meta
    ldxMem(BPF_DW, 1, 1, 0), // meta->seq
    stMem(BPF_B, 10, -8, 0x4d), // "M", on the stack
    mov64Reg(2, 10),
    add64Imm(2, -8),
    mov64Imm(3, 1),
    call(BPF_FUNC_seq_write),
  ], 0);
}

/** Where `struct bpf_map`'s `max_entries` is on this kernel. */
function maxEntriesOffset(sys: BpfSystem): number {
  const { vmlinux } = kernelBtf(sys.kernel);
  const type = vmlinux.types[vmlinux.named("bpf_map", "struct")[0]!]!;
  assert.equal(type.kind, "struct");
  const member = type.kind === "struct" ? type.members.find((m) => m.name === "max_entries") : null;
  return member!.bitOffset / 8;
}

transcriptTest(
  "tp_btf on sys_enter counts the test's kill() calls until its link is closed",
  (sys) => {
    const map = counterMap(sys);
    const attachBtfId = attachBtfIdOf("trace_raw_tp", "sys_enter", sys.kernel);
    const tracer = sys.loadProgram({
      type: "tracing",
      expectedAttachType: "trace_raw_tp",
      attachBtfId,
      instructions: countsKills(map.fd),
      license: "GPL",
      name: "tp_btf_kill",
    });
    assert.equal(tracer.info().attachBtfId, attachBtfId);
    const link = tracer.attachTracing();
    killNoPid(4);
    assert.equal(counted(map), 4n);
    // A tp_btf link is a raw tracepoint link, as BPF_RAW_TRACEPOINT_OPEN would have made.
    assert.deepEqual(link.info(), sysEnterInfo(link, tracer));
    link.close();
    killNoPid(3);
    assert.equal(counted(map), 4n);
  },
);

transcriptTest("iter/bpf_map prints the test's marked maps, read through its link's pin", (sys) => {
  const marked = () =>
    sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: MARKED_ENTRIES });
  const first = marked();
  const iter = sys.loadProgram({
    type: "tracing",
    expectedAttachType: "trace_iter",
    attachBtfId: attachBtfIdOf("trace_iter", "bpf_map", sys.kernel),
    instructions: printsMarkedMaps(maxEntriesOffset(sys)),
    license: "GPL",
    name: "print_marked",
  });
  const link = iter.attachTracing();
  assert.deepEqual([link.info().type, link.info().typeName], [LINK_TYPE_ITER, "iter"]);
  const path = `${ITER_BPFFS}/marked`;
  link.pin(path);
  // Each read of the pin runs the iterator afresh, over the maps there are then.
  const read = () => new TextDecoder().decode(primitivesOf(sys.kernel.backend).readFile(path));
  assert.equal(read(), "M");
  const second = marked();
  assert.equal(read(), "MM");
  first.close();
  second.close();
  assert.equal(read(), "");
  link.close();
  if (!replayRun) execFileSync("rm", [path]);
});

/**
 * iter/bpf_map_elem: writes each element's 4-byte key, then its 4-byte value, to the iterator's
 * output. The context is `{ meta, map, key, value }`, the key NULL at the end.
 */
function printsElements(): Uint8Array {
  return assemble([
    mov64Reg(6, 1),
    ldxMem(BPF_DW, 7, 6, 16), // ctx->key
    (off) => jeqImm(7, 0, off),
    ldxMem(BPF_DW, 8, 6, 24), // ctx->value
    (off) => jeqImm(8, 0, off),
    ldxMem(BPF_DW, 9, 6, 0), // ctx->meta
    ldxMem(BPF_DW, 1, 9, 0), // meta->seq
    mov64Reg(2, 7),
    mov64Imm(3, 4),
    call(BPF_FUNC_seq_write),
    ldxMem(BPF_DW, 1, 9, 0),
    mov64Reg(2, 8),
    mov64Imm(3, 4),
    call(BPF_FUNC_seq_write),
  ], 0);
}

transcriptTest("iter/bpf_map_elem over one map prints its elements, and no other map's", (sys) => {
  const u32s = (...values: number[]) => new Uint8Array(new Uint32Array(values).buffer);
  // Arrays: elements in index order on every run (a hash's order follows its random seed).
  const spec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 3 } as const;
  const map = sys.createMap(spec);
  const other = sys.createMap(spec);
  for (const [key, value] of [[0, 10], [1, 20], [2, 30]] as const) {
    map.update(u32s(key), u32s(value));
  }
  other.update(u32s(0), u32s(90));
  const iter = sys.loadProgram({
    type: "tracing",
    expectedAttachType: "trace_iter",
    attachBtfId: attachBtfIdOf("trace_iter", "bpf_map_elem", sys.kernel),
    instructions: printsElements(),
    license: "GPL",
    name: "print_elems",
  });
  assert.throws(
    () => iter.attachTracing({ iterMap: {} as never }),
    /^TypeError: opts\.iterMap: expected an open map, got /,
  );
  // The kernel's own refusal without a map: bpf_map_elem walks one map, named at the attach.
  const none = thrown(() => iter.attachTracing());
  assert.ok(none instanceof BpfError && none.op === "BPF_LINK_CREATE", String(none));
  assert.equal(none.code, "EBADF"); // map_fd 0: no map
  const link = iter.attachTracing({ iterMap: map });
  const path = `${ITER_BPFFS}/elements`;
  link.pin(path);
  // Each read of the pin walks the map afresh: key and value, u32 each.
  const read = () => {
    const bytes = primitivesOf(sys.kernel.backend).readFile(path);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    return Array.from({ length: words.length / 2 }, (_, i) => [words[2 * i], words[2 * i + 1]]);
  };
  assert.deepEqual(read(), [[0, 10], [1, 20], [2, 30]]);
  map.update(u32s(1), u32s(21));
  other.update(u32s(2), u32s(80));
  assert.deepEqual(read(), [[0, 10], [1, 21], [2, 30]]);
  link.close();
  if (!replayRun) execFileSync("rm", [path]);
});

/** The trampoline attach types, each with a target this kernel's BTF has. */
const TRAMPOLINES: [TracingAttachType, string, "tracing" | "lsm"][] = [
  ["trace_fentry", "do_sys_openat2", "tracing"],
  ["trace_fexit", "do_sys_openat2", "tracing"],
  ["modify_return", "do_sys_openat2", "tracing"],
  ["lsm_mac", "file_open", "lsm"],
];

transcriptTest(
  "fentry, fexit, fmod_ret and lsm: refused by this kernel at load, or attached",
  (sys) => {
    for (const [attachType, target, type] of TRAMPOLINES) {
      const attachBtfId = attachBtfIdOf(attachType, target, sys.kernel);
      const load = () =>
        sys.loadProgram({
          type,
          expectedAttachType: attachType,
          attachBtfId,
          // r0 = 0; exit: fmod_ret and lsm return 0, "no change" and "allowed".
          instructions: program(mov64Imm(0, 0), exit()),
          license: "GPL",
        });
      let loaded: Program | undefined;
      const refusal = thrown(() => (loaded = load()));
      if (loaded !== undefined) {
        // A kernel that runs trampolines: the program attaches to its target.
        const link = loaded.attachTracing();
        assert.deepEqual(
          [link.info().type, link.info().attachType, link.info().targetBtfId],
          [LINK_TYPE_TRACING, attachType, attachBtfId],
        );
        link.close();
        continue;
      }
      // This kernel: EPERM before the verifier says a word (lockdown "integrity", 6.18).
      assert.ok(refusal instanceof BpfError, `${attachType}: ${refusal}`);
      assert.deepEqual([refusal.op, refusal.code], ["BPF_PROG_LOAD", "EPERM"], attachType);
    }
  },
);

transcriptTest("attachTracing and attachBtfIdOf refuse bad input before any bpf() call", (sys) => {
  const { kernel, programs: [xdp], calls } = talliedPrograms(sys, [{ type: "xdp", name: "x" }]);
  const before = calls();
  assert.throws(() => xdp.attachTracing(), {
    name: "TypeError",
    message: `attachTracing: xdp program "x" (id ${xdp.id}) is not a tracing or lsm program`,
  });
  assert.throws(
    () => attachBtfIdOf("xdp" as never, "x", kernel),
    /^TypeError: attachType: expected/,
  );
  assert.throws(() => attachBtfIdOf("trace_fentry", "no such", kernel), {
    name: "TypeError",
    message: "target: expected a C identifier, got \"no such\"",
  });
  assert.equal(calls(), before);
  xdp.close();
});

// Live only: a tracing program needs vmlinux's BTF read, 2.3 MB in a transcript.
liveTest("a tracing program's attach type is checked before any call, and asked for by id", () => {
  const { kernel, calls } = tallyingKernel(liveKernel().backend);
  const instructions = program(mov64Imm(0, 0), exit());
  using iter = Program.load({
    type: "tracing",
    expectedAttachType: "trace_iter",
    attachBtfId: attachBtfIdOf("trace_iter", "bpf_map"), // the live kernel: a tally has no files
    instructions,
    license: "GPL",
  }, kernel);
  using byId = Program.fromId(iter.id, kernel);
  const before = calls();
  assert.throws(() => iter.attachTracing({ attachType: "xdp" as never }), {
    name: "TypeError",
    message: "attachTracing: attach type xdp is not a tracing one "
      + "(trace_fentry, trace_fexit, modify_return, trace_raw_tp, trace_iter, lsm_mac)",
  });
  assert.throws(
    () => iter.attachTracing({ attachType: "lsm_mac" }),
    /^TypeError: attachTracing: tracing program \(id \d+\) is not a lsm program$/,
  );
  assert.throws(() => iter.attachTracing(null as never), /opts must be an object/);
  assert.throws(() => iter.attachTracing({ attachType: "fentry" as never }), /unknown attach type/);
  assert.throws(
    () => byId.attachTracing(),
    /was not loaded by this process: say its opts.attachType/,
  );
  assert.equal(calls(), before);
  using link = byId.attachTracing({ attachType: "trace_iter" });
  assert.equal(link.info().typeName, "iter");
  // The kernel checks the attach type against the program's.
  assert.throws(() => byId.attachTracing({ attachType: "trace_fentry" }), { code: "EINVAL" });
  assert.throws(() => attachBtfIdOf("trace_fentry", "no_such_function"), {
    name: "TypeError",
    message:
      "target: the kernel's BTF has no func no_such_function (for trace_fentry no_such_function)",
  });
});
