// A concurrent inserter for tests: opens map `id` and inserts the keys
// first, first+1, ... first+count-1 (u32), each once, one call each, while
// the test drains the map. A key that finds the map full is retried until it
// fits. Prints "ready" once the map is open and, at the end, "inserted N".

import process from "node:process";
import { BpfMap } from "../../mod.ts";
import { insertKeys } from "./insert_keys.ts";

const args = process.argv.slice(-3).map(Number);
const [id, first, count] = args;
if (
  id === undefined || first === undefined || count === undefined
  || !args.every(Number.isSafeInteger)
) {
  throw new TypeError(`inserter.ts ID FIRST COUNT: got ${process.argv.slice(2).join(" ")}`);
}
using map = BpfMap.fromId(id);
console.log("ready");
console.log(`inserted ${insertKeys(map, first, count, 0x11).inserted}`);
