// A second process, or a Worker thread, writes while this one walks and drains: walks never
// repeat a key, drains by lookupAndDeleteBatch return every key exactly once,
// and nothing inserted is ever lost, over 100 rounds or more.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { BpfMap } from "../mod.ts";
import { readU32s } from "./helpers/bytes.ts";
import { exited, spawnReady } from "./helpers/child.ts";
import { liveTest } from "./helpers/live.ts";

const INSERTER = fileURLToPath(new URL("./helpers/inserter.ts", import.meta.url));

/**
 * Drains `map` with lookupAndDeleteBatch while `running()` says the writer
 * works and for at least 100 rounds, walking it with entries() in between;
 * marks every drained key in `drained` and fails on a key drained twice or a
 * walk that repeats a key. Returns the rounds made and the keys walks saw.
 */
async function drainWhileWriting(
  map: BpfMap,
  drained: Uint8Array,
  running: () => boolean,
): Promise<{ rounds: number; walked: number }> {
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
  let rounds = 0;
  let walked = 0;
  while (running() || rounds < 100) {
    const walk = [...map.keys({ batchSize: 128 })].map((key) =>
      new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true)
    );
    assert.equal(new Set(walk).size, walk.length, `round ${rounds}: a walk repeated a key`);
    walked += walk.length;
    drainOnce();
    rounds++;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  drainOnce();
  return { rounds, walked };
}

/** Asserts every key 1..keys was drained exactly once and the map is empty. */
function assertAllDrained(map: BpfMap, drained: Uint8Array, keys: number): void {
  let missing = 0;
  for (let key = 1; key <= keys; key++) if (drained[key] === 0) missing++;
  assert.equal(missing, 0, `${missing} inserted keys were neither drained nor left in the map`);
  assert.equal(map.nextKey(), undefined);
}

const KEYS = 200_000;

liveTest(
  "a process inserts while this one walks and drains: nothing lost, nothing doubled",
  async () => {
    using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4096 });
    const child = await spawnReady(INSERTER, [String(map.id), "1", String(KEYS)]);
    let output = "";
    child.stdout!.on("data", (chunk) => (output += String(chunk)));
    const drained = new Uint8Array(KEYS + 1);
    let result;
    try {
      result = await drainWhileWriting(map, drained, () => child.exitCode === null);
    } finally {
      if (child.exitCode === null) child.kill();
    }
    assert.equal(await exited(child), 0);
    assert.equal(Number(/inserted (\d+)/.exec(output)?.[1]), KEYS);
    assertAllDrained(map, drained, KEYS);
    console.log(
      `process: ${result.rounds} rounds, ${KEYS} keys inserted concurrently, each drained `
        + `exactly once; walks saw ${result.walked} keys, none twice`,
    );
  },
);

liveTest("a Worker thread inserts while this one walks and drains: the same", async () => {
  using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4096 });
  const url = new URL("./helpers/insert_worker.ts", import.meta.url).href;
  const worker = new Worker(url, { type: "module" });
  let reply: { inserted: number; full: number } | undefined;
  let failure: unknown;
  worker.onmessage = (event) => (reply = event.data);
  worker.onerror = (event) => (failure = event);
  worker.postMessage({ id: map.id, first: 1, count: KEYS });
  const drained = new Uint8Array(KEYS + 1);
  let result;
  try {
    result = await drainWhileWriting(
      map,
      drained,
      () => reply === undefined && failure === undefined,
    );
  } finally {
    worker.terminate();
  }
  assert.equal(failure, undefined, String((failure as { message?: string })?.message));
  assert.equal(reply?.inserted, KEYS);
  assertAllDrained(map, drained, KEYS);
  console.log(
    `worker: ${result.rounds} rounds, ${KEYS} keys inserted by another thread `
      + `(${reply?.full} E2BIG answers read on its own errno), each drained exactly once`,
  );
});
