// The object reader (object/): what it finds in clang-built objects against
// what readelf reads and what libbpf (bpftool prog loadall) creates and
// loads from the same file, the section-name table, and hostile files: a
// truncated or corrupted object is an ObjectFormatError, never anything else.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { progTypeName } from "../ffi/prog_types.ts";
import { ElfFile } from "../object/elf.ts";
import { ObjectFormatError } from "../object/errors.ts";
import type { ObjectMap } from "../object/maps.ts";
import { type ObjectSpec, parseObject } from "../object/object.ts";
import { programSection } from "../object/sections.ts";
import { freshBpffs } from "./helpers/bpffs.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { buildObject, CLANG_NEEDS, compileText } from "./helpers/object_build.ts";
import { toolTest } from "./helpers/tools.ts";

/** Builds tests/bpf/programs.bpf.c (with `defines`), runs `fn` on its path and bytes. */
function withProgramsObject<T>(
  defines: readonly string[],
  fn: (path: string, bytes: Uint8Array) => T,
): T {
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-object-"));
  try {
    const path = buildObject("programs.bpf.c", folder, defines);
    return fn(path, new Uint8Array(readFileSync(path)));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const parsed = (defines: readonly string[] = []): ObjectSpec =>
  withProgramsObject(defines, (_, bytes) => parseObject(bytes, { name: "programs" }));

const u64 = (value: bigint) => new Uint8Array(new BigUint64Array([value]).buffer);

/** A tool test that also needs the kernel: skipped where the run replays. */
function kernelToolTest(name: string, fn: () => void): void {
  if (replayRun) liveTest(name, fn);
  else toolTest(name, { ...CLANG_NEEDS, commands: ["clang", "bpftool"] }, fn);
}

const READELF_TYPES: Record<string, number> = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  NOBITS: 8,
  REL: 9,
};
const SYMBOL_TYPES: Record<string, number> = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 };
const BINDINGS: Record<string, number> = { LOCAL: 0, GLOBAL: 1, WEAK: 2 };

toolTest(
  "sections, symbols and relocations are the ones readelf reads",
  { ...CLANG_NEEDS, commands: ["clang", "readelf"] },
  () => {
    withProgramsObject([], (path, bytes) => {
      const elf = new ElfFile(bytes);
      const readelf = (flag: string) =>
        execFileSync("readelf", ["-W", flag, path], { encoding: "utf8" });
      // "[Nr] Name Type Address Off Size ES Flg Lk Inf Al": no name for section 0, no flags for some.
      const sections = [...readelf("-S").matchAll(/^\s*\[\s*(\d+)\]\s+(.*)$/gm)].map(
        ([, index, rest]) => {
          const words = rest!.trim().split(/\s+/);
          const [, info, link] = [words.pop(), words.pop(), words.pop()];
          // Name, type, address, offset, size, ES, then flags if any; section 0 has no name.
          const named = words.length >= 6;
          const [name, type, , offset, size] = named ? words : ["", ...words];
          return { index: Number(index), name, type, offset, size, link, info };
        },
      );
      assert.equal(sections.length, elf.sections.length);
      for (const { index, name, type, offset, size, link, info } of sections) {
        const section = elf.sections[index]!;
        assert.equal(section.name, name, `section ${index}'s name`);
        assert.equal(section.offset, parseInt(offset!, 16), `section ${index}'s offset`);
        assert.equal(section.size, parseInt(size!, 16), `section ${index}'s size`);
        assert.equal(section.link, Number(link), `section ${index}'s link`);
        assert.equal(section.info, Number(info), `section ${index}'s info`);
        const number = READELF_TYPES[type!];
        if (number !== undefined) assert.equal(section.type, number, `section ${index}'s type`);
      }

      const symbols = [
        ...readelf("-s").matchAll(
          /^\s*(\d+):\s([0-9a-f]{16})\s+(\d+)\s(\S+)\s+(\S+)\s+\S+\s+(\S+)\s?(.*)$/gm,
        ),
      ];
      assert.equal(symbols.length, elf.symbols.length);
      for (const [, index, value, size, type, bind, ndx, name] of symbols) {
        const symbol = elf.symbols[Number(index)]!;
        assert.equal(symbol.value, parseInt(value!, 16), `symbol ${index}'s value`);
        assert.equal(symbol.size, Number(size), `symbol ${index}'s size`);
        assert.equal(symbol.type, SYMBOL_TYPES[type!], `symbol ${index}'s type`);
        assert.equal(symbol.binding, BINDINGS[bind!], `symbol ${index}'s binding`);
        const section = ndx === "UND" ? 0 : ndx === "ABS" ? 0xfff1 : Number(ndx);
        assert.equal(symbol.section, section, `symbol ${index}'s section`);
        assert.equal(symbol.name, name, `symbol ${index}'s name`);
      }

      const text = readelf("-r");
      const blocks = [
        ...text.matchAll(
          /Relocation section '([^']+)' at offset 0x([0-9a-f]+) contains (\d+) entr/g,
        ),
      ];
      assert.ok(blocks.length >= 6, "relocation sections");
      for (const [, name, offset, count] of blocks) {
        const rel = elf.sections.find((s) => s.offset === parseInt(offset!, 16) && s.type === 9);
        assert.ok(rel !== undefined, `${name} found by its offset`);
        const ours = elf.relocations(rel);
        assert.equal(ours.length, Number(count), `${name}'s count`);
        const start = text.indexOf(`Relocation section '${name}'`);
        const lines = [...text.slice(start).matchAll(/^([0-9a-f]{16})\s+([0-9a-f]{16})\s/gm)]
          .slice(0, ours.length);
        lines.forEach(([, at, info], i) => {
          const expected = BigInt(`0x${info}`);
          assert.deepEqual(ours[i], {
            offset: parseInt(at!, 16),
            symbol: Number(expected >> 32n),
            type: Number(expected & 0xffffffffn),
          }, `${name}[${i}]`);
        });
      }
    });
  },
);

toolTest(
  "programs: section names, types, targets, .text subprograms and relocations",
  CLANG_NEEDS,
  () => {
    const object = parsed();
    assert.equal(object.license, "GPL");
    assert.equal(object.kernelVersion, undefined);
    assert.deepEqual(
      object.programs.map((p) => [p.name, p.section, progTypeName(p.type!.programType)]),
      [
        ["xdp_count", "xdp", "xdp"],
        ["socket_count", "socket", "socket_filter"],
        ["tc_pass", "tc", "sched_cls"],
        ["execve_enter", "tracepoint/syscalls/sys_enter_execve", "tracepoint"],
        ["unlink_enter", "kprobe/do_unlinkat", "kprobe"],
        ["unlink_exit", "kretprobe/do_unlinkat", "kprobe"],
        ["raw_enter", "raw_tp/sys_enter", "raw_tracepoint"],
        ["btf_enter", "tp_btf/sys_enter", "tracing"],
        ["cgroup_ingress", "cgroup_skb/ingress", "cgroup_skb"],
        ["on_sample", "perf_event", "perf_event"],
      ],
    );
    const byName = new Map(object.programs.map((p) => [p.name, p]));
    assert.deepEqual(byName.get("execve_enter")?.type?.target, {
      kind: "tracepoint",
      category: "syscalls",
      name: "sys_enter_execve",
    });
    assert.equal(byName.get("btf_enter")?.type?.expectedAttachType, 23); // BPF_TRACE_RAW_TP
    assert.equal(byName.get("cgroup_ingress")?.type?.expectedAttachType, 0); // BPF_CGROUP_INET_INGRESS
    assert.equal(byName.get("xdp_count")?.type?.expectedAttachType, 37); // BPF_XDP

    // bump() is the one .text function, and both callers reach its first instruction.
    assert.deepEqual(object.subprograms.map((f) => [f.name, f.global, f.sectionInsn]), [[
      "bump",
      false,
      0,
    ]]);
    for (const caller of ["xdp_count", "socket_count"]) {
      const calls = byName.get(caller)!.relocations.filter((r) => r.kind === "call");
      assert.equal(calls.length, 1, `${caller} calls bump once`);
      assert.deepEqual({ ...calls[0], insn: 0 }, {
        kind: "call",
        insn: 0,
        target: "bump",
        targetInsn: 0,
      });
      const insn = byName.get(caller)!.instructions.subarray(calls[0]!.insn * 8);
      assert.equal(insn[0], 0x85, `${caller}: the relocation is on a call`);
      assert.equal(insn[1]! >>> 4, 1, `${caller}: BPF_PSEUDO_CALL`);
    }
    // Map and data references: the map by name, each variable by section and offset.
    const kinds = (name: string) =>
      (name === "bump" ? object.subprograms[0]! : byName.get(name)!).relocations.map((r) =>
        r.kind === "map"
          ? `map ${r.map}`
          : r.kind === "data"
          ? `data ${r.map}+${r.offset}`
          : r.kind === "extern"
          ? `extern ${r.name}`
          : `${r.kind} ${r.target}`
      );
    assert.deepEqual(kinds("bump"), [
      "data .bss+8", // static calls: .bss's section symbol plus 8
      "data .rodata+0", // sample_every
      "data .bss+0", // total
      "data .data+0", // limit
      "map counts",
      "map counts",
    ]);
    assert.deepEqual(kinds("xdp_count"), [
      "data .rodata.extra+0",
      "data .data.extra+0",
      "call bump",
    ]);
    assert.deepEqual(kinds("tc_pass"), ["map outer"]);
    assert.deepEqual(kinds("execve_enter"), [
      "extern LINUX_KERNEL_VERSION",
      "extern CONFIG_BPF_SYSCALL",
      "map counts",
    ]);
    // Each relocated ld_imm64 is where the relocation says.
    for (const program of [...object.programs, ...object.subprograms]) {
      for (const relocation of program.relocations.filter((r) => r.kind !== "call")) {
        assert.equal(
          program.instructions[relocation.insn * 8],
          0x18,
          `${program.name}@${relocation.insn}`,
        );
      }
      // .BTF.ext: every program has its FUNC at instruction 0 and lines of its own.
      assert.equal(program.funcInfo[0]?.insn, 0, `${program.name}'s func_info`);
      assert.ok(program.lineInfo.length > 0, `${program.name}'s line_info`);
      assert.ok(program.lineInfo.every((l) => l.fileName === "./tests/bpf/programs.bpf.c"));
      const func = object.btf!.types[program.funcInfo[0]!.typeId];
      assert.deepEqual([func?.kind, func?.name], ["func", program.name]);
    }
    assert.equal(
      new Set(object.programs.map((p) => p.instructions.buffer)).size,
      object.programs.length,
    );
  },
);

toolTest("maps: .maps definitions, map of maps, global data and .kconfig", CLANG_NEEDS, () => {
  const object = parsed();
  const maps = new Map(object.maps.map((m) => [m.name, m]));
  const spec = (name: string) => {
    const { contents: _, ...rest } = maps.get(name)!.spec;
    return rest;
  };
  assert.deepEqual(spec("counts"), {
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 128,
    flags: 1, // BPF_F_NO_PREALLOC
    name: "counts",
  });
  assert.deepEqual(spec("sized"), {
    type: "array",
    keySize: 4,
    valueSize: 16,
    maxEntries: 4,
    flags: 0x80,
    name: "sized",
  });
  assert.equal(maps.get("sized")?.btfKeyTypeId, 0);
  assert.equal(maps.get("sized")?.btfValueTypeId, 0);
  const flows = maps.get("flows_with_a_long_name")!;
  assert.equal(flows.spec.name, "flows_with_a_lo");
  assert.equal(flows.spec.keySize, 8); // struct flow_key with its padding
  const keyType = object.btf!.types[flows.btfKeyTypeId];
  assert.deepEqual([keyType?.kind, keyType?.name], ["struct", "flow_key"]);
  assert.equal(flows.pinning, "none");

  const outer = maps.get("outer")!;
  assert.equal(outer.spec.type, "array_of_maps");
  assert.equal(outer.spec.valueSize, 4);
  assert.deepEqual(outer.initialSlots, [{ index: 1, name: "inner_b" }]);
  assert.deepEqual(outer.inner?.spec, {
    type: "array",
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
    flags: 0,
    name: "outer.inner",
  });
  assert.equal(outer.btfValueTypeId, 0); // libbpf creates maps of maps without BTF

  const data = (name: string) => maps.get(name)!;
  assert.deepEqual(data(".data").data, u64(1000n)); // limit = 1000
  assert.deepEqual(data(".rodata").data, new Uint8Array([3, 0, 0, 0])); // sample_every = 3
  assert.deepEqual(data(".bss").data, new Uint8Array(16)); // total and calls
  assert.deepEqual(data(".data.extra").data, new Uint8Array([7, 0, 0, 0]));
  assert.deepEqual(data(".rodata.extra").data, new Uint8Array([2]));
  assert.equal(data(".rodata").spec.freeze, true);
  assert.equal(data(".rodata").spec.flags, 0x480); // BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
  assert.equal(data(".data").spec.freeze, false);
  assert.equal(data(".data").spec.name, "programs.data");
  const datasec = object.btf!.types[data(".data").btfValueTypeId];
  assert.deepEqual([datasec?.kind, datasec?.name], ["datasec", ".data"]);
  // Contents are read at creation: a .rodata constant set before then is what gets written.
  data(".rodata").data![0] = 9;
  assert.deepEqual([...data(".rodata").spec.contents!], [[
    new Uint8Array(4),
    new Uint8Array([9, 0, 0, 0]),
  ]]);

  assert.deepEqual(object.externs.map((e) => [e.name, e.kind, e.weak, e.offset, e.size]), [
    ["LINUX_KERNEL_VERSION", "kconfig", false, 0, 4],
    ["CONFIG_BPF_SYSCALL", "kconfig", true, 4, 1],
  ]);
  assert.equal(maps.get(".kconfig")?.spec.valueSize, 5);
});

toolTest("pinning by name is read from the definition", CLANG_NEEDS, () => {
  const flows = parsed(["PIN_BY_NAME"]).maps.find((m) => m.name === "flows_with_a_long_name");
  assert.equal(flows?.pinning, "byName");
});

kernelToolTest("the maps and program types are the ones libbpf creates and loads", () => {
  const bpffs = freshBpffs("bpfmap-object-");
  try {
    withProgramsObject([], (path, bytes) => {
      const object = parseObject(bytes, { name: "programs" });
      execFileSync("bpftool", [
        "prog",
        "loadall",
        path,
        `${bpffs.path}/progs`,
        "pinmaps",
        `${bpffs.path}/maps`,
      ]);
      const show = (kind: string, pin: string) =>
        JSON.parse(
          execFileSync("bpftool", ["-j", kind, "show", "pinned", pin], { encoding: "utf8" }),
        );
      assert.deepEqual(
        readdirSync(`${bpffs.path}/progs`).sort(),
        object.programs.map((p) => p.name).sort(),
      );
      for (const program of object.programs) {
        const info = show("prog", `${bpffs.path}/progs/${program.name}`);
        assert.equal(info.type, progTypeName(program.type!.programType), program.name);
      }
      const pinned = readdirSync(`${bpffs.path}/maps`).sort();
      // libbpf pins a .maps map under its whole name, a data map under its map name, "." as "_".
      const pinName = (m: ObjectMap) =>
        (m.kind === "btf" ? m.name : m.spec.name!).replaceAll(".", "_");
      assert.deepEqual(pinned, object.maps.map(pinName).sort());
      for (const map of object.maps) {
        const info = show("map", `${bpffs.path}/maps/${pinName(map)}`);
        const expected = {
          name: map.spec.name,
          type: map.spec.type,
          bytes_key: map.spec.keySize,
          bytes_value: map.spec.valueSize,
          max_entries: map.spec.maxEntries,
          flags: map.spec.flags,
          frozen: map.spec.freeze ? 1 : 0,
          btf: map.btfKeyTypeId !== 0 || map.btfValueTypeId !== 0,
        };
        assert.deepEqual(
          {
            name: info.name,
            type: info.type,
            bytes_key: info.bytes_key,
            bytes_value: info.bytes_value,
            max_entries: info.max_entries,
            flags: info.flags,
            frozen: info.frozen,
            btf: info.btf_id !== undefined,
          },
          expected,
          map.name,
        );
      }
    });
  } finally {
    bpffs.unmount();
  }
});

test("libbpf's section names: exact, type+ and first match", () => {
  const type = (name: string) => {
    const section = programSection(name);
    return section && [progTypeName(section.programType), section.expectedAttachType];
  };
  assert.deepEqual(type("socket"), ["socket_filter", 0]);
  assert.deepEqual(type("classifier"), ["sched_cls", 0]);
  assert.deepEqual(type("tcx/ingress"), ["sched_cls", 46]);
  assert.deepEqual(type("tp/sched/sched_switch"), ["tracepoint", 0]);
  assert.deepEqual(type("raw_tracepoint/sched_switch"), ["raw_tracepoint", 0]);
  assert.deepEqual(type("ksyscall/openat"), ["kprobe", 0]);
  assert.deepEqual(type("uprobe//bin/bash:readline"), ["kprobe", 0]);
  assert.deepEqual(type("fentry/tcp_connect"), ["tracing", 24]);
  assert.deepEqual(type("fexit/tcp_connect"), ["tracing", 25]);
  assert.deepEqual(type("lsm/file_open"), ["lsm", 27]);
  assert.deepEqual(type("lsm.s/file_open"), ["lsm", 27]);
  assert.deepEqual(type("iter/task"), ["tracing", 28]);
  assert.deepEqual(type("cgroup/connect4"), ["cgroup_sock_addr", 10]);
  assert.deepEqual(type("cgroup/dev"), ["cgroup_device", 6]);
  assert.deepEqual(type("cgroup_skb/egress"), ["cgroup_skb", 1]);
  assert.deepEqual(type("xdp.frags"), ["xdp", 37]);
  assert.deepEqual(type("xdp/devmap"), ["xdp", 33]);
  assert.deepEqual(type("syscall"), ["syscall", 0]);
  assert.equal(programSection("syscall")?.def.sleepable, true);
  assert.equal(programSection("fentry.s/x")?.def.sleepable, true);
  assert.deepEqual(programSection("uretprobe/usr/lib/libc.so.6:malloc")?.target, {
    kind: "uprobe",
    path: "usr/lib/libc.so.6",
    function: "malloc",
    retprobe: true,
  });
  assert.deepEqual(programSection("lsm/file_open")?.target, { kind: "btf", name: "file_open" });
  // Exact rows take no extras; "type+" rows need "/" after the type.
  for (const name of ["socket/x", "syscall/x", "kprobex", "tracepoints/x", "cgroup/unknown", ""]) {
    assert.equal(programSection(name), undefined, name);
  }
});

test("what is not a BPF ELF64 little-endian object is refused by name", () => {
  const header = (bytes: number[]) => {
    const file = new Uint8Array(64);
    file.set(bytes);
    return file;
  };
  const refuses = (bytes: Uint8Array, message: RegExp) =>
    assert.throws(() => parseObject(bytes), (error: unknown) => {
      assert.ok(error instanceof ObjectFormatError, String(error));
      assert.match(error.message, message);
      return true;
    });
  refuses(new Uint8Array(0), /^at offset 0x0: not an ELF file/);
  refuses(new TextEncoder().encode("#!/bin/sh\necho not an object\n"), /not an ELF file/);
  refuses(
    header([0x7f, 0x45, 0x4c, 0x46, 1, 1]),
    /not ELF64 little-endian \(EI_CLASS 1, EI_DATA 1/,
  );
  refuses(
    header([0x7f, 0x45, 0x4c, 0x46, 2, 2]),
    /not ELF64 little-endian \(EI_CLASS 2, EI_DATA 2/,
  );
  const x86 = header([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  x86[16] = 1; // ET_REL
  x86[18] = 62; // EM_X86_64
  refuses(x86, /^at offset 0x12: not a BPF object \(e_machine 62/);
  const executable = header([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  executable[16] = 2; // ET_EXEC
  executable[18] = 247;
  refuses(executable, /not a relocatable object \(e_type 2/);
  assert.throws(() => parseObject("\x7fELF" as unknown as Uint8Array), {
    name: "TypeError",
    message: /^bytes must be a Uint8Array, got "/,
  });
});

toolTest("a gcc-built x86 object is refused: not a BPF object", { commands: ["gcc"] }, () => {
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-object-"));
  try {
    execFileSync("gcc", ["-c", "-x", "c", "-", "-o", `${folder}/x.o`], { input: "int x;" });
    assert.throws(() => parseObject(new Uint8Array(readFileSync(`${folder}/x.o`))), {
      name: "ObjectFormatError",
      message: /not a BPF object \(e_machine 62, BPF is 247\)/,
    });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

const SMALL = `
  struct { int (*type)[1]; int (*max_entries)[4]; unsigned *key; unsigned long *value; }
    hits __attribute__((section(".maps"), used));
  extern int LINUX_KERNEL_VERSION __attribute__((section(".kconfig"), weak));
  int limit = 3;
  static __attribute__((noinline)) int twice(int x) { return 2 * x; }
  __attribute__((section("xdp"), used)) int pass(void *ctx) {
    unsigned key = 0;
    void *(*lookup)(void *, const void *) = (void *)1;
    return lookup(&hits, &key) && twice(limit) > LINUX_KERNEL_VERSION ? 2 : 1;
  }
  char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;

/** Parses `bytes`: anything but success or an ObjectFormatError fails the test. */
function parsesOrRefuses(bytes: Uint8Array, what: string): "parsed" | "refused" {
  try {
    parseObject(bytes);
    return "parsed";
  } catch (error) {
    if (error instanceof ObjectFormatError) return "refused";
    throw new Error(`${what}: ${String(error)}`, { cause: error });
  }
}

toolTest("an object truncated at any offset is an ObjectFormatError", CLANG_NEEDS, () => {
  const bytes = compileText(SMALL);
  const whole = parseObject(bytes);
  assert.deepEqual(whole.programs.map((p) => p.relocations.map((r) => r.kind)), [
    ["map", "data", "call", "extern"],
  ]);
  let refused = 0;
  for (let length = 0; length < bytes.byteLength; length++) {
    assert.equal(
      parsesOrRefuses(bytes.subarray(0, length), `cut at ${length}`),
      "refused",
      `cut at ${length}`,
    );
    refused++;
  }
  assert.equal(refused, bytes.byteLength);
});

toolTest(
  "corrupted objects parse or are an ObjectFormatError, never anything else",
  CLANG_NEEDS,
  () => {
    const bytes = compileText(SMALL);
    let seed = 0x9e3779b9;
    const random = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const outcomes = { parsed: 0, refused: 0 };
    for (let round = 0; round < 3000; round++) {
      const copy = bytes.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let i = 0; i < flips; i++) {
        const at = Math.floor(random() * copy.byteLength);
        // Half the time a small change, half a wild one: both find different bugs.
        copy[at] = random() < 0.5
          ? copy[at]! ^ (1 << Math.floor(random() * 8))
          : Math.floor(random() * 256);
      }
      outcomes[parsesOrRefuses(copy, `round ${round}`)]++;
    }
    // Both outcomes happen: the corruptions reach the tables, and most bytes are not tables.
    assert.ok(outcomes.refused > 100, JSON.stringify(outcomes));
    assert.ok(outcomes.parsed > 100, JSON.stringify(outcomes));
  },
);
