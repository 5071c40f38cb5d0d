// errno is exact for every failing call: a million failing calls of six
// kinds, interleaved with allocations and forced garbage collections.
//
// How errno is read: the backend asks libc for this thread's errno address
// (__errno_location) once, and reads the int there right after syscall()
// returns -1, before any other libc call can run on this thread.

import assert from "node:assert/strict";
import { BatchError, BPF_EXIST, BPF_NOEXIST, BpfError, BpfMap } from "../mod.ts";
import { u32 } from "./helpers/bytes.ts";
import { canCollectGarbage, collectGarbage, liveTest } from "./helpers/live.ts";

const CALLS = 1_000_000;

liveTest(`errno is exact across ${CALLS} failing calls with GC pressure`, () => {
  assert.ok(canCollectGarbage, "run Deno with --v8-flags=--expose-gc");
  using hash = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
  using array = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
  using frozen = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
  frozen.freeze();
  for (let i = 0; i < 4; i++) hash.update(u32(i), u32(i));
  const present = u32(1);
  const absent = u32(99);
  const value = u32(7);

  const cases: [code: string, call: () => unknown][] = [
    ["EEXIST", () => hash.update(present, value, BPF_NOEXIST)],
    ["ENOENT", () => hash.update(absent, value, BPF_EXIST)],
    ["E2BIG", () => hash.update(absent, value)],
    ["EINVAL", () => array.delete(present)],
    ["EPERM", () => frozen.update(present, value)],
    ["ENOTSUPP", () => array.deleteBatch(present)],
  ];
  const counts = new Map<string, number>();
  let garbage: unknown[] = [];
  for (let i = 0; i < CALLS; i++) {
    const [code, call] = cases[i % cases.length] ?? assert.fail("no cases");
    let caught: unknown;
    try {
      call();
    } catch (error) {
      caught = error;
    }
    if (!(caught instanceof BpfError) || caught.code !== code) {
      assert.fail(`call ${i}: expected ${code}, got ${String(caught)}`);
    }
    if (caught instanceof BatchError) assert.equal(caught.processed, 0);
    counts.set(code, (counts.get(code) ?? 0) + 1);
    // Allocation pressure between calls: strings, arrays, typed arrays, objects.
    if (i % 16 === 0) garbage.push({ i, s: `x${i}`, a: new Uint8Array(i % 200), l: [i, i + 1] });
    if (i % 4096 === 0) garbage = [];
    if (i % 100_000 === 99_999) collectGarbage();
  }
  assert.equal([...counts.values()].reduce((a, b) => a + b, 0), CALLS);
  assert.equal(hash.lookup(absent), undefined, "and ENOENT on lookup is still undefined");
});
