// Kernel facts written once (issue 11): the map-type table says which batch
// commands each type has, and the kernel is asked to agree; the one walk
// hands a key it cannot read to the caller's hook in key order, between the
// elements around it, as bpftool's dump prints its error lines.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { errnoName } from "../ffi/errno.ts";
import { type BatchCommands, mapType } from "../ffi/map_types.ts";
import { BPF_F_NO_PREALLOC, BpfError, BpfMap, type MapSpec, walkBatches } from "../mod.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** Whether the kernel has the command for the map: anything but ENOTSUPP (524) says it has. */
function has(call: () => unknown): boolean {
  try {
    call();
    return true;
  } catch (error) {
    if (!(error instanceof BpfError)) throw error;
    return error.code !== "ENOTSUPP";
  }
}

describe("kernel facts", () => {
  transcriptTest("the map-type table's batch commands are the ones the kernel has", (sys) => {
    using inner = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    const specs: MapSpec[] = [
      ...(["hash", "percpu_hash", "lru_hash", "lru_percpu_hash"] as const).map((type) => ({
        type,
        keySize: 4,
        valueSize: 4,
        maxEntries: 4,
      })),
      { type: "array", keySize: 4, valueSize: 4, maxEntries: 4 },
      { type: "percpu_array", keySize: 4, valueSize: 4, maxEntries: 4 },
      { type: "lpm_trie", keySize: 8, valueSize: 4, maxEntries: 4, flags: BPF_F_NO_PREALLOC },
      { type: "devmap", keySize: 4, valueSize: 4, maxEntries: 4 },
      { type: "devmap_hash", keySize: 4, valueSize: 4, maxEntries: 4 },
      { type: "hash_of_maps", keySize: 4, valueSize: 4, maxEntries: 4, innerMap: inner },
      { type: "array_of_maps", keySize: 4, valueSize: 4, maxEntries: 4, innerMap: inner },
    ];
    for (const spec of specs) {
      using map = sys.createMap(spec);
      const key = new Uint8Array(map.keySize);
      // A map-in-map's value is an inner map's fd; for the rest, zeros will do.
      const value = mapType(map.type).holds === "maps"
        ? new Uint8Array(new Uint32Array([inner.fd]).buffer)
        : new Uint8Array(map.valueStride);
      const kernel: BatchCommands = {
        lookup: has(() => map.lookupBatch({ count: 1 })),
        lookupAndDelete: has(() => map.lookupAndDeleteBatch({ count: 1 })),
        update: has(() => map.updateBatch(key, value)),
        delete: has(() => map.deleteBatch(key)),
      };
      assert.deepEqual(kernel, { ...mapType(map.type).batch }, String(spec.type));
      assert.equal(mapType(map.type).cursor === null, !kernel.lookup, String(spec.type));
    }
  });

  transcriptTest(
    "a per-key walk hands unreadable keys to onLookupError in key order and goes on",
    (sys) => {
      // A devmap has no lookup batch: the walk goes key by key, over every slot, set or not.
      using map = sys.createMap({ type: "devmap", keySize: 4, valueSize: 4, maxEntries: 4 });
      const loopback = new Uint8Array([1, 0, 0, 0]); // ifindex 1
      map.update(new Uint8Array([1, 0, 0, 0]), loopback);
      map.update(new Uint8Array([3, 0, 0, 0]), loopback);
      const seen: string[] = [];
      const batches = walkBatches(map, {
        batchSize: 8,
        reuse: true,
        onLookupError: (key, errno) => seen.push(`key ${key[0]}: ${errnoName(errno)}`),
      });
      for (const batch of batches) {
        for (let i = 0; i < batch.count; i++) seen.push(`key ${batch.keys[i * 4]}: value`);
      }
      // Empty slots answer ENOENT; each is reported after the elements before it, not first.
      assert.deepEqual(seen, ["key 0: ENOENT", "key 1: value", "key 2: ENOENT", "key 3: value"]);
      // Without the hook the walk leaves them out.
      const keys = [...walkBatches(map, { batchSize: 8 })].flatMap((batch) => [...batch.keys]);
      assert.deepEqual(keys, [1, 0, 0, 0, 3, 0, 0, 0]);
    },
  );
});
