// The semantics of tools/testing/selftests/bpf/map_tests/htab_map_batch_ops.c,
// for hash and percpu_hash, plus the edge cases of kernel-map-commands.md.

import assert from "node:assert/strict";
import { describe } from "node:test";
import {
  BatchError,
  type BatchResult,
  BPF_F_ZERO_SEED,
  BpfMap,
  type BpfSystem,
  joinPerCpu,
  splitPerCpu,
} from "../mod.ts";
import { i32, readU32, readU32s, readU64s, u32, u64 } from "./helpers/bytes.ts";
import { liveTest, thrown, throwsBpf } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

const MAX_ENTRIES = 10;

/** Keys 1..10; value of key k is k + 1 (per CPU: k + 1 + cpu), as the selftest fills them. */
function fill(map: BpfMap, perCpu: boolean): void {
  const keys = i32(...Array.from({ length: MAX_ENTRIES }, (_, i) => i + 1));
  const values = perCpu
    ? concat(
      Array.from(
        { length: MAX_ENTRIES },
        (_, i) =>
          joinPerCpu(Array.from({ length: map.valueStride / 8 }, (_, cpu) => i32(i + 2 + cpu)), 4),
      ),
    )
    : i32(...Array.from({ length: MAX_ENTRIES }, (_, i) => i + 2));
  assert.equal(map.updateBatch(keys, values), MAX_ENTRIES);
}

/** Every key 1..10 present once, each with its value. */
function verify(keys: Uint8Array, values: Uint8Array, map: BpfMap, perCpu: boolean): void {
  const seen = readU32s(keys);
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    Array.from({ length: MAX_ENTRIES }, (_, i) => i + 1),
  );
  seen.forEach((key, i) => {
    const value = values.subarray(i * map.valueStride, (i + 1) * map.valueStride);
    if (perCpu) {
      splitPerCpu(value, 4).forEach((slot, cpu) => assert.equal(readU32(slot), key + 1 + cpu));
    } else {
      assert.equal(readU32(value), key + 1);
    }
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** A deterministic hash map of u32 keys and values, as most tests here use. */
function u32Hash(system: BpfSystem, maxEntries: number): BpfMap {
  return system.createMap({
    type: "hash",
    flags: BPF_F_ZERO_SEED,
    keySize: 4,
    valueSize: 4,
    maxEntries,
  });
}

type Walk = "lookupBatch" | "lookupAndDeleteBatch";

/**
 * The selftest's loop: `count` starts at `step` and is in/out (each call asks
 * for what the previous one returned), into consecutive slices of one buffer.
 * Where the kernel answers ENOSPC (a bucket larger than `count`), the C test
 * gives up on the step; here the answer is checked (nothing returned, nothing
 * deleted, and the same cursor with twice the count returns more than the
 * refused count: the bucket really was larger) and the walk goes on. Returns
 * every element and how many calls met ENOSPC.
 */
function walkInSteps(map: BpfMap, op: Walk, step: number) {
  // Room for twice the elements: the C test hands the kernel `keys + total` with
  // any count, relying on it to fill no more than exist; bpfmap checks capacity.
  const keys = new Uint8Array(2 * MAX_ENTRIES * 4);
  const values = new Uint8Array(2 * MAX_ENTRIES * map.valueStride);
  let total = 0;
  let count = step;
  let refused = 0;
  let enospc = 0;
  let cursor: Uint8Array | null = null;
  for (;;) {
    let result;
    try {
      result = map[op]({
        cursor,
        count,
        keys: keys.subarray(total * 4),
        values: values.subarray(total * map.valueStride),
      });
    } catch (error) {
      if (!(error instanceof BatchError && error.code === "ENOSPC")) throw error;
      assert.deepEqual([error.processed, error.keys?.byteLength], [0, 0], `step ${step}`);
      if (op === "lookupAndDeleteBatch") {
        const left = [...map.keys({ via: "nextKey" })].length;
        assert.equal(left, MAX_ENTRIES - total, `step ${step}: ENOSPC deleted nothing`);
      }
      enospc++;
      refused = count;
      count *= 2;
      continue;
    }
    total += result.count;
    assert.ok(total <= MAX_ENTRIES, `step ${step}: ${total} elements`);
    if (refused > 0) {
      assert.ok(
        result.count > refused,
        `step ${step}: ENOSPC for ${refused}, then ${result.count}`,
      );
      refused = 0;
    }
    if (result.cursor === null) break;
    assert.ok(result.count > 0 && result.count <= count, `count ${result.count} for ${count}`);
    count = result.count;
    cursor = result.cursor;
  }
  return {
    total,
    enospc,
    keys: keys.subarray(0, total * 4),
    values: values.subarray(0, total * map.valueStride),
  };
}

/**
 * The calls of each step 1..9 that met ENOSPC. With a zero hash seed, keys
 * 1..10 sit in 16 buckets the same way on every run: [10, 4], [5], [7, 2],
 * then one key a bucket, so these follow from the in/out count.
 */
const ENOSPC_BY_STEP = [2, 1, 0, 0, 0, 0, 0, 0, 0];

describe("hash batch ops, as the kernel's selftest runs them", () => {
  for (const type of ["hash", "percpu_hash"] as const) {
    const perCpu = type === "percpu_hash";
    transcriptTest(type, (sys) => {
      using map = sys.createMap({
        type,
        flags: BPF_F_ZERO_SEED,
        keySize: 4,
        valueSize: 4,
        maxEntries: MAX_ENTRIES,
        name: "hash_map",
      });

      // 1: lookup-and-delete on an empty map: the walk ends at once with nothing.
      const empty = map.lookupAndDeleteBatch({ count: MAX_ENTRIES });
      assert.deepEqual([empty.count, empty.cursor], [0, null]);

      fill(map, perCpu);
      // 2: count 0 is refused before the syscall (the kernel would return 0).
      assert.throws(() => map.lookupAndDeleteBatch({ count: 0 }), RangeError);

      // 3: count = max_entries takes every element and ends the walk.
      const all = map.lookupAndDeleteBatch({ count: MAX_ENTRIES });
      assert.equal(all.count, MAX_ENTRIES);
      verify(all.keys, all.values, map, perCpu);
      assert.equal(map.nextKey(), undefined);

      // 4: in steps of 1..9: lookup, delete in chunks, lookup-and-delete.
      const enospc: Record<Walk, number[]> = { lookupBatch: [], lookupAndDeleteBatch: [] };
      for (let step = 1; step < MAX_ENTRIES; step++) {
        fill(map, perCpu);
        const looked = walkInSteps(map, "lookupBatch", step);
        assert.equal(looked.total, MAX_ENTRIES, `lookup with step ${step}`);
        verify(looked.keys, looked.values, map, perCpu);
        enospc.lookupBatch.push(looked.enospc);

        let deleted = 0;
        while (deleted < MAX_ENTRIES) {
          const count = Math.min(step, MAX_ENTRIES - deleted);
          deleted += map.deleteBatch(looked.keys.subarray(deleted * 4, (deleted + count) * 4));
        }
        assert.equal(deleted, MAX_ENTRIES);
        assert.equal(map.nextKey(), undefined);

        fill(map, perCpu);
        const drained = walkInSteps(map, "lookupAndDeleteBatch", step);
        assert.equal(drained.total, MAX_ENTRIES, `lookup-and-delete with step ${step}`);
        verify(drained.keys, drained.values, map, perCpu);
        assert.equal(map.nextKey(), undefined);
        enospc.lookupAndDeleteBatch.push(drained.enospc);
      }
      assert.deepEqual(enospc, {
        lookupBatch: ENOSPC_BY_STEP,
        lookupAndDeleteBatch: ENOSPC_BY_STEP,
      });
    });
  }
});

describe("hash batch edge cases", () => {
  transcriptTest(
    "ENOSPC when count cannot hold the next bucket: count 0, nothing deleted",
    (sys) => {
      // Two buckets and a zero hash seed: find a key that shares key 1's bucket.
      using map = sys.createMap({
        type: "hash",
        keySize: 4,
        valueSize: 4,
        maxEntries: 2,
        flags: BPF_F_ZERO_SEED,
      });
      map.update(u32(1), u32(1));
      let error: unknown;
      let shared = 0;
      for (let other = 2; other < 100 && error === undefined; other++) {
        map.update(u32(other), u32(other));
        try {
          map.lookupAndDeleteBatch({ count: 1 });
          map.delete(u32(other));
          map.update(u32(1), u32(1));
        } catch (e) {
          error = e;
          shared = other;
        }
      }
      assert.ok(error instanceof BatchError, `no bucket collision found: ${String(error)}`);
      assert.deepEqual([error.code, error.op, error.processed], [
        "ENOSPC",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        0,
      ]);
      assert.equal(error.keys?.byteLength, 0);
      const left = [...map.keys({ via: "nextKey" })].map((key) => readU32(key));
      assert.deepEqual(left.sort((a, b) => a - b), [1, shared], "ENOSPC deleted nothing");
      const whole = map.lookupAndDeleteBatch({ count: 2 });
      assert.deepEqual(
        readU32s(whole.keys).map((key, i) => [key, readU32(whole.values, i)] as const)
          .sort((a, b) => a[0] - b[0]),
        [[1, 1], [shared, shared]],
        "a count that holds the bucket takes it whole",
      );
      assert.equal(map.nextKey(), undefined);
    },
  );

  transcriptTest(
    "the last batch ends with ENOENT and still carries elements (count may equal the request)",
    (sys) => {
      using map = u32Hash(sys, 8);
      map.updateBatch(u32(1, 2, 3), u32(10, 20, 30));
      const byKey = (result: BatchResult) =>
        readU32s(result.keys).map((key, i) => [key, readU32(result.values, i)]).sort();
      const wide = map.lookupBatch({ count: 8 });
      assert.deepEqual([wide.count, wide.cursor], [3, null]);
      assert.deepEqual(byKey(wide), [[1, 10], [2, 20], [3, 30]]);
      // A count that the elements fill exactly: the kernel walks the empty buckets left and
      // answers ENOENT in the same call, so the walk ends with all three, not with an empty call.
      const exact = map.lookupBatch({ count: 3 });
      assert.deepEqual([exact.count, exact.cursor], [3, null]);
      assert.deepEqual(byKey(exact), [[1, 10], [2, 20], [3, 30]]);
    },
  );

  transcriptTest("a cursor past the last bucket: ENOENT with count 0", (sys) => {
    using map = u32Hash(sys, 8);
    map.update(u32(1), u32(1));
    const result = map.lookupBatch({ cursor: u32(1 << 20), count: 8 });
    assert.deepEqual([result.count, result.cursor], [0, null]);
  });

  transcriptTest(
    "a partial update batch reports how many elements it wrote (E2BIG when full)",
    (sys) => {
      using map = u32Hash(sys, 4);
      map.updateBatch(u32(1, 2), u32(1, 2));
      const error = thrown(() => map.updateBatch(u32(3, 4, 5, 6), u32(3, 4, 5, 6)));
      assert.ok(error instanceof BatchError, String(error));
      assert.equal(error.code, "E2BIG");
      assert.equal(error.op, "BPF_MAP_UPDATE_BATCH");
      assert.equal(error.processed, 2);
      assert.deepEqual([...map.keys()].map((k) => readU32(k)).sort(), [1, 2, 3, 4]);
    },
  );

  transcriptTest(
    "a partial delete batch stops at the first missing key (ENOENT) with its index",
    (sys) => {
      using map = u32Hash(sys, 8);
      map.updateBatch(u32(1, 2, 3), u32(1, 2, 3));
      const error = thrown(() => map.deleteBatch(u32(1, 2, 99, 3)));
      assert.ok(error instanceof BatchError);
      assert.deepEqual([error.code, error.processed], ["ENOENT", 2]);
      assert.deepEqual([...map.keys()].map((k) => readU32(k)), [3]);
    },
  );

  transcriptTest("count in the options writes only the first count elements", (sys) => {
    using map = u32Hash(sys, 8);
    assert.equal(map.updateBatch(u32(1, 2, 3), u32(1, 2, 3), { count: 2 }), 2);
    assert.equal(map.lookup(u32(3)), undefined);
    assert.equal(map.deleteBatch(u32(1, 2, 3), { count: 1 }), 1);
    assert.deepEqual([...map.keys()].map((k) => readU32(k)), [2]);
  });

  transcriptTest(
    "elemFlags BPF_F_LOCK on a map without a spin lock: EINVAL, processed 0",
    (sys) => {
      using map = u32Hash(sys, 8);
      map.update(u32(1), u32(1));
      const error = thrown(() => map.lookupBatch({ count: 4, elemFlags: 4 }));
      assert.ok(error instanceof BatchError);
      assert.deepEqual([error.code, error.processed], ["EINVAL", 0]);
      throwsBpf(() => map.updateBatch(u32(2), u32(2), { elemFlags: 4 }), "EINVAL");
    },
  );

  liveTest("lru_hash and lru_percpu_hash walk and drain by batches too", () => {
    for (const type of ["lru_hash", "lru_percpu_hash"] as const) {
      using map = BpfMap.create({ type, keySize: 4, valueSize: 8, maxEntries: 128 });
      const slots = map.valueStride / 8;
      // Key k's value is k * 1000 + 1 (per CPU: plus the CPU), so a value under the wrong key shows.
      const valueOf = (key: number) =>
        Array.from({ length: slots }, (_, cpu) => key * 1000 + 1 + cpu);
      const expected = Array.from({ length: 50 }, (_, key) => [key, valueOf(key)]);
      const keys = u32(...Array.from({ length: 50 }, (_, i) => i));
      map.updateBatch(keys, u64(...expected.flatMap(([key]) => valueOf(key as number))));
      const walked = [...map.entries({ batchSize: 7 })]
        .map(([key, value]) => [readU32(key), readU64s(value)])
        .sort((a, b) => (a[0] as number) - (b[0] as number));
      assert.deepEqual(walked, expected);
      const drained: (number | number[])[][] = [];
      let cursor: Uint8Array | null = null;
      do {
        const result = map.lookupAndDeleteBatch({ cursor, count: 16 });
        for (let i = 0; i < result.count; i++) {
          const value = result.values.subarray(i * map.valueStride, (i + 1) * map.valueStride);
          drained.push([readU32(result.keys, i), readU64s(value)]);
        }
        cursor = result.cursor;
      } while (cursor !== null);
      assert.deepEqual(drained.sort((a, b) => (a[0] as number) - (b[0] as number)), expected);
      assert.equal(map.nextKey(), undefined);
    }
  });
});
