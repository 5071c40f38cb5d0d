/**
 * The player fuzzed: recorded fixtures, mutated at random (every field, huge
 * and negative numbers, wrong types, bad encodings, extra fields, swapped,
 * dropped and truncated entries), are replayed call by call with guard bytes
 * around every buffer the caller passes. Whatever the transcript says, the
 * player either refuses it (`TranscriptError`, `ReplayDivergenceError`) or
 * answers within bounds: no byte outside a region written, no byte handed
 * back that the transcript did not hold, no count beyond what was asked.
 *
 * `BPFMAP_TRANSCRIPT_FUZZ_CASES` sets the number of cases (default 4,000: it runs in all four passes of npm test)
 * and `BPFMAP_TRANSCRIPT_FUZZ_SEED` the seed (default fixed): a failure
 * prints the seed and case that found it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Attr } from "../ffi/attr.ts";
import {
  BPF_BTF_INFO,
  BPF_LINK_INFO,
  BPF_LINK_INFO_ITER,
  BPF_LINK_INFO_RAW_TRACEPOINT,
  BPF_MAP_INFO,
  BPF_PROG_INFO,
  commandKey,
  COMMANDS_BY_KEY,
  type Field,
  type Layout,
} from "../ffi/commands.ts";
import { readEnv } from "../ffi/live.ts";
import type { MappedRegion } from "../ffi/mmap.ts";
import { PERF_EVENT_ATTR } from "../ffi/perf_event.ts";
import { REPLAY_FD_BASE } from "../replay/identities.ts";
import { ReplayBackend, ReplayDivergenceError } from "../replay/player.ts";
import {
  type CallEntry,
  decodeBytes,
  type Entry,
  type EpollEntry,
  type IoctlEntry,
  type MemoryEntry,
  type MmapEntry,
  parseTranscript,
  type RegionRecord,
  type ScalarInOut,
  type Transcript,
  TRANSCRIPT_FORMAT,
  TranscriptError,
} from "../replay/transcript.ts";
import { random } from "./helpers/fuzzer.ts";
import { FIXTURES } from "./helpers/transcript.ts";

const CASES = Number(readEnv("BPFMAP_TRANSCRIPT_FUZZ_CASES") || 4_000);
const SEED = Number(readEnv("BPFMAP_TRANSCRIPT_FUZZ_SEED") || 0x5eed);
/** Fixtures up to this size are fuzzed: small ones replay fast, and cover every command. */
const MAX_FIXTURE_BYTES = 24_000;
const GUARD = 16;
const GUARD_BYTE = 0xa5;
/** What the caller's output buffers hold before a call: any byte the player writes changes it. */
const UNWRITTEN = 0x5a;
/** An fd the player never handed out: `"foreign"` in a transcript. */
const FOREIGN_FD = 3;
/** By the name a transcript's entries give: the command's, with its union shape after a colon. */
const COMMANDS_BY_ENTRY_NAME = new Map(
  [...COMMANDS_BY_KEY.values(), PERF_EVENT_ATTR].map((c) => [commandKey(c), c]),
);

/** A buffer the caller passes, inside guard bytes that no write may reach. */
interface Guarded {
  readonly whole: Uint8Array;
  readonly view: Uint8Array;
}

function guarded(size: number, fill: Uint8Array | number): Guarded {
  const whole = new Uint8Array(size + 2 * GUARD).fill(GUARD_BYTE);
  const view = whole.subarray(GUARD, GUARD + size);
  if (typeof fill === "number") view.fill(fill);
  else view.set(fill);
  return { whole, view };
}

function guardsIntact({ whole }: Guarded): boolean {
  const size = whole.byteLength;
  for (let i = 0; i < GUARD; i++) {
    if (whole[i] !== GUARD_BYTE || whole[size - 1 - i] !== GUARD_BYTE) return false;
  }
  return true;
}

const fdOf = (handle: unknown) =>
  handle === "foreign" ? FOREIGN_FD : handle === 0 ? 0 : REPLAY_FD_BASE + (handle as number);

/** One pointer the driver bound: which field, its buffers, and the caller's bytes before the call. */
interface Bound {
  field: string;
  direction: string;
  buffer: Guarded;
  before: Uint8Array;
}

/**
 * The call `entry` of the original transcript asks, packed as the library
 * would pack it, each buffer guarded.
 */
function pack(entry: CallEntry, player: ReplayBackend): { attr: Attr; bound: Bound[] } {
  const command = COMMANDS_BY_ENTRY_NAME.get(entry.call)!;
  const attr = new Attr(command, player);
  const bound: Bound[] = [];
  for (const field of command.fieldList) {
    const value = entry.attr[field.name];
    switch (field.kind) {
      case "fd":
        attr.setU32(field, fdOf(value));
        break;
      case "u32":
        attr.setU32(field, typeof value === "number" ? value : (value as ScalarInOut).in);
        break;
      case "u64":
        attr.setBigU64(field, BigInt(value as number | string));
        break;
      case "chars":
        attr.setChars(field, value as string);
        break;
      case "pointer":
        bound.push(...bindRegion(attr, field, value as RegionRecord | null));
    }
  }
  // The caller's bytes as the call sees them: nested pointers' addresses written in.
  for (const b of bound) b.before = b.buffer.view.slice();
  return { attr, bound };
}

/**
 * The info struct a recorded region is, by its size (the library asks for
 * each kind's whole struct); a link's raw-tracepoint view by its name pointer.
 */
function infoLayout(region: RegionRecord): Layout {
  if (region.pointers?.tp_name !== undefined) return BPF_LINK_INFO_RAW_TRACEPOINT;
  if (region.pointers?.target_name !== undefined) return BPF_LINK_INFO_ITER;
  const bySize = [BPF_MAP_INFO, BPF_BTF_INFO, BPF_PROG_INFO, BPF_LINK_INFO]
    .find((layout) => layout.size === region.size);
  return bySize ?? (region.in === undefined ? BPF_MAP_INFO : BPF_BTF_INFO);
}

function bindRegion(attr: Attr, field: Field, region: RegionRecord | null): Bound[] {
  if (region === null) {
    attr.setPointer(field, null, 0);
    return [];
  }
  const buffer = guarded(
    region.size,
    region.in === undefined ? UNWRITTEN : decodeBytes(region.in),
  );
  // Where a call overrides the table: a BTF info struct is read and written, a bloom value read.
  let direction = field.direction;
  let layout: Layout | null = null;
  if (field.name === "info") {
    layout = infoLayout(region);
    if (region.in !== undefined) direction = "inout";
  } else if (field.direction === "out" && region.in !== undefined) direction = "in";
  attr.setPointer(field, buffer.view, undefined, direction, layout);
  const bound: Bound[] = [{
    field: field.name,
    direction,
    buffer,
    before: buffer.view.slice(),
  }];
  for (const [name, inner] of Object.entries(region.pointers ?? {})) {
    const nested = guarded(inner.size, inner.in === undefined ? UNWRITTEN : decodeBytes(inner.in));
    const nestedField = (layout?.fields as Record<string, Field | undefined> | undefined)?.[name]
      ?? assert.fail(`${layout?.name ?? field.name} has no ${name}`);
    attr.setNestedPointer(field, nestedField, nested.view);
    bound.push({
      field: `${field.name}.pointers.${name}`,
      direction: nestedField.direction,
      buffer: nested,
      before: nested.view.slice(),
    });
  }
  return bound;
}

/** The region record of a bound buffer in an entry, nested ones included. */
function recordOf(entry: CallEntry, name: string): RegionRecord | undefined {
  const [field = "", , inner] = name.split(".");
  const region = entry.attr[field] as RegionRecord | null | undefined;
  if (region === null || region === undefined) return undefined;
  return inner === undefined ? region : region.pointers?.[inner];
}

/**
 * What must hold after the player answered a call from `served` (an entry of
 * the mutated transcript, as parsed): guards intact, every byte either the
 * caller's own or the transcript's at that offset, nothing written where this
 * call's kernel only reads, and the count it hands back within what was
 * asked and within the bytes the transcript holds.
 */
function checkAnswer(
  served: CallEntry,
  attr: Attr,
  bound: Bound[],
  result: number,
  asked: number | undefined,
  where: string,
): void {
  for (const { field, direction, buffer, before } of bound) {
    assert.ok(guardsIntact(buffer), `${where}: a write outside ${field}`);
    const out = recordOf(served, field)?.out;
    const held = out === undefined ? new Uint8Array(0) : decodeBytes(out);
    const view = buffer.view;
    for (let i = 0; i < view.byteLength; i++) {
      if (view[i] === before[i]) continue;
      assert.ok(direction !== "in", `${where}: ${field} written, but the kernel only reads it`);
      assert.ok(
        i < held.byteLength && view[i] === held[i],
        `${where}: ${field}[${i}] = ${view[i]}: not a byte the transcript held`,
      );
    }
  }
  const command = attr.command;
  const count = (command.fields as Record<string, Field>).count;
  if (count !== undefined && asked !== undefined) {
    const given = attr.getU32(count);
    assert.ok(given <= asked, `${where}: count ${given} handed back for ${asked} asked`);
    const untouched = result < 0 && served.errno !== "ENOENT" && given === asked;
    for (const { field, direction, buffer } of bound) {
      if (direction === "in" || untouched || !["keys", "values"].includes(field)) continue;
      const held = recordOf(served, field)?.out;
      const elementSize: number = asked === 0 ? 0 : buffer.view.byteLength / asked;
      assert.ok(
        given * elementSize <= (held === undefined ? 0 : decodeBytes(held).byteLength),
        `${where}: ${given} ${field} claimed, more than the transcript holds`,
      );
    }
  }
  if (result < 0) assert.ok(result >= -4095, `${where}: result ${result} is no errno`);
  else if (command.result === "zero") assert.equal(result, 0, `${where}: result`);
  else assert.ok(result >= REPLAY_FD_BASE, `${where}: fd ${result} the player never handed out`);
}

/**
 * Replays `original`'s calls against a player on `text` (a transcript that
 * may be mutated). Returns how it ended: `"refused"` at parse or play time,
 * or `"played"`; anything else thrown fails the test.
 */
function drive(original: Transcript, text: string, where: string): "refused" | "played" {
  let mutated: Transcript;
  try {
    mutated = parseTranscript(text, where);
  } catch (error) {
    assert.ok(error instanceof TranscriptError, `${where}: parse threw ${String(error)}`);
    return "refused";
  }
  const player = new ReplayBackend(mutated, where);
  const mappings: MappedRegion[] = [];
  for (const [index, entry] of original.entries.entries()) {
    const at = `${where} entry ${index}`;
    try {
      if ("call" in entry) {
        const { attr, bound } = pack(entry, player);
        const served = mutated.entries[player.played] as Entry | undefined;
        const countField = (attr.command.fields as Record<string, Field>).count;
        const asked = countField === undefined ? undefined : attr.getU32(countField);
        let result: number;
        try {
          const args = entry.args;
          result = args === undefined
            ? player.bpf(attr)
            : player.perfEventOpen(attr, args.pid, args.cpu, fdOf(args.group_fd), args.flags);
        } catch (error) {
          // Refused before a byte was written.
          for (const b of bound) {
            assert.ok(guardsIntact(b.buffer), `${at}: a write outside ${b.field}`);
            assert.deepEqual(b.buffer.view, b.before, `${at}: ${b.field} written, then refused`);
          }
          throw error;
        }
        checkAnswer(served as CallEntry, attr, bound, result, asked, at);
      } else if ("close" in entry) {
        player.close(fdOf(entry.close));
      } else if ("fdinfo" in entry) {
        const fields = player.fdInfo(fdOf(entry.fdinfo));
        for (const value of Object.values(fields)) assert.equal(typeof value, "string", at);
      } else {
        drivePrimitive(entry, player, mappings, at);
      }
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      const known = error instanceof TranscriptError || error instanceof ReplayDivergenceError;
      assert.ok(known, `${at}: the player threw ${(error as Error).stack}`);
      return "refused";
    }
  }
  return "played";
}

/** Plays one entry of the backend's other primitives, checking that the answer is in bounds. */
function drivePrimitive(
  entry: Entry,
  player: ReplayBackend,
  mappings: MappedRegion[],
  at: string,
): void {
  const isErrno = (n: number) => n < 0 && n >= -4095;
  const isFd = (n: number) => isErrno(n) || n >= REPLAY_FD_BASE;
  if ("readFile" in entry) {
    try {
      assert.ok(player.readFile(entry.readFile) instanceof Uint8Array, at);
    } catch (error) {
      // A recorded failure is thrown as the live backend throws it: an Error with errno's code.
      if (!(error as { code?: unknown }).code) throw error;
    }
  } else if ("ioctl" in entry) {
    const { ioctl, request, arg } = entry as IoctlEntry;
    const result = player.ioctl(fdOf(ioctl), request, arg === "foreign" ? FOREIGN_FD : arg);
    assert.ok(isErrno(result) || result >= 0, `${at}: ioctl result ${result}`);
  } else if ("mmap" in entry) {
    const { mmap, length, prot, offset } = entry as MmapEntry;
    const region = player.mmap(fdOf(mmap), length, prot, offset);
    if (typeof region === "number") return assert.ok(isErrno(region), `${at}: mmap ${region}`);
    assert.equal(region.bytes.byteLength, length, `${at}: a mapping of another length`);
    mappings.push(region);
  } else if ("observe" in entry || "wrote" in entry) {
    const { observe, wrote, offset, size, bytes } = entry as MemoryEntry;
    const region = mappings[(observe ?? wrote)! - 1] ?? assert.fail(`${at}: no such mapping`);
    if (wrote !== undefined) {
      region.bytes.set(decodeBytes(bytes), offset);
      region.wrote(offset, size);
    } else {
      const before = region.bytes.slice();
      region.observe(offset, size);
      // Only the span observed may change.
      before.set(region.bytes.subarray(offset, offset + size), offset);
      assert.deepEqual(region.bytes, before, `${at}: observe wrote outside its span`);
    }
  } else if ("munmap" in entry) {
    const region = mappings[entry.munmap - 1] ?? assert.fail(`${at}: no such mapping`);
    assert.ok(region.unmap() <= 0, at);
  } else {
    const e = entry as EpollEntry;
    if (e.epoll === "create") {
      assert.ok(isFd(player.epollCreate()), at);
    } else if (e.epoll === "ctl") {
      const result = player.epollCtl(fdOf(e.epfd), e.op!, fdOf(e.fd), e.events!);
      assert.ok(result === 0 || isErrno(result), `${at}: epoll_ctl ${result}`);
    } else if (e.epoll === "wait") {
      const result = player.epollWait(fdOf(e.epfd), e.maxEvents!, e.timeoutMs!);
      if (typeof result === "number") return assert.ok(isErrno(result), at);
      assert.ok(result.length <= e.maxEvents!, `${at}: more ready fds than maxEvents`);
      for (const { fd } of result) assert.ok(fd === -1 || fd >= REPLAY_FD_BASE, at);
    } else {
      // The async wait answers after a turn of the event loop: its checks are the sync one's.
      void player.epollWaitAsync(fdOf(e.epfd), e.maxEvents!, e.timeoutMs!).catch(() => {});
    }
  }
}

/** Values that break assumptions: wrong types, bounds, encodings, errnos. */
function oddValue(rand: () => number, like: unknown): unknown {
  const n = typeof like === "number" ? like : 4;
  const choices: unknown[] = [
    0,
    1,
    -1,
    -2,
    n + 1,
    n - 1,
    n * 2,
    n * 1000,
    0xffff_ffff,
    0x1_0000_0000,
    2 ** 53,
    1.5,
    -(2 ** 31),
    1e308,
    "",
    "1",
    "E0",
    "ENOENT",
    "EWHATEVER",
    "foreign",
    "zz",
    "0",
    "00".repeat(Math.floor(rand() * 80)),
    "base64:" + "AAAA".repeat(Math.floor(rand() * 40)),
    "base64:AA",
    null,
    true,
    [],
    {},
    { in: n, out: n * 2 },
    { size: n, out: "00" },
    { fd: n },
  ];
  if (typeof like === "string" && like.length > 0) {
    choices.push(like.slice(0, -2), like + "00", like.slice(2), like.replace(/.$/, "f"));
  }
  return choices[Math.floor(rand() * choices.length)];
}

/** Every [container, key] in a JSON value, depth first. */
function slots(value: unknown, into: [Record<string, unknown>, string][] = []) {
  if (typeof value === "object" && value !== null) {
    for (const key of Object.keys(value)) {
      into.push([value as Record<string, unknown>, key]);
      slots((value as Record<string, unknown>)[key], into);
    }
  }
  return into;
}

const EXTRA_KEYS = ["out", "in", "errno", "result", "pointers", "size", "extra", "count"];

/** One random mutation of a transcript, as text. */
function mutate(rand: () => number, original: Transcript, text: string): string {
  const t = structuredClone(original) as unknown as Record<string, unknown> & Transcript;
  const entries = t.entries as unknown[];
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(rand() * items.length)];
  const kind = rand();
  if (kind < 0.05) return text.slice(0, Math.floor(rand() * text.length));
  if (kind < 0.1) {
    const [a, b] = [pick([...entries.keys()]), pick([...entries.keys()])];
    // Both come from one list: undefined together, when a transcript has no entries.
    if (a !== undefined && b !== undefined) [entries[a], entries[b]] = [entries[b], entries[a]];
  } else if (kind < 0.13) {
    entries.splice(Math.floor(rand() * entries.length), 1);
  } else if (kind < 0.16) {
    const i = Math.floor(rand() * entries.length);
    entries.splice(i, 0, structuredClone(entries[i]));
  } else if (kind < 0.2) {
    const [container, key] = pick(slots({ version: t.version, host: t.host, files: t.files }))
      ?? assert.fail("a transcript's header has slots");
    container[key] = oddValue(rand, container[key]);
    if (key === "version") t.version = container.version as number;
  } else {
    // Most mutations land in one call's fields: that is where the buffers are.
    const entry = pick(entries.filter((e) => typeof e === "object" && e !== null && "call" in e));
    const places = slots(entry ?? pick(entries));
    if (places.length === 0) return text;
    const [container, key] = pick(places) ?? assert.fail("places is not empty");
    const what = rand();
    if (what < 0.6) container[key] = oddValue(rand, container[key]);
    else if (what < 0.75) delete container[key];
    else {
      const target = typeof container[key] === "object" && container[key] !== null
        ? container[key] as Record<string, unknown>
        : container;
      target[pick(EXTRA_KEYS) ?? assert.fail("EXTRA_KEYS is not empty")] = oddValue(rand, 8);
    }
  }
  return JSON.stringify(t);
}

/** The fixtures the driver replays unchanged: small ones, every command among them. */
function corpus(): { name: string; transcript: Transcript; text: string }[] {
  const found: { name: string; transcript: Transcript; text: string }[] = [];
  for (const folder of readdirSync(FIXTURES).sort()) {
    for (const file of readdirSync(join(FIXTURES, folder)).sort()) {
      const path = join(FIXTURES, folder, file);
      if (!file.endsWith(".json") || statSync(path).size > MAX_FIXTURE_BYTES) continue;
      const text = readFileSync(path, "utf8");
      // Beside transcripts, a test may keep other JSON (a CLI run's expected output).
      if (!text.startsWith(`{"format":"${TRANSCRIPT_FORMAT}"`)) continue;
      const transcript = parseTranscript(text, path);
      // Map-in-map values and per-run paths need the library's own packing: left to their tests.
      if (drive(transcript, text, path) === "played") {
        found.push({ name: `${folder}/${file}`, transcript, text });
      }
    }
  }
  return found;
}

test(`the player, fed ${CASES} mutated fixtures, never writes out of bounds or invents bytes`, () => {
  const fixtures = corpus();
  const commands = new Set(
    fixtures.flatMap(({ transcript }) =>
      transcript.entries.flatMap((e) => "call" in e ? [e.call] : [])
    ),
  );
  // The unchanged fixtures replay, and between them make every kind of call bpfmap makes.
  assert.ok(fixtures.length >= 20, `only ${fixtures.length} fixtures replay through the driver`);
  for (const name of ["BPF_MAP_LOOKUP_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_BTF_LOAD"]) {
    assert.ok(commands.has(name), `no fixture makes ${name}`);
  }
  const rand = random(SEED);
  const outcomes = { refused: 0, played: 0 };
  for (let i = 0; i < CASES; i++) {
    const { name, transcript, text } = fixtures[Math.floor(rand() * fixtures.length)]
      ?? assert.fail("no fixtures");
    const mutated = mutate(rand, transcript, text);
    outcomes[drive(transcript, mutated, `seed ${SEED} case ${i} (${name})`)]++;
  }
  // Both happen: refusals, and mutations of bytes the kernel wrote, which replay as written.
  assert.ok(outcomes.refused > CASES / 4, JSON.stringify(outcomes));
  assert.ok(outcomes.played > CASES / 20, JSON.stringify(outcomes));
});
