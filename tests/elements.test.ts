// Every element command on every map type it applies to, live against this kernel.

import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  BPF_F_ZERO_SEED,
  BPF_NOEXIST,
  BpfError,
  BpfMap,
  joinPerCpu,
  listMapIds,
  MAP_TYPES,
  possibleCpus,
  splitPerCpu,
} from "../mod.ts";
import { readU32, u32, u64 } from "./helpers/bytes.ts";
import { liveTest, thrown, throwsBpf } from "./helpers/live.ts";
import { createMapInMap } from "./helpers/map_in_map.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

const HASH_TYPES = ["hash", "percpu_hash", "lru_hash", "lru_percpu_hash"] as const;

describe("hash family: update, lookup, delete, lookupAndDelete, nextKey", () => {
  for (const type of HASH_TYPES) {
    transcriptTest(type, (sys) => {
      using map = sys.createMap({
        type,
        flags: BPF_F_ZERO_SEED,
        keySize: 4,
        valueSize: 4,
        maxEntries: 16,
        name: type.slice(0, 15),
      });
      const perCpu = type.includes("percpu");
      const cpus = sys.possibleCpus();
      assert.equal(map.typeName, type);
      assert.equal(map.type, MAP_TYPES[type]);
      assert.equal(map.valueStride, perCpu ? 8 * cpus : 4);
      const value = (n: number) =>
        perCpu ? joinPerCpu(Array.from({ length: cpus }, (_, cpu) => u32(n + cpu)), 4) : u32(n);

      assert.equal(map.lookup(u32(1)), undefined);
      assert.equal(map.nextKey(), undefined);
      map.update(u32(1), value(10), BPF_NOEXIST);
      throwsBpf(() => map.update(u32(1), value(11), BPF_NOEXIST), "EEXIST", "BPF_MAP_UPDATE_ELEM");
      throwsBpf(() => map.update(u32(2), value(11), BPF_EXIST), "ENOENT", "BPF_MAP_UPDATE_ELEM");
      map.update(u32(1), value(12), BPF_EXIST);
      map.update(u32(2), value(20), BPF_ANY);
      assert.deepEqual(map.lookup(u32(1)), value(12));
      if (perCpu) {
        const slots = splitPerCpu(map.lookup(u32(2))!, 4);
        assert.equal(slots.length, cpus);
        slots.forEach((slot, cpu) => assert.equal(readU32(slot), 20 + cpu));
      }

      const first = map.nextKey();
      assert.ok(first !== undefined);
      const second = map.nextKey(first);
      assert.ok(second !== undefined);
      assert.equal(map.nextKey(second), undefined);
      assert.deepEqual([readU32(first), readU32(second)].sort(), [1, 2]);

      assert.equal(map.delete(u32(2)), true);
      assert.equal(map.delete(u32(2)), false);
      assert.deepEqual(map.lookupAndDelete(u32(1)), value(12));
      assert.equal(map.lookupAndDelete(u32(1)), undefined);
      assert.equal(map.nextKey(), undefined);
    });
  }

  liveTest("a full preallocated hash answers E2BIG; an LRU hash evicts instead", () => {
    using hash = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
    for (let i = 0; i < 4; i++) hash.update(u32(i), u32(i + 100));
    throwsBpf(() => hash.update(u32(9), u32(9)), "E2BIG");
    const held = (map: BpfMap) =>
      [...map.entries()].map(([k, v]) => [readU32(k), readU32(v)] as const)
        .sort((a, b) => a[0] - b[0]);
    assert.deepEqual(held(hash), [[0, 100], [1, 101], [2, 102], [3, 103]], "E2BIG kept all four");
    using lru = BpfMap.create({ type: "lru_hash", keySize: 4, valueSize: 4, maxEntries: 64 });
    for (let i = 0; i < 1000; i++) lru.update(u32(i), u32(i + 100)); // never E2BIG
    // How many the LRU keeps depends on which CPU's free list each update drew from (56 when
    // the loop stays on one CPU): assert what holds on any: at most 64, the newest key kept,
    // the first ones evicted, and every key kept with its own value.
    const kept = held(lru);
    assert.ok(kept.length > 0 && kept.length <= 64, `${kept.length} elements kept`);
    assert.deepEqual(kept.at(-1), [999, 1099], "the newest key is kept");
    assert.equal(lru.lookup(u32(0)), undefined, "the oldest key is evicted");
    for (const [key, value] of kept) assert.equal(value, key + 100, `key ${key}`);
  });

  transcriptTest("BPF_F_NO_PREALLOC hash works the same", (sys) => {
    using map = sys.createMap({
      type: "hash",
      keySize: 8,
      valueSize: 16,
      maxEntries: 8,
      flags: BPF_F_NO_PREALLOC,
    });
    assert.equal(map.flags, BPF_F_NO_PREALLOC);
    map.update(u64(7), u64(1, 2));
    assert.deepEqual(map.lookup(u64(7)), u64(1, 2));
  });
});

describe("arrays", () => {
  for (const type of ["array", "percpu_array"] as const) {
    transcriptTest(type, (sys) => {
      using map = sys.createMap({ type, keySize: 4, valueSize: 8, maxEntries: 4 });
      const stride = map.valueStride;
      assert.equal(stride, type === "array" ? 8 : 8 * sys.possibleCpus());
      assert.deepEqual(map.lookup(u32(3)), new Uint8Array(stride), "arrays start zeroed");
      assert.equal(map.lookup(u32(4)), undefined, "past the end: ENOENT");
      const value = new Uint8Array(stride).fill(0xab);
      map.update(u32(2), value);
      assert.deepEqual(map.lookup(u32(2)), value);
      throwsBpf(() => map.update(u32(4), value), "E2BIG");
      throwsBpf(() => map.update(u32(1), value, BPF_NOEXIST), "EEXIST");
      throwsBpf(() => map.delete(u32(1)), "EINVAL", "BPF_MAP_DELETE_ELEM");
      throwsBpf(() => map.lookupAndDelete(u32(1)), "ENOTSUPP");
      const keys: number[] = [];
      for (let key = map.nextKey(); key !== undefined; key = map.nextKey(key)) {
        keys.push(readU32(key));
      }
      assert.deepEqual(keys, [0, 1, 2, 3]);
    });
  }

  transcriptTest("lookup with BPF_F_LOCK on a map without a spin lock: EINVAL", (sys) => {
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
    throwsBpf(() => map.lookup(u32(0), BPF_F_LOCK), "EINVAL");
  });
});

transcriptTest("lpm_trie: longest-prefix match, delete, nextKey", (sys) => {
  const key = (prefix: number, a: number, b: number, c: number, d: number) =>
    new Uint8Array([prefix, 0, 0, 0, a, b, c, d]);
  using map = sys.createMap({
    type: "lpm_trie",
    keySize: 8,
    valueSize: 4,
    maxEntries: 16,
    flags: BPF_F_NO_PREALLOC,
  });
  map.update(key(8, 10, 0, 0, 0), u32(8));
  map.update(key(24, 10, 1, 2, 0), u32(24));
  assert.equal(readU32(map.lookup(key(32, 10, 1, 2, 3))), 24);
  assert.equal(readU32(map.lookup(key(32, 10, 9, 9, 9))), 8);
  assert.equal(map.lookup(key(32, 11, 0, 0, 0)), undefined);
  assert.equal(map.delete(key(24, 10, 1, 2, 0)), true);
  assert.equal(readU32(map.lookup(key(32, 10, 1, 2, 3))), 8);
  assert.deepEqual(map.nextKey(), key(8, 10, 0, 0, 0));
});

describe("map-in-map: update takes an inner fd, lookup returns the inner id", () => {
  for (const type of ["hash_of_maps", "array_of_maps"] as const) {
    transcriptTest(type, (sys) => {
      using maps = createMapInMap(sys, type);
      const { inner, outer } = maps;
      outer.update(u32(1), u32(inner.fd));
      assert.equal(readU32(outer.lookup(u32(1))), inner.id);
      using opened = sys.mapFromId(readU32(outer.lookup(u32(1))));
      assert.equal(opened.id, inner.id);
      // Both types delete: an array_of_maps slot goes back to empty.
      assert.equal(outer.delete(u32(1)), true);
      assert.equal(outer.lookup(u32(1)), undefined);
      assert.equal(outer.delete(u32(1)), false);
    });
  }
});

describe("queue, stack, bloom_filter: push, pop, peek, contains", () => {
  transcriptTest("queue is FIFO; BPF_EXIST overwrites the oldest when full", (sys) => {
    using queue = sys.createMap({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 2 });
    assert.equal(queue.peek(), undefined);
    assert.equal(queue.pop(), undefined);
    queue.push(u32(1));
    queue.push(u32(2));
    throwsBpf(() => queue.push(u32(3)), "E2BIG");
    queue.push(u32(3), BPF_EXIST);
    assert.equal(readU32(queue.peek()), 2);
    assert.deepEqual([queue.pop(), queue.pop(), queue.pop()], [u32(2), u32(3), undefined]);
  });

  transcriptTest("stack is LIFO", (sys) => {
    using stack = sys.createMap({ type: "stack", keySize: 0, valueSize: 8, maxEntries: 4 });
    for (const n of [1, 2, 3]) stack.push(u64(n));
    assert.deepEqual(stack.peek(), u64(3));
    assert.deepEqual([stack.pop(), stack.pop(), stack.pop(), stack.pop()], [
      u64(3),
      u64(2),
      u64(1),
      undefined,
    ]);
  });

  transcriptTest("bloom_filter: pushed values are contained, others (almost surely) not", (sys) => {
    using bloom = sys.createMap({
      type: "bloom_filter",
      flags: BPF_F_ZERO_SEED,
      keySize: 0,
      valueSize: 4,
      maxEntries: 1000,
      mapExtra: 5n,
    });
    assert.equal(bloom.info().mapExtra, 5n);
    for (let i = 0; i < 100; i++) bloom.push(u32(i));
    for (let i = 0; i < 100; i++) assert.equal(bloom.contains(u32(i)), true);
    const falsePositives: number[] = [];
    for (let i = 1000; i < 2000; i++) if (bloom.contains(u32(i))) falsePositives.push(i);
    // A zero seed fixes the hashes: with 5 of them over 1000 entries' bits, none of these collide.
    assert.deepEqual(falsePositives, []);
    throwsBpf(() => bloom.pop(), "ENOTSUPP");
  });

  transcriptTest("keyed operations refuse keyless maps and the other way round", (sys) => {
    using queue = sys.createMap({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 2 });
    using hash = sys.createMap({
      type: "hash",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      flags: BPF_F_ZERO_SEED,
    });
    assert.throws(() => hash.push(u32(1)), TypeError);
    assert.throws(() => hash.pop(), TypeError);
    assert.throws(() => queue.lookupBatch({ count: 1 }), TypeError);
    throwsBpf(() => queue.nextKey(), "EINVAL");
  });
});

describe("map objects: info, ids, freeze, access modes", () => {
  transcriptTest("info() and the map's fields agree with the spec", (sys) => {
    using map = sys.createMap({
      type: "hash",
      keySize: 12,
      valueSize: 20,
      maxEntries: 33,
      name: "info.check_01",
      flags: BPF_F_NO_PREALLOC,
    });
    const info = map.info();
    assert.equal(info.typeName, "hash");
    assert.equal(info.id, map.id);
    assert.deepEqual(
      [info.keySize, info.valueSize, info.maxEntries, info.flags, info.name],
      [12, 20, 33, 1, "info.check_01"],
    );
    assert.deepEqual(
      [map.keySize, map.valueSize, map.maxEntries, map.flags, map.name],
      [12, 20, 33, 1, "info.check_01"],
    );
  });

  liveTest("listMapIds() finds a new map; fromId() opens it; bad ids are ENOENT", () => {
    // Other BPF users on the machine create and free maps meanwhile: look only at this test's.
    using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    const second = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    const mine = [map.id, second.id];
    assert.ok(map.id < second.id, `ids ${mine}: the kernel hands them out in increasing order`);
    const listed = () => listMapIds().filter((id) => mine.includes(id));
    assert.deepEqual(listed(), mine, "both listed, in ascending order");
    second.close(); // the last reference: its id is freed before close() returns
    assert.deepEqual(listed(), [map.id], "a closed map is no longer listed");
    map.update(u32(0), u32(77));
    using again = BpfMap.fromId(map.id);
    assert.notEqual(again.fd, map.fd);
    assert.equal(readU32(again.lookup(u32(0))), 77);
    throwsBpf(() => BpfMap.fromId(0x7fff_fff0), "ENOENT", "BPF_MAP_GET_FD_BY_ID");
  });

  transcriptTest(
    "freeze(): no more user-space writes, reads still work, a second freeze is EPERM",
    (sys) => {
      using map = sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
      map.update(u32(1), u32(1));
      map.freeze();
      throwsBpf(() => map.update(u32(1), u32(2)), "EPERM");
      throwsBpf(() => map.delete(u32(1)), "EPERM");
      throwsBpf(() => map.updateBatch(u32(2), u32(2)), "EPERM");
      assert.deepEqual(map.lookup(u32(1)), u32(1));
      throwsBpf(() => map.freeze(), "EPERM", "BPF_MAP_FREEZE");
    },
  );

  transcriptTest("BPF_F_WRONLY maps refuse lookups, BPF_F_RDONLY maps refuse updates", (sys) => {
    using writeOnly = sys.createMap({
      type: "hash",
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
      flags: BPF_F_WRONLY,
    });
    writeOnly.update(u32(1), u32(1));
    throwsBpf(() => writeOnly.lookup(u32(1)), "EPERM");
    throwsBpf(() => writeOnly.lookupBatch({ count: 4 }), "EPERM");
    using readOnly = sys.createMap({
      type: "array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
      flags: BPF_F_RDONLY,
    });
    throwsBpf(() => readOnly.update(u32(1), u32(1)), "EPERM");
    assert.deepEqual(readOnly.lookup(u32(1)), u32(0));
  });

  transcriptTest("the kernel refuses a bad spec with BPF_MAP_CREATE's errno", (sys) => {
    const error = thrown(() =>
      sys.createMap({ type: "hash", keySize: 0, valueSize: 4, maxEntries: 4 })
    );
    assert.ok(error instanceof BpfError);
    assert.equal(error.op, "BPF_MAP_CREATE");
    assert.equal(error.code, "EINVAL");
    assert.equal(error.errno, 22);
    assert.match(error.message, /BPF_MAP_CREATE failed: EINVAL .*hash map \(key 0, value 4/);
    throwsBpf(
      () => sys.createMap({ type: 9999, keySize: 4, valueSize: 4, maxEntries: 1 }),
      "EINVAL",
    );
  });

  transcriptTest("close() is idempotent; use after close is a TypeError naming the map", (sys) => {
    const map = sys.createMap({
      type: "array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 1,
      name: "closing",
    });
    const fd = map.fd;
    assert.ok(fd > 2);
    map.close();
    map.close();
    assert.equal(map.fd, -1);
    assert.equal(map.closed, true);
    assert.throws(() => map.lookup(u32(0)), {
      name: "TypeError",
      message: /lookup: .*"closing".* is closed/,
    });
    assert.throws(() => map.lookupBatch({ count: 1 }), TypeError);
    assert.throws(() => [...map.entries()], TypeError);
  });

  transcriptTest("`using` closes the map at the end of the block", (sys) => {
    let leaked: BpfMap;
    {
      using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
      leaked = map;
      assert.equal(map.closed, false);
    }
    assert.equal(leaked.closed, true);
  });

  transcriptTest(
    "per-CPU values: joinPerCpu pads with zeros; the kernel keeps all 8 bytes of a slot",
    (sys) => {
      using map = sys.createMap({ type: "percpu_hash", keySize: 4, valueSize: 4, maxEntries: 2 });
      const cpus = sys.possibleCpus();
      map.update(u32(1), joinPerCpu(Array.from({ length: cpus }, () => u32(0xffff_ffff)), 4));
      const back = map.lookup(u32(1))!;
      for (let cpu = 0; cpu < cpus; cpu++) {
        assert.deepEqual([...back.subarray(cpu * 8, cpu * 8 + 4)], [255, 255, 255, 255]);
        assert.deepEqual([...back.subarray(cpu * 8 + 4, cpu * 8 + 8)], [0, 0, 0, 0]);
      }
      // Measured on 6.18: update and lookup copy round_up(valueSize, 8) bytes per CPU,
      // so bytes written into the padding come back.
      const full = new Uint8Array(map.valueStride).fill(0xff);
      map.update(u32(2), full);
      assert.deepEqual(map.lookup(u32(2)), full);
    },
  );
});
