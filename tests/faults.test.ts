// Fault injection through the player: every public operation, driven through
// a fault at every bpf() call it makes, for EINTR, EAGAIN, ENOMEM, EFAULT,
// ENOSPC and EPERM. EINTR is retried (nothing happened in the kernel), so the
// operation completes as recorded; any other errno is a BpfError naming that
// errno and the command; a drain interrupted midway has already returned
// every element removed before the fault.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdirSync, rmSync } from "node:fs";
import { after, before, test } from "node:test";
import type { SyscallBackend } from "../ffi/backend.ts";
import { Kernel, liveKernel } from "../kernel.ts";
import { listMapIds } from "../map_ids.ts";
import {
  BatchError,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  BpfError,
  type BpfSystem,
  decode,
  lpmKey,
  openSystem,
  ReplayDivergenceError,
  type TypedMap,
  u32 as u32Codec,
  u64 as u64Codec,
} from "../mod.ts";
import { type CallEntry, isCall, parseTranscript } from "../replay/transcript.ts";
import { readU32, readU32s, u32, u64 } from "./helpers/bytes.ts";
import { liveTest, liveUnavailable, replayRun } from "./helpers/live.ts";
import { fixturePath, transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const ERRNOS = ["EINTR", "EAGAIN", "ENOMEM", "EFAULT", "ENOSPC", "EPERM"];

/** A scenario writes what it saw into `seen` as it goes, so that a fault leaves what came before. */
type Scenario = (system: BpfSystem, seen: unknown[]) => void;

const hashOf = (system: BpfSystem) =>
  system.createMap({
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 64,
    flags: BPF_F_ZERO_SEED,
  });
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

const BPFFS = "/tmp/bpfmap-faults-bpffs";
let mountedHere = false;
before(() => {
  if (replayRun || liveUnavailable !== undefined) return;
  mkdirSync(BPFFS, { recursive: true });
  if (spawnSync("mountpoint", ["-q", BPFFS]).status !== 0) {
    execFileSync("mount", ["-t", "bpf", "bpf", BPFFS]);
    mountedHere = true;
  }
});
after(() => {
  if (!mountedHere) return;
  execFileSync("umount", [BPFFS]);
  rmSync(BPFFS, { recursive: true, force: true });
});

for (const [name, scenario] of Object.entries(SCENARIOS)) {
  transcriptTest(name, (system) => scenario(system, []));
}

/** Replays scenario `name` with one fault; returns what it saw and what it threw. */
async function withFault(name: string, call: number, errno: string) {
  const system = await openSystem({
    transcript: fixturePath(import.meta.url, name),
    mode: "replay",
    modeFromEnvironment: false,
    faults: [{ call, errno }],
  });
  const seen: unknown[] = [];
  let error: unknown;
  try {
    SCENARIOS[name](system, seen);
  } catch (e) {
    error = e;
  }
  await system.close().catch(() => {}); // a faulted run leaves recorded calls unplayed
  return { seen, error };
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
    const path = fixturePath(import.meta.url, name);
    const transcript = parseTranscript(readFileSync(path, "utf8"), path);
    const calls = transcript.entries.filter(isCall);
    const clean = await withFault(name, -1, "EINTR");
    assert.equal(clean.error, undefined, `${name} replays cleanly`);
    for (let call = 0; call < calls.length; call++) {
      const command = calls[call].call;
      for (const errno of ERRNOS) {
        injected++;
        const { seen, error } = await withFault(name, call, errno);
        const where = `${name}, call #${call} (${command}), ${errno}`;
        if (errno === "EINTR") {
          assert.equal(error, undefined, `${where}: ${String(error)}`);
          assert.deepEqual(seen, clean.seen, where);
          continue;
        }
        const grows = name === "walk" || name.startsWith("typed drain");
        if (grows && errno === "ENOSPC" && /^BPF_MAP_LOOKUP(_AND_DELETE)?_BATCH$/.test(command)) {
          // A walk or drain grows its batch and asks again: a call the recording never made.
          assert.ok(error instanceof ReplayDivergenceError, `${where}: ${String(error)}`);
          const asked = calls[call].attr.count as { in: number };
          assert.ok(
            error.differences.includes(`count: expected ${asked.in}, got ${asked.in * 2}`),
            `${where}: ${error.differences.join("; ")}`,
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

/** The live backend, failing the `call`-th bpf() call with `errno` (for system-wide state no fixture can hold). */
function faultingKernel(call: number, errno: number): Kernel {
  const live = liveKernel().backend;
  let calls = 0;
  const backend: SyscallBackend = {
    runtime: live.runtime,
    bpf: (attr) => (calls++ === call ? -errno : live.bpf(attr)),
    close: (fd) => live.close(fd),
    baseAddress: (buffer) => live.baseAddress(buffer),
    readTextFile: (path) => live.readTextFile(path),
    fdInfo: (fd) => live.fdInfo(fd),
  };
  return new Kernel(backend, { closesLeakedFds: false });
}

liveTest("listMapIds under a fault at every call: EINTR retried, other errnos reported", () => {
  const ids = listMapIds();
  for (let call = 0; call <= ids.length; call++) {
    assert.deepEqual(listMapIds(faultingKernel(call, 4)), listMapIds(), `EINTR at call ${call}`);
    for (
      const [code, errno] of [["EAGAIN", 11], ["ENOMEM", 12], ["EFAULT", 14], ["EPERM", 1]] as const
    ) {
      assert.throws(() => listMapIds(faultingKernel(call, errno)), (error) => {
        return error instanceof BpfError && error.code === code
          && error.op === "BPF_MAP_GET_NEXT_ID";
      }, `${code} at call ${call}`);
    }
  }
});
