/**
 * `bpfmap prog loadall OBJ PATH [pinmaps DIR]` (and `prog load`, which pins
 * the first program at PATH): an object file loaded as bpftool 7.1 loads it
 * (through libbpf), by bpfmap's own loader: each program pinned at
 * `PATH/<function name>`, each map at `DIR/<map name>` (dots made
 * underscores, as libbpf does, since bpffs takes no dots).
 *
 * @module
 */

import { existsSync, mkdirSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { openLiveBackend } from "../ffi/live.ts";
import type { BpfMap } from "../maps/bpf_map.ts";
import { BPF_FS_TYPE, fileSystemOf, NOT_BPFFS_HINT } from "../maps/hints.ts";
import type { BpfObject } from "../programs/object_loader.ts";
import { type Args, CommandError, isPrefix, UsageError } from "./args.ts";
import type { CliContext } from "./map_command.ts";

/** What `prog loadall` was told. */
export interface LoadAllCall {
  object: string;
  path: string;
  pinMaps?: string | undefined;
}

/**
 * Reads `OBJ PATH [pinmaps DIR]`, refusing bpftool's options bpfmap's loader
 * does not take yet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Args } from "./args.ts";
 * import { takeLoadAll } from "./prog_load.ts";
 * assert.deepEqual(takeLoadAll(new Args(["x.o", "/sys/fs/bpf/x", "pinmaps", "/sys/fs/bpf/m"])), {
 *   object: "x.o", path: "/sys/fs/bpf/x", pinMaps: "/sys/fs/bpf/m",
 * });
 * assert.throws(() => takeLoadAll(new Args(["x.o", "/sys/fs/bpf/x", "dev", "eth0"])), {
 *   name: "UsageError",
 * });
 * ```
 */
export function takeLoadAll(args: Args): LoadAllCall {
  const call: LoadAllCall = {
    object: args.take("an object file (OBJ)"),
    path: args.take("a folder to pin the programs in (PATH)"),
  };
  while (args.left > 0) {
    const word = args.take("an option");
    if (isPrefix(word, "pinmaps")) {
      if (call.pinMaps !== undefined) throw new UsageError("pinmaps given twice");
      call.pinMaps = args.take("a folder after 'pinmaps'");
    } else if (
      ["type", "map", "dev", "offload_dev", "xdpmeta_dev"].some((o) => isPrefix(word, o))
    ) {
      throw new UsageError(
        `'${word}' is bpftool's: bpfmap loads each program as its section says, its maps anew`,
      );
    } else throw new UsageError(`expected 'pinmaps', got: '${word}'`);
  }
  return call;
}

/**
 * Loads the object and pins what it made (`firstOnly`, for `prog load`: its
 * first program, at PATH itself); the pins hold the programs and maps when
 * the command ends. What was pinned before a failure is unpinned, as
 * bpftool does.
 */
export function loadAll(ctx: CliContext, call: LoadAllCall, firstOnly = false): void {
  const live = ctx.system.mode !== "replay";
  // As bpftool: nothing in the kernel if the object cannot be read.
  if (live) {
    if (!existsSync(call.object)) throw new CommandError(`${call.object}: no such object file`);
    // bpftool mounts a bpffs where there is none; bpfmap says so instead, before loading.
    const mounts = openLiveBackend().readTextFile("/proc/self/mountinfo");
    for (const path of [call.path, call.pinMaps]) {
      if (path !== undefined && fileSystemOf(resolve(path), mounts) !== BPF_FS_TYPE) {
        throw new CommandError(`${path}: ${NOT_BPFFS_HINT}`);
      }
    }
  }
  const object = ctx.system.loadObject(call.object);
  const pinned: string[] = [];
  try {
    if (firstOnly) {
      const [first] = object.programs.values();
      if (first === undefined) throw new CommandError(`${call.object}: the object has no program`);
      first.pin(call.path);
      pinned.push(call.path);
    } else {
      folder(call.path, live);
      for (const [name, program] of object.programs) {
        const at = `${call.path}/${name}`;
        program.pin(at);
        pinned.push(at);
      }
    }
    if (call.pinMaps !== undefined) {
      folder(call.pinMaps, live);
      for (const [at, map] of mapPins(object, call.pinMaps)) {
        map.pin(at);
        pinned.push(at);
      }
    }
  } catch (error) {
    // An unpin is an unlink (libbpf's bpf_program__unpin); a replay pinned nothing.
    if (live) { for (const at of pinned) unlinkSync(at); }
    throw error;
  }
  ctx.json?.raw("null");
}

/** libbpf's `make_parent_dir`: the folder of the pins, made (0700) if it is not there. */
function folder(path: string, live: boolean): void {
  if (live && !existsSync(path)) mkdirSync(path, { mode: 0o700 });
}

/**
 * Where libbpf's `bpf_object__pin_maps` pins each map under `dir`: by the
 * variable's name, or for global data, the map's name in the kernel
 * (`obj.bss`), with every `.` of the path made `_`.
 */
function mapPins(object: BpfObject, dir: string): [string, BpfMap][] {
  return [...object.maps].map(([name, map]) => {
    const mapName = name.startsWith(".") ? map.info().name : name;
    return [`${dir}/${mapName}`.replaceAll(".", "_"), map];
  });
}
