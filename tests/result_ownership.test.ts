// Every result is the caller's own: no two results share an ArrayBuffer, so
// transferring one (postMessage, structuredClone with transfer,
// buffer.transfer()) detaches nothing else, and an element the kernel removed
// (pop, lookupAndDelete) always reaches the caller. Results used to be views
// of one shared slab: one transfer emptied every result still held and made
// each later lookup throw after pop had removed its element.

import assert from "node:assert/strict";
import { BPF_F_ZERO_SEED, type BpfMap, type BpfSystem } from "../mod.ts";
import { readU32, u32 } from "./helpers/bytes.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** The three ways a caller gives a buffer away; each detaches `bytes.buffer`. */
const TRANSFERS: [string, (bytes: Uint8Array) => void][] = [
  [
    "structuredClone",
    (bytes) => void structuredClone(bytes, { transfer: [bytes.buffer as ArrayBuffer] }),
  ],
  ["buffer.transfer()", (bytes) => void (bytes.buffer as ArrayBuffer).transfer()],
  ["postMessage", (bytes) => {
    const channel = new MessageChannel();
    channel.port1.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
    channel.port1.close();
    channel.port2.close();
  }],
];

/** A hash map of u32 keys and values, walked in the same order on every run. */
function hashMap(sys: BpfSystem, maxEntries: number): BpfMap {
  return sys.createMap({
    type: "hash",
    keySize: 4,
    valueSize: 4,
    maxEntries,
    flags: BPF_F_ZERO_SEED,
  });
}

/** Whether `bytes` is the whole of a buffer of its own. */
function ownsItsBuffer(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
}

for (const [how, transfer] of TRANSFERS) {
  transcriptTest(
    `a result given away by ${how} leaves every other result and the map intact`,
    (sys) => {
      using map = sys.createMap({
        type: "hash",
        keySize: 4,
        valueSize: 4,
        maxEntries: 8,
        flags: BPF_F_ZERO_SEED,
      });
      for (let k = 1; k <= 4; k++) map.update(u32(k), u32(k * 10));
      const held = [1, 2, 3].map((k) => map.lookup(u32(k))!);
      const given = held[0]!;
      const first = map.nextKey()!;
      const batch = map.lookupBatch({ count: 1 }); // a cursor: the walk is not over
      assert.notEqual(batch.cursor, null);
      const cursor = batch.cursor!;
      const keyCopy = first.slice();
      transfer(given);
      assert.equal(given.byteLength, 0, "the transfer really detached it");
      assert.deepEqual(held.slice(1).map((v) => readU32(v)), [20, 30]);
      assert.deepEqual(first, keyCopy);
      assert.equal(cursor.byteLength, 4);
      // The map still answers, into fresh results.
      assert.equal(readU32(map.lookup(u32(4))), 40);
      transfer(cursor);
      transfer(first);
      assert.deepEqual(held.slice(1).map((v) => readU32(v)), [20, 30]);
      assert.equal(readU32(map.lookup(u32(1))), 10);
      const next = map.lookupBatch({ count: 8, cursor: batch.keys.slice() });
      assert.equal(next.count >= 0, true);
    },
  );
}

transcriptTest("every popped element reaches the caller, each result given away at once", (sys) => {
  using queue = sys.createMap({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 8 });
  for (let i = 1; i <= 5; i++) queue.push(u32(i));
  const received: number[] = [];
  for (let value = queue.pop(); value !== undefined; value = queue.pop()) {
    const moved = structuredClone(value, { transfer: [value.buffer as ArrayBuffer] });
    received.push(readU32(moved));
  }
  assert.deepEqual(received, [1, 2, 3, 4, 5]);
  assert.equal(queue.peek(), undefined);
});

transcriptTest("lookupAndDelete results survive the transfer of the one before", (sys) => {
  using map = hashMap(sys, 8);
  for (let k = 1; k <= 3; k++) map.update(u32(k), u32(k + 100));
  const removed = [1, 2, 3].map((k) => map.lookupAndDelete(u32(k))!);
  (removed[0]!.buffer as ArrayBuffer).transfer();
  assert.deepEqual(removed.slice(1).map((v) => readU32(v)), [102, 103]);
  assert.equal(map.nextKey(), undefined);
});

transcriptTest("no two results share an ArrayBuffer", (sys) => {
  using map = hashMap(sys, 64);
  using stack = sys.createMap({ type: "stack", keySize: 0, valueSize: 4, maxEntries: 8 });
  for (let k = 0; k < 16; k++) map.update(u32(k), u32(k));
  stack.push(u32(1));
  stack.push(u32(2));
  const batch = map.lookupBatch({ count: 4 });
  const results = [
    ...Array.from({ length: 16 }, (_, k) => map.lookup(u32(k))!),
    map.nextKey()!,
    map.nextKey(u32(3))!,
    stack.peek()!,
    stack.pop()!,
    map.lookupAndDelete(u32(5))!,
    batch.cursor!,
    batch.keys,
    batch.values,
  ];
  const buffers = new Set(results.map((bytes) => bytes.buffer));
  assert.equal(buffers.size, results.length);
  for (const bytes of results.slice(0, -2)) assert.ok(ownsItsBuffer(bytes));
  // Writing into a result changes nothing else.
  results[0]!.fill(0xff);
  assert.equal(readU32(map.lookup(u32(0))), 0);
  assert.equal(readU32(results[1]), 1);
});
