// Fault injection through the player: every public operation, driven through
// a fault at every bpf() call it makes, for EINTR, EAGAIN, ENOMEM, EFAULT,
// ENOSPC and EPERM. EINTR is retried (nothing happened in the kernel), so the
// operation completes as recorded; any other errno is a BpfError naming that
// errno and the command; a drain interrupted midway has already returned
// every element removed before the fault.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { rmSync } from "node:fs";
import { after, before, test } from "node:test";
import type { Attr } from "../ffi/attr.ts";
import { forwardingBackend } from "../ffi/backend.ts";
import { BPF_MAP_GET_NEXT_ID } from "../ffi/commands.ts";
import { Kernel, liveKernel } from "../ffi/kernel.ts";
import { listMapIds } from "../maps/ids.ts";
import {
  BatchError,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  BpfError,
  BpfMap,
  type BpfSystem,
  decode,
  lpmKey,
  openSystem,
  ReplayDivergenceError,
  type TypedMap,
  u32 as u32Codec,
  u64 as u64Codec,
} from "../mod.ts";
import type { ReplayFault } from "../replay/player.ts";
import { type CallEntry, isCall, parseTranscript, type ScalarInOut } from "../replay/transcript.ts";
import { type FreshBpffs, freshBpffs, REPLAY_BPFFS } from "./helpers/bpffs.ts";
import { readU32, readU32s, u32, u64 } from "./helpers/bytes.ts";
import { liveTest, liveUnavailable, replayRun, thrown } from "./helpers/live.ts";
import { fixturePath, transcriptTests } from "./helpers/transcript.ts";

const ERRNOS = ["EINTR", "EAGAIN", "ENOMEM", "EFAULT", "ENOSPC", "EPERM"];

/** A scenario writes what it saw into `seen` as it goes, so that a fault leaves what came before. */
type Scenario = (system: BpfSystem, seen: unknown[]) => void;

const hashOf = (system: BpfSystem, maxEntries = 64) =>
  system.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries, flags: BPF_F_ZERO_SEED });
const keysOf = (n: number) => u32(...Array.from({ length: n }, (_, i) => i + 1));
const valuesOf = (n: number) => u64(...Array.from({ length: n }, (_, i) => (i + 1) * 10));
/** The hash map of `hashOf`, holding keys 1..32 (values 10..320) from one update batch. */
const filledHash = (system: BpfSystem) => {
  const map = hashOf(system);
  map.updateBatch(keysOf(32), valuesOf(32));
  return map;
};

const SCENARIOS: Record<string, Scenario> = {
  "element operations": (system, seen) => {
    using map = hashOf(system);
    map.update(u32(1), u64(10));
    seen.push([...map.lookup(u32(1))!]);
    seen.push(map.nextKey() === undefined ? null : readU32(map.nextKey()));
    seen.push([...map.lookupAndDelete(u32(1))!]);
    seen.push(map.delete(u32(1)));
  },
  "keyless operations": (system, seen) => {
    using queue = system.createMap({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 4 });
    queue.push(u32(7));
    seen.push(readU32(queue.peek()));
    seen.push(readU32(queue.pop()));
  },
  "batch writes": (system, seen) => {
    using map = hashOf(system);
    seen.push(map.updateBatch(keysOf(8), valuesOf(8)));
    seen.push(map.deleteBatch(keysOf(4)));
  },
  "overflowing batch write": (system, seen) => {
    // 6 keys into a 4-entry hash: the kernel applies 4, then answers E2BIG with count 4.
    using map = hashOf(system, 4);
    const error = thrown(() => map.updateBatch(keysOf(6), valuesOf(6)));
    if (!(error instanceof BatchError && error.code === "E2BIG")) throw error;
    seen.push(error.processed);
  },
  "batch lookups": (system, seen) => {
    using map = filledHash(system);
    let cursor: Uint8Array | null = null;
    do {
      const batch = map.lookupBatch({ cursor, count: 16 });
      seen.push(...readU32s(batch.keys));
      cursor = batch.cursor;
    } while (cursor !== null);
  },
  "drain": (system, seen) => {
    using map = filledHash(system);
    let cursor: Uint8Array | null = null;
    do {
      const batch = map.lookupAndDeleteBatch({ cursor, count: 16 });
      seen.push(...readU32s(batch.keys));
      cursor = batch.cursor;
    } while (cursor !== null);
  },
  "typed drain": (system, seen) => {
    using map = filledHash(system);
    drainInto(map.typed({ key: u32Codec, value: u64Codec }), seen, 16);
  },
  "typed drain, one element at a time": (system, seen) => {
    using map = system.createMap({
      type: "lpm_trie",
      keySize: 8,
      valueSize: 4,
      maxEntries: 8,
      flags: BPF_F_NO_PREALLOC,
    });
    const key = lpmKey(u32Codec);
    const routes = map.typed({ key, value: u32Codec });
    routes.setMany([1, 2, 3, 4].map((n) => [{ prefixlen: 8 * n, data: n }, n]));
    drainInto(routes, seen, 2);
  },
  "walk": (system, seen) => {
    using map = filledHash(system);
    for (const [key] of map.entries({ batchSize: 16 })) seen.push(readU32(key));
  },
  "pinning": (system, seen) => {
    rmSync(`${BPFFS}/pinned`, { force: true });
    {
      using map = system.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 2 });
      map.update(u32(1), u32(5));
      map.pin(`${BPFFS}/pinned`);
    }
    using again = system.openPinned(`${BPFFS}/pinned`, { readOnly: true });
    seen.push(readU32(again.lookup(u32(1))));
    rmSync(`${BPFFS}/pinned`, { force: true });
  },
  "map objects": (system, seen) => {
    using map = system.createMap({
      type: "array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      name: "faults",
    });
    seen.push(map.info().name);
    using again = system.mapFromId(map.id);
    seen.push(again.maxEntries);
    map.freeze();
    seen.push(again.fdInfo().frozen);
  },
};

/**
 * Drains `typed` into `seen`; on failure, first the elements the error says
 * were removed: a drain that fails must hand back everything it took.
 */
function drainInto<K>(typed: TypedMap<K, unknown>, seen: unknown[], batchSize: number): void {
  try {
    for (const [key] of typed.drain({ batchSize })) seen.push(key);
  } catch (error) {
    if (error instanceof BatchError && error.keys) {
      for (let i = 0; i < error.processed; i++) {
        seen.push(decode(typed.key, error.keys, i * typed.key.size));
      }
    }
    throw error;
  }
}

/** This run's own bpffs (transcripts write it as ${BPFFS}); replays mount none. */
let bpffs: FreshBpffs | undefined;
let BPFFS = REPLAY_BPFFS;
const paths = () => ({ BPFFS });
const transcriptTest = transcriptTests(import.meta.url, { paths });
before(() => {
  if (replayRun || liveUnavailable !== undefined) return;
  bpffs = freshBpffs();
  BPFFS = bpffs.path;
});
after(() => bpffs?.unmount());

for (const [name, scenario] of Object.entries(SCENARIOS)) {
  transcriptTest(name, (system) => scenario(system, []));
}

/** The recorded calls of scenario `name`. */
function recordedCalls(name: string): CallEntry[] {
  const path = fixturePath(import.meta.url, name);
  return parseTranscript(readFileSync(path, "utf8"), path).entries.filter(isCall);
}

/**
 * Replays scenario `name` with one fault; returns what it saw, what it threw,
 * and what closing the system threw (calls the recording made and this run
 * did not: a run that completed must have made them all).
 */
async function withFault(name: string, fault: ReplayFault) {
  const system = await openSystem({
    transcript: fixturePath(import.meta.url, name),
    mode: "replay",
    modeFromEnvironment: false,
    faults: [fault],
    paths: paths(),
  });
  const seen: unknown[] = [];
  const scenario = SCENARIOS[name] ?? assert.fail(`no scenario ${name}`);
  const error = thrown(() => scenario(system, seen));
  const closeError: unknown = await system.close().then(() => undefined, (e) => e);
  return { seen, error, closeError };
}

/** A run that stopped at a fault leaves the rest of the recording unplayed, and only that. */
function assertStoppedEarly(closeError: unknown, where: string): void {
  if (closeError === undefined) return;
  assert.ok(
    closeError instanceof ReplayDivergenceError
      && /recorded call\(s\) were never made/.test(closeError.message),
    `${where}: ${String(closeError)}`,
  );
}

/** How many elements the recorded lookup batches before call `end` returned. */
function returnedBefore(calls: CallEntry[], end: number): number {
  let returned = 0;
  for (const { call, attr, errno } of calls.slice(0, end)) {
    if (/^BPF_MAP_LOOKUP(_AND_DELETE)?_BATCH$/.test(call) && (!errno || errno === "ENOENT")) {
      returned += (attr.count as ScalarInOut).out;
    }
  }
  return returned;
}

/** How many elements the recorded calls before call `end` removed from the map. */
function removedBefore(calls: CallEntry[], end: number): number {
  let removed = 0;
  for (const { call, attr, errno } of calls.slice(0, end)) {
    if (call === "BPF_MAP_LOOKUP_AND_DELETE_BATCH" && (errno === undefined || errno === "ENOENT")) {
      removed += (attr.count as { out: number }).out;
    }
    if (call === "BPF_MAP_DELETE_ELEM" && errno === undefined) removed++;
  }
  return removed;
}

test("every operation, a fault at every call: EINTR retried, other errnos reported as such", async () => {
  let injected = 0;
  for (const name of Object.keys(SCENARIOS)) {
    const calls = recordedCalls(name);
    const clean = await withFault(name, { call: -1, errno: "EINTR" });
    assert.equal(clean.error, undefined, `${name} replays cleanly`);
    assert.equal(clean.closeError, undefined, `${name} makes every recorded call`);
    for (const [call, entry] of calls.entries()) {
      const command = entry.call;
      for (const errno of ERRNOS) {
        injected++;
        const { seen, error, closeError } = await withFault(name, { call, errno });
        const where = `${name}, call #${call} (${command}), ${errno}`;
        if (errno === "EINTR") {
          assert.equal(error, undefined, `${where}: ${String(error)}`);
          assert.equal(closeError, undefined, `${where}: ${String(closeError)}`);
          assert.deepEqual(seen, clean.seen, where);
          continue;
        }
        assertStoppedEarly(closeError, where);
        const grows = name === "walk" || name.startsWith("typed drain");
        if (grows && errno === "ENOSPC" && /^BPF_MAP_LOOKUP(_AND_DELETE)?_BATCH$/.test(command)) {
          // A walk or drain grows its batch and asks again: a call the recording never made.
          // A typed drain hands it back inside its DrainError, with what it removed before.
          const divergence = error instanceof BatchError && error.op === "drain"
            ? error.cause
            : error;
          assert.ok(divergence instanceof ReplayDivergenceError, `${where}: ${String(error)}`);
          const asked = entry.attr.count as { in: number };
          assert.ok(
            divergence.differences.includes(`count: expected ${asked.in}, got ${asked.in * 2}`),
            `${where}: ${divergence.differences.join("; ")}`,
          );
          continue;
        }
        assert.ok(error instanceof BpfError, `${where}: ${String(error)}`);
        assert.equal(error.code, errno, where);
        assert.equal(error.op, command, where);
        if (name.startsWith("typed drain")) {
          // Every element removed before the fault comes back with the error.
          assert.equal(seen.length, removedBefore(calls, call), where);
          if (error instanceof BatchError) assert.equal(error.processed, seen.length, where);
        } else if (error instanceof BatchError) {
          assert.equal(error.processed, 0, where);
        }
        // What was seen before the fault is exactly what the clean run saw up to there.
        assert.deepEqual(seen, clean.seen.slice(0, seen.length), where);
      }
    }
  }
  console.log(
    `fault injection: ${injected} faults injected across ${
      Object.keys(SCENARIOS).length
    } scenarios`,
  );
});

test("a batch that fails part-way reports the count the kernel wrote back, exactly", async () => {
  const name = "overflowing batch write";
  const update = recordedCalls(name).find((c) => c.call === "BPF_MAP_UPDATE_BATCH")!;
  assert.equal(update.errno, "E2BIG");
  const written = (update.attr.count as ScalarInOut).out;
  assert.ok(written > 0 && written < (update.attr.count as ScalarInOut).in, `count ${written}`);
  const { seen, error, closeError } = await withFault(name, { call: -1, errno: "EINTR" });
  assert.equal(error, undefined);
  assert.equal(closeError, undefined);
  assert.deepEqual(seen, [written]);
});

test("an EINTR after part of a batch is reported with the part done, not asked again", async () => {
  let injected = 0;
  for (const name of Object.keys(SCENARIOS)) {
    const calls = recordedCalls(name);
    const clean = await withFault(name, { call: -1, errno: "EINTR" });
    for (const [call, entry] of calls.entries()) {
      const { call: command, attr, errno } = entry;
      const count = attr.count as ScalarInOut | undefined;
      if (count === undefined) continue;
      // A lookup can only have filled elements the recording returned.
      const returned = errno === undefined || errno === "ENOENT" ? count.out : 0;
      const most = Math.min(count.in - 1, command.includes("LOOKUP") ? returned : Infinity);
      for (const processed of new Set([1, most])) {
        if (processed < 1 || processed > most) continue;
        injected++;
        const where = `${name}, call #${call} (${command}), EINTR after ${processed}`;
        const { seen, error, closeError } = await withFault(name, {
          call,
          errno: "EINTR",
          processed,
        });
        // Asked again, the call would diverge (its count now says `processed`): a
        // BatchError says it was not, and that the work done is reported.
        assert.ok(error instanceof BatchError, `${where}: ${String(error)}`);
        // A typed drain's error counts all it removed, the batches before this one included.
        const drained = name.startsWith("typed drain") ? returnedBefore(calls, call) : 0;
        assert.deepEqual(
          [error.code, error.op, error.processed],
          ["EINTR", command, drained + processed],
          where,
        );
        assertStoppedEarly(closeError, where);
        if (command.includes("LOOKUP")) {
          assert.equal(error.keys?.byteLength, (drained + processed) * 4, where);
          if (name === "walk" || name.startsWith("typed drain")) {
            // A walk or drain hands over what the failed call returned before it throws.
            assert.equal(seen.length, returnedBefore(calls, call) + processed, where);
          }
        }
        assert.deepEqual(seen, clean.seen.slice(0, seen.length), where);
      }
    }
  }
  assert.ok(injected >= 10, `${injected} partial faults`);
});

test("a partial fault is refused where the kernel could not have done part of the call", async () => {
  const create = await withFault("batch writes", { call: 0, errno: "EINTR", processed: 1 });
  assert.ok(create.error instanceof TypeError);
  assert.match(create.error.message, /processed needs a batch command, not BPF_MAP_CREATE/);
  const whole = await withFault("batch writes", { call: 2, errno: "EINTR", processed: 8 });
  assert.ok(whole.error instanceof RangeError);
  assert.match(whole.error.message, /processed must be an integer from 0 to 7 \(count 8\), got 8/);
});

/** Which call to fail: `index` counts every call, from 0; `attr` is the call's attr. */
type FaultAt = (index: number, attr: Attr) => boolean;
const atCall = (call: number): FaultAt => (index) => index === call;
const afterId = (id: number): FaultAt => (_, attr) =>
  attr.command === BPF_MAP_GET_NEXT_ID && attr.getU32(BPF_MAP_GET_NEXT_ID.fields.start_id) === id;

/**
 * The live backend, failing the first call `fires` picks with `errno`, once
 * (for system-wide state no fixture can hold).
 */
function faultingKernel(fires: FaultAt, errno: number) {
  const live = liveKernel().backend;
  let calls = 0;
  let injected = 0;
  const backend = Object.assign(forwardingBackend(() => live), {
    bpf: (attr: Attr) => {
      if (injected === 0 && fires(calls++, attr)) {
        injected++;
        return -errno;
      }
      return live.bpf(attr);
    },
  });
  return { kernel: new Kernel(backend, { closesLeakedFds: false }), injected: () => injected };
}

liveTest("listMapIds under a fault at every call: EINTR retried, other errnos reported", () => {
  // Other BPF users create and free maps meanwhile: compare only this test's own maps, and
  // fault only calls every walk makes: the first ones (one per own map, as a walk makes at
  // least that many) and those that ask for the id after each own map.
  const own = [0, 1, 2].map(() =>
    BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 })
  );
  try {
    const ownIds = own.map((map) => map.id);
    const mine = (ids: number[]) => ids.filter((id) => ownIds.includes(id));
    assert.deepEqual(mine(listMapIds()), ownIds);
    const faults = [
      ...ownIds.map((_, i) => ({ at: `call ${i}`, fires: atCall(i) })),
      ...ownIds.map((id) => ({ at: `the call after id ${id}`, fires: afterId(id) })),
    ];
    for (const { at, fires } of faults) {
      const eintr = faultingKernel(fires, 4);
      assert.deepEqual(mine(listMapIds(eintr.kernel)), ownIds, `EINTR at ${at}`);
      assert.equal(eintr.injected(), 1, `EINTR at ${at}: injected once`);
      for (
        const [code, errno] of [["EAGAIN", 11], ["ENOMEM", 12], ["EFAULT", 14], [
          "EPERM",
          1,
        ]] as const
      ) {
        assert.throws(() => listMapIds(faultingKernel(fires, errno).kernel), (error) => {
          return error instanceof BpfError && error.code === code
            && error.op === "BPF_MAP_GET_NEXT_ID";
        }, `${code} at ${at}`);
      }
    }
  } finally {
    for (const map of own) map.close();
  }
});
