// A recording holds what the code read from a mapping, not what the mapping held a moment later.
// A producer (the kernel, a program) may write between an `observe` and the read it is for: the
// recorder hands the code a private copy, filled by observe and written back by wrote, so the
// code acts on the recorded bytes and a replay, served those bytes, makes the same calls.
// The producer here is the test itself, writing through a second live mapping (unrecorded)
// just after each observe; in a replay there is no live memory, and the transcript serves all.

import assert from "node:assert/strict";
import { primitivesOf } from "../ffi/backend.ts";
import { liveKernel } from "../ffi/kernel.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import { BPF_F_MMAPABLE, BpfMap, type BpfSystem } from "../mod.ts";
import { RecordingBackend } from "../replay/recorder.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);
const keyOf = (index: number) => new Uint8Array(new Uint32Array([index]).buffer);

/**
 * Makes every mapping `sys` opens from now on race a producer: after each observe, the u32 at
 * the observed offset is bumped in the live memory, through a mapping of `map` of the test's
 * own. Returns how many bumps were made (none in a replay: nothing is live).
 */
function racingProducer(sys: BpfSystem, map: BpfMap): () => number {
  const backend = sys.kernel.backend as unknown as Record<string, unknown>;
  let bumps = 0;
  if (!(sys.kernel.backend instanceof RecordingBackend)) return () => bumps; // a replay
  const live = primitivesOf(liveKernel().backend);
  const own = live.mmap(map.fd, live.pageSize, "readWrite", 0);
  if (typeof own === "number") throw new Error(`mmap: ${own}`);
  const words = new DataView(own.bytes.buffer);
  const mmap = backend.mmap as (...args: unknown[]) => MappedRegion | number;
  backend.mmap = (...args: unknown[]) => {
    const region = mmap.apply(backend, args);
    if (typeof region === "number") return region;
    return {
      ...region,
      observe(offset: number, size: number) {
        region.observe(offset, size);
        words.setUint32(offset, words.getUint32(offset, true) + 1, true);
        bumps++;
      },
    };
  };
  return () => {
    delete backend.mmap;
    own.unmap();
    return bumps;
  };
}

transcriptTest(
  "the code reads what observe recorded, not what a producer wrote after it",
  (sys) => {
    using map = sys.createMap({
      type: "array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
      flags: BPF_F_MMAPABLE,
    });
    map.update(keyOf(0), new Uint8Array([10, 0, 0, 0]));
    const stop = racingProducer(sys, map);
    let bumps: number;
    try {
      using memory = map.memory();
      // Read, then written back one more: a read of the producer's 11 would write 12, where the
      // replay, served 10, writes 11 and diverges.
      const seen = memory.readU32(0);
      assert.equal(seen, 10);
      memory.setU32(0, seen + 1);
      assert.equal(memory.readU32(0), 11); // what was written back, not the producer's 12
      memory.setU32(memory.stride, 7); // element 1
    } finally {
      bumps = stop();
    }
    assert.equal(bumps, sys.kernel.backend instanceof RecordingBackend ? 2 : 0);
    // What wrote copied back reached the kernel's memory, the producer's last bump after it.
    assert.deepEqual(map.lookup(keyOf(0)), new Uint8Array([12, 0, 0, 0]));
    assert.deepEqual(map.lookup(keyOf(1)), new Uint8Array([7, 0, 0, 0]));
  },
);
