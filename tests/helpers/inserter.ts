// A concurrent inserter for tests: opens map `id` and inserts the keys
// first, first+1, ... first+count-1 (u32), each once, one call each, while
// the test drains the map. A key that finds the map full is retried until it
// fits. Prints "ready" once the map is open and, at the end, "inserted N".

import process from "node:process";
import { BpfError, BpfMap } from "../../mod.ts";

const [id, first, count] = process.argv.slice(-3).map(Number);
using map = BpfMap.fromId(id);
const key = new Uint8Array(4);
const view = new DataView(key.buffer);
const value = new Uint8Array(map.valueStride).fill(0x11);
console.log("ready");
let inserted = 0;
for (let i = 0; i < count; i++) {
  view.setUint32(0, first + i, true);
  for (;;) {
    try {
      map.update(key, value);
      inserted++;
      break;
    } catch (error) {
      if (!(error instanceof BpfError && error.code === "E2BIG")) throw error;
    }
  }
}
console.log(`inserted ${inserted}`);
