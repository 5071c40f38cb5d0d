/**
 * The loop both sides of the BPF_F_LOCK contention test run, the parent in
 * the test and the child in `lock_writer.ts`, on one array map of three keys:
 * the shared value, a stop flag (set by the parent) and the child's published
 * counts, so that the parent stops both sides on counts, never on a clock.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { array, BPF_F_LOCK, type BpfMap, encode, spinLock, struct, u32 } from "../../mod.ts";

/**
 * Words per value. Copying 16 KiB takes the kernel microseconds, a good part
 * of each call, so without the lock a read often overlaps the other side's
 * write; with 64 words (512 bytes) a torn read was rare enough to need luck.
 */
export const WORDS = 4096;
/** The contended value: a spin lock and 4096 words that must always agree. */
export const LOCKED_VALUE = struct({ lock: spinLock, words: array(u32, WORDS) }, {
  name: "locked",
});
/** The key both sides write and read. */
export const SHARED_KEY = 0;
/** The key whose first word, once non-zero, tells the child to stop. */
export const STOP_KEY = 1;
/** The key where the child publishes its counts for the parent. */
export const PROGRESS_KEY = 2;
/** Keys the map needs. */
export const KEYS = 3;
/** Rounds between looks at the stop flag and the published counts. */
const CHECK_EVERY = 64;
/** Where the words start: after the 4-byte lock. */
const WORDS_AT = 4;

/** What one side saw. */
export interface Contention {
  /** Writes, each followed by a read. */
  rounds: number;
  /** Reads whose words disagreed: half of one write and half of another. */
  torn: number;
  /** Whole reads of the other side's write, made between one's own write and read. */
  sawOther: number;
}

/** How a side runs. */
export interface ContendOptions {
  /** Write and read with BPF_F_LOCK. */
  locked: boolean;
  /** This side's tag, 1-255, written in the top byte of every word. */
  tag: number;
  /** The child: publish its counts under PROGRESS_KEY, and stop when the stop flag is set. */
  child?: boolean;
  /** The parent: stop both sides once this holds of its counts and the child's latest ones. */
  until?: (mine: Contention, theirs: Contention) => boolean;
  /** A safety cap on rounds: the loop returns when it is reached, goal met or not. */
  maxRounds: number;
}

/**
 * Writes `tag << 24 | round` into every word and reads the value back, under
 * the lock or not, counting torn reads and reads of the other side's writes.
 * Returns this side's counts and, for the parent, the child's latest
 * published ones (the child prints its final counts itself).
 */
export function contend(
  map: BpfMap,
  opts: ContendOptions,
): { mine: Contention; theirs: Contention } {
  const flags = opts.locked ? BPF_F_LOCK : 0;
  const shared = encode(u32, SHARED_KEY);
  const value = new Uint8Array(LOCKED_VALUE.size);
  const words = new Uint32Array(value.buffer, WORDS_AT, WORDS);
  const mine: Contention = { rounds: 0, torn: 0, sawOther: 0 };
  let theirs: Contention = { rounds: 0, torn: 0, sawOther: 0 };
  const tag = opts.tag << 24;
  while (mine.rounds < opts.maxRounds) {
    if (mine.rounds % CHECK_EVERY === 0) {
      if (opts.child) {
        if (readWords(map, STOP_KEY, 0)[0] !== 0) break;
        publish(map, mine, flags);
      } else {
        theirs = readCounts(map, flags);
        if (opts.until?.(mine, theirs)) break;
      }
    }
    words.fill((tag | (mine.rounds & 0xff_ffff)) >>> 0);
    map.update(shared, value, flags);
    mine.rounds++;
    const read = readWords(map, SHARED_KEY, flags);
    if (!whole(read)) mine.torn++;
    else if (((read[0] ?? 0) & 0xff00_0000) !== (tag >>> 0)) mine.sawOther++; // WORDS > 0
  }
  return { mine, theirs };
}

/** Tells the child to stop. */
export function stopContention(map: BpfMap): void {
  const value = new Uint8Array(LOCKED_VALUE.size);
  new Uint32Array(value.buffer, WORDS_AT, WORDS).fill(1);
  map.update(encode(u32, STOP_KEY), value);
}

// A plain loop: TypedArray.every with a callback took 40-60 us for 4096 words, longer than
// both syscalls, which made the copies (and so torn reads) a small part of each round.
function whole(words: Uint32Array): boolean {
  const first = words[0];
  for (let i = 1; i < words.length; i++) if (words[i] !== first) return false;
  return true;
}

function readWords(map: BpfMap, key: number, flags: number): Uint32Array {
  const bytes = map.lookup(encode(u32, key), flags)!;
  // A 16 KiB result has an ArrayBuffer of its own, but go by byteOffset all the same.
  return new Uint32Array(bytes.buffer, bytes.byteOffset + WORDS_AT, WORDS);
}

function publish(map: BpfMap, counts: Contention, flags: number): void {
  const value = new Uint8Array(LOCKED_VALUE.size);
  new Uint32Array(value.buffer, WORDS_AT, 3).set([counts.rounds, counts.torn, counts.sawOther]);
  map.update(encode(u32, PROGRESS_KEY), value, flags);
}

function readCounts(map: BpfMap, flags: number): Contention {
  const [rounds = 0, torn = 0, sawOther = 0] = readWords(map, PROGRESS_KEY, flags); // WORDS >= 3
  return { rounds, torn, sawOther };
}

/** The CPUs every thread of `pid` may run on, as taskset lists them ("0,1", "0-3"). */
export function affinity(pid: number): string {
  const output = execFileSync("taskset", ["-pc", String(pid)], { encoding: "utf8" });
  return output.slice(output.lastIndexOf(":") + 1).trim();
}

/** The CPU numbers of a taskset list. */
export function cpusOf(list: string): number[] {
  return list.split(",").flatMap((range) => {
    const [first = NaN, last = first] = range.split("-").map(Number);
    if (!Number.isInteger(first) || !Number.isInteger(last)) {
      throw new Error(`taskset list ${list}`);
    }
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  });
}

/** Keeps every thread of `pid` on these CPUs (a taskset list). */
export function pin(pid: number, cpus: string): void {
  execFileSync("taskset", ["-apc", cpus, String(pid)], { stdio: "ignore" });
}
