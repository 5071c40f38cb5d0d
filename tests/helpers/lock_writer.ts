/**
 * One side of the BPF_F_LOCK contention test, run in a child process: writes
 * a value whose 64 words all hold the same number under the value's spin
 * lock, reads it back under the lock, and counts reads where the words
 * disagree (torn) and reads of the other side's writes, until the parent
 * sets the stop key. Prints `ready`, then its counts as JSON.
 *
 * Usage: lock_writer.ts MAP_ID TAG [unlocked]
 *
 * @module
 */

import process from "node:process";
import { BpfMap } from "../../mod.ts";
import { contend } from "./lock_contention.ts";

const [id, tag, unlocked] = process.argv.slice(2);
using map = BpfMap.fromId(Number(id));
console.log("ready");
console.log(JSON.stringify(contend(map, Number(tag), { locked: unlocked !== "unlocked" })));
