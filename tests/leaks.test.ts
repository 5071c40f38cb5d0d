// No fd and no memory is leaked: 100,000 create/close cycles, 1,000,000
// element calls under GC pressure, and a map dropped without close() has its
// fd closed by the FinalizationRegistry.
//
// fds are counted the kernel's way: a new fd is always the lowest free one,
// so after the cycles a new map must get the very fd it got before them
// (Deno guards /proc/self/fd behind --allow-all).
//
// Memory is judged by what the engine holds alive after a full collection
// (heap plus ArrayBuffers), which grows by the size of every leaked object;
// RSS is reported too, but V8 grows its heap in steps and malloc keeps freed
// pages, so RSS only gets a coarse bound.

import assert from "node:assert/strict";
import process from "node:process";
import { liveKernel } from "../ffi/kernel.ts";
import { BpfMap, listMapIds } from "../mod.ts";
import { u32 } from "./helpers/bytes.ts";
import { canCollectGarbage, collectGarbage, liveTest } from "./helpers/live.ts";

/** Resident memory of this process, in MiB. */
function rssMiB(): number {
  const status = liveKernel().backend.readTextFile("/proc/self/status");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** What the engine holds alive after full collections (heap and ArrayBuffers), in MiB. */
function liveMiB(): number {
  collectGarbage();
  collectGarbage();
  const usage = process.memoryUsage();
  return (usage.heapUsed + usage.arrayBuffers) / 2 ** 20;
}

/** Memory figures before and after `run`, after a warm-up run; asserts they stay flat. */
function assertFlat(what: string, run: (count: number) => void, count: number): void {
  run(count / 2); // warm up: JIT, slabs, heap sizing
  const [live, rss] = [liveMiB(), rssMiB()];
  run(count);
  const [liveAfter, rssAfter] = [liveMiB(), rssMiB()];
  console.log(
    `${what}: live memory ${live.toFixed(2)} -> ${liveAfter.toFixed(2)} MiB, `
      + `RSS ${rss.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB`,
  );
  assert.ok(liveAfter - live < 2, `live memory grew ${(liveAfter - live).toFixed(2)} MiB`);
  assert.ok(rssAfter - rss < 96, `RSS grew ${(rssAfter - rss).toFixed(1)} MiB`);
}

/** The fd a new map gets now: the lowest free one. */
function nextFd(): number {
  using map = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
  return map.fd;
}

liveTest("100,000 create/close cycles leak no fd and no memory", () => {
  assert.ok(canCollectGarbage);
  const fd = nextFd();
  assertFlat("100,000 create/close cycles", (cycles) => {
    for (let i = 0; i < cycles; i++) {
      const map = BpfMap.create({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
      if (i % 1000 === 0) map.update(u32(0), new Uint8Array(8).fill(i & 0xff));
      map.close();
    }
  }, 100_000);
  assert.equal(nextFd(), fd, "a leaked fd would have taken the lowest free number");
});

liveTest("1,000,000 element calls under GC pressure keep memory flat", () => {
  using map = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 1024 });
  const fd = nextFd();
  assertFlat("1,000,000 element calls", (calls) => {
    let garbage: unknown[] = [];
    for (let i = 0; i < calls; i++) {
      const key = u32(i & 1023);
      if (i & 1) map.lookup(key);
      else map.update(key, new Uint8Array(8).fill(i & 0xff));
      if (i % 64 === 0) garbage.push({ i, text: `x${i}`, bytes: new Uint8Array(i % 128) });
      if (i % 8192 === 0) garbage = [];
      if (i % 200_000 === 199_999) collectGarbage();
    }
  }, 1_000_000);
  assert.equal(nextFd(), fd);
});

/** Creates a map, forgets it without close(), and returns its id. */
function dropMap(): number {
  const map = BpfMap.create({
    type: "array",
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
    name: "dropped",
  });
  return map.id;
}

liveTest("a map dropped without close() is closed by the FinalizationRegistry", async () => {
  assert.ok(canCollectGarbage);
  const id = dropMap();
  assert.ok(listMapIds().includes(id));
  for (let round = 0; round < 100 && listMapIds().includes(id); round++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(
    !listMapIds().includes(id),
    "the kernel still holds the dropped map: its fd stayed open",
  );
});
