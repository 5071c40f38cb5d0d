/**
 * `bpfmap map ...`: bpftool's map commands on bpfmap's systems, with dumps
 * made of lookup batches.
 *
 * @module
 */

import process from "node:process";
import { isatty } from "node:tty";
import { PerfBuffer, type PerfRecord } from "../events/perf_buffer.ts";
import { RingBuffer, type RingRecord } from "../events/ring_buffer.ts";
import { forwardingBackend, primitivesOf } from "../ffi/backend.ts";
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST } from "../ffi/commands.ts";
import type { EpollResult } from "../ffi/epoll.ts";
import { EINTR, ENOENT, errnoDescription } from "../ffi/errno.ts";
import { BpfError } from "../ffi/errors.ts";
import { Kernel } from "../ffi/kernel.ts";
import { isPerCpu, MAP_TYPES, mapType, mapTypeNumber } from "../ffi/map_types.ts";
import { joinPerCpu } from "../ffi/percpu.ts";
import { type BpfMap, findMapsByName } from "../maps/bpf_map.ts";
import { walkBatches } from "../maps/walk.ts";
import type { BpfSystem } from "../replay/system.ts";
import {
  AnsweredFailure,
  Args,
  CommandError,
  isPrefix,
  type MapRef,
  parseUnsigned,
  takeBytes,
  takeMapRef,
  UsageError,
} from "./args.ts";
import { BtfFormatter } from "./btf_format.ts";
import {
  errorEntry,
  jsonEntry,
  jsonHeader,
  type MapShape,
  plainEntry,
  plainHeader,
  shapeOf,
  showMap,
} from "./format.ts";
import { JsonWriter } from "./json_writer.ts";
import type { Output } from "./output.ts";

/** What every map command works with. */
export interface CliContext {
  system: BpfSystem;
  out: Output;
  err: Output;
  /** Set with `-j`/`-p`. */
  json?: JsonWriter | undefined;
  /** Elements per lookup batch of a dump. */
  batchSize: number;
  /**
   * Set by a command that ends every line it prints itself (`map watch -j`:
   * JSON lines, each complete when flushed): nothing is added at the end.
   */
  linesEnded?: boolean;
}

/**
 * The usage text of `bpfmap map`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAP_USAGE } from "./map_command.ts";
 * assert.match(MAP_USAGE, /^Usage: bpfmap \[OPTIONS\] map \{ show \| list \}/);
 * assert.match(MAP_USAGE, /MAP := \{ id MAP_ID \| pinned FILE \| name MAP_NAME \}/);
 * ```
 */
export const MAP_USAGE = `Usage: bpfmap [OPTIONS] map { show | list }   [MAP]
       bpfmap [OPTIONS] map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \\
                                  entries MAX_ENTRIES name NAME [flags FLAGS] [inner_map MAP]
       bpfmap [OPTIONS] map dump       MAP [--batch N]
       bpfmap [OPTIONS] map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       bpfmap [OPTIONS] map lookup     MAP [key DATA]
       bpfmap [OPTIONS] map getnext    MAP [key DATA]
       bpfmap [OPTIONS] map delete     MAP  key DATA
       bpfmap [OPTIONS] map pin        MAP  FILE
       bpfmap [OPTIONS] map freeze     MAP
       bpfmap [OPTIONS] map watch      MAP [count N]
       bpfmap [OPTIONS] map help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       DATA := { [hex] BYTES }
       VALUE := { DATA | MAP (map-in-map values) }
       UPDATE_FLAGS := { any | exist | noexist }
       OPTIONS := { -j | --json } [{ -p | --pretty }] | --batch N | --record FILE | --replay FILE
                  | --path NAME=DIR

       watch (not in bpftool): prints a ringbuf's or perf_event_array's records as they come,
         as hex (with -j: one JSON object per line), until interrupted or N records are printed

       --path NAME=DIR: with --record or --replay, paths under DIR (a folder of this run's
         own, e.g. a fresh bpffs) are recorded as \${NAME}/..., and \${NAME} replays as DIR
`;

/**
 * Runs `map SUBCOMMAND ...`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
 * import { Output } from "./output.ts";
 * import { BpfMap, openSystem } from "../mod.ts";
 * import { Args } from "./args.ts";
 * import { JsonWriter } from "./json_writer.ts";
 * import { MAP_USAGE, runMapCommand } from "./map_command.ts";
 *
 * await using system = await openSystem({ mode: "live" });
 * using map = system.createMap({ type: "hash", keySize: 4, valueSize: 1, maxEntries: 16 });
 * map.update(new Uint8Array([1, 0, 0, 0]), new Uint8Array([9]));
 * const dir = mkdtempSync("/tmp/bpfmap-doc-");
 * const out = new Output(openSync(`${dir}/out`, "w"));
 * const json = new JsonWriter(out, false);
 * const ctx = { system, out, err: out, batchSize: 8192 };
 * await runMapCommand({ ...ctx, json }, new Args(["dump", "id", `${map.id}`]));
 * json.finish();
 * await assert.rejects(runMapCommand(ctx, new Args(["frob"])), {
 *   name: "UsageError",
 *   message: `unknown map command 'frob'\n\n${MAP_USAGE}`,
 * });
 * out.flush();
 * closeSync(out.fd);
 * assert.equal(
 *   readFileSync(`${dir}/out`, "utf8"),
 *   '[{"key":["0x01","0x00","0x00","0x00"],"value":["0x09"]}]\n',
 * );
 * rmSync(dir, { recursive: true });
 * ```
 */
export async function runMapCommand(ctx: CliContext, args: Args): Promise<void> {
  const command = args.take("a map command (show, dump, lookup, update, ...)");
  const table: [string, (ctx: CliContext, args: Args) => void | Promise<void>][] = [
    ["show", show],
    ["list", show],
    ["dump", dump],
    ["lookup", lookup],
    ["update", update],
    ["delete", remove],
    ["getnext", getNext],
    ["create", create],
    ["pin", pin],
    ["freeze", freeze],
    ["watch", watch],
    ["help", help],
  ];
  const found = table.find(([name]) => isPrefix(command, name));
  if (found === undefined) throw new UsageError(`unknown map command '${command}'\n\n${MAP_USAGE}`);
  await found[1](ctx, args);
}

function help(ctx: CliContext, args: Args): void {
  args.end();
  if (ctx.json) ctx.json.raw("null");
  else ctx.out.write(MAP_USAGE);
}

/** Opens the maps a MAP names: one for `id` and `pinned`, every match for `name`. */
function openMaps(ctx: CliContext, ref: MapRef, many: boolean): BpfMap[] {
  try {
    if (ref.kind === "id") return [ctx.system.mapFromId(ref.id)];
    if (ref.kind === "pinned") return [ctx.system.openPinned(ref.path)];
  } catch (error) {
    if (error instanceof BpfError && error.code === "ENOENT") {
      throw new CommandError(
        ref.kind === "id"
          ? `id ${ref.id}: no such map`
          : `pinned ${(ref as { path: string }).path}: no such pinned object`,
      );
    }
    throw error;
  }
  const maps = findMapsByName(ref.name, ctx.system.kernel);
  if (maps.length === 0) throw new CommandError(`name ${ref.name}: no such map`);
  if (maps.length > 1 && !many) {
    for (const map of maps) map.close();
    throw new CommandError(
      `name ${ref.name}: ${maps.length} maps have this name; use id or pinned`,
    );
  }
  return maps;
}

function openOne(ctx: CliContext, args: Args): BpfMap {
  // Not many: openMaps gives exactly one map or throws.
  return openMaps(ctx, takeMapRef(args), false)[0]!;
}

function show(ctx: CliContext, args: Args): void {
  const { out, json } = ctx;
  if (args.left === 0) {
    json?.startArray();
    for (const id of ctx.system.listMapIds()) {
      let map: BpfMap;
      try {
        map = ctx.system.mapFromId(id);
      } catch (error) {
        if (error instanceof BpfError && error.code === "ENOENT") continue;
        throw error;
      }
      showMap(out, json, map);
      map.close();
    }
    json?.endArray();
    return;
  }
  const maps = openMaps(ctx, takeMapRef(args), true);
  args.end();
  if (json && maps.length > 1) json.startArray();
  for (const map of maps) {
    showMap(out, json, map);
    map.close();
  }
  if (json && maps.length > 1) json.endArray();
}

function dump(ctx: CliContext, args: Args): void {
  const maps = openMaps(ctx, takeMapRef(args), true);
  args.end();
  const { out } = ctx;
  // Like bpftool: when every map has BTF, a plain dump is pretty JSON of formatted values.
  const plainBtf = !ctx.json && maps.every((map) => map.btfIds.btfId !== 0);
  const json = ctx.json ?? (plainBtf ? new JsonWriter(out, true) : undefined);
  const many = maps.length > 1;
  if (json && many) json.startArray();
  // bpftool's walk fails at its first step on a ring (BPF_MAP_GET_NEXT_KEY: ENOTSUPP): it
  // stops there, the maps after it left out, and exits with that failure (244, its -524 cut
  // to a byte): a failure, in bpfmap's exit codes.
  let unwalkable: BpfMap | undefined;
  for (const [i, map] of maps.entries()) {
    if (unwalkable === undefined) {
      dumpMap({ ...ctx, json }, map, many, plainBtf);
      if (!json && many && i !== maps.length - 1) out.write("\n");
      noteStream(ctx, map);
      if (RECORD_STREAMS.has(map.type)) unwalkable = map;
    }
    map.close();
  }
  if (json && many) json.endArray();
  if (plainBtf) json!.finish();
  if (unwalkable !== undefined) {
    throw new AnsweredFailure(`map ${unwalkable.id} is a ${unwalkable.typeName}: no elements`);
  }
}

/** Map types whose data are records, which no key walk reaches. */
const RECORD_STREAMS: ReadonlySet<number> = new Set([MAP_TYPES.ringbuf, MAP_TYPES.user_ringbuf]);

/**
 * Prints elements of a map with BTF through it (bpftool's `get_map_kv_btf`:
 * only for a BTF value type), else as hex.
 */
function formatterOf(ctx: CliContext, map: BpfMap, plainText: boolean): BtfFormatter | undefined {
  // A struct_ops map's value type is in the kernel's own BTF, which bpfmap does not read: hex.
  if (map.btfIds.valueTypeId === 0 || map.btfIds.vmlinuxValueTypeId !== 0) return undefined;
  using btf = map.btf()!;
  return new BtfFormatter(btf.types, map, ctx.system.possibleCpus(), plainText);
}

/** One element, as bpftool prints it in a dump or a lookup. */
function printEntry(
  ctx: CliContext,
  shape: MapShape,
  formatter: BtfFormatter | undefined,
  plainBtf: boolean,
  keys: Uint8Array,
  keyAt: number,
  values: Uint8Array,
  valueAt: number,
): void {
  const { json, out } = ctx;
  if (json && plainBtf && formatter) formatter.entry(json, keys, keyAt, values, valueAt);
  else if (json && !plainBtf) jsonEntry(json, shape, keys, keyAt, values, valueAt, formatter);
  else plainEntry(out, shape, keys, keyAt, values, valueAt);
}

/**
 * Dumps one map by the library's walk: lookup batches where the kernel has them for the type,
 * else nextKey + lookup, printing an error line for a key whose lookup fails, as bpftool does.
 */
function dumpMap(ctx: CliContext, map: BpfMap, withHeader: boolean, plainBtf: boolean): void {
  const { json, out } = ctx;
  const shape = shapeOf(map, ctx.system.possibleCpus());
  const formatter = json ? formatterOf(ctx, map, plainBtf) : undefined;
  if (json) {
    if (withHeader) {
      json.startObject();
      jsonHeader(json, map);
      json.name("elements");
    }
    json.startArray();
  } else if (withHeader) {
    out.write(plainHeader(map));
  }
  const progress = new Progress(ctx.err);
  let found = 0;
  // A map without keys (queue, stack, bloom filter) has nothing to walk: bpftool prints none.
  const batches = map.keySize === 0 ? [] : walkBatches(map, {
    batchSize: ctx.batchSize,
    reuse: true,
    // Where the walk goes key by key, bpftool's error line for a key it cannot read.
    onLookupError: (key, errno) => errorEntry(out, plainBtf ? undefined : json, shape, key, errno),
  });
  for (const { count, keys, values } of batches) {
    for (let i = 0; i < count; i++) {
      printEntry(
        ctx,
        shape,
        formatter,
        plainBtf,
        keys,
        i * map.keySize,
        values,
        i * map.valueStride,
      );
    }
    found += count;
    progress.update(found);
  }
  progress.done();
  if (json) {
    json.endArray();
    if (withHeader) json.endObject();
  } else {
    out.write(`Found ${found} element${found !== 1 ? "s" : ""}\n`);
  }
}

function takeKey(args: Args, map: BpfMap): Uint8Array {
  const word = args.take("'key'");
  if (!isPrefix(word, "key")) throw new UsageError(`expected 'key', got: '${word}'`);
  return takeBytes(args, map.keySize, "key");
}

function lookup(ctx: CliContext, args: Args): void {
  using map = openOne(ctx, args);
  const key = map.keySize > 0 ? takeKey(args, map) : new Uint8Array(0);
  args.end();
  const value = map.keySize > 0 ? map.lookup(key) : map.peek();
  if (value === undefined) {
    if (ctx.json) ctx.json.raw("null");
    else {
      ctx.out.write("key:\n");
      ctx.out.plainHex(key, 0, key.byteLength);
      ctx.out.write("\n\nNot found\n");
    }
    throw new AnsweredFailure("key not found");
  }
  printElement(ctx, map, key, value);
}

function printElement(ctx: CliContext, map: BpfMap, key: Uint8Array, value: Uint8Array): void {
  const shape = shapeOf(map, ctx.system.possibleCpus());
  const formatter = formatterOf(ctx, map, !ctx.json);
  if (ctx.json || formatter === undefined) {
    printEntry(ctx, shape, formatter, false, key, 0, value, 0);
    return;
  }
  // bpftool prints a BTF map's element as pretty JSON of its own.
  const json = new JsonWriter(ctx.out, true);
  formatter.entry(json, key, 0, value, 0);
  json.finish();
}

function update(ctx: CliContext, args: Args): void {
  using map = openOne(ctx, args);
  let key: Uint8Array | undefined = map.keySize === 0 ? new Uint8Array(0) : undefined;
  let value: Uint8Array | undefined;
  let flags: number | undefined;
  let inner: BpfMap | undefined;
  try {
    while (args.left > 0) {
      const word = args.take("key, value or a flag");
      if (isPrefix(word, "key") && key === undefined) {
        key = takeBytes(args, map.keySize, "key");
      } else if (isPrefix(word, "value") && value === undefined) {
        if (mapType(map.type).holds === "maps") {
          inner = openOne(ctx, args);
          value = new Uint8Array(new Uint32Array([inner.fd]).buffer);
        } else {
          value = perCpuValue(
            map,
            takeBytes(args, map.valueSize, "value"),
            ctx.system.possibleCpus(),
          );
        }
      } else if (
        flags === undefined && ["any", "noexist", "exist"].some((f) => isPrefix(word, f))
      ) {
        flags = isPrefix(word, "any")
          ? BPF_ANY
          : isPrefix(word, "noexist")
          ? BPF_NOEXIST
          : BPF_EXIST;
      } else {
        throw new UsageError(
          `unexpected argument: '${word}' (expected key, value, any, noexist or exist)`,
        );
      }
    }
    if (key === undefined) throw new UsageError("did not find key");
    if (value === undefined) throw new UsageError("did not find value");
    if (map.keySize === 0) map.push(value, flags ?? BPF_ANY);
    else map.update(key, value, flags ?? BPF_ANY);
  } finally {
    inner?.close();
  }
  ctx.json?.raw("null");
}

/** A per-CPU map's value from one CPU's bytes, copied to every CPU, as bpftool does. */
function perCpuValue(map: BpfMap, bytes: Uint8Array, cpus: number): Uint8Array {
  return isPerCpu(map.type) ? joinPerCpu(new Array(cpus).fill(bytes), map.valueSize) : bytes;
}

function remove(ctx: CliContext, args: Args): void {
  using map = openOne(ctx, args);
  const key = takeKey(args, map);
  args.end();
  if (!map.delete(key)) throw new CommandError(`delete failed: ${errnoDescription(ENOENT)}`);
  ctx.json?.raw("null");
}

function getNext(ctx: CliContext, args: Args): void {
  using map = openOne(ctx, args);
  const key = args.left > 0 ? takeKey(args, map) : undefined;
  args.end();
  const next = map.nextKey(key);
  if (next === undefined) throw new CommandError(`can't get next key: ${errnoDescription(ENOENT)}`);
  const { json, out } = ctx;
  if (json) {
    json.startObject();
    if (key) {
      json.name("key");
      json.hexArray(key, 0, key.byteLength);
    } else {
      json.rawField("key", "null");
    }
    json.name("next_key");
    json.hexArray(next, 0, next.byteLength);
    json.endObject();
  } else {
    if (key) {
      out.write("key:\n");
      out.plainHex(key, 0, key.byteLength);
      out.write("\n");
    } else {
      out.write("key: None\n");
    }
    out.write("next key:\n");
    out.plainHex(next, 0, next.byteLength);
    out.write("\n");
  }
}

function create(ctx: CliContext, args: Args): void {
  const path = args.take("FILE to pin the new map at");
  let type: number | undefined;
  let keySize = 0;
  let valueSize = 0;
  let maxEntries = 0;
  let flags = 0;
  let name: string | undefined;
  let inner: BpfMap | undefined;
  try {
    while (args.left > 0) {
      const word = args.take("an attribute");
      if (isPrefix(word, "type")) type = mapTypeNumber(args.take("TYPE"), "type");
      else if (isPrefix(word, "key")) keySize = parseUnsigned(args.take("KEY_SIZE"), "key size");
      else if (isPrefix(word, "value")) {
        valueSize = parseUnsigned(args.take("VALUE_SIZE"), "value size");
      } else if (isPrefix(word, "entries")) {
        maxEntries = parseUnsigned(args.take("MAX_ENTRIES"), "max entries");
      } else if (isPrefix(word, "name")) name = args.take("NAME");
      else if (isPrefix(word, "flags")) flags = parseUnsigned(args.take("FLAGS"), "flags");
      else if (isPrefix(word, "inner_map")) inner = openOne(ctx, args);
      else throw new UsageError(`unknown arg ${word}`);
    }
    if (type === undefined) throw new UsageError("map type not specified");
    if (name === undefined) throw new UsageError("map name not specified");
    using map = ctx.system.createMap({
      type,
      keySize,
      valueSize,
      maxEntries,
      flags,
      name,
      // MapSpec has no room for an explicit undefined.
      ...(inner === undefined ? {} : { innerMap: inner }),
    });
    map.pin(path);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw new UsageError(error.message);
    }
    throw error;
  } finally {
    inner?.close();
  }
  ctx.json?.raw("null");
}

function pin(ctx: CliContext, args: Args): void {
  using map = openOne(ctx, args);
  const path = args.take("FILE");
  args.end();
  map.pin(path);
  ctx.json?.raw("null");
}

function freeze(ctx: CliContext, args: Args): void {
  using map = openOne(ctx, args);
  args.end();
  map.freeze();
  ctx.json?.raw("null");
}

/**
 * After a dump of a map whose data are records, not elements: a note on
 * stderr (stdout stays what bpftool prints, for scripts that compare it)
 * that names the type and says how to read them.
 */
function noteStream(ctx: CliContext, map: BpfMap): void {
  if (map.type === MAP_TYPES.ringbuf || map.type === MAP_TYPES.perf_event_array) {
    ctx.err.write(
      `Note: map ${map.id} is a ${map.typeName}: its records are not elements, and a dump `
        + `finds none; print them as they come with: bpfmap map watch id ${map.id}\n`,
    );
  } else if (map.type === MAP_TYPES.user_ringbuf) {
    ctx.err.write(
      `Note: map ${map.id} is a user_ringbuf: user space writes its records and programs `
        + `read them (bpfmap map watch reads ringbuf and perf_event_array maps)\n`,
    );
  }
}

/**
 * `map watch MAP [count N]` (not in bpftool): a ringbuf's records (read as
 * RingBuffer reads them) or a perf_event_array's samples (PerfBuffer: one
 * perf event per online CPU, its fd put in the map's slot) printed as they
 * come, as hex, or one JSON object per line with `-j`, flushed after each
 * wake-up, until N records are printed or SIGINT or SIGTERM comes.
 *
 * It waits without blocking the event loop, for ever each time, so a signal
 * is handled at once: what was printed is flushed, the reader closed, a
 * `--record`ing written, and the command exits 0, as `bpftool map
 * event_pipe` does on Ctrl-C. The wait the signal cut short is recorded as
 * a wait for ever that found nothing, which no live wait returns: its
 * replay ends there too, with no signal.
 */
async function watch(ctx: CliContext, args: Args): Promise<void> {
  using map = openOne(ctx, args);
  let count = Infinity;
  if (args.left > 0) {
    const word = args.take("'count'");
    if (!isPrefix(word, "count")) throw new UsageError(`expected 'count', got: '${word}'`);
    count = parseUnsigned(args.take("a number after 'count'"), "count");
    if (count === 0) throw new UsageError("count must be at least 1");
  }
  args.end();
  if (map.type !== MAP_TYPES.ringbuf && map.type !== MAP_TYPES.perf_event_array) {
    throw new CommandError(
      `map ${map.id} (${map.typeName}) has no records to watch: watch reads ringbuf and `
        + `perf_event_array maps`
        + (map.type === MAP_TYPES.user_ringbuf ? " (a user_ringbuf's are read by programs)" : ""),
    );
  }
  using stop = new Interruption();
  const kernel = interruptible(ctx.system.kernel, stop);
  const printer = new RecordPrinter(ctx, count);
  ctx.linesEnded = true;
  if (map.type === MAP_TYPES.ringbuf) {
    using ring = new RingBuffer(map, kernel);
    const onRecord = (record: RingRecord) => printer.record(record, undefined);
    await printer.watch(stop, () => ring.pollAsync(-1, onRecord));
  } else {
    const onLost = (cpu: number, lost: number) => printer.lost(cpu, lost);
    using perf = new PerfBuffer(map, { kernel, onLost });
    const onRecord = (record: PerfRecord) => printer.record(record, record.cpu);
    await printer.watch(stop, () => perf.pollAsync(-1, onRecord));
  }
}

/** The signals that end a watch, as they end `bpftool map event_pipe`. */
const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** SIGINT or SIGTERM, caught while a watch runs (`using`: let go after it). */
class Interruption implements Disposable {
  /** Answers `-EINTR` once a signal comes: what the wait it cuts short returns. */
  readonly signalled: Promise<number>;
  #interrupted = false;
  readonly #onSignal: () => void;

  constructor() {
    let resolve!: (errno: number) => void;
    this.signalled = new Promise((r) => (resolve = r));
    this.#onSignal = () => {
      this.#interrupted = true;
      resolve(-EINTR);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, this.#onSignal);
  }

  /** Whether the watch is to end: a signal came, or a wait found it had come. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** A wait ended as only an interrupted one does. */
  mark(): void {
    this.#interrupted = true;
  }

  [Symbol.dispose](): void {
    for (const signal of STOP_SIGNALS) process.off(signal, this.#onSignal);
  }
}

/**
 * `kernel`, but an async wait ends with `-EINTR` as soon as `stop` has a
 * signal: the ring then closes as after any wait, and the recording's wait
 * stays as it was asked, unanswered (`ready: []`). A wait for ever that ends
 * with no fd marks `stop`: a signal on the waiting thread (EINTR), or a
 * replay reaching the wait the recording's signal cut short.
 */
function interruptible(kernel: Kernel, stop: Interruption): Kernel {
  const backend = kernel.backend;
  const waits = Object.assign(forwardingBackend(() => backend), {
    epollWaitAsync: async (epfd: number, maxEvents: number, timeoutMs: number) => {
      const result: EpollResult = stop.interrupted ? -EINTR : await Promise.race([
        primitivesOf(backend).epollWaitAsync(epfd, maxEvents, timeoutMs),
        stop.signalled,
      ]);
      const empty = typeof result === "number" ? result === -EINTR : result.length === 0;
      if (empty && timeoutMs < 0) stop.mark();
      return result;
    },
  });
  return new Kernel(waits, { closesLeakedFds: false });
}

/** Prints the records of `map watch`: numbered from 1, hex or JSON lines. */
class RecordPrinter {
  readonly #ctx: CliContext;
  readonly #count: number;
  #printed = 0;

  constructor(ctx: CliContext, count: number) {
    this.#ctx = ctx;
    this.#count = count;
  }

  get done(): boolean {
    return this.#printed >= this.#count;
  }

  /** Prints one record; `false` (stop) once `count` are printed. */
  record(record: RingRecord | PerfRecord, cpu: number | undefined): boolean {
    const { out, json } = this.#ctx;
    const number = ++this.#printed;
    const { data, offset, length } = record;
    if (json) {
      out.write(
        `{"record":${number},${cpu === undefined ? "" : `"cpu":${cpu},`}"size":${length},"data":[`,
      );
      out.jsonHex(data, offset, offset + length);
      // Each line ends here, so each is whole when flushed (ctx.linesEnded).
      out.write("]}\n");
    } else {
      out.write(`record ${number}: ${cpu === undefined ? "" : `cpu ${cpu}, `}${length} bytes\n`);
      if (length > 0) {
        out.plainHex(data, offset, offset + length);
        out.write("\n");
      }
    }
    return !this.done;
  }

  /** A CPU's count of samples its ring had no room for. */
  lost(cpu: number, lost: number): void {
    const { out, json } = this.#ctx;
    out.write(json ? `{"lost":${lost},"cpu":${cpu}}\n` : `lost ${lost} samples on cpu ${cpu}\n`);
  }

  /**
   * Waits (`wait`: one wake-up, its records printed) until `count` are
   * printed or `stop` comes; what a wake-up printed reaches the reader at
   * once, not at exit.
   */
  async watch(stop: Interruption, wait: () => Promise<number>): Promise<void> {
    while (!this.done && !stop.interrupted) {
      await wait();
      this.#ctx.out.flush();
    }
  }
}

/** A progress line on stderr, for dumps that run longer than a second on a terminal. */
class Progress {
  readonly #err: Output;
  readonly #enabled: boolean;
  readonly #started = performance.now();
  #shown = false;

  constructor(err: Output) {
    this.#err = err;
    this.#enabled = isatty(err.fd);
  }

  update(elements: number): void {
    if (!this.#enabled || performance.now() - this.#started < 1000) return;
    this.#err.write(`\rdumped ${elements} elements…`);
    this.#err.flush();
    this.#shown = true;
  }

  done(): void {
    if (!this.#shown) return;
    this.#err.write("\r\x1b[K");
    this.#err.flush();
  }
}
