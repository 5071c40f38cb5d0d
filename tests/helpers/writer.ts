// A concurrent writer for tests: opens map `id` and, round after round, inserts
// keys [first, first + span) and deletes them again, one by one, until
// `rounds` rounds are done or, with `rounds` 0, until the map holds STOP_KEY
// (the test says when it has seen enough: no clock decides). Prints "ready"
// once the map is open and "done N" at the end.

import process from "node:process";
import { BpfMap } from "../../mod.ts";

const args = process.argv.slice(-4).map(Number);
const [id, first, span, rounds] = args;
if (
  id === undefined || first === undefined || span === undefined || rounds === undefined
  || !args.every(Number.isSafeInteger)
) {
  throw new TypeError(`writer.ts ID FIRST SPAN ROUNDS: got ${process.argv.slice(2).join(" ")}`);
}
using map = BpfMap.fromId(id);
const key = new Uint8Array(4);
const view = new DataView(key.buffer);
const value = new Uint8Array(map.valueStride).fill(0x5a);
console.log("ready");
let writes = 0;
/** The key a test inserts to stop a writer started with `rounds` 0. */
const STOP_KEY = new Uint8Array([0xfe, 0xff, 0xff, 0xff]);
const stopped = () => rounds === 0 && map.lookup(STOP_KEY) !== undefined;
for (let round = 0; rounds === 0 || round < rounds; round++) {
  if (stopped()) break;
  for (let i = 0; i < span; i++) {
    view.setUint32(0, first + i, true);
    map.update(key, value);
    writes++;
  }
  for (let i = 0; i < span; i++) {
    view.setUint32(0, first + i, true);
    map.delete(key);
    writes++;
  }
}
console.log(`done ${writes}`);
