// A second process writes while this one walks and drains: walks never
// repeat a key, drains by lookupAndDeleteBatch return every key exactly once,
// and nothing inserted is ever lost, over 100 rounds or more.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { BpfMap } from "../mod.ts";
import { readU32s } from "./helpers/bytes.ts";
import { exited, spawnReady } from "./helpers/child.ts";
import { liveTest } from "./helpers/live.ts";

const INSERTER = fileURLToPath(new URL("./helpers/inserter.ts", import.meta.url));

liveTest(
  "draining with lookupAndDeleteBatch while another process inserts loses and doubles nothing",
  async () => {
    const keys = 200_000;
    using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4096 });
    const child = await spawnReady(INSERTER, [String(map.id), "1", String(keys)]);
    let output = "";
    child.stdout!.on("data", (chunk) => (output += String(chunk)));
    const drained = new Uint8Array(keys + 1);
    let rounds = 0;
    let walkedKeys = 0;
    const drainOnce = () => {
      let cursor: Uint8Array | null = null;
      let count = 256;
      for (;;) {
        let batch;
        try {
          batch = map.lookupAndDeleteBatch({ cursor, count });
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOSPC") throw error;
          count *= 2;
          continue;
        }
        for (const key of readU32s(batch.keys)) {
          assert.equal(drained[key], 0, `key ${key} was drained twice`);
          drained[key] = 1;
        }
        if (batch.cursor === null) return;
        cursor = batch.cursor;
      }
    };
    try {
      while (child.exitCode === null || rounds < 100) {
        const walk = [...map.keys({ batchSize: 128 })].map((key) =>
          new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true)
        );
        assert.equal(new Set(walk).size, walk.length, `round ${rounds}: a walk repeated a key`);
        walkedKeys += walk.length;
        drainOnce();
        rounds++;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      if (child.exitCode === null) child.kill();
    }
    assert.equal(await exited(child), 0);
    drainOnce();
    const inserted = Number(/inserted (\d+)/.exec(output)?.[1]);
    assert.equal(inserted, keys);
    let missing = 0;
    for (let key = 1; key <= keys; key++) if (drained[key] === 0) missing++;
    assert.equal(missing, 0, `${missing} inserted keys were neither drained nor left in the map`);
    assert.equal(map.nextKey(), undefined);
    console.log(
      `${rounds} rounds, ${keys} keys inserted concurrently, each drained exactly once; walks saw ${walkedKeys} keys, none twice`,
    );
  },
);
