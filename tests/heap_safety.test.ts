// No buffer the kernel writes to may be moved by the garbage collector: small
// typed arrays (64 bytes or less live on V8's moving heap) are handed to batch
// calls as caller buffers while collections run. A wrong address would show
// as corrupted results or a crashed process.

import assert from "node:assert/strict";
import { BpfMap } from "../mod.ts";
import { readU32s, u32 } from "./helpers/bytes.ts";
import { canCollectGarbage, collectGarbage, liveTest } from "./helpers/live.ts";

liveTest("small caller-owned buffers survive moving collections between batch calls", () => {
  assert.ok(canCollectGarbage);
  using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 8 });
  for (let round = 0; round < 2000; round++) {
    const keys = new Uint8Array(16); // on V8's heap until .buffer is read
    const values = new Uint8Array(16);
    keys.set(u32(round % 8, (round + 1) % 8, (round + 2) % 8, (round + 3) % 8));
    values.set(u32(round, round + 1, round + 2, round + 3));
    const fresh = { keys: new Uint8Array(16), values: new Uint8Array(16) };
    // Churn the young generation so that anything left on the heap would move.
    const churn = Array.from({ length: 200 }, (_, i) => new Uint8Array(i % 64));
    assert.equal(map.updateBatch(keys, values), 4);
    if (round % 100 === 0) collectGarbage();
    const result = map.lookupBatch({
      count: 4,
      cursor: null,
      keys: fresh.keys,
      values: fresh.values,
    });
    assert.equal(churn.length, 200);
    assert.equal(
      result.keys.buffer,
      fresh.keys.buffer,
      "results are views of the caller's buffers",
    );
    const got = new Map(readU32s(result.keys).map((k, i) => [k, readU32s(result.values)[i]]));
    for (let i = 0; i < 4; i++) {
      const index = (round + i) % 8;
      if (index < 4) assert.equal(got.get(index), round + i, `round ${round}, index ${index}`);
    }
  }
});

liveTest("single-element calls copy keys into off-heap scratch: on-heap keys are fine", () => {
  using map = BpfMap.create({ type: "hash", keySize: 8, valueSize: 8, maxEntries: 1024 });
  const keyOf = (n: number) => {
    const key = new Uint8Array(8); // on-heap: 8 bytes
    key[0] = n & 0xff;
    key[1] = n >> 8;
    return key;
  };
  for (let i = 0; i < 20_000; i++) {
    if (i >= 1024) assert.equal(map.delete(keyOf(i - 1024)), true);
    map.update(keyOf(i), keyOf(i));
    if (i % 5000 === 0) collectGarbage();
  }
  for (let i = 20_000 - 1024; i < 20_000; i++) assert.deepEqual(map.lookup(keyOf(i)), keyOf(i));
  assert.equal([...map.keys()].length, 1024);
});

liveTest("lookupInto and nextKeyInto fill small on-heap buffers across moving collections", () => {
  using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 64 });
  for (let i = 0; i < 64; i++) map.update(u32(i), u32(i * 3, i));
  for (let round = 0; round < 20_000; round++) {
    // Fresh, on-heap (8 bytes or less), never read through .buffer: the kernel writes the map's
    // off-heap scratch and bpfmap copies it into these.
    const key = new Uint8Array(4);
    const next = new Uint8Array(4);
    const value = new Uint8Array(8);
    key[0] = round % 63;
    assert.equal(map.nextKeyInto(key, next), true);
    assert.equal(map.lookupInto(next, value), true);
    const expected = (round % 63) + 1;
    assert.deepEqual([next[0], value[0], value[4]], [expected, (expected * 3) & 0xff, expected]);
    if (round % 5000 === 0) collectGarbage();
  }
});
