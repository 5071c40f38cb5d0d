// What libbpf and cilium/ebpf users reach for and the raw map lacked (issue
// 13, item 6), each against the kernel: lookupAndDelete with BPF_F_LOCK,
// openPinned with raw file flags, unpin, numaNode and ifindex in a spec,
// initial contents (frozen after, if asked), find-by-name, and flag bits
// bpfmap does not know handed to the kernel, which judges them.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../ffi/live.ts";
import {
  BPF_F_LOCK,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  BpfMap,
  decode,
  encode,
  findMapsByName,
  specOf,
  spinLock,
  struct,
  u32,
  u64,
} from "../mod.ts";
import { bpffsForTests, freshBpffs } from "./helpers/bpffs.ts";
import { liveTest, tallyingKernel, thrown, throwsBpf } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const bpffs = bpffsForTests("bpfmap-api-gaps-");
const transcriptTest = transcriptTests(import.meta.url, { paths: () => ({ BPFFS: bpffs() }) });

const key4 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

transcriptTest(
  "lookupAndDelete takes BPF_F_LOCK: the locked value comes back, the element goes",
  (sys) => {
    const value = struct({ lock: spinLock, hits: u64 });
    using map = sys.createMap(specOf({ type: "hash", key: u32, value, maxEntries: 4, btf: true }));
    map.update(encode(u32, 7), encode(value, { hits: 42n }), BPF_F_LOCK);
    const removed = map.lookupAndDelete(encode(u32, 7), BPF_F_LOCK);
    assert.ok(removed !== undefined, "the element was there");
    assert.deepEqual(decode(value, removed), { hits: 42n });
    assert.equal(map.lookup(encode(u32, 7)), undefined);
    assert.equal(map.lookupAndDelete(encode(u32, 7), BPF_F_LOCK), undefined);
    // The flag reaches the kernel: a value without a spin lock has no lock to take.
    using plain = sys.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 4 });
    plain.update(key4(1), new Uint8Array(8));
    throwsBpf(
      () => plain.lookupAndDelete(key4(1), BPF_F_LOCK),
      "EINVAL",
      "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
    );
    assert.deepEqual(plain.lookup(key4(1)), new Uint8Array(8)); // still there
  },
);

transcriptTest(
  "openPinned takes raw file flags: BPF_F_RDONLY, BPF_F_WRONLY, and bits the kernel refuses",
  (sys) => {
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.update(key4(0), key4(9));
    map.pin(`${bpffs()}/flags`);
    using readOnly = sys.openPinned(`${bpffs()}/flags`, { flags: BPF_F_RDONLY });
    assert.deepEqual(readOnly.lookup(key4(0)), key4(9));
    throwsBpf(() => readOnly.update(key4(0), key4(1)), "EPERM", "BPF_MAP_UPDATE_ELEM");
    using writeOnly = sys.openPinned(`${bpffs()}/flags`, { flags: BPF_F_WRONLY });
    writeOnly.update(key4(0), key4(3));
    throwsBpf(() => writeOnly.lookup(key4(0)), "EPERM", "BPF_MAP_LOOKUP_ELEM");
    throwsBpf(
      () => sys.openPinned(`${bpffs()}/flags`, { flags: 1 << 20 }),
      "EINVAL",
      "BPF_OBJ_GET",
    );
    assert.deepEqual(map.lookup(key4(0)), key4(3));
    assert.throws(() => sys.openPinned(`${bpffs()}/flags`, { flags: -1 }), {
      name: "RangeError",
      message: "opts.flags must be between 0 and 4294967295, got -1",
    });
  },
);

liveTest("unpin removes a pin on bpffs, refuses any other file, and the map lives on", () => {
  const fs = freshBpffs("bpfmap-unpin-");
  try {
    using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.pin(`${fs.path}/m`);
    map.unpin(`${fs.path}/m`);
    assert.equal(existsSync(`${fs.path}/m`), false);
    map.update(key4(0), key4(5)); // the fd still holds it
    assert.deepEqual(map.lookup(key4(0)), key4(5));
    const plain = `${fs.path}-not-bpffs`;
    writeFileSync(plain, "");
    try {
      assert.throws(() => map.unpin(plain), {
        name: "TypeError",
        message: `unpin: ${plain} is not on a bpf file system`,
      });
      assert.equal(existsSync(plain), true);
    } finally {
      rmSync(plain, { force: true });
    }
  } finally {
    fs.unmount();
  }
});

transcriptTest(
  "numaNode sets BPF_F_NUMA_NODE and numa_node; ifindex reaches map_ifindex",
  (sys) => {
    using onNode0 = sys.createMap({
      type: "hash",
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
      numaNode: 0,
    });
    assert.equal(onNode0.flags & BPF_F_NUMA_NODE, BPF_F_NUMA_NODE);
    // A node this machine does not have: the kernel checks numa_node, so it got there.
    throwsBpf(
      () =>
        sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, numaNode: 4095 }),
      "EINVAL",
      "BPF_MAP_CREATE",
    );
    // Offload to the loopback device, which has no BPF offload: refused for the ifindex.
    const error = thrown(() =>
      sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, ifindex: 1 })
    );
    assert.ok(error instanceof Error && "code" in error, String(error));
    assert.match(error.message, /^BPF_MAP_CREATE failed: /);
    const { kernel, calls } = tallyingKernel(sys.kernel.backend);
    assert.throws(
      () =>
        BpfMap.create(
          { type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, numaNode: -1 },
          kernel,
        ),
      { name: "RangeError", message: "spec.numaNode must be between 0 and 4294967295, got -1" },
    );
    assert.throws(
      () =>
        BpfMap.create(
          { type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, ifindex: 1.5 },
          kernel,
        ),
      { name: "TypeError", message: "spec.ifindex must be an integer, got number 1.5" },
    );
    assert.equal(calls(), 0);
  },
);

transcriptTest("contents: one update batch for a hash map, then frozen when asked", (sys) => {
  const { kernel, tally } = tallyingKernel(sys.kernel.backend);
  using map = BpfMap.create({
    type: "hash",
    keySize: 4,
    valueSize: 4,
    maxEntries: 8,
    contents: [[key4(1), key4(10)], [key4(2), key4(20)], [key4(3), key4(30)]],
    freeze: true,
  }, kernel);
  assert.equal(tally.get("BPF_MAP_UPDATE_BATCH"), 1);
  assert.equal(tally.get("BPF_MAP_UPDATE_ELEM"), undefined);
  assert.deepEqual([1, 2, 3].map((n) => map.lookup(key4(n))), [key4(10), key4(20), key4(30)]);
  assert.equal(map.fdInfo().frozen, "1");
  throwsBpf(() => map.update(key4(4), key4(40)), "EPERM", "BPF_MAP_UPDATE_ELEM");
});

transcriptTest(
  "contents: element updates where there is no batch update, pushes for a queue",
  (sys) => {
    const { kernel, tally } = tallyingKernel(sys.kernel.backend);
    // A devmap (no batch commands) of the loopback device, at slots 0 and 3.
    using devmap = BpfMap.create({
      type: "devmap",
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
      contents: [[key4(0), key4(1)], [key4(3), key4(1)]],
    }, kernel);
    assert.equal(tally.get("BPF_MAP_UPDATE_ELEM"), 2);
    assert.equal(tally.get("BPF_MAP_UPDATE_BATCH"), undefined);
    assert.deepEqual(devmap.lookup(key4(3)), key4(1));
    using queue = BpfMap.create({
      type: "queue",
      keySize: 0,
      valueSize: 1,
      maxEntries: 4,
      contents: [[new Uint8Array(0), new Uint8Array([1])], [
        new Uint8Array(0),
        new Uint8Array([2]),
      ]],
    }, kernel);
    assert.deepEqual([queue.pop(), queue.pop(), queue.pop()], [
      new Uint8Array([1]),
      new Uint8Array([2]),
      undefined,
    ]);
  },
);

transcriptTest(
  "contents: a wrong size is refused before the map exists; a failed write closes it",
  (sys) => {
    const { kernel, calls, tally } = tallyingKernel(sys.kernel.backend);
    const spec = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 } as const;
    assert.throws(
      () => BpfMap.create({ ...spec, contents: [[key4(1), new Uint8Array(3)]] }, kernel),
      {
        name: "RangeError",
        message: "spec.contents[0][1] must be 4 bytes, got 3",
      },
    );
    assert.throws(() => BpfMap.create({ ...spec, contents: [key4(1)] as never }, kernel), {
      name: "TypeError",
      message: "spec.contents[0] must be a [key, value] pair, got Uint8Array",
    });
    assert.equal(calls(), 0);
    // Two elements for a one-element map: the batch fails part-way, and the map is not leaked.
    const error = thrown(() =>
      BpfMap.create({ ...spec, contents: [[key4(1), key4(1)], [key4(2), key4(2)]] }, kernel)
    );
    assert.ok(error instanceof Error && "processed" in error, String(error));
    assert.equal(error.processed, 1);
    assert.equal(tally.get("BPF_MAP_CREATE"), 1);
  },
);

transcriptTest("flag bits bpfmap does not know go to the kernel, which answers EINVAL", (sys) => {
  using map = sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
  const unknown = 1 << 30;
  throwsBpf(() => map.update(key4(1), key4(1), unknown), "EINVAL", "BPF_MAP_UPDATE_ELEM");
  throwsBpf(() => map.lookup(key4(1), unknown), "EINVAL", "BPF_MAP_LOOKUP_ELEM");
  throwsBpf(
    () => map.lookupAndDelete(key4(1), unknown),
    "EINVAL",
    "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
  );
  throwsBpf(
    () => map.updateBatch(key4(1), key4(1), { elemFlags: unknown }),
    "EINVAL",
    "BPF_MAP_UPDATE_BATCH",
  );
  throwsBpf(
    () => map.lookupBatch({ count: 4, elemFlags: unknown }),
    "EINVAL",
    "BPF_MAP_LOOKUP_BATCH",
  );
  throwsBpf(
    () => sys.createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4, flags: unknown }),
    "EINVAL",
    "BPF_MAP_CREATE",
  );
  assert.equal(map.nextKey(), undefined); // nothing was written
  // What is no u32 is still refused before any syscall.
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  using again = BpfMap.fromId(map.id, kernel);
  const before = calls();
  assert.throws(() => again.update(key4(1), key4(1), 2 ** 32), { name: "RangeError" });
  assert.throws(() => again.lookupAndDelete(key4(1), -4), { name: "RangeError" });
  assert.throws(() => again.lookupBatch({ count: 4, elemFlags: 0.5 }), { name: "TypeError" });
  assert.equal(calls(), before);
});

liveTest(
  "fromName opens the one map of a name; none or several is an error listing the ids",
  () => {
    const name = `gaps_${process.pid % 100000}`;
    assert.throws(() => BpfMap.fromName(name), { message: `no map is named "${name}"` });
    using first = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1, name });
    using found = BpfMap.fromName(name);
    assert.equal(found.id, first.id);
    using second = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1, name });
    assert.throws(() => BpfMap.fromName(name), {
      message: `2 maps are named "${name}" (ids ${first.id}, ${second.id}): open one by id`,
    });
    const all = findMapsByName(name);
    assert.deepEqual(all.map((map) => map.id), [first.id, second.id]);
    for (const map of all) map.close();
  },
);

transcriptTest(
  "EPERM says why where the map knows: opened read-only or write-only, frozen here",
  (sys) => {
    using map = sys.createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.pin(`${bpffs()}/hints`);
    using readOnly = sys.openPinned(`${bpffs()}/hints`, { readOnly: true });
    assert.match(
      String(thrown(() => readOnly.update(key4(0), key4(1)))),
      /^BpfError: BPF_MAP_UPDATE_ELEM failed: EPERM .*: the map was opened read-only \(BPF_F_RDONLY\)$/,
    );
    using writeOnly = sys.openPinned(`${bpffs()}/hints`, { flags: BPF_F_WRONLY });
    assert.match(
      String(thrown(() => writeOnly.lookup(key4(0)))),
      /: the map was opened write-only \(BPF_F_WRONLY\)$/,
    );
    map.freeze();
    assert.match(
      String(thrown(() => map.update(key4(0), key4(1)))),
      /: the map is frozen: user space may not change it any more$/,
    );
    // A write-only open may still write; a frozen map read by a read-only open says nothing more.
    assert.equal(readOnly.lookup(key4(0))?.length, 4);
  },
);

/** The project's Deno: Deno rewrites a spawn of its own `process.execPath` as Node's. */
const DENO = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));

test("Deno without --allow-ffi is told to run with it, not that libc is missing", () => {
  if (detectRuntime() !== "deno") return; // Bun has no permissions
  const script = `import { BpfMap } from "${new URL("../mod.ts", import.meta.url).href}";
BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });`;
  // `deno eval` and scripts from stdin are granted everything: a file is granted what is given.
  const folder = mkdtempSync(join(tmpdir(), "bpfmap-no-ffi-"));
  writeFileSync(join(folder, "main.ts"), script);
  const run = spawnSync(DENO, ["run", "--no-prompt", join(folder, "main.ts")], {
    encoding: "utf8",
  });
  rmSync(folder, { recursive: true });
  assert.notEqual(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stderr, /bpfmap: live BPF needs FFI: run Deno with --allow-ffi/);
  assert.doesNotMatch(run.stderr, /cannot load the C library/);
});
