// Bad input gets a TypeError or RangeError naming the argument, and no
// syscall is issued: each misuse runs on a kernel that tallies bpf() calls.

import assert from "node:assert/strict";
import { BpfMap } from "../mod.ts";
import { u32 } from "./helpers/bytes.ts";
import { liveTest, tallyingKernel } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

type Misuse = [
  name: string,
  run: () => unknown,
  error: typeof TypeError | typeof RangeError,
  message: RegExp,
];

transcriptTest("misuses are refused before any syscall", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  using hash = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 8 }, kernel);
  using percpu = BpfMap.create(
    { type: "percpu_hash", keySize: 4, valueSize: 4, maxEntries: 8 },
    kernel,
  );
  using queue = BpfMap.create({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 8 }, kernel);
  const closed = BpfMap.create({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 8 }, kernel);
  closed.close();
  const detached = new Uint8Array(new ArrayBuffer(4));
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  const key = u32(1);
  const value = new Uint8Array(8);
  const spec = { type: "hash" as const, keySize: 4, valueSize: 4, maxEntries: 4 };

  const misuses: Misuse[] = [
    ["short key", () => hash.lookup(new Uint8Array(3)), RangeError, /key must be 4 bytes, got 3/],
    ["long key", () => hash.update(new Uint8Array(5), value), RangeError, /key must be 4 bytes/],
    [
      "key not bytes",
      () => hash.lookup([1, 0, 0, 0] as unknown as Uint8Array),
      TypeError,
      /key must be a Uint8Array/,
    ],
    [
      "key as Uint32Array",
      () => hash.delete(new Uint32Array(1) as unknown as Uint8Array),
      TypeError,
      /key must be a Uint8Array/,
    ],
    [
      "detached key",
      () => hash.lookup(detached),
      TypeError,
      /key is a view of a detached ArrayBuffer/,
    ],
    [
      "short value",
      () => hash.update(key, new Uint8Array(4)),
      RangeError,
      /value must be 8 bytes, got 4/,
    ],
    [
      "per-CPU value of one CPU",
      () => percpu.update(key, new Uint8Array(4)),
      RangeError,
      /value must be \d+ bytes/,
    ],
    // Bits bpfmap does not know go to the kernel (tests/api_gaps.test.ts); what is no u32 does not.
    [
      "update flags 2 ** 32",
      () => hash.update(key, value, 2 ** 32),
      RangeError,
      /flags must be between 0 and 4294967295, got 4294967296/,
    ],
    ["update flags -1", () => hash.update(key, value, -1), RangeError, /flags must be between/],
    ["update flags 1.5", () => hash.update(key, value, 1.5), TypeError, /flags must be an integer/],
    [
      "lookup flags 2 ** 32",
      () => hash.lookup(key, 2 ** 32),
      RangeError,
      /flags must be between 0 and 4294967295/,
    ],
    [
      "lookup flags NaN",
      () => hash.lookup(key, NaN),
      TypeError,
      /flags must be an integer, got number NaN/,
    ],
    ["nextKey short key", () => hash.nextKey(new Uint8Array(2)), RangeError, /key must be 4 bytes/],
    [
      "lookupAndDelete no key",
      () => hash.lookupAndDelete(undefined as unknown as Uint8Array),
      TypeError,
      /key must be a Uint8Array/,
    ],
    ["push on a hash", () => hash.push(value), TypeError, /push: needs a map without keys/],
    ["pop on a hash", () => hash.pop(), TypeError, /pop: needs a map without keys/],
    [
      "contains on a hash",
      () => hash.contains(value),
      TypeError,
      /contains: needs a map without keys/,
    ],
    ["push short value", () => queue.push(new Uint8Array(2)), RangeError, /value must be 4 bytes/],
    [
      "batch count 0",
      () => hash.lookupBatch({ count: 0 }),
      RangeError,
      /count must be between 1 and/,
    ],
    [
      "batch count -1",
      () => hash.lookupBatch({ count: -1 }),
      RangeError,
      /count must be between 1/,
    ],
    [
      "batch count 2.5",
      () => hash.lookupBatch({ count: 2.5 }),
      TypeError,
      /count must be an integer/,
    ],
    [
      "batch count NaN",
      () => hash.lookupAndDeleteBatch({ count: NaN }),
      TypeError,
      /count must be an integer/,
    ],
    [
      "batch count 2^32",
      () => hash.lookupBatch({ count: 2 ** 32 }),
      RangeError,
      /count must be between/,
    ],
    [
      "batch count string",
      () => hash.lookupBatch({ count: "4" as unknown as number }),
      TypeError,
      /count must be an integer, got "4"/,
    ],
    [
      "batch without options",
      () => hash.lookupBatch(undefined as unknown as { count: number }),
      TypeError,
      /options must be an object/,
    ],
    [
      "keys buffer too small",
      () => hash.lookupBatch({ count: 4, keys: new Uint8Array(12) }),
      RangeError,
      /keys holds 12 bytes, too small for count 4 × 4 = 16/,
    ],
    [
      "values buffer too small",
      () => hash.lookupBatch({ count: 4, values: new Uint8Array(31) }),
      RangeError,
      /values holds 31 bytes, too small for count 4 × 8 = 32/,
    ],
    [
      "per-CPU values of one CPU",
      () => percpu.lookupBatch({ count: 2, values: new Uint8Array(16) }),
      RangeError,
      /values holds 16 bytes/,
    ],
    [
      "cursor of 8 bytes on a hash",
      () => hash.lookupBatch({ count: 1, cursor: new Uint8Array(8) }),
      RangeError,
      /cursor must be 4 bytes/,
    ],
    [
      "elemFlags -1",
      () => hash.lookupBatch({ count: 1, elemFlags: -1 }),
      RangeError,
      /elemFlags must be between 0 and 4294967295/,
    ],
    [
      "elemFlags 2 ** 32 on update",
      () => hash.updateBatch(key, value, { elemFlags: 2 ** 32 }),
      RangeError,
      /elemFlags must be between 0 and 4294967295/,
    ],
    [
      "update batch keys not whole",
      () => hash.updateBatch(new Uint8Array(6), new Uint8Array(8)),
      RangeError,
      /6 bytes is not a positive multiple of the 4-byte key size/,
    ],
    [
      "update batch empty",
      () => hash.updateBatch(new Uint8Array(0), new Uint8Array(0)),
      RangeError,
      /not a positive multiple/,
    ],
    [
      "update batch values mismatch",
      () => hash.updateBatch(u32(1, 2), new Uint8Array(8)),
      RangeError,
      /values must be 2 × 8 = 16 bytes for 2 keys, got 8/,
    ],
    [
      "update batch count > keys",
      () => hash.updateBatch(u32(1), value, { count: 2 }),
      RangeError,
      /keys holds 4 bytes, too small for count 2/,
    ],
    [
      "update batch count > values",
      () => hash.updateBatch(u32(1, 2), value, { count: 2 }),
      RangeError,
      /values holds 8 bytes, too small for count 2/,
    ],
    [
      "update batch count 0",
      () => hash.updateBatch(key, value, { count: 0 }),
      RangeError,
      /count must be between 1/,
    ],
    [
      "update batch flags -1",
      () => hash.updateBatch(key, value, { flags: -1 }),
      RangeError,
      /flags must be between/,
    ],
    [
      "delete batch count 1.1",
      () => hash.deleteBatch(key, { count: 1.1 }),
      TypeError,
      /count must be an integer/,
    ],
    [
      "delete batch values-less keys not bytes",
      () => hash.deleteBatch("key" as unknown as Uint8Array),
      TypeError,
      /keys must be a Uint8Array/,
    ],
    [
      "batch on a queue",
      () => queue.updateBatch(new Uint8Array(0), new Uint8Array(4)),
      TypeError,
      /has no keys, so no batch operations/,
    ],
    ["lookup on a closed map", () => closed.lookup(key), TypeError, /lookup: .* is closed/],
    ["update on a closed map", () => closed.update(key, value), TypeError, /update: .* is closed/],
    [
      "batch on a closed map",
      () => closed.lookupBatch({ count: 1 }),
      TypeError,
      /lookupBatch: .* is closed/,
    ],
    ["pin a closed map", () => closed.pin("/sys/fs/bpf/x"), TypeError, /pin: .* is closed/],
    ["freeze a closed map", () => closed.freeze(), TypeError, /freeze: .* is closed/],
    ["info of a closed map", () => closed.info(), TypeError, /info: .* is closed/],
    [
      "closed map as innerMap",
      () => BpfMap.create({ ...spec, type: "array_of_maps", innerMap: closed }, kernel),
      TypeError,
      /spec.innerMap: .* is closed/,
    ],
    [
      "unknown type name",
      () => BpfMap.create({ ...spec, type: "hashmap" as "hash" }, kernel),
      TypeError,
      /spec.type: unknown map type "hashmap"/,
    ],
    [
      "negative type number",
      () => BpfMap.create({ ...spec, type: -1 }, kernel),
      TypeError,
      /spec.type: -1 is not a map type number/,
    ],
    [
      "keySize -1",
      () => BpfMap.create({ ...spec, keySize: -1 }, kernel),
      RangeError,
      /spec.keySize must be between 0 and/,
    ],
    [
      "valueSize 1.5",
      () => BpfMap.create({ ...spec, valueSize: 1.5 }, kernel),
      TypeError,
      /spec.valueSize must be an integer/,
    ],
    [
      "maxEntries NaN",
      () => BpfMap.create({ ...spec, maxEntries: NaN }, kernel),
      TypeError,
      /spec.maxEntries must be an integer/,
    ],
    [
      "maxEntries 2^32",
      () => BpfMap.create({ ...spec, maxEntries: 2 ** 32 }, kernel),
      RangeError,
      /spec.maxEntries must be between/,
    ],
    [
      "flags -8",
      () => BpfMap.create({ ...spec, flags: -8 }, kernel),
      RangeError,
      /spec.flags must be between/,
    ],
    [
      "name with a dash",
      () => BpfMap.create({ ...spec, name: "my-map" }, kernel),
      TypeError,
      /spec.name: "my-map" is not a map name/,
    ],
    [
      "name of 16 chars",
      () => BpfMap.create({ ...spec, name: "a".repeat(16) }, kernel),
      TypeError,
      /is not a map name/,
    ],
    [
      "name not a string",
      () => BpfMap.create({ ...spec, name: 7 as unknown as string }, kernel),
      TypeError,
      /spec.name: number 7/,
    ],
    [
      "mapExtra as number",
      () => BpfMap.create({ ...spec, mapExtra: 3 as unknown as bigint }, kernel),
      RangeError,
      /spec.mapExtra must be a u64 bigint/,
    ],
    [
      "mapExtra negative",
      () => BpfMap.create({ ...spec, mapExtra: -1n }, kernel),
      RangeError,
      /spec.mapExtra must be a u64 bigint/,
    ],
    [
      "innerMap not a map",
      () => BpfMap.create({ ...spec, innerMap: {} as BpfMap }, kernel),
      TypeError,
      /spec.innerMap must be a BpfMap/,
    ],
    [
      "spec null",
      () => BpfMap.create(null as unknown as typeof spec, kernel),
      TypeError,
      /spec must be an object/,
    ],
    [
      "openPinned empty path",
      () => BpfMap.openPinned("", {}, kernel),
      TypeError,
      /path must be a non-empty string/,
    ],
    [
      "openPinned NUL in path",
      () => BpfMap.openPinned("/sys/fs/bpf/a\0b", {}, kernel),
      TypeError,
      /without NUL/,
    ],
    [
      "openPinned both modes",
      () => BpfMap.openPinned("/sys/fs/bpf/a", { readOnly: true, writeOnly: true }, kernel),
      RangeError,
      /readOnly and writeOnly exclude each other/,
    ],
    [
      "pin to a non-string",
      () => hash.pin(42 as unknown as string),
      TypeError,
      /path must be a non-empty string/,
    ],
    ["fromId 0", () => BpfMap.fromId(0, kernel), RangeError, /id must be between 1/],
    ["fromId -5", () => BpfMap.fromId(-5, kernel), RangeError, /id must be between 1/],
    ["fromId 1.5", () => BpfMap.fromId(1.5, kernel), TypeError, /id must be an integer/],
    [
      "walk batchSize 0",
      () => [...hash.entries({ batchSize: 0 })],
      RangeError,
      /batchSize must be a positive integer/,
    ],
  ];

  const before = calls();
  const failures: string[] = [];
  for (const [name, run, type, message] of misuses) {
    try {
      run();
      failures.push(`${name}: no error`);
    } catch (error) {
      if (!(error instanceof type) || !message.test((error as Error).message)) {
        failures.push(`${name}: ${String(error)}`);
      }
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(calls(), before, "no syscall was issued for any misuse");
  assert.ok(misuses.length >= 60, `${misuses.length} misuses`);
  console.log(`bad input: ${misuses.length} misuses refused, 0 syscalls issued`);
});
