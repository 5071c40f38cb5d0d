// The semantics of array_map_batch_ops.c, lpm_trie_map_batch_ops.c and
// map_in_map_batch_ops.c from the kernel's selftests, live.

import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  BatchError,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  BpfMap,
  joinPerCpu,
  splitPerCpu,
} from "../mod.ts";
import { readI64s, readU32, readU32s, u32, u64 } from "./helpers/bytes.ts";
import { liveTest, thrown, throwsBpf } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

const MAX_ENTRIES = 10;

describe("array batch ops", () => {
  for (const type of ["array", "percpu_array"] as const) {
    const perCpu = type === "percpu_array";
    transcriptTest(`${type}: lookup in steps of 1..9 returns every index with its value`, (sys) => {
      using map = sys.createMap({
        type,
        keySize: 4,
        valueSize: 8,
        maxEntries: MAX_ENTRIES,
        name: "array_map",
      });
      const cpus = sys.possibleCpus();
      const keys = u32(...Array.from({ length: MAX_ENTRIES }, (_, i) => i));
      const values = perCpu
        ? u64(
          ...Array.from(
            { length: MAX_ENTRIES * cpus },
            (_, n) => Math.floor(n / cpus) + 1 + (n % cpus),
          ),
        )
        : u64(...Array.from({ length: MAX_ENTRIES }, (_, i) => i + 1));
      for (let step = 1; step < MAX_ENTRIES; step++) {
        assert.equal(map.updateBatch(keys, values), MAX_ENTRIES);
        const outKeys = new Uint8Array(2 * MAX_ENTRIES * 4);
        const outValues = new Uint8Array(2 * MAX_ENTRIES * map.valueStride);
        let total = 0;
        let count = step;
        let cursor: Uint8Array | null = null;
        let calls = 0;
        for (;;) {
          const result = map.lookupBatch({
            cursor,
            count,
            keys: outKeys.subarray(total * 4),
            values: outValues.subarray(total * map.valueStride),
          });
          calls++;
          total += result.count;
          if (result.cursor === null) break;
          assert.equal(result.count, count, "arrays fill the whole request until the end");
          assert.equal(
            readU32(result.cursor),
            readU32(result.keys, result.count - 1),
            "cursor = last key",
          );
          count = result.count;
          cursor = result.cursor;
        }
        assert.equal(total, MAX_ENTRIES, `step ${step}`);
        // Filling count exactly at the end returns 0; only the next call says ENOENT (count 0).
        assert.equal(calls, Math.ceil(MAX_ENTRIES / step) + (MAX_ENTRIES % step === 0 ? 1 : 0));
        const seen = readU32s(outKeys.subarray(0, total * 4));
        assert.deepEqual(seen, Array.from({ length: MAX_ENTRIES }, (_, i) => i));
        seen.forEach((key, i) => {
          const value = outValues.subarray(i * map.valueStride, (i + 1) * map.valueStride);
          if (perCpu) {
            splitPerCpu(value, 8).forEach((slot, cpu) =>
              assert.deepEqual(readI64s(slot), [key + 1 + cpu])
            );
          } else assert.deepEqual(readI64s(value), [key + 1]);
        });
      }
    });
  }

  transcriptTest("array: delete and lookup-and-delete batches answer ENOTSUPP (524)", (sys) => {
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
    const error = thrown(() => map.deleteBatch(u32(0, 1)));
    assert.ok(error instanceof BatchError);
    assert.deepEqual([error.errno, error.code, error.op, error.processed], [
      524,
      "ENOTSUPP",
      "BPF_MAP_DELETE_BATCH",
      0,
    ]);
    throwsBpf(
      () => map.lookupAndDeleteBatch({ count: 4 }),
      "ENOTSUPP",
      "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
    );
  });

  transcriptTest(
    "array: an index past max_entries stops an update batch with E2BIG at its position",
    (sys) => {
      using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
      const error = thrown(() => map.updateBatch(u32(0, 1, 2, 7, 3), u32(10, 11, 12, 17, 13)));
      assert.ok(error instanceof BatchError);
      assert.deepEqual([error.code, error.processed], ["E2BIG", 3]);
      assert.deepEqual(readU32s(map.lookupBatch({ count: 4 }).values), [10, 11, 12, 0]);
    },
  );

  transcriptTest("array: a cursor at or past max_entries restarts at index 0", (sys) => {
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
    const result = map.lookupBatch({ cursor: u32(100), count: 2 });
    assert.deepEqual(readU32s(result.keys), [0, 1]);
  });
});

describe("lpm_trie batch ops", () => {
  transcriptTest("/32 prefixes: update, lookup in steps, delete in chunks", (sys) => {
    const count = 10;
    using map = sys.createMap({
      type: "lpm_trie",
      keySize: 8,
      valueSize: 4,
      maxEntries: count,
      flags: BPF_F_NO_PREALLOC,
    });
    const keys = new Uint8Array(count * 8);
    for (let i = 0; i < count; i++) keys.set([32, 0, 0, 0, 192, 168, 1, i + 1], i * 8);
    const values = u32(...Array.from({ length: count }, (_, i) => i + 1));
    for (let step = 1; step < count; step++) {
      assert.equal(map.updateBatch(keys, values), count);
      const found: string[] = [];
      let cursor: Uint8Array | null = null;
      do {
        const result = map.lookupBatch({ cursor, count: step });
        for (let i = 0; i < result.count; i++) {
          const key = result.keys.subarray(i * 8, i * 8 + 8);
          assert.equal(readU32(result.values, i), key[7], "value = last octet");
          found.push(key.join("."));
        }
        if (result.cursor !== null) {
          assert.equal(result.cursor.byteLength, 8, "cursor = a whole key");
        }
        cursor = result.cursor;
      } while (cursor !== null);
      assert.deepEqual(
        found.sort(),
        Array.from({ length: count }, (_, i) => `32.0.0.0.192.168.1.${i + 1}`).sort(),
      );
      let deleted = 0;
      while (deleted < count) {
        const chunk = Math.min(step, count - deleted);
        deleted += map.deleteBatch(keys.subarray(deleted * 8, (deleted + chunk) * 8));
      }
      assert.equal(map.nextKey(), undefined);
    }
    throwsBpf(() => map.lookupAndDeleteBatch({ count: 1 }), "ENOTSUPP");
  });
});

describe("map-in-map batch ops", () => {
  for (const type of ["array_of_maps", "hash_of_maps"] as const) {
    transcriptTest(`${type}: update by inner fds, lookup returns inner ids`, (sys) => {
      const innerCount = 6;
      const inners = Array.from(
        { length: innerCount },
        () => sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 }),
      );
      try {
        using outer = sys.createMap({
          type,
          flags: type === "hash_of_maps" ? BPF_F_ZERO_SEED : 0,
          keySize: 4,
          valueSize: 4,
          maxEntries: innerCount,
          innerMap: inners[0],
        });
        const keys = u32(...inners.map((_, i) => i));
        assert.equal(outer.updateBatch(keys, u32(...inners.map((m) => m.fd))), innerCount);
        const byKey = new Map<number, number>();
        for (let step = 1; step <= innerCount; step++) {
          byKey.clear();
          let cursor: Uint8Array | null = null;
          let count = step;
          for (;;) {
            let result;
            try {
              result = outer.lookupBatch({ cursor, count });
            } catch (error) {
              // A hash bucket larger than count: grow, as entries() does.
              assert.ok(
                error instanceof BatchError && error.code === "ENOSPC" && type === "hash_of_maps",
              );
              count *= 2;
              continue;
            }
            readU32s(result.keys).forEach((key, i) => byKey.set(key, readU32(result.values, i)));
            if (result.cursor === null) break;
            cursor = result.cursor;
          }
          assert.deepEqual(
            [...byKey.entries()].sort((a, b) => a[0] - b[0]),
            inners.map((m, i) => [i, m.id]),
          );
        }
        if (type === "hash_of_maps") {
          const drained = outer.lookupAndDeleteBatch({ count: innerCount });
          assert.deepEqual(
            readU32s(drained.keys).map((key, i) => [key, readU32(drained.values, i)] as const)
              .sort((a, b) => a[0] - b[0]),
            inners.map((m, i) => [i, m.id]),
          );
          assert.equal(outer.nextKey(), undefined);
        } else {
          throwsBpf(() => outer.deleteBatch(keys), "ENOTSUPP");
        }
      } finally {
        for (const inner of inners) inner.close();
      }
    });
  }
});

transcriptTest("per-CPU batch values are valueStride bytes per element", (sys) => {
  using map = sys.createMap({
    type: "percpu_hash",
    flags: BPF_F_ZERO_SEED,
    keySize: 4,
    valueSize: 12,
    maxEntries: 4,
  });
  const cpus = sys.possibleCpus();
  assert.equal(map.valueStride, 16 * cpus);
  const value = (n: number) => joinPerCpu(Array.from({ length: cpus }, (_, c) => u32(n, c, 7)), 12);
  map.updateBatch(u32(1, 2), new Uint8Array([...value(1), ...value(2)]));
  assert.throws(() => map.updateBatch(u32(3), new Uint8Array(12)), RangeError);
  const result = map.lookupBatch({ count: 4 });
  assert.equal(result.values.byteLength, 2 * map.valueStride);
  assert.deepEqual(readU32s(result.keys).sort(), [1, 2]);
  readU32s(result.keys).forEach((key, i) => {
    assert.deepEqual(
      result.values.subarray(i * map.valueStride, (i + 1) * map.valueStride),
      value(key),
    );
  });
});
