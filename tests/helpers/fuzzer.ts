/**
 * The differential fuzzer: seeded random sequences of every element and batch
 * operation, run on a real map and on the model side by side, compared after
 * every step; a failing sequence is shrunk to a small one that still fails.
 *
 * @module
 */

import { isPerCpu, mapTypeNumber } from "../../ffi/map_types.ts";
import { perCpuSlotSize } from "../../ffi/percpu.ts";
import {
  BatchError,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  BpfError,
  type BpfMap,
  type MapSpec,
} from "../../mod.ts";
import { ArrayModel, HashModel, hex, LpmModel, type Model, QueueModel } from "./model.ts";

/** Bytes per value of a target's map on a machine with `cpus` possible CPUs. */
export function strideOf(target: Target, cpus: number): number {
  const type = mapTypeNumber(target.spec.type);
  return isPerCpu(type) ? perCpuSlotSize(target.spec.valueSize) * cpus : target.spec.valueSize;
}

/** A small, fast, seedable PRNG (mulberry32). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One operation, as data (so that it can be printed and replayed). */
export interface Op {
  kind: string;
  key?: number[];
  value?: number[];
  flags?: number;
  keys?: number[][];
  values?: number[][];
  batch?: number;
}

/** A map type under fuzzing: its spec, the model, and how to draw keys and values. */
export interface Target {
  name: string;
  spec: MapSpec;
  keyed: boolean;
  model(valueStride: number): Model | QueueModel;
  key(next: () => number): number[];
}

const u32Key = (space: number) => (next: () => number) => [
  ...new Uint8Array(new Uint32Array([Math.floor(next() * space)]).buffer),
];
const lpmKey = (next: () => number) => {
  const length = Math.floor(next() * 5) * 8; // 0, 8, 16, 24 or 32
  const address: [number, number, number, number] = [
    10,
    Math.floor(next() * 3),
    Math.floor(next() * 3),
    Math.floor(next() * 3),
  ];
  const bits = length === 0
    ? 0
    : ((address[0] << 24 | address[1] << 16 | address[2] << 8 | address[3])
      & (0xffff_ffff << (32 - length))) >>> 0;
  return [length, 0, 0, 0, bits >>> 24, (bits >>> 16) & 255, (bits >>> 8) & 255, bits & 255];
};

/**
 * The eight map types the issue names, sized so that every errno path is
 * reachable. Hash maps use BPF_F_ZERO_SEED: the model compares them as sets,
 * and a fixed order makes transcripts comparable across runtimes.
 */
export const TARGETS: Target[] = [
  {
    name: "hash",
    spec: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 32, flags: BPF_F_ZERO_SEED },
    keyed: true,
    model: () => new HashModel(32, false),
    key: u32Key(48),
  },
  {
    name: "percpu_hash",
    spec: { type: "percpu_hash", keySize: 4, valueSize: 4, maxEntries: 32, flags: BPF_F_ZERO_SEED },
    keyed: true,
    model: () => new HashModel(32, false),
    key: u32Key(48),
  },
  {
    name: "lru_hash",
    spec: { type: "lru_hash", keySize: 4, valueSize: 8, maxEntries: 4096, flags: BPF_F_ZERO_SEED },
    keyed: true,
    model: () => new HashModel(4096, true),
    key: u32Key(128),
  },
  {
    name: "array",
    spec: { type: "array", keySize: 4, valueSize: 8, maxEntries: 16 },
    keyed: true,
    model: (stride) => new ArrayModel(16, stride),
    key: u32Key(20),
  },
  {
    name: "percpu_array",
    spec: { type: "percpu_array", keySize: 4, valueSize: 4, maxEntries: 16 },
    keyed: true,
    model: (stride) => new ArrayModel(16, stride),
    key: u32Key(20),
  },
  {
    name: "lpm_trie",
    spec: { type: "lpm_trie", keySize: 8, valueSize: 4, maxEntries: 16, flags: BPF_F_NO_PREALLOC },
    keyed: true,
    model: () => new LpmModel(16),
    key: lpmKey,
  },
  {
    name: "queue",
    spec: { type: "queue", keySize: 0, valueSize: 4, maxEntries: 8 },
    keyed: false,
    model: () => new QueueModel(8, false),
    key: () => [],
  },
  {
    name: "stack",
    spec: { type: "stack", keySize: 0, valueSize: 4, maxEntries: 8 },
    keyed: false,
    model: () => new QueueModel(8, true),
    key: () => [],
  },
];

const KEYED_OPS = [
  "update",
  "update",
  "update",
  "lookup",
  "lookup",
  "delete",
  "lookupAndDelete",
  "updateBatch",
  "deleteBatch",
  "walk",
  "batchWalk",
  "drain",
  "keyWalk",
];
const KEYLESS_OPS = ["push", "push", "push", "pushExist", "pushBad", "pop", "pop", "peek"];

/** Draws `count` operations for a target whose values are `valueStride` bytes. */
export function drawOps(target: Target, valueStride: number, seed: number, count: number): Op[] {
  const next = random(seed);
  const value = () => Array.from({ length: valueStride }, () => Math.floor(next() * 256));
  const pick = <T>(list: readonly T[]): T => {
    const item = list[Math.floor(next() * list.length)];
    if (item === undefined) throw new RangeError("pick: an empty list");
    return item;
  };
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const kind = pick(target.keyed ? KEYED_OPS : KEYLESS_OPS);
    const n = 1 + Math.floor(next() * 8);
    if (kind === "update") {
      ops.push({ kind, key: target.key(next), value: value(), flags: pick([0, 0, 1, 2]) });
    } else if (kind === "updateBatch") {
      ops.push({
        kind,
        keys: Array.from({ length: n }, () => target.key(next)),
        values: Array.from({ length: n }, value),
      });
    } else if (kind === "deleteBatch") {
      ops.push({
        kind,
        keys: Array.from({ length: n }, () => target.key(next)),
      });
    } else if (kind === "walk" || kind === "batchWalk" || kind === "drain") {
      ops.push({ kind, batch: n * 2 });
    } else if (kind === "push" || kind === "pushExist" || kind === "pushBad") {
      ops.push({ kind, value: value() });
    } else ops.push({ kind, key: target.key(next) });
  }
  return ops;
}

const bytes = (list: number[]) => Uint8Array.from(list);
const concat = (lists: number[][]) => Uint8Array.from(lists.flat());

function answerOf(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (error) {
    if (error instanceof BatchError) return { errno: error.code, processed: error.processed };
    if (error instanceof BpfError) return { errno: error.code };
    throw error;
  }
}

/** What the model answers to `op`, updating its state. */
export function expected(model: Model | QueueModel, op: Op): unknown {
  if (model instanceof QueueModel) {
    if (op.kind === "push") return model.push(bytes(op.value!), 0);
    if (op.kind === "pushExist") return model.push(bytes(op.value!), 2);
    if (op.kind === "pushBad") return model.push(bytes(op.value!), 1);
    return op.kind === "pop" ? model.pop() : model.peek();
  }
  switch (op.kind) {
    case "update":
      return model.update(bytes(op.key!), bytes(op.value!), op.flags!);
    case "lookup":
      return model.lookup(bytes(op.key!));
    case "delete":
      return model.delete(bytes(op.key!));
    case "lookupAndDelete":
      return model.lookupAndDelete(bytes(op.key!));
    case "updateBatch":
      return model.updateBatch(op.keys!.map(bytes), op.values!.map(bytes));
    case "deleteBatch":
      return model.deleteBatch(op.keys!.map(bytes));
    case "drain":
      return model.drain();
    default:
      return model.contents();
  }
}

/** What the map answers to `op`. */
export function actual(map: BpfMap, op: Op, ordered: boolean): unknown {
  const shown = (value: Uint8Array | undefined) => (value === undefined ? null : hex(value));
  const sorted = (list: string[]) => (ordered ? list : list.sort());
  return answerOf(() => {
    switch (op.kind) {
      case "push":
        return map.push(bytes(op.value!)) ?? null;
      case "pushExist":
        return map.push(bytes(op.value!), 2) ?? null;
      case "pushBad":
        return map.push(bytes(op.value!), 1) ?? null;
      case "pop":
        return shown(map.pop());
      case "peek":
        return shown(map.peek());
      case "update":
        return map.update(bytes(op.key!), bytes(op.value!), op.flags!) ?? null;
      case "lookup":
        return shown(map.lookup(bytes(op.key!)));
      case "delete":
        return map.delete(bytes(op.key!));
      case "lookupAndDelete":
        return shown(map.lookupAndDelete(bytes(op.key!)));
      case "updateBatch":
        return map.updateBatch(concat(op.keys!), concat(op.values!));
      case "deleteBatch":
        return map.deleteBatch(concat(op.keys!));
      case "walk":
        return sorted(
          [...map.entries({ batchSize: op.batch, via: "batch" })].map(([k, v]) =>
            `${hex(k)}=${hex(v)}`
          ),
        );
      case "keyWalk":
        return sorted([...map.entries({ via: "nextKey" })].map(([k, v]) => `${hex(k)}=${hex(v)}`));
      case "batchWalk":
      case "drain": {
        const seen: string[] = [];
        let cursor: Uint8Array | null = null;
        let count = op.batch!;
        for (;;) {
          let batch;
          try {
            batch = op.kind === "drain"
              ? map.lookupAndDeleteBatch({ cursor, count })
              : map.lookupBatch({ cursor, count });
          } catch (error) {
            if (!(error instanceof BpfError && error.code === "ENOSPC")) throw error;
            count *= 2; // a bucket larger than the batch: grow, as a user would
            continue;
          }
          for (let i = 0; i < batch.count; i++) {
            const key = batch.keys.subarray(i * map.keySize, (i + 1) * map.keySize);
            const value = batch.values.subarray(i * map.valueStride, (i + 1) * map.valueStride);
            seen.push(`${hex(key)}=${hex(value)}`);
          }
          if (batch.cursor === null) return sorted(seen);
          cursor = batch.cursor;
        }
      }
    }
    throw new Error(`unknown op ${op.kind}`);
  });
}

/** Where a sequence first differs from the model, if it does. */
export interface Divergence {
  index: number;
  op: Op;
  expected: unknown;
  actual: unknown;
}

/** Runs `ops` on a fresh map made by `create` and on the model; the first difference, if any. */
export function runOps(
  target: Target,
  ops: Op[],
  create: (spec: MapSpec) => BpfMap,
): Divergence | undefined {
  using map = create(target.spec);
  const model = target.model(map.valueStride);
  const ordered = !(model instanceof QueueModel) && model.ordered;
  for (const [index, op] of ops.entries()) {
    const want = expected(model, op);
    const got = actual(map, op, ordered);
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      return { index, op, expected: want, actual: got };
    }
  }
  return undefined;
}

/**
 * A smaller sequence that still fails: ops after the failure dropped, then
 * chunks of ever smaller size removed while the sequence keeps failing,
 * within `seconds`.
 */
export function shrink(
  target: Target,
  ops: Op[],
  failure: Divergence,
  create: (spec: MapSpec) => BpfMap,
  seconds = 20,
): Op[] {
  const deadline = performance.now() + seconds * 1000;
  let current = ops.slice(0, failure.index + 1);
  for (let chunk = Math.ceil(current.length / 2); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let start = 0; start < current.length && performance.now() < deadline;) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      if (candidate.length > 0 && runOps(target, candidate, create) !== undefined) {
        current = candidate;
      } else start += chunk;
    }
  }
  return current;
}
