// Pinning in bpffs and opening pinned maps, on a bpffs this test mounts itself.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { BpfMap } from "../mod.ts";
import { readU32, u32 } from "./helpers/bytes.ts";
import { liveTest, liveUnavailable, throwsBpf } from "./helpers/live.ts";

describe("pin and openPinned", () => {
  let bpffs = "";
  let plainDir = "";
  before(() => {
    if (liveUnavailable !== undefined) return;
    bpffs = mkdtempSync(join(tmpdir(), "bpfmap-bpffs-"));
    plainDir = mkdtempSync(join(tmpdir(), "bpfmap-plain-"));
    execFileSync("mount", ["-t", "bpf", "bpf", bpffs]);
  });
  after(() => {
    if (bpffs !== "") {
      execFileSync("umount", [bpffs]);
      rmSync(bpffs, { recursive: true });
      rmSync(plainDir, { recursive: true });
    }
  });

  liveTest("a pinned map outlives its fd and opens again, read-write by default", () => {
    const path = join(bpffs, "counts");
    const id = (() => {
      using map = BpfMap.create({
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
    using again = BpfMap.openPinned(path);
    assert.equal(again.id, id);
    assert.equal(again.name, "counts");
    assert.equal(readU32(again.lookup(u32(1))), 100);
    again.update(u32(2), u32(200));
    rmSync(path);
  });

  liveTest("readOnly opens refuse updates, writeOnly opens refuse lookups (EPERM)", () => {
    const path = join(bpffs, "modes");
    using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 2 });
    map.pin(path);
    using readOnly = BpfMap.openPinned(path, { readOnly: true });
    assert.deepEqual(readOnly.lookup(u32(0)), u32(0));
    throwsBpf(() => readOnly.update(u32(0), u32(1)), "EPERM", "BPF_MAP_UPDATE_ELEM");
    using writeOnly = BpfMap.openPinned(path, { writeOnly: true });
    writeOnly.update(u32(0), u32(9));
    throwsBpf(() => writeOnly.lookup(u32(0)), "EPERM", "BPF_MAP_LOOKUP_ELEM");
    assert.equal(readU32(map.lookup(u32(0))), 9);
    rmSync(path);
  });

  liveTest("pinning twice is EEXIST, outside bpffs EPERM, a missing pin ENOENT", () => {
    const path = join(bpffs, "twice");
    using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.pin(path);
    throwsBpf(() => map.pin(path), "EEXIST", "BPF_OBJ_PIN");
    throwsBpf(() => map.pin(join(plainDir, "map")), "EPERM", "BPF_OBJ_PIN");
    throwsBpf(() => BpfMap.openPinned(join(bpffs, "absent")), "ENOENT", "BPF_OBJ_GET");
    rmSync(path);
  });
});
