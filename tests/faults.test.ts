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
  BPF_F_ZERO_SEED,
  BpfError,
  type BpfSystem,
  openSystem,
  ReplayDivergenceError,
} from "../mod.ts";
import { isCall, parseTranscript } from "../replay/transcript.ts";
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
    using map = hashOf(system);
    map.updateBatch(keysOf(32), valuesOf(32));
    let cursor: Uint8Array | null = null;
    do {
      const batch = map.lookupBatch({ cursor, count: 16 });
      seen.push(...readU32s(batch.keys));
      cursor = batch.cursor;
    } while (cursor !== null);
  },
  "drain": (system, seen) => {
    using map = hashOf(system);
    map.updateBatch(keysOf(32), valuesOf(32));
    let cursor: Uint8Array | null = null;
    do {
      const batch = map.lookupAndDeleteBatch({ cursor, count: 16 });
      seen.push(...readU32s(batch.keys));
      cursor = batch.cursor;
    } while (cursor !== null);
  },
  "walk": (system, seen) => {
    using map = hashOf(system);
    map.updateBatch(keysOf(32), valuesOf(32));
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
        if (name === "walk" && errno === "ENOSPC" && command === "BPF_MAP_LOOKUP_BATCH") {
          // The walk grows its batch and asks again: a call the recording never made.
          assert.ok(error instanceof ReplayDivergenceError, `${where}: ${String(error)}`);
          assert.deepEqual(error.differences, [
            "keys: expected 64 bytes, got 128",
            "values: expected 128 bytes, got 256",
            "count: expected 16, got 32",
          ]);
          continue;
        }
        assert.ok(error instanceof BpfError, `${where}: ${String(error)}`);
        assert.equal(error.code, errno, where);
        assert.equal(error.op, command, where);
        if (error instanceof BatchError) assert.equal(error.processed, 0, where);
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
