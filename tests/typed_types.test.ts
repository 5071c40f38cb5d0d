// Typed access on every map type user space can fill by itself: the hash and
// array families, LPM tries, map-in-map, devmaps, cpumap, stack traces,
// queues, stacks and bloom filters. Types without lookup batches walk by
// nextKey; types without lookup-and-delete drain one element at a time.
// (Sockets, perf events, cgroups, programs and storage maps need objects of
// other kinds in their values or keys: see the README.)

import assert from "node:assert/strict";
import { describe } from "node:test";
import { BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_BATCH } from "../ffi/commands.ts";
import {
  BatchError,
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  BpfError,
  BpfMap,
  ipv4,
  lpmKey,
  noKey,
  specOf,
  struct,
  u32,
  u64,
} from "../mod.ts";
import { tallyingKernel, thrown, throwsBpf } from "./helpers/live.ts";
import { createMapInMap } from "./helpers/map_in_map.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const byKey = <V>(entries: Iterable<[number, V]>) => [...entries].sort((a, b) => a[0] - b[0]);

describe("typed maps on every map type", () => {
  for (const type of ["hash", "lru_hash"] as const) {
    transcriptTest(`${type}: every operation, and a drain by lookup-and-delete batches`, (sys) => {
      const value = struct({ packets: u64, bytes: u32 });
      using map = sys.createMap({
        type,
        keySize: 4,
        valueSize: value.size,
        maxEntries: 64,
        flags: BPF_F_ZERO_SEED,
      });
      const flows = map.typed({ key: u32, value });
      flows.set(1, { packets: 1n, bytes: 60 });
      assert.equal(
        flows.setMany([[2, { packets: 2n, bytes: 120 }], [3, { packets: 3n, bytes: 9 }]]),
        2,
      );
      assert.deepEqual(flows.get(2), { packets: 2n, bytes: 120 });
      assert.equal(flows.has(4), false);
      assert.deepEqual(byKey(flows.entries({ batchSize: 2 })), [
        [1, { packets: 1n, bytes: 60 }],
        [2, { packets: 2n, bytes: 120 }],
        [3, { packets: 3n, bytes: 9 }],
      ]);
      assert.equal(flows.deleteMany([3, 4]), 1);
      assert.deepEqual(byKey(flows.drain()), [
        [1, { packets: 1n, bytes: 60 }],
        [2, { packets: 2n, bytes: 120 }],
      ]);
      assert.deepEqual([...flows.keys()], []);
    });
  }

  for (const type of ["percpu_hash", "lru_percpu_hash", "percpu_array"] as const) {
    transcriptTest(`${type}: one value per CPU, through typedPerCpu`, (sys) => {
      using map = sys.createMap({
        type,
        keySize: 4,
        valueSize: 4,
        maxEntries: 8,
        flags: type === "percpu_array" ? 0 : BPF_F_ZERO_SEED,
      });
      const cpus = sys.possibleCpus();
      const counters = map.typedPerCpu({ key: u32, value: u32 });
      const perCpu = (n: number) => Array.from({ length: cpus }, (_, cpu) => n * 10 + cpu);
      counters.setMany([[1, perCpu(1)], [2, perCpu(2)]]);
      assert.deepEqual(counters.get(2), perCpu(2));
      const entries = byKey(counters.entries());
      if (type === "percpu_array") {
        const zero = perCpu(0).map(() => 0);
        assert.deepEqual(
          entries,
          Array.from({ length: 8 }, (_, key) => [key, key === 1 || key === 2 ? perCpu(key) : zero]),
        );
      } else {
        assert.deepEqual(entries, [[1, perCpu(1)], [2, perCpu(2)]]);
        assert.deepEqual(byKey(counters.drain()), [[1, perCpu(1)], [2, perCpu(2)]]);
      }
    });
  }

  transcriptTest(
    "array: typed reads and writes; a drain is refused, having removed nothing",
    (sys) => {
      using map = sys.createMap({ type: "array", keySize: 4, valueSize: 8, maxEntries: 4 });
      const slots = map.typed({ key: u32, value: u64 });
      slots.setMany([[0, 5n], [3, 7n]]);
      assert.deepEqual([...slots.values()], [5n, 0n, 0n, 7n]);
      // Arrays have neither lookup-and-delete nor delete: the kernel's EINVAL, nothing lost.
      const error = thrown(() => slots.drain());
      assert.ok(error instanceof BatchError, String(error));
      assert.equal(error.op, "BPF_MAP_DELETE_ELEM");
      assert.equal(error.code, "EINVAL");
      assert.equal(error.processed, 0);
      assert.deepEqual([...slots.values()], [5n, 0n, 0n, 7n]);
    },
  );

  transcriptTest("lpm_trie: a drain by lookup, then delete, prefix by prefix", (sys) => {
    const key = lpmKey(ipv4);
    using map = sys.createMap({
      type: "lpm_trie",
      keySize: key.size,
      valueSize: 4,
      maxEntries: 8,
      flags: BPF_F_NO_PREALLOC,
    });
    const routes = map.typed({ key, value: u32 });
    routes.setMany([
      [{ prefixlen: 8, data: "10.0.0.0" }, 1],
      [{ prefixlen: 16, data: "10.1.0.0" }, 2],
      [{ prefixlen: 24, data: "192.168.1.0" }, 3],
    ]);
    const drained = routes.drain({ batchSize: 2 });
    assert.deepEqual(
      drained.map(([k, v]) => `${k.data}/${k.prefixlen}=${v}`).sort(),
      ["10.0.0.0/8=1", "10.1.0.0/16=2", "192.168.1.0/24=3"],
    );
    assert.equal(map.nextKey(), undefined);
    assert.deepEqual(routes.drain(), []);
  });

  for (const type of ["hash_of_maps", "array_of_maps"] as const) {
    transcriptTest(`${type}: inner map fds in, inner map ids out`, (sys) => {
      using created = createMapInMap(sys, type);
      const { inner, outer } = created;
      const maps = outer.typed({ key: u32, value: u32 });
      maps.set(1, inner.fd);
      assert.equal(maps.get(1), inner.id);
      // Empty array_of_maps slots are not walked: the kernel skips their ENOENT.
      assert.deepEqual([...maps.entries()], [[1, inner.id]]);
      if (type === "hash_of_maps") assert.deepEqual(maps.drain(), [[1, inner.id]]);
    });
  }

  for (const type of ["devmap", "devmap_hash", "cpumap"] as const) {
    transcriptTest(`${type}: no lookup batches, so typed walks go key by key`, (sys) => {
      const { kernel, tally } = tallyingKernel(sys.kernel.backend);
      using map = BpfMap.create({ type, keySize: 4, valueSize: 4, maxEntries: 2 }, kernel);
      const typed = map.typed({ key: u32, value: u32 });
      // devmaps hold ifindexes (1: loopback); a cpumap holds each CPU's queue size.
      const value = type === "cpumap" ? 192 : 1;
      typed.set(1, value);
      assert.equal(typed.get(1), value);
      assert.deepEqual([...typed.entries()], [[1, value]]);
      const batches = [...typed.batches({ size: 8 })].map((batch) => ({
        count: batch.count,
        keys: [...(batch.keyArray() as Uint32Array)],
        values: [...(batch.valueArray() as Uint32Array)],
      }));
      assert.deepEqual(batches, [{ count: 1, keys: [1], values: [value] }]);
      assert.equal(tally.get(BPF_MAP_LOOKUP_BATCH.name), 1, "asked once, then remembered");
      // Two walks, each asking for every key the type iterates (both slots of a devmap or
      // cpumap, the one element of a devmap_hash), then the ENOENT that ends it.
      assert.equal(tally.get(BPF_MAP_GET_NEXT_KEY.name), type === "devmap_hash" ? 4 : 6);
      // devmap and cpumap slots delete even when empty (the kernel swaps in NULL); a devmap_hash
      // has no key 0.
      assert.equal(typed.deleteMany([1, 0]), type === "devmap_hash" ? 1 : 2);
      assert.deepEqual([...typed.entries()], []);
    });
  }

  transcriptTest("stack_trace: filled by programs only; typed reads find it empty", (sys) => {
    using map = sys.createMap({ type: "stack_trace", keySize: 4, valueSize: 8 * 4, maxEntries: 4 });
    const stacks = map.typed({ key: u32, value: struct({ ips: u64, a: u64, b: u64, c: u64 }) });
    assert.equal(stacks.get(0), undefined);
    assert.deepEqual([...stacks.entries()], []);
    throwsBpf(() => stacks.set(0, { ips: 1n, a: 0n, b: 0n, c: 0n }), "EINVAL");
  });

  transcriptTest("queue and stack: push, peek, pop and drain through a value codec", (sys) => {
    const job = struct({ id: u32, weight: u32 });
    using queue = sys.createMap(specOf({ type: "queue", value: job, maxEntries: 3 }));
    const jobs = queue.typed({ value: job });
    assert.equal(jobs.key, noKey);
    for (const id of [1, 2, 3]) jobs.push({ id, weight: id * 10 });
    jobs.push({ id: 4, weight: 40 }, BPF_EXIST); // full: overwrites the oldest
    assert.deepEqual(jobs.peek(), { id: 2, weight: 20 });
    assert.deepEqual(jobs.pop(), { id: 2, weight: 20 });
    assert.deepEqual(jobs.drain(), [[undefined, { id: 3, weight: 30 }], [
      undefined,
      { id: 4, weight: 40 },
    ]]);
    assert.equal(jobs.pop(), undefined);

    using stack = sys.createMap({ type: "stack", keySize: 0, valueSize: 8, maxEntries: 4 });
    const frames = stack.typed({ key: noKey, value: u64 });
    for (const n of [1n, 2n, 3n]) frames.push(n);
    assert.deepEqual(frames.drain({ batchSize: 2 }).map(([, v]) => v), [3n, 2n, 1n]);
    assert.throws(() => [...frames.entries()], /has no keys, so no batch operations/);
  });

  transcriptTest("bloom_filter: push and contains through a value codec", (sys) => {
    using bloom = sys.createMap({
      type: "bloom_filter",
      keySize: 0,
      valueSize: 4,
      maxEntries: 100,
      flags: BPF_F_ZERO_SEED,
    });
    const seen = bloom.typed({ value: ipv4 });
    seen.push("10.0.0.1");
    assert.equal(seen.contains("10.0.0.1"), true);
    assert.equal(seen.contains("10.0.0.2"), false);
    throwsBpf(() => seen.pop(), "ENOTSUPP");
  });

  transcriptTest(
    "types holding other kernel objects: typed calls get the kernel's answers",
    (sys) => {
      // An fd number no process here has open: the same bytes live, in every runtime and in replay.
      const closedFd = 999_999;
      const answer = (fn: () => unknown) => {
        try {
          return fn();
        } catch (error) {
          if (error instanceof BpfError) return error.code;
          throw error;
        }
      };
      // get(0), entries(), set(0, a closed fd), delete(0), drain().
      const KERNEL_ANSWERS = [
        ["prog_array", undefined, [], "EBADF", false, []],
        ["perf_event_array", "ENOTSUPP", "ENOTSUPP", "EBADF", false, "ENOTSUPP"],
        ["cgroup_array", "ENOTSUPP", "ENOTSUPP", "EBADF", false, "ENOTSUPP"],
        ["sockmap", "ENOSPC", "ENOSPC", "EBADF", "EINVAL", "ENOSPC"],
        ["sockhash", "ENOSPC", [], "EBADF", false, []],
        ["xskmap", "EOPNOTSUPP", "EOPNOTSUPP", "EBADF", true, "EOPNOTSUPP"],
        ["reuseport_sockarray", undefined, [], "EBADF", false, []],
      ] as const;
      for (const [type, ...expected] of KERNEL_ANSWERS) {
        const wide = type === "reuseport_sockarray";
        using map = sys.createMap({ type, keySize: 4, valueSize: wide ? 8 : 4, maxEntries: 2 });
        const typed = map.typed<number, number | bigint>({ key: u32, value: wide ? u64 : u32 });
        const got = [
          answer(() => typed.get(0)),
          answer(() => [...typed.entries()]),
          answer(() => typed.set(0, wide ? BigInt(closedFd) : closedFd) && "set"),
          answer(() => typed.delete(0)),
          answer(() => typed.drain()),
        ];
        assert.deepEqual(got, expected.map((e) => (Array.isArray(e) ? [...e] : e)), type);
      }
      using ringbuf = sys.createMap({
        type: "ringbuf",
        keySize: 0,
        valueSize: 0,
        maxEntries: 4096,
      });
      assert.throws(() => ringbuf.typed({ value: u32 }), /the map's values are 0/);
    },
  );

  transcriptTest("a keyed map's typed view needs a key codec", (sys) => {
    using map = sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
    assert.throws(
      () => map.typed({ value: u32 }),
      /typed: spec.key is missing; hash map \(id \d+\) has 4-byte keys/,
    );
    assert.throws(() => map.typed(null as never), /spec must be \{ key, value \}/);
    using queue = sys.createMap({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 1 });
    assert.throws(() => queue.typed({ key: u32, value: u32 }), /key codec u32 is 4 bytes/);
  });
});
