// Codecs and typed maps: struct layouts identical to gcc's, round trips of
// every codec, and typed access on every kind of map, live and replayed.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  array,
  bool,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  bytes,
  type Codec,
  decode,
  encode,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  ipv4,
  ipv6,
  lpmKey,
  maxPerCpu,
  specOf,
  struct,
  sumPerCpu,
  u16,
  u16be,
  u32,
  u32be,
  u64,
  u8,
} from "../mod.ts";
import { toolTest } from "./helpers/tools.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

const zeros = (n: number) => Array<number>(n).fill(0);

// Structs to check against gcc, with their C declarations.
const STRUCTS: [string, Codec<unknown> & { offsets: Record<string, number> }, string][] = [
  [
    "flow",
    struct({ proto: u8, port: u16, addr: u32, bytes: u64 }),
    "__u8 proto; __u16 port; __u32 addr; __u64 bytes;",
  ],
  ["tail", struct({ count: u64, flag: u8 }), "__u64 count; __u8 flag;"],
  [
    "mixed",
    struct({ a: i8, b: f64, c: i16, d: bytes(3), e: f32 }),
    "__s8 a; double b; __s16 c; __u8 d[3]; float e;",
  ],
  [
    "nested",
    struct({ x: u8, inner: struct({ y: u32, z: u8 }), w: array(u16, 3) }),
    "__u8 x; struct { __u32 y; __u8 z; } inner; __u16 w[3];",
  ],
  [
    "boolish",
    struct({ on: bool, level: i32, addr: ipv6 }),
    "_Bool on; __s32 level; __u8 addr[16];",
  ],
];

toolTest("struct sizes and offsets are gcc's", { commands: ["cc"] }, () => {
  let program = "#include <stdio.h>\n#include <stddef.h>\n#include <linux/types.h>\n";
  for (const [name, , c] of STRUCTS) program += `struct ${name} { ${c} };\n`;
  program += "int main(void) {\n";
  for (const [name, codec] of STRUCTS) {
    program += `  printf("${name} %zu %zu", sizeof(struct ${name}), _Alignof(struct ${name}));\n`;
    for (const field of Object.keys(codec.offsets)) {
      program += `  printf(" %zu", offsetof(struct ${name}, ${field}));\n`;
    }
    program += `  printf("\\n");\n`;
  }
  program += "  return 0;\n}\n";
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-structs-"));
  try {
    writeFileSync(join(dir, "s.c"), program);
    execFileSync("cc", ["-o", join(dir, "s"), join(dir, "s.c")]);
    const lines = execFileSync(join(dir, "s"), { encoding: "utf8" }).trim().split("\n");
    STRUCTS.forEach(([name, codec], i) => {
      const ours = [name, codec.size, codec.align, ...Object.values(codec.offsets)].join(" ");
      assert.equal(ours, lines[i], `struct ${name}`);
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("every codec round-trips, in the byte order it promises", () => {
  const cases: [Codec<any>, unknown, number[]][] = [
    [u8, 200, [200]],
    [u16, 0x1234, [0x34, 0x12]],
    [u16be, 0x1234, [0x12, 0x34]],
    [u32, 0xdeadbeef, [0xef, 0xbe, 0xad, 0xde]],
    [u32be, 1, [0, 0, 0, 1]],
    [u64, 2n ** 64n - 1n, Array(8).fill(255)],
    [i8, -2, [0xfe]],
    [i16, -2, [0xfe, 0xff]],
    [i32, -1, [255, 255, 255, 255]],
    [i64, -1n, Array(8).fill(255)],
    [f64, 1.5, [0, 0, 0, 0, 0, 0, 0xf8, 0x3f]],
    [bool, true, [1]],
    [bytes(3), new Uint8Array([1, 2, 3]), [1, 2, 3]],
    [array(u16, 2), [1, 2], [1, 0, 2, 0]],
    [ipv4, "10.1.2.3", [10, 1, 2, 3]],
    [ipv6, "2001:db8::1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    [lpmKey(ipv4), { prefixlen: 24, data: "192.168.1.0" }, [24, 0, 0, 0, 192, 168, 1, 0]],
    [struct({ a: u8, b: u32 }), { a: 1, b: 2 }, [1, 0, 0, 0, 2, 0, 0, 0]],
    // Tail padding: the size rounds up to the alignment, as an array of them needs.
    [struct({ b: u32, a: u8 }), { b: 2, a: 1 }, [2, 0, 0, 0, 1, 0, 0, 0]],
    [struct({ n: u64, flag: bool }), { n: 3n, flag: true }, [
      3,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      ...zeros(7),
    ]],
  ];
  for (const [codec, value, expected] of cases) {
    assert.deepEqual([...encode(codec, value)], expected, codec.name);
    assert.deepEqual(decode(codec, encode(codec, value)), value, codec.name);
  }
  assert.equal(decode(ipv6, encode(ipv6, "::")), "::");
  assert.equal(decode(ipv6, encode(ipv6, "fe80:0:0:0:1:0:0:2")), "fe80::1:0:0:2");
  assert.throws(() => encode(ipv4, "10.1.2"), TypeError);
  assert.throws(() => encode(ipv6, "1::2::3"), TypeError);
  assert.throws(() => encode(bytes(2), new Uint8Array(3)), RangeError);
});

test("struct padding is written as zero, even over a buffer that held other bytes", () => {
  const inner = struct({ y: u32, z: u8 }); // 3 bytes of tail padding
  const codec = struct({ a: u8, b: u64, inner, c: u16 }); // 7 after a, 6 at the tail
  assert.deepEqual([codec.size, inner.size, codec.offsets.inner, codec.offsets.c], [32, 8, 16, 24]);
  const value = { a: 1, b: 2n, inner: { y: 3, z: 4 }, c: 5 };
  const expected = [1, ...zeros(7), 2, ...zeros(7), 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, ...zeros(6)];
  // Twice into one buffer, with junk before and after: what set() and setMany() write into.
  const buffer = new Uint8Array(2 + 2 * codec.size + 2).fill(0xee);
  codec.write(new DataView(buffer.buffer), 2, value);
  codec.write(new DataView(buffer.buffer), 2 + codec.size, value);
  assert.deepEqual([...buffer], [0xee, 0xee, ...expected, ...expected, 0xee, 0xee]);
  assert.deepEqual([...encode(codec, value)], expected);
});

transcriptTest("typed hash: get, set, has, delete, entries, setMany, deleteMany, drain", (sys) => {
  const flow = struct({ proto: u8, port: u16be });
  using map = sys.createMap(
    specOf({ type: "hash", key: flow, value: u64, maxEntries: 64, flags: BPF_F_ZERO_SEED }),
  );
  const typed = map.typed({ key: flow, value: u64 });
  typed.set({ proto: 6, port: 443 }, 10n);
  assert.equal(typed.get({ proto: 6, port: 443 }), 10n);
  assert.equal(typed.has({ proto: 17, port: 53 }), false);
  assert.equal(typed.setMany([[{ proto: 17, port: 53 }, 5n], [{ proto: 6, port: 22 }, 7n]]), 2);
  assert.deepEqual(typed.getMany([{ proto: 6, port: 22 }, { proto: 1, port: 0 }]), [7n, undefined]);
  const seen = new Map(
    [...typed.entries({ batchSize: 1 })].map(([k, v]) => [`${k.proto}/${k.port}`, v]),
  );
  assert.deepEqual(seen, new Map([["6/443", 10n], ["17/53", 5n], ["6/22", 7n]]));
  assert.equal(
    typed.deleteMany([{ proto: 6, port: 22 }, { proto: 9, port: 9 }, { proto: 17, port: 53 }]),
    2,
  );
  assert.deepEqual([...typed.keys()], [{ proto: 6, port: 443 }]);
  assert.equal(typed.delete({ proto: 6, port: 443 }), true);
  const twenty = Array.from(
    { length: 20 },
    (
      _,
      i,
    ): [{ proto: number; port: number }, bigint] => [{ proto: 6, port: i }, BigInt(i * 10 + 3)],
  );
  typed.setMany(twenty);
  const drained = typed.drain({ batchSize: 4 });
  assert.deepEqual(drained.sort(([a], [b]) => a.port - b.port), twenty);
  assert.equal(map.nextKey(), undefined);
  assert.throws(
    () => map.typed({ key: u64, value: u64 }),
    /key codec u64 is 8 bytes; the map's keys are 4/,
  );
});

transcriptTest("zero-copy batches: typed-array views of the kernel's buffers", (sys) => {
  using map = sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1000 });
  const typed = map.typed({ key: u32, value: u64 });
  typed.setMany(Array.from({ length: 1000 }, (_, i): [number, bigint] => [i, BigInt(i * 3)]));
  const counts: number[] = [];
  const elements: [number, bigint][] = [];
  let buffer: ArrayBufferLike | undefined;
  for (const batch of typed.batches({ size: 300 })) {
    const keys = batch.keyArray() as Uint32Array;
    const values = batch.valueArray() as BigUint64Array;
    assert.deepEqual([keys.length, values.length], [batch.count, batch.count]);
    buffer ??= values.buffer;
    assert.equal(values.buffer, buffer, "every batch reuses the same buffer");
    counts.push(batch.count);
    keys.forEach((key, i) => elements.push([key, values[i] ?? assert.fail(`no value ${i}`)]));
  }
  // The last batch, 100 elements, comes with the end of the walk.
  assert.deepEqual(counts, [300, 300, 300, 100]);
  assert.deepEqual(elements, Array.from({ length: 1000 }, (_, i) => [i, BigInt(i * 3)]));
});

transcriptTest(
  "per-CPU typed values: an array per CPU, sums and maxima without allocation",
  (sys) => {
    // 4-byte values: each CPU's slot is 8 bytes, so the per-CPU stride is not valueSize * cpus.
    using map = sys.createMap({ type: "percpu_array", keySize: 4, valueSize: 4, maxEntries: 5 });
    assert.throws(() => map.typed({ key: u32, value: u32 }), /use typedPerCpu/);
    const counters = map.typedPerCpu({ key: u32, value: u32 });
    const cpus = sys.possibleCpus();
    // Odd keys count up across CPUs and even keys down, so the maximum is on either end.
    const perCpu = (key: number) =>
      Array.from({ length: cpus }, (_, cpu) => key * 100 + 7 * (key % 2 ? cpu : cpus - 1 - cpu));
    const keys = [0, 1, 2, 3, 4];
    counters.setMany(keys.map((key) => [key, perCpu(key)]));
    assert.deepEqual(counters.get(1), perCpu(1));
    const seen: {
      count: number;
      keys: number[];
      slots: number[];
      sums: number[];
      maxima: number[];
    }[] = [];
    for (const batch of counters.batches({ size: 2 })) {
      const values = batch.valueArray() as Uint32Array;
      const indexes = Array.from({ length: batch.count }, (_, i) => i);
      indexes.forEach((i) => assert.deepEqual(batch.value(i), perCpu(batch.key(i))));
      seen.push({
        count: batch.count,
        keys: indexes.map((i) => batch.key(i)),
        slots: [...values],
        sums: indexes.map((i) => sumPerCpu(values, i, cpus, 4)),
        maxima: indexes.map((i) => maxPerCpu(values, i, cpus, 4)),
      });
    }
    // Each CPU's u32 sits in an 8-byte slot: the value, then 4 bytes of zero padding.
    const slots = (key: number) => perCpu(key).flatMap((value) => [value, 0]);
    const sum = (key: number) => perCpu(key).reduce((a, b) => a + b, 0);
    const max = (key: number) => Math.max(...perCpu(key));
    assert.deepEqual(
      seen,
      [[0, 1], [2, 3], [4]].map((batch) => ({
        count: batch.length,
        keys: batch,
        slots: batch.flatMap(slots),
        sums: batch.map(sum),
        maxima: batch.map(max),
      })),
    );
  },
);

transcriptTest("LPM trie with typed IPv4 prefixes", (sys) => {
  const key = lpmKey(ipv4);
  using map = sys.createMap(
    specOf({ type: "lpm_trie", key, value: u32, maxEntries: 8, flags: BPF_F_NO_PREALLOC }),
  );
  const routes = map.typed({ key, value: u32 });
  routes.set({ prefixlen: 8, data: "10.0.0.0" }, 1);
  routes.set({ prefixlen: 24, data: "10.1.2.0" }, 2);
  assert.equal(routes.get({ prefixlen: 32, data: "10.1.2.3" }), 2);
  assert.equal(routes.get({ prefixlen: 32, data: "10.9.9.9" }), 1);
  assert.equal(routes.get({ prefixlen: 32, data: "11.0.0.1" }), undefined);
  assert.equal(routes.deleteMany([{ prefixlen: 24, data: "10.1.2.0" }]), 1);
  assert.deepEqual([...routes.entries()], [[{ prefixlen: 8, data: "10.0.0.0" }, 1]]);
});
