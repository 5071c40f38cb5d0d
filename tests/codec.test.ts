// Codecs and typed maps: struct layouts identical to gcc's, round trips of
// every codec, and typed access on every kind of map, live and replayed.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
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
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

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

test("struct sizes and offsets are gcc's", {
  skip: spawnSync("cc", ["--version"]).status === 0 ? false : "no cc",
}, () => {
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
  assert.deepEqual([...encode(struct({ a: u8, b: u64 }), { a: 7, b: 0n })].slice(1, 8), [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ], "padding zero");
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
  typed.setMany(
    Array.from(
      { length: 20 },
      (_, i): [{ proto: number; port: number }, bigint] => [{ proto: 6, port: i }, BigInt(i)],
    ),
  );
  const drained = typed.drain({ batchSize: 4 });
  assert.equal(drained.length, 20);
  assert.equal(drained.reduce((sum, [, v]) => sum + v, 0n), 190n);
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
  let sum = 0n;
  let keys = 0;
  let buffer: ArrayBufferLike | undefined;
  for (const batch of typed.batches({ size: 300 })) {
    const values = batch.valueArray() as BigUint64Array;
    assert.equal(values.length, batch.count);
    buffer ??= values.buffer;
    assert.equal(values.buffer, buffer, "every batch reuses the same buffer");
    for (const value of values) sum += value;
    keys += (batch.keyArray() as Uint32Array).length;
  }
  assert.equal(keys, 1000);
  assert.equal(sum, 3n * 499500n);
});

transcriptTest(
  "per-CPU typed values: an array per CPU, sums and maxima without allocation",
  (sys) => {
    using map = sys.createMap({
      type: "percpu_hash",
      keySize: 4,
      valueSize: 8,
      maxEntries: 16,
      flags: BPF_F_ZERO_SEED,
    });
    assert.throws(() => map.typed({ key: u32, value: u64 }), /use typedPerCpu/);
    const counters = map.typedPerCpu({ key: u32, value: u64 });
    const cpus = sys.possibleCpus();
    counters.set(1, Array.from({ length: cpus }, (_, cpu) => BigInt(10 + cpu)));
    counters.set(2, Array.from({ length: cpus }, (_, cpu) => BigInt(100 * (cpu + 1))));
    assert.deepEqual(counters.get(1), Array.from({ length: cpus }, (_, cpu) => BigInt(10 + cpu)));
    for (const batch of counters.batches()) {
      const values = batch.valueArray() as BigUint64Array;
      for (let i = 0; i < batch.count; i++) {
        const perCpu = batch.value(i);
        assert.equal(sumPerCpu(values, i, cpus, 8), perCpu.reduce((a, b) => a + b, 0n));
        assert.equal(maxPerCpu(values, i, cpus, 8), perCpu.reduce((a, b) => (b > a ? b : a)));
      }
    }
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
