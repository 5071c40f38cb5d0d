/**
 * What differs between a recorded call and the one the code made, in words a
 * person reads in seconds: field by field, and for batch buffers element by
 * element, as hex.
 *
 * @module
 */

import { commandKey, COMMANDS_BY_KEY, type Field } from "../ffi/commands.ts";
import { PERF_EVENT_ATTR } from "../ffi/perf_event.ts";
import {
  type CallEntry,
  type CloseEntry,
  decodeBytes,
  encodeBytes,
  type Entry,
  type EntryKind,
  entryKind,
  type FieldRecord,
  isCall,
  type RegionRecord,
  type ScalarInOut,
} from "./transcript.ts";

/** Regions up to this size are shown whole in a diff. */
const SMALL_REGION = 32;

/** Batch elements up to this size are shown whole in a diff (all 64 hex bytes of a transcript). */
const SMALL_ELEMENT = 64;

/** How many differing elements of one buffer a diff lists. */
const MAX_ELEMENTS_LISTED = 5;

const FIELDS_BY_COMMAND = new Map<string, Map<string, Field>>(
  [...COMMANDS_BY_KEY.values(), PERF_EVENT_ATTR].map((
    c,
  ) => [commandKey(c), new Map(c.fieldList.map((f) => [f.name, f]))]),
);

/**
 * A one-line description of an entry, e.g. `BPF_MAP_LOOKUP_BATCH`, `close(handle 2)` or
 * `mmap(handle 3, 8192 bytes at 0)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeEntry } from "./diff.ts";
 * assert.equal(describeEntry({ readFile: "/sys/kernel/btf/vmlinux", bytes: "" }), "readFile(/sys/kernel/btf/vmlinux)");
 * assert.equal(describeEntry({ wrote: 1, offset: 0, size: 8, bytes: "0000000000000000" }), "wrote(mapping 1, 8 bytes at 0)");
 * ```
 */
export function describeEntry(entry: Entry | undefined): string {
  if (entry === undefined) return "nothing (the transcript ended)";
  const e = entry as unknown as Record<string, unknown>;
  switch (entryKind(entry)) {
    case "call":
      return (entry as CallEntry).call;
    case "fdinfo":
      return `fdinfo(handle ${e.fdinfo})`;
    case "readFile":
      return `readFile(${e.readFile})`;
    case "ioctl":
      return `ioctl(handle ${e.ioctl}, 0x${(e.request as number).toString(16)})`;
    case "mmap":
      return `mmap(handle ${e.mmap}, ${e.length} bytes at ${e.offset})`;
    case "observe":
    case "wrote": {
      const kind = "observe" in e ? "observe" : "wrote";
      return `${kind}(mapping ${e[kind]}, ${e.size} bytes at ${e.offset})`;
    }
    case "munmap":
      return `munmap(mapping ${e.munmap})`;
    case "epoll":
      return `epoll ${e.epoll}`;
    default:
      return `close(handle ${e.close})`;
  }
}

function kindOf(entry: Entry): EntryKind {
  return entryKind(entry) ?? "close";
}

/**
 * For each primitive's entry: the keys the code passes (compared by the
 * player and the verifier), the keys the kernel answers (compared by the
 * verifier), and those whose value depends on timing (what a mapping held
 * when the code looked, what the code wrote from it, which fds a wait found
 * ready): verify compares the calls, their inputs and results, not those.
 */
const PRIMITIVE_KEYS: Record<string, { inputs: string[]; outputs: string[]; varies: string[] }> = {
  readFile: { inputs: ["readFile"], outputs: ["bytes", "errno", "at"], varies: [] },
  ioctl: { inputs: ["ioctl", "request", "arg"], outputs: ["result", "errno"], varies: [] },
  mmap: { inputs: ["mmap", "length", "prot", "offset"], outputs: ["result", "errno"], varies: [] },
  observe: { inputs: ["observe", "offset", "size"], outputs: ["bytes"], varies: ["bytes"] },
  wrote: { inputs: ["wrote", "offset", "size", "bytes"], outputs: [], varies: ["bytes"] },
  munmap: { inputs: ["munmap"], outputs: ["errno"], varies: [] },
  epoll: {
    inputs: ["epoll", "epfd", "op", "fd", "events", "maxEvents", "timeoutMs"],
    outputs: ["result", "ready", "errno"],
    varies: ["ready"],
  },
};

/** Differences of two entries of one primitive (see {@linkcode PRIMITIVE_KEYS}). */
function diffPrimitive(
  kind: EntryKind,
  expected: Entry,
  actual: Entry,
  scope: "inputs" | "all",
): string[] {
  const { inputs, outputs, varies } = PRIMITIVE_KEYS[kind]!;
  const want = expected as unknown as Record<string, unknown>;
  const got = actual as unknown as Record<string, unknown>;
  const keys = scope === "inputs"
    ? inputs
    : [...inputs, ...outputs].filter((key) => !varies.includes(key));
  const lines: string[] = [];
  for (const key of keys) {
    const a = want[key];
    const b = got[key];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (typeof a === "string" && typeof b === "string" && key === "bytes") {
      lines.push(...diffBytes(key, a, b, 0));
    } else {
      lines.push(`${key}: expected ${shown(a)}, got ${shown(b)}`);
    }
  }
  return lines;
}

function shown(value: unknown): string {
  return value === undefined ? "nothing" : JSON.stringify(value).slice(0, 80);
}

/**
 * The differences between the call the transcript expects and the one made.
 * `scope` `"inputs"` compares what the code passed (the player's question);
 * `"all"` also compares what the kernel answered (the verifier's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { diffEntries } from "./diff.ts";
 *
 * const expected = { call: "BPF_MAP_FREEZE", attr: { map_fd: 1 } };
 * const actual = { call: "BPF_MAP_FREEZE", attr: { map_fd: 2 } };
 * assert.deepEqual(diffEntries(expected, actual, "inputs"), ["map_fd: expected handle 1, got handle 2"]);
 * ```
 */
export function diffEntries(expected: Entry, actual: Entry, scope: "inputs" | "all"): string[] {
  const kind = kindOf(expected);
  if (kind !== kindOf(actual)) {
    return [`expected ${describeEntry(expected)}, got ${describeEntry(actual)}`];
  }
  if (kind in PRIMITIVE_KEYS) return diffPrimitive(kind, expected, actual, scope);
  if ("fdinfo" in expected && "fdinfo" in actual) {
    const lines: string[] = [];
    if (expected.fdinfo !== actual.fdinfo) {
      lines.push(`expected fdinfo(handle ${expected.fdinfo}), got fdinfo(handle ${actual.fdinfo})`);
    }
    if (scope === "all") {
      for (const key of new Set([...Object.keys(expected.fields), ...Object.keys(actual.fields)])) {
        if (expected.fields[key] !== actual.fields[key]) {
          lines.push(`fdinfo ${key}: expected ${expected.fields[key]}, got ${actual.fields[key]}`);
        }
      }
    }
    return lines;
  }
  if (!isCall(expected) || !isCall(actual)) {
    const want = expected as CloseEntry;
    const got = actual as CloseEntry;
    const lines: string[] = [];
    if (want.close !== got.close) {
      lines.push(`expected close(handle ${want.close}), got close(handle ${got.close})`);
    }
    if (scope === "all" && want.errno !== got.errno) {
      lines.push(`close errno: expected ${want.errno ?? "none"}, got ${got.errno ?? "none"}`);
    }
    return lines;
  }
  if (expected.call !== actual.call) {
    return [`expected ${expected.call}, got ${actual.call}`];
  }
  const fields = FIELDS_BY_COMMAND.get(expected.call) ?? new Map<string, Field>();
  const lines: string[] = [];
  const names = new Set([...Object.keys(expected.attr), ...Object.keys(actual.attr)]);
  for (const name of names) {
    lines.push(
      ...diffField(name, fields.get(name), expected.attr[name], actual.attr[name], expected, scope),
    );
  }
  if (expected.args !== undefined || actual.args !== undefined) {
    for (const key of ["pid", "cpu", "group_fd", "flags"] as const) {
      const a = expected.args?.[key];
      const b = actual.args?.[key];
      if (a !== b) lines.push(`${key}: expected ${shown(a)}, got ${shown(b)}`);
    }
  }
  if (scope === "all") {
    const want = resultText(expected);
    const got = resultText(actual);
    if (want !== got) lines.push(`result: expected ${want}, got ${got}`);
  }
  return lines;
}

function resultText(entry: CallEntry): string {
  if (entry.errno !== undefined) return entry.errno;
  if (typeof entry.result === "object") return `fd handle ${entry.result.fd}`;
  return String(entry.result ?? 0);
}

function diffField(
  name: string,
  field: Field | undefined,
  want: FieldRecord | undefined,
  got: FieldRecord | undefined,
  expected: CallEntry,
  scope: "inputs" | "all",
): string[] {
  if (isRegion(want) || isRegion(got)) {
    if (!isRegion(want) || !isRegion(got)) {
      return [`${name}: expected ${regionText(want)}, got ${regionText(got)}`];
    }
    if (field?.pointee === "path" && want.in !== undefined && got.in !== undefined) {
      // Paths read as text: a placeholder (`${BPFFS}`) the run did not name shows as such.
      return want.in === got.in
        ? []
        : [`${name}: expected ${pathText(want.in)}, got ${pathText(got.in)}`];
    }
    const lines: string[] = [];
    if (want.size !== got.size) lines.push(`${name}: expected ${want.size} bytes, got ${got.size}`);
    const sides: ("in" | "out")[] = scope === "all" ? ["in", "out"] : ["in"];
    for (const side of sides) {
      if (want[side] === got[side]) continue;
      const elementSize = field?.counted === true ? countedElementSize(want, expected) : 0;
      const label = side === "in" ? name : `${name} (kernel wrote)`;
      lines.push(...diffBytes(label, want[side], got[side], elementSize));
    }
    const nested = new Set([
      ...Object.keys(want.pointers ?? {}),
      ...Object.keys(got.pointers ?? {}),
    ]);
    for (const inner of nested) {
      const w = want.pointers?.[inner];
      const g = got.pointers?.[inner];
      lines.push(
        ...diffField(`${name}.${inner}`, undefined, w ?? null, g ?? null, expected, scope),
      );
    }
    return lines;
  }
  if (isInOut(want) || isInOut(got)) {
    const lines: string[] = [];
    const w = want as ScalarInOut | undefined;
    const g = got as ScalarInOut | undefined;
    if (w?.in !== g?.in) lines.push(`${name}: expected ${w?.in}, got ${g?.in}`);
    if (scope === "all" && w?.out !== g?.out) {
      lines.push(`${name} (kernel wrote): expected ${w?.out}, got ${g?.out}`);
    }
    return lines;
  }
  if (want === got) return [];
  const show = (value: FieldRecord | undefined) =>
    field?.kind === "fd" && typeof value === "number" && value !== 0
      ? `handle ${value}`
      : JSON.stringify(value);
  return [`${name}: expected ${show(want)}, got ${show(got)}`];
}

function countedElementSize(region: RegionRecord, entry: CallEntry): number {
  const count = entry.attr.count as ScalarInOut | undefined;
  return count !== undefined && count.in > 0 ? region.size / count.in : 0;
}

/** Differences of two encoded byte strings: per element when `elementSize` > 0. */
function diffBytes(
  label: string,
  want: string | undefined,
  got: string | undefined,
  elementSize: number,
): string[] {
  if (want === undefined || got === undefined) {
    return [
      `${label}: expected ${want === undefined ? "nothing" : "bytes"}, got ${
        got === undefined ? "nothing" : "bytes"
      }`,
    ];
  }
  const a = decodeBytes(want);
  const b = decodeBytes(got);
  if (elementSize > 0) {
    const lines: string[] = [];
    const elements = Math.max(a.byteLength, b.byteLength) / elementSize;
    let differing = 0;
    for (let i = 0; i < elements; i++) {
      const x = a.subarray(i * elementSize, (i + 1) * elementSize);
      const y = b.subarray(i * elementSize, (i + 1) * elementSize);
      // Every byte counts: an element is compared whole, however large.
      if (sameBytes(x, y)) continue;
      differing++;
      if (differing <= MAX_ELEMENTS_LISTED) {
        lines.push(describeDifference(`${label}[${i}]`, x, y, true));
      }
    }
    if (differing > MAX_ELEMENTS_LISTED) {
      lines.push(
        `${label}: ${differing} of ${elements} elements differ (first ${MAX_ELEMENTS_LISTED} shown)`,
      );
    }
    return lines;
  }
  return [describeDifference(label, a, b)];
}

/** Whether two byte strings are equal, every byte of them. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One line on two byte strings that differ: both whole when they are small
 * (with where they first differ, for a region), else 16 bytes from the first
 * difference on.
 */
function describeDifference(label: string, a: Uint8Array, b: Uint8Array, element = false): string {
  let first = 0;
  while (first < Math.min(a.byteLength, b.byteLength) && a[first] === b[first]) first++;
  const small = element ? SMALL_ELEMENT : SMALL_REGION;
  if (a.byteLength <= small && b.byteLength <= small) {
    if (element) return `${label}: expected ${hex(a, "(none)")}, got ${hex(b, "(none)")}`;
    return `${label}: expected ${hex(a, "(empty)")}, got ${
      hex(b, "(empty)")
    } (first difference at byte ${first})`;
  }
  const window = (bytes: Uint8Array) => hex(bytes.subarray(first, first + 16), "(end)");
  return `${label}: differs at byte ${first} of ${a.byteLength}: expected ${window(a)}…, got ${
    window(b)
  }…`;
}

/** Small bytes as hex, or `empty` for none. */
function hex(bytes: Uint8Array, empty: string): string {
  return encodeBytes(bytes) || empty;
}

/** A recorded NUL-terminated path, as a JSON string. */
function pathText(encoded: string): string {
  const bytes = decodeBytes(encoded);
  const end = bytes.indexOf(0);
  return JSON.stringify(new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end)));
}

function isRegion(value: FieldRecord | undefined): value is RegionRecord {
  return typeof value === "object" && value !== null && "size" in value;
}

function isInOut(value: FieldRecord | undefined): boolean {
  return typeof value === "object" && value !== null && "in" in value && !("size" in value);
}

function regionText(value: FieldRecord | undefined): string {
  if (value === null) return "NULL";
  if (isRegion(value)) return `${value.size} bytes`;
  return JSON.stringify(value);
}
