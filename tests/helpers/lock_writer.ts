/**
 * One side of the BPF_F_LOCK contention test, run in a child process: writes
 * a value whose words all hold the same number, reads it back, under the
 * value's spin lock or not, and publishes its counts (torn reads, reads of the
 * other side's writes) in the map until the parent sets the stop key. Prints
 * `ready`, then its final counts as JSON.
 *
 * Usage: lock_writer.ts MAP_ID TAG locked|unlocked MAX_ROUNDS
 *
 * @module
 */

import process from "node:process";
import { BpfMap } from "../../mod.ts";
import { contend } from "./lock_contention.ts";

const [id, tag, mode, maxRounds] = process.argv.slice(2);
if (mode !== "locked" && mode !== "unlocked") throw new TypeError(`mode: ${mode}`);
using map = BpfMap.fromId(Number(id));
console.log("ready");
const { mine } = contend(map, {
  locked: mode === "locked",
  tag: Number(tag),
  child: true,
  maxRounds: Number(maxRounds),
});
console.log(JSON.stringify(mine));
