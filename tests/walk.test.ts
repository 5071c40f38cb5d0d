// entries() and keys(): batch walks, ENOSPC growth, the nextKey fallback
// (forced, and chosen by the kernel's ENOTSUPP), and a concurrent writer.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { fileURLToPath } from "node:url";
import { BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_BATCH } from "../ffi/commands.ts";
import { BPF_F_ZERO_SEED, BpfMap } from "../mod.ts";
import { readU32, readU32s, u32, u64 } from "./helpers/bytes.ts";
import { exited, spawnReady } from "./helpers/child.ts";
import { liveTest, tallyingKernel } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

function fillHash(map: BpfMap, n: number): void {
  const keys = u32(...Array.from({ length: n }, (_, i) => i));
  map.updateBatch(keys, u64(...Array.from({ length: n }, (_, i) => i * 3)));
}

describe("entries() and keys()", () => {
  transcriptTest("a batch walk yields every element once, with views that stay valid", (sys) => {
    const { kernel, tally } = tallyingKernel(sys.kernel.backend);
    using map = BpfMap.create({
      type: "hash",
      flags: BPF_F_ZERO_SEED,
      keySize: 4,
      valueSize: 8,
      maxEntries: 5000,
    }, kernel);
    fillHash(map, 3000);
    tally.clear();
    const entries = [...map.entries({ batchSize: 256 })];
    assert.equal(entries.length, 3000);
    const keys = entries.map(([key]) => readU32(key));
    assert.equal(new Set(keys).size, 3000);
    for (const [key, value] of entries) {
      assert.equal(
        Number(new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0, true)),
        readU32(key) * 3,
      );
    }
    assert.ok((tally.get(BPF_MAP_LOOKUP_BATCH.name) ?? 0) >= 3000 / 256);
    assert.equal(tally.get(BPF_MAP_GET_NEXT_KEY.name), undefined, "no per-element calls");
    assert.deepEqual(
      [...map.keys({ batchSize: 1000 })].map((k) => readU32(k)).sort((a, b) => a - b),
      [...keys].sort((a, b) => a - b),
    );
  });

  transcriptTest(
    "ENOSPC grows the batch: batchSize 1 still walks a map with shared buckets",
    (sys) => {
      const { kernel, tally } = tallyingKernel(sys.kernel.backend);
      using map = BpfMap.create({
        type: "hash",
        keySize: 4,
        valueSize: 8,
        maxEntries: 64,
        flags: BPF_F_ZERO_SEED,
      }, kernel);
      fillHash(map, 64);
      const keys = [...map.keys({ batchSize: 1 })].map((k) => readU32(k));
      assert.deepEqual(keys.sort((a, b) => a - b), Array.from({ length: 64 }, (_, i) => i));
      assert.ok((tally.get(`${BPF_MAP_LOOKUP_BATCH.name} 28`) ?? 0) > 0, "the walk met ENOSPC");
    },
  );

  transcriptTest("via: 'nextKey' forces the per-element walk, with the same result", (sys) => {
    const { kernel, tally } = tallyingKernel(sys.kernel.backend);
    using map = BpfMap.create({
      type: "hash",
      flags: BPF_F_ZERO_SEED,
      keySize: 4,
      valueSize: 8,
      maxEntries: 100,
    }, kernel);
    fillHash(map, 40);
    tally.clear();
    const forced = [...map.entries({ via: "nextKey" })];
    assert.equal(tally.get(BPF_MAP_LOOKUP_BATCH.name), undefined);
    assert.equal(tally.get(BPF_MAP_GET_NEXT_KEY.name), 41);
    const batched = [...map.entries({ via: "batch" })];
    const sortByKey = (list: [Uint8Array, Uint8Array][]) =>
      list.map(([k, v]) => [readU32(k), [...v]] as const).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(sortByKey(forced), sortByKey(batched));
  });

  transcriptTest(
    "auto falls back to nextKey when the map type answers ENOTSUPP (devmap), once",
    (sys) => {
      const { kernel, tally } = tallyingKernel(sys.kernel.backend);
      using map = BpfMap.create(
        { type: "devmap", keySize: 4, valueSize: 4, maxEntries: 4 },
        kernel,
      );
      map.update(u32(2), u32(1)); // ifindex 1: loopback
      assert.deepEqual([...map.entries()].map(([k, v]) => [readU32(k), readU32(v)]), [[2, 1]]);
      assert.equal(tally.get(BPF_MAP_LOOKUP_BATCH.name), 1);
      [...map.entries()];
      assert.equal(tally.get(BPF_MAP_LOOKUP_BATCH.name), 1, "the fallback is remembered per map");
      assert.throws(() => [...map.entries({ via: "batch" })], { code: "ENOTSUPP" });
    },
  );

  transcriptTest("arrays, per-CPU arrays and LPM tries walk in key order", (sys) => {
    using array = sys.createMap({ type: "percpu_array", keySize: 4, valueSize: 4, maxEntries: 9 });
    assert.deepEqual([...array.keys({ batchSize: 4 })].map((k) => readU32(k)), [
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
    ]);
    assert.equal([...array.entries()][0][1].byteLength, array.valueStride);
  });

  transcriptTest("bad walk options are refused", (sys) => {
    using map = sys.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4 });
    assert.throws(() => [...map.entries({ batchSize: 0 })], RangeError);
    assert.throws(() => [...map.entries({ batchSize: 1.5 })], RangeError);
    assert.throws(() => [...map.entries({ via: "sideways" as "auto" })], TypeError);
  });
});

liveTest(
  "a concurrent writer process never makes entries() repeat or lose a stable key",
  async () => {
    using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4096 });
    const stable = 1000;
    fillHash(map, stable);
    const writer = fileURLToPath(new URL("./helpers/writer.ts", import.meta.url));
    const child = await spawnReady(writer, [String(map.id), "100000", "1500", "40"]);
    let walks = 0;
    let sawChurn = false;
    try {
      while (child.exitCode === null && walks < 2000) {
        const keys = [...map.keys({ batchSize: 128 })].map((k) => readU32(k));
        assert.equal(new Set(keys).size, keys.length, `walk ${walks}: a key came twice`);
        const stableSeen = keys.filter((k) => k < stable).length;
        assert.equal(stableSeen, stable, `walk ${walks}: a stable key went missing`);
        if (keys.length > stable) sawChurn = true;
        walks++;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      if (child.exitCode === null) child.kill();
    }
    assert.equal(await exited(child), 0);
    assert.ok(walks >= 5, `only ${walks} walks overlapped the writer`);
    assert.ok(sawChurn, "no walk saw the writer's keys");
    assert.deepEqual(readU32s(u32(7)), [7]);
  },
);
