// entries() and keys(): batch walks, ENOSPC growth, the nextKey fallback
// (forced, and chosen by the kernel's ENOTSUPP), and a concurrent writer.

import assert from "node:assert/strict";
import { describe } from "node:test";
import { fileURLToPath } from "node:url";
import { BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_BATCH } from "../ffi/commands.ts";
import { BPF_F_NO_PREALLOC, BPF_F_ZERO_SEED, BpfMap } from "../mod.ts";
import { readU32, readU32s, readU64s, u32, u64 } from "./helpers/bytes.ts";
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
    // 9 elements in batches of 4: the last batch (one element) comes with the end of the walk.
    const indexes = Array.from({ length: 9 }, (_, i) => i);
    using array = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 9 });
    array.updateBatch(u32(...indexes), u32(...indexes.map((i) => i * 7 + 1)));
    assert.deepEqual(
      [...array.entries({ batchSize: 4 })].map(([k, v]) => [readU32(k), readU32s(v)]),
      indexes.map((i) => [i, [i * 7 + 1]]),
    );

    // valueSize 4: each CPU's slot is 8 bytes, so a stride that is not rounded up misplaces them.
    using perCpu = sys.createMap({
      type: "percpu_array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 9,
    });
    const cpus = sys.possibleCpus();
    const slots = (i: number) => Array.from({ length: cpus }, (_, cpu) => i * 10 + cpu);
    perCpu.updateBatch(
      u32(...indexes),
      u64(...indexes.flatMap((i) => slots(i))), // a u32 per CPU, zero-padded to 8 bytes
    );
    assert.deepEqual(
      [...perCpu.entries({ batchSize: 4 })].map(([k, v]) => [readU32(k), readU64s(v)]),
      indexes.map((i) => [i, slots(i)]),
    );

    // An LPM trie's key order: a prefix after the longer prefixes it covers, lower
    // addresses first. Inserted out of that order, each with its own value.
    using trie = sys.createMap({
      type: "lpm_trie",
      keySize: 8,
      valueSize: 4,
      maxEntries: 16,
      flags: BPF_F_NO_PREALLOC,
    });
    const prefix = (text: string) => {
      const [address = "", length] = text.split("/");
      return new Uint8Array([Number(length), 0, 0, 0, ...address.split(".").map(Number)]);
    };
    const inserted = [
      "192.168.1.5/32",
      "10.0.0.0/8",
      "192.168.1.1/32",
      "10.1.2.0/24",
      "10.1.0.0/16",
      "192.168.1.9/32",
      "10.1.2.3/32",
    ];
    inserted.forEach((text, i) => trie.update(prefix(text), u32(i + 1)));
    const walked = (via: "batch" | "nextKey") =>
      [...trie.entries({ batchSize: 2, via })].map(([key, value]) =>
        `${key.subarray(4).join(".")}/${key[0]}=${readU32(value)}`
      );
    const inKeyOrder = [
      "10.1.2.3/32=7",
      "10.1.2.0/24=4",
      "10.1.0.0/16=5",
      "10.0.0.0/8=2",
      "192.168.1.1/32=3",
      "192.168.1.5/32=1",
      "192.168.1.9/32=6",
    ];
    assert.deepEqual(walked("batch"), inKeyOrder);
    assert.deepEqual(walked("nextKey"), inKeyOrder);
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
    // The writer churns keys 100000..101499 until this test inserts its stop key.
    const child = await spawnReady(writer, [String(map.id), "100000", "1500", "0"]);
    const WALKS = 20;
    const CAP = 100_000;
    let walks = 0;
    let churned = 0;
    let told = false;
    try {
      // Counted, not timed: at least WALKS walks, and on until some walk met the writer's keys.
      while (child.exitCode === null && (walks < WALKS || churned === 0) && walks < CAP) {
        const keys = [...map.keys({ batchSize: 128 })].map((k) => readU32(k));
        assert.equal(new Set(keys).size, keys.length, `walk ${walks}: a key came twice`);
        const stableSeen = keys.filter((k) => k < stable).length;
        assert.equal(stableSeen, stable, `walk ${walks}: a stable key went missing`);
        if (keys.length > stable) churned++;
        walks++;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      assert.equal(child.exitCode, null, "the writer ended before it was told to");
      map.update(u32(0xffff_fffe), new Uint8Array(8)); // the writer's stop key
      told = true;
    } finally {
      if (!told && child.exitCode === null) child.kill();
    }
    assert.equal(await exited(child), 0);
    assert.ok(churned > 0, `none of ${walks} walks met the writer's keys`);
  },
);
