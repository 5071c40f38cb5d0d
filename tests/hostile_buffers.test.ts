// Memory safety does not trust what a caller's object says about itself.
// For every command that takes a buffer, a Uint8Array that lies about its
// length (own byteLength property, subclass getter), a Proxy around one, and
// a view of a resizable ArrayBuffer are each refused (a TypeError or
// RangeError naming the argument, 0 syscalls) or handled safely (copied, or
// read through the engine's own getters). Lengths used to be read through
// `.byteLength`: the kernel then wrote `count * size` bytes into a smaller
// buffer (Deno: "malloc(): unaligned tcache chunk detected"; Bun: segfault).

import assert from "node:assert/strict";
import { BPF_F_ZERO_SEED, BpfMap, type BpfSystem } from "../mod.ts";
import { readU32, readU32s, u32, u64 } from "./helpers/bytes.ts";
import { tallyingKernel } from "./helpers/live.ts";
import { transcriptTests } from "./helpers/transcript.ts";

const transcriptTest = transcriptTests(import.meta.url);

/** A real Uint8Array of 1 byte whose own `byteLength` property claims `size`. */
function ownPropertyLiar(size: number): Uint8Array {
  const bytes = new Uint8Array(1);
  Object.defineProperty(bytes, "byteLength", { value: size });
  Object.defineProperty(bytes, "length", { value: size });
  return bytes;
}

class LengthLiar extends Uint8Array {
  claimed = 0;
  override get byteLength(): number {
    return this.claimed;
  }
  override get length(): number {
    return this.claimed;
  }
}

/** A real 1-byte Uint8Array whose subclass getter claims `size`. */
function subclassLiar(size: number): Uint8Array {
  const bytes = new LengthLiar(1);
  bytes.claimed = size;
  return bytes;
}

/** A Proxy around a real Uint8Array of the right size. */
function proxied(size: number): Uint8Array {
  return new Proxy(new Uint8Array(size), {});
}

/** A length-tracking view of a resizable ArrayBuffer, `size` bytes for now. */
function resizable(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size, { maxByteLength: size * 4 }));
}

type Variant = [name: string, make: (size: number) => Uint8Array];
const LIARS: Variant[] = [
  ["own byteLength property", ownPropertyLiar],
  ["subclass byteLength getter", subclassLiar],
  ["Proxy", proxied],
];

/**
 * One argument of one command: its name in messages, its size, the call with
 * the argument replaced, and whether the kernel reads or writes the caller's
 * memory in place (batch keys and values) rather than a copy.
 */
type Argument = [
  operation: string,
  argument: string,
  size: number,
  call: (bytes: Uint8Array) => unknown,
  inPlace: boolean,
];

function argumentsOf(hash: BpfMap, queue: BpfMap, bloom: BpfMap): Argument[] {
  const key = u32(1);
  const value = u64(1);
  const batchArguments = (
    operation: "lookupBatch" | "lookupAndDeleteBatch",
  ): Argument[] => [
    [operation, "keys", 8, (b) => hash[operation]({ count: 2, keys: b }), true],
    [operation, "values", 16, (b) => hash[operation]({ count: 2, values: b }), true],
    [operation, "cursor", 4, (b) => hash[operation]({ count: 2, cursor: b }), false],
  ];
  return [
    ["lookup", "key", 4, (b) => hash.lookup(b), false],
    ["lookupInto", "key", 4, (b) => hash.lookupInto(b, new Uint8Array(8)), false],
    ["lookupInto", "out", 8, (b) => hash.lookupInto(key, b), false],
    ["update", "key", 4, (b) => hash.update(b, value), false],
    ["update", "value", 8, (b) => hash.update(key, b), false],
    ["delete", "key", 4, (b) => hash.delete(b), false],
    ["nextKey", "key", 4, (b) => hash.nextKey(b), false],
    ["nextKeyInto", "key", 4, (b) => hash.nextKeyInto(b, new Uint8Array(4)), false],
    ["nextKeyInto", "out", 4, (b) => hash.nextKeyInto(key, b), false],
    ["lookupAndDelete", "key", 4, (b) => hash.lookupAndDelete(b), false],
    ["push", "value", 4, (b) => queue.push(b), false],
    ["contains", "value", 4, (b) => bloom.contains(b), false],
    ...batchArguments("lookupBatch"),
    ...batchArguments("lookupAndDeleteBatch"),
    ["updateBatch", "keys", 8, (b) => hash.updateBatch(b, new Uint8Array(16)), true],
    ["updateBatch", "values", 16, (b) => hash.updateBatch(u32(1, 2), b), true],
    [
      "updateBatch",
      "keys (count given)",
      8,
      (b) => hash.updateBatch(b, new Uint8Array(16), { count: 2 }),
      true,
    ],
    ["deleteBatch", "keys", 8, (b) => hash.deleteBatch(b, { count: 2 }), true],
  ];
}

/**
 * Runs `check` on every buffer argument of every command, on maps made
 * through a kernel that counts syscalls (`calls`).
 */
function onEveryBufferArgument(
  sys: BpfSystem,
  check: (argument: Argument, calls: () => number) => void,
): void {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  using hash = BpfMap.create({
    type: "hash",
    keySize: 4,
    valueSize: 8,
    maxEntries: 8,
    flags: BPF_F_ZERO_SEED,
  }, kernel);
  using queue = BpfMap.create({ type: "queue", keySize: 0, valueSize: 4, maxEntries: 8 }, kernel);
  using bloom = BpfMap.create(
    { type: "bloom_filter", keySize: 0, valueSize: 4, maxEntries: 8 },
    kernel,
  );
  for (const argument of argumentsOf(hash, queue, bloom)) check(argument, calls);
}

transcriptTest(
  "lying and proxied buffers are refused before any syscall, for every command",
  (sys) => {
    let refused = 0;
    onEveryBufferArgument(sys, ([operation, argument, size, call], calls) => {
      const name = argument.split(" ")[0];
      for (const [variant, make] of LIARS) {
        const before = calls();
        const error = thrownBy(() => call(make(size)));
        const where = `${operation} ${argument}, ${variant}`;
        assert.ok(error instanceof TypeError || error instanceof RangeError, `${where}: ${error}`);
        assert.match(error.message, new RegExp(`^${name}\\b`), where);
        if (variant === "Proxy") assert.match(error.message, /look-alike/, where);
        else assert.match(error.message, /\b1\b/, `${where}: the real length, 1, is named`);
        assert.equal(calls(), before, `${where}: no syscall`);
        refused++;
      }
    });
    assert.equal(refused, 22 * 3); // 22 buffer arguments of 13 commands, 3 variants each
  },
);

transcriptTest(
  "resizable buffers: refused where the kernel works in place, copied elsewhere",
  (sys) => {
    onEveryBufferArgument(sys, ([operation, argument, size, call, inPlace], calls) => {
      const where = `${operation} ${argument}`;
      const before = calls();
      const error = thrownBy(() => call(resizable(size)));
      if (inPlace) {
        assert.ok(error instanceof TypeError, `${where}: ${error}`);
        assert.match(error.message, /is a view of a resizable ArrayBuffer/, where);
        assert.equal(calls(), before, `${where}: no syscall`);
      } else {
        // Copied into bpfmap's own memory with nothing of the caller's running in between:
        // the call is made, whatever the kernel then answers.
        assert.ok(
          !(error instanceof TypeError || error instanceof RangeError),
          `${where}: ${error}`,
        );
        assert.equal(calls(), before + 1, `${where}: one syscall`);
      }
    });
    // And the copies are right: a value written and read through resizable buffers.
    using hash = sys.createMap({ type: "hash", keySize: 4, valueSize: 8, maxEntries: 8 });
    const key = resizable(4);
    key.set(u32(9));
    const value = resizable(8);
    value.set(u64(0x1234));
    hash.update(key, value);
    const out = resizable(8);
    assert.equal(hash.lookupInto(key, out), true);
    assert.deepEqual(out, u64(0x1234));
  },
);

/** A subclass whose every accessor and method the library could use points elsewhere. */
class Misleading extends Uint8Array {
  static get [Symbol.species](): Uint8ArrayConstructor {
    throw new Error("species constructor called");
  }
  override get buffer(): ArrayBuffer {
    return new ArrayBuffer(1 << 16);
  }
  override get byteOffset(): number {
    return 1 << 15;
  }
  override subarray(): Uint8Array<ArrayBuffer> {
    throw new Error("subarray called");
  }
  override set(): void {
    throw new Error("set called");
  }
}

transcriptTest(
  "a subclass cannot redirect the kernel: buffers are read through the engine",
  (sys) => {
    using hash = sys.createMap({
      type: "hash",
      keySize: 4,
      valueSize: 4,
      maxEntries: 8,
      flags: BPF_F_ZERO_SEED,
    });
    const keys = new Misleading(16);
    Uint8Array.prototype.set.call(keys, u32(1, 2, 3, 4));
    const values = new Misleading(16);
    Uint8Array.prototype.set.call(values, u32(10, 20, 30, 40));
    assert.equal(hash.updateBatch(keys, values), 4);
    assert.deepEqual([1, 2, 3, 4].map((k) => readU32(hash.lookup(u32(k)))), [10, 20, 30, 40]);
    const out = new Misleading(4);
    assert.equal(hash.lookupInto(u32(3), out), true);
    assert.deepEqual([...out], [...u32(30)]);
    const outKeys = new Misleading(16);
    const outValues = new Misleading(16);
    const batch = hash.lookupBatch({ count: 4, keys: outKeys, values: outValues });
    assert.equal(batch.count, 4);
    const got = readU32s(batch.keys).map((k, i) => [k, readU32s(batch.values)[i]]);
    assert.deepEqual(got.sort((a, b) => a[0]! - b[0]!), [[1, 10], [2, 20], [3, 30], [4, 40]]);
    assert.equal(hash.deleteBatch(keys), 4);
    assert.equal(hash.nextKey(), undefined);
  },
);

transcriptTest("batch options are read once, before any check", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  using hash = BpfMap.create({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 }, kernel);
  hash.updateBatch(u32(1, 2), u32(10, 20));
  // A getter that detaches the values buffer once the buffers are checked: with options read
  // after the checks, the kernel would write into freed memory.
  const values = new Uint8Array(new ArrayBuffer(8));
  const reads = new Map<string, number>();
  const count = (name: string) => reads.set(name, (reads.get(name) ?? 0) + 1);
  const options = {
    get count() {
      count("count");
      return 2;
    },
    get keys() {
      count("keys");
      return new Uint8Array(8);
    },
    get values() {
      count("values");
      return values;
    },
    get cursor() {
      count("cursor");
      return null;
    },
    get elemFlags() {
      count("elemFlags");
      (values.buffer as ArrayBuffer).transfer(); // detach it
      return 0;
    },
  };
  const before = calls();
  assert.throws(() => hash.lookupBatch(options), {
    name: "TypeError",
    message: "values is a view of a detached ArrayBuffer",
  });
  assert.equal(calls(), before);
  assert.deepEqual(Object.fromEntries(reads), {
    count: 1,
    keys: 1,
    values: 1,
    cursor: 1,
    elemFlags: 1,
  });

  const writeReads = new Map<string, number>();
  const keys = new Uint8Array(new ArrayBuffer(8));
  keys.set(u32(1, 2));
  const writeOptions = {
    get count() {
      writeReads.set("count", (writeReads.get("count") ?? 0) + 1);
      return 2;
    },
    get elemFlags() {
      writeReads.set("elemFlags", (writeReads.get("elemFlags") ?? 0) + 1);
      (keys.buffer as ArrayBuffer).transfer();
      return 0;
    },
    get flags() {
      writeReads.set("flags", (writeReads.get("flags") ?? 0) + 1);
      return 0;
    },
  };
  assert.throws(() => hash.deleteBatch(keys, writeOptions), {
    name: "TypeError",
    message: "keys is a view of a detached ArrayBuffer",
  });
  assert.equal(calls(), before);
  assert.deepEqual(Object.fromEntries(writeReads), { count: 1, elemFlags: 1, flags: 1 });
  assert.equal(readU32(hash.lookup(u32(2))), 20, "nothing was deleted");
});

transcriptTest("pin paths that are not strings are refused before any syscall", (sys) => {
  const { kernel, calls } = tallyingKernel(sys.kernel.backend);
  using array = BpfMap.create({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 }, kernel);
  const before = calls();
  const paths: unknown[] = [
    new String("/sys/fs/bpf/x"),
    { toString: () => "/sys/fs/bpf/x" },
    new Proxy({}, { get: () => "/sys/fs/bpf/x" }),
    new TextEncoder().encode("/sys/fs/bpf/x"),
  ];
  for (const path of paths) {
    assert.throws(() => array.pin(path as string), {
      name: "TypeError",
      message: /^path must be a non-empty string without NUL, got /,
    });
    assert.throws(() => BpfMap.openPinned(path as string, {}, kernel), { name: "TypeError" });
  }
  assert.equal(calls(), before);
});

function thrownBy(fn: () => unknown): Error | undefined {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}
