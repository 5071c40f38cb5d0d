// Pinning in bpffs and opening pinned maps, on a bpffs this test mounts
// itself in a folder of this run's own (transcripts write it as ${BPFFS}, so
// two runs never share pins). Replay runs mount nothing: the player answers
// for the kernel.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { type FreshBpffs, freshBpffs, REPLAY_BPFFS } from "./helpers/bpffs.ts";
import { readU32, u32 } from "./helpers/bytes.ts";
import { replayRun, throwsBpf } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

let bpffs: FreshBpffs | undefined;
/** This run's bpffs, and a plain folder (not bpffs) to be refused in. */
let BPFFS = REPLAY_BPFFS;
let PLAIN = "/nonexistent/bpfmap-replay-plain";
const transcriptTest = transcriptTests(import.meta.url, {
  paths: () => ({ BPFFS, PLAIN }),
});

describe("pin and openPinned", () => {
  before(() => {
    if (replayRun) return;
    bpffs = freshBpffs();
    BPFFS = bpffs.path;
    PLAIN = mkdtempSync(join(tmpdir(), "bpfmap-plain-"));
  });
  after(() => {
    bpffs?.unmount();
    if (!replayRun) rmSync(PLAIN, { recursive: true, force: true });
  });
  const unpin = (path: string) => rmSync(path, { force: true });

  transcriptTest("a pinned map outlives its fd and opens again, read-write by default", (sys) => {
    const path = `${BPFFS}/counts`;
    unpin(path);
    const id = (() => {
      using map = sys.createMap({
        type: "hash",
        keySize: 4,
        valueSize: 4,
        maxEntries: 8,
        name: "counts",
      });
      map.update(u32(1), u32(100));
      map.pin(path);
      return map.id;
    })();
    using again = sys.openPinned(path);
    assert.equal(again.id, id);
    assert.equal(again.name, "counts");
    assert.equal(readU32(again.lookup(u32(1))), 100);
    again.update(u32(2), u32(200));
    unpin(path);
  });

  transcriptTest("readOnly opens refuse updates, writeOnly opens refuse lookups (EPERM)", (sys) => {
    const path = `${BPFFS}/modes`;
    unpin(path);
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 2 });
    map.pin(path);
    using readOnly = sys.openPinned(path, { readOnly: true });
    assert.deepEqual(readOnly.lookup(u32(0)), u32(0));
    throwsBpf(() => readOnly.update(u32(0), u32(1)), "EPERM", "BPF_MAP_UPDATE_ELEM");
    using writeOnly = sys.openPinned(path, { writeOnly: true });
    writeOnly.update(u32(0), u32(9));
    throwsBpf(() => writeOnly.lookup(u32(0)), "EPERM", "BPF_MAP_LOOKUP_ELEM");
    assert.equal(readU32(map.lookup(u32(0))), 9);
    unpin(path);
  });

  transcriptTest("pinning twice is EEXIST, outside bpffs EPERM, a missing pin ENOENT", (sys) => {
    const path = `${BPFFS}/twice`;
    unpin(path);
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.pin(path);
    throwsBpf(() => map.pin(path), "EEXIST", "BPF_OBJ_PIN");
    throwsBpf(() => map.pin(`${PLAIN}/map`), "EPERM", "BPF_OBJ_PIN");
    throwsBpf(() => sys.openPinned(`${BPFFS}/absent`), "ENOENT", "BPF_OBJ_GET");
    unpin(path);
  });
});
