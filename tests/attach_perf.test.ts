// Perf event links (issue 14, part 4): a tracepoint (its id read from tracefs) and uprobes on a
// function of a tiny C program the test builds, each opened with perf_event_open through the
// backend and attached with BPF_LINK_CREATE, counting only what the test makes (kill() of a pid no
// process has; calls of the program's function), until the link is closed; pinned, a link keeps
// counting with no fd open. kprobe and ksyscall: this kernel is built without CONFIG_KPROBES (no
// kprobe PMU in sysfs), which the test asserts, and the attach on a kernel that has one.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { LINK_TYPE_PERF_EVENT } from "../ffi/link_types.ts";
import { type BpfSystem, type Link } from "../mod.ts";
import { attachTracepoint } from "../programs/attach_perf_link.ts";
import { rememberSection } from "../programs/attach_section.ts";
import { bpffsForTests } from "./helpers/bpffs.ts";
import {
  assemble,
  counted,
  counterMap,
  counting,
  killNoPid,
  NO_PID,
  talliedPrograms,
} from "./helpers/counting.ts";
import {
  add64Imm,
  BPF_DW,
  BPF_FUNC_map_lookup_elem,
  BPF_W,
  call,
  jeqImm,
  jneImm,
  ldMapFd,
  ldxMem,
  mov64Reg,
  stMem,
  stxMem,
} from "./helpers/insns.ts";
import { replayRun, thrown } from "./helpers/live.ts";
import { lockMachine } from "./helpers/machine_lock.ts";
import { buildObject } from "./helpers/object_build.ts";
import { transcriptTests } from "./helpers/transcript.ts";

/**
 * Where the test's C program is built: a fixed folder, as the uprobe's path and the file read for
 * its symbols are written in transcripts as they are (hence the machine lock).
 */
const BUILD = "/tmp/bpfmap-attach-perf";
const TARGET = `${BUILD}/probed`;
/** The function the uprobes go on. */
const PROBED = "bpfmap_probed";
const SOURCE = `#include <stdlib.h>
__attribute__((noinline)) int ${PROBED}(int x) {
  __asm__ volatile("" ::: "memory");
  return x + 1;
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 0, sum = 0;
  for (int i = 0; i < n; i++) sum += ${PROBED}(i);
  return sum < 0;
}
`;

if (!replayRun) {
  let unlock: (() => void) | undefined;
  let mountedTracefs = false;
  before(() => {
    unlock = lockMachine("attach-perf");
    mountedTracefs = execFileSync("sh", [
      "-c",
      "test -d /sys/kernel/tracing/events || { mount -t tracefs nodev /sys/kernel/tracing && echo mounted; }",
    ], { encoding: "utf8" }).trim() === "mounted";
    mkdirSync(BUILD, { recursive: true });
    writeFileSync(`${BUILD}/probed.c`, SOURCE);
    execFileSync("gcc", ["-O1", "-o", TARGET, `${BUILD}/probed.c`]);
  });
  after(() => {
    rmSync(BUILD, { recursive: true, force: true });
    if (mountedTracefs) execFileSync("umount", ["/sys/kernel/tracing"]);
    unlock?.();
  });
}
const bpffs = bpffsForTests("bpfmap-perf-");
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

/** Runs the test's C program, which calls the probed function `calls` times (live runs only). */
function callProbed(calls: number): void {
  if (!replayRun) execFileSync(TARGET, [String(calls)]);
}

/**
 * syscalls/sys_enter_kill: counts kill() calls of NO_PID. The context is the tracepoint's
 * record, as its tracefs format says: `pid_t pid` at offset 16 (a long).
 */
function killCounter(sys: BpfSystem) {
  const map = counterMap(sys);
  const instructions = counting(map.fd, 0, [
    ldxMem(BPF_W, 2, 1, 16),
    (off) => jneImm(2, NO_PID, off),
  ]);
  const program = sys.loadProgram({
    type: "tracepoint",
    instructions,
    license: "GPL",
    name: "tp_kill",
  });
  return { map, program };
}

/** A kprobe-type program that counts every run (uprobes, kprobes). */
function runCounter(sys: BpfSystem, name: string) {
  const map = counterMap(sys);
  const program = sys.loadProgram({
    type: "kprobe",
    instructions: counting(map.fd, 0, []),
    license: "GPL",
    name,
  });
  return { map, program };
}

const perfInfo = (link: Link, programId: number, perfEventType: string) => ({
  type: LINK_TYPE_PERF_EVENT,
  typeName: "perf_event",
  id: link.id,
  programId,
  perfEventType,
});

transcriptTest(
  "a tracepoint link on syscalls/sys_enter_kill counts the test's kill() calls",
  (sys) => {
    const { map, program } = killCounter(sys);
    const link = program.attachTracepoint("syscalls", "sys_enter_kill");
    killNoPid(3);
    assert.equal(counted(map), 3n);
    assert.deepEqual(link.info(), perfInfo(link, program.id, "tracepoint"));
    link.close();
    killNoPid(2);
    assert.equal(counted(map), 3n);
    assert.throws(() => program.attachTracepoint("syscalls", "sys_enter_no_such_call"), {
      name: "TypeError",
      message: /no such tracepoint/,
    });
  },
);

transcriptTest(
  "a pinned tracepoint link counts with no fd open, and reopens from its pin",
  (sys) => {
    const { map, program } = killCounter(sys);
    const link = program.attachTracepoint("syscalls", "sys_enter_kill");
    const path = `${bpffs()}/tracepoint`;
    link.pin(path);
    link.close();
    program.close();
    killNoPid(2);
    assert.equal(counted(map), 2n);
    const reopened = sys.openPinnedLink(path);
    assert.deepEqual(
      reopened.info(),
      perfInfo(reopened, program.id, "tracepoint"),
    );
    reopened.close();
    if (!replayRun) rmSync(path);
  },
);

transcriptTest(
  "uprobes and uretprobes count the calls of a function of the test's program",
  (sys) => {
    const entries = runCounter(sys, "uprobe");
    const returns = runCounter(sys, "uretprobe");
    const init = runCounter(sys, "uprobe_init");
    const entry = entries.program.attachUprobe(TARGET, PROBED);
    const exit = returns.program.attachUprobe(TARGET, PROBED, { retprobe: true });
    // Only calls made by init (pid 1, the same on every run), which never calls it.
    const onlyInit = init.program.attachUprobe(TARGET, PROBED, { pid: 1 });
    callProbed(3);
    callProbed(2);
    assert.deepEqual([counted(entries.map), counted(returns.map), counted(init.map)], [5n, 5n, 0n]);
    assert.deepEqual(entry.info(), perfInfo(entry, entries.program.id, "uprobe"));
    assert.equal(exit.info().perfEventType, "uretprobe");
    entry.close();
    callProbed(4);
    assert.deepEqual([counted(entries.map), counted(returns.map)], [5n, 9n]);
    exit.close();
    onlyInit.close();
    callProbed(1);
    assert.deepEqual([counted(entries.map), counted(returns.map)], [5n, 9n]);
    assert.throws(() => entries.program.attachUprobe(TARGET, "no_such_function"), {
      name: "TypeError",
      message: `${TARGET} has no function no_such_function`,
    });
  },
);

transcriptTest("kprobes and ksyscalls: this kernel has no kprobe PMU, or they attach", (sys) => {
  const { program, map } = runCounter(sys, "kprobe");
  const cases: [() => Link, string][] = [
    [() => program.attachKprobe("do_sys_openat2"), "kprobe"],
    [() => program.attachKsyscall("openat", { retprobe: true }), "kretprobe"],
  ];
  for (const [attach, perfEventType] of cases) {
    let link: Link;
    try {
      link = attach();
    } catch (refusal) {
      // This machine's kernel: built without CONFIG_KPROBES.
      assert.ok(refusal instanceof Error);
      assert.match(
        refusal.message,
        /this kernel has no kprobe PMU \(\/sys\/bus\/event_source\/devices\/kprobe\/type is missing: a kernel built without CONFIG_KPROBES\)$/,
      );
      continue;
    }
    // A kernel with kprobes: the link is a perf event link of that kind, and it counts opens.
    assert.equal(link.info().perfEventType, perfEventType);
    const before = counted(map);
    closeSync(openSync("/dev/null", "r"));
    assert.ok(counted(map) > before, "the probe counted the test's open");
    link.close();
  }
});

transcriptTest("perf event attachments refuse bad input before any bpf() call", (sys) => {
  const { programs: [xdp, tracepoint, kprobe], calls } = talliedPrograms(sys, [
    { type: "xdp", name: "x" },
    { type: "tracepoint" },
    { type: "kprobe" },
  ]);
  const before = calls();
  assert.throws(() => xdp.attachTracepoint("syscalls", "sys_enter_kill"), {
    name: "TypeError",
    message: `attachTracepoint: xdp program "x" (id ${xdp.id}) is not a tracepoint program`,
  });
  assert.throws(() => tracepoint.attachKprobe("do_sys_openat2"), /is not a kprobe program/);
  assert.throws(() => tracepoint.attachUprobe(TARGET, PROBED), /is not a kprobe program/);
  for (const bad of ["", "../events", "a/b", ".hidden", "x\0"]) {
    assert.throws(
      () => tracepoint.attachTracepoint(bad, "sys_enter_kill"),
      /^TypeError: category: expected a name/,
    );
    assert.throws(() => kprobe.attachKprobe(bad), /^TypeError: fn: expected a name/);
  }
  assert.throws(
    () => kprobe.attachUprobe("probed", PROBED),
    /^TypeError: path: expected an absolute path/,
  );
  assert.throws(
    () => kprobe.attachUprobe(TARGET, PROBED, { pid: 0 }),
    /^RangeError: opts.pid must be between 1/,
  );
  assert.throws(() => kprobe.attachUprobe(TARGET, -1), /^RangeError: symbol must be between 0/);
  assert.throws(
    () => kprobe.attachUprobe(TARGET, PROBED, { retprobe: "yes" as never }),
    /opts.retprobe: expected a boolean/,
  );
  assert.throws(() => kprobe.attachKprobe("f", null as never), /opts must be an object/);
  assert.equal(calls(), before);
  for (const program of [xdp, tracepoint, kprobe]) program.close();
});

/** `tests/bpf/attach_sections.bpf.c`, built once (clang runs in every mode: the object is input). */
let sectionsObject: Uint8Array | undefined;
function attachSectionsObject(): Uint8Array {
  if (sectionsObject === undefined) {
    const folder = mkdtempSync(join(tmpdir(), "bpfmap-attach-sections-"));
    try {
      sectionsObject = new Uint8Array(readFileSync(buildObject("attach_sections.bpf.c", folder)));
    } finally {
      rmSync(folder, { recursive: true });
    }
  }
  return sectionsObject;
}

transcriptTest("object programs attach where their sections say, as bpf_program__attach", (sys) => {
  const object = sys.loadObject(attachSectionsObject());
  const loaded = (name: string) => {
    const program = object.programs.get(name)!;
    const spec = object.spec.programs.find((p) => p.name === name)!;
    // What BpfObject should do as it loads each program (asked of the loader's owner).
    rememberSection(program, spec.section, spec.type!);
    return program;
  };
  const counts = () => {
    const bytes = object.maps.get(".bss")!.lookup(new Uint8Array(4))!;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    return [0, 8, 16].map((at) => view.getBigUint64(at, true));
  };
  const links = ["tp_kill", "raw_kill", "probed"].map((name) => loaded(name).attach());
  killNoPid(3);
  callProbed(2);
  assert.deepEqual(counts(), [3n, 3n, 2n]);
  assert.deepEqual(links.map((link) => link.info().typeName), [
    "perf_event",
    "raw_tracepoint",
    "perf_event",
  ]);
  for (const link of links) link.close();
  killNoPid(1);
  callProbed(1);
  assert.deepEqual(counts(), [3n, 3n, 2n]);
  // A kprobe section: this kernel has no kprobe PMU (or the kprobe attaches).
  const kprobe = thrown(() => loaded("openat2").attach());
  if (kprobe !== undefined) assert.match(String(kprobe), /this kernel has no kprobe PMU/);
  // XDP needs a device: the section cannot say which.
  assert.throws(() => loaded("pass").attach(), {
    name: "TypeError",
    message:
      /^attach: xdp program "pass" \(id \d+\) is of section "xdp", which names no device: call attachXdp\(ifindex\)$/,
  });
  const plain = sys.loadProgram({
    type: "xdp",
    instructions: object.spec.programs.find((p) => p.name === "pass")!.instructions,
    license: "GPL",
  });
  assert.throws(() => plain.attach(), /was not loaded from an object file/);
});

/** `bpf_get_attach_cookie(ctx)`: the cookie of the link the program runs through. */
const BPF_FUNC_get_attach_cookie = 174;

/** A program writing the cookie of the link it runs through into its map's one u64. */
function cookieWriter(sys: BpfSystem, type: "tracepoint" | "kprobe", name: string) {
  const map = counterMap(sys);
  const instructions = assemble([
    call(BPF_FUNC_get_attach_cookie), // r1 is the context
    mov64Reg(6, 0),
    stMem(BPF_W, 10, -4, 0), // key = 0, on the stack
    mov64Reg(2, 10),
    add64Imm(2, -4),
    ldMapFd(1, map.fd),
    call(BPF_FUNC_map_lookup_elem),
    (off) => jeqImm(0, 0, off),
    stxMem(BPF_DW, 0, 6, 0),
  ], 0);
  return { map, program: sys.loadProgram({ type, instructions, license: "GPL", name }) };
}

/** A cookie past 2^53 and with both halves set: all 64 bits must reach the program. */
const COOKIE = 0xfeed_c0de_1234_5678n;

transcriptTest(
  "a perf event link's cookie reaches its program: a tracepoint's and an uprobe's",
  (sys) => {
    const tracepoint = cookieWriter(sys, "tracepoint", "tp_cookie");
    const { program } = tracepoint;
    // Program.attachTracepoint takes no options yet: the attach function itself does.
    const attaching = {
      kernel: sys.kernel,
      fd: program.fd,
      type: program.type,
      description: String(program),
      operation: "attachTracepoint",
    };
    const link = attachTracepoint(attaching, "syscalls", "sys_enter_kill", { cookie: COOKIE });
    killNoPid(1);
    assert.equal(counted(tracepoint.map), COOKIE);
    assert.deepEqual(link.info(), perfInfo(link, program.id, "tracepoint"));
    link.close();
    const uprobe = cookieWriter(sys, "kprobe", "uprobe_cookie");
    const probe = uprobe.program.attachUprobe(TARGET, PROBED, { cookie: 7 });
    callProbed(1);
    assert.equal(counted(uprobe.map), 7n);
    probe.close();
  },
);

transcriptTest("a cookie that is no u64 is refused before any call", (sys) => {
  const { kernel, programs: [tp, probe], calls } = talliedPrograms(sys, [
    { type: "tracepoint", name: "tp" },
    { type: "kprobe", name: "probe" },
  ]);
  const before = calls();
  const message = /^RangeError: opts\.cookie: expected a u64 \(a bigint or safe integer\), got /;
  for (const cookie of [-1, 2n ** 64n, 1.5, 2 ** 53, "7"]) {
    assert.throws(() => probe.attachUprobe(TARGET, PROBED, { cookie: cookie as never }), message);
    assert.throws(() => probe.attachKprobe("do_sys_openat2", { cookie: cookie as never }), message);
  }
  const attaching = { kernel, fd: tp.fd, type: tp.type, description: "tp", operation: "t" };
  assert.throws(() => attachTracepoint(attaching, "syscalls", "x", { cookie: -1 }), message);
  assert.equal(calls(), before);
});
