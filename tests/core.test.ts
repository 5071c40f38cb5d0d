// CO-RE (issue 14, part 2): tests/bpf/core.bpf.c, compiled against tests/bpf/core_layouts.h (layouts
// that are not the kernel's), relocated against this kernel's BTF. The pure tests check every
// patched instruction against what bpftool's raw dump of /sys/kernel/btf/vmlinux says (offsets,
// sizes, bits, ids, enumerator values: read by another route than the resolver's); the live test
// loads and test-runs the programs, which report what they read next to what helpers say.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { kernelBtf, MODULES_PATH, TargetBtf } from "../btf/kernel_btf.ts";
import { type BtfType, encodeBtf, parseSplitBtf } from "../btf/types.ts";
import { forwardingBackend } from "../ffi/backend.ts";
import { errnoNumber } from "../ffi/errno.ts";
import { Kernel } from "../ffi/kernel.ts";
import { fileError } from "../ffi/libc.ts";
import { readEnv } from "../ffi/live.ts";
import { CORE_RELO_KINDS } from "../object/btf_ext.ts";
import { applyCoreRelocations, CORE_POISON, CoreRelocationError } from "../object/core.ts";
import { parseObject } from "../object/object.ts";
import type { ObjectProgram } from "../object/programs.ts";
import { BpfObject } from "../programs/object_loader.ts";
import { TRANSCRIPT_ENV } from "../replay/system.ts";
import { liveTest, replayRun } from "./helpers/live.ts";
import { buildObject, CLANG_NEEDS, compileText } from "./helpers/object_build.ts";
import { toolTest } from "./helpers/tools.ts";
import { FIXTURES, transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const OBJECT_FIXTURE = join(FIXTURES, "core.test.ts", "core.bpf.o");
const mode = readEnv(TRANSCRIPT_ENV);

const VMLINUX = "/sys/kernel/btf/vmlinux";
const NEEDS = {
  commands: [...CLANG_NEEDS.commands, "bpftool"],
  paths: CLANG_NEEDS.paths,
};

let built: Uint8Array | undefined;
/** tests/bpf/core.bpf.c as clang builds it. */
function coreObject(): Uint8Array {
  if (built !== undefined) return built;
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-core-"));
  try {
    return built = new Uint8Array(readFileSync(buildObject("core.bpf.c", folder)));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * The object the transcripts were recorded with: the fixture where the run
 * replays (no clang needed), else clang's build, written as the fixture when
 * recording and checked against it when verifying.
 */
function objectFixture(): Uint8Array {
  if (replayRun || (mode === undefined && existsSync(OBJECT_FIXTURE))) {
    return new Uint8Array(readFileSync(OBJECT_FIXTURE));
  }
  if (mode === "verify") {
    assert.deepEqual(
      coreObject(),
      new Uint8Array(readFileSync(OBJECT_FIXTURE)),
      "clang's build differs",
    );
  } else {
    mkdirSync(dirname(OBJECT_FIXTURE), { recursive: true });
    writeFileSync(OBJECT_FIXTURE, coreObject());
  }
  return coreObject();
}

/** A type of bpftool's raw dump: its id, kind, name, size and members or enumerators. */
interface RawType {
  id: number;
  kind: string;
  name: string;
  size: number;
  members: Map<string, { bits: number; bitfield: number }>;
  /** Anonymous members (an embedded union or struct): their type's id and bit offset. */
  anonymous: { type: number; bits: number }[];
  values: Map<string, bigint>;
}

let dump: string | undefined;
/**
 * The types named `name` in `bpftool btf dump file /sys/kernel/btf/vmlinux
 * format raw` (of `kind`, if given), read from the lines of each.
 */
function bpftoolTypes(name: string, kind = "\\w+", id = "\\d+"): RawType[] {
  dump ??= execFileSync("bpftool", ["btf", "dump", "file", VMLINUX, "format", "raw"], {
    encoding: "utf8",
    maxBuffer: 1 << 30,
  });
  const found: RawType[] = [];
  const head = new RegExp(`^\\[(${id})\\] (${kind}) '${name}'(?:.* size=(\\d+))?`, "gm");
  for (const match of dump.matchAll(head)) {
    const type: RawType = {
      id: Number(match[1]),
      kind: match[2]!,
      name: match[0].split("'")[1]!,
      size: Number(match[3] ?? 0),
      members: new Map(),
      anonymous: [],
      values: new Map(),
    };
    const end = dump.indexOf("\n[", match.index);
    for (const line of dump.slice(match.index, end < 0 ? undefined : end).split("\n").slice(1)) {
      const member = /^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?/
        .exec(line);
      if (member?.[1] === "(anon)") {
        type.anonymous.push({ type: Number(member[2]), bits: Number(member[3]) });
      } else if (member !== null) {
        type.members.set(member[1]!, { bits: Number(member[3]), bitfield: Number(member[4] ?? 0) });
      }
      const value = /^\t'([^']*)' val=(-?\d+)/.exec(line);
      if (value !== null) type.values.set(value[1]!, BigInt(value[2]!));
    }
    found.push(type);
  }
  return found;
}

/** The one struct (or enum) of this name in vmlinux, as bpftool prints it. */
function bpftoolType(name: string, kind: string): RawType {
  const found = bpftoolTypes(name, kind);
  assert.equal(found.length, 1, `${kind} ${name} in vmlinux`);
  return found[0]!;
}

/** The bit offset of `field` in `type`, looked for in its anonymous members too, as C finds it. */
function bpftoolBits(type: RawType, field: string): number | undefined {
  const own = type.members.get(field);
  if (own !== undefined) return own.bits;
  for (const { type: id, bits } of type.anonymous) {
    const inner = bpftoolTypes("[^']*", "\\w+", String(id))[0]!;
    const found = bpftoolBits(inner, field);
    if (found !== undefined) return bits + found;
  }
  return undefined;
}

let target: TargetBtf | undefined;
// Read by cat: Deno wants --allow-all to read a file of /sys itself.
const vmlinux = () =>
  target ??= TargetBtf.fromBlobs(
    new Uint8Array(execFileSync("cat", [VMLINUX], { maxBuffer: 1 << 30 })),
  );

/** One relocated instruction: its code, offset and immediate (64 bits for ld_imm64). */
interface Patched {
  code: number;
  off: number;
  imm: bigint;
}

/**
 * The instructions of `name` that the relocations of `kind` on access
 * `access` of the type named `root` patch, after relocation.
 */
function patched(
  programs: readonly ObjectProgram[],
  original: readonly ObjectProgram[],
  name: string,
  kind: (typeof CORE_RELO_KINDS)[number],
  root: string,
  access: string,
): Patched[] {
  const index = original.findIndex((p) => p.name === name);
  const before = original[index]!;
  const after = programs[index]!;
  const types = parseObject(coreObject()).btf!.types;
  const found = before.coreRelocations.filter((r) =>
    r.kindName === kind && r.access === access && types[r.typeId]!.name === root
  );
  assert.ok(found.length > 0, `${name} has a ${kind} relocation of ${root} ${access}`);
  return found.map((r) => instruction(after, r.insn));
}

/** Instruction `insn` of `program`: its code, offset and immediate. */
function instruction(program: ObjectProgram, insn: number): Patched {
  const view = new DataView(
    program.instructions.buffer,
    program.instructions.byteOffset + insn * 8,
  );
  const code = view.getUint8(0);
  const imm = code === 0x18
    ? BigInt(view.getUint32(4, true)) | (BigInt(view.getUint32(12, true)) << 32n)
    : BigInt(view.getInt32(4, true));
  return { code, off: view.getInt16(2, true), imm };
}

/** The relocated object, and a reader of its patched instructions. */
function relocated() {
  const object = parseObject(coreObject());
  const result = applyCoreRelocations(object, vmlinux());
  const at = (
    name: string,
    kind: (typeof CORE_RELO_KINDS)[number],
    root: string,
    access: string,
  ) =>
    patched(
      [...result.programs, ...result.subprograms],
      [...object.programs, ...object.subprograms],
      name,
      kind,
      root,
      access,
    );
  /** The value every instruction of the relocation holds now: an ALU or ld_imm64 immediate. */
  const imm = (...args: Parameters<typeof at>) => {
    const values = new Set(at(...args).map((p) => p.imm));
    assert.equal(values.size, 1, `one value for ${args.join(" ")}`);
    return [...values][0]!;
  };
  return { object, result, at, imm };
}

const BAD_RELO_CALL = { code: 0x85, off: 0, imm: BigInt(CORE_POISON) };

toolTest("field offsets, sizes and existence are the kernel's task_struct's", NEEDS, () => {
  const { imm, at } = relocated();
  const task = bpftoolType("task_struct", "STRUCT");
  const byte = (field: string) => BigInt(task.members.get(field)!.bits / 8);
  // task_struct___mine: tgid 0, pid 1, comm 2, not_in_any_kernel 3 (access 0:N).
  assert.equal(imm("read_task", "field_byte_offset", "task_struct___mine", "0:0"), byte("tgid"));
  assert.equal(imm("read_task", "field_byte_offset", "task_struct___mine", "0:1"), byte("pid"));
  assert.equal(imm("read_task", "field_byte_offset", "task_struct___mine", "0:2"), byte("comm"));
  assert.notEqual(byte("pid"), 4n); // where the local layout has it: relocation changed it
  assert.equal(imm("read_task", "field_byte_size", "task_struct___mine", "0:1"), 4n);
  assert.equal(imm("read_task", "field_exists", "task_struct___mine", "0:1"), 1n);
  assert.equal(imm("read_task", "field_exists", "task_struct___mine", "0:3"), 0n);
  // The guarded read of the missing field is poisoned, as libbpf does: dead code to the verifier.
  assert.deepEqual(at("read_task", "field_byte_offset", "task_struct___mine", "0:3"), [
    BAD_RELO_CALL,
  ]);
});

toolTest(
  "bitfields: byte offset, size, shifts and signedness from the kernel's bits",
  NEEDS,
  () => {
    const { imm } = relocated();
    const task = bpftoolType("task_struct", "STRUCT");
    const bitfields: [string, string][] = [["0:6", "in_execve"], [
      "0:5",
      "init_private_fork_class",
    ]];
    for (const [access, field] of bitfields) {
      const { bits, bitfield } = task.members.get(field)!;
      assert.ok(bitfield > 0, `${field} is a bitfield`);
      // The kernel's field is an unsigned int: an aligned 4-byte load holds it.
      const byteOffset = Math.floor(bits / 32) * 4;
      const of = (kind: (typeof CORE_RELO_KINDS)[number]) =>
        imm("read_task", kind, "task_struct___mine", access);
      assert.equal(of("field_byte_offset"), BigInt(byteOffset), field);
      assert.equal(of("field_byte_size"), 4n, field);
      assert.equal(of("field_lshift_u64"), BigInt(64 - (bits + bitfield - byteOffset * 8)), field);
      assert.equal(of("field_rshift_u64"), BigInt(64 - bitfield), field);
      assert.equal(of("field_signed"), 0n, field);
    }
    assert.equal(imm("read_task", "field_signed", "task_struct___mine", "0:1"), 1n); // int pid
    assert.equal(imm("read_task", "field_signed", "task_struct___mine", "0:4"), 0n); // in_iowait
  },
);

toolTest("members of anonymous unions and structs, and array elements, are found", NEEDS, () => {
  const { imm } = relocated();
  const skb = bpftoolType("sk_buff", "STRUCT");
  assert.equal(skb.members.has("next"), false); // next is in an anonymous member
  const next = bpftoolBits(skb, "next")!;
  assert.equal(imm("read_task", "field_byte_offset", "sk_buff___mine", "0:1"), BigInt(next / 8));
  const len = bpftoolBits(skb, "len")!;
  assert.notEqual(len, 0);
  assert.equal(imm("read_task", "field_byte_offset", "sk_buff___mine", "0:0"), BigInt(len / 8));
  const comm = bpftoolType("task_struct", "STRUCT").members.get("comm")!.bits / 8;
  assert.equal(
    imm("read_task", "field_byte_offset", "task_struct___mine", "0:2:3"),
    BigInt(comm + 3),
  );
});

toolTest("type ids, existence and sizes are the kernel's; flavors are ignored", NEEDS, () => {
  const { imm } = relocated();
  const task = bpftoolType("task_struct", "STRUCT");
  assert.equal(imm("read_task", "type_id_target", "task_struct___mine", "0"), BigInt(task.id));
  assert.equal(imm("read_task", "type_size", "task_struct___mine", "0"), BigInt(task.size));
  assert.equal(imm("read_task", "type_exists", "task_struct___mine", "0"), 1n);
  assert.equal(imm("read_task", "type_exists", "list_head___mine", "0"), 1n);
  assert.equal(bpftoolTypes("no_such_struct").length, 0);
  assert.equal(imm("read_task", "type_exists", "no_such_struct___mine", "0"), 0n);
});

toolTest(
  "type matches: list_head___mine matches the kernel's, a renamed member does not",
  NEEDS,
  () => {
    // clang 14 cannot emit bpf_core_type_matches: the existence relocations of both list_heads are
    // made match relocations (the instruction, a move of 1, is the same).
    const object = parseObject(coreObject());
    const types = object.btf!.types;
    const matches = CORE_RELO_KINDS.indexOf("type_matches");
    const asMatch = {
      ...object,
      programs: object.programs.map((p) => ({
        ...p,
        coreRelocations: p.coreRelocations.map((r) =>
          types[r.typeId]!.name.startsWith("list_head___")
            ? { ...r, kind: matches, kindName: "type_matches" as const }
            : r
        ),
      })),
    };
    const result = applyCoreRelocations(asMatch, vmlinux());
    const at = (root: string) =>
      patched(result.programs, asMatch.programs, "read_task", "type_matches", root, "0")[0]!.imm;
    assert.ok(bpftoolType("list_head", "STRUCT").members.has("prev"));
    assert.equal(at("list_head___mine"), 1n);
    assert.equal(at("list_head___mismatch"), 0n); // its "previous" is no member of list_head
  },
);

toolTest("enumerators: existence and the kernel's value, whatever the local one", NEEDS, () => {
  const { imm } = relocated();
  const ringbuf = bpftoolType("bpf_map_type", "ENUM").values.get("BPF_MAP_TYPE_RINGBUF")!;
  assert.notEqual(ringbuf, 1n); // the local value
  assert.equal(imm("read_task", "enumval_value", "bpf_map_type___mine", "0"), ringbuf);
  assert.equal(imm("read_task", "enumval_exists", "bpf_map_type___mine", "0"), 1n);
  assert.equal(imm("read_task", "enumval_exists", "bpf_map_type___mine", "1"), 0n);
});

toolTest("context loads through __sk_buff___mine get __sk_buff's offsets", NEEDS, () => {
  const { at, imm } = relocated();
  const skb = bpftoolType("__sk_buff", "STRUCT");
  const off = (access: string) =>
    at("read_skb", "field_byte_offset", "__sk_buff___mine", access).map((p) => p.off);
  // __sk_buff___mine: mark 0, not_in_any_kernel 1, protocol 2, len 3.
  assert.deepEqual(off("0:0"), [skb.members.get("mark")!.bits / 8]);
  assert.deepEqual(off("0:2"), [skb.members.get("protocol")!.bits / 8]);
  assert.deepEqual(off("0:3"), [skb.members.get("len")!.bits / 8]);
  // The .text subprogram's load too, before the loader appends it to read_skb.
  assert.deepEqual(
    at("length_of", "field_byte_offset", "__sk_buff___mine", "0:3").map((p) => p.off),
    [skb.members.get("len")!.bits / 8],
  );
  assert.equal(imm("read_skb", "field_exists", "__sk_buff___mine", "0:1"), 0n);
  assert.deepEqual(at("read_skb", "field_byte_offset", "__sk_buff___mine", "0:1"), [
    BAD_RELO_CALL,
  ]);
});

toolTest("the input object is not modified, and the relocated one shares no bytes", NEEDS, () => {
  const { object, result } = relocated();
  const again = parseObject(coreObject());
  object.programs.forEach((p, i) => {
    assert.deepEqual(p.instructions, again.programs[i]!.instructions);
    assert.notEqual(result.programs[i]!.instructions.buffer, p.instructions.buffer);
    assert.notDeepEqual(result.programs[i]!.instructions, p.instructions);
  });
});

toolTest("a record the instruction does not fit is a CoreRelocationError", NEEDS, () => {
  const object = parseObject(coreObject());
  // The pid offset relocation pointed at `exit`: no instruction libbpf relocates.
  const program = object.programs.find((p) => p.name === "read_skb")!;
  const last = program.instructions.byteLength / 8 - 1;
  const broken = {
    ...object,
    programs: [{
      ...program,
      coreRelocations: [{ ...program.coreRelocations[0]!, insn: last }],
    }],
  };
  assert.throws(() => applyCoreRelocations(broken, vmlinux()), (error) => {
    assert.ok(error instanceof CoreRelocationError);
    assert.equal(error.program, "read_skb");
    assert.equal(error.insn, last);
    assert.match(error.message, /instruction code 0x95 cannot be relocated/);
    return true;
  });
});

test("module BTF is split BTF: its ids and strings continue vmlinux's", () => {
  const base = encodeBtf([
    { kind: "int", name: "int", size: 4, bits: 32, bitOffset: 0, encoding: "signed" },
  ]);
  const module = encodeBtf([{
    kind: "struct",
    name: "nf_conn___x",
    size: 4,
    members: [{ name: "mark", type: 1, bitOffset: 0, bitSize: 0 }],
  }]);
  // Split BTF counts string offsets from the end of the base's strings ("\0int\0", 5 bytes): the
  // struct's and its member's names, at bytes 24 and 36 of the blob, move up by 5.
  const view = new DataView(module.buffer);
  for (const at of [24, 36]) view.setUint32(at, view.getUint32(at, true) + 5, true);
  const types = parseSplitBtf(module, base);
  assert.deepEqual(types.map((t) => t.name), ["", "int", "nf_conn___x"]);
  assert.deepEqual(types[2], {
    kind: "struct",
    name: "nf_conn___x",
    size: 4,
    members: [{ name: "mark", type: 1, bitOffset: 0, bitSize: 0 }], // type 1: vmlinux's int
  });
  let reads = 0;
  const target = TargetBtf.fromBlobs(base, () => (reads++, { nf_conntrack: module }));
  // Not in vmlinux: looked for in the module, by essential name, with the module's id.
  const found = target.candidates("nf_conn", (t) => t.kind === "struct");
  assert.deepEqual(found.map((c) => [c.btf.name, c.id]), [["nf_conntrack", 2]]);
  assert.equal(target.candidates("int", (t) => t.kind === "int")[0]?.btf.name, "vmlinux");
  assert.equal(reads, 1);
});

const u32: BtfType = {
  kind: "int",
  name: "unsigned int",
  size: 4,
  bits: 32,
  bitOffset: 0,
  encoding: "unsigned",
};
const field = (name: string, type: number, bitOffset: number) => ({
  name,
  type,
  bitOffset,
  bitSize: 0,
});
const array = (type: number, length: number): BtfType => ({
  kind: "array",
  name: "",
  type,
  indexType: 1,
  length,
});
const LDX_W = 0x61;
const LDX_DW = 0x79;

/**
 * The one program of a clang build reading `struct s { unsigned a[2]; unsigned m[2][3]; }`
 * (`*p->a`, access 0:0; `*p->m[1]`, 0:1:1; `p->a[1]`, 0:0:1; the sizes of `p->a` and `p->m[1]`),
 * relocated against a kernel BTF of `kernel`'s types: its instruction of a relocation.
 */
function arrayReads(kernel: readonly BtfType[]) {
  const object = parseObject(compileText(`
    struct s { unsigned a[2]; unsigned m[2][3]; } __attribute__((preserve_access_index));
    __attribute__((section("tp_btf/x"), used)) int read(struct s *p) {
      return *p->a + *p->m[1] + p->a[1] + __builtin_preserve_field_info(p->a, 1)
        + __builtin_preserve_field_info(p->m[1], 1);
    }`));
  const relocated = applyCoreRelocations(object, TargetBtf.fromBlobs(encodeBtf(kernel)));
  return (kind: (typeof CORE_RELO_KINDS)[number], access: string) => {
    const [found, ...more] = object.programs[0]!.coreRelocations.filter((r) =>
      r.kindName === kind && r.access === access
    );
    assert.ok(found !== undefined && more.length === 0, `one ${kind} relocation of ${access}`);
    return instruction(relocated.programs[0]!, found.insn);
  };
}

toolTest(
  "a load from an array field is relocated to a longer kernel array, not poisoned",
  CLANG_NEEDS,
  () => {
    // The kernel's struct s { unsigned x; unsigned a[4]; unsigned m[2][5]; }: a at 4, m at 20.
    const at = arrayReads([u32, array(1, 4), array(1, 5), array(3, 2), {
      kind: "struct",
      name: "s",
      size: 60,
      members: [field("x", 1, 0), field("a", 2, 32), field("m", 4, 160)],
    }]);
    // A load moves one element, 4 bytes in both: the arrays' lengths are no size change.
    assert.deepEqual(at("field_byte_offset", "0:0"), { code: LDX_W, off: 4, imm: 0n });
    assert.deepEqual(at("field_byte_offset", "0:1:1"), { code: LDX_W, off: 20 + 20, imm: 0n });
    assert.deepEqual(at("field_byte_offset", "0:0:1"), { code: LDX_W, off: 8, imm: 0n });
    // A size is the whole array's, as sizeof and libbpf say: 8 and 12 bytes in the object.
    assert.equal(at("field_byte_size", "0:0").imm, 16n);
    assert.equal(at("field_byte_size", "0:1:1").imm, 20n);
  },
);

toolTest(
  "wider kernel array elements: an element's load is widened, a whole array field's poisoned",
  CLANG_NEEDS,
  () => {
    // struct s { unsigned x; unsigned long a[4]; unsigned m[2][3]; }: a at 8, m at 40.
    const u64: BtfType = { ...u32, name: "long unsigned int", size: 8, bits: 64 };
    const at = arrayReads([u32, u64, array(2, 4), array(1, 3), array(4, 2), {
      kind: "struct",
      name: "s",
      size: 64,
      members: [field("x", 1, 0), field("a", 3, 64), field("m", 5, 320)],
    }]);
    // An unsigned element read wider is the same value (libbpf resizes it); the array field's
    // type is an array, which libbpf never resizes: it poisons the load.
    assert.deepEqual(at("field_byte_offset", "0:0:1"), { code: LDX_DW, off: 16, imm: 0n });
    assert.deepEqual(at("field_byte_offset", "0:0"), BAD_RELO_CALL);
    assert.deepEqual(at("field_byte_offset", "0:1:1"), { code: LDX_W, off: 40 + 12, imm: 0n });
    assert.equal(at("field_byte_size", "0:0").imm, 32n);
  },
);

liveTest("a socket filter reads the kernel's cb[0] through a local __sk_buff with cb[2]", () => {
  // The kernel's __sk_buff has cb[5]: unrelocated, the load reads len at offset 0.
  const source = `
    struct __sk_buff___two { unsigned int cb[2]; } __attribute__((preserve_access_index));
    __attribute__((section("socket"), used))
    int first_cb(struct __sk_buff___two *skb) { return *skb->cb; }
    char LICENSE[] __attribute__((section("license"), used)) = "GPL";`;
  using object = BpfObject.open(compileText(source), { name: "cb" }).load();
  const ctx = new Uint8Array(192);
  const view = new DataView(ctx.buffer);
  for (let i = 0; i < 5; i++) view.setUint32(48 + 4 * i, 0x1111 * (i + 1), true); // __sk_buff.cb
  const run = object.programs.get("first_cb")!.testRun({ data: new Uint8Array(64), ctx });
  assert.equal(run.retval, 0x1111);
});

/**
 * A kernel whose vmlinux BTF holds one int, whose other files are the text
 * of `files` or fail with its errno (ENOENT if not there), and which makes
 * no other call; and the paths it was asked to read.
 */
function kernelWithFiles(files: Record<string, string | number>) {
  const reads: string[] = [];
  const vmlinux = encodeBtf([u32]);
  const backend = Object.assign(
    forwardingBackend(() => assert.fail("a call other than readFile")),
    {
      readFile(path: string): Uint8Array {
        reads.push(path);
        if (path === "/sys/kernel/btf/vmlinux") return vmlinux;
        const file = files[path] ?? errnoNumber("ENOENT")!;
        if (typeof file === "number") throw fileError("open", path, file);
        return new TextEncoder().encode(file);
      },
    },
  );
  return { kernel: new Kernel(backend), reads };
}

test("module BTF: a missing file is skipped; one that cannot be read fails the relocation, named", () => {
  // The object's types are not in this vmlinux: every relocation looks in the modules.
  const object = parseObject(new Uint8Array(readFileSync(OBJECT_FIXTURE)));
  const relocate = (files: Record<string, string | number>) => {
    const { kernel, reads } = kernelWithFiles(files);
    return { result: applyCoreRelocations(object, kernelBtf(kernel)), reads };
  };
  const refused = (files: Record<string, string | number>, message: RegExp) =>
    assert.throws(() => relocate(files), (error) => {
      assert.ok(error instanceof CoreRelocationError, String(error));
      assert.match(error.message, message);
      return true;
    });
  const conntrack = "nf_conntrack 180224 1 - Live 0x0000000000000000\n";
  refused(
    { [MODULES_PATH]: errnoNumber("EACCES")! },
    /\/proc\/modules unreadable: bpfmap: cannot open \/proc\/modules: EACCES/,
  );
  refused(
    { [MODULES_PATH]: conntrack, "/sys/kernel/btf/nf_conntrack": errnoNumber("EIO")! },
    /\/sys\/kernel\/btf\/nf_conntrack unreadable: .* EIO/,
  );

  // Missing files: no modules, or a module without BTF. Nothing found, so poisoned, as libbpf.
  const noBtf = relocate({ [MODULES_PATH]: conntrack });
  assert.deepEqual(noBtf.reads, [
    "/sys/kernel/btf/vmlinux",
    MODULES_PATH,
    "/sys/kernel/btf/nf_conntrack",
  ]);
  const index = object.programs.findIndex((p) => p.name === "read_skb");
  const mark = object.programs[index]!.coreRelocations.find((r) =>
    r.kindName === "field_byte_offset" && r.access === "0:0"
  )!;
  for (const { result } of [noBtf, relocate({})]) {
    assert.deepEqual(instruction(result.programs[index]!, mark.insn), BAD_RELO_CALL);
  }
});

transcriptTest("the programs load and read the kernel's fields only because they are relocated", (
  sys,
) => {
  // BpfObject.load relocates them against the kernel's BTF (read through the backend: replayed).
  const object = sys.loadObject(objectFixture(), { name: "core" });
  /** The .bss u32 at `offset`: task_results at 0, skb_results at 104 (after it). */
  const bss = () => {
    const value = object.maps.get(".bss")!.lookup(new Uint8Array(4))!;
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    return (offset: number) => view.getUint32(offset, true);
  };

  object.programs.get("read_task")!.testRun();
  const task = bss();
  // What the program read through task_struct___mine equals what helpers say of the same task.
  assert.deepEqual([task(0), task(4), task(8), task(12)], [1, 1, 1, 1]); // pid, tgid, comm, comm set
  assert.deepEqual([task(16), task(20), task(24)], [1, 0, 4]); // pid exists, missing doesn't; size
  assert.deepEqual([task(28), task(32)], [1, 0]); // task_struct exists, no_such_struct doesn't
  assert.deepEqual([task(44), task(48)], [1, 0]); // RINGBUF is an enumerator, the other not
  assert.equal(task(72), 0xdead); // the guarded read of a missing field was poisoned, and dead
  assert.deepEqual([task(76), task(80)], [1, 0]); // pid is signed, in_iowait not

  // An IPv4 frame of 64 bytes, mark 0x1234 in the context.
  const frame = new Uint8Array(64);
  frame.set([0x08, 0x00], 12);
  const ctx = new Uint8Array(192);
  new DataView(ctx.buffer).setUint32(8, 0x1234, true); // __sk_buff.mark
  object.programs.get("read_skb")!.testRun({ data: frame, ctx });
  const skb = (offset: number) => bss()(104 + offset);
  assert.equal(skb(8), 0x1234); // mark through __sk_buff___mine
  assert.equal(skb(20), 0x1234); // and through __sk_buff
  assert.equal(skb(4), skb(16)); // protocol
  assert.equal(skb(4), 0x0008); // ETH_P_IP, in network order
  assert.equal(skb(0), skb(12)); // len
  assert.equal(skb(0), 50); // the 64-byte frame less its 14-byte Ethernet header
  assert.equal(skb(24), 0xdead);
  assert.equal(skb(28), skb(12)); // len, read by the subprogram
});
