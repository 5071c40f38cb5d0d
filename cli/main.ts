#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-write
/**
 * `bpfmap`: bpftool's map commands, batch-powered, `prog show|list|dump xlated|load|loadall`,
 * `link show|list` and `btf show|list`, with record and replay.
 *
 *   deno run --allow-ffi cli/main.ts map list
 *   bun cli/main.ts -j map dump pinned /sys/fs/bpf/my_map
 *   bpfmap --replay dump.json -j map dump id 12      (no BPF needed)
 *   bpfmap --path BPFFS=/tmp/run1 --record t.json map dump pinned /tmp/run1/m
 *   bpfmap --path BPFFS=/tmp/run2 --replay t.json map dump pinned /tmp/run2/m
 *
 * Exit codes: 0 ok (also when the reader of stdout went away: `| head`, and
 * when SIGINT or SIGTERM ends a `map watch`), 1 the operation failed, 2 bad
 * usage; they follow the error's class (see {@linkcode UsageError}).
 *
 * @module
 */

import { closeSync, openSync, statSync, unlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { BpfError } from "../ffi/errors.ts";
import { openLiveBackend } from "../ffi/live.ts";
import type { BpfMap } from "../maps/bpf_map.ts";
import {
  BPF_FS_TYPE,
  CAP_BPF,
  CAP_DAC_OVERRIDE,
  CAP_SYS_ADMIN,
  effectiveCapabilities,
  fileSystemOf,
  FROZEN_HINT,
  hasCapability,
  NO_CAP_BPF_HINT,
  NOT_BPFFS_HINT,
} from "../maps/hints.ts";
import { checkPaths } from "../replay/identities.ts";
import { type BpfSystem, openSystem } from "../replay/system.ts";
import {
  AnsweredFailure,
  Args,
  CommandError,
  isPrefix,
  type MapRef,
  parseUnsigned,
  takeMapRef,
  UsageError,
} from "./args.ts";
import { runBtfCommand } from "./btf_command.ts";
import { JsonWriter } from "./json_writer.ts";
import { runLinkCommand } from "./link_command.ts";
import { type CliContext, MAP_USAGE, runMapCommand } from "./map_command.ts";
import { Output, systemErrorWords, WriteError } from "./output.ts";
import { runProgCommand } from "./prog_command.ts";

/** Lookup batch size of `map dump` unless `--batch` says otherwise (measured best; see README). */
export const DEFAULT_DUMP_BATCH = 8192;

/** The package's version (package.json). */
const VERSION = "0.1.0";

/** Global options, taken from anywhere on the command line as getopt permutes them. */
interface Options {
  json: boolean;
  pretty: boolean;
  batch: number;
  record?: string;
  replay?: string;
  /** `--path NAME=DIR`: per-run folders, written in transcripts as `${NAME}`. */
  paths: Record<string, string>;
  help: boolean;
  version: boolean;
}

function takeOptions(argv: string[]): { options: Options; words: string[] } {
  const options: Options = {
    json: false,
    pretty: false,
    batch: DEFAULT_DUMP_BATCH,
    paths: {},
    help: false,
    version: false,
  };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!; // i < argv.length
    const value = (name: string) => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${name} needs a value`);
      return next;
    };
    if (word === "-j" || word === "--json") options.json = true;
    else if (word === "-p" || word === "--pretty") options.json = options.pretty = true;
    else if (word === "-jp" || word === "-pj") options.json = options.pretty = true;
    else if (word === "--batch") options.batch = parseUnsigned(value(word), "--batch");
    else if (word === "--record") options.record = value(word);
    else if (word === "--replay") options.replay = value(word);
    else if (word === "--path") takePath(options.paths, value(word));
    else if (word === "-h" || word === "--help") options.help = true;
    else if (word === "-V" || word === "--version") options.version = true;
    else if (word.startsWith("-") && !/^-\d/.test(word)) {
      throw new UsageError(`unknown option ${word}`);
    } else words.push(word);
  }
  if (options.batch < 1) throw new UsageError("--batch must be at least 1");
  if (options.record && options.replay) {
    throw new UsageError("--record and --replay exclude each other");
  }
  return { options, words };
}

/** Takes one `--path NAME=DIR`. */
function takePath(paths: Record<string, string>, text: string): void {
  const match = /^([^=]+)=(.+)$/.exec(text);
  if (match === null) throw new UsageError(`--path: expected NAME=DIR, got '${text}'`);
  // Both groups take part in every match.
  const name = match[1]!;
  const dir = match[2]!;
  try {
    checkPaths({ [name]: dir });
  } catch (error) {
    throw new UsageError(`--path: ${(error as Error).message}`);
  }
  paths[name] = dir;
}

/**
 * Runs the command line `argv` (without the runtime and script) and returns
 * the exit code; output goes to stdout and stderr.
 *
 * With `-j`/`-p`, stdout is one JSON document whatever happens: an error
 * closes what was open, as bpftool does (`[{"key":...},{"error":"..."}]`).
 * A reader of stdout that goes away ends the command quietly with 0; any
 * other failed write (a full disk) is reported once, on stderr, with 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spawnSync } from "node:child_process";
 * import { fileURLToPath } from "node:url";
 *
 * const cli = fileURLToPath(new URL("./main.ts", import.meta.url));
 * const run = (...args: string[]) =>
 *   spawnSync(Deno.execPath(), ["run", "--allow-ffi", "--allow-read", cli, ...args], {
 *     encoding: "utf8",
 *   });
 * assert.equal(run("-j", "--version").stdout, '{"version":"0.1.0"}\n'); // as bpftool -j version
 * const usage = run("-j", "map", "frob");
 * assert.equal(usage.status, 2);
 * assert.match(usage.stdout, /^\{"error":"unknown map command 'frob'\\n\\nUsage: bpfmap /);
 * const missing = run("map", "show", "id", "4294967295");
 * assert.deepEqual([missing.status, missing.stderr], [1, "Error: id 4294967295: no such map\n"]);
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  const out = new Output(1);
  const err = new Output(2);
  let json: JsonWriter | undefined;
  let code: number;
  // Whether the command ended every line it printed (`map watch -j`): nothing to add.
  let linesEnded = false;
  try {
    const { options, words } = takeOptions(argv);
    json = options.json ? new JsonWriter(out, options.pretty) : undefined;
    code = await run(options, words, out, err, json, () => (linesEnded = true));
  } catch (error) {
    code = exitCodeOf(error);
    linesEnded = false; // an error took the document's place: it ends with the writer's newline
    report(error, out, err, json);
  }
  try {
    if (!linesEnded) json?.finish();
    out.flush();
  } catch (error) {
    // Output buffered to the end fails only now (a short dump to a full disk).
    code = Math.max(code, exitCodeOf(error));
    report(error, out, err, undefined);
  }
  try {
    err.flush();
  } catch {
    // Nowhere left to say it: the exit code says the rest.
  }
  return code;
}

/** The exit code an error stands for, by its class. */
function exitCodeOf(error: unknown): number {
  if (readerGone(error)) return 0;
  return error instanceof UsageError ? 2 : 1;
}

/** stdout's reader went away (`| head`): done, as `yes | head` is done. */
function readerGone(error: unknown): boolean {
  return error instanceof WriteError && error.fd === 1 && error.code === "EPIPE";
}

/** Says what went wrong: in the JSON document while it is open, else on stderr. */
function report(error: unknown, out: Output, err: Output, json: JsonWriter | undefined): void {
  if (readerGone(error) || error instanceof AnsweredFailure) return;
  const message = (error as Error)?.message ?? String(error);
  if (json !== undefined && out.failure === undefined && json.fail(message)) return;
  err.write(`Error: ${message}\n`);
}

async function run(
  options: Options,
  words: string[],
  out: Output,
  err: Output,
  json: JsonWriter | undefined,
  onLinesEnded: () => void,
): Promise<number> {
  if (options.version) {
    // As bpftool's `-j version`: an object.
    if (json) {
      json.startObject();
      json.stringField("version", VERSION);
      json.endObject();
    } else out.write(`bpfmap ${VERSION}\n`);
    return 0;
  }
  const args = new Args(words);
  if (options.help || args.left === 0) {
    if (json) json.raw("null");
    else out.write(MAP_USAGE);
    return args.left === 0 && !options.help ? 2 : 0;
  }
  const object = args.take("an object");
  const prog = isPrefix(object, "prog");
  const link = isPrefix(object, "link");
  const btf = isPrefix(object, "btf");
  if (!prog && !link && !btf && !isPrefix(object, "map")) {
    throw new UsageError(
      `unknown object '${object}': bpfmap knows 'map', 'prog', 'link' and 'btf'`,
    );
  }
  const system = await openCliSystem(options);
  const ctx: CliContext = { system, out, err, json, batchSize: options.batch };
  try {
    if (prog) runProgCommand(ctx, args);
    else if (link) runLinkCommand(ctx, args);
    else if (btf) runBtfCommand(ctx, args);
    else await runMapCommand(ctx, args);
  } catch (error) {
    // The cause is found while the system is open: the map's state is part of it.
    const reason = error instanceof BpfError
      ? new CommandError(explain(error, system, words.slice(1)), { cause: error })
      : error;
    // The command's own error says what went wrong (a replayed path that differs, say);
    // the calls it then left unplayed would only hide it.
    await system.close().catch(() => {});
    throw reason;
  }
  await system.close();
  if (ctx.linesEnded) onLinesEnded();
  return 0;
}

/** The system the options ask for, once what it needs is known to be there. */
function openCliSystem(options: Options): Promise<BpfSystem> {
  const { paths, record, replay } = options;
  if (replay !== undefined) {
    // Replays need no FFI; Deno must only be let read the transcript.
    requirePermission(
      { name: "read", path: replay },
      `--replay ${replay}: run Deno with --allow-read to let bpfmap read it`,
    );
    return openSystem({ transcript: replay, mode: "replay", modeFromEnvironment: false, paths });
  }
  requirePermission(
    { name: "ffi" },
    "bpfmap needs FFI to reach the kernel: run Deno with --allow-ffi "
      + "(deno run --allow-ffi cli/main.ts ...), as root or with CAP_BPF",
  );
  if (record === undefined) return openSystem({ mode: "live", modeFromEnvironment: false });
  checkRecordTarget(record);
  return openSystem({ transcript: record, mode: "record", modeFromEnvironment: false, paths });
}

/**
 * Fails before the command runs (an update would be applied, then lost from the record) if
 * the transcript could not be written: no folder, a folder that may not be written, or a
 * target that is a folder itself.
 */
function checkRecordTarget(record: string): void {
  const file = resolve(record);
  const folder = dirname(file);
  for (const name of ["read", "write"] as const) {
    requirePermission(
      { name, path: folder },
      `--record ${record}: run Deno with --allow-read and --allow-write to let bpfmap write it`,
    );
  }
  const fail = (why: string) => new CommandError(`--record ${record}: ${why}`);
  try {
    if (!statSync(folder).isDirectory()) throw fail(`${folder} is not a folder`);
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw fail(`no folder ${folder}: ${systemErrorWords(error)}`);
  }
  let target;
  try {
    target = statSync(file);
  } catch {
    // Not there yet: the usual case.
  }
  if (target?.isDirectory()) throw fail("is a folder, not a file");
  // Writing is the one true test (access() would need Deno's --allow-sys, and root passes it
  // on a folder that still refuses files); the probe goes at once.
  const probe = join(folder, `.bpfmap-probe-${process.pid}-${Date.now()}`);
  try {
    closeSync(openSync(probe, "wx"));
  } catch (error) {
    throw fail(`can't write in ${folder}: ${systemErrorWords(error)}`);
  }
  unlinkSync(probe);
}

/** A Deno permission's descriptor, as `Deno.permissions.querySync` takes it. */
type PermissionDescriptor =
  | { name: "ffi" }
  | { name: "read" | "write"; path: string }
  | { name: "env"; variable: string };

/**
 * Fails with `message` where Deno has not granted `descriptor`, asking first so that Deno
 * never prompts on a terminal mid-command. Bun has no permissions.
 */
function requirePermission(descriptor: PermissionDescriptor, message: string): void {
  const deno = (globalThis as {
    Deno?: { permissions?: { querySync?(descriptor: PermissionDescriptor): { state: string } } };
  }).Deno;
  const query = deno?.permissions?.querySync;
  if (query === undefined) return;
  if (query.call(deno!.permissions, descriptor).state !== "granted") {
    throw new CommandError(message);
  }
}

/** Commands that change a map's elements: EPERM from them may be a frozen map. */
const WRITES = new Set([
  "BPF_MAP_UPDATE_ELEM",
  "BPF_MAP_DELETE_ELEM",
  "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
  "BPF_MAP_UPDATE_BATCH",
  "BPF_MAP_DELETE_BATCH",
  "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
]);
/** Commands that need CAP_SYS_ADMIN, where CAP_BPF does for the rest. */
const SYS_ADMIN_ONLY = new Set([
  "BPF_MAP_GET_NEXT_ID",
  "BPF_MAP_GET_FD_BY_ID",
  "BPF_BTF_GET_FD_BY_ID",
]);

/**
 * A kernel error in words a person can act on: EPERM and EACCES say their true cause
 * (a frozen map, a path outside bpffs, a file's mode, a missing capability), found
 * from `words` (the command line after `map`), the map's state and the host's
 * `/proc/self/status` and `/proc/self/mountinfo`.
 */
function explain(error: BpfError, system: BpfSystem, words: string[]): string {
  if (error.code !== "EPERM" && error.code !== "EACCES") return error.message;
  let cause: string;
  try {
    cause = permissionCause(error, system, words);
  } catch {
    // Looking for the cause failed (a replay that did not record the look): the plain fact.
    cause = "permission denied";
  }
  return `${error.message}: ${cause}`;
}

function permissionCause(error: BpfError, system: BpfSystem, words: string[]): string {
  const { ref, pinPath } = targetOf(words);
  // A replay's host is not the one that failed: only the map's recorded state can speak.
  const host = system.mode === "replay" ? undefined : readHost();
  const caps = host?.caps;
  if (caps !== undefined && !hasCapability(caps, CAP_BPF) && !hasCapability(caps, CAP_SYS_ADMIN)) {
    return NO_CAP_BPF_HINT
      + (SYS_ADMIN_ONLY.has(error.op)
        ? " (and CAP_SYS_ADMIN to list maps or open them by id)"
        : "");
  }
  const path = error.op === "BPF_OBJ_GET"
    ? ref?.kind === "pinned" ? ref.path : undefined
    : error.op === "BPF_OBJ_PIN"
    ? pinPath
    : undefined;
  if (path !== undefined && host?.mounts !== undefined) {
    if (fileSystemOf(resolve(path), host.mounts) !== BPF_FS_TYPE) {
      return NOT_BPFFS_HINT;
    }
    if (caps !== undefined && !hasCapability(caps, CAP_DAC_OVERRIDE) && error.code === "EACCES") {
      return "the file's owner and mode do not let this user open it (run as its owner or root)";
    }
    if (error.op === "BPF_OBJ_GET") return "not a pinned object (a folder of the bpf file system?)";
  }
  if (WRITES.has(error.op) && ref !== undefined && ref.kind !== "name" && isFrozen(system, ref)) {
    return FROZEN_HINT;
  }
  if (caps === undefined) {
    return system.mode === "replay"
      ? "permission denied on the machine the transcript was recorded on"
      : "permission denied; run as root or with CAP_BPF (and CAP_SYS_ADMIN to list maps)";
  }
  if (SYS_ADMIN_ONLY.has(error.op) && !hasCapability(caps, CAP_SYS_ADMIN)) {
    return "listing maps and opening them by id need CAP_SYS_ADMIN (CAP_BPF does for the rest)";
  }
  return "this process has CAP_BPF, so a security module (SELinux, AppArmor, the BPF LSM), "
    + "kernel lockdown or a seccomp filter refused it";
}

/** The map and the pin path the command line names, for the map commands that name them. */
function targetOf(words: string[]): { ref?: MapRef | undefined; pinPath?: string | undefined } {
  const [command, ...rest] = words;
  if (isPrefix(command, "create")) return { pinPath: rest[0] };
  try {
    const args = new Args(rest);
    const ref = takeMapRef(args);
    return { ref, pinPath: isPrefix(command, "pin") ? args.peek() : undefined };
  } catch {
    return {};
  }
}

/** Whether the map `ref` names is frozen (fdinfo), asked through the command's own system. */
function isFrozen(system: BpfSystem, ref: MapRef & { kind: "id" | "pinned" }): boolean {
  let map: BpfMap | undefined;
  try {
    map = ref.kind === "id" ? system.mapFromId(ref.id) : system.openPinned(ref.path);
    return map.fdInfo().frozen === "1";
  } finally {
    map?.close();
  }
}

/** What the host says of this process: its effective capabilities and its mounts. */
function readHost(): { caps?: bigint | undefined; mounts?: string | undefined } {
  // Through libc, as the backend reads /sys: no Deno permission beyond FFI, no prompt.
  let read: (path: string) => string | undefined;
  try {
    const live = openLiveBackend();
    read = (path) => {
      try {
        return live.readTextFile(path);
      } catch {
        return undefined;
      }
    };
  } catch {
    return {};
  }
  return {
    caps: effectiveCapabilities(read("/proc/self/status") ?? ""),
    mounts: read("/proc/self/mountinfo"),
  };
}

if (import.meta.main) {
  // Exits at once, not when the event loop empties: a watch ended by a signal leaves its
  // wait for ever pending on another thread, which would keep the process alive.
  process.exit(await main(process.argv.slice(2)));
}
