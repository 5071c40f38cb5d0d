/**
 * `npm run mutants`: mutation testing. Each mutation below is a bug the
 * suite claims to catch; this script plants it in a copy of the working tree
 * and runs the tests that should kill it. A mutant that survives is a test
 * that cannot fail for the bug its name describes.
 *
 * ```sh
 * deno run -A scripts/mutants.ts            # every mutant against its own tests (the fast subset)
 * deno run -A scripts/mutants.ts --only NAME # one mutant (repeat --only for more)
 * deno run -A scripts/mutants.ts --full     # every mutant against all of tests/, both Deno passes
 * deno run -A scripts/mutants.ts --list     # the table, checked against the source, nothing run
 * ```
 *
 * A test run that dies of SIGSEGV or SIGBUS kills its mutant: the bug let
 * the code touch memory it must not (a write to read-only pages).
 *
 * Exit status: 0 all killed, 1 a mutant survived (or could not be judged),
 * 2 bad usage or a mutation that no longer applies.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** One planted bug. */
interface Mutation {
  /** Short, unique, kebab-case. */
  name: string;
  /** Why a user would be hurt by it: one line. */
  why: string;
  /** The library file, relative to the repository root. */
  file: string;
  /** Source text that must occur exactly once in `file`. */
  from: string;
  /** What replaces it. */
  to: string;
  /** The test files that should kill it (the fast subset). */
  tests: string[];
  /** Also run the Deno replay pass: for replay/ and CLI output, which replay checks on its own. */
  replay?: boolean;
}

// The list. Library files move: when one does, fix `file` here; when the code
// changes, `--list` says which `from` no longer applies.
const MUTATIONS: Mutation[] = [
  {
    name: "batch-processed-plus-one",
    why: "a failed batch claims one element more than it wrote: callers skip an element on retry",
    file: "maps/bpf_map.ts",
    from: "return written === requested ? 0 : written;",
    to: "return written === requested ? 0 : written + 1;",
    tests: ["tests/batch_hash.test.ts", "tests/faults.test.ts"],
  },
  {
    name: "write-batch-count-minus-one",
    why: "updateBatch/deleteBatch report one element fewer than the kernel wrote",
    file: "maps/bpf_map.ts",
    from: "if (result >= 0) return written;",
    to: "if (result >= 0) return written - 1;",
    tests: ["tests/batch_hash.test.ts", "tests/batch_other.test.ts"],
  },
  {
    name: "write-batch-keys-values-swapped",
    why: "a batch attr packed with keys and values swapped stores garbage under garbage keys",
    file: "ffi/bpf.ts",
    from: `  attr.setPointer(fields.keys, call.keys);
  attr.setPointer(fields.values, call.values);`,
    // Swapped where the kernel reads them (update, delete): swapped lookup buffers would have it
    // write 8-byte values into 4-byte keys, a crash rather than a test's verdict.
    to: `  const swap = fields.keys.direction === "in";
  attr.setPointer(fields.keys, swap ? call.values : call.keys);
  attr.setPointer(fields.values, swap ? call.keys : call.values);`,
    tests: ["tests/batch_hash.test.ts", "tests/batch_other.test.ts"],
  },
  {
    name: "eintr-not-retried",
    why: "a signal during any bpf() call surfaces as a spurious EINTR error",
    file: "ffi/kernel.ts",
    from: "if (result === -EINTR) result = this.#retryInterrupted(",
    to: "if (false) result = this.#retryInterrupted(",
    tests: ["tests/faults.test.ts"],
  },
  {
    name: "eintr-retried-after-partial-batch",
    why: "a batch interrupted after doing part of its work is run again: elements written twice",
    file: "ffi/kernel.ts",
    from: "if (count !== undefined && attr.getU32(count) !== requested) break;",
    to: "",
    tests: ["tests/faults.test.ts"],
  },
  {
    name: "walk-drops-last-batch",
    why: "the final batch (cursor null) still holds elements: a walk that ends on it loses them",
    file: "maps/walk.ts",
    from: `    if (batch.count > 0) yield batch;
    if (batch.cursor === null) return;`,
    to: `    if (batch.cursor === null) return;
    if (batch.count > 0) yield batch;`,
    tests: ["tests/walk.test.ts", "tests/batch_hash.test.ts", "tests/codec.test.ts"],
  },
  {
    name: "walk-enospc-not-grown",
    why: "a hash bucket larger than the batch makes every walk fail with ENOSPC",
    file: "maps/walk.ts",
    from: "size *= 2;",
    to: "size *= 1;",
    tests: ["tests/walk.test.ts"],
  },
  {
    name: "walk-no-nextkey-fallback",
    why: "map types without batch lookup (devmap, ...) can no longer be walked or dumped",
    file: "maps/walk.ts",
    from: "if (!first || !isUnsupported(error)) throw error;",
    to: "throw error;",
    tests: ["tests/walk.test.ts", "tests/typed_types.test.ts"],
  },
  {
    name: "failed-drain-loses-removed",
    why: "a lookup-and-delete batch failing part-way drops the elements it already removed",
    file: "maps/walk.ts",
    from: "if (error instanceof BatchError && error.processed > 0 && error.keys && error.values) {",
    to: "if (false) {",
    tests: ["tests/faults.test.ts"],
  },
  {
    name: "percpu-slot-not-rounded",
    why: "per-CPU values of 4 bytes are strided 4, not 8: every CPU but the first is misread",
    file: "ffi/percpu.ts",
    from: "return Math.ceil(valueSize / 8) * 8;",
    to: "return valueSize;",
    tests: ["tests/batch_other.test.ts", "tests/elements.test.ts", "tests/codec.test.ts"],
  },
  {
    name: "possible-cpus-one-short",
    why: "a CPU range counted without its last CPU: per-CPU buffers one slot short",
    file: "ffi/percpu.ts",
    from: "count += last - first + 1;",
    to: "count += last - first;",
    tests: ["tests/platform.test.ts"],
  },
  {
    name: "errno-sign-flipped",
    why: "BpfError gets a negative errno: code and message name no error",
    file: "ffi/kernel.ts",
    from: "if (result < 0) throw new BpfError(attr.command.name, -result, detail);",
    to: "if (result < 0) throw new BpfError(attr.command.name, result, detail);",
    tests: ["tests/elements.test.ts", "tests/bad_input.test.ts"],
  },
  {
    name: "lookup-bpf-f-lock-dropped",
    why: "lookup(key, BPF_F_LOCK) reads a spin-locked value without the lock: torn reads",
    file: "maps/bpf_map.ts",
    from: "const result = this.#calls.lookup(flags);",
    to: "const result = this.#calls.lookup(0);",
    tests: ["tests/elements.test.ts", "tests/btf.test.ts"],
  },
  {
    name: "lookup-result-aliases-scratch",
    why: "lookup returns the map's scratch buffer: the next call overwrites an earlier result",
    file: "maps/bpf_map.ts",
    from: `return this.#lookup("lookup", key, flags) ? this.#valueView.slice() : undefined;`,
    to: `return this.#lookup("lookup", key, flags) ? this.#valueView : undefined;`,
    tests: ["tests/elements.test.ts", "tests/result_ownership.test.ts"],
  },
  {
    name: "byte-length-trusted",
    why: "a Uint8Array whose byteLength property lies makes the kernel write past its buffer",
    file: "ffi/validate.ts",
    from: "const length = byteLengthOf(value);",
    to: "const length = value.byteLength;",
    tests: ["tests/hostile_buffers.test.ts"],
  },
  {
    name: "popped-value-is-scratch",
    why: "pop returns the map's scratch: the next call overwrites an element the kernel removed",
    file: "maps/bpf_map.ts",
    from: `if (result < 0) throw this.#error(BPF_MAP_LOOKUP_AND_DELETE_ELEM.name, result);
    return this.#valueView.slice();`,
    to: `if (result < 0) throw this.#error(BPF_MAP_LOOKUP_AND_DELETE_ELEM.name, result);
    return this.#valueView;`,
    tests: ["tests/result_ownership.test.ts"],
  },
  {
    name: "struct-tail-padding-missing",
    why: "struct sizes not rounded to their alignment: keys and values the wrong size for C",
    file: "codec/codec.ts",
    from: `  size = Math.ceil(size / align) * align;
  const members`,
    to: `  const members`,
    tests: ["tests/codec.test.ts"],
  },
  {
    name: "struct-padding-not-zeroed",
    why: "struct padding keeps stale bytes: hash keys with padding never match again",
    file: "codec/codec.ts",
    from: "new Uint8Array(view.buffer, view.byteOffset + offset, size).fill(0); // padding is zero",
    to: "",
    tests: ["tests/codec.test.ts"],
  },
  {
    name: "be16-written-little-endian",
    why: "ports written in host order: a u16be key never matches what a program stored",
    file: "codec/codec.ts",
    from: "(v, o, x) => v.setUint16(o, x),",
    to: "(v, o, x) => v.setUint16(o, x, true),",
    tests: ["tests/codec.test.ts"],
  },
  {
    name: "cli-json-one-byte",
    why: "`bpfmap -j map dump` no longer byte for byte bpftool's output",
    file: "cli/json_writer.ts",
    from: `this.out.write("],\\"value\\":[");`,
    to: `this.out.write("], \\"value\\":[");`,
    tests: ["tests/cli.test.ts"],
    replay: true,
  },
  {
    name: "cli-json-pretty-colon",
    why: "`bpfmap -p` writes `name:value` where bpftool writes `name: value`",
    file: "cli/json_writer.ts",
    from: `(this.pretty ? ": " : ":")`,
    to: `(this.pretty ? ":" : ":")`,
    tests: ["tests/cli.test.ts"],
    replay: true,
  },
  {
    name: "replay-ignores-first-input-byte",
    why: "replay accepts a call whose input differs in byte 0: a replayed test can pass wrongly",
    file: "replay/diff.ts",
    from: "      if (want[side] === got[side]) continue;",
    to: `      const from1 = (text: string | undefined) =>
        text === undefined ? text : encodeBytes(decodeBytes(text).subarray(1));
      if (from1(want[side]) === from1(got[side])) continue;`,
    tests: ["tests/replay.test.ts"],
    replay: true,
  },
  {
    name: "replay-finish-misses-last-call",
    why: "replay passes a test that stopped one recorded call short",
    file: "replay/player.ts",
    from: "if (left > 0) {",
    to: "if (left > 1) {",
    tests: ["tests/replay.test.ts"],
    replay: true,
  },
  {
    name: "integer-range-unchecked",
    why: "encode(u32, 2 ** 32) wraps to 0: typed delete(2 ** 32) deletes key 0 and says true",
    file: "codec/codec.ts",
    from: "if (typeof x === \"number\" && Number.isInteger(x) && x >= min && x <= max) return x;",
    to: "if (typeof x === \"number\") return x;",
    tests: ["tests/codec_strict.test.ts"],
  },
  {
    name: "typed-drain-decodes-before-keeping",
    why: "a value codec that throws mid-drain loses the batch the kernel already removed",
    file: "codec/typed_map.ts",
    from: "        removed.push(batch); // first: a codec that throws below loses nothing\n",
    to: "",
    tests: ["tests/codec_strict.test.ts", "tests/typed_types.test.ts"],
  },
  {
    name: "cli-broken-pipe-is-an-error",
    why: "`bpfmap map dump ... | head -1` ends in an error and exit 1 instead of quietly",
    file: "cli/main.ts",
    from: "return error instanceof WriteError && error.fd === 1 && error.code === \"EPIPE\";",
    to: "return false;",
    tests: ["tests/cli_streams.test.ts"],
  },
  {
    name: "disasm-jmp32-as-jmp",
    why: "`prog dump xlated` shows a 32-bit comparison as a 64-bit one (w1 printed r1)",
    file: "ffi/insn.ts",
    from: "const r = cls === 6 ? \"w\" : \"r\";",
    to: "const r = \"r\";",
    tests: ["tests/cli_prog_dump.test.ts"],
    replay: true,
  },
  {
    name: "link-type-named-past-libbpf",
    why: "`link show` names a tcx link where bpftool 7.1 (libbpf 1.1) prints its number",
    file: "cli/link_command.ts",
    from: "return number < known && !name.startsWith(\"type \") ? name : number;",
    to: "return name.startsWith(\"type \") ? number : name;",
    tests: ["tests/cli_link.test.ts"],
  },
  {
    name: "link-iter-map-id-for-every-map-iterator",
    why:
      "`link show` prints map_id for iter/bpf_map, which bpftool 7.1 prints only for element iterators",
    file: "cli/link_command.ts",
    from: "const MAP_ITERATORS = [\"bpf_map_elem\", \"bpf_sk_storage_map\"];",
    to: "const MAP_ITERATORS = [\"bpf_map\", \"bpf_map_elem\", \"bpf_sk_storage_map\"];",
    tests: ["tests/cli_link.test.ts"],
  },
  {
    name: "loadall-map-pin-keeps-dots",
    why: "`prog loadall ... pinmaps` pins global data as loader.rodata, not libbpf's loader_rodata",
    file: "cli/prog_load.ts",
    from: ".replaceAll(\".\", \"_\")",
    to: "",
    tests: ["tests/cli_loadall.test.ts"],
  },
  {
    name: "btf-show-ids-in-hashmap-order",
    why:
      "`btf show` lists prog_ids/map_ids in insertion order, not bpftool's hashmap order (reversed as it grows)",
    file: "cli/btf_command.ts",
    from: "for (const entries of byBtf.values()) entries.reverse();",
    to: "",
    tests: ["tests/cli_btf.test.ts"],
  },
  {
    name: "core-bitfield-lshift-off-by-one",
    why: "a CO-RE bitfield read keeps one bit too many of the kernel's neighbouring field",
    file: "object/core.ts",
    from: "return result(64 - (bitOffset + bitSize - byteOffset * 8));",
    to: "return result(63 - (bitOffset + bitSize - byteOffset * 8));",
    tests: ["tests/core.test.ts"],
  },
  {
    name: "core-flavor-kept",
    why:
      "task_struct___mine is looked for as such in the kernel: no local layout of a kernel type resolves",
    file: "object/core.ts",
    from: "target.candidates(essentialName(root.name),",
    to: "target.candidates(root.name,",
    tests: ["tests/core.test.ts"],
  },
  {
    name: "core-missing-field-not-poisoned",
    why:
      "an access to a field the kernel lacks keeps the local offset: guarded code reads the wrong field",
    file: "object/core.ts",
    from: "if (after === POISONED) return { ...poisoned, expected: before.value, validate };",
    to:
      "if (after === POISONED) return { ...poisoned, poison: false, expected: before.value, value: before.value, validate };",
    tests: ["tests/core.test.ts"],
  },
  {
    name: "core-anonymous-members-skipped",
    why: "a field inside an anonymous union or struct of the kernel's type is never found",
    file: "object/core_spec.ts",
    from: "const found = matchMember(local, accessor, spec, member.type);",
    to: "const found = undefined;",
    tests: ["tests/core.test.ts"],
  },
  {
    name: "core-array-load-whole-size",
    why:
      "a CO-RE load from an array field is sized as the whole array: a kernel array of another length poisons it",
    file: "object/core.ts",
    from: `type.kind === "array"; type = typeAt(types, resolved)`,
    to: `false; type = typeAt(types, resolved)`,
    tests: ["tests/core.test.ts"],
  },
  {
    name: "kernel-btf-read-errors-skipped",
    why:
      "an unreadable /proc/modules or module BTF (EACCES, EIO) is skipped as missing: its types' relocations are silently poisoned",
    file: "btf/kernel_btf.ts",
    from: `if ((error as { code?: unknown }).code === "ENOENT") return undefined;`,
    to: "if (error) return undefined;",
    tests: ["tests/core.test.ts"],
  },
  {
    name: "memory-stride-unrounded",
    why:
      "map.memory() puts element i at i * valueSize: a 12-byte value's element 1 reads element 0's tail",
    file: "maps/memory.ts",
    from: "return (valueSize + 7) & ~7;",
    to: "return valueSize;",
    tests: ["tests/map_memory.test.ts"],
  },
  {
    name: "memory-frozen-mapped-writable",
    why:
      "a frozen map is mapped writable: the kernel refuses (EPERM) where a read-only mapping works",
    file: "maps/memory.ts",
    from: `&& kernel.backend.fdInfo(map.fd)["frozen"] !== "1";`,
    to: ";",
    tests: ["tests/map_memory.test.ts"],
  },
  {
    name: "memory-read-not-observed",
    why:
      "reads of map memory are not observed: a replay reads zeros where the program wrote values",
    file: "maps/memory.ts",
    from: "    this.#region.observe(offset, size);\n",
    to: "",
    tests: ["tests/map_memory.test.ts"],
    replay: true,
  },
  {
    name: "memory-read-only-option-ignored",
    why:
      "memory({ readOnly: true }) maps writable: a stray write changes a map its caller only reads",
    file: "maps/memory.ts",
    from: "const writable = options.readOnly !== true && (map.flags",
    to: "const writable = (map.flags",
    tests: ["tests/map_memory.test.ts"],
  },
  {
    name: "memory-write-not-reported",
    why: "writes to map memory are not reported: a recording misses them and its replay diverges",
    file: "maps/memory.ts",
    from: "    this.#region.wrote(offset, size);\n",
    to: "",
    tests: ["tests/map_memory.test.ts"],
    replay: true,
  },
  {
    name: "memory-read-only-write-allowed",
    why:
      "a write to read-only map memory is not refused: the process dies of SIGSEGV on the kernel's read-only pages",
    file: "maps/memory.ts",
    from: "if (!this.writable) {",
    to: "if (false) {",
    tests: ["tests/map_memory.test.ts"],
  },
  {
    name: "perf-wrap-second-part-dropped",
    why:
      "a sample that runs past the end of a CPU's ring keeps only its first part: its tail reads as the scratch's old bytes",
    file: "events/perf_buffer.ts",
    from: "      this.#scratch.set(ring.data.subarray(0, recordSize - first), first);\n",
    to: "",
    tests: ["tests/perf_buffer.test.ts"],
    replay: true,
  },
  {
    name: "perf-data-tail-not-stored",
    why:
      "the reader's data_tail never reaches the kernel: a CPU's ring fills once and every later sample is lost",
    file: "events/perf_buffer.ts",
    from: "    storeI32(ring.words, 2, low | 0);\n",
    to: "",
    tests: ["tests/perf_buffer.test.ts"],
    replay: true,
  },
  {
    name: "watch-replay-misses-interruption",
    why: "a recorded map watch ended by Ctrl-C never ends in replay: it waits past the recording",
    file: "cli/map_command.ts",
    from: "if (empty && timeoutMs < 0) stop.mark();",
    to: "",
    tests: ["tests/cli_watch.test.ts"],
    replay: true,
  },
  {
    name: "text-calls-without-relocation-ignored",
    why:
      "a call between .text functions that clang left unrelocated is not read: the callee is never appended and the kernel refuses the program",
    file: "object/programs.ts",
    from: "    unrelocatedCalls(bytes, section, symbol, own, text);\n",
    to: "",
    tests: ["tests/loader_calls.test.ts"],
    replay: true,
  },
  {
    name: "perf-link-cookie-cut-to-32-bits",
    why: "a BPF cookie loses its high 32 bits: bpf_get_attach_cookie reads another value",
    file: "programs/attach_perf_link.ts",
    from: "attr.setBigU64(bpf_cookie, cookie);",
    to: "attr.setBigU64(bpf_cookie, cookie & 0xffff_ffffn);",
    tests: ["tests/attach_perf.test.ts"],
  },
  {
    name: "tcx-relative-fd-dropped",
    why: "a tcx link asked to go before or after a program or link is placed at the chain's end",
    file: "programs/attach_tcx.ts",
    from: "attr.setU32(relative_fd, relativeFd);",
    to: "attr.setU32(relative_fd, 0);",
    tests: ["tests/attach_tcx.test.ts"],
  },
  {
    name: "recorder-without-private-copy",
    why:
      "a recording hands the code the live mapping: a producer writing after an observe leaves a transcript the code never acted on, and its replay diverges",
    file: "replay/recorder.ts",
    from: "    const copy = new Uint8Array(length);\n",
    to: "    const copy = live;\n",
    tests: ["tests/replay_observe.test.ts"],
    replay: true,
  },
  {
    name: "recorder-fdinfo-btf-id-raw",
    why:
      "a BTF fd's fdinfo btf_id is recorded as the kernel's id: the recording fails verify on the next run",
    file: "replay/recorder.ts",
    from: "key === \"btf_id\" ? String(this.#ids.idOut(Number(value), \"btf\")) : value;",
    to: "value;",
    tests: ["tests/btf_objects.test.ts"],
  },
  {
    name: "foreign-fd-value-kept-raw",
    why:
      "an fd bpfmap never got, stored in a prog_array, is written as its number: a replay storing a stray fd equal to a handle passes",
    file: "replay/normalize.ts",
    from: "input = mapU32s(bytes, (fd) => handleIn(ids, fd));",
    to:
      "input = mapU32s(bytes, (fd) => ids.handleOf(fd) === \"foreign\" ? fd : handleIn(ids, fd));",
    tests: ["tests/replay_ids.test.ts"],
    replay: true,
  },
  {
    name: "prog-array-ids-not-virtualized",
    why: "a prog_array lookup's program id is recorded as the kernel's: it differs next run",
    file: "replay/identities.ts",
    from: "holds === \"programs\" ? \"prog\" : undefined",
    to: "undefined",
    tests: ["tests/replay_ids.test.ts"],
    replay: true,
  },
  {
    name: "ring-discard-bit-ignored",
    why: "consume hands out records their programs discarded, as if they had been submitted",
    file: "events/ring_buffer.ts",
    from: "if ((header & discardBit) === 0) {",
    to: "if (header >= 0) {",
    tests: ["tests/ring_buffer.test.ts"],
  },
  {
    name: "ring-span-observe-skipped",
    why:
      "consume reads records it did not observe: a recording lacks them and its replay reads zeros",
    file: "events/ring_buffer.ts",
    from: "        producer.observe(pageSize + start, available);\n",
    to: "",
    tests: ["tests/ring_buffer.test.ts"],
    replay: true,
  },
  {
    name: "ring-wrap-stores-low-word",
    why:
      "the walk whose position passes 4 GiB stores its wrapped low word under the old high one: producers see a full ring",
    file: "events/ring_buffer.ts",
    from: "TWO_TO_32 - low > available ? consumerWords : NOWHERE",
    to: "consumerWords",
    tests: ["tests/ring_walk.test.ts"],
  },
  {
    name: "ring-position-write-unreported",
    why: "a ring's consumer position is stored but not reported: a recording misses the move",
    file: "events/ring_memory.ts",
    from: "  region.wrote(0, 8);\n",
    to: "",
    tests: ["tests/ring_buffer.test.ts"],
    replay: true,
  },
];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DENO = join(ROOT, "node_modules/.bin/deno");
/** No run of a test set should take this long; a hung mutant (an endless walk) counts as killed. */
const TIMEOUT_SECONDS = 600;

/** One test run: which pass, its environment and arguments. */
interface Pass {
  name: "verify" | "replay";
  env: Record<string, string>;
  args: string[];
}

const VERIFY: Pass = {
  name: "verify",
  env: { BPFMAP_TRANSCRIPT: "verify" },
  // --no-check: a mutant must be killed by a test, not by the type checker.
  args: [
    "test",
    "--no-check",
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--v8-flags=--expose-gc",
  ],
};
const REPLAY: Pass = {
  name: "replay",
  env: { BPFMAP_TRANSCRIPT: "replay" },
  args: ["test", "--no-check", "--allow-read", "--allow-write", "--allow-env", "--allow-run"],
};

type Outcome =
  | { kind: "passed" }
  | { kind: "failed"; failures: string[] }
  | { kind: "timeout" }
  | { kind: "crashed"; signal: string }
  | { kind: "broken"; detail: string };

/** Where `from` occurs in `text`, to check that it occurs exactly once. */
function occurrences(text: string, from: string): number {
  let count = 0;
  for (let at = text.indexOf(from); at !== -1; at = text.indexOf(from, at + 1)) count++;
  return count;
}

/** Every mutation checked against the working tree: the problems, one line each. */
function checkTable(mutations: Mutation[]): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const m of mutations) {
    if (names.has(m.name)) problems.push(`mutation ${m.name} is listed twice`);
    names.add(m.name);
    const path = join(ROOT, m.file);
    if (!existsSync(path)) {
      problems.push(`mutation ${m.name} no longer applies: ${m.file} does not exist`);
      continue;
    }
    const found = occurrences(readFileSync(path, "utf8"), m.from);
    if (found !== 1) {
      problems.push(
        `mutation ${m.name} no longer applies: the source changed (${m.file} holds its \`from\` ${found} times, not once)`,
      );
    }
    for (const test of m.tests) {
      if (!existsSync(join(ROOT, test))) {
        problems.push(`mutation ${m.name}: test file ${test} does not exist`);
      }
    }
  }
  return problems;
}

/** The files of the working tree git knows of (tracked, and new files not ignored). */
function workingTreeFiles(): string[] {
  const out = new TextDecoder().decode(
    new Deno.Command("git", {
      args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      cwd: ROOT,
      stdout: "piped",
    }).outputSync().stdout,
  );
  return [...new Set(out.split("\0").filter((path) => path !== ""))];
}

/** A fresh copy of the working tree (node_modules linked), with `mutation` applied if given. */
function copyTree(files: string[], mutation?: Mutation): string {
  const dir = mkdtempSync(join(tmpdir(), "bpfmap-mutant-"));
  for (const file of files) {
    const source = join(ROOT, file);
    // Deleted in the working tree but not yet in the index, or not a file (a linked node_modules).
    if (!existsSync(source) || !lstatSync(source).isFile()) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(source, join(dir, file));
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  if (mutation !== undefined) {
    const path = join(dir, mutation.file);
    writeFileSync(path, readFileSync(path, "utf8").replace(mutation.from, () => mutation.to));
  }
  return dir;
}

/** Runs one Deno pass over `tests` in `dir`; the output goes to `log`. */
function runPass(dir: string, pass: Pass, tests: string[], log: string): Promise<Outcome> {
  return new Promise((done) => {
    // A process group of its own, so that a timeout also ends the tests' children.
    const child = spawn(DENO, [...pass.args, ...tests], {
      cwd: dir,
      env: { ...Deno.env.toObject(), ...pass.env, NO_COLOR: "1" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    child.stdout!.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => chunks.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      Deno.kill(-child.pid!, "SIGKILL");
    }, TIMEOUT_SECONDS * 1000);
    child.on("close", (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("utf8");
      writeFileSync(log, text);
      if (timedOut) return done({ kind: "timeout" });
      // A memory fault ends the process before any summary: the mutant's own doing, as the
      // baseline passed (a load error or a failed assertion exits with a code instead).
      if (signal === "SIGSEGV" || signal === "SIGBUS") return done({ kind: "crashed", signal });
      if (code === 0) return done({ kind: "passed" });
      // "FAILED | 3 passed | 1 failed": tests ran and one failed. Anything else (a module
      // that does not load, another crash before the summary) is not a test killing the mutant.
      const summary = /^FAILED \| \d+ passed(?: \(\d+ steps?\))? \| (\d+) failed/m.exec(text);
      if (summary !== null && Number(summary[1]) > 0) {
        return done({ kind: "failed", failures: failedTests(text) });
      }
      const lastLines = text.trim().split("\n").slice(-3).join(" / ");
      done({ kind: "broken", detail: `exit ${code}: ${lastLines}` });
    });
  });
}

/** The failing tests, by file: Deno prints "running N tests from ./F", then "name ... FAILED". */
function failedTests(text: string): string[] {
  const failures: string[] = [];
  let file = "?";
  for (const line of text.split("\n")) {
    const running = /^running \d+ tests? from \.\/(\S+)/.exec(line);
    if (running?.[1] !== undefined) file = running[1];
    const failed = /^(\s*)(.+?) \.\.\. FAILED/.exec(line);
    // Top-level tests only: a failed step fails its test too.
    if (failed !== null && failed[1] === "") failures.push(`${file}: ${failed[2]}`);
    // A test module that threw while loading: the mutant broke it at import time.
    const uncaught = /^Uncaught error from \.\/(\S+) FAILED/.exec(line);
    if (uncaught !== null) failures.push(`${uncaught[1]}: uncaught error`);
  }
  return [...new Set(failures)];
}

/** The passes a mutation runs in. */
function passesOf(m: Mutation, full: boolean): Pass[] {
  return full || m.replay === true ? [VERIFY, REPLAY] : [VERIFY];
}

function testsOf(m: Mutation, full: boolean): string[] {
  return full ? ["tests/"] : m.tests;
}

function parseArgs(args: string[]): { only: string[]; full: boolean; list: boolean } {
  const only: string[] = [];
  let full = false;
  let list = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!; // i < args.length
    const next = args[i + 1];
    if (arg === "--full") full = true;
    else if (arg === "--list") list = true;
    else if (arg === "--only" && next !== undefined) {
      only.push(...next.split(","));
      i++;
    } else if (arg.startsWith("--only=")) only.push(...arg.slice("--only=".length).split(","));
    else {
      console.error(`mutants: unknown argument ${arg}`);
      console.error("usage: deno run -A scripts/mutants.ts [--only NAME]... [--full] [--list]");
      Deno.exit(2);
    }
  }
  return { only, full, list };
}

async function main(): Promise<number> {
  const { only, full, list } = parseArgs(Deno.args);
  const unknown = only.filter((name) => !MUTATIONS.some((m) => m.name === name));
  if (unknown.length > 0) {
    console.error(`mutants: no mutation named ${unknown.join(", ")} (see --list)`);
    return 2;
  }
  const chosen = only.length === 0 ? MUTATIONS : MUTATIONS.filter((m) => only.includes(m.name));
  // The whole table is checked every time, so that it stays honest as the code moves.
  const problems = checkTable(MUTATIONS);
  if (list) {
    for (const m of chosen) {
      const passes = passesOf(m, full).map((p) => p.name).join("+");
      console.log(
        `${m.name.padEnd(36)} ${m.file.padEnd(20)} ${passes.padEnd(14)} ${m.tests.join(" ")}`,
      );
      console.log(`${"".padEnd(36)} ${m.why}`);
    }
  }
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    return 2;
  }
  if (list) return 0;

  const files = workingTreeFiles();
  let killed = 0;
  const survived: Mutation[] = [];
  const unjudged: Mutation[] = [];

  // Baselines: each test set must pass unmutated, or its failures would count as kills
  // (another process holding a test's bpffs mount, a test broken by work in progress).
  const baselines = new Map<string, Outcome>();
  const baselineDir = copyTree(files);
  try {
    for (const m of chosen) {
      for (const pass of passesOf(m, full)) {
        const key = `${pass.name} ${testsOf(m, full).join(" ")}`;
        if (baselines.has(key)) continue;
        const started = performance.now();
        const outcome = await runPass(
          baselineDir,
          pass,
          testsOf(m, full),
          join(baselineDir, "log"),
        );
        baselines.set(key, outcome);
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        console.log(`baseline ${outcome.kind.padEnd(8)} ${key} ${seconds}s`);
        if (outcome.kind === "failed") {
          for (const failure of outcome.failures) console.log(`         failing: ${failure}`);
        }
      }
    }
  } finally {
    rmSync(baselineDir, { recursive: true, force: true });
  }

  for (const m of chosen) {
    const started = performance.now();
    const dir = copyTree(files, m);
    let verdict = "SURVIVED";
    let detail = "";
    try {
      for (const pass of passesOf(m, full)) {
        const key = `${pass.name} ${testsOf(m, full).join(" ")}`;
        if (baselines.get(key)?.kind !== "passed") {
          verdict = "UNJUDGED";
          detail = `the unmutated tree fails ${key}`;
          break;
        }
        const outcome = await runPass(dir, pass, testsOf(m, full), join(dir, `${pass.name}.log`));
        if (outcome.kind === "passed") continue;
        if (outcome.kind === "broken") {
          verdict = "UNJUDGED";
          detail = `${pass.name}: the tests did not run: ${outcome.detail.slice(0, 200)}`;
          break;
        }
        verdict = "killed";
        detail = outcome.kind === "timeout"
          ? `${pass.name}: timed out after ${TIMEOUT_SECONDS}s`
          : outcome.kind === "crashed"
          ? `${pass.name}: the tests died of ${outcome.signal}`
          : `${pass.name}: ${outcome.failures.slice(0, 2).join("; ")}${
            outcome.failures.length > 2 ? ` (+${outcome.failures.length - 2} more)` : ""
          }`;
        break;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (verdict === "killed") killed++;
    else if (verdict === "SURVIVED") survived.push(m);
    else unjudged.push(m);
    if (verdict === "SURVIVED") detail = `${testsOf(m, full).join(" ")} should kill it: ${m.why}`;
    console.log(`${verdict.padEnd(8)} ${m.name.padEnd(36)} ${seconds.padStart(6)}s  ${detail}`);
  }

  const notJudged = unjudged.length > 0 ? `, ${unjudged.length} not judged` : "";
  console.log(`mutants: ${killed} killed, ${survived.length} survived${notJudged}`);
  return survived.length > 0 || unjudged.length > 0 ? 1 : 0;
}

Deno.exit(await main());
