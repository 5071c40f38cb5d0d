#!/usr/bin/env -S deno run --allow-ffi --allow-read --allow-write
/**
 * `bpfmap`: bpftool's map commands, batch-powered, with record and replay.
 *
 *   deno run --allow-ffi cli/main.ts map list
 *   bun cli/main.ts -j map dump pinned /sys/fs/bpf/my_map
 *   bpfmap --replay dump.json -j map dump id 12      (no BPF needed)
 *   bpfmap --path BPFFS=/tmp/run1 --record t.json map dump pinned /tmp/run1/m
 *   bpfmap --path BPFFS=/tmp/run2 --replay t.json map dump pinned /tmp/run2/m
 *
 * Exit codes: 0 ok, 1 the operation failed, 2 bad usage.
 *
 * @module
 */

import process from "node:process";
import { BpfError } from "../ffi/errors.ts";
import { checkPaths } from "../replay/identities.ts";
import { openSystem } from "../replay/system.ts";
import { Args, CommandError, isPrefix, parseUnsigned, UsageError } from "./args.ts";
import { JsonWriter } from "./json_writer.ts";
import { type CliContext, MAP_USAGE, runMapCommand } from "./map_command.ts";
import { Output } from "./output.ts";

/** Lookup batch size of `map dump` unless `--batch` says otherwise (measured best; see README). */
export const DEFAULT_DUMP_BATCH = 8192;

const VERSION = "bpfmap 0.1.0";

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
    const word = argv[i];
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
  const [, name, dir] = match;
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
 */
export async function main(argv: string[]): Promise<number> {
  const out = new Output(1);
  const err = new Output(2);
  let json: JsonWriter | undefined;
  const fail = (message: string) => {
    if (json) json.stringField("error", message);
    else err.write(`Error: ${message}\n`);
  };
  let code = 0;
  try {
    const { options, words } = takeOptions(argv);
    json = options.json ? new JsonWriter(out, options.pretty) : undefined;
    if (options.version) {
      if (json) json.stringField("version", VERSION);
      else out.write(`${VERSION}\n`);
      return 0;
    }
    const args = new Args(words);
    if (options.help || args.left === 0) {
      if (json) json.raw("null");
      else out.write(MAP_USAGE);
      return args.left === 0 && !options.help ? 2 : 0;
    }
    const object = args.take("an object");
    if (!isPrefix(object, "map")) {
      throw new UsageError(`unknown object '${object}': bpfmap knows 'map'`);
    }
    const { paths } = options;
    const system = await openSystem(
      options.record !== undefined
        ? { transcript: options.record, mode: "record", modeFromEnvironment: false, paths }
        : options.replay !== undefined
        ? { transcript: options.replay, mode: "replay", modeFromEnvironment: false, paths }
        : { mode: "live", modeFromEnvironment: false },
    );
    const ctx: CliContext = { system, out, err, json, batchSize: options.batch };
    try {
      runMapCommand(ctx, args);
    } catch (error) {
      // The command's own error says what went wrong (a replayed path that differs, say);
      // the calls it then left unplayed would only hide it.
      await system.close().catch(() => {});
      throw error;
    }
    await system.close();
  } catch (error) {
    if (json && error instanceof CommandError && error.message === "") {
      // Already answered (lookup: null).
    } else if (error instanceof UsageError) {
      if (json) json.startObject();
      fail(error.message);
      if (json) json.endObject();
      code = 2;
    } else {
      if (json) json.startObject();
      if (!(error instanceof CommandError && error.message === "")) fail(explain(error));
      if (json) json.endObject();
      code = 1;
    }
    if (error instanceof CommandError && error.message === "") code = 1;
  } finally {
    json?.finish();
    out.flush();
    err.flush();
  }
  return code;
}

/** An error in words a person can act on. */
function explain(error: unknown): string {
  if (error instanceof BpfError) {
    if (error.code === "EPERM" || error.code === "EACCES") {
      return `${error.message}: permission denied; run as root or with CAP_BPF `
        + "(and CAP_SYS_ADMIN to list maps)";
    }
    return error.message;
  }
  const message = (error as Error).message ?? String(error);
  if (/Requires ffi access/.test(message)) {
    return "bpfmap needs FFI to reach the kernel: run Deno with --allow-ffi "
      + "(deno run --allow-ffi cli/main.ts ...), as root or with CAP_BPF";
  }
  return message;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
