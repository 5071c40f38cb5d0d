/**
 * The loop both sides of the BPF_F_LOCK contention test run.
 *
 * @module
 */

import {
  array,
  BPF_F_LOCK,
  type BpfMap,
  spinLock,
  struct,
  type TypedMap,
  u32,
  u64,
} from "../../mod.ts";

/** Words per value: a copy of 512 bytes takes long enough to be caught midway without the lock. */
export const WORDS = 64;
/** The contended value: a spin lock and 64 words that must always agree. */
export const LOCKED_VALUE = struct({ lock: spinLock, words: array(u64, WORDS) }, {
  name: "locked",
});
/** The key both sides write. */
export const SHARED_KEY = 0;
/** The key whose words, once non-zero, tell both sides to stop (works for hash and array maps). */
export const STOP_KEY = 1;

/** What one side saw. */
export interface Contention {
  writes: number;
  reads: number;
  /** Reads whose words disagreed. */
  torn: number;
  /** Reads that found the other side's latest write. */
  sawOther: number;
}

/**
 * Writes `tag << 32 | i` into every word and reads back, under the lock or
 * not, until the stop key appears (or `untilMs` passes, for the parent).
 */
export function contend(
  map: BpfMap,
  tag: number,
  opts: { locked: boolean; untilMs?: number },
): Contention {
  const flags = opts.locked ? BPF_F_LOCK : 0;
  const typed = map.typed({ key: u32, value: LOCKED_VALUE });
  const words = new Array<bigint>(WORDS);
  const result: Contention = { writes: 0, reads: 0, torn: 0, sawOther: 0 };
  const deadline = opts.untilMs === undefined ? Infinity : Date.now() + opts.untilMs;
  for (let i = 0;; i++) {
    if (i % 256 === 0 && (stopped(typed) || Date.now() > deadline)) return result;
    words.fill((BigInt(tag) << 32n) | BigInt(i));
    typed.set(SHARED_KEY, { words }, flags);
    result.writes++;
    const read = typed.get(SHARED_KEY, flags)!.words;
    result.reads++;
    if (read.some((word) => word !== read[0])) result.torn++;
    else if (read[0] >> 32n !== BigInt(tag)) result.sawOther++;
  }
}

function stopped(typed: TypedMap<number, { words: bigint[] }>): boolean {
  return (typed.get(STOP_KEY)?.words[0] ?? 0n) !== 0n;
}

/** Tells every side to stop. */
export function stopContention(map: BpfMap): void {
  map.typed({ key: u32, value: LOCKED_VALUE }).set(STOP_KEY, { words: new Array(WORDS).fill(1n) });
}
