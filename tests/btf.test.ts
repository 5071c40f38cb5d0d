// BTF: loading types and reading them back by id, the kernel's log when it
// refuses them, maps created with BTF from codecs or raw types, codecs built
// from a map's BTF, BPF_F_LOCK on spin-locked values (alone, in batches, and
// contended by two processes), and misuse refused before any syscall.

import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import {
  array,
  BPF_F_LOCK,
  BPF_F_ZERO_SEED,
  BpfError,
  BpfMap,
  Btf,
  BtfFormatError,
  btfOfCodecs,
  type BtfType,
  bytes,
  chars,
  codecOfType,
  decode,
  encode,
  encodeBtf,
  i16,
  i32,
  i64,
  ipv4,
  lpmKey,
  parseBtf,
  specOf,
  spinLock,
  struct,
  u16be,
  u32,
  u64,
} from "../mod.ts";
import { RICH_KEY, RICH_TYPES, RICH_VALUE, richValue } from "./helpers/btf_types.ts";
import { exited, spawnReady } from "./helpers/child.ts";
import { liveTest, tallyingKernel, thrown, throwsBpf } from "./helpers/live.ts";
import {
  affinity,
  contend,
  type Contention,
  cpusOf,
  KEYS,
  LOCKED_VALUE,
  pin,
  stopContention,
} from "./helpers/lock_contention.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** Asserts `fn` throws an instance of `type` with exactly this message. */
function throwsExactly(
  fn: () => unknown,
  type: new(...args: never[]) => Error,
  message: string,
): void {
  const error = thrown(fn);
  assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
  assert.equal(error.message, message);
}

const FLOW = struct({
  name: chars(8),
  addr: ipv4,
  port: u16be,
  deltas: array(i16, 3),
  total: u64,
  signed: i64,
  raw: bytes(3),
}, { name: "flow" });

test("BTF encodes and parses back to the same types", () => {
  const blob = encodeBtf(RICH_TYPES);
  assert.deepEqual(parseBtf(blob), [{ kind: "void", name: "" }, ...RICH_TYPES]);
  throwsExactly(() => parseBtf(new Uint8Array(30)), BtfFormatError, "not BTF: no 0xeB9F magic");
  throwsExactly(
    () => parseBtf(blob.subarray(0, blob.byteLength - 10)),
    BtfFormatError,
    `BTF sections overrun the ${blob.byteLength - 10}-byte blob`,
  );
});

test("an enum's kind_flag means signed, as libbpf and the kernel read it", () => {
  const enumOf = (signed: boolean): BtfType => ({
    kind: "enum",
    name: signed ? "s" : "u",
    size: 4,
    signed,
    values: [{ name: signed ? "MINUS_ONE" : "ALL_ONES", value: signed ? -1n : 0xffff_ffffn }],
  });
  for (const signed of [true, false]) {
    const blob = encodeBtf([enumOf(signed)]);
    // struct btf_type { name_off; info; size } right after the 24-byte header: bit 31 of info.
    const info = new DataView(blob.buffer, blob.byteOffset).getUint32(24 + 4, true);
    assert.equal(info >>> 31, signed ? 1 : 0);
    const types = parseBtf(blob);
    assert.deepEqual(types[1], enumOf(signed));
    assert.equal(codecOfType(types, 1), signed ? i32 : u32);
  }
});

transcriptTest("types load into the kernel and read back by id", (system) => {
  const btf = system.loadBtf(RICH_TYPES);
  assert.ok(btf.id > 0 && btf.fd > 0);
  assert.equal(btf.name, "");
  assert.deepEqual(btf.types, [{ kind: "void", name: "" }, ...RICH_TYPES]);
  const again = system.btfFromId(btf.id);
  assert.equal(again.id, btf.id);
  assert.deepEqual(again.types, btf.types);
  assert.equal(again.typeId("value", "struct"), RICH_VALUE);
  throwsExactly(() => again.typeId("nothing"), RangeError, "no BTF type named \"nothing\"");
  btf.close();
  assert.equal(btf.fd, -1);
  again.close();
  assert.equal(again.fd, -1);
});

transcriptTest("a refused BTF reports the kernel's errno and its log", (system) => {
  const bad: BtfType[] = [
    {
      kind: "struct",
      name: "broken",
      size: 4,
      members: [{ name: "v", type: 9, bitOffset: 0, bitSize: 0 }],
    },
  ];
  const error = thrown(() => system.loadBtf(bad));
  assert.ok(error instanceof BpfError);
  assert.equal(error.code, "EINVAL");
  assert.equal(error.op, "BPF_BTF_LOAD");
  // The whole log, as this kernel words it (replay and verify hold it to the fixture's).
  const member = "[1] STRUCT broken size=4 vlen=1\n\tv type_id=9 bits_offset=0";
  assert.equal(
    error.message,
    "BPF_BTF_LOAD failed: EINVAL (Invalid argument): 58 bytes of BTF; the kernel's log:\n"
      + "magic: 0xeb9f\nversion: 1\nflags: 0x0\nhdr_len: 24\ntype_off: 0\ntype_len: 24\n"
      + `str_off: 24\nstr_len: 10\nbtf_total_size: 58\n${member}\n${member} Invalid member`,
  );
});

transcriptTest("a map created from codecs has their BTF, and typed() reads it back", (system) => {
  const key = lpmKey(ipv4);
  using map = system.createMap(
    specOf({
      type: "lpm_trie",
      key,
      value: FLOW,
      maxEntries: 8,
      flags: 1,
      btf: true,
      name: "flows",
    }),
  );
  assert.ok(map.btfIds.btfId > 0);
  const value = {
    name: "eth0",
    addr: "10.1.2.3",
    port: 443,
    deltas: [-1, 2, -3],
    total: 1n << 60n,
    signed: -5n,
    raw: new Uint8Array([1, 2, 3]),
  };
  map.typed({ key, value: FLOW }).set({ prefixlen: 24, data: "10.1.2.0" }, value);
  const auto = map.typed();
  // ipv4 is u8[4] in C: BTF gives it back as numbers; the rest round-trips.
  assert.deepEqual([...auto.entries()], [[
    { prefixlen: 24, data: [10, 1, 2, 0] },
    { ...value, addr: [10, 1, 2, 3], raw: [1, 2, 3] },
  ]]);
  const btf = map.btf()!;
  assert.equal(btf.id, map.btfIds.btfId);
  assert.equal(btf.types[map.btfIds.valueTypeId]?.name, "flow");
  btf.close();
  using plain = system.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
  assert.equal(plain.btf(), undefined);
  throwsExactly(
    () => plain.typed(),
    TypeError,
    `typed: hash map (id ${plain.id}) has no BTF value type; pass codecs`,
  );
});

transcriptTest("a map created from raw BTF types decodes every field", (system) => {
  using map = system.createMap({
    type: "array",
    keySize: 4,
    valueSize: 96,
    maxEntries: 2,
    btf: { types: RICH_TYPES, keyTypeId: RICH_KEY, valueTypeId: RICH_VALUE },
  });
  map.update(encode(u32, 1), richValue(3));
  const typed = map.typed();
  assert.deepEqual(typed.get(1), {
    id: 3,
    name: "eth3",
    flag: true,
    c1: 68,
    c2: 7,
    port: 446,
    a: 3,
    b: -1,
    color: 1,
    other: 7,
    pair: { x: -3, y: 6 },
    hits: 12345678901234567890n,
    p: 0xdeadbeefn * 3n,
    u: { i: 0x41424344, c: "DCBA" },
    arr: [-5, 6],
    neg: -27n,
    big: (2n << 64n) + 3n,
  });
  // Writing through BTF-built codecs gives the kernel the same bytes back (bitfields included).
  typed.set(0, typed.get(1)!);
  assert.deepEqual(map.lookup(encode(u32, 0)), richValue(3));
});

test("codecs described as BTF give back codecs with the same layout", () => {
  const { types, keyTypeId, valueTypeId } = btfOfCodecs(u32, FLOW);
  const all = parseBtf(encodeBtf(types));
  assert.equal(codecOfType(all, keyTypeId), u32);
  const codec = codecOfType(all, valueTypeId);
  assert.equal(codec.size, FLOW.size);
  const value = {
    name: "lo",
    addr: "127.0.0.1",
    port: 53,
    deltas: [1, 2, 3],
    total: 7n,
    signed: -1n,
    raw: new Uint8Array(3),
  };
  // Field by field, not just the same bytes back: bytes(size) would give those too.
  const decoded = decode(codec, encode(FLOW, value));
  assert.deepEqual(decoded, { ...value, addr: [127, 0, 0, 1], raw: [0, 0, 0] });
  assert.deepEqual(encode(codec, decoded), encode(FLOW, value));
  assert.equal((all[valueTypeId] as { name: string }).name, "flow");
  // __be16 survives as a typedef, so the codec reads network order.
  assert.equal(codecOfType(all, all.findIndex((t) => t.name === "__be16")), u16be);
  throwsExactly(
    () => btfOfCodecs(u32, { name: "x", size: 1, align: 1, read: () => 0, write() {} }),
    TypeError,
    "codec x has no C shape to describe as BTF",
  );
});

transcriptTest(
  "BPF_F_LOCK reads and writes a spin-locked value, one by one and in batches",
  (system) => {
    const value = struct({ lock: spinLock, packets: u64, bytes: u64 });
    using map = system.createMap(
      specOf({ type: "hash", key: u32, value, maxEntries: 8, flags: BPF_F_ZERO_SEED, btf: true }),
    );
    const typed = map.typed({ key: u32, value });
    typed.set(1, { packets: 1n, bytes: 100n }, BPF_F_LOCK);
    assert.deepEqual(typed.get(1, BPF_F_LOCK), { packets: 1n, bytes: 100n });
    // The kernel never copies the lock word from user space, and hands it back zeroed.
    const raw = new Uint8Array(24).fill(0xff);
    map.update(encode(u32, 2), raw, BPF_F_LOCK);
    assert.deepEqual(
      map.lookup(encode(u32, 2), BPF_F_LOCK),
      new Uint8Array([0, 0, 0, 0, ...raw.subarray(4)]),
    );
    assert.equal(
      typed.setMany([[3, { packets: 3n, bytes: 300n }], [4, { packets: 4n, bytes: 400n }]], {
        elemFlags: BPF_F_LOCK,
      }),
      2,
    );
    const all = (1n << 64n) - 1n; // key 2's 0xff bytes, lock aside
    assert.deepEqual(
      [...typed.entries({ elemFlags: BPF_F_LOCK })].sort(([a], [b]) => a - b),
      [
        [1, { packets: 1n, bytes: 100n }],
        [2, { packets: all, bytes: all }],
        [3, { packets: 3n, bytes: 300n }],
        [4, { packets: 4n, bytes: 400n }],
      ],
    );
    // A map whose value has no spin lock refuses the flag; one that has a lock cannot be frozen.
    using plain = system.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 1 });
    throwsBpf(() => plain.update(encode(u32, 1), new Uint8Array(8), BPF_F_LOCK), "EINVAL");
    throwsBpf(() => map.freeze(), "ENOTSUPP", "BPF_MAP_FREEZE");
  },
);

transcriptTest("BTF misuse is refused before any syscall", (system) => {
  const { kernel, calls } = tallyingKernel(system.kernel.backend);
  const cases: [() => unknown, new(...args: never[]) => Error, string][] = [
    [() => Btf.load("int" as never, {}, kernel), TypeError, "types must be an array, got \"int\""],
    [
      () => Btf.load([], { logLevel: 9 }, kernel),
      RangeError,
      "opts.logLevel must be between 0 and 7, got 9",
    ],
    [() => Btf.fromId(0, kernel), RangeError, "id must be between 1 and 4294967295, got 0"],
    [
      () => Btf.load([{ kind: "void", name: "" }], {}, kernel),
      BtfFormatError,
      "void is type 0 and is not encoded",
    ],
    [
      () =>
        BpfMap.create(
          { type: "hash", keySize: 4, valueSize: 4, maxEntries: 1, btf: {} as never },
          kernel,
        ),
      TypeError,
      "spec.btf must be { types, keyTypeId, valueTypeId } or { btf, ... }, got Object",
    ],
    [
      () =>
        BpfMap.create({
          type: "hash",
          keySize: 4,
          valueSize: 4,
          maxEntries: 1,
          btf: { types: [], keyTypeId: 0, valueTypeId: 0 },
        }, kernel),
      RangeError,
      "spec.btf.valueTypeId must be between 1 and 4294967295, got 0",
    ],
    [
      () =>
        BpfMap.create({
          type: "hash",
          keySize: 4,
          valueSize: 4,
          maxEntries: 1,
          btf: { btf: 3 } as never,
        }, kernel),
      TypeError,
      "spec.btf.btf must be a Btf, got number 3",
    ],
  ];
  for (const [fn, type, message] of cases) throwsExactly(fn, type, message);
  assert.equal(calls(), 0);
});

// Without the lock, reads must tear this many times before the locked run counts.
const TORN_GOAL = 20;
// With the lock, each side must read at least this many of the other side's writes, none torn
// (without it, 1 in 2 to 1 in 26 such reads tore in 200 runs with both CPUs busy)...
const CONTENDED_GOAL = 2_000;
// ...and enough that, at the rate reads tore without the lock, this many would have torn.
const EXPECTED_TORN = 50;
// A safety cap on the parent's rounds, far above what either goal takes, so a broken
// contention fails with its counts instead of hanging.
const MAX_ROUNDS = 1_000_000;

/** Runs the contention loop here and in a child process until `until` holds or the cap. */
async function contendWithChild(
  locked: boolean,
  until: (mine: Contention, theirs: Contention) => boolean,
): Promise<{ mine: Contention; theirs: Contention }> {
  // An array map copies values in place: without the lock, a read can see half a write.
  using map = BpfMap.create(
    specOf({ type: "array", key: u32, value: LOCKED_VALUE, maxEntries: KEYS, btf: true }),
  );
  const script = new URL("./helpers/lock_writer.ts", import.meta.url).pathname;
  const mode = locked ? "locked" : "unlocked";
  // The child's cap is higher, so it is still writing when the parent reaches its own.
  const child = await spawnReady(script, [String(map.id), "2", mode, String(MAX_ROUNDS * 4)]);
  // Each side on a CPU of its own, so that whenever both run they run at once: left to the
  // scheduler with both CPUs busy, they often shared one and took turns, and 1,000,000 rounds
  // passed with 0.08% of reads finding the other side's write and none torn.
  const original = affinity(process.pid);
  const [parentCpu, childCpu] = cpusOf(original);
  try {
    assert.ok(
      childCpu !== undefined,
      `two writers at once need two CPUs; this process has ${original}`,
    );
    pin(child.pid!, String(childCpu));
    pin(process.pid, String(parentCpu));
    let output = "";
    child.stdout!.on("data", (chunk) => (output += String(chunk)));
    const { mine } = contend(map, { locked, tag: 1, until, maxRounds: MAX_ROUNDS });
    stopContention(map);
    assert.equal(await exited(child), 0);
    const theirs: Contention = JSON.parse(output.trim().split("\n").at(-1)!);
    assert.ok(
      until(mine, theirs),
      `${mode}: the goal was not reached in ${MAX_ROUNDS} rounds: ${
        JSON.stringify({ mine, theirs })
      }`,
    );
    return { mine, theirs };
  } finally {
    pin(process.pid, original);
    child.kill();
  }
}

liveTest("BPF_F_LOCK keeps a value whole while two processes write and read it", async () => {
  // First without the lock, until reads have torn: the same contention can tear.
  const unlocked = await contendWithChild(
    false,
    (mine, theirs) => mine.torn + theirs.torn >= TORN_GOAL,
  );
  const torn = unlocked.mine.torn + unlocked.theirs.torn;
  const contended = torn + unlocked.mine.sawOther + unlocked.theirs.sawOther;
  const goal = Math.max(CONTENDED_GOAL, Math.ceil((EXPECTED_TORN / 2) * (contended / torn)));
  // Then with it, until each side has read the other's writes that many times: none may tear.
  const locked = await contendWithChild(
    true,
    (mine, theirs) => mine.sawOther >= goal && theirs.sawOther >= goal,
  );
  assert.equal(
    locked.mine.torn + locked.theirs.torn,
    0,
    JSON.stringify({ unlocked, locked }),
  );
});
